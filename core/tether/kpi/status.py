"""The status of each KPI at a point in time, from its definition and measured history.

A pure function of its inputs: ``kpi_status(kpi, measurements, now, thresholds)``. The
signals and their default thresholds follow the research note kpi-linkage.md, sections 3
and 7 (S1 attainment, S2 pace, S3 forecast shortfall, S4 tolerance band, S16 value at
risk); the provenance of every default is on ``Thresholds``.

Lifecycles map to statuses as follows: ``paused`` -> paused; ``achieved`` -> achieved;
``retired``, ``dropped`` and ``missed`` -> retired (closed: nothing more can be won, so
nothing is at risk and no work should be drawn to it; ``lifecycle`` and ``reason`` keep
which it was). A closed KPI is judged as of its ``lifecycle_changed`` date; before that
date (``--at`` in the past) it is judged as active.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from tether.kpi.trend import KpiFacts, Thresholds, days, utc
from tether.model import KPI, Measurement

STATUSES = ("on_track", "at_risk", "off_track", "achieved", "paused", "retired", "unknown")
TRENDS = ("improving", "worsening", "flat")
DEFAULT_THRESHOLDS = Thresholds()
_RANK = {"on_track": 0, "at_risk": 1, "off_track": 2}


@dataclass(frozen=True)
class KpiStatus:
    """Where one KPI stands at ``now``. Numbers are None when they cannot be known."""

    kpi: str  # KPI id
    status: str  # one of STATUSES
    lifecycle: str  # the lifecycle the status was judged under (active before a later close)
    value: float | None  # latest measured value
    at: datetime | None  # when that value was measured
    target: float | None  # None for band KPIs (the band is the target)
    attainment: float | None  # S1: (value - baseline) / (target - baseline); band: 1 inside
    expected: float | None  # value on the expected path now (lag-shifted)
    pace: float | None  # S2: attainment / expected attainment
    slope_per_day: float | None  # Theil-Sen slope over the last ``window`` points
    forecast: float | None  # the value the trend reaches by ``forecast_at``
    forecast_at: datetime | None  # the deadline (band KPIs without one: now + horizon)
    forecast_attainment: float | None  # S3: attainment of ``forecast``
    shortfall: float | None  # 0..1: the share of the planned change the forecast misses
    value_at_risk: float | None  # (stake, else weight) x shortfall; 0 when closed or paused
    in_band: bool | None  # S4: not behind the expected path (band KPIs: not outside the band)
    # by more than the tolerance; being ahead keeps a directional KPI in its band
    ahead: bool | None  # a directional KPI ahead of its path by more than the tolerance
    trend: str | None  # improving, worsening or flat, in the KPI's direction
    noise_per_day: float | None  # the slope's standard error: slopes within noise are flat
    points: int  # measurements the status is based on
    reason: str  # one plain line with the numbers

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601, floats rounded to 6 decimals."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
            elif isinstance(value, float):
                out[key] = round(value, 6)
        return out


# -- the status ---------------------------------------------------------------------------


def kpi_statuses(kpis: Iterable[KPI], measurements: Iterable[Measurement], now: datetime,
                 thresholds: Thresholds = DEFAULT_THRESHOLDS) -> dict[str, KpiStatus]:
    """The status of every KPI, by id, from one list of measurements of many KPIs."""
    by_kpi: dict[str, list[Measurement]] = defaultdict(list)
    for m in measurements:
        by_kpi[m.kpi].append(m)
    return {k.id: kpi_status(k, by_kpi.get(k.id, []), now, thresholds) for k in kpis}


def kpi_status(kpi: KPI, measurements: list[Measurement], now: datetime,
               thresholds: Thresholds = DEFAULT_THRESHOLDS) -> KpiStatus:
    """The status of ``kpi`` at ``now`` from its ``measurements`` (others' are ignored)."""
    return _Judge(kpi, measurements, utc(now), thresholds).status()


class _Judge(KpiFacts):
    """One evaluation: the verdict and its wording, on the facts."""

    # -- verdict ------------------------------------------------------------------------

    def status(self) -> KpiStatus:
        k, th = self.kpi, self.th
        v = self.value
        A = self.attainment(v)
        E = self.expected()
        e = self.attainment(E) if E is not None else None
        tol = self.tolerance()
        pace = None
        # Pace is judged once the path has moved beyond the tolerance band from the baseline:
        # before that, any value is within noise of what is expected.
        if A is not None and E is not None and e is not None and e > 0 and tol is not None \
                and self.b is not None and abs(E - self.b) > tol:
            pace = A / e
        in_band: bool | None = None
        if v is not None and self.band:
            low, high = self.band
            in_band = low - (tol or 0.0) <= v <= high + (tol or 0.0)
        ahead: bool | None = None
        if v is not None and E is not None and tol is not None and not self.band:
            # Out of band only on the wrong side: far ahead of the path needs no decision.
            in_band = (E - v) * self.sign <= tol
            ahead = (v - E) * self.sign > tol
        fit = self.fit()
        slope, forecast = fit if fit else (None, None)
        trend = self.trend(slope) if slope is not None else None
        fa = self.attainment(forecast)
        facts: dict[str, Any] = dict(
            kpi=k.id, lifecycle=self.lifecycle, value=v, at=self.value_at, target=self.tgt,
            attainment=A, expected=E, pace=pace, slope_per_day=slope, forecast=forecast,
            forecast_at=self.horizon() if fit else None, forecast_attainment=fa,
            shortfall=None if fa is None else min(1.0, max(0.0, 1.0 - fa)),
            in_band=in_band, ahead=ahead, trend=trend,
            noise_per_day=self.noise if fit else None, points=len(self.series))

        def done(status: str, reason: str, var: float | None = 0.0, **extra: Any) -> KpiStatus:
            # var=None: at risk is (stake or weight) x shortfall for a judged status, else None.
            merged = {**facts, **extra}
            if var is None and merged["shortfall"] is not None and status in _RANK:
                var = self.at_stake() * merged["shortfall"]
            return KpiStatus(status=status, reason=reason, value_at_risk=var, **merged)

        now_txt = self._now_text()
        # Lifecycle first: a closed or paused KPI is not judged on its numbers.
        if self.lifecycle == "paused":
            when = f" since {self.changed.date()}" if self.changed else ""
            return done("paused", f"paused{when}; {now_txt}")
        if self.lifecycle in ("retired", "dropped", "missed", "achieved"):
            when = f" on {self.changed.date()}" if self.changed else ""
            if self.lifecycle == "missed":
                text = f"missed: closed{when} at {now_txt}"
            else:
                text = f"{self.lifecycle}{when}; {now_txt}"
            return done("achieved" if self.lifecycle == "achieved" else "retired", text)

        if v is None:
            return done("unknown", "unknown: no measurements yet; add values under the KPI's "
                        "`measurements:`, from a KPI source, or with `tether kpi record`",
                        var=None)
        if not self.band and (self.tgt is None or self.t1 is None):
            return done("unknown", f"unknown: no target and deadline set; {now_txt}; add "
                        "`target:` and `deadline:` to the KPI", var=None)
        if not self.band and self.b is not None and self.tgt is not None and (
                (self.tgt - self.b) * self.sign <= 0):
            side = "above" if self.sign > 0 else "below"
            origin = "" if k.baseline is not None else " (the first measurement)"
            return done("unknown", f"unknown: direction is {k.direction} but the target "
                        f"{self._v(self.tgt)} is not {side} the baseline {self._v(self.b)}"
                        f"{origin}; fix the direction, the baseline or the target", var=None)
        if not self.band and self.reached(v):
            early = ""
            if self.t1 is not None and self.value_at is not None and self.value_at < self.t1:
                early = f", {round(days(self.value_at, self.t1))} days before the deadline"
            return done("achieved", f"achieved: {self._v(v)} reached the target "
                        f"{self._v(self.tgt)} on {self._date(self.value_at)}{early}",
                        shortfall=0.0)
        if self.t1 is not None and self.asof >= self.t1:
            short = None if A is None else min(1.0, max(0.0, 1.0 - A))
            if self.band and in_band:
                return done("achieved", f"achieved: {self._v(v)} inside the band at the "
                            f"deadline {self.t1.date()}", shortfall=0.0)
            return done("off_track", f"off track: past the deadline {self.t1.date()} at "
                        f"{now_txt}", var=None, shortfall=short, forecast=v, forecast_at=self.t1,
                        forecast_attainment=A)
        if fit is None:
            n = len(self.series)
            return done("unknown", f"unknown: {n} measurement{'s' if n != 1 else ''}"
                        f"{' since the baseline' if k.baseline_date else ''}, "
                        f"{th.min_points} needed for a trend; {now_txt}", var=None)
        return self._judge(done, E, pace, trend, fa, forecast, slope, in_band)

    def _judge(self, done, E, pace, trend, fa, forecast, slope, in_band) -> KpiStatus:
        """The verdict of an active KPI with a trend: worst of wrong way, forecast, pace."""
        th = self.th
        verdicts: list[tuple[str, str]] = []  # (status, reason) in order of precedence
        horizon = self.horizon()
        assert horizon is not None and forecast is not None and fa is not None
        if self.band:
            low, high = self.band
            where = f"inside [{self._n(low)}, {self._n(high)}]" if (
                low <= forecast <= high) else f"outside [{self._n(low)}, {self._n(high)}]"
            fc = f"forecast {self._v(forecast)} by {horizon.date()}, {where}{self._noise(trend, slope)}"
            if not in_band and trend == "worsening":
                verdicts.append(("off_track", f"off track: {self._v(self.value)} is outside "
                                 f"[{self._n(low)}, {self._n(high)}] and moving away; {fc}"))
            verdicts += _forecast_lines(fa, f"{fc} ({fa:.0%})", th)
            if not in_band:
                verdicts.append(("at_risk", f"at risk: {self._v(self.value)} is outside "
                                 f"[{self._n(low)}, {self._n(high)}]; {fc}"))
            on = f"on track: {self._v(self.value)} within [{self._n(low)}, {self._n(high)}]; {fc}"
        else:
            fc = (f"forecast {self._n(forecast)} of {self._v(self.tgt)} by {horizon.date()} "
                  f"({self._share(fa, forecast, 'the planned change')})")
            goal = self.next_interim()
            if goal is not None:
                # A phased plan is judged against its next interim target: a straight trend
                # to the deadline would flag every back-loaded plan.
                assert self.b is not None
                at = utc(goal.at)
                fa = (self.predict(at) - self.b) / (goal.value - self.b)
                fc = (f"forecast {self._n(self.predict(at))} of the interim target "
                      f"{self._v(goal.value)} by {at.date()} "
                      f"({self._share(fa, self.predict(at), 'the change planned by then')})")
            fc += self._noise(trend, slope)
            if trend == "worsening":
                verdicts.append(("off_track", f"off track: moving the wrong way "
                                 f"({self._n(slope * 7, signed=True)}{self._unit()} a week); {fc}"))
            verdicts += _forecast_lines(fa, fc, th)
            if pace is not None:
                where = (f"is {pace:.0%} of the expected pace" if pace >= 0
                         else "has moved away from the target")
                behind = f"{self._v(self.value)} {where} (expected {self._v(E)} by now{self._lag()})"
                if pace < th.pace_off_track_below:
                    verdicts.append(("off_track", f"off track: {behind}, below the "
                                     f"{th.pace_off_track_below:.0%} line"))
                elif pace < th.pace_at_risk_below:
                    verdicts.append(("at_risk", f"at risk: {behind}, below the "
                                     f"{th.pace_at_risk_below:.0%} line"))
            now = f"now {self._v(self.value)}"
            if E is not None:
                now += f", expected {self._n(E)}{self._lag()}"
            on = f"on track: {fc}; {now}"
        if not verdicts:
            return done("on_track", on, var=None)
        worst = max(_RANK[s] for s, _ in verdicts)
        status, reason = next((s, r) for s, r in verdicts if _RANK[s] == worst)
        return done(status, reason, var=None)

    # -- wording ------------------------------------------------------------------------

    def _unit(self) -> str:
        u = self.kpi.unit
        return "" if not u else (u if u == "%" else f" {u}")

    def _n(self, x: float | None, signed: bool = False) -> str:
        return fmt_number(x, signed)

    def _v(self, x: float | None) -> str:
        return f"{fmt_number(x)}{self._unit()}" if x is not None else "(none)"

    def _share(self, attained: float, value: float, of: str) -> str:
        """``attained`` as a share of ``of``; a value on the wrong side of the baseline says
        how far it moved away instead of a negative percentage."""
        if attained >= 0 or self.b is None:
            return f"{attained:.0%} of {of}"
        away = self._v(abs(value - self.b))
        if of == "the planned change" and value == self.value:
            return f"moved away from the target by {away}"
        return f"{away} further from the target than the baseline"

    def _noise(self, trend: str | None, slope: float) -> str:
        """Says when a slope was read as flat because it is within the series' noise."""
        if trend != "flat" or not self.within_noise(slope) or slope == 0:
            return ""
        return (f"; flat: {self._n(slope * 7, signed=True)}{self._unit()} a week is within the "
                f"series' noise (±{self._n(self.th.noise_t * self.noise * 7)})")

    def _date(self, at: datetime | None) -> str:
        return at.date().isoformat() if at else "(unknown)"

    def _lag(self) -> str:
        return f", {self.kpi.lag_days} days lag" if self.kpi.lag_days else ""

    def _now_text(self) -> str:
        if self.value is None:
            return "no measurements"
        text = f"{self._v(self.value)} on {self._date(self.value_at)}"
        if self.tgt is not None and not self.band:
            text += f", target {self._v(self.tgt)}"
            A = self.attainment(self.value)
            if A is not None:
                text += f" ({self._share(A, self.value, 'the planned change')})"
        elif self.band:
            low, high = self.band
            text += f", band [{self._n(low)}, {self._n(high)}]"
        return text


def fmt_number(x: float | None, signed: bool = False) -> str:
    """A value for people: 6.1, 10.0, 99.95, 0.0042, 1,250,000."""
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    sign = "+" if signed and x > 0 else ""
    if abs(x) >= 1000:
        return f"{sign}{x:,.0f}"
    if x != 0 and abs(x) < 0.01:
        return f"{sign}{x:.2g}"
    text = f"{x:.2f}".rstrip("0")
    return sign + (text + "0" if text.endswith(".") else text)


def _forecast_lines(attained: float, forecast: str, th: Thresholds) -> list[tuple[str, str]]:
    """The verdict of the forecast lines (S3): off track, at risk, or none."""
    if attained < th.off_track_below:
        return [("off_track", f"off track: {forecast}, below the {th.off_track_below:.0%} line")]
    if attained < th.at_risk_below:
        return [("at_risk", f"at risk: {forecast}, below the {th.at_risk_below:.0%} line")]
    return []
