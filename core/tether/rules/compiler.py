"""Compile checked rules to durable-rules' JSON ruleset form, and facts to match them.

durable-rules has sharp edges this module designs around (see README, design notes):
- `$nex` inside `$or` hangs the engine, and `$neq` never matches a missing attribute, so
  the presence of every field is posted as a derived boolean and `not` is pushed down to
  the leaves (negation normal form) using it;
- `$iall` never matches an empty list, and absent lists are covered by that boolean too;
- its regex dialect is its own, so `matches` and `contains` are evaluated in Python and
  posted as derived booleans (admins get Python's regex and located errors);
- about 511 rules per ruleset at most: rules are sharded into rulesets of RULES_PER_SET;
- about 250 keys per posted object: facts are projected to the fields rules use, by a
  function generated once per rule set (CompiledRules.projector);
- an `$or` or `$and` nested inside `$iany`/`$iall` makes ruleset creation fail at random
  (error 102, uninitialised memory in rete.c): list tests compile to one `$iany` per value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.rules.evaluate import rule_condition, typed
from tether.rules.fields import BOOL, DATE, LIST, NUM, STR
from tether.rules.language import All, AnyOf, Cond, Node, Not, Rule

RULES_PER_SET = 400
REF_KEY = "tref"
# Every ruleset gets a rule that only a per-state sentinel fact matches: durable-rules
# frees an uninitialised action context in delete_state when no rule fired in a state
# (a segfault that comes and goes), so each state's first fact fires one, run at once.
SENTINEL_ACTION = "sentinel"
SENTINEL_KEY = "tether_sentinel"
_OPPOSITE = {"gt": "$lte", "gte": "$lt", "lt": "$gte", "lte": "$gt"}
# durable-rules keeps a property value under 16 MiB (error 314); rules never need more text.
MAX_TEXT = 1_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")

# (task or None, now or None, field values or None) -> the fact a rule set's rules need.
Projector = Callable[[Any, datetime | None, dict[str, Any] | None], dict[str, Any]]
# Field name -> Python source of an expression reading its value (from `t`, `now` or `v`).
Read = Callable[[str], str]


def value_code(name: str) -> str:
    """Read field ``name`` from ``v``, a dict of field values (a missing key: no value)."""
    return f"v.get({name!r})"


def engine_safe(value: Any) -> Any:
    """``value`` in a form durable-rules' own JSON reader takes, meaning unchanged.

    Its reader rejects what Python's JSON writes for some values, each measured: a float in
    exponent form without a fraction (``1e-05``, ``1e+16``: error 204), infinities (204), a
    lone surrogate in a text (the call fails outright) and a text of 16 MiB or more (314).
    Such a float moves by one unit in the last place (``1.0000000000000003e-05``, which it
    reads), a non-finite one becomes absent, a lone surrogate becomes U+FFFD and a text is
    cut at MAX_TEXT characters."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        while not _float_fine(value):
            value = math.nextafter(value, 0.0)
        return value
    if isinstance(value, str):
        return value if _text_fine(value) else _SURROGATE.sub("\ufffd", value[:MAX_TEXT])
    if isinstance(value, list | tuple):
        return [v for v in (engine_safe(v) for v in value) if v is not None]
    if isinstance(value, dict):
        return {k: v for k, v in ((k, engine_safe(v)) for k, v in value.items()) if v is not None}
    return engine_safe(str(value))


def _float_fine(value: float) -> bool:
    text = repr(value)
    return math.isfinite(value) and ("e" not in text or "." in text)


def _text_fine(value: str) -> bool:
    return len(value) <= MAX_TEXT and (value.isascii() or not _SURROGATE.search(value))


def _safe_texts(items: list[str]) -> list[str]:
    for item in items:
        if len(item) > MAX_TEXT or not item.isascii():
            return engine_safe(items)
    return items


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


# typed(raw, kind) inlined, the common case first; the value each kind posts, engine-safe
# (a float in [1e-4, 1e16) or 0 never takes exponent form, an ASCII text needs no repair).
_TYPED = {
    LIST: "list(map(str, raw)) if isinstance(raw, (list, tuple)) and raw else None",
    NUM: f"None if raw is None else float(raw) if type(raw) in (int, float) else _typed(raw, {NUM!r})",
    STR: f"raw if type(raw) is str else None if raw is None else _typed(raw, {STR!r})",
    DATE: f"raw if type(raw) is datetime else None if raw is None else _typed(raw, {DATE!r})",
    BOOL: "raw if raw is True or raw is False else None",
}
_FLOAT = ["e = e if 1e-4 <= abs(e) < 1e16 or e == 0.0 else _safe(e)",
          "if e is not None:", "    fact[{k}] = e"]
