"""Rule tests: YAML cases (``*.test.yaml`` next to the rules) that give an item and the KPIs
and signals it must get, run through the same Mapper and Assessor as a real run."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.codec import parse_datetime, task_from_dict
from tether.config.yamlsrc import Doc, PathKey, load_file
from tether.errors import InvalidInput, Problem
from tether.model import KPI, STATUS_CATEGORIES, Task
from tether.pipeline.assess import Assessor
from tether.pipeline.map import Mapper, task_values
from tether.rules.evaluate import evaluate, explain, fields_in, rule_condition
from tether.rules.language import All, AnyOf, Cond, Node, Not, Rule
from tether.rules.loader import RuleBook
from tether.rules.signals import DRIFT_FIELDS, link_facts

SENTINEL = "tether.test-guard"
DEFAULT_NOW = datetime(2025, 1, 1, tzinfo=UTC)  # fixed, so age/idle tests are deterministic
CASE_KEYS = ("name", "task", "now", "expect")
EXPECT_KEYS = ("kpis", "signals")
TEXT_KEYS = ("source", "key", "title", "url", "body", "type", "status", "assignee", "project",
             "parent", "epic")
LIST_KEYS = ("labels", "components")
DATE_KEYS = ("created", "updated", "resolved")
TASK_KEYS = (*TEXT_KEYS, *LIST_KEYS, *DATE_KEYS, "status_category", "links", "estimate", "custom")


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one test case; ``details`` say what differed (empty when it passed)."""

    file: str
    line: int
    name: str
    passed: bool
    details: list[str]


@dataclass(frozen=True)
class Case:
    """One parsed test case: the task to run and the exact sets expected (None: not checked)."""

    file: str
    line: int
    name: str
    task: Task
    now: datetime
    kpis: frozenset[str] | None
    signals: frozenset[str] | None


def load_cases(files: list[Path], kpis: list[KPI]) -> list[Case]:
    """Every case of ``files``; raise InvalidInput listing every malformed file or case."""
    problems: list[Problem] = []
    cases: list[Case] = []
    for path in files:
        try:
            doc = load_file(path)
        except InvalidInput as exc:
            problems += exc.problems
            continue
        cases += _CaseParser(doc, {k.id for k in kpis}, problems).cases()
    if problems:
        raise InvalidInput(problems)
    return cases


def run_rule_tests(book: RuleBook, kpis: list[KPI]) -> list[CaseResult]:
    """Run every case of ``book.test_files`` through the book's mapping and signal rules."""
    cases = load_cases(book.test_files, kpis)
    mapper, assessor = Mapper(book.mappings), Assessor(book.signals)
    try:
        return [_run(case, book, kpis, mapper, assessor) for case in cases]
    finally:
        mapper.close()
        assessor.close()


def format_results(results: list[CaseResult]) -> str:
    """``file::name PASSED|FAILED`` per case, failure details indented, then the counts."""
    lines = []
    for r in results:
        lines.append(f"{r.file}::{r.name} {'PASSED' if r.passed else 'FAILED'}")
        lines += [f"    {d}" for d in r.details]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


# -- running -----------------------------------------------------------------------------------


