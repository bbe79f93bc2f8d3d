"""Whole syncs against every tracker's sandbox: converge, then write nothing; a person's
removal is held; cleared findings become a resolved note; Tether's own writes are not
activity; the budget goes to the highest value at risk; and under injected faults the
trackers still end exactly in the desired state."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

from tether.model import OpKind, WriteOp
from tether.pipeline.apply import apply_ops
from tether.pipeline.run import RunResult, run_pass
from tether.sandbox import Fault
from tether.store.db import Store
from tether.testing import Driver, writes
from tether.workspace import Workspace, load_workspace

PREFIX = "tether"
CONFIG = """\
version: 1
sources:
  - name: src
    type: files
    options: {path: none.json, format: tether-json}
kpis:
  - id: nps
    name: Net Promoter Score
    owner: Dana Lee
rules:
  packs: [rules]
  builtin: false
writeback:
  label_prefix: tether
  budget: 1000
"""
KPIS = """\
  - id: nps
    name: Net Promoter Score
    owner: Dana Lee
"""
RULES = """\
mappings:
  - id: served
    kpi: nps
    when:
      key: {in: %s}
signals:
  - id: idle
    signal: idle
    label: idle
    message: "{title} has not changed for {idle_days} days."
    advice: Move it forward or close it.
    when:
      all:
        - idle_days: {gte: 1}
        - status_category: {in: [todo, in_progress]}
        - not: {key: {in: %s}}
