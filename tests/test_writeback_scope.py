"""What Tether writes where: closed work is left alone (only what Tether wrote there is
cleared or resolved), a KPI's anchor still carries the KPI's findings, and
``writeback.kpi_labels`` (open, all, off) decides which items carry ``tether:kpi:<id>``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tether.model import KPI, CurrentAnnotation, Finding, Mapping, OpKind, Task, WriteOp
from tether.pipeline.plan import desired_annotations, plan
from tether.pipeline.render import Renderer
from tether.pipeline.run import RunResult, run_pass
from tether.workspace import load_workspace

T0 = datetime(2025, 5, 1, tzinfo=UTC)
KPI_LABEL, STALLED = "tether:kpi:cost", "tether:stalled"
RESOLVED = Renderer().resolved("markdown")


# -- the planner ------------------------------------------------------------------------------


def _ops(tasks: list[Task], findings: list[Finding], current: dict[str, CurrentAnnotation],
         kpi_labels: str = "open", kpis: dict[str, KPI] | None = None) -> list[WriteOp]:
    mappings = [Mapping(t.ref, "cost", "cost-work", 1.0, "") for t in tasks]
    desired = desired_annotations(tasks, mappings, findings, kpis or {}, "tether", True, current,
                                  kpi_labels=kpi_labels)
    return plan(tasks, desired, current).ops


def _done(key: str = "1") -> Task:
    return Task("src", key, "Shipped work", status_category="done", updated=T0)


def _open(key: str = "1") -> Task:
    return Task("src", key, "Ongoing work", status_category="in_progress", updated=T0)


def _stalled(task: Task) -> Finding:
    return Finding("stalled", "warning", task.ref, "Idle for 30 days.", "stalled", label="stalled")


@pytest.mark.parametrize("mode", ["open", "all", "off"])
def test_a_closed_item_tether_never_wrote_on_gets_no_write(mode: str) -> None:
    # Even a finding on it (a team's own rule may flag closed work) adds no label or comment.
    task = _done()
    assert _ops([task], [_stalled(task)], {}, mode) == []


@pytest.mark.parametrize(("mode", "removed"), [
    ("open", [KPI_LABEL, STALLED]), ("all", [STALLED]), ("off", [KPI_LABEL, STALLED])])
def test_a_closed_item_tether_wrote_on_is_only_cleared_and_resolved(mode: str,
                                                                    removed: list[str]) -> None:
    task = _done()
    shown = {task.ref: CurrentAnnotation(frozenset({KPI_LABEL, STALLED}), "Idle for 30 days.", "c1")}
    ops = _ops([task], [], shown, mode)
    assert [o.value for o in ops if o.kind is OpKind.REMOVE_LABEL] == removed
    [resolve] = [o for o in ops if o.kind is not OpKind.REMOVE_LABEL]
    assert resolve.kind is OpKind.UPDATE_COMMENT and resolve.comment_id == "c1"
    assert resolve.value == RESOLVED


def test_a_closed_item_whose_finding_stands_keeps_tethers_comment_unedited() -> None:
    task = _done()
    shown = {task.ref: CurrentAnnotation(frozenset({KPI_LABEL, STALLED}), "Idle for 30 days.", "c1")}
    finding = replace(_stalled(task), reason="Idle for 45 days.")  # new numbers, same verdict
    assert _ops([task], [finding], shown, "all") == []
    assert [(o.kind, o.value) for o in _ops([task], [finding], shown, "open")] == [
        (OpKind.REMOVE_LABEL, KPI_LABEL)]


@pytest.mark.parametrize(("mode", "labels"), [
    ("open", [KPI_LABEL, STALLED]), ("all", [KPI_LABEL, STALLED]), ("off", [STALLED])])
def test_kpi_labels_setting_on_open_items(mode: str, labels: list[str]) -> None:
    task = _open()
    ops = _ops([task], [_stalled(task)], {}, mode)
    assert [o.value for o in ops if o.kind is OpKind.ADD_LABEL] == labels
    assert [o.kind for o in ops if o.kind is not OpKind.ADD_LABEL] == [OpKind.CREATE_COMMENT]


def test_kpi_labels_off_removes_the_kpi_labels_tether_wrote_but_not_signal_labels() -> None:
    task = _open()
    shown = {task.ref: CurrentAnnotation(frozenset({KPI_LABEL, STALLED}))}
    ops = _ops([task], [_stalled(task)], shown, "off")
    assert [(o.kind, o.value) for o in ops if o.kind is not OpKind.CREATE_COMMENT] == [
        (OpKind.REMOVE_LABEL, KPI_LABEL)]


@pytest.mark.parametrize("mode", ["open", "all"])
def test_kpi_labels_on_closed_items_are_never_added(mode: str) -> None:
    assert _ops([_done()], [], {}, mode) == []


def test_a_closed_anchor_still_carries_its_kpis_findings() -> None:
    # The anchor stands for the KPI, not for work: closing it does not silence the KPI.
    anchor = _done("FIN-1")
    kpis = {"cost": KPI("cost", "Cost", anchors={"src": "FIN-1"})}
    gate = Finding("gate", "critical", "kpi:cost", "Cost needs a decision.", "gate")
    ops = _ops([anchor], [gate], {}, "open", kpis)
    assert [o.kind for o in ops] == [OpKind.CREATE_COMMENT]
    assert "Cost needs a decision" in ops[0].value
    # When the KPI's finding clears, the closed anchor is closed work again: resolved only.
    shown = {anchor.ref: CurrentAnnotation(comment=ops[0].value, comment_id="c9")}
    [resolve] = _ops([anchor], [], shown, "open", kpis)
    assert resolve.kind is OpKind.UPDATE_COMMENT and resolve.value == RESOLVED


# -- end to end, on the files connector -------------------------------------------------------

KPIS = """kpis:
  - id: cost
    name: Cut operating cost
    owner: dana
    weight: 1
