"""Reference semantics of every operator, in plain Python: used to explain verdicts and
to compute the derived facts (regexes) the engine is given."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from tether.rules.fields import BOOL, DATE, LIST, NUM, STR, kind_of_value
from tether.rules.language import All, Cond, Node, Not, Rule, Scope


def scope_conditions(scope: Scope) -> list[Cond]:
    """A rule's scope as ordinary conditions, so engine and explain treat it the same way."""
    conds = []
    if scope.sources is not None:
        conds.append(Cond("source", "in", tuple(sorted(scope.sources)), STR, "scope.sources"))
    if scope.projects is not None:
        conds.append(Cond("project", "in", tuple(sorted(scope.projects)), STR, "scope.projects"))
    return conds


def rule_condition(rule: Rule) -> Node:
    """The full condition of a rule: its scope and its `when`."""
    scope = scope_conditions(rule.scope)
    return All((*scope, rule.when)) if scope else rule.when


def conditions(node: Node) -> Iterator[Cond]:
    """Every leaf condition of ``node``, depth first."""
    if isinstance(node, Cond):
        yield node
    elif isinstance(node, Not):
        yield from conditions(node.item)
    else:
        for item in node.items:
            yield from conditions(item)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def typed(value: Any, kind: str) -> Any:
    """``value`` if it is of ``kind`` (lists as lists of text), else None: a mismatch never matches."""
    if value is None:
        return None
    if kind == LIST:
        return [str(v) for v in value] if isinstance(value, list | tuple) and value else None
    found = kind_of_value(value)
    if kind == NUM and found == NUM:
        return float(value)
    if kind == STR and found in (STR, NUM):
        return str(value)
    if kind == DATE and found == DATE:
        return value
    if kind == BOOL and found == BOOL:
        return value
    return None


def text_holds(cond: Cond, value: Any) -> bool:
    """`matches` / `contains` on a text or on any element of a list."""
    items = value if isinstance(value, list) else [value]
    if cond.op == "matches":
        rx = _regex(cond.arg)
        return any(rx.search(str(v)) for v in items)
    needle = cond.arg.casefold()
    return any(needle in str(v).casefold() for v in items)


def holds(cond: Cond, raw: Any) -> bool:
    """Whether one condition holds for the field value ``raw`` (None = no value)."""
    if cond.op == "exists":
        present = raw is not None and raw != [] and raw != ()
        return present is cond.arg
    if cond.op in ("matches", "contains"):
        value = typed(raw, LIST if isinstance(raw, list | tuple) else STR)
        return value is not None and text_holds(cond, value)
    value = typed(raw, cond.kind)
    if value is None:
        return False
    arg = cond.arg
    if cond.op == "eq":
        return value == (float(arg) if cond.kind == NUM else arg)
    if cond.op == "in":
        return value in ([float(a) for a in arg] if cond.kind == NUM else arg)
    if cond.op == "any_of":
        return any(a in value for a in arg)
    if cond.op == "all_of":
        return all(a in value for a in arg)
    if cond.kind == NUM:
        arg = float(arg)
    return {"gt": value > arg, "gte": value >= arg, "lt": value < arg, "lte": value <= arg}[cond.op]


def evaluate(node: Node, values: dict[str, Any]) -> bool:
    """Whether ``node`` holds for the field ``values`` (a missing key means no value)."""
    if isinstance(node, Cond):
        return holds(node, values.get(node.field))
    if isinstance(node, Not):
        return not evaluate(node.item, values)
    results = (evaluate(n, values) for n in node.items)
    return all(results) if isinstance(node, All) else any(results)


@dataclass(frozen=True)
class Line:
    """One line of an explanation: a condition, the actual value and the verdict."""

    depth: int
    text: str
    result: bool


def explain(node: Node, values: dict[str, Any], depth: int = 0) -> list[Line]:
    """Every condition of ``node`` with the value it saw and whether it held."""
    if isinstance(node, Cond):
        actual = values.get(node.field)
        shown = actual.isoformat() if isinstance(actual, datetime) else actual
        arg = [a.isoformat() if isinstance(a, datetime) else a for a in node.arg] \
            if isinstance(node.arg, tuple) else node.arg
        if isinstance(arg, datetime):
            arg = arg.isoformat()
        text = f"{node.field} {node.op} {arg!r}  (actual: {shown!r})"
        return [Line(depth, text, holds(node, actual))]
    if isinstance(node, Not):
        inner = explain(node.item, values, depth + 1)
        return [Line(depth, "not", not evaluate(node.item, values)), *inner]
    label = "all of" if isinstance(node, All) else "any of"
    lines = [Line(depth, label, evaluate(node, values))]
    for item in node.items:
        lines += explain(item, values, depth + 1)
    return lines


def fields_in(node: Node) -> set[str]:
    """The fields a condition tests."""
    return {c.field for c in conditions(node)}


def fields_shown(rule: Rule) -> set[str]:
    """The fields ``rule`` shows in its message and advice."""
    return {name for text in (rule.message, rule.advice)
            for _, name, _, _ in string.Formatter().parse(text) if name}

