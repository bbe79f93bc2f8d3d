"""no_impact's reading of a trailing window: how much linked work was active and closed in
it, and how far the KPI moved (read ``lag_days`` later) against the distance it still had
to go (kpi-linkage S7, output against outcome, in a window rather than all history)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from tether.model import KPI, Measurement, Task


def closed_at(task: Task) -> datetime | None:
    """When a done item was closed: its resolution date, else its last change."""
    return task.resolved or task.updated if task.status_category == "done" else None


def window_span(kpi: KPI, now: datetime, days: int) -> tuple[datetime, datetime]:
    """The window ends ``lag_days`` before ``now`` and lasts ``days``."""
    end = now - timedelta(days=kpi.lag_days)
    return end - timedelta(days=days), end


def in_window(task: Task, start: datetime, end: datetime) -> tuple[bool, bool]:
    """Whether ``task`` was open at some time in the window, and whether it closed in it."""
    if task.created is not None and task.created > end:
        return False, False
    closed = closed_at(task)
    if task.status_category != "done":
        return True, False
    if closed is None or closed < start:
        return False, False
    return True, closed <= end


def window_facts(kpi: KPI, items: int, done: int, measurements: Iterable[Measurement],
                 now: datetime, days: int) -> dict[str, Any]:
    """The window's facts from its counts (``in_window`` over the KPI's linked items); the
    KPI's movement is read over the same span shifted by the lag, so it ends now."""
    start, end = window_span(kpi, now, days)
    share = done / items if items else 0.0
    moved = moved_share(kpi, measurements, start + timedelta(days=kpi.lag_days), now)
    return {"window_days": days, "window_start": start.date().isoformat(),
            "window_end": end.date().isoformat(), "window_items": items,
            "window_done": done, "window_done_share": round(share, 4),
            "window_done_pct": round(100 * share), "window_moved_share":
            None if moved is None else round(moved, 4),
            "window_moved_pct": None if moved is None else round(100 * moved)}


def moved_share(kpi: KPI, measurements: Iterable[Measurement], since: datetime,
                now: datetime) -> float | None:
    """How far the KPI moved toward its target from ``since`` to its latest value by
    ``now``, over the distance that remained at ``since`` (band KPIs: to the band). None
    when fewer than two values span the period or nothing remained to be done."""
    series = sorted((m.at, m.value) for m in measurements if m.kpi == kpi.id and m.at <= now)
    if len(series) < 2:
        return None
    before = [v for at, v in series if at <= since]
    first = before[-1] if before else series[0][1]
    last = series[-1][1]
    if kpi.is_band and kpi.band is not None:
        low, high = kpi.band

        def distance(v: float) -> float:
            return max(low - v, v - high, 0.0)

        gap = distance(first)
        return (gap - distance(last)) / gap if gap > 0 else None
    if kpi.target is None:
        return None
    sign = -1.0 if kpi.direction == "down" else 1.0
    gap = (kpi.target - first) * sign
    return (last - first) * sign / gap if gap > 0 else None
