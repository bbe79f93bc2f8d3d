"""KPI definitions: every field parsed, every mistake located with its file, line and key."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tether.config.load import load_config
from tether.connector import Options
from tether.errors import InvalidInput, Problem
from tether.kpi.trend import Thresholds
from tether.model import KPI, Checkpoint, Guardrail, Measurement
from tether.plugins import Plugins


class FakeOptions(Options):
    path: str = "x"


@pytest.fixture
def plugins(fake_plugins) -> Plugins:
    return fake_plugins(FakeOptions)


SOURCES = """\
sources:
  - {name: jira, type: fake}
  - {name: gh, type: fake}
kpis: kpis.yaml
"""


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def setup(tmp_path: Path, kpis: str, config: str = SOURCES) -> Path:
    (tmp_path / "kpis.yaml").write_text(textwrap.dedent(kpis).lstrip("\n"), encoding="utf-8")
    (tmp_path / "tether.yaml").write_text(config, encoding="utf-8")
    return tmp_path / "tether.yaml"


def problems(path: Path, plugins: Plugins) -> dict[str, tuple[int, str]]:
    with pytest.raises(InvalidInput) as info:
        load_config(path, plugins, {})
    found: dict[str, tuple[int, str]] = {}
    for p in info.value.problems:
        assert p.key not in found, f"two problems at {p.key}: {info.value}"
        found[p.key] = (p.line, p.message)
    return found


def all_problems(path: Path, plugins: Plugins) -> list[Problem]:
    with pytest.raises(InvalidInput) as info:
        load_config(path, plugins, {})
    return info.value.problems


FULL = """
kpis:
  - id: growth
    name: Grow revenue
  - id: opex-reduction
    name: Cut operating cost by $10M
    objective: growth
    owner:
      name: Dana Whitfield
      jira: 5b10a2844c20165700ede21g
      gh: dana-w
      asana: 1200000000000042
    unit: $M
    direction: up
    baseline: 0
    baseline_date: 2025-01-01
    target: 10
    deadline: 2025-12-31
    interim:
      - {date: 2025-09-30, value: 6}
      - {date: 2025-06-30, value: 2.5}
    weight: 3
    stake: 10000000
    currency: USD
    lifecycle: paused
    lifecycle_changed: 2025-04-01T12:00:00+02:00
    lag_days: 14
    tolerance: 1.5
    guardrails:
      - {kpi: nps, floor: 40}
      - {kpi: onboarding, ceiling: 3}
    tradeoffs: [nps]
    anchors: {jira: OPS-1, gh: northwind/portal#7}
    measurements:
      - {date: 2025-02-01, value: 0.4}
      - {date: 2025-01-01, value: 0}
    x-jira-goal: GOAL-7
  - id: nps
    name: NPS above 45
    owner: Marcus Ode
    direction: [40, 60]
    weight: 0
  - id: onboarding
    name: Onboarding under 2 days
    direction: down
    baseline: 5
    baseline_date: 2025-01-01
    target: 2
    deadline: 2025-10-01
    lifecycle: retired
"""


def test_every_field_is_parsed(tmp_path: Path, plugins: Plugins) -> None:
    cfg = load_config(setup(tmp_path, FULL), plugins, {})
    growth, opex, nps, onboarding = cfg.kpis
    assert growth == KPI("growth", "Grow revenue")
    assert opex.objective == "growth"
    assert opex.owner == "Dana Whitfield"
    assert opex.owner_handles == {"jira": "5b10a2844c20165700ede21g", "gh": "dana-w",
                                  "asana": "1200000000000042"}
    assert opex.handle("gh") == "dana-w"
    assert opex.handle("github-2", "asana") == "1200000000000042"  # falls back to the type
    assert opex.handle("elsewhere") is None
    assert (opex.unit, opex.direction, opex.band) == ("$M", "up", None)
    assert (opex.baseline, opex.baseline_date) == (0.0, d(2025, 1, 1))
    assert (opex.target, opex.deadline) == (10.0, d(2025, 12, 31))
    assert opex.interim == (Checkpoint(d(2025, 6, 30), 2.5), Checkpoint(d(2025, 9, 30), 6.0))
    assert (opex.weight, opex.stake, opex.currency) == (3.0, 10_000_000.0, "USD")
    assert (opex.lifecycle, opex.lifecycle_changed) == ("paused", d(2025, 4, 1, 10))
    assert opex.lifecycle_changed.tzinfo is UTC
    assert (opex.lag_days, opex.tolerance) == (14, 1.5)
    assert opex.guardrails == (Guardrail("nps", floor=40.0), Guardrail("onboarding", ceiling=3.0))
    assert opex.guardrails[0].crossed(39.9) and not opex.guardrails[0].crossed(40)
    assert opex.guardrails[1].crossed(3.5) and not opex.guardrails[1].crossed(3)
    assert opex.tradeoffs == ("nps",)
    assert opex.anchors == {"jira": "OPS-1", "gh": "northwind/portal#7"}
    assert opex.measurements == (Measurement("opex-reduction", d(2025, 1, 1), 0.0),
                                 Measurement("opex-reduction", d(2025, 2, 1), 0.4))
    assert opex.attrs == {"x-jira-goal": "GOAL-7"}
    assert not opex.is_active and not opex.is_band
    assert (nps.owner, nps.owner_handles) == ("Marcus Ode", {})
    assert (nps.direction, nps.band, nps.weight, nps.is_band) == ("band", (40.0, 60.0), 0.0, True)
    assert nps.target is None and nps.deadline is None
    assert (onboarding.direction, onboarding.lifecycle) == ("down", "retired")
    assert cfg.status == Thresholds()


def test_kpi_defaults_keep_the_old_constructor_working() -> None:
    k = KPI("a", "A", "paused", 2.0, "dana", {"x-note": 1})
    assert (k.lifecycle, k.weight, k.owner, k.attrs) == ("paused", 2.0, "dana", {"x-note": 1})
    assert (k.direction, k.lag_days, k.interim, k.guardrails, k.owner_handles) == (
        "up", 0, (), (), {})
    assert hash(k) == hash(KPI("a", "A", "paused", 2.0, "dana"))


def test_unknown_keys_are_errors_except_x_keys(tmp_path: Path, plugins: Plugins) -> None:
    found = problems(setup(tmp_path, """
        kpis:
          - id: a
            name: A
            traget: 10
            x-kept: yes
            notes: hi
        """), plugins)
    assert found["kpis[0].traget"] == (4, "unknown key 'traget'; did you mean 'target'? (or "
                                          "prefix it with 'x-' to keep it as your own attribute)")
    assert found["kpis[0].notes"][0] == 6
    assert set(found) == {"kpis[0].traget", "kpis[0].notes"}


def test_problems_point_at_the_kpi_file(tmp_path: Path, plugins: Plugins) -> None:
    found = all_problems(setup(tmp_path, """
        kpis:
          - id: a
            name: A
            weight: -1
        """), plugins)
    assert [(p.file, p.line, p.column, p.key) for p in found] == [
        (str(tmp_path / "kpis.yaml"), 4, 5, "kpis[0].weight")]


def test_field_types_are_located(tmp_path: Path, plugins: Plugins) -> None:
    found = problems(setup(tmp_path, """
        kpis:
          - id: a
            name: A
            direction: upp
            baseline: lots
            baseline_date: soon
            target: .nan
            deadline: 2025-13-01
            weight: -1
            stake: -5
            currency: dollars
            lifecycle: retird
            lifecycle_changed: [2025]
            lag_days: 1.5
            tolerance: 0
            interim: [{date: 2025-05-01}]
            guardrails: [{kpi: B, floor: 1, limit: 2}]
            tradeoffs: [Bad Id]
            anchors: {jira: [1]}
            owner: {jira: x}
            measurements: [{date: 2025-01-01, value: true}]
            objective: Bad
          - id: b
            name: B
            direction: [5, 3]
            owner: {name: Bo, jira: [1]}
          - id: c
            name: C
            direction: [1, x]
        """), plugins)
    assert found == {
        "kpis[0].direction": (4, "must be up, down, or a band [low, high] of two numbers; did "
                                 "you mean 'up'?"),
        "kpis[0].baseline": (5, "must be a number, or null"),
        "kpis[0].baseline_date": (6, "must be a date like 2025-12-31 or an ISO 8601 timestamp, "
                                     "or null"),
        "kpis[0].target": (7, "must be a number, or null"),
        "kpis[0].deadline": (8, "must be a date like 2025-12-31 or an ISO 8601 timestamp, or "
                                "null"),
        "kpis[0].weight": (9, "must be a number ≥ 0"),
        "kpis[0].stake": (10, "must be a number ≥ 0, or null"),
        "kpis[0].currency": (11, "must be a three-letter currency code like USD"),
        "kpis[0].lifecycle": (12, "must be one of: active, paused, achieved, missed, dropped, "
                                  "retired; did you mean 'retired'?"),
        "kpis[0].lifecycle_changed": (13, "must be a date like 2025-12-31 or an ISO 8601 "
                                          "timestamp, or null"),
        "kpis[0].lag_days": (14, "must be a whole number ≥ 0"),
        "kpis[0].tolerance": (15, "must be a number > 0, or null"),
        "kpis[0].interim[0].value": (16, "'value' is required; add it"),
        "kpis[0].guardrails[0].kpi": (17, "must be a KPI id: lowercase letters, digits, '.', "
                                          "'-' or '_', starting with a letter or digit"),
        "kpis[0].guardrails[0].limit": (17, "unknown key 'limit'; use one of: ceiling, floor, "
                                            "kpi"),
        "kpis[0].tradeoffs[0]": (18, "must be a KPI id: lowercase letters, digits, '.', '-' or "
                                     "'_', starting with a letter or digit"),
        "kpis[0].anchors.jira": (19, "must be a string"),
        "kpis[0].owner.name": (20, "'name' is required; add it"),
        "kpis[0].measurements[0].value": (21, "must be a number"),
        "kpis[0].objective": (22, "must be a KPI id: lowercase letters, digits, '.', '-' or '_', "
                                  "starting with a letter or digit"),
        "kpis[1].direction": (25, "the band's low (5) must be below its high (3); write "
                                  "[low, high]"),
        "kpis[1].owner.jira": (26, "must be the person's handle in that tracker: account id, "
                                   "login or gid"),
        "kpis[2].direction": (29, "must be up, down, or a band [low, high] of two numbers"),
    }


def test_cross_checks_are_located(tmp_path: Path, plugins: Plugins) -> None:
    found = problems(setup(tmp_path, """
        kpis:
          - id: a
            name: A
            baseline: 5
            baseline_date: 2025-06-01
            target: 5
            deadline: 2025-01-01
          - id: b
            name: B
            baseline: 5
            target: 3
            deadline: 2025-12-31
            interim: [{date: 2026-02-01, value: 4}]
          - id: c
            name: C
            direction: [1, 2]
            target: 1.5
            interim: [{date: 2025-02-01, value: 4}]
            baseline_date: 2025-01-01
          - id: d
            name: D
            target: 3
            objective: nope
            guardrails: [{kpi: d, floor: 1}, {kpi: a}, {kpi: b, floor: 5, ceiling: 4}, {kpi: a, floor: 0}]
            tradeoffs: [a, zz, a]
            currency: EUR
            anchors: {jria: X-1}
            measurements:
              - {date: 2025-01-01, value: 1}
              - {date: 2025-01-01, value: 2}
          - id: e
            name: E
            objective: f
          - id: f
            name: F
            objective: e
          - id: g
            name: G
            direction: down
            baseline: 1
            baseline_date: 2025-01-01
            target: 2
            deadline: 2025-12-31
        """), plugins)
    assert found == {
        "kpis[0].target": (6, "equals the baseline (5); set the value to reach, or make the KPI "
                              "a band [low, high] to stay in"),
        "kpis[0].deadline": (7, "must be after baseline_date (2025-06-01)"),
        "kpis[1].baseline": (10, "'baseline_date' is required with it: a baseline is a value "
                                 "and the date it was measured"),
        "kpis[1].target": (11, "3 is below the baseline 5 but the direction is up; write "
                               "`direction: down` or fix the target"),
        "kpis[1].interim[0].date": (13, "must be before the deadline (2025-12-31)"),
        "kpis[2].target": (17, "a band KPI has no target: staying inside [low, high] is the "
                               "target; remove it, or use direction up or down"),
        "kpis[2].interim": (18, "a band KPI has no interim targets; remove them"),
        "kpis[2].baseline_date": (19, "'baseline' is required with it: a baseline is a value "
                                      "and the date it was measured"),
        "kpis[3].target": (22, "'deadline' is required with it: a target is a value and the "
                               "date it is due"),
        "kpis[3].objective": (23, "unknown KPI 'nope'; use one of: a, b, c, d, e, f, g"),
        "kpis[3].guardrails[0].kpi": (24, "'d' is this KPI itself; name another KPI"),
        "kpis[3].guardrails[1]": (24, "give the guardrail a floor or a ceiling (or both)"),
        "kpis[3].guardrails[2].floor": (24, "floor 5 must be below ceiling 4"),
        "kpis[3].guardrails[3].kpi": (24, "duplicate guardrail KPI 'a'; list it once"),
        "kpis[3].tradeoffs[1]": (25, "unknown KPI 'zz'; use one of: a, b, c, d, e, f, g"),
        "kpis[3].tradeoffs[2]": (25, "duplicate trade-off KPI 'a'; list it once"),
        "kpis[3].currency": (26, "a currency needs a stake; add `stake:` or remove it"),
        "kpis[3].anchors.jria": (27, "unknown source 'jria'; did you mean 'jira'?"),
        "kpis[3].measurements[1].date": (30, "duplicate date 2025-01-01 (first on line 29); "
                                             "keep one value per date"),
        "kpis[4].objective": (33, "objectives form a loop (e -> f -> e); an objective cannot "
                                  "be its own parent"),
        "kpis[6].target": (42, "2 is above the baseline 1 but the direction is down; write "
                               "`direction: up` or fix the target"),
    }


def test_a_duplicate_interim_date_is_located(tmp_path: Path, plugins: Plugins) -> None:
    found = problems(setup(tmp_path, """
        kpis:
          - id: a
            name: A
            baseline: 0
            baseline_date: 2025-01-01
            target: 10
            deadline: 2025-12-31
            interim:
              - {date: 2025-06-01, value: 4}
              - {date: 2025-06-01, value: 5}
              - {date: 2024-06-01, value: 1}
        """), plugins)
    assert found == {
        "kpis[0].interim[1].date": (10, "duplicate date (first in interim[0])"),
        "kpis[0].interim[2].date": (11, "must be after baseline_date (2025-01-01)"),
    }


def test_inline_kpis_in_tether_yaml_are_checked_the_same(tmp_path: Path,
                                                          plugins: Plugins) -> None:
    path = tmp_path / "tether.yaml"
    path.write_text(SOURCES.replace("kpis: kpis.yaml\n", "") + textwrap.dedent("""\
        kpis:
          - id: a
            name: A
            anchors: {jira: OPS-1}
            tradeoffs: [b]
        """))
    found = all_problems(path, plugins)
    assert [(p.file, p.line, p.key, p.message) for p in found] == [
        (str(path), 8, "kpis[0].tradeoffs[0]", "unknown KPI 'b'; use one of: a")]


def test_status_thresholds_from_config(tmp_path: Path, plugins: Plugins) -> None:
    kpis = "kpis: [{id: a, name: A}]\n"
    cfg = load_config(setup(tmp_path, kpis, SOURCES + textwrap.dedent("""\
        status:
          off_track_below: 0.6
          at_risk_below: 0.8
          min_points: 5
          window: 10
          horizon_days: 14
        """)), plugins, {})
    assert cfg.status == Thresholds(off_track_below=0.6, at_risk_below=0.8, min_points=5,
                                    window=10, horizon_days=14)
    found = problems(setup(tmp_path, kpis, SOURCES + textwrap.dedent("""\
        status:
          min_points: 3
          window: 6
          tolerance_share: 0
          pace_at_risk_below: true
          flat_shar: 0.1
        """)), plugins)
    assert found == {
        "status.min_points": (6, "must be a whole number ≥ 4"),
        "status.tolerance_share": (8, "must be a number above 0 and at most 1, like 0.1"),
        "status.pace_at_risk_below": (9, "must be a number ≥ 0"),
        "status.flat_shar": (10, "unknown key 'flat_shar'; did you mean 'flat_share'?"),
    }
    found = problems(setup(tmp_path, kpis, SOURCES + textwrap.dedent("""\
        status:
          off_track_below: 0.9
          at_risk_below: 0.8
          min_points: 6
          window: 5
        """)), plugins)
    assert found == {
        "status.at_risk_below": (7, "at_risk_below (0.8) must be at least off_track_below (0.9)"),
        "status.window": (9, "window (5) must be at least min_points (6)"),
    }


def test_the_json_schema_knows_the_kpi_shape(plugins: Plugins) -> None:
    import jsonschema
    from tether.config.schema import config_schema

    validator = jsonschema.Draft202012Validator(config_schema(plugins))
    good = {"sources": [{"name": "jira", "type": "fake"}], "status": {"window": 10},
            "kpis": [{"id": "a", "name": "A", "owner": "Dana", "direction": [1, 2], "x-own": 1},
                     {"id": "b", "name": "B", "owner": {"name": "Bo", "jira": "x"},
                      "direction": "down", "baseline": 2, "baseline_date": "2025-01-01",
                      "target": 1, "deadline": "2025-12-31", "guardrails": [{"kpi": "a",
                                                                              "floor": 1}],
                      "measurements": [{"date": "2025-02-01", "value": 1.5}]}]}
    assert list(validator.iter_errors(good)) == []
    for bad in ({"direction": "sideways"}, {"owner": {"jira": "x"}}, {"traget": 1},
                {"guardrails": [{"kpi": "a", "limit": 1}]}, {"weight": -1}):
        doc = {**good, "kpis": [{**good["kpis"][0], **bad}]}
        assert list(validator.iter_errors(doc)), bad