def _run(case: Case, book: RuleBook, kpis: list[KPI], mapper: Mapper,
         assessor: Assessor) -> CaseResult:
    task, now = case.task, case.now
    mappings = [m for m in mapper.map([task], now) if m.rule_id != SENTINEL]
    findings = [f for f in assessor.assess([task], mappings, kpis, now)
                if f.subject == task.ref and f.rule_id != SENTINEL]
    details: list[str] = []
    if case.kpis is not None:
        got = {m.kpi for m in mappings}
        if got != case.kpis:
            details.append(f"kpis: expected {_set(case.kpis)}, got {_set(got)}")
            details.append(f"mapping rules fired: {_ids(m.rule_id for m in mappings)}")
            for kpi in sorted(case.kpis - got):
                targets = [r for r in book.mappings if r.kpi == kpi]
                if not targets:
                    details.append(f"  no mapping rule maps to KPI `{kpi}`")
                for rule in targets:
                    details.append(f"  `{kpi}` would come from rule {rule.id} ({rule.where}), which "
                                   f"{_why_not(rule, _values(rule, task, now))}")
            for kpi in sorted(got - case.kpis):
                ids = _ids(m.rule_id for m in mappings if m.kpi == kpi)
                details.append(f"  unexpected `{kpi}` came from: {ids}")
    if case.signals is not None:
        got = {f.signal for f in findings}
        if got != case.signals:
            details.append(f"signals: expected {_set(case.signals)}, got {_set(got)}")
            details.append(f"signal rules fired: {_ids(f.rule_id for f in findings)}")
            links = link_facts([task], mappings, {k.id: k for k in kpis})[task.ref]
            for signal in sorted(case.signals - got):
                targets = [r for r in book.signals if (r.signal or r.id) == signal]
                if not targets:
                    details.append(f"  no signal rule raises `{signal}` (is it disabled?)")
                for rule in targets:
                    values = {**_values(rule, task, now), **links}
                    details.append(f"  `{signal}` would come from rule {rule.id} ({rule.where}), "
                                   f"which {_why_not(rule, values)}")
    return CaseResult(case.file, case.line, case.name, not details, details)


def _set(items: set[str] | frozenset[str]) -> str:
    return "[" + ", ".join(sorted(items)) + "]"


def _ids(ids: Any) -> str:
    return ", ".join(dict.fromkeys(ids)) or "none"


def _values(rule: Rule, task: Task, now: datetime) -> dict[str, Any]:
    return task_values(task, fields_in(rule_condition(rule)) - DRIFT_FIELDS.keys(), now)


def _why_not(rule: Rule, values: dict[str, Any]) -> str:
    culprit = _culprit(rule_condition(rule), values, rule.file)
    return f"failed at: {culprit}" if culprit else \
        "its condition holds here but the engine did not fire it; please report this"


def _culprit(node: Node, values: dict[str, Any], file: str) -> str | None:
    """The first condition that keeps ``node`` from holding, as explain shows it; None if it holds."""
    if evaluate(node, values):
        return None
    if isinstance(node, Cond):
        where = node.where.split(":")[-2] if node.where.startswith(f"{file}:") else node.where
        return f"{explain(node, values)[0].text} [{'line ' * where.isdigit()}{where}]"
    if isinstance(node, Not):
        return f"not ({explain(node.item, values)[0].text})"
    if isinstance(node, AnyOf):
        return f"none of {len(node.items)} alternatives held (first: {_culprit(node.items[0], values, file)})"
    assert isinstance(node, All)
    return next(c for c in (_culprit(n, values, file) for n in node.items) if c)


# -- parsing -----------------------------------------------------------------------------------


