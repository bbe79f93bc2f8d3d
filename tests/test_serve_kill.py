"""`tether serve` killed with SIGKILL while it writes the verdicts of a burst of webhooks,
then started again: it converges on what one full sync gives, with no duplicate comment, and the
deliveries the trackers retry (those it never answered) are taken after the restart.

A real `tether serve` process, on a port the system chose, against the Jira, GitHub and
Asana sandboxes running in this process; the trackers post signed webhooks to it. Its state
store is SQLite, then a real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from tether.pipeline.run import run_pass
from tether.sandbox import LoggedRequest
from tether.testing import Driver, installed_drivers
from tether.workspace import load_workspace

TRACKERS = {"jira": "jira-cloud", "github": "github", "asana": "asana"}
SECRET = "a-long-random-hook-secret"
RULES = """\
mappings:
  - id: edited-work
    kpi: nps
    when: {title: {matches: "\\\\(edited\\\\)$"}}
signals:
  - id: edited
    signal: edited
    label: edited
    message: "{title} changed since Tether last looked."
    advice: Nothing to do; this is a test of Tether's service.
    when: {title: {matches: "\\\\(edited\\\\)$"}}
"""


@dataclass
class Serve:
    """One `tether serve` process on the workspace, on ``port`` (0: the system chooses)."""

    config: Path
    port: int = 0
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self) -> Serve:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from tether.cli import main; main()", "serve", "-c",
             str(self.config), "--port", str(self.port), "--debounce", "0.2", "--every",
             "86400"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=os.environ.copy())
        assert self.process.stdout is not None
        said = self.process.stdout.readline()  # "Serving ... on http://127.0.0.1:PORT: ..."
        assert "Serving" in said, said + self.process.stdout.read()
        self.port = int(said.split("http://127.0.0.1:", 1)[1].split(":", 1)[0])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def passes(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/readyz", timeout=30).json()["passes"]

    def settled(self, after: int, timeout: float = 120) -> int:
        """Wait until more than ``after`` passes ran and none is running or asked for;
        returns how many ran. The service runs in another process: this polls it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            passes = self.passes()
            if passes["run"] > after and passes["now"] == "idle":
                return int(passes["run"])
            time.sleep(0.05)
        raise AssertionError(f"tether serve did not settle: {self.passes()}")

    def stop(self) -> int:
        """SIGTERM: the pass in flight finishes; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


@pytest.fixture
def trackers(tmp_path: Path) -> Iterator[dict[str, Driver]]:
    found = installed_drivers()
    drivers = {name: found[driver].load()(tmp_path / name) for name, driver in TRACKERS.items()}
    try:
        yield drivers
    finally:
        for drv in drivers.values():
            drv.server.stop()  # type: ignore[attr-defined]


def workspace(folder: Path, drivers: dict[str, Driver], state: str) -> Path:
    sources = []
    for name, drv in drivers.items():
        connector = drv.connector()  # sets the token variable the sandbox takes
        options = connector.options.model_dump(mode="json", exclude_defaults=True)
        sources.append({"name": name, "type": connector.type_name, "options": options})
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "rules.yaml").write_text(RULES)
    (folder / "tether.yaml").write_text(json.dumps({
        "version": 1, "sources": sources,
        "kpis": [{"id": "nps", "name": "Net Promoter Score", "owner": "Dana Lee"}],
        "rules": {"packs": ["rules"], "builtin": False},
        "writeback": {"label_prefix": "tether", "budget": 1000}, "state": {"url": state}}))
    return folder / "tether.yaml"


def deliver(drivers: dict[str, Driver]) -> list[Any]:
    return [d for drv in drivers.values() for d in drv.deliver()]  # type: ignore[attr-defined]


def test_a_killed_service_converges_with_no_duplicate_and_no_lost_event(
        trackers: dict[str, Driver], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        state_backend) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("JIRA_WEBHOOK_SECRET", SECRET)
    keys = {name: drv.seed(9) for name, drv in trackers.items()}
    config = workspace(tmp_path / "ws", trackers, state_backend.new_url())
    serve = Serve(config).start()
    try:
        ran = serve.settled(0)  # the first scheduled pass
        ready = requests.get(f"{serve.url}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
        with load_workspace(config).open_store() as store:  # as `tether webhooks install`
            store.expect_handshakes("asana", datetime(9999, 1, 1, tzinfo=UTC))
            for name, drv in trackers.items():
                drv.register_hook(f"{serve.url}/webhooks/{name}", SECRET)  # type: ignore[attr-defined]
        assert all(d.status == 200 for d in deliver(trackers))  # handshakes, pings
        # A burst; the service is killed in the middle of writing its verdicts: right after
        # its fifth write landed, before it hears the answer.
        for name, drv in trackers.items():
            for key in keys[name][:4]:
                drv.edit(key)
        writes: list[LoggedRequest] = []
        process = serve.process
        assert process is not None

        def kill_on_fifth_write(request: LoggedRequest) -> bool:
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and process.poll() is None:
                writes.append(request)
                if len(writes) == 5:
                    process.send_signal(signal.SIGKILL)
                    return True
            return False

        for drv in trackers.values():
            drv.server.after_handling = kill_on_fifth_write  # type: ignore[attr-defined]
        burst = deliver(trackers)
        assert burst and all(d.status == 202 for d in burst if d.status != 200)
        assert process.wait(timeout=120) == -signal.SIGKILL, "the pass ended before the kill"
        for drv in trackers.values():
            drv.server.after_handling = None  # type: ignore[attr-defined]
        # More edits while it is down: the trackers cannot deliver them, and will retry.
        for name, drv in trackers.items():
            for key in keys[name][4:7]:
                drv.edit(key)
        missed = deliver(trackers)
        assert missed and all(d.status == 0 for d in missed)
        serve = Serve(config, serve.port).start()  # where the webhooks still point
        ran = serve.settled(0)
        while True:  # the retried deliveries, then Tether's echoes, until nothing is left
            got = deliver(trackers)
            accepted = [d for d in got if d.status == 202]
            assert all(d.status in (200, 202) for d in got), [d.status for d in got]
            if not accepted:
                break
            ran = serve.settled(ran)
        assert serve.stop() == 0
    finally:
        if serve.process is not None and serve.process.poll() is None:
            serve.process.kill()
    # What one full sync would leave: it finds nothing to write, and no item has two comments.
    ws = load_workspace(config)
    with ws.open_store() as store:
        full = run_pass(ws, store, "plan", full=True)
    assert full.ops == [] and full.status == "ok"
    with ws.open_store() as store:
        open_items = {t.ref for t in store.load_tasks() if t.status_category != "done"}
    for name, drv in trackers.items():
        for key in keys[name]:
            ours = [c for c in drv.comments(key) if "flagged this item:" in str(c)]
            flagged = key in keys[name][:7] and f"{name}:{key}" in open_items  # none on closed
            assert len(ours) == flagged, (name, key, drv.comments(key))
            assert ("tether:edited" in drv.labels(key)) == flagged
