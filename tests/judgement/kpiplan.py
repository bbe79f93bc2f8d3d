"""Planted KPI series for the judgement benchmark: each class of KPI (on its path, far ahead,
slow, flat behind, worsening, band...) built so its status, trend and tolerance verdict are
unambiguous, with the README's formulas ("KPIs and their status") used only to keep margins."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

DAY = timedelta(days=1)
WINDOW = 8  # the status's trend window (README: the last 8 values)
VAR_GATE = 1_000_000.0

# Directional classes: (status group, trend, elapsed-fraction range, progress factor range).
# Progress is the share of the planned change: on the straight path it is elapsed / span.
DIRECTIONAL = {
    "on_track": ("on_track", "improving", (0.3, 0.7), (1.02, 1.12)),
    "ahead": ("on_track", "improving", (0.38, 0.55), (1.5, 1.65)),
    "slow": ("slipping", "improving", (0.45, 0.8), (0.3, 0.5)),
    "flat_behind": ("slipping", "flat", (0.45, 0.85), (-0.03, 0.12)),
    "flat_early": ("slipping", "flat", (0.0, 0.0), (-0.01, 0.02)),
    "worsening": ("slipping", "worsening", (0.35, 0.8), (0.5, 1.0)),
    "unknown": ("unknown", None, (0.3, 0.7), (1.0, 1.05)),
}
BAND = {"band_in": ("on_track", "flat"), "band_out": ("slipping", "flat")}
CLOSED_LIFECYCLES = ("retired", "achieved", "paused", "dropped", "missed", "achieved_retired")

UNITS = [  # (unit, baseline range, change range, decimals, natural direction)
    ("%", (20.0, 80.0), (3.0, 15.0), 2, None),
    ("$M", (0.0, 5.0), (2.0, 12.0), 3, "up"),
    ("days", (30.0, 60.0), (5.0, 20.0), 2, "down"),
    ("", (100.0, 2000.0), (50.0, 800.0), 1, None),
]


@dataclass
class KpiPlan:
    """One KPI as written to kpis.yaml, plus what was planted: its class, series and the
    verdicts the benchmark relies on (status group, trend, tolerance, value at risk)."""

    id: str
    name: str
    cls: str
    lifecycle: str = "active"
    direction: str = "up"  # up, down or band
    band: tuple[float, float] | None = None
    unit: str = ""
    baseline: float | None = None
    baseline_date: datetime | None = None
    target: float | None = None
    deadline: datetime | None = None
    weight: float = 1.0
    stake: float | None = None
    lag_days: int = 0
    tolerance: float | None = None
    lifecycle_changed: datetime | None = None
    achieved_on: datetime | None = None
    retired_on: datetime | None = None
    owner: str = ""
    owner_handles: dict[str, str] = field(default_factory=dict)
    guardrails: list[dict] = field(default_factory=list)  # {kpi, floor|ceiling}
    tradeoffs: list[str] = field(default_factory=list)
    anchors: dict[str, str] = field(default_factory=dict)
    series: list[tuple[datetime, float]] = field(default_factory=list)
    # planted verdicts (active KPIs)
    group: str = "unknown"  # on_track, slipping, unknown; closed KPIs: their lifecycle
    trend: str | None = None
    behind: bool = False  # outside its tolerance band on the wrong side (band: outside)
    ahead: bool = False
    var: float | None = None  # value at risk as the README defines it

    @property
    def active(self) -> bool:
        return self.lifecycle == "active"

    @property
    def closed_on(self) -> datetime | None:
        dates = [d for d in (self.lifecycle_changed, self.achieved_on, self.retired_on) if d]
        return min(dates) if dates and not self.active else None

    @property
    def latest(self) -> float | None:
        return self.series[-1][1] if self.series else None

    @property
    def slipping(self) -> bool:
        return self.active and self.group == "slipping"

    @property
    def gate(self) -> bool:
        """the signal definitions: outside its tolerance band on the wrong side, or value at risk
        of 1,000,000 or more; never when ahead of its path."""
        if not self.active or self.ahead or not self.series:
            return False
        return self.behind or (self.var is not None and self.var >= VAR_GATE)


# -- README formulas, used for margins only ---------------------------------------------------


def theil_sen(points: list[tuple[float, float]]) -> tuple[float, float]:
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points)
              for x2, y2 in points[i + 1:] if x2 != x1]
    slope = median(slopes)
    return slope, median(y - slope * x for x, y in points)


def slope_error(points: list[tuple[float, float]], slope: float, intercept: float) -> float:
    """The slope's standard error from the robust scatter (README `noise_t`)."""
    n = len(points)
    spread = 1.4826 * median(abs(y - intercept - slope * x) for x, y in points)
    mean_x = sum(x for x, _ in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    t = {4: 4.30, 5: 3.18, 6: 2.78, 7: 2.57, 8: 2.45}.get(n, 2.45)
    return spread / math.sqrt(sxx) * t / 1.96 if sxx > 0 else 0.0


def _days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400.0


def expected(plan: KpiPlan, now: datetime) -> float:
    """The straight expected path at now - lag (no interim targets are planted)."""
    assert plan.baseline is not None and plan.target is not None
    assert plan.baseline_date is not None and plan.deadline is not None
    t = now - timedelta(days=plan.lag_days)
    share = min(1.0, max(0.0, _days(plan.baseline_date, t) / _days(plan.baseline_date, plan.deadline)))
    return plan.baseline + (plan.target - plan.baseline) * share


def tolerance(plan: KpiPlan) -> float:
    if plan.tolerance is not None:
        return plan.tolerance
    assert plan.baseline is not None and plan.target is not None
    return 0.1 * abs(plan.target - plan.baseline)


def fit(plan: KpiPlan, now: datetime) -> tuple[float, float, float]:
    """(slope per day, its standard error, forecast at the horizon) over the last 8 values."""
    recent = plan.series[-WINDOW:]
    origin = recent[0][0]
    points = [(_days(origin, at), v) for at, v in recent]
    slope, intercept = theil_sen(points)
    horizon = plan.deadline or (now + timedelta(days=28))
    return slope, slope_error(points, slope, intercept), intercept + slope * _days(origin, horizon)


NO_IMPACT_DAYS = 90
START_READINGS = ("before", "interp", "after")


def value_at(points: list[tuple[datetime, float]], t: datetime, how: str) -> float:
    """The series' value at ``t``: the last value at or before it, the first at or after it,
    or linearly interpolated (the ends when ``t`` is outside the series)."""
    before = [p for p in points if p[0] <= t]
    after = [p for p in points if p[0] >= t]
    if not before:
        return points[0][1]
    if not after:
        return points[-1][1]
    if how == "before":
        return before[-1][1]
    if how == "after":
        return after[0][1]
    (ta, va), (tb, vb) = before[-1], after[0]
    return va if tb == ta else va + (vb - va) * _days(ta, t) / _days(ta, tb)


def moved_share(plan: KpiPlan, now: datetime, how: str = "before",
                with_baseline: bool = True, back_days: int = NO_IMPACT_DAYS) -> float | None:
    """How far the KPI moved towards its target from the no_impact window's start, shifted by
    the lag (now - 90 days), to its latest value, as a share of the distance that remained
    then; negative when it moved away. None for band KPIs or without values."""
    if plan.direction == "band" or not plan.series or plan.target is None:
        return None
    points = list(plan.series)
    if with_baseline and plan.baseline_date is not None and plan.baseline is not None \
            and plan.baseline_date < points[0][0]:
        points.insert(0, (plan.baseline_date, plan.baseline))
    start = value_at(points, now - timedelta(days=back_days), how)
    remaining = plan.target - start
    if remaining * (1.0 if plan.direction == "up" else -1.0) <= 0:
        return None
    return (points[-1][1] - start) / remaining


# -- planting ---------------------------------------------------------------------------------


def _noise(rng: random.Random, n: int, sigma: float) -> list[float]:
    """Clipped noise with the Theil-Sen slope of its last 8 values removed, so the series'
    fitted slope is exactly the planted one (Theil-Sen shifts with an added line)."""
    e = [max(-2 * sigma, min(2 * sigma, rng.gauss(0.0, sigma))) for _ in range(n)]
    k = min(n, WINDOW)
    if k >= 3:
        idx = list(range(n - k, n))
        slope, _ = theil_sen([(float(i), e[i]) for i in idx])
        e = [v - slope * i for i, v in enumerate(e)]
        centre = median(e[i] for i in idx)
        e = [v - centre for v in e]
    return e


def _times(rng: random.Random, now: datetime, start: datetime, n: int) -> list[datetime]:
    """``n`` weekly measurement times ending 1-6 days before ``now``, none before ``start``."""
    last = (now - timedelta(days=rng.randint(1, 6))).replace(hour=0, minute=0, second=0)
    times = [last - timedelta(days=7 * j) for j in range(n)]
    return sorted(t for t in times if t >= start)


def plan_directional(rng: random.Random, kid: str, cls: str, now: datetime, weight: float,
                     stake_wanted: str | None = None) -> KpiPlan:
    """A directional KPI of class ``cls`` whose planted verdicts hold with clear margins.
    ``stake_wanted``: None (no stake), "high" (value at risk clearly >= 1M) or "low" (a
    stake of 0.5M-9M, its value at risk clear of 1M either way)."""
    for _ in range(200):
        plan = _try_directional(rng, kid, cls, now, weight, stake_wanted)
        if plan is not None:
            return plan
    raise RuntimeError(f"cannot plant a clear {cls} KPI")  # pragma: no cover


def _try_directional(rng: random.Random, kid: str, cls: str, now: datetime, weight: float,
                     stake_wanted: str | None) -> KpiPlan | None:
    group, trend, (el_lo, el_hi), (f_lo, f_hi) = DIRECTIONAL[cls]
    unit, (b_lo, b_hi), (d_lo, d_hi), decimals, natural = rng.choice(UNITS)
    direction = natural or rng.choice(["up", "down"])
    if cls == "flat_early":
        span = rng.randint(650, 900)
        elapsed = rng.randint(58, 75)
    else:
        span = rng.randint(220, 480)
        elapsed = round(rng.uniform(el_lo, el_hi) * span)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    bdate = today - timedelta(days=elapsed)
    deadline = bdate + timedelta(days=span)
    b = round(rng.uniform(b_lo, b_hi), 1)
    change = round(rng.uniform(d_lo, d_hi), 1)
    sign = 1.0 if direction == "up" else -1.0
    if direction == "down" and b - change < 0.5:
        b = round(change + rng.uniform(1, 10), 1)
    target = round(b + sign * change, 1)
    delta = target - b
    lag = rng.choice([0, 7, 30, 45, 45] if cls == "flat_behind" else [0, 0, 0, 7, 14, 21, 30, 45])
    lag = min(lag, int(0.12 * span))
    tol = None if rng.random() < 0.6 else round(abs(delta) * rng.uniform(0.07, 0.15), 3)
    f = rng.uniform(f_lo, f_hi)
    n = rng.randint(6, 16)
    # A flat KPI that stepped up before the lag-shifted window start and not since: the
    # window's start value must be read after the lag shift to see no movement.
    step, step_at = 0.0, now
    if cls == "flat_behind" and lag >= 28 and rng.random() < 0.6:
        step = rng.uniform(0.2, 0.3)
        step_at = now - timedelta(days=NO_IMPACT_DAYS + rng.uniform(10, lag - 10))
        n = (NO_IMPACT_DAYS + lag + 14) // 7 + rng.randint(1, 3)
    if cls == "unknown":
        n = rng.choice([0, 0, 1, 2, 3])
    times = _times(rng, now, bdate, n)
    if cls != "unknown" and len(times) < 6:
        return None
    sigma = abs(delta) * {"flat_behind": rng.uniform(0.003, 0.01), "flat_early": 0.003}.get(
        cls, rng.uniform(0.002, 0.009))
    noise = _noise(rng, len(times), sigma)
    p_end = rng.uniform(-0.08, 0.15)

    def progress(at: datetime) -> float:
        t = _days(bdate, at) / span
        if cls in ("flat_behind", "flat_early"):
            return f - (step if at < step_at else 0.0)
        if cls == "worsening":  # f is the rate away from the target; ends near p_end
            return p_end + f * (_days(at, now) / span)
        return f * t

    series = [(at, round(b + delta * progress(at) + noise[i], decimals)) for i, at in enumerate(times)]
    plan = KpiPlan(id=kid, name="", cls=cls, direction=direction, unit=unit, baseline=b,
                   baseline_date=bdate, target=target, deadline=deadline, weight=weight,
                   lag_days=lag, tolerance=tol, series=series, group=group, trend=trend)
    if cls == "unknown" or not series:
        plan.trend = None
        if series:  # a few values on the path: within tolerance, never a gate
            gap = (expected(plan, now) - series[-1][1]) * sign
            if gap > 0.5 * tolerance(plan):
                return None
        return plan
    # Every value stays short of the target (an active KPI at its target is achieved).
    if any((v - target) * sign >= -0.02 * abs(delta) for _, v in series):
        return None
    E, tol_v, v = expected(plan, now), tolerance(plan), series[-1][1]
    behind_by = (E - v) * sign
    if abs(behind_by - tol_v) < 0.35 * tol_v or abs(-behind_by - tol_v) < 0.35 * tol_v:
        return None
    plan.behind, plan.ahead = behind_by > tol_v, -behind_by > tol_v
    slope, error, forecast = fit(plan, now)
    fa = (forecast - b) / delta
    if group == "on_track" and fa < 0.97:
        return None
    if group == "slipping" and fa > 0.8:
        return None
    if trend in ("improving", "worsening"):
        if abs(slope) < 4 * error or abs(slope) * span < 0.15 * abs(delta):
            return None
        if (slope * sign > 0) != (trend == "improving"):
            return None
    elif trend == "flat" and abs(slope) > 0.5 * max(2 * error, 0.05 * abs(delta) / span):
        return None
    if group == "slipping":  # clear of no_impact's 10 % line whichever start value is read
        shares = [moved_share(plan, now, how, base) for how in START_READINGS
                  for base in (True, False)]
        if any(s is None for s in shares) or not (max(shares) < 0.06 or min(shares) > 0.14):
            return None
    shortfall = min(1.0, max(0.0, 1.0 - fa))
    if stake_wanted == "high":
        if shortfall < 0.3:
            return None
        plan.stake = float(round(rng.uniform(1.6, 4.0) * VAR_GATE / shortfall, -4))
    elif stake_wanted == "low":
        plan.stake = float(round(rng.uniform(0.5, 9.0) * VAR_GATE, -4))
    plan.var = (plan.stake if plan.stake is not None else weight) * shortfall
    if plan.var is not None and 0.6 * VAR_GATE < plan.var < 1.5 * VAR_GATE:
        return None
    return plan


def plan_band(rng: random.Random, kid: str, cls: str, now: datetime, weight: float) -> KpiPlan:
    """A band KPI (stay inside [low, high]), well inside or clearly outside, and flat."""
    group, trend = BAND[cls]
    low = round(rng.uniform(50, 95), 1)
    width = round(rng.uniform(2, 10), 1)
    high = round(low + width, 1)
    times = _times(rng, now, now - timedelta(days=400), rng.randint(6, 14))
    noise = _noise(rng, len(times), 0.03 * width)
    if cls == "band_in":
        level = low + width * rng.uniform(0.4, 0.6)
    else:
        level = high + width * rng.uniform(0.25, 0.45) if rng.random() < 0.5 else \
            low - width * rng.uniform(0.25, 0.45)
    series = [(at, round(level + noise[i], 3)) for i, at in enumerate(times)]
    return KpiPlan(id=kid, name="", cls=cls, direction="band", band=(low, high), unit="%",
                   weight=weight, lag_days=rng.choice([0, 0, 14]), series=series, group=group,
                   trend=trend, behind=cls == "band_out", var=None)


def plan_closed(rng: random.Random, kid: str, now: datetime, weight: float) -> KpiPlan:
    """A KPI closed 25-150 days ago: retired, achieved, paused, dropped, missed, or achieved
    and later retired (then it closed when it was achieved)."""
    kind = "achieved_retired" if rng.random() < 0.3 else rng.choice(CLOSED_LIFECYCLES)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    closed = today - timedelta(days=rng.randint(25, 150))
    bdate = closed - timedelta(days=rng.randint(120, 240))
    deadline = closed + timedelta(days=rng.randint(30, 200))
    b = round(rng.uniform(10, 50), 1)
    target = round(b + rng.uniform(5, 20), 1)
    plan = KpiPlan(id=kid, name="", cls="closed", lifecycle=kind, baseline=b, baseline_date=bdate,
                   target=target, deadline=deadline, weight=weight)
    if kind == "achieved_retired":
        plan.lifecycle = "retired"
        plan.achieved_on = closed
        plan.retired_on = closed + timedelta(days=rng.randint(15, 20))
        if rng.random() < 0.5:
            plan.lifecycle_changed = plan.retired_on
    elif kind == "achieved" and rng.random() < 0.5:
        plan.achieved_on = closed
    else:
        plan.lifecycle_changed = closed
    times = _times(rng, closed, bdate, rng.randint(6, 10))
    span = _days(bdate, deadline)
    plan.series = [(at, round(b + (target - b) * 1.05 * _days(bdate, at) / span, 2)) for at in times]
    plan.group = {"paused": "paused", "achieved": "achieved"}.get(plan.lifecycle, "retired")
    plan.trend = "improving"  # up to its close; closed, nothing is judged on it
    return plan
