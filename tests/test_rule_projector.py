"""The projector a rule set compiles builds exactly the facts the engine was given before it
(field values projected per kind, text tests derived, every value engine-safe), whether it
reads a task or a dict of field values; and the engine reports each match once, in rule
order, even when durable-rules fires a rule twice or rejects a fact as a false duplicate."""

from __future__ import annotations

import gc
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tether.config.yamlsrc import load_text
from tether.errors import TetherError
from tether.model import Link, Task
from tether.pipeline.map import Mapper, collector_paused, task_reader, task_values
from tether.rules.compiler import (
    REF_KEY,
    CompiledRules,
    compile_rules,
    engine_safe,
    ruleset_gate,
)
from tether.rules.engine import CHUNK, OBSERVED, RuleEngine, _hit, _Host
from tether.rules.evaluate import evaluate, rule_condition, text_holds, typed
from tether.rules.fields import DATE, NUM, TASK_CATALOG
from tether.rules.language import RuleParser

NOW = datetime(2025, 5, 1, tzinfo=UTC)

RULES = """\
- id: texts
  kpi: k
  when:
    any:
      - title: {matches: '(?i)\\b(vend|kyc)'}
      - title: {contains: VENDOR}
      - body: {contains: "a\\0b"}
      - labels: {matches: '^team-'}
      - labels: {contains: Team}
      - custom.note: {contains: x}
      - custom.note: {matches: '^\\d'}
- id: kinds
  kpi: k
  when:
    all:
      - project: {in: [OPS, PLAT]}
      - status_category: {in: [todo, in_progress]}
      - labels: {any_of: [vendor, sla]}
      - not: {components: {all_of: [Billing, Portal]}}
      - estimate: {gt: 0.00001}
      - idle_days: {lt: 30}
      - age_days: {gte: 2}
      - created: {gt: 2025-01-01}
      - links: {any_of: [OPS-1]}
      - link_types: {any_of: [blocks]}
      - epic: {exists: true}
      - not: {assignee: {exists: true}}
- id: custom
  kpi: k
  when:
    any:
      - custom.score: {lt: 0.001}
      - custom.score: {gte: 1000000000000000}
      - custom.team: red
      - custom.size: {in: [3, 5]}
      - custom.flag: {exists: true}
      - custom.tags: {any_of: [x, y]}
      - custom.when: {gt: 2025-01-01}
"""

ODD = [None, "", "x", "Team-red", "ä vendor", "bad \ud83d text", "a\0b", 0, 7, -0.0, 0.5, 5e-05,
       1e16, 3.2e-06, float("inf"), float("nan"), True, False, [], (), ["x", 2, None],
       ("team-a", "kyc"), {"a": 1}, datetime(2025, 2, 1, tzinfo=UTC),
       datetime(1970, 1, 1, 0, 0, 0, 10, tzinfo=UTC)]


def parse_rules(text: str) -> list:
    problems: list = []
    doc = load_text(text, "rules.yaml")
    parser = RuleParser(doc, "test", problems)
    rules = [parser.mapping_rule(item, (i,), TASK_CATALOG) for i, item in enumerate(doc.data)]
    assert not problems, problems
    return rules


def reference_fact(compiled: CompiledRules, values: dict[str, Any]) -> dict[str, Any]:
    """CompiledRules.fact and engine.safe_fact as they were before projectors."""
    fact: dict[str, Any] = {}
    for name, slots, texts in compiled._plan():
        raw = values.get(name)
        converted: dict[str | None, Any] = {None: None if raw in ((), []) else raw}
        for kind, key, is_presence in slots:
            if kind is not None and kind not in converted:
                converted[kind] = typed(raw, kind)
            value = converted[kind]
            if is_presence:
                fact[key] = value is not None
            elif value is not None:
                fact[key] = value.timestamp() if kind == DATE else float(value) if kind == NUM \
                    else value
        items = [] if raw is None else [str(v) for v in raw] if isinstance(raw, list | tuple) \
            else [str(raw)]
        for key, cond in texts:
            fact[key] = text_holds(cond, items) if items else False
    return engine_safe(fact)  # type: ignore[no-any-return]


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal facts (a NaN never survives engine_safe, so plain == would do but for -0.0)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] and type(a[k]) is type(b[k])
        and (not isinstance(a[k], float) or math.copysign(1, a[k]) == math.copysign(1, b[k]))
        for k in a)


@pytest.fixture(scope="module")
def compiled() -> CompiledRules:
    return compile_rules(parse_rules(RULES), "proj")


def test_a_projector_of_values_builds_the_facts_the_engine_was_given(compiled) -> None:
    rng = random.Random(3)
    names = sorted(compiled.field_names())
    project = compiled.projector()
    for _ in range(3000):
        values = {n: rng.choice(ODD) for n in names if rng.random() < 0.8}
        fact = project(None, None, values)
        assert fact.pop(REF_KEY) is None  # set by the engine
        assert same(fact, reference_fact(compiled, values)), values


