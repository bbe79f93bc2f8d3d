"""`tether kpi status` and `tether kpi record`, and KPI statuses in a pipeline pass."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.cli import out as console
from tether.pipeline.run import run_pass
from tether.report.document import run_document
from tether.workspace import load_workspace

KPIS = """
kpis:
  - id: opex-reduction
    name: Cut operating cost by $10M
    owner: {name: Dana Whitfield, jira: 5b10a2844c20165700ede21g}
    unit: $M
    baseline: 0
    baseline_date: 2025-01-01
    target: 10
    deadline: 2025-12-31
    weight: 3
    stake: 10000000
    currency: USD
    anchors: {jira: OPS-1}
    measurements:
      - {date: 2025-05-21, value: 2.31}
      - {date: 2025-06-04, value: 2.54}
      - {date: 2025-06-18, value: 2.77}
      - {date: 2025-07-02, value: 3.0}
  - id: onboarding-time
    name: Customer onboarding under 2 days
    owner: priya.raman
    unit: days
    direction: down
    baseline: 5
    baseline_date: 2025-01-01
    target: 2
    deadline: 2025-12-31
    weight: 2
  - id: nps
    name: Net Promoter Score between 45 and 70
    owner: marcus.ode
    direction: [45, 70]
    weight: 2
    measurements:
      - {date: 2025-06-01, value: 41}
      - {date: 2025-07-01, value: 43}
  - id: uptime
    name: Tracking platform at 99.95% availability
    owner: lena.sorensen
    unit: "%"
    direction: [99.95, 100]
    weight: 2
  - id: legacy-migration
    name: Retire the AS/400 reporting stack
    owner: marcus.ode
    weight: 1
    lifecycle: retired
    lifecycle_changed: 2025-03-01