"""
MAPPING = """mappings:
  - id: cost-work
    kpi: cost
    description: Cost work.
    when:
      labels: {any_of: [cost]}
"""
OWNERLESS = """signals:
  - id: ownerless
    signal: ownerless
    severity: info
    label: ownerless
    description: Work with nobody assigned.
    message: "Nobody is assigned to this {type}."
    advice: "Assign someone."
    when:
      assignee: {exists: false}
"""


def _item(key: str, category: str, **kw) -> dict:
    return {"key": key, "title": f"Item {key}", "type": "Task", "status_category": category,
            "labels": ["cost"], "assignee": "dana", "created": "2025-04-01T00:00:00Z",
            "updated": "2025-04-28T00:00:00Z", **kw}


def _workspace(root: Path, items: list[dict], kpi_labels: str | None = None,
               rules: str = MAPPING) -> Path:
    (root / "rules").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "kpis.yaml").write_text(KPIS)
    (root / "rules" / "mapping.yaml").write_text(rules)
    (root / "data" / "tasks.json").write_text(json.dumps({"tasks": items}))
    setting = f"\n  kpi_labels: {kpi_labels}" if kpi_labels else ""
    (root / "tether.yaml").write_text(f"""version: 1
sources:
  - name: ops
    type: files
    options: {{path: data/tasks.json, format: tether-json, project: OPS}}
kpis: kpis.yaml
rules:
  packs: [rules]
writeback:
  budget: 100{setting}
""")
    return root


def _edit(root: Path, key: str, **change) -> None:
    path = root / "data" / "tasks.json"
    data = json.loads(path.read_text())
    for item in data["tasks"]:
        if item["key"] == key:
            item.update(change)
    path.write_text(json.dumps(data))


def _sync(root: Path, mode: str = "sync") -> RunResult:
    ws = load_workspace(root / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, mode, lambda: T0)


def _writes(result: RunResult) -> list[tuple[str, str, str]]:
    return sorted((o.key, o.kind.value, o.value if "label" in o.kind else "comment")
                  for o in result.ops)


HEALTHY = [_item("OPS-1", "in_progress"), _item("OPS-2", "todo"), _item("OPS-3", "done"),
           _item("OPS-4", "done")]


def test_a_healthy_portfolio_gets_only_kpi_labels_on_open_items(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws", HEALTHY)
    first = _sync(root)
    assert first.findings == []
    assert _writes(first) == [("OPS-1", "add_label", KPI_LABEL), ("OPS-2", "add_label", KPI_LABEL)]
    assert _sync(root).ops == []


def test_a_healthy_portfolio_with_kpi_labels_off_gets_no_write(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws", HEALTHY, kpi_labels="off")
    first = _sync(root, "plan")
    assert first.findings == [] and first.mappings and first.ops == []


def test_closing_an_item_removes_what_tether_wrote_and_resolves_its_comment(tmp_path: Path
                                                                          ) -> None:
    items = [*HEALTHY, _item("OPS-5", "in_progress", assignee=None)]
    root = _workspace(tmp_path / "ws", items, rules=MAPPING + "\n" + OWNERLESS)
    assert ("OPS-5", "create_comment", "comment") in _writes(_sync(root))
    _edit(root, "OPS-5", status_category="done", assignee="dana", updated="2025-04-30T00:00:00Z")
    closed = _sync(root)
    assert _writes(closed) == [("OPS-5", "remove_label", KPI_LABEL),
                               ("OPS-5", "remove_label", "tether:ownerless"),
                               ("OPS-5", "update_comment", "comment")]
    assert [o.value for o in closed.ops if o.kind is OpKind.UPDATE_COMMENT] == [RESOLVED]
    assert _sync(root).ops == []


def test_a_finding_on_closed_work_is_reported_but_not_written(tmp_path: Path) -> None:
    items = [*HEALTHY, _item("OPS-6", "done", assignee=None)]
    root = _workspace(tmp_path / "ws", items, rules=MAPPING + "\n" + OWNERLESS)
    result = _sync(root, "plan")
    assert [(f.signal, f.subject) for f in result.findings] == [("ownerless", "ops:OPS-6")]
    assert [o for o in result.ops if o.key == "OPS-6"] == []