def random_task(rng: random.Random, i: int) -> Task:
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.7 else None

    created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(-10, 100))
    return Task(
        "jira", f"OPS-{i}", rng.choice(["Vendor KYC", "", "fix \ud83d", "ä vendor", "a\0b"]),
        body=rng.choice(["", "a\0b", "A\0B x"]), project=rng.choice(["OPS", "PLAT", ""]),
        status_category=rng.choice(["todo", "in_progress", "done", ""]),
        assignee=maybe(rng.choice(["dana", ""])), labels=tuple(rng.sample(
            ["vendor", "sla", "team-a", "Team-B"], rng.randint(0, 3))),
        components=tuple(rng.sample(["Billing", "Portal"], rng.randint(0, 2))),
        epic=maybe(rng.choice(["OPS-1", ""])),
        links=tuple(Link(rng.choice(["blocks", "relates to"]), rng.choice(["OPS-1", "OPS-2"]))
                    for _ in range(rng.randint(0, 2))),
        estimate=maybe(rng.choice([0, 1e-06, 3, 8.5, 1e17])), created=maybe(created),
        updated=maybe(created + timedelta(days=rng.randint(0, 60))),
        custom={k: rng.choice(ODD) for k in ("note", "score", "team", "size", "flag", "tags",
                                            "when") if rng.random() < 0.6})


def test_a_task_projector_reads_each_field_as_rules_see_it(compiled) -> None:
    engine = RuleEngine(compiled)
    try:
        by_task, by_values = engine.task_projector(), compiled.projector()
        names = compiled.field_names()
        rng = random.Random(5)
        for i in range(2000):
            task = random_task(rng, i)
            assert same(by_task(task, NOW, None),
                        by_values(None, None, task_values(task, names, NOW))), task
        # Fields named as coming from the values are read there, the others from the task.
        mixed = engine.task_projector({"title"})
        task = Task("jira", "OPS-1", "Vendor", custom={"note": "x"})
        assert mixed(task, NOW, {"title": "other"}) == by_values(
            None, None, {**task_values(task, names, NOW), "title": "other"})
        assert engine.task_projector() is by_task  # generated once per way of reading
    finally:
        engine.close()


def test_the_engine_matches_as_the_reference_on_odd_values(compiled) -> None:
    rules = list(compiled.rules.values())
    engine = RuleEngine(compile_rules(rules, "odd"))
    try:
        rng = random.Random(11)
        names = sorted(compiled.field_names())
        texts = {c.field for c in compiled.derived.values()}
        # Known and kept: a non-finite number is absent to the engine; text tests read any
        # value's str() (a date, a flag) where the reference sees no text.
        finite = [v for v in ODD if not (isinstance(v, float) and not math.isfinite(v))]
        texty = [v for v in finite if v is None or isinstance(v, str | int | float | list | tuple)
                 and not isinstance(v, bool)]
        subjects = [(f"s:{i}", {n: rng.choice(texty if n in texts else finite) for n in names
                                if rng.random() < 0.8}) for i in range(1200)]
        matched = engine.match(subjects)
        expected = {ref: [r.id for r in rules if evaluate(rule_condition(r), values)]
                    for ref, values in subjects}
        assert {ref: [r.id for r in hit] for ref, hit in matched.items()} == expected
        assert all(0 < sum(rule in ids for ids in expected.values()) < len(subjects)
                   for rule in ("texts", "custom"))  # ("kinds" is all of twelve tests)
    finally:
        engine.close()


def test_a_rule_that_fires_twice_for_an_item_maps_it_once() -> None:
    # durable-rules splits an `$or` into rules of its own: both fire for this item.
    mapper = Mapper(parse_rules("- id: twice\n  kpi: k\n  when: {any: [{project: OPS}, "
                                "{labels: {any_of: [sla]}}]}\n"))
    try:
        mapped = mapper.map([Task("jira", "OPS-1", "t", project="OPS", labels=("sla",))], NOW)
    finally:
        mapper.close()
    assert [(m.task, m.rule_id) for m in mapped] == [("jira:OPS-1", "twice")]