"""

VALUES = """\
kpi,date,value
onboarding-time,2025-05-21,3.85
onboarding-time,2025-06-04,3.73
onboarding-time,2025-06-18,3.62
onboarding-time,2025-07-02,3.5
"""


@pytest.fixture
def ws(files_only: Path) -> Path:
    (files_only / "kpis.yaml").write_text(textwrap.dedent(KPIS).lstrip("\n"))
    (files_only / "kpi-values.csv").write_text(VALUES)
    config = files_only / "tether.yaml"
    config.write_text(config.read_text() + textwrap.dedent("""\
        kpi_sources:
          - type: csv
            options: {path: kpi-values.csv}
        """))
    return files_only


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_status_json_is_a_stable_document(ws: Path) -> None:
    result = run("kpi", "status", "--json", "--at", "2025-07-02", "-c", str(ws))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "tether.kpi-status/1"
    assert doc["at"] == "2025-07-02T00:00:00+00:00"
    kpis = {k["id"]: k for k in doc["kpis"]}
    assert list(kpis) == ["opex-reduction", "onboarding-time", "nps", "uptime",
                          "legacy-migration"]  # config order
    assert {k: v["status"] for k, v in kpis.items()} == {
        "opex-reduction": "off_track", "onboarding-time": "on_track", "nps": "unknown",
        "uptime": "unknown", "legacy-migration": "retired"}
    opex = kpis["opex-reduction"]
    assert set(opex) == {
        "id", "name", "owner", "objective", "unit", "direction", "band", "baseline", "target",
        "deadline", "weight", "stake", "currency", "status", "lifecycle", "value", "at",
        "attainment", "expected", "pace", "slope_per_day", "forecast", "forecast_at",
        "forecast_attainment", "shortfall", "value_at_risk", "in_band", "ahead", "trend",
        "noise_per_day", "points",
        "reason"}
    assert (opex["owner"], opex["value"], opex["target"], opex["points"]) == (
        "Dana Whitfield", 3.0, 10.0, 4)
    assert opex["value_at_risk"] == pytest.approx(4_000_000, rel=0.02)
    assert opex["reason"].startswith("off track: forecast 5.99 of 10.0 $M by 2025-12-31 (60% of "
                                    "the planned change), below the 75% line")
    assert kpis["onboarding-time"]["points"] == 4  # from the CSV source
    assert kpis["nps"]["band"] == [45.0, 70.0]
    assert kpis["nps"]["reason"].startswith("unknown: 2 measurements, 4 needed for a trend")
    assert kpis["uptime"]["reason"].startswith("unknown: no measurements yet")


def test_status_table_is_sorted_by_value_at_risk(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(console, "width", 80)
    result = run("kpi", "status", "--at", "2025-07-02", "-c", str(ws))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "KPI status at 2025-07-02T00:00+00:00" in out
    table, _, reasons = out.partition("└")
    order = [table.index(f"│ {kpi} ") for kpi in ("opex-reduction", "onboarding-time",
                                                    "legacy-migration", "nps", "uptime")]
    assert order == sorted(order)
    assert "USD" in table and "4,010,000" in table and "off track" in table
    # 80 columns: each KPI's owner and reason are listed under the table.
    assert ("opex-reduction (Dana Whitfield): off track: forecast 5.99 of 10.0 $M by 2025-12-31 "
            "(60% of the planned change), below the 75% line") in reasons


def test_a_wide_table_holds_owner_and_reason(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(console, "width", 220)
    text = run("kpi", "status", "--at", "2025-07-02", "-c", str(ws)).stdout
    header = next(line for line in text.splitlines() if "KPI" in line and "attain." in line)
    assert "owner" in header and "reason" in header
    assert "│ Dana Whitfield │" in text and "(Dana Whitfield):" not in text


def test_record_then_status(ws: Path) -> None:
    result = run("kpi", "record", "nps", "44", "--at", "2025-07-15", "-c", str(ws))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("Recorded nps = 44.0 at 2025-07-15T00:00:00+00:00 "
                                     "(1 value stored for nps).")
    run("kpi", "record", "nps", "46", "--at", "2025-07-22", "-c", str(ws))
    doc = json.loads(run("kpi", "status", "--json", "--at", "2025-07-31", "-c", str(ws)).stdout)
    nps = next(k for k in doc["kpis"] if k["id"] == "nps")
    assert (nps["points"], nps["value"]) == (4, 46.0)  # inline values + recorded ones
    assert nps["status"] in ("on_track", "at_risk")

    again = run("kpi", "record", "nps", "50", "--at", "2025-07-15", "-c", str(ws))
    assert again.exit_code == 1
    assert "nps already has the value 44.0 at 2025-07-15T00:00:00+00:00; stored values are " \
           "never overwritten" in again.stderr


def test_record_checks_its_arguments(ws: Path) -> None:
    result = run("kpi", "record", "npx", "44", "-c", str(ws))
    assert result.exit_code == 2 and "unknown KPI 'npx'; did you mean 'nps'?" in result.stderr
    result = run("kpi", "record", "nps", "lots", "-c", str(ws))
    assert result.exit_code == 2 and "'lots' is not a number" in result.stderr
    result = run("kpi", "record", "nps", "nan", "-c", str(ws))
    assert result.exit_code == 2
    result = run("kpi", "record", "nps", "4", "--at", "yesterday", "-c", str(ws))
    assert result.exit_code == 2 and "'yesterday' is not a date" in result.stderr
    result = run("kpi", "record", "-c", str(ws), "nps", "--", "-3")
    assert result.exit_code == 0, result.output
    assert "Recorded nps = -3.0" in result.stdout


def test_an_invalid_kpi_file_exits_2_with_its_line(ws: Path) -> None:
    kpis = ws / "kpis.yaml"
    kpis.write_text(kpis.read_text().replace("direction: down", "direction: dwn"))
    result = run("kpi", "status", "-c", str(ws))
    assert result.exit_code == 2
    assert (f"{kpis}:23:5: kpis[1].direction: must be up, down, or a band [low, high] of two "
            "numbers; did you mean 'down'?") in result.stderr


def test_a_failing_source_is_named(ws: Path) -> None:
    (ws / "kpi-values.csv").write_text("kpi,date,value\nnps,2025-07-01,high\n")
    result = run("kpi", "status", "-c", str(ws))
    assert result.exit_code == 2
    assert "kpi-values.csv:2:3: value: 'high' is not a number" in result.stderr


def test_a_pass_computes_kpi_statuses(ws: Path, clock) -> None:
    workspace = load_workspace(ws)
    with workspace.open_store() as store:
        result = run_pass(workspace, store, "plan", clock)
        assert len(store.measurements()) == 10  # inline and CSV values, kept for next time
    statuses = result.kpi_statuses
    assert list(statuses) == ["opex-reduction", "onboarding-time", "nps", "uptime",
                              "legacy-migration"]
    # The clock says 2025-05-05: before any opex value, so too little data to judge.
    assert statuses["opex-reduction"].status == "unknown"
    assert statuses["legacy-migration"].status == "retired"
    doc = run_document(result)
    assert [k["id"] for k in doc["kpis"]] == list(statuses)
    assert set(doc["kpis"][0]) == {"id", "status", "value", "target", "attainment",
                                   "forecast", "value_at_risk", "reason"}
    assert json.loads(json.dumps(doc)) == doc
