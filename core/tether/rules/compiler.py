"""Compile checked rules to durable-rules' JSON ruleset form, and facts to match them.

durable-rules has sharp edges this module designs around (see README, design notes):
- `$nex` inside `$or` hangs the engine, and `$neq` never matches a missing attribute, so
  the presence of every field is posted as a derived boolean and `not` is pushed down to
  the leaves (negation normal form) using it;
- `$iall` never matches an empty list, and absent lists are covered by that boolean too;
- its regex dialect is its own, so `matches` and `contains` are evaluated in Python and
  posted as derived booleans (admins get Python's regex and located errors);
- about 511 rules per ruleset at most: rules are sharded into rulesets of RULES_PER_SET;
- about 250 keys per posted object: facts are projected to the fields rules use;
- an `$or` or `$and` nested inside `$iany`/`$iall` makes ruleset creation fail at random
  (error 102, uninitialised memory in rete.c): list tests compile to one `$iany` per value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tether.rules.evaluate import rule_condition, text_holds, typed
from tether.rules.fields import DATE, NUM
from tether.rules.language import All, AnyOf, Cond, Node, Not, Rule

RULES_PER_SET = 400
REF_KEY = "tref"
# Every ruleset gets a rule that only a per-state sentinel fact matches: durable-rules
# frees an uninitialised action context in delete_state when no rule fired in a state
# (a segfault that comes and goes), so each state is made to fire at least once.
SENTINEL_ACTION = "sentinel"
SENTINEL_KEY = "tether_sentinel"
_OPPOSITE = {"gt": "$lte", "gte": "$lt", "lt": "$gte", "lte": "$gt"}


def _or(items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {"$or": items}


def _and(items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {"$and": items}


def _encode(value: Any, kind: str | None) -> Any:
    if kind == DATE:
        return value.timestamp()
    if kind == NUM:
        return float(value)
    return value


@dataclass
class CompiledRules:
    """Rulesets in durable-rules' JSON form plus what is needed to build matching facts."""

    rules: dict[str, Rule] = field(default_factory=dict)  # action name -> rule
    rulesets: dict[str, dict] = field(default_factory=dict)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (field, kind) -> fact key
    # (field, kind) -> fact key: "has a value of this kind"; kind None: any value at all.
    presence: dict[tuple[str, str | None], str] = field(default_factory=dict)
    derived: dict[str, Cond] = field(default_factory=dict)  # fact key -> text condition
    _fact_plan: list | None = field(default=None, repr=False)

    def field_names(self) -> set[str]:
        """Every field the compiled rules read."""
        return ({n for n, _ in self.keys} | {n for n, _ in self.presence}
                | {c.field for c in self.derived.values()})

    def fact(self, values: dict[str, Any]) -> dict[str, Any]:
        """Project a subject's field values to the fact its rules need, all derived keys set."""
        fact: dict[str, Any] = {}
        for name, slots, texts in self._plan():
            raw = values.get(name)
            converted: dict[str | None, Any] = {None: None if raw in ((), []) else raw}
            for kind, key, is_presence in slots:
                if kind is not None and kind not in converted:  # None: the raw value, set above
                    converted[kind] = typed(raw, kind)
                value = converted[kind]
                if is_presence:
                    fact[key] = value is not None
                elif value is not None:
                    fact[key] = _encode(value, kind)
            if texts:
                # Each text field is converted and case-folded once, however many tests use it.
                items = [] if raw is None else [str(v) for v in raw] if isinstance(raw, (list, tuple)) \
                    else [str(raw)]
                folded = [i.casefold() for i in items]
                for key, cond in texts:
                    if cond.op == "contains":
                        needle = cond.arg.casefold()
                        fact[key] = any(needle in i for i in folded)
                    else:
                        fact[key] = text_holds(cond, items) if items else False
        return fact

    def _plan(self) -> list[tuple[str, list[tuple[str | None, str, bool]], list[tuple[str, Cond]]]]:
        """Per field: its typed and presence slots and its text tests (built once, cached)."""
        if self._fact_plan is None:
            plan: dict[str, tuple[list, list]] = {}
            for (name, kind), key in self.presence.items():
                plan.setdefault(name, ([], []))[0].append((kind, key, True))
            for (name, kind), key in self.keys.items():
                plan.setdefault(name, ([], []))[0].append((kind, key, False))
            for key, cond in self.derived.items():
                plan.setdefault(cond.field, ([], []))[1].append((key, cond))
            self._fact_plan = [(name, slots, texts) for name, (slots, texts) in plan.items()]
        return self._fact_plan