_POST = {
    LIST: ["fact[{k}] = _safe_texts({c})"],
    NUM: ["e = {c}", *_FLOAT],
    DATE: ["e = {c}.timestamp()", *_FLOAT],
    STR: [f"fact[{{k}}] = {{c}} if {{c}}.isascii() and len({{c}}) <= {MAX_TEXT} else _safe({{c}})"],
    BOOL: ["fact[{k}] = {c}"],
}
_ANY = ["e = _safe({c})", "if e is not None:", "    fact[{k}] = e"]


@dataclass
class CompiledRules:
    """Rulesets in durable-rules' JSON form plus what is needed to build matching facts."""

    rules: dict[str, Rule] = field(default_factory=dict)  # action name -> rule
    rulesets: dict[str, dict] = field(default_factory=dict)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (field, kind) -> fact key
    # (field, kind) -> fact key: "has a value of this kind"; kind None: any value at all.
    presence: dict[tuple[str, str | None], str] = field(default_factory=dict)
    derived: dict[str, Cond] = field(default_factory=dict)  # fact key -> text condition
    _projectors: dict[Read, Projector] = field(default_factory=dict, repr=False, compare=False)

    def field_names(self) -> set[str]:
        """Every field the compiled rules read."""
        return ({n for n, _ in self.keys} | {n for n, _ in self.presence}
                | {c.field for c in self.derived.values()})

    def fact(self, values: dict[str, Any]) -> dict[str, Any]:
        """Project a subject's field values to the fact its rules need, all derived keys set,
        every value engine-safe."""
        return self.projector()(None, None, values)

    def projector(self, read: Read = value_code, env: dict[str, Any] | None = None) -> Projector:
        """A function building the fact these rules need, generated once per ``read``: each
        field they use is read once (``read(name)`` is the source of an expression over the
        task ``t``, ``now`` and the values ``v``, with the names in ``env``), converted once
        per kind and posted engine-safe; text tests are computed once per field."""
        if read not in self._projectors:
            names: dict[str, Any] = {**(env or {}), "_typed": typed, "_safe": engine_safe,
                                     "_safe_texts": _safe_texts, "datetime": datetime}
            source = "\n".join(self._projector_source(read, names))
            exec(compile(source, "<tether projector>", "exec"), names)
            self._projectors[read] = names["project"]
        return self._projectors[read]

    def _projector_source(self, read: Read, names: dict[str, Any]) -> list[str]:
        # The fact's first key is the ref (set later): RuleEngine finds it first in a match.
        out = ["def project(t, now, v):", f"    fact = {{{REF_KEY!r}: None}}"]
        for name, slots, texts in self._plan():
            out.append(f"    raw = {read(name)}")
            converted: dict[str, str] = {}
            for kind, key, is_presence in slots:
                if kind is not None and kind not in converted:
                    converted[kind] = c = f"c{len(converted)}"
                    out.append(f"    {c} = {_TYPED.get(kind, f'_typed(raw, {kind!r})')}")
                if is_presence:
                    test = ("not (raw is None or raw == () or raw == [])" if kind is None
                            else f"{converted[kind]} is not None")
                    out.append(f"    fact[{key!r}] = {test}")
                else:
                    assert kind is not None  # a value slot has a kind
                    out.append(f"    if {converted[kind]} is not None:")
                    out += [f"        {line.format(c=converted[kind], k=repr(key))}"
                            for line in _POST.get(kind, _ANY)]
            if texts:
                out += self._text_source(texts, names)
        out.append("    return fact")
        return out

    @staticmethod
    def _text_source(texts: list[tuple[str, Cond]], names: dict[str, Any]) -> list[str]:
        """`matches` and `contains` on one field: text_holds over its text, or over the
        texts of its items (a list; none: no item holds)."""
        many, one, none = [], [], []
        folds = any(c.op == "contains" for _, c in texts)
        for key, cond in texts:
            none.append(f"fact[{key!r}] = False")
            if cond.op == "contains":
                needle = cond.arg.casefold()
                # Joined by a character the needle lacks, no match can span two items.
                many.append(f"fact[{key!r}] = {needle!r} in joined" if "\0" not in needle else
                            f"fact[{key!r}] = any({needle!r} in i for i in folded)")
                one.append(f"fact[{key!r}] = {needle!r} in folded")
            else:
                rx = f"_rx{len(names)}"
                names[rx] = re.compile(cond.arg)
                many.append(f"fact[{key!r}] = any(map({rx}.search, items))")
                one.append(f"fact[{key!r}] = {rx}.search(text) is not None")
        fold_many = ["folded = [i.casefold() for i in items]", "joined = '\\0'.join(folded)"]
        return ["    if raw is None or (isinstance(raw, (list, tuple)) and not raw):",
                *(f"        {line}" for line in none),
                "    elif isinstance(raw, (list, tuple)):",
                "        items = list(map(str, raw))",
                *(f"        {line}" for line in (fold_many if folds else []) + many),
                "    else:",
                "        text = str(raw)",
                *(f"        {line}" for line in (["folded = text.casefold()"] if folds else []) + one)]

    def _plan(self) -> list[tuple[str, list[tuple[str | None, str, bool]], list[tuple[str, Cond]]]]:
        """Per field: its typed and presence slots and its text tests."""
        plan: dict[str, tuple[list, list]] = {}
        for (name, kind), key in self.presence.items():
            plan.setdefault(name, ([], []))[0].append((kind, key, True))
        for (name, kind), key in self.keys.items():
            plan.setdefault(name, ([], []))[0].append((kind, key, False))
        for key, cond in self.derived.items():
            plan.setdefault(cond.field, ([], []))[1].append((key, cond))
        return [(name, slots, texts) for name, (slots, texts) in plan.items()]


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


