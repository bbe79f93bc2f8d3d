"""`tether rules explain`: which rules matched one item, and why, condition by condition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .model import KPI, Task
from .pipeline.assess import Assessor
from .pipeline.map import Mapper, task_values
from .rules.evaluate import Line, conditions, evaluate, explain, rule_condition
from .rules.language import Rule
from .rules.signals import DRIFT_FIELDS, link_facts


@dataclass(frozen=True)
class RuleVerdict:
    rule: Rule
    matched: bool  # as durable-rules decided
    lines: list[Line]  # the reference semantics, condition by condition
    agrees: bool  # False would be an engine bug: shown, never hidden


def explain_task(task: Task, mapper: Mapper, assessor: Assessor, kpis: list[KPI],
                 now: datetime) -> tuple[list[RuleVerdict], list[RuleVerdict]]:
    """Verdicts of every mapping rule, then of every signal rule, for one task."""
    mapped = mapper.map([task], now)
    hits = {r.id for r in mapper.matches([task], now).get(task.ref, [])}
    task_rules = mapper.rules + [r for r in assessor.rules if r.subject == "task"]
    names = {c.field for r in task_rules for c in conditions(rule_condition(r))}
    values = task_values(task, names - DRIFT_FIELDS.keys(), now)
    maps = [_verdict(rule, rule.id in hits, values) for rule in mapper.rules]
    values.update(link_facts([task], mapped, {k.id: k for k in kpis})[task.ref])
    raised = {f.rule_id for f in assessor.assess([task], mapped, kpis, now)}
    signals = [_verdict(rule, rule.id in raised, values) for rule in assessor.rules
               if rule.subject == "task"]
    return maps, signals


def _verdict(rule: Rule, matched: bool, values: dict) -> RuleVerdict:
    cond = rule_condition(rule)
    return RuleVerdict(rule, matched, explain(cond, values), evaluate(cond, values) == matched)

