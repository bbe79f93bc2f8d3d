"""Rules as admins write them: parsed from YAML into conditions, every mistake located."""

from __future__ import annotations

import dataclasses
import difflib
import re
import string
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tether.codec import parse_datetime
from tether.config.yamlsrc import Doc, PathKey
from tether.errors import Problem
from tether.rules.fields import ANY, BOOL, DATE, LIST, NUM, STR, Catalog, Field, kind_of_value

OPERATORS = ("eq", "in", "any_of", "all_of", "matches", "contains",
             "gt", "gte", "lt", "lte", "exists")
OPERATOR_DOCS = {
    "eq": "equals the value (`field: value` is short for `field: {eq: value}`)",
    "in": "equals one of the listed values",
    "any_of": "a list field holds at least one of the listed values",
    "all_of": "a list field holds every listed value",
    "matches": "matches a Python regular expression (anywhere; anchor with ^ and $)",
    "contains": "text field contains the text, ignoring case",
    "gt": "greater than (numbers and dates)", "gte": "greater than or equal",
    "lt": "less than", "lte": "less than or equal",
    "exists": "`true`: the field has a value; `false`: it has none",
}
SEVERITIES = ("info", "warning", "critical")
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Cond:
    """One test of one field: ``field op arg``; ``where`` locates it for errors and explain."""

    field: str
    op: str
    arg: Any
    kind: str
    # `dataclasses.field`: the `field` attribute above shadows the function for the checker.
    where: str = dataclasses.field(compare=False)


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Cond | All | AnyOf | Not


@dataclass(frozen=True)
class Scope:
    """Where a rule applies; None means everywhere."""

    sources: frozenset[str] | None = None
    projects: frozenset[str] | None = None


@dataclass(frozen=True)
class Rule:
    """A mapping rule (``kpi`` set) or a drift signal rule (``signal`` set)."""

    id: str
    when: Node
    file: str
    line: int
    pack: str
    scope: Scope = Scope()
    description: str = ""
    kpi: str | None = None
    weight: float = 1.0
    signal: str | None = None
    severity: str = "warning"
    label: str | None = None
    message: str = ""
    advice: str = ""  # one line: what the team should do about the finding
    subject: str = "task"  # signal rules: "task" (one finding per item) or "kpi" (per KPI)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


