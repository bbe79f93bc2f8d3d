"""Task-level drift signals of the built-in pack: untethered, zombie, stalled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tether.kpistatus import kpi_statuses
from tether.model import KPI, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor
from tether.plugins import Plugins
from tether.rules.loader import load_rulebook

NOW = datetime(2025, 7, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)
CLOSED = datetime(2025, 5, 1, tzinfo=UTC)


def signals_of(task: Task, kpis: list[KPI], measurements=()) -> set[str]:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    assessor = Assessor(load_rulebook(packs, kpis).signals)
    mappings = [Mapping(task.ref, k.id, "r", 1.0, "") for k in kpis]
    try:
        found = assessor.assess([task], mappings, kpis, NOW,
                                kpi_statuses(kpis, list(measurements), NOW))
    finally:
        assessor.close()
    return {f.signal for f in found if f.subject == task.ref}


def item(updated: datetime, category: str = "in_progress") -> Task:
    return Task("jira", "OPS-1", "Migrate reports", type="Task", status_category=category,
                created=START, updated=updated)


@pytest.mark.parametrize("changed, updated, expected", [
    (CLOSED, CLOSED + timedelta(days=10), {"zombie"}),  # kept moving after the close
    (CLOSED, CLOSED - timedelta(days=10), {"untethered"}),  # untouched since: a stale link
    (None, NOW, {"untethered"}),  # close date unknown: never call it a zombie
])
def test_work_on_a_retired_kpi(changed, updated, expected) -> None:
    retired = KPI("legacy", "Legacy", lifecycle="retired", lifecycle_changed=changed)
    assert signals_of(item(updated), [retired]) == expected


def test_done_work_on_a_retired_kpi_is_not_flagged() -> None:
    retired = KPI("legacy", "Legacy", lifecycle="retired", lifecycle_changed=CLOSED)
    assert signals_of(item(NOW, "done"), [retired]) == set()


def test_one_active_kpi_is_enough_to_be_tethered() -> None:
    kpis = [KPI("legacy", "Legacy", lifecycle="achieved", lifecycle_changed=CLOSED),
            KPI("nps", "NPS")]
    assert signals_of(item(NOW), kpis) == set()


def slipping_kpi() -> tuple[KPI, list[Measurement]]:
    kpi = KPI("margin", "Margin", baseline=0.0, baseline_date=START, target=10.0,
              deadline=datetime(2025, 12, 31, tzinfo=UTC))
    history = [Measurement("margin", START + timedelta(days=30 * i), 1.0) for i in range(6)]
    return kpi, history


@pytest.mark.parametrize("idle, expected", [(20, {"stalled"}), (14, {"stalled"}), (3, set())])
def test_idle_work_on_a_slipping_kpi_is_stalled(idle: int, expected: set[str]) -> None:
    kpi, history = slipping_kpi()
    assert signals_of(item(NOW - timedelta(days=idle)), [kpi], history) == expected


def test_idle_work_on_a_kpi_without_status_is_not_stalled() -> None:
    kpi, _ = slipping_kpi()
    assert signals_of(item(NOW - timedelta(days=60)), [kpi]) == set()
