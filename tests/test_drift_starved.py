"""The starved signal: a weighted KPI slipping with little open work, through the drift pack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tether.kpistatus import kpi_statuses
from tether.model import KPI, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor
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
        return assessor.assess(tasks, mappings, kpis, NOW, statuses), statuses
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
    assert "0 open items" in starved[0].reason and starved[0].severity == "critical"
    assert starved[0].advice.startswith("Dana:")


def test_weight_below_the_parameter_is_not_starved() -> None:
    findings, _ = assess([kpi("margin", weight=1.0)], [], [],
                         params={"starved": {"min_weight": 2}})
    assert not [f for f in findings if f.signal == "starved"]


def test_unknown_status_is_never_starved() -> None:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    kpis = [kpi("margin")]
    assessor = Assessor(load_rulebook(packs, kpis).signals)
    try:
        findings = assessor.assess([], [], kpis, NOW, kpi_statuses(kpis, [], NOW))
    finally:
        assessor.close()
    assert not [f for f in findings if f.signal == "starved"]
