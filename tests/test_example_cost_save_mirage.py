"""The cost-save-mirage example: a $10M cost cut that looks on track while it breaks things.

One plan pass on the demo's sandboxes (Jira, GitHub, Asana), at the example's date, must
raise exactly the findings the example's README lists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tether.cli.demo import DEMO_EXAMPLE, start_demo
from tether.pipeline.run import RunResult, run_pass
from tether.plugins import Plugins

NOW = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)  # mid-June: six monthly values, Jan to Jun
PLATFORM = "github:halvorsen/platform#"

EXPECTED = {
    # opex-savings improves while on-time delivery, its guardrail, is below 95%. Of its work,
    # the items that drive the breach: they share the vendor FastFreight with the delivery
    # recovery task. PROC-1 (the programme) and PROC-4 (office supplies) do not.
    ("guardrail", "kpi:opex-savings"), ("guardrail", "jira:PROC-2"),
    ("guardrail", "jira:PROC-3"),
    # Delaying FastFreight's payments vs scaling an express lane on FastFreight.
    ("conflict", "jira:PROC-2"), ("conflict", "jira:PROC-3"),
    ("conflict", "asana:1208000102"), ("conflict", "asana:1208000103"),
    # CI speed-ups after ci-build-time was achieved (2025-04-15).
    ("zombie", f"{PLATFORM}210"), ("zombie", f"{PLATFORM}214"),
    # Pricing work all done in the last quarter, margin flat; and nobody works on it now.
    ("no_impact", "kpi:gross-margin"), ("starved", "kpi:gross-margin"),
    # DSO at risk with one open item.
    ("starved", "kpi:dso"),
    # On-time delivery out of its band, $2.5M penalty stake: its owner must decide.
    ("gate", "kpi:on-time-delivery"),
    # Chores no rule links to a KPI.
    ("untethered", "jira:PROC-7"), ("untethered", "jira:FIN-6"),
    ("untethered", "asana:1208000107"), ("untethered", f"{PLATFORM}223"),
}

# Open and done items that serve a KPI and must not be flagged at all.
HEALTHY = ["jira:PROC-1", "jira:PROC-4", "jira:PROC-5", "jira:PROC-6", "jira:FIN-1", "jira:FIN-5",
           "asana:1208000101", "asana:1208000104", "asana:1208000105", "asana:1208000106", f"{PLATFORM}220",
           f"{PLATFORM}221", f"{PLATFORM}205", f"{PLATFORM}198"]


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    demo = start_demo(tmp_path_factory.mktemp("mirage") / "demo", Plugins(), "cost-save-mirage")
    try:
        assert demo.today == NOW
        with demo.workspace.open_store() as store:
            return run_pass(demo.workspace, store, "plan", lambda: NOW)
    finally:
        demo.stop()


def test_it_is_the_default_demo() -> None:
    assert DEMO_EXAMPLE == "cost-save-mirage"


def test_the_plan_raises_exactly_the_expected_findings(planned: RunResult) -> None:
    assert planned.pulled == {"jira": 13, "github": 7, "asana": 7}
    assert {(f.signal, f.subject) for f in planned.findings} == EXPECTED
    flagged = {f.subject for f in planned.findings}
    assert [ref for ref in HEALTHY if ref in flagged] == []
    assert planned.applied is None  # plan writes nothing


def test_the_trackers_carry_the_fields_the_rules_read(planned: RunResult) -> None:
    tasks = {t.ref: t for t in planned.tasks}
    proc2 = tasks["jira:PROC-2"]
    assert proc2.custom["Vendor"] == "FastFreight" and proc2.estimate == 5
    assert proc2.components == ("Procurement",) and proc2.status_category == "in_progress"
    assert tasks["asana:1208000102"].custom["Vendor"] == "FastFreight"
    done = tasks["asana:1208000105"]  # seeded with fixed dates (created_at, modified_at)
    assert done.status_category == "done" and done.estimate == 2
    assert done.resolved == done.updated == datetime(2025, 3, 28, 16, 0, tzinfo=UTC)
    assert tasks[f"{PLATFORM}214"].updated == datetime(2025, 6, 9, 10, 0, tzinfo=UTC)


def test_findings_name_the_guardrail_owner_and_carry_the_stake_at_risk(planned: RunResult) -> None:
    findings = {(f.signal, f.subject): f for f in planned.findings}
    for key in ("PROC-2", "PROC-3"):
        rail = findings["guardrail", f"jira:{key}"]
        assert "on-time-delivery" in rail.reason and "Vendor FastFreight" in rail.reason
        assert "Ravi Menon (VP Logistics)" in rail.advice
    breach = findings["guardrail", "kpi:opex-savings"].reason
    assert "on-time-delivery at 94.1%, below its floor 95, owner Ravi Menon" in breach
    conflict = findings["conflict", "jira:PROC-2"]
    assert "asana:1208000102" in conflict.reason and "express-revenue" in conflict.reason
    # KPI findings on KPIs with a stake carry money at risk: stake x forecast shortfall.
    assert findings["gate", "kpi:on-time-delivery"].value_at_risk == 2_500_000
    assert 500_000 < findings["no_impact", "kpi:gross-margin"].value_at_risk < 1_000_000
    assert "Ravi Menon" in findings["gate", "kpi:on-time-delivery"].advice
    assert "3 of the 3 linked items active from 2025-03-18 to 2025-06-16 closed" in \
        findings["no_impact", "kpi:gross-margin"].reason

