"""The maths of a KPI's status, without words: its measured series, attainment, the
expected path, the tolerance band, and the robust trend and forecast (Theil-Sen, with the
slope's noise from the series' own scatter)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import combinations
from statistics import median

from tether.model import KPI, Checkpoint, Measurement

CLOSED = ("achieved", "missed", "dropped", "retired")
_DAY = 86400.0


@dataclass(frozen=True)
class Thresholds:
    """When a KPI counts as at risk or off track; every default with its origin.

    - ``off_track_below`` 0.75 and ``at_risk_below`` 0.90: forecast attainment at the
      deadline (S3). ServiceNow SPM's achievement bands: red < 75, amber 75-89, green >= 90.
    - ``pace_off_track_below`` 0.40 and ``pace_at_risk_below`` 0.70: attainment over the
      attainment the expected path asks for by now (S2). Oboard's pace ratio bands.
    - ``min_points`` 4: a trend needs at least four observations (S3, "n >= 4"); fewer
      and the status is unknown, never guessed.
    - ``window`` 8: the trend is fitted over the last 8 observations (two months of weekly
      values). Tether's choice: recent enough to follow a change of course.
    - ``tolerance_share`` 0.10: a KPI's tolerance band, when it declares none, is
      +/- 10% of |target - baseline| around the expected path (S4; InnovationMinds'
      "within 10 %" and Planview AgilePlace's "within 10 pp" bands).
    - ``flat_share`` 0.05: a trend that would move the value less than 5% of the planned
      change (band KPIs: of the band's width) over the KPI's whole window is flat, neither
      improving nor worsening. Tether's choice, so noise is not read as a direction.
    - ``noise_t`` 2.0: a slope within this many standard errors of zero is flat too, the
      standard error taken from the series' own scatter around the fitted line (robust:
      1.4826 x the median absolute residual), widened to Student's t for small samples.
    - ``horizon_days`` 28: band KPIs without a deadline are forecast four weeks ahead.
      Tether's choice (one monthly review).
    """

    off_track_below: float = 0.75
    at_risk_below: float = 0.90
    pace_off_track_below: float = 0.40
    pace_at_risk_below: float = 0.70
    min_points: int = 4
    window: int = 8
    tolerance_share: float = 0.10
    flat_share: float = 0.05
    noise_t: float = 2.0
    horizon_days: int = 28


# -- robust trend ---------------------------------------------------------------------------


def theil_sen(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the Theil-Sen line through ``(x, y)`` points: the median of the
    pairwise slopes, and the median of ``y - slope * x``. Robust to a minority of outliers
    (breakdown point about 29%). Needs two points with different x."""
    slopes = [(y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in combinations(points, 2)
              if x2 != x1]
    if not slopes:
        raise ValueError("Theil-Sen needs at least two points at different times")
    slope = median(slopes)
    return slope, median(y - slope * x for x, y in points)


# Two-sided 95% Student's t by degrees of freedom, so four points are not read as a trend
# with the confidence of forty; over 30 the normal 1.96 is close enough.
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
        10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04}


def slope_noise(points: Sequence[tuple[float, float]], slope: float, intercept: float) -> float:
    """The fitted slope's standard error from the scatter of the points around the line,
    scaled by t/1.96 for small samples: a robust spread (1.4826 x median absolute residual,
    the normal-consistent MAD) over sqrt(sum (x - mean x)^2), as for least squares."""
    n = len(points)
    residuals = [y - (intercept + slope * x) for x, y in points]
    spread = 1.4826 * median(abs(r) for r in residuals)
    mean_x = sum(x for x, _ in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx <= 0 or n < 3:
        return 0.0
    df = n - 2
    t = next((v for k, v in sorted(_T95.items(), reverse=True) if df >= k), _T95[1])
    return spread / math.sqrt(sxx) * t / 1.96


def utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def days(a: datetime, b: datetime) -> float:
    """b - a in days."""
    return (b - a).total_seconds() / _DAY


class KpiFacts:
    """A KPI's facts at ``now``: the series it is judged on, and the numbers read from it."""

    b: float | None  # baseline value
    t0: datetime | None  # baseline time
    value_at: datetime | None
    value: float | None

    def __init__(self, kpi: KPI, measurements: list[Measurement], now: datetime,
                 th: Thresholds):
        self.kpi, self.th = kpi, th
        lifecycle = kpi.lifecycle
        closed = kpi.closed_on or kpi.lifecycle_changed
        changed = utc(closed) if closed else None
        if lifecycle != "active" and changed is not None and now < changed:
            lifecycle = "active"  # judged before it changed: it was still being pursued
        self.lifecycle = lifecycle
        self.changed = changed
        # A closed KPI is frozen at its close: later values no longer count.
        self.asof = min(now, changed) if lifecycle in CLOSED and changed else now
        seen: dict[datetime, float] = {}
        start = utc(kpi.baseline_date) if kpi.baseline_date else None
        for m in sorted(measurements, key=lambda m: utc(m.at)):
            at = utc(m.at)
            if m.kpi == kpi.id and at <= self.asof and (start is None or at >= start):
                seen.setdefault(at, m.value)  # a repeated time keeps its first value
        self.series = sorted(seen.items())
        # Without a declared baseline, the first measurement is the baseline.
        if kpi.baseline is not None and start is not None:
            self.b, self.t0 = kpi.baseline, start
        elif self.series:
            self.t0, self.b = self.series[0]
        else:
            self.b, self.t0 = None, None
        self.tgt = kpi.target
        self.t1 = utc(kpi.deadline) if kpi.deadline else None
        self.value_at, self.value = self.series[-1] if self.series else (None, None)
        self.band = kpi.band if kpi.is_band else None
        self.sign = -1.0 if kpi.direction == "down" else 1.0

    def attainment(self, v: float | None) -> float | None:
        """S1, for value ``v``."""
        if v is None:
            return None
        if self.band:
            low, high = self.band
            dist = max(low - v, v - high, 0.0)
            return max(0.0, 1.0 - dist / (high - low))
        if self.tgt is None or self.b is None or self.tgt == self.b:
            return None
        return (v - self.b) / (self.tgt - self.b)

    def expected(self) -> float | None:
        """The expected path at now - lag: baseline -> interim targets -> target."""
        tgt, t1, b, t0 = self.tgt, self.t1, self.b, self.t0
        if self.band or tgt is None or t1 is None or b is None or t0 is None:
            return None
        knots = [(t0, b), *((utc(c.at), c.value) for c in self.kpi.interim), (t1, tgt)]
        knots = sorted(k for k in knots if k[0] >= t0)
        t = self.asof - timedelta(days=self.kpi.lag_days)
        if t <= knots[0][0]:
            return knots[0][1]
        for (ta, va), (tb, vb) in zip(knots, knots[1:], strict=False):
            if t <= tb:
                span = days(ta, tb)
                return vb if span <= 0 else va + (vb - va) * days(ta, t) / span
        return knots[-1][1]

    def tolerance(self) -> float | None:
        if self.kpi.tolerance is not None:
            return self.kpi.tolerance
        if self.band:
            return 0.0
        if self.tgt is None or self.b is None:
            return None
        return self.th.tolerance_share * abs(self.tgt - self.b)

    def horizon(self) -> datetime | None:
        if self.t1 is not None:
            return self.t1
        return self.asof + timedelta(days=self.th.horizon_days) if self.band else None

    def fit(self) -> tuple[float, float] | None:
        """Theil-Sen (slope per day, forecast at the horizon), if there are enough points."""
        horizon = self.horizon()
        if len(self.series) < self.th.min_points or horizon is None:
            return None
        recent = self.series[-max(self.th.window, self.th.min_points):]
        origin = recent[0][0]
        points = [(days(origin, at), v) for at, v in recent]
        slope, intercept = theil_sen(points)
        self.line = (origin, slope, intercept)
        self.noise = slope_noise(points, slope, intercept)
        return slope, self.predict(horizon)

    def predict(self, at: datetime) -> float:
        """The fitted trend line's value at ``at`` (after ``fit``)."""
        origin, slope, intercept = self.line
        return intercept + slope * days(origin, at)

    def next_interim(self) -> Checkpoint | None:
        """The first interim target after now that asks for progress from the baseline."""
        for c in self.kpi.interim:
            if utc(c.at) > self.asof and self.b is not None and (c.value - self.b) * self.sign > 0:
                return c
        return None

    def within_noise(self, slope: float) -> bool:
        """The slope is indistinguishable from zero given the series' own scatter."""
        return abs(slope) <= self.th.noise_t * self.noise

    def trend(self, slope: float) -> str:
        if self.within_noise(slope):
            return "flat"
        if self.band:
            low, high = self.band
            span: float = max(self.th.horizon_days, 1)
            if abs(slope) * span < self.th.flat_share * (high - low):
                return "flat"
            v = self.value if self.value is not None else (low + high) / 2
            # Outside: towards the band is better; inside: towards the middle is better.
            towards = (low + high) / 2 - v
            if v < low:
                towards = 1.0
            elif v > high:
                towards = -1.0
            return "improving" if slope * towards > 0 else "worsening"
        assert self.tgt is not None and self.b is not None and self.t1 is not None
        assert self.t0 is not None
        span = max(days(self.t0, self.t1), 1.0)
        if abs(slope) * span < self.th.flat_share * abs(self.tgt - self.b):
            return "flat"
        return "improving" if slope * self.sign > 0 else "worsening"

    def reached(self, v: float) -> bool:
        assert self.tgt is not None
        return v >= self.tgt if self.sign > 0 else v <= self.tgt

    def at_stake(self) -> float:
        return self.kpi.stake if self.kpi.stake is not None else self.kpi.weight
