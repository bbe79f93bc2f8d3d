"""Crash safety: a sync killed with SIGKILL in the middle of its writes, at several points,
and the next sync converges to exactly the state an uninterrupted sync leaves, with no
duplicate comment on any tracker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from tether.cli.demo import Demo, start_demo
from tether.pipeline.render import MARKER
from tether.plugins import Plugins
from tether.sandbox import LoggedRequest

WRITES = ("POST", "PUT", "PATCH", "DELETE")
SYNC = [sys.executable, "-c", "from tether.cli import main; main()", "sync", "-c"]


def _start(workdir: Path) -> Demo:
    """The three-tracker demo example on fresh sandboxes, its tether.yaml pointed at them so
    a separate process can sync it."""
    demo = start_demo(workdir, Plugins(), "northwind-trackers")  # kill points chosen for it
    config = workdir / "tether.yaml"
    data = yaml.safe_load(config.read_text())
    for source in data["sources"]:
        source["options"].update(demo.options.get(source["name"], {}))
    config.write_text(yaml.safe_dump(data))
    return demo


def _state(demo: Demo) -> dict[str, object]:
    """Every item's Tether labels and Tether comments, per tracker, as the sandboxes hold them."""
    ws = demo.workspace
    out: dict[str, object] = {}
    for name, connector in ws.connectors.items():
        tasks = connector.pull(None).tasks
        shown = connector.recover(tasks, ws.config.writeback.label_prefix)
        out[name] = {key: (sorted(a.labels), a.comment_digest or a.comment)
                     for key, a in sorted(shown.items())}
    return out


def _tether_comments(demo: Demo) -> dict[str, int]:
    """How many comments carrying Tether's marker or footer each item has, over every tracker."""
    counts: dict[str, int] = {}
    for box in demo.sandboxes.values():
        for key, bodies in box.comments().items():
            counts[f"{box.type_name}:{key}"] = sum(1 for b in bodies if MARKER in b or "Tether" in b)
    return counts


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    workdir = tmp_path_factory.mktemp("reference")
    demo = _start(workdir)
    try:
        done = subprocess.run([*SYNC, str(workdir)], capture_output=True, text=True,
                              env=os.environ.copy(), timeout=120)
        assert done.returncode == 0, done.stderr
        return _state(demo)
    finally:
        demo.stop()


# Kill points in the demo's 48 writes: the first (an Asana tag), the Asana batch carrying
# its stories, a GitHub comment POST, then two among Jira's writes (four issues at once, so
# which one lands 30th varies: a label edit, a comment POST or its marker PUT), and the last.
@pytest.mark.parametrize("kill_at", [1, 4, 16, 30, 48])
def test_a_sync_killed_mid_write_converges_on_the_next_run(
        kill_at: int, reference: dict[str, object], tmp_path: Path) -> None:
    demo = _start(tmp_path)
    try:
        seen: list[LoggedRequest] = []
        lock = threading.Lock()
        child: list[subprocess.Popen] = []

        def kill_on_nth_write(request: LoggedRequest) -> bool:
            with lock:
                if request.method not in WRITES or not child:
                    return False
                seen.append(request)
                if len(seen) != kill_at:
                    return False
                os.kill(child[0].pid, signal.SIGKILL)  # the write landed; its answer never will
                return True

        for box in demo.sandboxes.values():
            box.server.after_handling = kill_on_nth_write  # type: ignore[attr-defined]
        with lock:
            child.append(subprocess.Popen([*SYNC, str(tmp_path)], env=os.environ.copy(),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        child[0].communicate(timeout=120)
        assert child[0].returncode == -signal.SIGKILL, "the sync finished before the kill point"
        for box in demo.sandboxes.values():
            box.server.after_handling = None  # type: ignore[attr-defined]

        again = subprocess.run([*SYNC, str(tmp_path)], capture_output=True, text=True,
                               env=os.environ.copy(), timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "cut short" in again.stdout
        assert _state(demo) == reference
        assert max(_tether_comments(demo).values()) == 1
        quiet = subprocess.run([*SYNC, str(tmp_path)], capture_output=True, text=True,
                               env=os.environ.copy(), timeout=120)
        assert "Nothing to write" in quiet.stdout, quiet.stdout
    finally:
        demo.stop()