class Compiler:
    """Builds one CompiledRules from a list of rules."""

    def __init__(self) -> None:
        self.out = CompiledRules()

    def compile(self, rules: list[Rule], prefix: str) -> CompiledRules:
        for start in range(0, max(len(rules), 1), RULES_PER_SET):
            shard: dict[str, dict] = {SENTINEL_ACTION: {
                "all": [{"m": {SENTINEL_KEY: True}}], "run": SENTINEL_ACTION}}
            for rule in rules[start:start + RULES_PER_SET]:
                action = f"r{len(self.out.rules)}"
                self.out.rules[action] = rule
                expr = self._node(rule_condition(rule), negate=False)
                shard[action] = {"all": [{"m": expr}], "run": action}
            if len(shard) > 1:
                self.out.rulesets[f"{prefix}{start // RULES_PER_SET}"] = shard
        return self.out

    def _key(self, name: str, kind: str) -> str:
        slot = (name, kind)
        if slot not in self.out.keys:
            safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
            self.out.keys[slot] = f"f{len(self.out.keys)}_{safe}"
        return self.out.keys[slot]

    def _has(self, name: str, kind: str | None) -> str:
        slot = (name, kind)
        if slot not in self.out.presence:
            self.out.presence[slot] = f"h{len(self.out.presence)}"
        return self.out.presence[slot]

    def _derived(self, cond: Cond) -> str:
        for key, known in self.out.derived.items():
            if known == cond:
                return key
        key = f"d{len(self.out.derived)}"
        self.out.derived[key] = cond
        return key

    def _node(self, node: Node, negate: bool) -> dict:
        if isinstance(node, Cond):
            return self._leaf(node, negate)
        if isinstance(node, Not):
            return self._node(node.item, not negate)
        parts = [self._node(n, negate) for n in node.items]
        conjunctive = isinstance(node, All) != negate  # De Morgan
        assert isinstance(node, All | AnyOf)
        return _and(parts) if conjunctive else _or(parts)

    def _leaf(self, c: Cond, negate: bool) -> dict:
        if c.op == "exists":
            return {self._has(c.field, None): c.arg != negate}
        if c.op in ("matches", "contains"):
            return {self._derived(c): not negate}
        key = self._key(c.field, c.kind)
        if c.op in ("eq", "in"):
            values = [_encode(a, c.kind) for a in (c.arg if c.op == "in" else (c.arg,))]
            positive = _or([{key: v} for v in values])
            negative = _and([{"$neq": {key: v}} for v in values])
        elif c.op == "any_of":
            # One `$iany` per value, never an `$or` inside one: compiling that nesting reads
            # memory durable-rules never set, and it refuses a valid ruleset at random
            # ("Could not create ruleset, error code: 102"), the likelier the more rules.
            positive = _or([{"$iany": {key: {"$i": v}}} for v in c.arg])
            negative = _and([{"$iall": {key: {"$neq": {"$i": v}}}} for v in c.arg])
        elif c.op == "all_of":
            positive = _and([{"$iany": {key: {"$i": v}}} for v in c.arg])
            negative = _or([{"$iall": {key: {"$neq": {"$i": v}}}} for v in c.arg])
        else:
            arg = _encode(c.arg, c.kind)
            positive = {f"${c.op}": {key: arg}}
            negative = {_OPPOSITE[c.op]: {key: arg}}
        # Absent values (and empty lists) never satisfy a test, so they satisfy its negation.
        if not negate:
            return positive
        return _or([{self._has(c.field, c.kind): False}, negative])


def compile_rules(rules: list[Rule], prefix: str) -> CompiledRules:
    """Compile ``rules`` into rulesets named ``<prefix><n>``."""
    return Compiler().compile(rules, prefix)
