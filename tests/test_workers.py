"""Passes on real Celery workers: two `tether worker` processes on Debian's redis-server take
the units of a sync over 20 scopes of the Jira, GitHub and Asana sandboxes; the trackers end
up exactly as a single-process sync leaves its twin, with no item commented twice, even when
a worker is SIGKILLed in the middle of its writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fanout import Fanned, fan_out, serve, today
from tether.cli import main
from tether.pipeline.run import RunResult, run_pass
from tether.sandbox import LoggedRequest

COPIES = 5  # 2 Jira projects, 1 repository and 1 Asana project, 5 times: 20 scopes
MARK = "flagged this item:"  # in every comment Tether writes about findings


@dataclass
class Workers:
    """`tether worker` processes on one workspace, each running one unit at a time."""

    config: Path
    env: dict[str, str]
    logs: Path
    app: Any  # the Celery app on the same broker, to ping them
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, n: int = 1, *options: str) -> None:
        for _ in range(n):
            log = (self.logs / f"worker-{len(self.processes)}.log").open("wb")
            self.processes.append(subprocess.Popen(
                [sys.executable, "-c", "from tether.cli import main; main()", "worker", "-c",
                 str(self.config), "--pool", "solo", *options], env=self.env, stdout=log,
                stderr=subprocess.STDOUT))
        alive = [p for p in self.processes if p.poll() is None]
        for _ in range(120):  # each answers a ping once it listens
            if len(self.app.control.ping(timeout=0.5)) >= len(alive):
                return
        raise AssertionError(f"workers did not come up: {self.tail()}")

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def tail(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("worker-*.log")))

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def portfolio(folder: Path, state_url: str | None, rate: str | None = None,
              assess_queue: str | None = None) -> Fanned:
    seed = fan_out(folder, COPIES)
    config = yaml.safe_load((folder / "tether.yaml").read_text())
    config["writeback"]["budget"] = 1000  # every write in one pass: the pass is compared whole
    config["workers"] = {"visibility_timeout": "4s"}  # a killed worker's unit comes back soon
    if rate:
        config["workers"]["rate_limits"] = {"jira": rate}
    if assess_queue:
        config["workers"]["assess_queue"] = assess_queue
    if state_url:
        config["state"] = {"url": state_url}
    (folder / "tether.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return serve(folder, seed)


@pytest.fixture
def twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_db: tuple[str, Any],
          state_backend: Any) -> Iterator[tuple[Fanned, Fanned, Workers]]:
    """A portfolio synced in this process, its twin synced by two workers."""
    url = redis_db[0]
    pair: list[Fanned] = []
    workers = None
    try:
        pair.append(portfolio(tmp_path / "one", None))
        pair.append(portfolio(tmp_path / "spread", state_backend.new_url()))
        for key, value in pair[0].env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TETHER_BROKER_URL", url)
        env = {**os.environ, **pair[1].env, "TETHER_BROKER_URL": url}
        from tether.work.queue import configure

        app = configure(pair[1].workspace().config, url)
        workers = Workers(pair[1].folder / "tether.yaml", env, tmp_path, app)
        workers.start(2)
        yield pair[0], pair[1], workers
    finally:
        if workers is not None:
            workers.stop()
        for fanned in pair:
            fanned.stop()


def sync(fanned: Fanned, spread: bool, monkeypatch: pytest.MonkeyPatch) -> RunResult:
    ws = fanned.workspace()
    at = today(fanned.folder / "seed")
    with monkeypatch.context() as env:
        if not spread:
            env.delenv("TETHER_BROKER_URL")
        with ws.open_store() as store:
            return run_pass(ws, store, "sync", lambda: at)


def said(r: RunResult) -> tuple:
    return (r.status, r.items, r.totals, sorted((o.task, o.kind, o.value) for o in r.ops),
            sorted(r.new_findings), r.pulled)


def commented_twice(fanned: Fanned) -> list[tuple[str, str]]:
    return [(source, key) for source, items in fanned.comments().items()
            for key, bodies in items.items() if sum(MARK in b for b in bodies) > 1]


@pytest.mark.usefixtures("redis_db")
def test_two_workers_leave_the_trackers_as_one_process_does(
        twins: tuple[Fanned, Fanned, Workers], monkeypatch: pytest.MonkeyPatch) -> None:
    one, spread, workers = twins
    alone, shared = sync(one, False, monkeypatch), sync(spread, True, monkeypatch)
    assert said(alone) == said(shared) and shared.applied.applied == alone.applied.applied > 100
    assert one.comments() == spread.comments() and commented_twice(spread) == []
    with spread.workspace().open_store() as store:
        units = store.work(shared.run_id)
    assert len([u for u in units if u.unit.startswith("pull ")]) == 20
    assert {u.state for u in units} == {"done"}
    assert len({u.worker for u in units}) == 2, "both workers took units"
    again = sync(one, False, monkeypatch), sync(spread, True, monkeypatch)
    assert said(again[0]) == said(again[1]) and again[1].ops == []
    # `tether status` shows each scope's last units, and nothing waiting in the queue.
    config = str(spread.folder / "tether.yaml")
    shown = CliRunner().invoke(main, ["status", "-c", config, "--json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["queued"] == 0 and doc["broker"].startswith("redis+socket://")
    assert len(doc["shards"]) == 21  # 20 scopes, and the portfolio's assessment
    assert {unit["state"] for shard in doc["shards"].values() for unit in shard.values()} \
        == {"done"}
    assert doc["shards"]["github@halvorsen/platform-3"]["pull"]["run"] == again[1].run_id
    text = CliRunner().invoke(main, ["status", "-c", config])
    assert "0 unit(s) waiting" in text.output and "jira@PROC4" in text.output


def test_a_worker_killed_mid_write_leaves_no_duplicate_and_the_next_pass_converges(
        twins: tuple[Fanned, Fanned, Workers], monkeypatch: pytest.MonkeyPatch) -> None:
    one, spread, workers = twins
    writes: list[LoggedRequest] = []
    killed: list[int] = []
    ws = spread.workspace()

    def kill_the_writer(request: LoggedRequest) -> bool:
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and not killed:
            writes.append(request)
            if len(writes) == 12:  # well into the writes: kill the worker writing now
                with ws.open_store() as store:
                    running = [u for u in store.work() if u.state == "running"
                               and u.unit.startswith("write ")]
                pid = int(running[0].worker.rsplit(":", 1)[1])  # type: ignore[union-attr]
                killed.append(pid)
                workers.kill(pid)
                return True  # the write landed; its answer is lost with the worker
        return False

    for box in spread.sandboxes.values():
        box.server.after_handling = kill_the_writer  # type: ignore[attr-defined]
    cut = sync(spread, True, monkeypatch)  # the dead worker's unit goes to the other one
    for box in spread.sandboxes.values():
        box.server.after_handling = None  # type: ignore[attr-defined]
    assert killed and cut.status == "ok" and commented_twice(spread) == []
    workers.start(1)  # restarted
    with ws.open_store() as store:
        retried = [u for u in store.work(cut.run_id) if u.tries > 1]
    assert [u.unit for u in retried if u.unit.startswith("write ")], "the unit was taken again"
    for _ in range(3):  # a single process needs as many passes: its budget writes all in one
        alone, shared = sync(one, False, monkeypatch), sync(spread, True, monkeypatch)
    assert shared.ops == [] and alone.ops == []
    assert one.comments() == spread.comments() and commented_twice(spread) == []
    deadline = time.monotonic() + 5
    while any(p.poll() is None for p in workers.processes if p.pid in killed):
        assert time.monotonic() < deadline


def test_a_pass_with_no_worker_to_take_it_says_so_and_writes_nothing(
        tmp_path: Path, redis_db: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fanned = portfolio(tmp_path / "ws", None)
    try:
        for key, value in fanned.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TETHER_BROKER_URL", redis_db[0])
        before = fanned.comments()
        said = CliRunner().invoke(main, ["sync", "-c", str(fanned.folder / "tether.yaml")])
        assert said.exit_code == 1
        assert "no worker answers on queue 'tether'" in said.output
        assert "start one with `tether worker" in said.output
        assert fanned.comments() == before
    finally:
        fanned.stop()


def test_the_assessment_runs_on_its_own_queue_when_one_is_set(
        tmp_path: Path, redis_db: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """workers.assess_queue sends the one unit that reads the whole portfolio to the workers
    that take that queue (a larger machine); with none taking it, the pass says so."""
    fanned = portfolio(tmp_path / "ws", None, assess_queue="tether-assess")
    workers = None
    try:
        for key, value in fanned.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TETHER_BROKER_URL", redis_db[0])
        from tether.work.queue import configure

        config = fanned.folder / "tether.yaml"
        app = configure(fanned.workspace().config, redis_db[0])
        workers = Workers(config, {**os.environ, **fanned.env}, tmp_path, app)
        workers.start(1, "--queues", "tether")
        before = fanned.comments()
        said = CliRunner().invoke(main, ["sync", "-c", str(config)])
        assert said.exit_code == 1, said.output
        assert "no worker takes the assessment's queue 'tether-assess'" in said.output
        assert "`tether worker -c tether.yaml --queues tether-assess`" in said.output
        assert fanned.comments() == before
        workers.start(1, "--queues", "tether-assess")
        done = sync(fanned, True, monkeypatch)
        assert done.status == "ok" and done.applied and done.applied.applied > 0
        took = {(u.unit.split(" ")[0], u.worker.rsplit(":", 1)[1]) for u in done.units}
        small, large = (str(p.pid) for p in workers.processes)
        assert took == {("pull", small), ("assess", large), ("plan", small), ("write", small)}
        wrong = CliRunner().invoke(main, ["worker", "-c", str(config), "--queues", "tether,x"])
        assert wrong.exit_code == 1
        assert "--queues 'tether,x': Tether's units go only to tether, tether-assess" in (
            wrong.output)
    finally:
        if workers is not None:
            workers.stop()
        fanned.stop()


def test_a_webhook_pass_on_workers_pulls_only_the_scope_it_touched(
        twins: tuple[Fanned, Fanned, Workers]) -> None:
    import socket
    import threading

    import uvicorn
    from tether.serve.app import create_app
    from tether.serve.service import Service, Settings, install_hooks

    _, spread, _ = twins
    at = today(spread.folder / "seed")
    config = spread.folder / "tether.yaml"
    service = Service(Settings(config, interval=86_400, debounce=0), clock=lambda: at,
                      load=lambda path: spread.workspace())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        assert service.runner.wait_for(1, timeout=120)  # the first pass, on the workers
        ws = spread.workspace()
        install_hooks(ws, ws.connectors["github"], f"{url}/webhooks/github")
        github = spread.sandboxes["github"]
        github.deliver()  # the first pass's own writes: echoes
        with ws.open_store() as store:
            flagged = sorted({f.subject for f in store.open_findings()
                              if f.subject.startswith("github:halvorsen/platform-3#")})
        key = flagged[0].split(":", 1)[1]
        github.close_as_person(key)
        answered = [d for d in github.deliver() if d.status == 202]
        assert answered, "the person's close was taken"
        assert service.runner.wait_for(2, timeout=120)
        with ws.open_store() as store:
            last = store.runs(limit=1)[0]
            pulled = [u.unit for u in store.work(last.id) if u.unit.startswith("pull ")]
            still = {f.subject for f in store.open_findings()}
        assert last.status == "ok" and pulled == ["pull github@halvorsen/platform-3"]
        assert f"github:{key}" not in still  # closed work is no longer flagged
        metrics = service.metrics.text().decode()  # each unit counted, by phase and state
        assert 'tether_work_units_total{phase="pull",state="done"} 21.0' in metrics
        assert 'tether_work_unit_seconds_count{phase="write"}' in metrics
    finally:
        server.should_exit = True
        thread.join(60)


def test_two_workers_share_one_rate_budget_and_meet_no_429(
        tmp_path: Path, redis_db: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The Jira site takes 20 requests per 2 s (a token bucket, as Jira Cloud's burst limits);
    `workers.rate_limits` says so, and the two workers together keep to it."""
    from tether.clock import Clock
    from tether.work.queue import configure
    from tether_jira.sandbox.http import RateLimit

    url = redis_db[0]
    pair = [portfolio(tmp_path / name, None, rate="20/2s") for name in ("one", "spread")]
    workers = None
    try:
        for fanned in pair:
            jira = fanned.sandboxes["jira"]
            jira.world.clock = Clock()  # type: ignore[attr-defined]  # refills in real time
            jira.api.rate_limit = RateLimit(20, 20, 2.0)  # type: ignore[attr-defined]
        for key, value in pair[0].env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TETHER_BROKER_URL", url)
        app = configure(pair[1].workspace().config, url)
        workers = Workers(pair[1].folder / "tether.yaml", {**os.environ, **pair[1].env},
                          tmp_path, app)
        workers.start(2)
        alone, shared = sync(pair[0], False, monkeypatch), sync(pair[1], True, monkeypatch)
        log = pair[1].sandboxes["jira"].server.log  # type: ignore[attr-defined]
        assert [r for r in log if r.status == 429] == [] and len(log) > 60
        assert shared.requests["jira"].get("throttled", 0) == 0
        assert said(alone) == said(shared) and pair[0].comments() == pair[1].comments()
    finally:
        if workers is not None:
            workers.stop()
        for fanned in pair:
            fanned.stop()


