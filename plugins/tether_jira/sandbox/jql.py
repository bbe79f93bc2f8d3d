"""A JQL subset for the sandbox: enough for real connector queries, with Jira's errors.

Clauses ``field op value`` joined by AND / OR / NOT and parentheses, then ORDER BY.
Operators = != ~ !~ > >= < <= IN, NOT IN, IS [NOT] EMPTY. Date literals are read in the
searching user's time zone, with minute precision, as Jira does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from .state import Issue, SandboxError, World

Predicate = Callable[[Issue], bool]
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|!~|>=|<=|[=~<>(),])"""
                    r"""|(?P<word>[^\s(),=!~<>"']+))""")
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_PERIOD = re.compile(r"([-+]?)((?:\d+[wdhm]\s*)+)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
_DATE_FIELDS = {"created": "created", "createddate": "created", "updated": "updated",
                "updateddate": "updated", "resolved": "resolved", "resolutiondate": "resolved"}


def jql_error(message: str) -> SandboxError:
    return SandboxError(400, [message])


@dataclass(frozen=True)
class Token:
    kind: str  # str, op, word
    text: str
    position: int


@dataclass(frozen=True)
class Query:
    """A compiled search: ``bounded`` is False when nothing restricts it (Cloud refuses)."""

    match: Predicate
    order: list[tuple[str, bool]]  # (field, descending)
    bounded: bool

    def run(self, issues: list[Issue]) -> list[Issue]:
        found = [i for i in issues if self.match(i)]
        for name, desc in reversed(self.order or [("key", True)]):
            found.sort(key=partial(_sort_key, name=name), reverse=desc)
        return found


def compile_jql(text: str, world: World) -> Query:
    """Parse ``text``; SandboxError(400) with Jira's wording when Jira would refuse it."""
    return _Parser(_tokens(text), world).query()


def _tokens(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise jql_error(f"Error in the JQL Query: The character '{text[pos]}' is a reserved "
                            f"JQL character. (line 1, character {pos + 1})")
        kind = m.lastgroup or "word"
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append(Token(kind, value, m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[Token], world: World):
        self.t = tokens
        self.i = 0
        self.world = world
        self.zone = ZoneInfo(world.me.time_zone if world.me else "UTC")

    # -- token helpers ----------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.t[j] if j < len(self.t) else None

    def is_word(self, *words: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok.kind == "word" and tok.text.lower() in words

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise jql_error("Error in the JQL Query: The JQL query ended unexpectedly.")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise self.unexpected(tok, f"'{text}'")

    def unexpected(self, tok: Token | None, wanted: str) -> SandboxError:
        got = f"'{tok.text}'" if tok else "the end of the query"
        at = f" (line 1, character {tok.position + 1})" if tok else ""
        return jql_error(f"Error in the JQL Query: Expecting {wanted} but got {got}.{at}")

    # -- grammar --------------------------------------------------------------------------

    def query(self) -> Query:
        match: Predicate = lambda issue: True  # noqa: E731
        bounded = False
        if self.peek() is not None and not self.is_word("order"):
            match, bounded = self.or_expr(), True
        order = self.order_by() if self.is_word("order") else []
        if self.peek() is not None:
            raise self.unexpected(self.peek(), "either 'OR' or 'AND'")
        return Query(match, order, bounded)

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda i: any(p(i) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.is_word("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda i: all(p(i) for p in parts))

    def not_expr(self) -> Predicate:
        if self.is_word("not"):
            self.take()
            inner = self.not_expr()
            return lambda i: not inner(i)
        tok = self.peek()
        if tok is not None and tok.text == "(" and tok.kind == "op":
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        return self.clause()

    def clause(self) -> Predicate:
        tok = self.take()
        if tok.kind == "op":
            raise self.unexpected(tok, "a field name")
        field = _Field.resolve(tok.text, self.world)
        op = self.operator()
        if op in ("is", "is not"):
            if not self.is_word("empty", "null"):
                raise self.unexpected(self.peek(), "'EMPTY' or 'NULL'")
            self.take()
            return (lambda i: field.empty(i)) if op == "is" else (lambda i: not field.empty(i))
        values = self.values(field) if op in ("in", "not in") else [self.value(field)]
        return field.predicate(op, values)

    def operator(self) -> str:
        tok = self.take()
        if tok.kind == "op" and tok.text in ("=", "!=", "~", "!~", ">", ">=", "<", "<="):
            return tok.text
        low = tok.text.lower()
        if low == "in":
            return "in"
        if low == "is":
            if self.is_word("not"):
                self.take()
                return "is not"
            return "is"
        if low == "not" and self.is_word("in"):
            self.take()
            return "not in"
        raise self.unexpected(tok, "an operator")

    def values(self, field: _Field) -> list[Any]:
        self.expect("(")
        out = [self.value(field)]
        while (nxt := self.peek()) is not None and nxt.text == ",":
            self.take()
            out.append(self.value(field))
        self.expect(")")
        return out

    def value(self, field: _Field) -> Any:
        tok = self.take()
        if tok.kind == "op":
            raise self.unexpected(tok, "a value")
        raw = tok.text
        nxt = self.peek()
        if tok.kind == "word" and nxt is not None and nxt.text == "(":  # a function call
            self.take()
            self.expect(")")
            raw = self.function(raw)
        return field.parse(raw, self)

    def function(self, name: str) -> Any:
        low = name.lower()
        if low == "now":
            return self.world.now()
        if low == "currentuser":
            return self.world.me.account_id if self.world.me else ""
        raise jql_error(f"Error in the JQL Query: Unable to find JQL function '{name}()'.")

    def date(self, raw: Any, name: str) -> datetime:
        if isinstance(raw, datetime):
            return raw
        text = str(raw).strip()
        period = _PERIOD.fullmatch(text)
        if period:
            delta = timedelta(**{_UNITS[u]: int(n) for n, u in
                                 re.findall(r"(\d+)([wdhm])", period[2])})
            return self.world.now() - delta if period[1] == "-" else self.world.now() + delta
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=self.zone)
            except ValueError:
                continue
        raise jql_error(
            f"Date value '{text}' for field '{name}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'.")

    def order_by(self) -> list[tuple[str, bool]]:
        self.take()
        if not self.is_word("by"):
            raise self.unexpected(self.peek(), "'by'")
        self.take()
        out = []
        while True:
            tok = self.take()
            name = _Field.resolve(tok.text, self.world).name
            desc = False
            if self.is_word("asc", "desc"):
                desc = self.take().text.lower() == "desc"
            out.append((name, desc))
            if (nxt := self.peek()) is None or nxt.text != ",":
                return out
            self.take()


@dataclass(frozen=True)
class _Field:
    """A JQL field: how to read it from an issue and how to check a value for it."""

    name: str
    world: World
    custom_id: str | None = None

    @classmethod
    def resolve(cls, text: str, world: World) -> _Field:
        low = text.lower()
        aliases = {"issuekey": "key", "issue": "key", "issuetype": "type",
                   "component": "components", "category": "statuscategory"}
        low = aliases.get(low, low)
        if low in ("project", "key", "id", "summary", "description", "text", "labels",
                   "status", "statuscategory", "type", "assignee", "reporter", "parent",
                   "components") or low in _DATE_FIELDS:
            return cls(_DATE_FIELDS.get(low, low), world)
        for fdef in world.fields.values():
            if fdef.is_custom and low in (c.lower() for c in fdef.clause_names):
                return cls(fdef.id, world, fdef.id)
        raise jql_error(f"Field '{text}' does not exist or you do not have permission to "
                        "view it.")

    def parse(self, raw: Any, parser: _Parser) -> Any:
        """Check ``raw`` for this field as Jira does; return the comparable value."""
        w = self.world
        text = str(raw) if not isinstance(raw, datetime) else raw
        if self.name in ("created", "updated", "resolved"):
            return parser.date(raw, self.name)
        if self.name == "project":
            project = w.projects.get(str(text).upper()) or next(
                (p for p in w.projects.values() if str(text) in (p.id, p.name)), None)
            if project is None or not w.can(project.key, "BROWSE_PROJECTS"):
                raise jql_error(f"The value '{text}' does not exist for the field 'project'.")
            return project.key
        if self.name in ("key", "parent"):
            issue = w.issues.get(str(text).upper()) or next(
                (i for i in w.issues.values() if i.id == text), None)
            if issue is None or not w.can(issue.project, "BROWSE_PROJECTS"):
                raise jql_error(f"An issue with key '{text}' does not exist for field "
                                f"'{self.name}'.")
            return issue.key
        if self.name == "type" and str(text).lower() not in (t.lower() for t in w.types):
            raise jql_error(f"The value '{text}' does not exist for the field 'type'.")
        if self.name == "status" and str(text).lower() not in (s.lower() for s in w.statuses):
            raise jql_error(f"The value '{text}' does not exist for the field 'status'.")
        if self.custom_id and w.fields[self.custom_id].type == "number":
            try:
                return float(str(text))  # str: a function's datetime is no number either
            except ValueError:
                raise jql_error(f"The value '{text}' is not a valid number for field "
                                f"'{w.fields[self.custom_id].name}'.") from None
        return text

    def values(self, issue: Issue) -> list[Any]:
        """The field's values on ``issue`` (a list: multi-valued fields have several)."""
        w, n = self.world, self.name
        if self.custom_id:
            value = issue.custom.get(self.custom_id)
            return [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        single: dict[str, Any] = {
            "project": issue.project, "key": issue.key, "id": issue.id,
            "summary": issue.summary, "description": issue.description,
            "text": f"{issue.summary}\n{issue.description}", "status": issue.status,
            "statuscategory": w.statuses[issue.status].category, "type": issue.type,
            "parent": issue.parent, "created": issue.created, "updated": issue.updated,
            "resolved": issue.resolved,
        }
        if n == "labels":
            return list(issue.labels)
        if n == "components":
            return list(issue.components)
        if n in ("assignee", "reporter"):
            user = w.users.get(getattr(issue, n) or "")
            return [] if user is None else [user.account_id, user.name, user.display_name,
                                             user.email]
        value = single[n]
        return [] if value in (None, "") else [value]

    def empty(self, issue: Issue) -> bool:
        return not self.values(issue)

    def predicate(self, op: str, wanted: list[Any]) -> Predicate:
        def norm(v: Any) -> Any:
            if self.name == "statuscategory" and isinstance(v, str):
                names = {"to do": "new", "in progress": "indeterminate", "done": "done"}
                return names.get(v.lower(), v.lower())
            return v.lower() if isinstance(v, str) else v

        want = [norm(v) for v in wanted]
        if op in ("=", "in"):
            return lambda i: any(norm(v) in want for v in self.values(i))
        if op in ("!=", "not in"):  # Jira's != never matches an empty field
            return lambda i: bool(self.values(i)) and all(norm(v) not in want
                                                          for v in self.values(i))
        if op in ("~", "!~"):
            needle = str(wanted[0]).lower().strip("*")
            hit = lambda i: any(needle in str(v).lower() for v in self.values(i))  # noqa: E731
            return hit if op == "~" else (lambda i: not hit(i))
        target = want[0]
        compare = {">": lambda a: a > target, ">=": lambda a: a >= target,
                   "<": lambda a: a < target, "<=": lambda a: a <= target}[op]
        if self.name == "key":
            target = _key_order(str(wanted[0]))
            return lambda i: i.project == target[0] and compare(_key_order(i.key))
        return lambda i: any(compare(v) for v in self.values(i) if type(v) is type(target)
                             or isinstance(v, int | float) and isinstance(target, int | float))


def _key_order(key: str) -> tuple[str, int]:
    project, _, number = key.upper().rpartition("-")
    return project, int(number) if number.isdigit() else 0


def _sort_key(issue: Issue, name: str) -> Any:
    if name in ("key", "id"):
        return _key_order(issue.key)
    value = {"created": issue.created, "updated": issue.updated, "summary": issue.summary,
             "status": issue.status, "type": issue.type, "project": issue.project
             }.get(name, issue.custom.get(name))
    if name == "resolved":
        value = issue.resolved
    return (value is None, value if value is not None else 0)
