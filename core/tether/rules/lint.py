"""Whole-book checks beyond what loading catches: rules that can never match, rules that
always co-fire, rules aimed at inactive KPIs, and `rules.disable` ids that name no rule."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tether.model import KPI
from tether.rules.evaluate import rule_condition
from tether.rules.fields import DATE, NUM
from tether.rules.language import All, Cond, Node, Not, Rule
from tether.rules.loader import RuleBook

ERROR, WARNING = "error", "warning"
# DNF can grow exponentially; past this many conjunctions the rule is not analysed (cheap only).
MAX_CONJUNCTIONS = 256
GRACE_DAYS = 7  # the zombie rule's default grace after a KPI closes, when no rule says
_RANGE = ("gt", "gte", "lt", "lte")
_FLIP = {"gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}

Lit = tuple[Cond, bool]  # a leaf test and whether it must hold (False: it must not)


@dataclass(frozen=True)
class LintIssue:
    """One lint finding: ``where`` is ``file:line`` (or the config file for `rules.disable`)."""

    level: str  # "error" | "warning"
    where: str
    rule_id: str
    message: str


def lint(book: RuleBook, kpis: list[KPI], sources: list[str] | None,
         disabled: frozenset[str], config: str = "tether.yaml") -> list[LintIssue]:
    """Issues in ``book``, sorted by location; rules in ``disabled`` are not checked, but a
    disabled id that names no rule is. ``sources`` None skips the scope check; ``config``
    locates `rules.disable` issues."""
    rules = [r for r in book.all() if r.id not in disabled]
    issues: list[LintIssue] = []
    for rule in rules:
        issues += _never_matches(rule, sources)
    issues += _co_firing([r for r in rules if r.kpi is not None])
    by_id = {k.id: k for k in kpis}
    grace = next((r.params.get("grace_days") for r in book.signals if r.signal == "zombie"
                  and r.params.get("grace_days") is not None), GRACE_DAYS)
    days = f"{grace:g}" if isinstance(grace, int | float) else str(grace)
    for rule in rules:
        kpi = by_id.get(rule.kpi or "")
        if kpi is not None and not kpi.is_active:
            issues.append(LintIssue(WARNING, rule.where, rule.id, (
                f"maps to KPI `{kpi.id}`, which is {kpi.lifecycle}: the drift pack flags open "
                f"work it matches as `zombie` once it changes more than {days} days after the "
                "KPI closed (as `untethered` if idle since before the close); point it at an "
                "active KPI or remove the rule")))
    ids = sorted(r.id for r in book.all() + book.disabled)
    for name in sorted(disabled - set(ids)):
        hint = difflib.get_close_matches(name, ids, n=1)
        extra = f"did you mean `{hint[0]}`?" if hint else "fix the id or remove it from the list"
        issues.append(LintIssue(WARNING, config, name,
                                f"`rules.disable` names no rule with this id; {extra}"))
    return sorted(issues, key=_order)


def format_lint(issues: list[LintIssue]) -> str:
    """One ``where: level: rule-id: message`` line per issue, then a count of each level."""
    lines = [f"{i.where}: {i.level}: {i.rule_id}: {i.message}" for i in issues]
    warnings = sum(i.level == WARNING for i in issues)
    errors = sum(i.level == ERROR for i in issues)
    lines.append(f"{warnings} warning{'s' * (warnings != 1)}, {errors} error{'s' * (errors != 1)}")
    return "\n".join(lines)


def _order(issue: LintIssue) -> tuple[str, int, str]:
    file, _, line = issue.where.rpartition(":")
    return (file, int(line), issue.rule_id) if line.isdigit() else (issue.where, 0, issue.rule_id)


# -- rules that can never match ----------------------------------------------------------------


def _never_matches(rule: Rule, sources: list[str] | None) -> list[LintIssue]:
    out = []
    if sources is not None and rule.scope.sources is not None:
        unknown = sorted(rule.scope.sources - set(sources))
        known = ", ".join(sorted(sources)) or "none"
        if unknown and len(unknown) == len(rule.scope.sources):
            out.append(LintIssue(ERROR, rule.where, rule.id, (
                f"scope names source {_names(unknown)}, not configured (sources: {known}): the rule "
                "never matches; fix the name or remove the rule")))
        elif unknown:
            out.append(LintIssue(WARNING, rule.where, rule.id, (
                f"scope names source {_names(unknown)}, not configured (sources: {known}); "
                "fix the name or drop it from the scope")))
    conjunctions = _dnf(rule_condition(rule), False)
    if not conjunctions:
        return out
    reasons = [_conflict(c) for c in conjunctions]
    first = reasons[0]
    if first is not None and all(reasons):
        cond, why = first
        where = cond.where.rsplit(":", 1)[0] if cond.where.startswith(f"{rule.file}:") else rule.where
        more = "; every other `any` branch is impossible too" if len(reasons) > 1 else ""
        out.append(LintIssue(ERROR, where, rule.id, f"can never match: {why}{more}"))
    return out


def _names(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def _dnf(node: Node, negate: bool) -> list[list[Lit]]:
    """``node`` (negated if asked) as a disjunction of conjunctions of literals; [] if too big."""
    if isinstance(node, Cond):
        if node.op == "exists" and negate:  # `not exists: x` is `exists: not x`
            return [[(Cond(node.field, "exists", not node.arg, node.kind, node.where), True)]]
        return [[(node, not negate)]]
    if isinstance(node, Not):
        return _dnf(node.item, not negate)
    parts = [_dnf(n, negate) for n in node.items]
    if any(not p for p in parts):
        return []
    if isinstance(node, All) != negate:  # De Morgan: a conjunction
        size = 1
        for p in parts:
            size *= len(p)
        if size > MAX_CONJUNCTIONS:
            return []
        return [[lit for c in combo for lit in c] for combo in itertools.product(*parts)]
    out = [c for p in parts for c in p]
    return out if len(out) <= MAX_CONJUNCTIONS else []


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _test(c: Cond) -> str:
    arg = f"[{', '.join(_show(a) for a in c.arg)}]" if isinstance(c.arg, tuple) else _show(c.arg)
    return f"`{c.field}` {c.op} {arg}"


def _num(c: Cond, value: Any) -> Any:
    return float(value) if c.kind == NUM else value


def _conflict(lits: list[Lit]) -> tuple[Cond, str] | None:
    """The condition that makes this conjunction impossible and why, or None if it may hold."""
    fields: dict[str, list[Lit]] = {}
    for lit in lits:
        fields.setdefault(lit[0].field, []).append(lit)
    for name, group in fields.items():
        found = _field_conflict(name, group)
        if found:
            return found
    return None


def _field_conflict(name: str, lits: list[Lit]) -> tuple[Cond, str] | None:
    absent = next((c for c, pos in lits if c.op == "exists" and pos and not c.arg), None)
    present = [c for c, pos in lits if pos and not (c.op == "exists" and not c.arg)]
    if absent is not None and present:
        return present[0], (f"{_test(present[0])} needs a value but `{name}: {{exists: false}}` "
                            "says it has none; drop one of the two")
    seen: set[tuple[Cond, bool]] = set()
    for c, pos in lits:
        if (c, not pos) in seen:
            return c, f"{_test(c)} is required both to hold and not to hold; drop one"
        seen.add((c, pos))
    by_kind: dict[str, list[Lit]] = {}
    for c, pos in lits:
        by_kind.setdefault(c.kind, []).append((c, pos))
    # Negated tests also hold when the field is empty, so they only bite once a positive test
    # demands a value; positive tests come first so the values they allow are known.
    for group in by_kind.values():
        found = _value_conflict(name, sorted(group, key=lambda lit: not lit[1]))
        if found:
            return found
    return None


def _value_conflict(name: str, lits: list[Lit]) -> tuple[Cond, str] | None:
    allowed: set[Any] | None = None  # the values eq/in tests leave; None: no such test yet
    allowed_by = lits[0][0]  # the eq/in test that set ``allowed`` (preferring an eq)
    low: tuple[Any, bool, Cond] | None = None  # (bound, inclusive, source)
    high: tuple[Any, bool, Cond] | None = None
    demanded = any(pos and c.op != "exists" for c, pos in lits)
    for c, pos in lits:
        op = c.op if pos else _FLIP.get(c.op, "")
        if not pos and not demanded:
            continue
        if c.op in ("eq", "in") and pos:
            values = {_num(c, v) for v in (c.arg if c.op == "in" else (c.arg,))}
            if allowed is not None and not allowed & values:
                return c, _set_clash(name, allowed_by, c)
            if allowed is None or c.op == "eq":
                allowed_by = c
            allowed = values if allowed is None else allowed & values
        elif c.op in ("eq", "in") and allowed is not None:
            allowed = allowed - {_num(c, v) for v in (c.arg if c.op == "in" else (c.arg,))}
            if not allowed:
                return c, (f"`not` {_test(c)} excludes every value the other tests of `{name}` "
                           "allow; drop or narrow one")
        elif op in _RANGE:
            bound = _num(c, c.arg)
            if op in ("gt", "gte"):
                if low is None or bound > low[0] or (bound == low[0] and op == "gt"):
                    low = (bound, op == "gte", c)
            elif high is None or bound < high[0] or (bound == high[0] and op == "lt"):
                high = (bound, op == "lte", c)
            if low and high and (low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))):
                other = high[2] if c is low[2] else low[2]
                return c, (f"{_test(other)} and {_test(c)}{_negated(c, pos)} leave no "
                           f"{'date' if c.kind == DATE else 'value'} in between; check the bounds "
                           "(use `any` if either will do)")
        if allowed is not None and c.kind in (NUM, DATE) and (low or high):
            inside = {v for v in allowed if _within(v, low, high)}
            if not inside:
                return c, (f"no value of {_test(allowed_by)} lies in the range set by the other "
                           f"tests of `{name}`; fix the value or the bounds")
    return None


def _negated(c: Cond, pos: bool) -> str:
    return "" if pos else " (negated)"


def _within(v: Any, low: tuple[Any, bool, Cond] | None, high: tuple[Any, bool, Cond] | None) -> bool:
    return (low is None or v > low[0] or (low[1] and v == low[0])) and \
        (high is None or v < high[0] or (high[1] and v == high[0]))


def _set_clash(name: str, first: Cond, second: Cond) -> str:
    if first.op == "eq" and second.op == "eq":
        return (f"`{name}` must equal both {_show(first.arg)} and {_show(second.arg)}; if either "
                f"will do, write `{name}: {{in: [{_show(first.arg)}, {_show(second.arg)}]}}`")
    if first.op == "in" and second.op == "in":
        return (f"{_test(first)} and {_test(second)} share no value; keep one list or put the "
                "shared values in both")
    eq, listed = (first, second) if first.op == "eq" else (second, first)
    return (f"{_test(eq)} is outside {_test(listed)}; add {_show(eq.arg)} to the list or drop "
            "one of the tests")


# -- rules that always co-fire -----------------------------------------------------------------


def _co_firing(rules: list[Rule]) -> list[LintIssue]:
    out = []
    first: dict[Any, Rule] = {}
    for rule in rules:
        key = _canonical(rule_condition(rule), False)
        prev = first.setdefault(key, rule)
        if prev is rule:
            continue
        if prev.kpi == rule.kpi:
            message = (f"same condition and scope as `{prev.id}` ({prev.where}), also mapping to "
                       f"KPI `{rule.kpi}`: every item it matches gets both links; keep one rule")
        else:
            message = (f"same condition and scope as `{prev.id}` ({prev.where}), which maps to "
                       f"`{prev.kpi}` instead of `{rule.kpi}`: every such item is counted for both "
                       "KPIs; if that is the intent, say so in both descriptions, else narrow one")
        out.append(LintIssue(WARNING, rule.where, rule.id, message))
    return out


def _canonical(node: Node, negate: bool) -> Any:
    """A hashable form of ``node`` in negation normal form, blind to order and duplicates."""
    if isinstance(node, Not):
        return _canonical(node.item, not negate)
    if isinstance(node, Cond):
        op, arg = node.op, node.arg
        if op == "exists":
            return ("test", node.field, None, op, arg != negate, True)
        if isinstance(arg, tuple):
            arg = frozenset(_num(node, a) for a in arg)
            if len(arg) == 1 and op == "all_of":  # all of one value is any of it
                op = "any_of"
            elif len(arg) == 1 and op == "in":
                op, arg = "eq", next(iter(arg))
        else:
            arg = _num(node, arg)
        return ("test", node.field, node.kind, op, arg, not negate)
    kind = "and" if isinstance(node, All) != negate else "or"
    items: set[Any] = set()
    for item in node.items:
        sub = _canonical(item, negate)
        items |= sub[1] if isinstance(sub, tuple) and sub[0] == kind else {sub}
    return next(iter(items)) if len(items) == 1 else (kind, frozenset(items))

