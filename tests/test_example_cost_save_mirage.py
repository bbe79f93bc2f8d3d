"""The cost-save-mirage example: a $10M cost cut that looks on track while it breaks things.

One plan pass at a fixed date must raise exactly the findings the example's README lists."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.pipeline.run import run_pass
from tether.workspace import load_workspace

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cost-save-mirage"
NOW = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)  # mid-June: six monthly values, Jan to Jun

EXPECTED = {
    # Procurement's savings work pushes opex-savings while on-time delivery is below 95%.
    ("guardrail", "jira:PROC-1"), ("guardrail", "jira:PROC-2"),
    ("guardrail", "jira:PROC-3"), ("guardrail", "jira:PROC-4"),
    # Delaying FastFreight's payments vs scaling an express lane on FastFreight.
    ("conflict", "jira:PROC-2"), ("conflict", "jira:PROC-3"),
    ("conflict", "asana:1208000102"), ("conflict", "asana:1208000103"),
    # CI speed-ups after ci-build-time was achieved (2025-04-15).
    ("zombie", "github:210"), ("zombie", "github:214"),
    # Pricing work all done, margin flat.
    ("no_impact", "kpi:gross-margin"),
    # DSO at risk with one open item.
    ("starved", "kpi:dso"),
    # On-time delivery out of its band, $2.5M penalty stake: its owner must decide.
    ("gate", "kpi:on-time-delivery"),
    # Chores no rule links to a KPI.
    ("untethered", "jira:PROC-7"), ("untethered", "jira:FIN-6"),
    ("untethered", "asana:1208000107"), ("untethered", "github:223"),
}

# Open and done items that serve a KPI and must not be flagged at all.
HEALTHY = ["jira:PROC-5", "jira:PROC-6", "jira:FIN-1", "jira:FIN-5", "asana:1208000101",
           "asana:1208000104", "asana:1208000105", "asana:1208000106", "github:220",
           "github:221", "github:205", "github:198"]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    target = tmp_path / "cost-save-mirage"
    shutil.copytree(EXAMPLE, target)
    return target


def plan(ws_dir: Path):
    ws = load_workspace(ws_dir / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, "plan", lambda: NOW)


def test_the_plan_raises_exactly_the_expected_findings(example: Path) -> None:
    result = plan(example)
    assert result.pulled == {"jira": 13, "asana": 7, "github": 7}
    assert {(f.signal, f.subject) for f in result.findings} == EXPECTED
    flagged = {f.subject for f in result.findings}
    assert [ref for ref in HEALTHY if ref in flagged] == []
    assert not (example / "data" / "jira-export.csv.tether.json").exists()  # plan writes nothing


def test_findings_name_the_guardrail_owner_and_carry_the_stake_at_risk(example: Path) -> None:
    findings = {(f.signal, f.subject): f for f in plan(example).findings}
    for key in ("PROC-1", "PROC-2", "PROC-3", "PROC-4"):
        rail = findings["guardrail", f"jira:{key}"]
        assert "on-time-delivery" in rail.reason
        assert "Ravi Menon (VP Logistics)" in rail.advice
    conflict = findings["conflict", "jira:PROC-2"]
    assert "asana:1208000102" in conflict.reason and "express-revenue" in conflict.reason
    # KPI findings on KPIs with a stake carry money at risk: stake x forecast shortfall.
    assert findings["gate", "kpi:on-time-delivery"].value_at_risk == 2_500_000
    assert 500_000 < findings["no_impact", "kpi:gross-margin"].value_at_risk < 1_000_000
    assert "Ravi Menon" in findings["gate", "kpi:on-time-delivery"].advice
    assert "4 of 4 items" in findings["no_impact", "kpi:gross-margin"].reason


def test_the_example_rule_tests_pass(example: Path) -> None:
    result = CliRunner().invoke(main, ["rules", "test", "-c", str(example / "tether.yaml")])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
