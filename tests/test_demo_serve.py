"""`tether demo --serve`: after the demo's sync, its sandboxes post signed webhooks to a
`tether serve` on loopback; a person closes a flagged item and Tether's answer appears."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def test_demo_serve_shows_a_persons_edit_judged_again_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-c", "from tether.cli import main; main()", "demo", "--serve",
         "--dir", str(tmp_path / "demo")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "COLUMNS": "200"})
    assert demo.stdout is not None
    said: list[str] = []
    try:
        for line in demo.stdout:
            said.append(line)
            if line.startswith(("Tether judged", "No pass came", "error")):
                break
        closed = next(line for line in said if line.startswith("A person closes"))
        ref = closed.split()[3]
        judged = said[-1]
        assert judged.startswith(f"Tether judged {ref} again"), "".join(said)
        assert "remove label tether:" in judged and "update comment" in judged
        assert any("/webhooks/<source>" in line for line in said)
        demo.send_signal(signal.SIGINT)
        # Read on while it stops: what it still prints must not fill the pipe and block it.
        rest, _ = demo.communicate(timeout=120)
        assert demo.returncode == 0, rest
    finally:
        if demo.poll() is None:
            demo.kill()