def test_a_pass_waits_on_a_busy_worker_but_not_on_none(
        tmp_path: Path, redis_db: tuple[str, Any]) -> None:
    """A worker running a unit in its only thread (``--pool solo``) cannot answer a ping:
    the pass keeps waiting while a unit of it began or ended within the visibility timeout."""
    from datetime import UTC, datetime, timedelta

    from tether.work.queue import OnWorkers

    fanned = portfolio(tmp_path / "ws", None)
    try:
        ws = fanned.workspace()
        waiting = OnWorkers(ws.config, redis_db[0], patience=1.0)
        with ws.open_store() as store:
            run = store.start_run("sync", {}, datetime.now(UTC))
            assert waiting._stalled(run)  # nobody answers, nothing runs
            store.work_begin(run, "write jira@PROC", "elsewhere:1", datetime.now(UTC))
            assert not waiting._stalled(run)  # someone is busy with it
            long_ago = datetime.now(UTC) - timedelta(seconds=10)
            store.work_begin(run, "write jira@PROC", "elsewhere:1", long_ago)
            assert waiting._stalled(run)  # begun longer ago than a dead worker's unit lasts
            store.work_end(run, "write jira@PROC", datetime.now(UTC), {})
            store.work_queued(run, ["write jira@OPS"], datetime.now(UTC))
            assert not waiting._stalled(run)  # between two units of a solo worker
            store.work_end(run, "write jira@PROC", long_ago, {})
            assert waiting._stalled(run)  # the last one ended long ago, nothing runs
    finally:
        fanned.stop()
