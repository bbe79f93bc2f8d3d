"""`tether rules explain`: which rules matched one item (or one KPI), and why, condition by
condition. The portfolio is judged whole, exactly as a pass judges it (KPI statuses, every
item mapped, the signal rules' facts computed over all of them); then one subject is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tether.errors import TetherError
from tether.kpi.status import KpiStatus
from tether.model import Finding, Measurement, Task
from tether.pipeline.assess import examine
from tether.pipeline.map import task_values
from tether.pipeline.verdicts import with_reminder
from tether.rules.evaluate import Line, conditions, evaluate, explain, rule_condition
from tether.rules.fields import CUSTOM_PREFIX, TASK_FIELDS
from tether.rules.language import Rule
from tether.workspace import Workspace

KPI_PREFIX = "kpi:"


@dataclass(frozen=True)
class RuleVerdict:
    rule: Rule
    matched: bool  # as durable-rules decided
    lines: list[Line]  # the reference semantics, condition by condition
    agrees: bool  # False would be an engine bug: shown, never hidden


@dataclass(frozen=True)
class Explanation:
    """One subject's verdicts, from a judgement of the whole portfolio as of ``as_of``."""

    subject: str  # SOURCE:KEY, or kpi:<id>
    title: str
    as_of: datetime
    items: int  # how many items the portfolio judged has
    mappings: list[RuleVerdict]  # every mapping rule (none for a KPI)
    signals: list[RuleVerdict]  # every signal rule about this kind of subject
    facts: dict[str, Any]  # what the signal rules saw
    findings: list[Finding]  # what the pass raises on the subject
    status: KpiStatus | None = None  # a KPI's status


def explain_subject(ws: Workspace, subject: str, tasks: list[Task],
                    measurements: list[Measurement], now: datetime,
                    first_seen: dict[tuple[str, str, str], datetime] | None = None
                    ) -> Explanation:
    """Judge ``tasks`` as a pass would as of ``now``, then explain ``subject`` (an item's
    SOURCE:KEY or ``kpi:<id>``); findings open since ``first_seen`` (by signal, subject and
    rule id) carry their reminders, as in a pass. TetherError when the subject is not in the
    portfolio."""
    task = next((t for t in tasks if t.ref == subject), None)
    kpi = next((k for k in ws.config.kpis if f"{KPI_PREFIX}{k.id}" == subject), None)
    if task is None and kpi is None:
        raise TetherError(f"No item '{subject}' in the last pull. Check the key, or run "
                          "`tether plan` to pull again.")
    seen = examine(ws, tasks, measurements, now, facts=True)
    rules = {r.id: r for r in ws.rules.signals}
    raised = [with_reminder(f, rules.get(f.rule_id), first_seen or {}, now)
              for f in seen.findings if f.subject == subject]
    fired = {f.rule_id for f in raised}
    if task is None:
        assert kpi is not None
        facts = seen.kpi_facts.get(subject, {})
        signals = [_verdict(r, r.id in fired, facts) for r in ws.rules.signals
                   if r.subject == "kpi"]
        return Explanation(subject, kpi.name, now, len(tasks), [], signals, facts, raised,
                           seen.statuses.get(kpi.id))
    mapped = {m.rule_id for m in seen.mappings if m.task == subject}
    task_rules = ws.rules.mappings + [r for r in ws.rules.signals if r.subject == "task"]
    names = {c.field for r in task_rules for c in conditions(rule_condition(r))}
    values = task_values(task, {n for n in names if n in TASK_FIELDS
                                or n.startswith(CUSTOM_PREFIX)}, now)
    maps = [_verdict(r, r.id in mapped, values) for r in ws.rules.mappings]
    facts = seen.task_facts.get(subject, {})
    signals = [_verdict(r, r.id in fired, {**values, **facts}) for r in ws.rules.signals
               if r.subject == "task"]
    return Explanation(subject, task.title, now, len(tasks), maps, signals, facts, raised)


def _verdict(rule: Rule, matched: bool, values: dict) -> RuleVerdict:
    cond = rule_condition(rule)
    return RuleVerdict(rule, matched, explain(cond, values), evaluate(cond, values) == matched)
