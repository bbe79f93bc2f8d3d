"""KPI-level drift signals of the built-in pack: starved, no_impact, gate; anchors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tether.kpi.status import kpi_statuses
from tether.model import KPI, Finding, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor
from tether.pipeline.plan import desired_annotations
from tether.pipeline.verdicts import with_reminder
from tether.plugins import Plugins
from tether.rules.loader import load_rulebook

NOW = datetime(2025, 7, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 12, 31, tzinfo=UTC)


def kpi(kid: str, weight: float = 2.0) -> KPI:
    return KPI(kid, kid.title(), weight=weight, owner="Dana", baseline=0.0, baseline_date=START,
               target=10.0, deadline=END)


def flat_history(kid: str) -> list[Measurement]:
    """Six monthly values stuck near 1: far behind a linear path to 10."""
    return [Measurement(kid, START + timedelta(days=30 * i), 1.0 + 0.05 * i) for i in range(6)]


def assess(kpis: list[KPI], tasks: list[Task], mappings: list[Mapping], params=None):
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    book = load_rulebook(packs, kpis, params=params)
    measurements = [m for k in kpis for m in flat_history(k.id)]
    statuses = kpi_statuses(kpis, measurements, NOW)
    assessor = Assessor(book.signals)
    try:
        return assessor.assess(tasks, mappings, kpis, NOW, statuses, measurements), statuses
    finally:
        assessor.close()


def test_a_slipping_kpi_with_no_open_work_is_starved() -> None:
    kpis = [kpi("margin"), kpi("busy")]
    tasks = [Task("s", f"T-{i}", f"task {i}") for i in range(4)]
    mappings = [Mapping(t.ref, "busy", "r", 1.0, "") for t in tasks]
    findings, statuses = assess(kpis, tasks, mappings)
    assert statuses["margin"].status == "off_track"
    starved = [f for f in findings if f.signal == "starved"]
    assert [f.subject for f in starved] == ["kpi:margin"]
    assert "with no open items, 0% of open effort for 50% of priority weight" in starved[0].reason
    assert starved[0].severity == "critical"
    assert starved[0].advice.startswith("Dana:")


@pytest.mark.parametrize("weights", [(0.35, 0.65), (3.0, 2.0)])
def test_fractional_and_whole_weights_are_judged_as_shares(weights: tuple[float, float]) -> None:
    # Both KPIs slip; "margin" has 1 of 8 open items for over a third of the weight.
    kpis = [kpi("margin", weights[0]), kpi("busy", weights[1])]
    tasks = [Task("s", f"T-{i}", f"task {i}") for i in range(8)]
    mappings = [Mapping(t.ref, "margin" if i == 0 else "busy", "r", 1.0, "")
                for i, t in enumerate(tasks)]
    findings, _ = assess(kpis, tasks, mappings)
    assert [f.subject for f in findings if f.signal == "starved"] == ["kpi:margin"]


def test_an_unweighted_guardrail_kpi_is_never_starved_or_misallocated() -> None:
    kpis = [kpi("margin"), kpi("rail", weight=0)]
    tasks = [Task("s", f"T-{i}", f"task {i}") for i in range(6)]
    mappings = [Mapping(t.ref, "rail" if i < 5 else "margin", "r", 1.0, "")
                for i, t in enumerate(tasks)]
    findings, _ = assess(kpis, tasks, mappings)
    judged = {f.subject for f in findings if f.signal in ("starved", "misallocated")}
    assert "kpi:rail" not in judged


def test_unknown_status_is_never_starved() -> None:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    kpis = [kpi("margin")]
    assessor = Assessor(load_rulebook(packs, kpis).signals)
    try:
        findings = assessor.assess([], [], kpis, NOW, kpi_statuses(kpis, [], NOW))
    finally:
        assessor.close()
    assert not [f for f in findings if f.signal == "starved"]


@pytest.mark.parametrize("closed_days_ago, expected", [
    ((10, 20, 30, 40), True), ((10, 20, None, None), True), ((10, None, None, None), False),
    ((200, 210, 220, 230), False)])
def test_no_impact_reads_the_work_closed_in_the_trailing_window(
        closed_days_ago: tuple[int | None, ...], expected: bool) -> None:
    """Most of the work active in the last quarter closed in it while the number stayed
    flat: no impact. Work that closed long ago says nothing about the last quarter."""
    kpis = [kpi("margin")]
    tasks = [Task("s", f"T-{i}", f"task {i}", created=START,
                  status_category="todo" if ago is None else "done",
                  resolved=None if ago is None else NOW - timedelta(days=ago))
             for i, ago in enumerate(closed_days_ago)]
    mappings = [Mapping(t.ref, "margin", "r", 1.0, "") for t in tasks]
    findings, _ = assess(kpis, tasks, mappings)
    hits = [f for f in findings if f.signal == "no_impact"]
    assert bool(hits) is expected
    if expected:
        done = sum(1 for ago in closed_days_ago if ago is not None)
        assert f"{done} of the 4 linked items active from 2025-04-02 to 2025-07-01" in hits[0].reason


def test_gate_when_a_kpi_leaves_its_band_and_not_while_it_is_inside() -> None:
    slipping, _ = assess([kpi("margin")], [], [])
    assert [f.subject for f in slipping if f.signal == "gate"] == ["kpi:margin"]
    assert "continue, pivot, stop or re-baseline" in \
        next(f for f in slipping if f.signal == "gate").advice
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    good = kpi("margin")
    on_path = [Measurement("margin", START + timedelta(days=30 * i), 10 * 30 * i / 364)
               for i in range(6)]
    assessor = Assessor(load_rulebook(packs, [good]).signals)
    try:
        found = assessor.assess([], [], [good], NOW, kpi_statuses([good], on_path, NOW))
    finally:
        assessor.close()
    assert not [f for f in found if f.signal == "gate"]


def test_kpi_findings_are_written_on_the_kpi_anchor_item() -> None:
    anchored = KPI("margin", "Margin", anchors={"jira": "FIN-1"})
    epic, other = Task("jira", "FIN-1", "Margin epic"), Task("jira", "FIN-2", "x")
    finding = Finding("gate", "critical", "kpi:margin", "Margin needs a decision", "gate")
    desired = desired_annotations([epic, other], [], [finding], {"margin": anchored},
                                  "tether", True, {})
    assert "Margin needs a decision" in (desired["jira:FIN-1"].comment or "")
    assert desired["jira:FIN-2"].comment is None
    assert desired["jira:FIN-1"].comment_why == "findings: gate"


def test_value_at_risk_is_the_kpis_and_is_shared_across_flagged_items() -> None:
    kpis = [kpi("margin")]
    idle = NOW - timedelta(days=30)
    tasks = [Task("s", f"T-{i}", f"t{i}", created=START, updated=idle) for i in range(2)]
    mappings = [Mapping(t.ref, "margin", "r", 1.0, "") for t in tasks]
    findings, statuses = assess(kpis, tasks, mappings)
    whole = round(statuses["margin"].value_at_risk, 2)
    assert whole > 0
    gate = next(f for f in findings if f.signal == "gate")
    assert gate.value_at_risk == whole
    stalled = [f for f in findings if f.signal == "stalled"]
    assert len(stalled) == 2 and all(f.value_at_risk == round(whole / 2, 2) for f in stalled)


@pytest.mark.parametrize("age, suffix", [
    (3, None), (7, " Reminder 1: first raised on 2025-06-24, still open."),
    (15, " Reminder 2: first raised on 2025-06-16, still open.")])
def test_an_open_gate_is_re_raised_once_per_sla_period(age: int, suffix: str | None) -> None:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    gate_rule = next(r for r in load_rulebook(packs, [kpi("margin")]).signals if r.id == "gate")
    assert gate_rule.params["sla_days"] == 7
    finding = Finding("gate", "critical", "kpi:margin", "Margin needs a decision.", "gate")
    key = ("gate", "kpi:margin", "gate")
    raised = with_reminder(finding, gate_rule, {key: NOW - timedelta(days=age)}, NOW)
    assert raised.reason == "Margin needs a decision." + (suffix or "")
    assert with_reminder(finding, gate_rule, {}, NOW) == finding  # new: no reminder yet


def test_a_kpi_far_ahead_of_its_path_gets_no_gate() -> None:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    ahead = kpi("margin")
    fast = [Measurement("margin", START + timedelta(days=30 * i), 1.46 * 10 * 30 * i / 364)
            for i in range(6)]
    assessor = Assessor(load_rulebook(packs, [ahead]).signals)
    try:
        found = assessor.assess([], [], [ahead], NOW, kpi_statuses([ahead], fast, NOW), fast)
    finally:
        assessor.close()
    assert not [f for f in found if f.signal == "gate"]