# A fact key and the texts (or booleans) it must equal one of; all of one type.
Gate = tuple[tuple[str, type, frozenset[Any]], ...]


def ruleset_gate(ruleset: dict[str, dict]) -> Gate:
    """What every rule of ``ruleset`` (durable-rules' JSON form; its sentinel aside) requires
    of a fact, where a rule requires it as a conjunct: a key equal to one of some texts or
    booleans. A fact failing it matches none of the rules (the drift pack's task rules all
    require an open item: done items need not be asserted). Empty: no such requirement.

    Only literals durable-rules compares exactly as Python does are kept (plain ASCII texts,
    booleans); a key's posted values are of one kind by construction (see _TYPED, _POST)."""
    common: dict[str, frozenset[Any]] | None = None
    for action, rule in ruleset.items():
        if action == SENTINEL_ACTION:
            continue
        patterns = rule.get("all")
        if not isinstance(patterns, list) or len(patterns) != 1 or len(patterns[0]) != 1:
            return ()
        tests: dict[str, frozenset[Any]] = {}
        for conjunct in _conjuncts(next(iter(patterns[0].values()))):
            found = _equality(conjunct)
            if found is not None:
                key, values = found
                tests[key] = tests[key] & values if key in tests else values
        common = tests if common is None else {
            key: values | tests[key] for key, values in common.items() if key in tests}
    return tuple((key, type(next(iter(values))), values)
                 for key, values in (common or {}).items()
                 if values and len({type(v) for v in values}) == 1)


def gate_passes(gate: Gate, fact: dict[str, Any]) -> bool:
    """Whether ``fact`` meets ``gate`` (a missing key never does, as in durable-rules)."""
    for key, kind, values in gate:
        value = fact.get(key)
        if type(value) is not kind or value not in values:
            return False
    return True


def _conjuncts(expr: dict) -> list[dict]:
    if len(expr) == 1 and isinstance(expr.get("$and"), list):
        return [c for item in expr["$and"] for c in _conjuncts(item)]
    return [expr]


def _equality(expr: dict) -> tuple[str, frozenset[Any]] | None:
    """(key, values) when ``expr`` holds exactly when fact[key] equals one of the values."""
    if len(expr) != 1:
        return None
    ((key, value),) = expr.items()
    if key == "$or" and isinstance(value, list) and value:
        found = [_equality(item) for item in value]
        keys = {f[0] for f in found if f is not None}
        if any(f is None for f in found) or len(keys) != 1:
            return None
        return keys.pop(), frozenset(v for f in found if f is not None for v in f[1])
    if key.startswith("$") or "." in key or not _exact(value):  # an operator, a nested path
        return None
    return key, frozenset((value,))


def _exact(value: Any) -> bool:
    """A literal durable-rules' equality tests as Python's does: a boolean, or an ASCII text
    with nothing JSON escapes (it compares texts as their JSON bytes, C-string style)."""
    if value is True or value is False:
        return True
    return (type(value) is str and len(value) <= MAX_TEXT and value.isascii()
            and value.isprintable() and '"' not in value and "\\" not in value)