class RuleParser:
    """Turns one rule file's data into Rules, collecting every problem instead of stopping."""

    def __init__(self, doc: Doc, pack: str, problems: list[Problem],
                 overrides: dict[str, dict[str, Any]] | None = None):
        self.doc, self.pack, self.problems = doc, pack, problems
        self.overrides = overrides or {}  # rule id -> param values from config
        self.params: dict[str, Any] = {}  # of the rule being parsed

    def fail(self, path: PathKey, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def mapping_rule(self, data: Any, path: PathKey, fields: Catalog) -> Rule | None:
        return self._rule(data, path, fields, {"kpi", "weight"}, ("kpi",))

    def signal_rule(self, data: Any, path: PathKey, catalogs: dict[str, Catalog]) -> Rule | None:
        """A drift rule; its ``subject`` (task or kpi) decides which fields it may name."""
        subject = data.get("subject", "task") if isinstance(data, dict) else "task"
        if subject not in catalogs:
            self.fail((*path, "subject"), f"must be one of {', '.join(catalogs)}")
            return None
        return self._rule(data, path, catalogs[subject],
                          {"signal", "severity", "label", "message", "advice", "subject", "params"},
                          ("signal", "message"))

    def _rule(self, data: Any, path: PathKey, fields: Catalog, own: set[str],
              required: tuple[str, ...]) -> Rule | None:
        if not isinstance(data, dict):
            self.fail(path, "each rule must be a mapping with at least `id` and `when`")
            return None
        params = self._params(data.get("params"), (*path, "params"), data.get("id"))
        if params is None:
            return None
        self.params = params
        allowed = {"id", "description", "scope", "when"} | own
        ok = self._known_keys(data, path, allowed)
        for key in ("id", "when", *required):
            if key not in data:
                self.fail(path, f"missing `{key}`")
                ok = False
        rule_id = data.get("id")
        if "id" in data and (not isinstance(rule_id, str) or not RULE_ID.match(rule_id)):
            self.fail((*path, "id"), "must be lower-case letters, digits, '.', '_' or '-'")
            ok = False
        when = self.condition(data["when"], (*path, "when"), fields) if "when" in data else None
        scope = self._scope(data.get("scope"), (*path, "scope"))
        values: dict[str, Any] = {}
        for key in sorted(own & data.keys()):
            value = self._own_value(key, data[key], (*path, key), fields)
            if value is None:
                ok = False
            values[key] = value
        if not ok or when is None or scope is None:
            return None
        assert isinstance(rule_id, str)  # checked above, else `ok` would be False
        return Rule(id=rule_id, when=when, file=self.doc.file, line=self.doc.where(path)[0],
                    pack=self.pack, scope=scope, description=str(data.get("description", "")),
                    **values)

    def _known_keys(self, data: dict, path: PathKey, allowed: set[str]) -> bool:
        ok = True
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                extra = f"; did you mean `{hint[0]}`?" if hint else \
                    f"; allowed keys: {', '.join(sorted(allowed))}"
                self.fail((*path, key), f"unknown key{extra}")
                ok = False
        return ok

    def _params(self, raw: Any, path: PathKey, rule_id: Any) -> dict[str, Any] | None:
        """The rule's tunable parameters, with config's overrides for this rule applied."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict) or not all(
                isinstance(v, str | int | float | bool | date) for v in raw.values()):
            self.fail(path, "must map parameter names to single values, like `idle_days: 14`")
            return None
        params = dict(raw)
        for name, value in self.overrides.get(str(rule_id), {}).items():
            if name not in params:
                self.fail(path, f"config overrides unknown parameter `{name}` of rule "
                                f"`{rule_id}`; it has: {', '.join(params) or 'none'}")
                return None
            params[name] = value
        return params

    def _own_value(self, key: str, value: Any, path: PathKey, fields: Catalog) -> Any:
        if key == "params":
            return self.params
        if key == "subject":
            return value
        if key == "weight":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                self.fail(path, "must be a number greater than 0")
                return None
            return float(value)
        if key == "severity" and value not in SEVERITIES:
            self.fail(path, f"must be one of {', '.join(SEVERITIES)}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty text")
            return None
        if key in ("message", "advice"):
            return self._template(value, path, fields)
        return value

    def _template(self, text: str, path: PathKey, fields: Catalog) -> str | None:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            self.fail(path, f"bad placeholder: {exc}; write {{field}}, and {{{{ for a brace")
            return None
        for name in names:
            if not name or fields.get(name) is None or "." in name:  # `{}` names nothing
                self.fail(path, f"unknown placeholder {{{name}}}; use a field name such as {{title}}")
                return None
        return text

    def _scope(self, data: Any, path: PathKey) -> Scope | None:
        if data is None:
            return Scope()
        if not isinstance(data, dict):
            self.fail(path, "must be a mapping with `sources` and/or `projects`")
            return None
        if not self._known_keys(data, path, {"sources", "projects"}):
            return None
        out: dict[str, frozenset[str]] = {}
        for key, value in data.items():
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items or \
                    not all(isinstance(v, str | int) for v in items):
                self.fail((*path, key), "must be a name or a list of names")
                return None
            out[key] = frozenset(str(v) for v in items)
        return Scope(**out)

    def condition(self, data: Any, path: PathKey, fields: Catalog) -> Node | None:
        """Parse a `when` block: all/any/not, or field tests (several at once mean all)."""
        if not isinstance(data, dict) or not data:
            self.fail(path, "must be a mapping: `all: [...]`, `any: [...]`, `not: {...}` "
                            "or `field: value` tests")
            return None
        nodes: list[Node] = []
        ok = True
        for key, value in data.items():
            sub = (*path, key)
            node: Node | None
            if key in ("all", "any"):
                node = self._group(key, value, sub, fields)
            elif key == "not":
                inner = self.condition(value, sub, fields)
                node = Not(inner) if inner is not None else None
            else:
                node = self._field_test(str(key), value, sub, fields)
            if node is None:
                ok = False
            else:
                nodes.append(node)
        if not ok:
            return None
        return nodes[0] if len(nodes) == 1 else All(tuple(nodes))

    def _group(self, key: str, value: Any, path: PathKey, fields: Catalog) -> Node | None:
        if not isinstance(value, list) or not value:
            self.fail(path, f"`{key}` takes a non-empty list of conditions")
            return None
        items = [self.condition(v, (*path, i), fields) for i, v in enumerate(value)]
        nodes = [i for i in items if i is not None]
        if len(nodes) < len(items):
            return None
        return All(tuple(nodes)) if key == "all" else AnyOf(tuple(nodes))

    def _field_test(self, name: str, spec: Any, path: PathKey, fields: Catalog) -> Node | None:
        fld = fields.get(name)
        if fld is None:
            hint = difflib.get_close_matches(name, fields.names(), n=1)
            extra = f"did you mean `{hint[0]}`?" if hint else "see `tether rules fields`"
            self.fail(path, f"unknown field `{name}`; {extra} (custom fields: custom.<name>)")
            return None
        if isinstance(spec, dict):
            if not spec:
                self.fail(path, f"give an operator: {', '.join(OPERATORS)}")
                return None
            parsed = [self._operator(fld, str(op), arg, (*path, op)) for op, arg in spec.items()]
            conds = [c for c in parsed if c is not None]
            if len(conds) < len(parsed):
                return None
            return conds[0] if len(conds) == 1 else All(tuple(conds))
        if isinstance(spec, list):
            op = "any_of" if fld.kind == LIST else "in"
            self.fail(path, f"a list needs an operator: write `{name}: {{{op}: [...]}}`")
            return None
        return self._operator(fld, "eq", spec, path)

    def _operator(self, fld: Field, op: str, arg: Any, path: PathKey) -> Cond | None:
        where = "{}:{}:{}".format(self.doc.file, *self.doc.where(path))
        if op not in OPERATORS:
            hint = difflib.get_close_matches(op, OPERATORS, n=1)
            extra = f"did you mean `{hint[0]}`?" if hint else f"use one of {', '.join(OPERATORS)}"
            self.fail(path, f"unknown operator `{op}`; {extra}")
            return None
        if isinstance(arg, dict) and set(arg) == {"param"}:
            name = arg["param"]
            if name not in self.params:
                known = ", ".join(self.params) or "none; declare them under `params:`"
                self.fail(path, f"unknown parameter `{name}`; this rule's parameters: {known}")
                return None
            arg = self.params[name]
        checked = self._check_arg(fld, op, arg, path)
        if checked is _BAD:
            return None
        kind = fld.kind if fld.kind != ANY else _custom_kind(op, checked)
        return Cond(fld.name, op, checked, kind, where)

    def _check_arg(self, fld: Field, op: str, arg: Any, path: PathKey) -> Any:
        kind, name = fld.kind, fld.name
        if op == "exists":
            if not isinstance(arg, bool):
                return self._bad(path, "`exists` takes true or false")
            return arg
        if op in ("any_of", "all_of"):
            if kind not in (LIST, ANY):
                return self._bad(path, f"`{op}` is for list fields; `{name}` is {kind}: use `in`")
            if not isinstance(arg, list) or not arg or not all(isinstance(v, str) for v in arg):
                return self._bad(path, f"`{op}` takes a non-empty list of texts")
            return tuple(arg)
        if op in ("matches", "contains"):
            if kind not in (STR, LIST, ANY):
                return self._bad(path, f"`{op}` is for text fields; `{name}` is {kind}")
            if not isinstance(arg, str) or not arg:
                return self._bad(path, f"`{op}` takes a non-empty text")
            if op == "matches":
                try:
                    re.compile(arg)
                except re.error as exc:
                    return self._bad(path, f"bad regular expression: {exc}")
            return arg
        if kind == LIST:
            return self._bad(path, f"`{name}` is a list; use any_of, all_of, matches or exists")
        if op == "in":
            if not isinstance(arg, list) or not arg:
                return self._bad(path, "`in` takes a non-empty list of values")
            values = [self._scalar(fld, v, (*path, i)) for i, v in enumerate(arg)]
            return _BAD if _BAD in values else tuple(values)
        if op in ("gt", "gte", "lt", "lte"):
            if kind not in (NUM, DATE, ANY):
                return self._bad(path, f"`{op}` compares numbers and dates; `{name}` is {kind}")
            if kind == ANY and (isinstance(arg, bool) or not isinstance(arg, int | float | date)):
                return self._bad(path, f"`{op}` takes a number or a date")
        return self._scalar(fld, arg, path)

    def _scalar(self, fld: Field, value: Any, path: PathKey) -> Any:
        kind = fld.kind
        if kind == DATE or (kind == ANY and isinstance(value, date)):
            try:
                parsed = parse_datetime(value)
            except (ValueError, TypeError):
                parsed = None
            if not isinstance(value, date | str) or parsed is None:
                return self._bad(path, "expected a date such as 2025-01-31")
            return parsed
        found = kind_of_value(value)
        if kind == ANY:
            if found not in (STR, NUM, BOOL):
                return self._bad(path, "expected a text, a number or true/false")
            return value
        if found != kind and not (kind == STR and found == NUM):
            return self._bad(path, f"`{fld.name}` is {kind}; {value!r} is not")
        if kind == STR:
            value = str(value)
            if fld.choices and value not in fld.choices:
                return self._bad(path, f"`{fld.name}` is one of {', '.join(fld.choices)}")
        return value

    def _bad(self, path: PathKey, message: str) -> Any:
        self.fail(path, message)
        return _BAD


_BAD = object()


def _custom_kind(op: str, arg: Any) -> str:
    if op in ("any_of", "all_of"):
        return LIST
    if op in ("matches", "contains", "exists"):
        return STR
    sample = arg[0] if op == "in" else arg
    return DATE if isinstance(sample, datetime) else kind_of_value(sample) or STR

