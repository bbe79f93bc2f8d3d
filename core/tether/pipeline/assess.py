"""Stage 3, assess: turn tasks, their KPI links and KPI status into drift findings.

Aggregates the drift rules need are computed here in Python and passed as facts; the
rules themselves are YAML (the built-in drift pack) run on durable-rules.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..model import KPI, Finding, Mapping, Task
from ..rules.compiler import compile_rules
from ..rules.engine import RuleEngine
from ..rules.language import Rule
from ..rules.signals import DRIFT_FIELDS, NO_LINKS, link_facts
from .map import task_values


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "(none)"


def render_message(template: str, values: dict[str, Any]) -> str:
    """Fill a rule's message; absent values read "(none)", lists are comma-separated."""
    shown = _Blank()
    for name, value in values.items():
        if value is None or value == []:
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, datetime):
            value = value.date().isoformat()
        shown[name] = value
    return string.Formatter().vformat(template, (), shown)


class Assessor:
    """Drift signal rules compiled once; ``assess`` is a plain function of its inputs."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.engine = RuleEngine(compile_rules(rules, "drift"))
        templates = {n for r in rules for text in (r.message, r.advice)
                     for _, n, _, _ in string.Formatter().parse(text) if n}
        self.names = self.engine.compiled.field_names() | templates

    def assess(self, tasks: Iterable[Task], mappings: Iterable[Mapping], kpis: Iterable[KPI],
               now: datetime) -> list[Finding]:
        """Findings for every task a signal rule matched, in task then rule order."""
        links = link_facts(mappings, {k.id: k for k in kpis})
        values: dict[str, dict[str, Any]] = {}
        task_names = self.names - DRIFT_FIELDS.keys()
        for task in tasks:
            values[task.ref] = {**task_values(task, task_names, now),
                                **links.get(task.ref, NO_LINKS)}
        findings = []
        for ref, rules in self.engine.match(values.items()).items():
            for rule in rules:
                findings.append(Finding(
                    signal=rule.signal or rule.id, severity=rule.severity, subject=ref,
                    reason=render_message(rule.message, values[ref]), rule_id=rule.id,
                    label=rule.label, advice=render_message(rule.advice, values[ref])))
        return findings

    def close(self) -> None:
        self.engine.close()
