"""Does finished work move the number? Spearman's rho between weekly done effort on a KPI
and the KPI's weekly change, the change read `lag_days` later (kpi-linkage S7)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import datetime, timedelta

from ..model import KPI, Measurement, Task

WEEKS = 8  # the trailing window, in weeks


def _value_at(series: list[tuple[datetime, float]], when: datetime) -> float | None:
    """Linear interpolation inside the measured range; None outside it."""
    if not series or when < series[0][0] or when > series[-1][0]:
        return None
    i = bisect_left([t for t, _ in series], when)
    if series[i][0] == when:
        return series[i][1]
    (t0, v0), (t1, v1) = series[i - 1], series[i]
    return v0 + (v1 - v0) * (when - t0) / (t1 - t0)


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2  # ties share their average rank
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Rank correlation, or None when either series is constant (no ranking to compare)."""
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return None if vx == 0 or vy == 0 else round(cov / (vx * vy) ** 0.5, 4)


def impact(kpi: KPI, measurements: Iterable[Measurement], done: Iterable[Task], now: datetime
           ) -> tuple[float | None, int]:
    """(rho, weeks compared) for one KPI; weeks count only where the lagged change is known."""
    series = sorted((m.at, m.value) for m in measurements if m.kpi == kpi.id)
    sign = -1.0 if kpi.direction == "down" else 1.0
    lag = timedelta(days=kpi.lag_days)
    finished = [(t.resolved or t.updated, t.estimate or 1.0) for t in done]
    effort, change = [], []
    for week in range(WEEKS):
        end = now - lag - timedelta(weeks=WEEKS - 1 - week)
        start = end - timedelta(weeks=1)
        before, after = _value_at(series, start + lag), _value_at(series, end + lag)
        if before is None or after is None:
            continue
        effort.append(sum(size for when, size in finished if when and start <= when < end))
        change.append(sign * (after - before))
    if len(effort) < 2:
        return None, len(effort)
    return spearman(effort, change), len(effort)
