"""no_impact's second reading: does finished work go with the KPI's movement, week by week?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tether.kpistatus import kpi_statuses
from tether.model import KPI, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor
from tether.plugins import Plugins
from tether.rules.impact import impact, spearman
from tether.rules.loader import load_rulebook

NOW = datetime(2025, 7, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)


def test_spearman_matches_hand_computed_ranks() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9487, abs=1e-4)  # ties
    assert spearman([5, 5, 5], [1, 2, 3]) is None


def weekly(kid: str, steps: list[float]) -> list[Measurement]:
    """Values at the start of each of the last len(steps)+1 weeks, rising by ``steps``."""
    first = NOW - timedelta(weeks=len(steps))
    values, value = [Measurement(kid, first, 0.0)], 0.0
    for i, step in enumerate(steps, start=1):
        value += step
        values.append(Measurement(kid, first + timedelta(weeks=i), value))
    return values


def done_in_weeks(counts: list[int]) -> list[Task]:
    first = NOW - timedelta(weeks=len(counts))
    return [Task("s", f"T-{w}-{i}", "t", status_category="done",
                 resolved=first + timedelta(weeks=w, days=2))
            for w, n in enumerate(counts) for i in range(n)]


def test_work_that_moves_the_number_correlates() -> None:
    kpi = KPI("k", "K")
    rho, weeks = impact(kpi, weekly("k", [1, 3, 2, 5, 1, 4, 2, 3]),
                        done_in_weeks([1, 3, 2, 5, 1, 4, 2, 3]), NOW)
    assert weeks == 8 and rho == 1.0


def test_lag_reads_the_change_later_and_down_kpis_count_falls_as_progress() -> None:
    down = KPI("k", "K", direction="down", lag_days=7)
    work = [3, 2, 5, 1, 4, 2, 3, 9, 0]  # done per week over nine weeks
    values = weekly("k", [-1] + [-n for n in work[:8]])  # each week's work shows a week later
    rho, weeks = impact(down, values, done_in_weeks(work), NOW)
    assert (rho, weeks) == (1.0, 8)
    no_lag = KPI("k", "K", direction="down")
    assert impact(no_lag, values, done_in_weeks(work), NOW)[0] < 0.5


def test_no_impact_trend_fires_when_work_and_movement_do_not_go_together() -> None:
    kpi = KPI("k", "K", owner="Dana", baseline=0.0, baseline_date=START, target=100.0,
              deadline=datetime(2025, 12, 31, tzinfo=UTC))
    history = [Measurement("k", START, 0.0)] + weekly("k", [3, 0.5, 2, 0.1, 2.5, 0.2, 1, 0.3])
    tasks = done_in_weeks([0, 4, 1, 5, 0, 3, 1, 4])
    maps = [Mapping(t.ref, "k", "r", 1.0, "") for t in tasks]
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    assessor = Assessor(load_rulebook(packs, [kpi]).signals)
    try:
        found = assessor.assess(tasks, maps, [kpi], NOW, kpi_statuses([kpi], history, NOW),
                                history)
    finally:
        assessor.close()
    trend = [f for f in found if f.rule_id == "no-impact-trend"]
    assert [f.subject for f in trend] == ["kpi:k"]
    assert "over 8 weeks" in trend[0].reason and "rho -" in trend[0].reason
