"""KPI status: attainment, expected path, pace, Theil-Sen forecast, value at risk, verdict.

Every case injects ``now``; the KPI runs from 2025-01-01 (day 0) to 2025-12-31 (day 364),
baseline 0 and target 10 $M unless a test says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from tether.kpi.status import STATUSES, KpiStatus, fmt_number, kpi_status, kpi_statuses
from tether.kpi.trend import Thresholds, theil_sen
from tether.model import KPI, Checkpoint, Measurement

J1 = datetime(2025, 1, 1, tzinfo=UTC)
OPEX = KPI("opex", "Cut operating cost", weight=3, unit="$M", baseline=0, baseline_date=J1,
           target=10, deadline=J1 + timedelta(days=364))
WEEKS = (140, 154, 168, 182)  # four fortnightly points up to day 182, the middle of the year


def day(n: float) -> datetime:
    return J1 + timedelta(days=n)


def on(kpi: KPI, points: dict[float, float]) -> list[Measurement]:
    return [Measurement(kpi.id, day(n), v) for n, v in points.items()]


def path(share: float, days=WEEKS) -> dict[float, float]:
    """Values on a straight line that ends at ``share`` of the target by the deadline."""
    return {n: share * 10 * n / 364 for n in days}


def status(kpi: KPI = OPEX, points: dict[float, float] | None = None, now: float = 182,
           thresholds: Thresholds | None = None) -> KpiStatus:
    return kpi_status(kpi, on(kpi, points or {}), day(now), thresholds or Thresholds())


# -- Theil-Sen --------------------------------------------------------------------------------


def test_theil_sen_ignores_one_outlier() -> None:
    points = [(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0), (4, 4.0)]
    # Pairwise slopes: 1 1 10 1 | 1 14.5 1 | 28 1 | -26. Sorted: -26 1 1 1 1 1 1 10 14.5 28,
    # median 1 (OLS would say 3.7). Intercept: median of y - x = median(0, 0, 0, 27, 0) = 0.
    assert theil_sen(points) == (1.0, 0.0)
    # Six slopes 3 2 4/3 1 1/2 0: the median is the mean of the middle two, (1 + 4/3) / 2.
    slope, intercept = theil_sen([(0, 0.0), (1, 3.0), (2, 4.0), (3, 4.0)])
    assert slope == pytest.approx(7 / 6)
    assert intercept == pytest.approx((0.5 + 4 - 7 / 3) / 2)  # of 0, 11/6, 5/3, 1/2
    with pytest.raises(ValueError):
        theil_sen([(1, 1.0), (1, 2.0)])


def test_the_forecast_follows_the_robust_line_not_the_outlier() -> None:
    points = path(1.0, (126, 140, 154, 168, 182))
    points[168] = 9.0  # one wild reading
    st = status(points=points)
    assert st.slope_per_day == pytest.approx(10 / 364)
    assert st.forecast == pytest.approx(10.0)
    assert st.status == "on_track"


# -- up, down, band -------------------------------------------------------------------------


def test_up_on_track() -> None:
    st = status(points=path(1.0))
    assert st.status == "on_track"
    assert (st.value, st.at, st.target, st.points) == (pytest.approx(5.0), day(182), 10, 4)
    assert st.attainment == pytest.approx(0.5)
    assert st.expected == pytest.approx(5.0)
    assert st.pace == pytest.approx(1.0)
    assert st.forecast == pytest.approx(10.0) and st.forecast_at == day(364)
    assert st.forecast_attainment == pytest.approx(1.0)
    assert st.shortfall == pytest.approx(0.0) and st.value_at_risk == pytest.approx(0.0)
    assert (st.in_band, st.trend) == (True, "improving")
    assert st.reason == ("on track: forecast 10.0 of 10.0 $M by 2025-12-31 (100% of the planned "
                         "change); now 5.0 $M, expected 5.0")


def test_up_at_risk_and_off_track_by_forecast() -> None:
    st = status(points=path(0.85))
    assert st.status == "at_risk"
    assert st.reason == ("at risk: forecast 8.5 of 10.0 $M by 2025-12-31 (85% of the planned "
                         "change), below the 90% line")
    assert st.shortfall == pytest.approx(0.15) and st.value_at_risk == pytest.approx(0.45)
    st = status(points=path(0.6))
    assert st.status == "off_track"
    assert st.reason == ("off track: forecast 6.0 of 10.0 $M by 2025-12-31 (60% of the planned "
                         "change), below the 75% line")
    assert st.in_band is False  # 3.0 against 5.0 expected, tolerance +/- 1.0


def test_thresholds_are_configurable() -> None:
    lenient = Thresholds(off_track_below=0.5, at_risk_below=0.55, pace_at_risk_below=0.5)
    assert status(points=path(0.6), thresholds=lenient).status == "on_track"


def test_direction_down() -> None:
    onboarding = KPI("onboarding", "Onboarding time", unit="days", direction="down",
                     baseline=5, baseline_date=J1, target=2, deadline=day(364))
    st = status(onboarding, {n: 5 - 3 * n / 364 for n in WEEKS})
    assert st.status == "on_track" and st.trend == "improving"
    assert st.attainment == pytest.approx(0.5) and st.forecast == pytest.approx(2.0)
    st = status(onboarding, {n: 5 - 1.5 * n / 364 for n in WEEKS})  # half the pace
    assert st.status == "off_track" and st.forecast_attainment == pytest.approx(0.5)
    st = status(onboarding, {n: 2.0 - n / 1000 for n in WEEKS}, now=182)  # below target
    assert st.status == "achieved"


def test_wrong_way_is_off_track() -> None:
    st = status(points={140: 1.0, 154: 0.9, 168: 0.8, 182: 0.7})
    assert st.status == "off_track" and st.trend == "worsening"
    assert st.reason == ("off track: moving the wrong way (-0.05 $M a week); forecast -0.6 of "
                         "10.0 $M by 2025-12-31 (0.6 $M further from the target than the baseline)")
    onboarding = KPI("onboarding", "Onboarding", direction="down", baseline=5,
                     baseline_date=J1, target=2, deadline=day(364))
    st = status(onboarding, {n: 5 + n / 364 for n in WEEKS})
    assert (st.status, st.trend) == ("off_track", "worsening")
    assert st.reason.startswith("off track: moving the wrong way (+0.02 a week)")


def test_a_flat_trend_is_judged_by_its_forecast() -> None:
    st = status(points={140: 9.5, 154: 9.5, 168: 9.5, 182: 9.5})
    assert (st.trend, st.slope_per_day, st.forecast) == ("flat", 0.0, 9.5)
    assert st.status == "on_track"  # 95% by the deadline, and ahead of the path


def test_band_inside_and_outside() -> None:
    nps = KPI("nps", "NPS", direction="band", band=(40.0, 60.0), weight=2)
    weekly = (140, 147, 154, 161)
    st = status(nps, dict(zip(weekly, [50, 51, 50, 51], strict=True)), now=161)
    assert (st.status, st.trend, st.attainment, st.in_band) == ("on_track", "flat", 1.0, True)
    assert st.target is None and st.expected is None and st.pace is None
    assert st.forecast_at == day(161 + 28)  # no deadline: four weeks ahead
    assert st.reason == "on track: 51.0 within [40.0, 60.0]; forecast 51.42 by 2025-07-09, " \
                        "inside [40.0, 60.0]; flat: +0.17 a week is within the series' noise (±1.21)"

    st = status(nps, dict(zip(weekly, [35, 34, 33, 32], strict=True)), now=161)
    assert (st.status, st.trend, st.in_band) == ("off_track", "worsening", False)
    assert st.attainment == pytest.approx(1 - 8 / 20)  # 8 below a band 20 wide
    assert st.forecast == pytest.approx(28.0) and st.forecast_attainment == pytest.approx(0.4)
    assert st.value_at_risk == pytest.approx(2 * 0.6)
    assert st.reason.startswith("off track: 32.0 is outside [40.0, 60.0] and moving away")

    st = status(nps, dict(zip(weekly, [30, 32, 34, 36], strict=True)), now=161)
    assert (st.status, st.trend) == ("at_risk", "improving")  # outside, but coming back
    assert st.forecast_attainment == 1.0 and st.value_at_risk == 0.0
    assert st.reason == ("at risk: 36.0 is outside [40.0, 60.0]; forecast 44.0 by 2025-07-09, "
                         "inside [40.0, 60.0]")

    tolerant = replace(nps, tolerance=5.0)
    st = status(tolerant, dict(zip(weekly, [38, 37, 38, 37], strict=True)), now=161)
    assert st.in_band is True and st.status == "at_risk"  # inside the slack, not the band


def test_band_with_a_deadline_is_achieved_inside_it_when_due() -> None:
    nps = KPI("nps", "NPS", direction="band", band=(40.0, 60.0), deadline=day(364))
    assert status(nps, {300: 50.0}, now=370).status == "achieved"
    assert status(nps, {300: 30.0}, now=370).status == "off_track"


# -- too little data: unknown, never a guess --------------------------------------------------


def test_no_data() -> None:
    st = status(points={})
    assert (st.status, st.value, st.points, st.value_at_risk) == ("unknown", None, 0, None)
    assert st.reason == ("unknown: no measurements yet; add values under the KPI's "
                         "`measurements:`, from a KPI source, or with `tether kpi record`")


def test_one_point() -> None:
    st = status(points={140: 3.0})
    assert (st.status, st.value, st.points, st.forecast, st.trend) == (
        "unknown", 3.0, 1, None, None)
    assert st.attainment == pytest.approx(0.3)  # what is known is still reported
    assert st.reason == ("unknown: 1 measurement since the baseline, 4 needed for a trend; "
                         "3.0 $M on 2025-05-21, target 10.0 $M (30% of the planned change)")


def test_three_points_are_not_enough() -> None:
    st = status(points=path(1.0, WEEKS[1:]))
    assert st.status == "unknown" and st.points == 3
    assert st.reason.startswith("unknown: 3 measurements since the baseline, 4 needed")
    assert st.forecast is None and st.value_at_risk is None and st.shortfall is None


def test_exactly_four_points_give_a_trend() -> None:
    st = status(points=path(1.0))
    assert st.points == 4 and st.status == "on_track" and st.slope_per_day is not None
    assert status(points=path(1.0), thresholds=Thresholds(min_points=5)).status == "unknown"


def test_no_target_is_unknown() -> None:
    bare = KPI("bare", "Bare")
    st = status(bare, path(1.0))
    assert st.status == "unknown"
    assert st.reason == ("unknown: no target and deadline set; 5.0 on 2025-07-02; add `target:` "
                         "and `deadline:` to the KPI")


def test_baseline_defaults_to_the_first_measurement() -> None:
    undated = replace(OPEX, baseline=None, baseline_date=None)
    st = status(undated, {0: 0.0, **path(1.0)})
    assert st.attainment == pytest.approx(0.5) and st.expected == pytest.approx(5.0)
    st = status(replace(undated, target=-1), path(1.0))
    assert st.status == "unknown" and "is not above the baseline" in st.reason


def test_values_before_the_baseline_or_after_now_do_not_count() -> None:
    points = {-30: 50.0, **path(1.0), 200: 99.0}
    st = status(points=points)
    assert st.points == 4 and st.value == pytest.approx(5.0)


# -- achieved, lifecycle ---------------------------------------------------------------------


def test_achieved_early() -> None:
    st = status(points={120: 6.0, 130: 6.5, 140: 7.0, 150: 10.2})
    assert (st.status, st.value_at_risk, st.shortfall) == ("achieved", 0.0, 0.0)
    assert st.reason == ("achieved: 10.2 $M reached the target 10.0 $M on 2025-05-31, 214 days "
                         "before the deadline")
    st = status(points={150: 10.2})  # a fact, not a forecast: one point is enough
    assert st.status == "achieved"


def test_lifecycle_achieved() -> None:
    done = replace(OPEX, lifecycle="achieved", lifecycle_changed=day(100))
    st = status(done, path(0.5))
    assert (st.status, st.value_at_risk, st.lifecycle) == ("achieved", 0.0, "achieved")


def test_retired_mid_window() -> None:
    retired = replace(OPEX, lifecycle="retired", lifecycle_changed=day(160))
    st = status(retired, path(0.3, (120, 130, 140, 150, 170, 182)))
    assert (st.status, st.lifecycle, st.value_at_risk) == ("retired", "retired", 0.0)
    assert st.at == day(150) and st.points == 4  # frozen at the close
    assert st.reason == ("retired on 2025-06-10; 1.24 $M on 2025-05-31, target 10.0 $M (12% of "
                         "the planned change)")
    before = status(retired, path(0.3, (120, 130, 140, 150)), now=155)
    assert (before.lifecycle, before.status) == ("active", "off_track")  # judged as it was then


def test_missed_and_dropped_are_closed() -> None:
    missed = replace(OPEX, lifecycle="missed", lifecycle_changed=day(364))
    st = status(missed, {300: 6.0, 350: 7.0}, now=380)
    assert (st.status, st.lifecycle, st.value_at_risk) == ("retired", "missed", 0.0)
    assert st.reason == ("missed: closed on 2025-12-31 at 7.0 $M on 2025-12-17, target 10.0 $M "
                         "(70% of the planned change)")
    dropped = replace(OPEX, lifecycle="dropped")
    st = status(dropped, path(1.0))
    assert (st.status, st.lifecycle) == ("retired", "dropped")
    assert st.reason.startswith("dropped; 5.0 $M on 2025-07-02")


def test_paused() -> None:
    paused = replace(OPEX, lifecycle="paused", lifecycle_changed=day(100))
    st = status(paused, path(0.5))
    assert (st.status, st.value_at_risk) == ("paused", 0.0)
    assert st.forecast == pytest.approx(5.0)  # still shown, not judged
    assert st.reason == ("paused since 2025-04-11; 2.5 $M on 2025-07-02, target 10.0 $M (25% of "
                         "the planned change)")


def test_past_the_deadline_without_reaching_the_target() -> None:
    st = status(points={300: 6.0, 350: 7.0}, now=380)
    assert st.status == "off_track"
    assert (st.forecast, st.forecast_at, st.forecast_attainment) == (7.0, day(364),
                                                                    pytest.approx(0.7))
    assert st.value_at_risk == pytest.approx(3 * 0.3)
    assert st.reason == ("off track: past the deadline 2025-12-31 at 7.0 $M on 2025-12-17, "
                         "target 10.0 $M (70% of the planned change)")


# -- expected path: lag and interim targets --------------------------------------------------


def test_lag_shifts_the_expected_path() -> None:
    lagged = replace(OPEX, lag_days=28)
    st = status(lagged, path(1.0))
    assert st.expected == pytest.approx(10 * (182 - 28) / 364)
    assert st.expected == pytest.approx(status(points=path(1.0), now=182 - 28).expected)
    assert st.pace == pytest.approx(5.0 / (10 * 154 / 364))
    assert st.reason.endswith("expected 4.23, 28 days lag")
    early = status(lagged, {0: 0.0, 7: 0.0, 14: 0.0, 21: 0.0}, now=21)
    assert early.expected == 0.0 and early.pace is None  # nothing should show yet


def test_pace_flags_a_kpi_behind_its_path_even_with_a_good_forecast() -> None:
    # Far behind the path (2.0 where 5.0 is expected) but climbing fast since day 154.
    st = status(points={140: 0.0, 154: 0.0, 168: 1.0, 175: 1.5, 182: 2.0}, now=182)
    assert st.forecast_attainment > 0.9  # the steep recent slope carries the forecast
    assert st.pace == pytest.approx(0.4)
    assert st.status == "at_risk"
    assert st.reason == ("at risk: 2.0 $M is 40% of the expected pace (expected 5.0 $M by now), "
                         "below the 70% line")


def test_pace_waits_until_the_path_leaves_the_tolerance_band() -> None:
    st = status(points={7: 0.0, 14: 0.0, 21: 0.0, 28: 0.0}, now=28)
    assert st.expected == pytest.approx(10 * 28 / 364) and st.pace is None


def test_interim_targets_shape_the_expected_path() -> None:
    phased = replace(OPEX, interim=(Checkpoint(day(181), 2.0),))
    assert status(phased, {0: 0.0}, now=90).expected == pytest.approx(2 * 90 / 181)
    assert status(phased, {0: 0.0}, now=272).expected == pytest.approx(2 + 8 * 91 / 183)
    points = {n: 2 * n / 181 for n in (129, 136, 143, 150)}
    st = status(phased, points, now=150)
    assert st.pace == pytest.approx(1.0)  # on the phased path, though behind a straight line
    # Judged against the next interim target, not a straight trend to the deadline.
    assert st.status == "on_track"
    assert st.forecast_attainment == pytest.approx(2 * 364 / 181 / 10)  # at the deadline
    assert st.reason == ("on track: forecast 2.0 of the interim target 2.0 $M by 2025-07-01 "
                         "(100% of the change planned by then); now 1.66 $M, expected 1.66")
    straight = status(OPEX, points, now=150)
    assert straight.pace == pytest.approx((300 / 181) / (1500 / 364))
    assert straight.status == "off_track"
    behind = status(phased, {n: 0.8 * v for n, v in points.items()}, now=150)
    assert behind.status == "at_risk"
    assert behind.reason.startswith("at risk: forecast 1.6 of the interim target 2.0 $M by "
                                    "2025-07-01 (80% of the change planned by then)")


# -- value at risk ---------------------------------------------------------------------------


def test_value_at_risk_is_stake_or_weight_times_shortfall() -> None:
    assert status(points=path(0.6)).value_at_risk == pytest.approx(3 * 0.4)
    staked = replace(OPEX, stake=2_000_000, currency="USD")
    assert status(staked, path(0.6)).value_at_risk == pytest.approx(800_000)
    unweighted = replace(OPEX, weight=0)
    st = status(unweighted, path(0.6))
    assert (st.status, st.value_at_risk) == ("off_track", 0.0)
    assert st.shortfall == pytest.approx(0.4)


def test_shortfall_is_clipped_to_0_1() -> None:
    st = status(points={140: 1.0, 154: 0.9, 168: 0.8, 182: 0.7})
    assert st.forecast_attainment < 0 and st.shortfall == 1.0
    assert st.value_at_risk == pytest.approx(3.0)


# -- many KPIs, documents ------------------------------------------------------------------


def test_kpi_statuses_by_id_and_json_ready() -> None:
    nps = KPI("nps", "NPS")
    ms = on(OPEX, path(1.0)) + [Measurement("nps", day(1), 30.0), Measurement("other", day(1), 1)]
    found = kpi_statuses([OPEX, nps], ms, day(182))
    assert list(found) == ["opex", "nps"]
    assert found["nps"].points == 1 and found["opex"].points == 4
    doc = found["opex"].to_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["at"] == "2025-07-02T00:00:00+00:00" and doc["status"] == "on_track"
    assert set(doc) == {f for f in KpiStatus.__dataclass_fields__}
    assert {s.status for s in found.values()} <= set(STATUSES)


def test_naive_now_is_utc_and_repeated_times_keep_the_first() -> None:
    ms = on(OPEX, path(1.0)) + [Measurement("opex", day(182), 99.0)]
    st = kpi_status(OPEX, ms, day(182).replace(tzinfo=None))
    assert st.value == pytest.approx(5.0)


def test_fmt_number() -> None:
    assert [fmt_number(x) for x in (6.1, 10, 99.95, 0.0042, 1_250_000, 0, -2.5, None)] == [
        "6.1", "10.0", "99.95", "0.0042", "1,250,000", "0.0", "-2.5", "-"]
    assert fmt_number(0.05, signed=True) == "+0.05"


# -- judgement a PMO can read (issue 10: trend noise, the wrong side, far ahead) --------------


def test_a_slope_within_the_series_noise_is_flat_not_worsening() -> None:
    churn = KPI("churn", "Logo churn", unit="%", direction="down", baseline=45, baseline_date=J1,
                target=40, deadline=day(364))
    jitter = [0.6, -0.5, 0.4, -0.7, 0.5, -0.4, 0.3, -0.6]
    noisy = {140 + 7 * i: 45 - 0.02 * i + jitter[i] for i in range(8)}  # -0.02 a week, +/-0.5
    st = status(churn, noisy)
    assert st.trend == "flat" and st.noise_per_day is not None
    assert "within the series' noise" in st.reason and "moving the wrong way" not in st.reason
    steady = {140 + 7 * i: 45 + 0.3 * i for i in range(8)}  # the same size of move, no noise
    assert status(churn, steady).trend == "worsening"


def test_a_kpi_far_ahead_of_its_path_is_in_its_band_and_marked_ahead() -> None:
    st = status(points={n: 1.4 * 10 * n / 364 for n in WEEKS})  # 146% of the path
    assert st.status == "on_track" and st.in_band is True and st.ahead is True
    behind = status(points=path(0.5))
    assert behind.in_band is False and behind.ahead is False


def test_a_value_on_the_wrong_side_of_the_baseline_says_how_far_it_moved_away() -> None:
    st = status(points={140: -0.5, 154: -1.0, 168: -1.5, 182: -2.0})
    assert "%" not in st.reason.split("forecast")[1].split("(")[1].split(")")[0]
    assert "further from the target than the baseline" in st.reason
    text = kpi_status(OPEX, on(OPEX, {140: -0.5, 154: -1.0, 168: -1.5, 182: -2.0}),
                      day(400), Thresholds()).reason
    assert "moved away from the target by 2.0 $M" in text and "-" not in text.split("(")[-1]
