"""The facts KPI-level drift rules see: shares of open effort and of priority weight."""

from __future__ import annotations

import pytest
from tether.model import KPI, Mapping, Task
from tether.rules.signals import kpi_facts

KPIS = [KPI("a", "A", weight=3), KPI("b", "B", weight=1), KPI("old", "Old", lifecycle="retired")]


def task(key: str, estimate: float | None = None, done: bool = False) -> Task:
    return Task("s", key, key, estimate=estimate, status_category="done" if done else "todo")


def test_open_effort_is_split_by_rule_weight_and_counted_once() -> None:
    tasks = [task("1", 4), task("2"), task("3", 8, done=True), task("4", 2)]
    maps = [Mapping("s:1", "a", "r", 1.0, ""), Mapping("s:1", "b", "r", 1.0, ""),
            Mapping("s:2", "b", "r", 1.0, ""), Mapping("s:3", "a", "r", 1.0, ""),
            Mapping("s:4", "old", "r", 1.0, "")]
    facts = kpi_facts(KPIS, tasks, maps)
    assert facts["a"]["open_effort"] == 2 and facts["b"]["open_effort"] == 3  # 4 split, +1
    assert facts["a"]["open_items"] == 1 and facts["b"]["open_items"] == 2
    assert facts["a"]["effort_share"] == pytest.approx(0.4)
    assert facts["a"]["weight_share"] == pytest.approx(0.75)
    assert facts["a"]["share_gap"] == pytest.approx(-0.35) and facts["a"]["effort_pct"] == 40
    assert facts["old"]["weight_share"] == 0 and facts["old"]["open_effort"] == 0


def test_no_open_work_means_zero_shares_not_an_error() -> None:
    facts = kpi_facts(KPIS, [task("1", done=True)], [Mapping("s:1", "a", "r", 1.0, "")])
    assert facts["a"]["effort_share"] == 0 and facts["a"]["share_gap"] == pytest.approx(-0.75)


def test_total_variation_distance_of_effort_against_weight() -> None:
    tasks = [task("1", 4), task("2")]
    maps = [Mapping("s:1", "a", "r", 1.0, ""), Mapping("s:2", "b", "r", 1.0, "")]
    facts = kpi_facts(KPIS, tasks, maps)
    # effort 0.8 / 0.2 against weight 0.75 / 0.25: half the summed gaps
    assert facts["a"]["allocation_tvd"] == pytest.approx(0.05)
    assert facts["b"]["allocation_tvd"] == facts["a"]["allocation_tvd"]