"""


class Tracker:
    """A workspace whose one source ``src`` is the driver's sandbox, synced as a cron job
    would: a fresh connector (a fresh process) every run, on the tracker's own clock."""

    def __init__(self, driver: Driver, tmp_path: Path, n: int = 8, kpis: str = ""):
        self.driver = driver
        self.keys = driver.seed(n)
        self.served = self.keys[: n // 2]
        folder = tmp_path / "ws"
        (folder / "rules").mkdir(parents=True)
        (folder / "none.json").write_text('{"tasks": []}')
        (folder / "tether.yaml").write_text(CONFIG.replace(KPIS, kpis or KPIS))
        served = json.dumps(self.served)
        (folder / "rules" / "rules.yaml").write_text(RULES % (served, served))
        self.folder = folder

    def workspace(self) -> Workspace:
        ws = load_workspace(self.folder / "tether.yaml")
        return replace(ws, connectors={"src": self.driver.connector()})

    def run(self, mode: str = "sync") -> RunResult:
        ws = self.workspace()
        with ws.open_store() as store:
            return run_pass(ws, store, mode, lambda: self.driver.now() + timedelta(minutes=5))

    def idle(self) -> set[str]:
        """The keys of the items with an open idle finding, as the last sync recorded it."""
        with self.workspace().open_store() as store:
            return {f.subject.partition(":")[2] for f in store.open_findings()
                    if f.signal == "idle"}


def _ok(result: RunResult) -> None:
    assert result.applied is not None
    assert result.applied.failed == 0, [r.error for r in result.applied.results if not r.ok]


def test_a_sync_converges_and_the_next_writes_nothing(driver: Driver, tmp_path: Path) -> None:
    tracker = Tracker(driver, tmp_path)
    first = tracker.run()
    _ok(first)
    idle = tracker.idle()
    assert first.applied is not None
    assert idle and first.applied.applied == len(first.ops) > 0
    for key in idle:
        assert f"{PREFIX}:idle" in driver.labels(key) and len(driver.comments(key)) == 1
    closed = {t.key for t in first.tasks if t.status_category == "done"}
    for key in tracker.served:  # closed work is left alone (writeback.kpi_labels: open)
        assert (f"{PREFIX}:kpi:nps" in driver.labels(key)) is (key not in closed)
    before = writes(driver)
    second = tracker.run()
    # Tether's own labels and comments bumped each item's `updated`; that is not activity,
    # so the idle findings stand and nothing is written again.
    assert tracker.idle() == idle
    assert second.ops == [] and writes(driver) == before


def test_a_quiet_rerun_reads_one_list_page_and_nothing_per_item(
        driver: Driver, tmp_path: Path) -> None:
    tracker = Tracker(driver, tmp_path)
    _ok(tracker.run())
    tracker.run()  # reads back the items Tether's own writes touched
    driver.server.log.clear()
    quiet = tracker.run()
    # Nothing changed anywhere: one incremental list page per scope, the connector's usual
    # setup calls, at most one auth check and one batched read of Tether's annotations
    # (Jira's search for its marker property); no read per item, no write.
    assert quiet.ops == [] and writes(driver) == 0
    assert len(driver.server.log) <= driver.pages(1) + driver.setup_calls + 2, \
        [(r.method, r.path, r.query) for r in driver.server.log]


def test_what_a_person_removes_stays_removed_until_the_verdict_changes(
        driver: Driver, tmp_path: Path) -> None:
    tracker = Tracker(driver, tmp_path)
    first = tracker.run()
    _ok(first)
    served = tracker.served[0]
    driver.person_removes_label(served, f"{PREFIX}:kpi:nps")
    idle = sorted(tracker.idle())[0]
    shown = tracker.workspace().connectors["src"]
    [task] = [t for t in first.tasks if t.key == idle]
    comment_id = shown.recover([task], PREFIX)[idle].comment_id
    assert comment_id is not None
    driver.person_deletes_comment(idle, comment_id)
    before = writes(driver)

    second = tracker.run()
    _ok(second)
    assert {(o.key, o.kind) for o in second.held} >= {(served, OpKind.ADD_LABEL)}
    assert all(o.kind is not OpKind.CREATE_COMMENT for o in second.ops)
    assert f"{PREFIX}:kpi:nps" not in driver.labels(served)
    assert driver.comments(idle) == []
    assert tracker.run().ops == [] and writes(driver) == before


def test_cleared_findings_turn_the_comment_into_a_resolved_note(driver: Driver,
                                                                tmp_path: Path) -> None:
    tracker = Tracker(driver, tmp_path)
    first = tracker.run()
    _ok(first)
    key = sorted(tracker.idle())[0]
    driver.edit(key)  # a person works on it: no longer idle
    second = tracker.run()
    _ok(second)
    assert key not in tracker.idle()
    mine = {(o.kind, o.value if "label" in o.kind else "") for o in second.ops if o.key == key}
    assert mine == {(OpKind.REMOVE_LABEL, f"{PREFIX}:idle"), (OpKind.UPDATE_COMMENT, "")}
    [note] = driver.comments(key)
    assert "nothing to flag" in note and f"{PREFIX}:idle" not in driver.labels(key)
    assert tracker.run().ops == []


def test_the_budget_writes_the_highest_value_at_risk_first(driver: Driver,
                                                           tmp_path: Path) -> None:
    keys = driver.seed(5)
    connector = driver.connector()
    connector.pull(None)
    ops = [WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:kpi:nps", "test", None, risk)
           for key, risk in zip(keys, (10.0, 500.0, 0.0, 90.0, 5.0), strict=True)]
    with Store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run = store.start_run("sync", {}, driver.now())
        report = apply_ops(ops, {"src": connector}, store, run, 2, None, driver.now)
    assert [r.op.key for r in report.results] == [keys[1], keys[3]]
    assert [op.key for op in report.deferred] == [keys[0], keys[4], keys[2]]
    assert {k for k in keys if f"{PREFIX}:kpi:nps" in driver.labels(k)} == {keys[1], keys[3]}


def test_under_429s_5xx_and_resets_the_tracker_ends_exactly_as_desired(
        driver: Driver, tmp_path: Path) -> None:
    tracker = Tracker(driver, tmp_path, n=12)
    foreign = {k: {x for x in driver.labels(k) if not x.startswith(f"{PREFIX}:")}
               for k in tracker.keys}
    faults = driver.server.faults
    faults.add(Fault("status", rate=0.10, status=429, headers={"Retry-After": "2"},
                     body={"message": "Too many requests; retry after 2 seconds."}))
    faults.add(Fault("status", rate=0.05, status=503, body={"message": "Service unavailable"}))
    faults.add(Fault("reset", rate=0.02))
    first = tracker.run()
    _ok(first)
    injected = sum(1 for r in driver.server.log if r.status in (0, 429, 503))
    assert injected > 0
    faults.clear()
    check = tracker.run("plan")
    assert check.ops == [], [(o.key, o.kind, o.value[:40]) for o in check.ops]
    for key in tracker.keys:
        assert sum("Tether" in c for c in driver.comments(key)) <= 1, driver.comments(key)
        assert {x for x in driver.labels(key) if not x.startswith(f"{PREFIX}:")} == foreign[key]


def test_a_decision_gate_mentions_the_kpi_owner_and_nothing_else_does(
        driver: Driver, tmp_path: Path) -> None:
    handle = driver.mention_handle()
    anchor = driver.seed(1)[0]
    day = (driver.now() - timedelta(days=1)).date().isoformat()
    kpis = f"""\
  - id: nps
    name: Net Promoter Score
    owner: {{name: Dana Lee, src: "{handle}"}}
    direction: [40, 60]
    measurements: [{{date: {day}, value: 31}}]
    anchors: {{src: "{anchor}"}}
"""
    tracker = Tracker(driver, tmp_path, kpis=kpis)
    gate = (files("tether.rulepacks") / "drift" / "gate.yaml").read_text()
    (tracker.folder / "rules" / "gate.yaml").write_text(gate)
    first = tracker.run()
    _ok(first)
    assert {f.subject for f in first.findings if f.signal == "gate"} == {"kpi:nps"}
    assert driver.mentioned(anchor) == [handle]
    for key in tracker.keys:  # routine comments (idle) mention nobody
        assert driver.mentioned(key) == []
    before = writes(driver)
    assert tracker.run().ops == [] and writes(driver) == before

