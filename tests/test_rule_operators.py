"""Every operator, positive and negated, means the same on durable-rules as in the reference
semantics that `tether rules explain` shows, including for missing values and empty lists."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from tether.config.yamlsrc import load_text
from tether.rules.compiler import compile_rules
from tether.rules.engine import RuleEngine
from tether.rules.evaluate import evaluate
from tether.rules.fields import TASK_CATALOG
from tether.rules.language import RuleParser

NOW = datetime(2025, 5, 1, tzinfo=UTC)

CONDITIONS = {
    "eq": "project: OPS",
    "eq_number": "estimate: 3",
    "in": "status_category: {in: [todo, in_progress]}",
    "any_of": "labels: {any_of: [vendor, cloud-cost]}",
    "all_of": "labels: {all_of: [vendor, sla]}",
    "matches": "title: {matches: '(?i)^consolidat'}",
    "matches_list": "labels: {matches: '^team-'}",
    "contains": "title: {contains: VENDOR}",
    "gt": "estimate: {gt: 5}",
    "gte": "estimate: {gte: 5}",
    "lt": "idle_days: {lt: 30}",
    "lte": "idle_days: {lte: 30}",
    "date_gt": "created: {gt: 2025-01-01}",
    "exists": "epic: {exists: true}",
    "not_exists": "assignee: {exists: false}",
    "custom_text": "custom.vendor: Acme",
    "custom_number": "custom.team_size: {gte: 4}",
    "nested": "any: [{all: [{project: PLAT}, {labels: {any_of: [sla]}}]}, {not: {estimate: {lt: 8}}}]",
}

LABELS = ["vendor", "cloud-cost", "sla", "team-a", "misc"]


def rule_yaml(name: str, when: str, negate: bool) -> str:
    body = f"not: {{{when}}}" if negate else when
    return f"- id: {name.replace('_', '-')}{'-not' if negate else ''}\n  kpi: k\n  when: {{{body}}}\n"


def parse_rules(text: str):
    problems: list = []
    doc = load_text(text, "ops.yaml")
    parser = RuleParser(doc, "test", problems)
    rules = [parser.mapping_rule(item, (i,), TASK_CATALOG) for i, item in enumerate(doc.data)]
    assert not problems, problems
    return rules


def random_values(rng: random.Random) -> dict:
    def maybe(value):
        return value if rng.random() < 0.75 else None

    return {
        "project": maybe(rng.choice(["OPS", "PLAT"])),
        "status_category": rng.choice(["todo", "in_progress", "done"]),
        "labels": rng.sample(LABELS, rng.randint(0, 3)),
        "title": maybe(rng.choice(["Consolidate vendors", "consolidation of VENDOR list",
                                   "Fix bug", "Our vendor review"])),
        "estimate": maybe(rng.choice([1.0, 3, 5, 8.0, 13])),
        "idle_days": maybe(rng.choice([0.5, 29.9, 30, 31, 200])),
        "created": maybe(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(-2, 2))),
        "epic": maybe("OPS-1"),
        "assignee": maybe("dana"),
        "custom.vendor": maybe(rng.choice(["Acme", "Globex", 7])),
        "custom.team_size": maybe(rng.choice([2, 4, 6, "six"])),
    }


@pytest.mark.parametrize("negate", [False, True], ids=["positive", "negated"])
@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_engine_agrees_with_reference_semantics(name: str, negate: bool) -> None:
    rules = parse_rules(rule_yaml(name, CONDITIONS[name], negate))
    engine = RuleEngine(compile_rules(rules, "ops"))
    rng = random.Random(f"{name}-{negate}")
    subjects = [(f"s:{i}", random_values(rng)) for i in range(300)]
    matched = engine.match(subjects)
    expected = {ref for ref, values in subjects if evaluate(rules[0].when, values)}
    assert {ref for ref, hit in matched.items() if hit} == expected
    # Each operator must split the sample, or the comparison above proves nothing.
    assert 0 < len(expected) < len(subjects)
    engine.close()
