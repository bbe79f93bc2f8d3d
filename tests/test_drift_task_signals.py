"""Task-level drift signals of the built-in pack: untethered, zombie, stalled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tether.kpi.status import kpi_statuses
from tether.model import KPI, Guardrail, Link, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor
from tether.plugins import Plugins
from tether.rules.entities import EntityKeys
from tether.rules.loader import load_rulebook
from tether.rules.signals import Judgement

NOW = datetime(2025, 7, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)
CLOSED = datetime(2025, 5, 1, tzinfo=UTC)


def signals_of(task: Task, kpis: list[KPI], measurements=()) -> set[str]:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    assessor = Assessor(load_rulebook(packs, kpis).signals)
    mappings = [Mapping(task.ref, k.id, "r", 1.0, "") for k in kpis]
    try:
        found = assessor.assess([task], mappings, kpis, NOW,
                                kpi_statuses(kpis, list(measurements), NOW))
    finally:
        assessor.close()
    return {f.signal for f in found if f.subject == task.ref}


def item(updated: datetime, category: str = "in_progress") -> Task:
    return Task("jira", "OPS-1", "Migrate reports", type="Task", status_category=category,
                created=START, updated=updated)


@pytest.mark.parametrize("changed, updated, expected", [
    (CLOSED, CLOSED + timedelta(days=10), {"zombie"}),  # kept moving after the close
    (CLOSED, CLOSED + timedelta(days=8), {"zombie"}),  # past the 7-day grace
    (CLOSED, CLOSED + timedelta(days=7), set()),  # winding down within the grace period
    (CLOSED, CLOSED + timedelta(hours=3), set()),
    (CLOSED, CLOSED - timedelta(days=10), {"untethered"}),  # untouched since: a stale link
    (None, NOW, {"untethered"}),  # close date unknown: never call it a zombie
])
def test_work_on_a_retired_kpi(changed, updated, expected) -> None:
    retired = KPI("legacy", "Legacy", lifecycle="retired", lifecycle_changed=changed)
    assert signals_of(item(updated), [retired]) == expected


def test_a_kpi_achieved_then_retired_closed_when_it_was_achieved() -> None:
    kpi = KPI("legacy", "Legacy", lifecycle="retired", achieved_on=CLOSED,
              retired_on=CLOSED + timedelta(days=30))
    assert signals_of(item(CLOSED + timedelta(days=12)), [kpi]) == {"zombie"}
    assert signals_of(item(CLOSED + timedelta(days=5)), [kpi]) == set()


def test_done_work_on_a_retired_kpi_is_not_flagged() -> None:
    retired = KPI("legacy", "Legacy", lifecycle="retired", lifecycle_changed=CLOSED)
    assert signals_of(item(NOW, "done"), [retired]) == set()


def test_one_active_kpi_is_enough_to_be_tethered() -> None:
    kpis = [KPI("legacy", "Legacy", lifecycle="achieved", lifecycle_changed=CLOSED),
            KPI("nps", "NPS")]
    assert signals_of(item(NOW), kpis) == set()


def slipping_kpi() -> tuple[KPI, list[Measurement]]:
    kpi = KPI("margin", "Margin", baseline=0.0, baseline_date=START, target=10.0,
              deadline=datetime(2025, 12, 31, tzinfo=UTC))
    history = [Measurement("margin", START + timedelta(days=30 * i), 1.0) for i in range(6)]
    return kpi, history


@pytest.mark.parametrize("idle, expected", [(20, {"stalled"}), (14, {"stalled"}), (3, set())])
def test_idle_work_on_a_slipping_kpi_is_stalled(idle: int, expected: set[str]) -> None:
    kpi, history = slipping_kpi()
    assert signals_of(item(NOW - timedelta(days=idle)), [kpi], history) == expected


def test_idle_work_on_a_kpi_without_status_is_not_stalled() -> None:
    kpi, _ = slipping_kpi()
    assert signals_of(item(NOW - timedelta(days=60)), [kpi]) == set()


def assess_all(tasks: list[Task], mappings: list[Mapping], kpis: list[KPI], measurements=()):
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    assessor = Assessor(load_rulebook(packs, kpis).signals)
    try:
        return assessor.assess(tasks, mappings, kpis, NOW,
                               kpi_statuses(kpis, list(measurements), NOW))
    finally:
        assessor.close()


def monthly(kid: str, values: list[float]) -> list[Measurement]:
    return [Measurement(kid, START + timedelta(days=30 * i), v) for i, v in enumerate(values)]


def guarded() -> list[KPI]:
    savings = KPI("savings", "Savings", owner="Dana", baseline=0.0, baseline_date=START,
                  target=10.0, deadline=datetime(2025, 12, 31, tzinfo=UTC),
                  guardrails=(Guardrail("otd", floor=0.95),))
    otd = KPI("otd", "On-time delivery", owner="Lena", direction="band", band=(0.95, 1.0),
              weight=0)
    return [savings, otd]


@pytest.mark.parametrize("otd, breached", [(0.90, True), (0.97, False)])
def test_only_the_work_that_drives_a_guardrail_breach_is_flagged(otd: float,
                                                                 breached: bool) -> None:
    """Savings improve while on-time delivery is below its floor: flag the savings work that
    touches delivery (it serves both, shares a segment label or a link with delivery work),
    not a renewal e-mail template that cannot touch it, nor the delivery work itself."""
    both = Task("jira", "S-1", "Cheaper carrier", labels=("savings",))
    shares = Task("jira", "S-2", "Cut SMB shipping", labels=("Segment:SMB",))
    linked = Task("jira", "S-3", "Renegotiate depots", links=(Link("relates to", "D-1"),))
    elsewhere = Task("jira", "S-4", "更新メールのテンプレート", labels=("segmentation",))
    delivery = Task("jira", "D-1", "Recover SMB deliveries", labels=("segment:smb",))
    on = {"S-1": ("savings", "otd"), "S-2": ("savings",), "S-3": ("savings",),
          "S-4": ("savings",), "D-1": ("otd",)}
    tasks = [both, shares, linked, elsewhere, delivery]
    maps = [Mapping(t.ref, k, "r", 1.0, "") for t in tasks for k in on[t.key]]
    history = monthly("savings", [0, 2, 4, 6, 8, 9]) + monthly("otd", [0.99] * 5 + [otd])
    found = {(f.subject, f.signal): f for f in assess_all(tasks, maps, guarded(), history)}
    flagged = {ref for ref, signal in found if signal == "guardrail"}
    if not breached:
        assert flagged == set()
        return
    assert flagged == {"jira:S-1", "jira:S-2", "jira:S-3", "kpi:savings"}
    assert "it shares Segment:SMB with jira:D-1 on otd" in found["jira:S-2", "guardrail"].reason
    assert "pushes savings, which is improving" in found["jira:S-1", "guardrail"].reason
    assert "Lena" in found["jira:S-3", "guardrail"].advice
    assert "otd at 0.9, below its floor 0.95, owner Lena" in found["kpi:savings", "guardrail"].reason


def test_items_on_trade_off_kpis_sharing_a_vendor_conflict() -> None:
    cost = KPI("cost", "Cost", tradeoffs=("otd",))
    otd = KPI("otd", "On-time delivery")
    a = Task("jira", "PRO-1", "Delay carrier payments", custom={"Vendor": "FastFreight"})
    b = Task("asana", "77", "Scale up express lane", custom={"vendor": "FastFreight"})
    c = Task("asana", "78", "Other carrier", custom={"vendor": "SlowBoat"})
    d = Task("jira", "PRO-2", "Done already", status_category="done",
             custom={"Vendor": "FastFreight"})
    maps = [Mapping(a.ref, "cost", "r", 1.0, ""), Mapping(d.ref, "cost", "r", 1.0, ""),
            Mapping(b.ref, "otd", "r", 1.0, ""), Mapping(c.ref, "otd", "r", 1.0, "")]
    found = {(f.subject, f.signal): f for f in assess_all([a, b, c, d], maps, [cost, otd])}
    assert ("jira:PRO-1", "conflict") in found and ("asana:77", "conflict") in found
    assert "asana:77" in found[("jira:PRO-1", "conflict")].reason
    assert ("asana:78", "conflict") not in found and ("jira:PRO-2", "conflict") not in found


def test_linked_items_on_trade_off_kpis_conflict_without_a_shared_entity() -> None:
    cost, otd = KPI("cost", "Cost", tradeoffs=("otd",)), KPI("otd", "On-time delivery")
    a = Task("jira", "A-1", "a", links=(Link("blocks", "A-2"),))
    b = Task("jira", "A-2", "b")
    maps = [Mapping(a.ref, "cost", "r", 1.0, ""), Mapping(b.ref, "otd", "r", 1.0, "")]
    found = {(f.subject, f.signal) for f in assess_all([a, b], maps, [cost, otd])}
    assert {("jira:A-1", "conflict"), ("jira:A-2", "conflict")} <= found


def _trade_offs(keys: EntityKeys | None = None) -> dict[tuple[str, str], str]:
    cost, churn = KPI("cost", "Cost", tradeoffs=("churn",)), KPI("churn", "Churn")
    a = Task("jira", "C-1", "Cut support hours", labels=("segment:smb-at-risk",))
    b = Task("asana", "9", "Win back at-risk SMB accounts", labels=("segment:smb-at-risk",))
    c = Task("asana", "10", "Segmentation study", labels=("segmentation",))
    d = Task("github", "5", "Account plans", labels=("account/acme",))
    e = Task("jira", "C-2", "Acme contract", labels=("account/acme",))
    on = {"C-1": "cost", "9": "churn", "10": "churn", "5": "churn", "C-2": "cost"}
    tasks = [a, b, c, d, e]
    maps = [Mapping(t.ref, on[t.key], "r", 1.0, "") for t in tasks]
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    kpis = [cost, churn]
    assessor = Assessor(load_rulebook(packs, kpis).signals,
                        Judgement(keys) if keys else Judgement())
    try:
        found = assessor.assess(tasks, maps, kpis, NOW, kpi_statuses(kpis, [], NOW))
    finally:
        assessor.close()
    return {(f.subject, f.signal): f.reason for f in found}


def test_conflict_sees_label_prefixes_and_names_the_shared_key() -> None:
    found = _trade_offs()
    conflicts = {ref for ref, signal in found if signal == "conflict"}
    assert conflicts == {"jira:C-1", "asana:9"}  # `segmentation` only looks alike
    assert "both touch segment:smb-at-risk" in found["jira:C-1", "conflict"]


def test_entity_keys_are_configurable_per_workspace() -> None:
    found = _trade_offs(EntityKeys(labels=("account/*",), components=False, fields=()))
    assert {ref for ref, signal in found if signal == "conflict"} == {"jira:C-2", "github:5"}
