"""The drift fields a task's rules see from its KPIs and the work around it (link_facts),
however they are computed: joined over only the items that can be flagged, or built one
task at a time while the drift pack runs, they are those of the joins over every item."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from tether.kpi.status import kpi_statuses
from tether.model import KPI, Guardrail, Link, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor, render_message
from tether.plugins import Plugins
from tether.rules.joins import LISTED, conflicts, guardrail_drivers
from tether.rules.loader import load_rulebook
from tether.rules.signals import (
    JOIN_FIELDS,
    Judgement,
    TaskLinks,
    breached_guardrails,
    join_facts,
    link_facts,
    own_links,
    served,
)

NOW = datetime(2025, 7, 1, tzinfo=UTC)
KEYS = Judgement().entities


def portfolio(seed: int, n: int = 300) -> tuple[list[Task], list[Mapping], list[KPI], dict]:
    """Items on eight KPIs (closed ones, guardrails breached or not, trade-offs), sharing
    vendors, segments, components and links; a status per KPI."""
    rng = random.Random(seed)
    closed = NOW - timedelta(days=40)
    kpis = [KPI(f"k{i}", f"K{i}", owner=rng.choice([None, f"owner{i}"]),
                lifecycle="achieved" if i in (6, 7) else "active",
                lifecycle_changed=closed if i == 6 else None,
                guardrails=(Guardrail(f"k{(i + 1) % 8}", floor=0.5),) if i % 3 == 0 else (),
                tradeoffs=(f"k{(i + 3) % 8}",) if i % 2 == 0 else ()) for i in range(8)]
    statuses = {k.id: SimpleNamespace(status=rng.choice(["on_track", "at_risk", "off_track"]),
                                      trend=rng.choice(["improving", "flat"]),
                                      value=rng.choice([0.2, 0.9])) for k in kpis}
    statuses["k0"].trend, statuses["k1"].value = "improving", 0.2  # one breach at least
    tasks = []
    for i in range(n):
        created = NOW - timedelta(days=rng.randint(1, 300))
        tasks.append(Task(
            "jira", f"P-{i}", f"item {i}", type=rng.choice(["Story", "Bug"]),
            status_category=rng.choice(["todo", "in_progress", "done"]),
            labels=tuple(rng.sample(["vendor:acme", "vendor:globex", "segment:smb",
                                     "customer:x", "misc"], rng.randint(0, 2))),
            components=tuple(rng.sample(["Billing", "Portal"], rng.randint(0, 1))),
            custom={"vendor": "Acme"} if rng.random() < 0.1 else {},
            links=tuple(Link("blocks", f"P-{rng.randrange(n)}") for _ in range(rng.choice([0, 0, 1]))),
            created=created, updated=created + timedelta(days=rng.randint(0, 200))
            if rng.random() < 0.8 else None))
    mappings = [Mapping(t.ref, f"k{j}", "r", 1.0, "") for t in tasks
                for j in rng.sample(range(8), rng.choice([0, 1, 1, 2, 3]))]
    return tasks, mappings, kpis, statuses


def joined_over_every_item(tasks, mappings, kpis, statuses) -> dict[str, dict]:
    """The drift fields as defined: each task's own, then both joins given every item."""
    by_id, serves = {k.id: k for k in kpis}, served(mappings)
    facts = {t.ref: own_links(t, serves.get(t.ref, set()), by_id, statuses) for t in tasks}
    guardrail_drivers(tasks, serves, by_id, breached_guardrails(by_id, statuses), KEYS, facts)
    conflicts(tasks, facts, by_id, KEYS)
    return facts


@pytest.mark.parametrize("seed", range(6))
def test_the_drift_fields_are_those_of_the_joins_over_every_item(seed: int) -> None:
    tasks, mappings, kpis, statuses = portfolio(seed)
    expected = joined_over_every_item(tasks, mappings, kpis, statuses)
    by_id = {k.id: k for k in kpis}
    assert link_facts(tasks, mappings, by_id, statuses) == expected
    # Built one task at a time while the pack runs, from the non-empty joins alone.
    serves = served(mappings, shared=True)
    joins = join_facts(tasks, serves, by_id, statuses)
    assert joins == {ref: kept for ref, facts in expected.items()
                     if (kept := {n: facts[n] for n in JOIN_FIELDS if facts[n]})}
    links = TaskLinks({t.ref: t for t in tasks}, serves, by_id, statuses, joins)
    assert dict(links) == expected
    flagged = {n for facts in joins.values() for n in facts}
    assert {"guardrail_breaches", "conflicts_with"} <= flagged  # the portfolio has both


def test_a_key_shared_by_many_items_names_a_few_of_them_on_each() -> None:
    cost, otd = KPI("cost", "Cost", tradeoffs=("otd",)), KPI("otd", "On-time delivery")
    tasks = [Task("jira", f"V-{i}", "t", labels=("vendor:acme",)) for i in range(40)]
    maps = [Mapping(t.ref, "cost" if i % 2 else "otd", "r", 1.0, "") for i, t in enumerate(tasks)]
    facts = link_facts(tasks, maps, {"cost": cost, "otd": otd})
    for i, t in enumerate(tasks):
        other = "otd" if i % 2 else "cost"
        named = facts[t.ref]["conflicts_with"]
        assert len(named) == LISTED and named == sorted(named)
        assert all(int(ref.split("-")[1]) % 2 != i % 2 for ref in named)  # the other side's
        assert facts[t.ref]["conflict_kpis"] == [other]


def test_each_finding_reads_as_if_rendered_from_all_of_its_values() -> None:
    kpis = [KPI("cost", "Cost", owner="Dana", tradeoffs=("otd",), baseline=0.0,
                baseline_date=NOW - timedelta(days=180), target=10.0,
                deadline=NOW + timedelta(days=90)),
            KPI("otd", "On-time delivery", owner="Lena"),
            KPI("old", "Old", lifecycle="achieved", lifecycle_changed=NOW - timedelta(days=60))]
    history = [Measurement("cost", NOW - timedelta(days=30 * m), 0.1 * m) for m in range(6)]
    tasks, _, _, _ = portfolio(7, 120)
    rng = random.Random(7)
    maps = [Mapping(t.ref, k, "r", 1.0, "") for t in tasks
            for k in rng.sample(["cost", "otd", "old"], rng.choice([0, 1, 1, 2]))]
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    rules = load_rulebook(packs, kpis).signals
    assessor = Assessor(rules)
    statuses = kpi_statuses(kpis, history, NOW)
    try:
        found = [f for f in assessor.assess(tasks, maps, kpis, NOW, statuses)
                 if not f.subject.startswith("kpi:")]
        values, _ = assessor.facts(tasks, maps, kpis, NOW, statuses)
    finally:
        assessor.close()
    by_id = {r.id: r for r in rules}
    assert {f.signal for f in found} >= {"conflict", "untethered", "stalled", "zombie"}
    for f in found:
        rule = by_id[f.rule_id]
        assert f.reason == render_message(rule.message, values[f.subject])
        assert f.advice == render_message(rule.advice, values[f.subject])