def test_a_false_duplicate_is_matched_in_a_state_of_its_own(monkeypatch) -> None:
    """durable-rules rejects a fact whose 32-bit id hash another fact of its state has: the
    engine asserts it again in a fresh state instead of losing its matches."""
    rules = parse_rules("- id: ops\n  kpi: k\n  when: {project: OPS}\n")
    engine = RuleEngine(compile_rules(rules, "dup"))
    real, rejected = _Host.assert_fact, []

    def once_observed(self, ruleset, fact, complete=None):
        if fact.get(REF_KEY) == "x:7" and not rejected:
            rejected.append(fact["sid"])
            return OBSERVED, real(self, ruleset, {**fact, "id": "other"}, complete)[1]
        return real(self, ruleset, fact, complete)

    monkeypatch.setattr(_Host, "assert_fact", once_observed)
    try:
        subjects = [(f"x:{i}", {"project": "OPS" if i % 2 else "PLAT"}) for i in range(CHUNK + 3)]
        matched = engine.match(subjects)
    finally:
        engine.close()
    assert rejected
    assert {ref for ref, hit in matched.items() if hit} == {f"x:{i}" for i in range(1, CHUNK + 3, 2)}


def test_two_items_with_one_reference_are_refused_whatever_their_chunks() -> None:
    engine = RuleEngine(compile_rules(parse_rules("- id: a\n  kpi: k\n  when: {project: A}\n"),
                                      "refs"))
    try:
        subjects = [(f"x:{i}", {"project": "A"}) for i in range(CHUNK + 2)] + [("x:1", {})]
        with pytest.raises(TetherError, match="Two items share the reference 'x:1'"):
            engine.match(subjects)
        assert [r.id for r in engine.match([("x:1", {"project": "A"})])["x:1"]] == ["a"]
    finally:
        engine.close()


def test_an_action_names_its_item_whatever_the_order_of_its_fact() -> None:
    assert _hit('{"r3":{"m":{"tref":"jira:A\\"1","id":"jira:A\\"1"}}}') == ("r3", 'jira:A"1')
    assert _hit('{"r3":{"m":{"id":"x","tref":"jira:B"}}}') == ("r3", "jira:B")


def test_the_collector_is_paused_only_for_the_stage() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


GATED = """\
- id: open-vendor
  kpi: k
  when: {all: [{status_category: {in: [todo, in_progress]}}, {custom.flag: true},
               {labels: {any_of: [vendor]}}]}
- id: todo-text
  kpi: k
  when: {all: [{status_category: todo}, {custom.flag: true}, {title: {contains: kyc}}]}
- id: doing-elsewhere
  kpi: k
  when: {all: [{custom.flag: true}, {status_category: {in: [in_progress]}},
               {not: {project: OPS}}]}
"""
STATUSES = ["todo", "in_progress", "done", "", "Todo", "todo\0", 'in"progress', "ä", 0, 1.0,
            True, None, ["todo"]]


def test_facts_no_rule_can_match_are_matched_as_the_reference_does() -> None:
    """Every rule requires an open status and the flag: the engine leaves out the facts
    without them, and still finds exactly what the reference evaluator finds."""
    rules = parse_rules(GATED)
    compiled = compile_rules(rules, "gated")
    ((_, gate),) = ((n, ruleset_gate(r)) for n, r in compiled.rulesets.items())
    assert {(kind, values) for _, kind, values in gate} == {
        (str, frozenset({"todo", "in_progress"})), (bool, frozenset({True}))}
    engine = RuleEngine(compiled)
    try:
        rng = random.Random(13)
        subjects = [(f"g:{i}", {
            "status_category": rng.choice(STATUSES), "custom.flag": rng.choice(ODD + ["true", 1]),
            "labels": rng.choice([["vendor"], ["Vendor"], [], None, "vendor"]),
            "title": rng.choice(["KYC check", "x", None, 5]),
            "project": rng.choice(["OPS", "PLAT", None])}) for i in range(1500)]
        matched = engine.match(subjects)
    finally:
        engine.close()
    expected = {ref: [r.id for r in rules if evaluate(rule_condition(r), values)]
                for ref, values in subjects}
    assert {ref: [r.id for r in hit] for ref, hit in matched.items()} == expected
    assert all(any(rule in ids for ids in expected.values()) for rule in
               ("open-vendor", "todo-text", "doing-elsewhere"))


def test_a_requirement_only_some_rules_share_gates_nothing() -> None:
    rules = parse_rules(GATED + "- id: any-status\n  kpi: k\n  when: {custom.flag: true}\n"
                        "- id: flag-or-todo\n  kpi: k\n  when: {any: [{custom.flag: true}, "
                        "{status_category: todo}]}\n")
    ((ruleset),) = compile_rules(rules, "ungated").rulesets.values()
    assert ruleset_gate(ruleset) == ()


def test_a_task_reader_reads_each_field_as_task_values_does(compiled) -> None:
    names = [*compiled.field_names(), "custom.it's \"odd\"", "type", "age_days"]
    read = task_reader(names)
    rng = random.Random(17)
    for i in range(500):
        task = random_task(rng, i)
        assert read(task, NOW) == task_values(task, names, NOW)