class _CaseParser:
    """Turns one test file's data into Cases, collecting every problem instead of stopping."""

    def __init__(self, doc: Doc, kpi_ids: set[str], problems: list[Problem]):
        self.doc, self.kpi_ids, self.problems = doc, kpi_ids, problems

    def fail(self, path: PathKey, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def cases(self) -> list[Case]:
        data = self.doc.data
        if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
            self.fail((), "a test file is a mapping with a `tests:` list of cases")
            return []
        self._known(data, (), ("tests",))
        out, names = [], set()
        for i, item in enumerate(data["tests"]):
            case = self._case(item, ("tests", i))
            if case is not None and case.name in names:
                self.fail(("tests", i, "name"), "duplicate test name; give each case its own")
            elif case is not None:
                names.add(case.name)
                out.append(case)
        return out

    def _known(self, data: dict, path: PathKey, allowed: tuple[str, ...]) -> bool:
        ok = True
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f"did you mean `{hint[0]}`?" if hint else f"allowed: {', '.join(allowed)}"
                self.fail((*path, key), f"unknown key; {extra}")
                ok = False
        return ok

    def _case(self, data: Any, path: PathKey) -> Case | None:
        if not isinstance(data, dict):
            self.fail(path, "each case is a mapping with `name`, `task` and `expect`")
            return None
        ok = self._known(data, path, CASE_KEYS)
        for key in ("name", "task", "expect"):
            if key not in data:
                self.fail(path, f"missing `{key}`")
                ok = False
        name = data.get("name")
        if "name" in data and (not isinstance(name, str) or not name.strip()):
            self.fail((*path, "name"), "must be a non-empty text")
            ok = False
        now = self._date(data["now"], (*path, "now")) if "now" in data else DEFAULT_NOW
        task = self._task(data.get("task"), (*path, "task"), str(name)) if "task" in data else None
        expect = self._expect(data.get("expect"), (*path, "expect")) if "expect" in data else None
        if not ok or now is None or task is None or expect is None:
            return None
        return Case(self.doc.file, self.doc.where(path)[0], str(name), task, now, *expect)

    def _date(self, value: Any, path: PathKey) -> datetime | None:
        try:
            parsed = parse_datetime(value)
        except (ValueError, TypeError):
            parsed = None
        if parsed is None:
            self.fail(path, "expected a date such as 2025-01-31 or 2025-01-31T09:00Z")
        return parsed

    def _task(self, data: Any, path: PathKey, name: str) -> Task | None:
        if not isinstance(data, dict):
            self.fail(path, "must be a mapping of task fields, e.g. {key: OPS-1, labels: [vendor]}")
            return None
        ok = self._known(data, path, TASK_KEYS)
        given = {k: v for k, v in data.items() if v is not None}
        values = {"source": "test", "key": "TEST-1", "title": name, **given}
        for key, value in given.items():
            sub = (*path, key)
            if key in TEXT_KEYS and not isinstance(value, str | int | float):
                ok = self._bad(sub, "must be a text")
            elif key in LIST_KEYS and not (isinstance(value, list)
                                           and all(isinstance(v, str | int) for v in value)):
                ok = self._bad(sub, "must be a list of texts")
            elif key in DATE_KEYS and self._date(value, sub) is None:
                ok = False
            elif key == "status_category" and value not in STATUS_CATEGORIES:
                ok = self._bad(sub, f"must be one of {', '.join(STATUS_CATEGORIES)}")
            elif key == "estimate" and (isinstance(value, bool) or not isinstance(value, int | float)):
                ok = self._bad(sub, "must be a number")
            elif key == "custom" and not isinstance(value, dict):
                ok = self._bad(sub, "must be a mapping of custom field names to values")
            elif key == "links" and not (isinstance(value, list) and all(
                    isinstance(li, dict) and set(li) == {"type", "target"} for li in value)):
                ok = self._bad(sub, "must be a list of {type: ..., target: ...}")
        if not ok:
            return None
        for key in ("source", "key", "title"):
            values[key] = str(values[key])
        values["labels"] = [str(v) for v in values.get("labels") or ()]
        values["components"] = [str(v) for v in values.get("components") or ()]
        try:
            return task_from_dict(values)
        except (ValueError, TypeError) as exc:
            self.fail(path, str(exc))
            return None

    def _bad(self, path: PathKey, message: str) -> bool:
        self.fail(path, message)
        return False

    def _expect(self, data: Any, path: PathKey) -> tuple[frozenset[str] | None, ...] | None:
        if not isinstance(data, dict) or not data.keys() & set(EXPECT_KEYS):
            self.fail(path, "must be a mapping with `kpis: [...]` and/or `signals: [...]`")
            return None
        ok = self._known(data, path, EXPECT_KEYS)
        out: list[frozenset[str] | None] = []
        for key in EXPECT_KEYS:
            value = data.get(key)
            if key not in data:
                out.append(None)
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                ok = self._bad((*path, key), "must be a list of ids ([] for none)")
                out.append(None)
                continue
            if key == "kpis":
                for i, kpi in enumerate(value):
                    if kpi not in self.kpi_ids:
                        known = ", ".join(sorted(self.kpi_ids)) or "none defined"
                        ok = self._bad((*path, key, i), f"unknown KPI `{kpi}`; known KPIs: {known}")
            out.append(frozenset(value))
        return tuple(out) if ok else None
