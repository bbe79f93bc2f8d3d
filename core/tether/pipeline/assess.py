"""Stage 3, assess: turn tasks, their KPI links and KPI status into drift findings.

Aggregates the drift rules need are computed here in Python and passed as facts; the
rules themselves are YAML (the built-in drift pack) run on durable-rules.
"""

from __future__ import annotations

import string
from collections import abc, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tether.kpi.status import KpiStatus, kpi_statuses
from tether.model import KPI, Finding, Mapping, Measurement, Task
from tether.pipeline.incremental import Recall
from tether.pipeline.map import Mapper, collector_paused, task_reader
from tether.pipeline.verdicts import Verdicts, open_findings, reminded
from tether.rules.compiler import compile_rules
from tether.rules.engine import RuleEngine
from tether.rules.language import Rule
from tether.rules.loader import RuleBook
from tether.rules.signals import (
    DRIFT_FIELDS,
    Judgement,
    TaskLinks,
    facts_of_tallies,
    join_facts,
    link_facts,
    served,
)
from tether.rules.tally import Share, Tally, portfolio_shares, tallies
from tether.store.db import Store
from tether.workspace import Workspace


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
    return template.format_map(shown)


class Assessor:
    """Drift signal rules compiled once (task rules and KPI rules apart); ``assess`` is a
    plain function of its inputs."""

    FINDINGS_CHUNK = 500  # flagged tasks whose message values are alive at once

    def __init__(self, rules: list[Rule], judgement: Judgement | None = None):
        self.rules = rules
        self.judgement = judgement or Judgement()
        task_rules = [r for r in rules if r.subject == "task"]
        self.task_engine = RuleEngine(compile_rules(task_rules, "drift"))
        try:
            self.kpi_engine = RuleEngine(compile_rules(
                [r for r in rules if r.subject == "kpi"], "kpi"))
        except BaseException:
            self.task_engine.close()  # the C library keeps rulesets until told
            raise
        templates = {n for r in task_rules for text in (r.message, r.advice)
                     for _, n, _, _ in string.Formatter().parse(text) if n}
        self.names = self.task_engine.compiled.field_names() | templates
        self._task_names = self.names - DRIFT_FIELDS.keys()
        # What a message's fields look up (`{a.b}`, `{a[0]}`: a): values beyond are unread.
        shown = {n.partition(".")[0].partition("[")[0] for n in templates}
        self._shown_task_names = shown & self._task_names
        self._read_task, self._read_shown = (task_reader(self._task_names),
                                             task_reader(self._shown_task_names))
        self._shown_links = shown & DRIFT_FIELDS.keys()
        # Per task rule, the drift fields its message and advice read: a flagged task's
        # values hold those of the rules it matched alone (render_message converts all).
        self._link_reads = {r.id: self._shown_links & (self._reads(r.message)
                                                       | self._reads(r.advice))
                            for r in task_rules}
        # A task's fact straight from the task and its drift fields (link_facts).
        self._project = self.task_engine.task_projector(DRIFT_FIELDS)
        self.joins: dict[str, dict[str, Any]] = {}  # the last assess's non-empty join facts
        self.shares: dict[str, dict[str, Share]] = {}  # the last assess's, by task ref

    def assess(self, tasks: Iterable[Task], mappings: Iterable[Mapping], kpis: Iterable[KPI],
               now: datetime, statuses: dict[str, KpiStatus] | None = None,
               measurements: Iterable[Measurement] = (), recall: Recall | None = None
               ) -> list[Finding]:
        """Findings for every task, then every KPI, a signal rule matched, in rule order
        (with ``recall``: only tasks whose values it has not matched before go to the engine).

        The rules see what ``facts`` returns; only the values of a few flagged tasks at a
        time are built, for their messages."""
        with collector_paused():
            return self._assess(list(tasks), list(mappings), list(kpis), now, statuses,
                                measurements, recall)

    def _assess(self, tasks: list[Task], mappings: list[Mapping], kpis: list[KPI],
                now: datetime, statuses: dict[str, KpiStatus] | None,
                measurements: Iterable[Measurement], recall: Recall | None) -> list[Finding]:
        by_id, serves = {k.id: k for k in kpis}, served(mappings, shared=True)
        self.joins = join_facts(tasks, serves, by_id, statuses or {}, self.judgement)
        by_ref = {task.ref: task for task in tasks}  # one subject per ref, as in facts
        # Each task's drift fields (link_facts') are built as its fact is, then dropped:
        # kept for every task at once they would outweigh the tasks.
        links = TaskLinks(by_ref, serves, by_id, statuses or {}, self.joins)
        findings = self.task_findings(by_ref, links, now, recall)
        del links, by_ref  # before the KPI side's counts
        self.shares = portfolio_shares(kpis, tasks, mappings, now, self.judgement.window_days)
        findings += self.kpi_findings(tallies(self.shares.values()), kpis, now, statuses,
                                      measurements)
        return with_value_at_risk(findings, serves, at_risk(statuses or {}))

    def task_findings(self, by_ref: dict[str, Task], links: abc.Mapping[str, dict[str, Any]],
                      now: datetime, recall: Recall | None = None) -> list[Finding]:
        """The findings of the task rules on ``by_ref`` with their drift fields ``links``, in
        task then rule order, without value at risk (with ``recall``: only tasks whose values
        it has not matched before go to the engine)."""
        if recall is not None:  # it compares the values facts() shows
            matched = recall.match(self.task_engine, (
                (ref, self._values(task, links[ref], now)) for ref, task in by_ref.items()))
        else:
            project = self._project
            matched = self.task_engine.match_facts(
                (ref, project(task, now, links[ref])) for ref, task in by_ref.items())
        flagged = [(ref, rules) for ref, rules in matched.items() if rules]
        del matched
        findings: list[Finding] = []
        for start in range(0, len(flagged), self.FINDINGS_CHUNK):
            part = dict(flagged[start:start + self.FINDINGS_CHUNK])
            findings += _findings(part, {ref: self._shown(by_ref[ref], links[ref], now, rules)
                                         for ref, rules in part.items()})
        return findings

    def kpi_findings(self, counts: dict[str, Tally], kpis: list[KPI], now: datetime,
                     statuses: dict[str, KpiStatus] | None,
                     measurements: Iterable[Measurement]) -> list[Finding]:
        """The findings of the KPI rules on the KPIs' ``counts``, in KPI then rule order, as
        the rules raised them."""
        per_kpi = self._kpi_values(counts, kpis, now, statuses, measurements)
        return _findings(self.kpi_engine.match(per_kpi.items()), per_kpi)

    def facts(self, tasks: Iterable[Task], mappings: Iterable[Mapping], kpis: Iterable[KPI],
              now: datetime, statuses: dict[str, KpiStatus] | None = None,
              measurements: Iterable[Measurement] = ()
              ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """What the signal rules see, computed over the whole portfolio: field values by task
        ref, and by ``kpi:<id>``. ``rules explain`` shows these very values."""
        tasks, mappings, kpis = list(tasks), list(mappings), list(kpis)
        links = link_facts(tasks, mappings, {k.id: k for k in kpis}, statuses, self.judgement)
        values = {task.ref: self._values(task, links[task.ref], now) for task in tasks}
        counts = tallies(portfolio_shares(kpis, tasks, mappings, now,
                                          self.judgement.window_days).values())
        return values, self._kpi_values(counts, kpis, now, statuses, measurements)

    def _values(self, task: Task, links: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {**self._read_task(task, now), **links}

    def _shown(self, task: Task, links: dict[str, Any], now: datetime,
               rules: list[Rule] | None = None) -> dict[str, Any]:
        """The part of _values the messages of ``rules`` (default: every task rule) read;
        they render the same from it."""
        reads, every = self._link_reads, self._shown_links  # (a rule it does not know: all)
        if rules is None:
            names: Iterable[str] = every
        elif len(rules) == 1:
            names = reads.get(rules[0].id, every)
        else:
            names = set().union(*(reads.get(r.id, every) for r in rules))
        return {**self._read_shown(task, now),
                **{name: links[name] for name in names if name in links}}

    @staticmethod
    def _reads(text: str) -> set[str]:
        """The values a message's fields look up, those of nested format specs too
        (`{a.b}`, `{a[0]}`, `{x:{a}}`: a)."""
        names = set()
        for _, name, spec, _ in string.Formatter().parse(text):
            if name:
                names.add(name.partition(".")[0].partition("[")[0])
            if spec:
                names |= Assessor._reads(spec)
        return names

    def _kpi_values(self, counts: dict[str, Tally], kpis: list[KPI], now: datetime,
                    statuses: dict[str, KpiStatus] | None,
                    measurements: Iterable[Measurement]) -> dict[str, dict[str, Any]]:
        return {f"kpi:{kpi}": facts
                for kpi, facts in facts_of_tallies(kpis, counts, statuses, measurements,
                                                   now, self.judgement).items()}

    def close(self) -> None:
        self.task_engine.close()
        self.kpi_engine.close()


def flagged_counts(findings: Iterable[Finding], serves: dict[str, set[str]]) -> dict[str, int]:
    """Per KPI, how many flagged items serve it."""
    flagged: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        for kid in serves.get(f.subject, ()):
            flagged[kid].add(f.subject)
    return {k: len(refs) for k, refs in sorted(flagged.items())}


def at_risk(statuses: dict[str, KpiStatus]) -> dict[str, float]:
    """Each KPI's value at risk (0 when unknown)."""
    return {k: s.value_at_risk or 0.0 for k, s in statuses.items()}


def with_value_at_risk(findings: list[Finding], serves: dict[str, set[str]],
                       at_risk: dict[str, float], counts: dict[str, int] | None = None
                       ) -> list[Finding]:
    """A KPI's finding carries the KPI's value at risk; a task's finding a share of it: each
    KPI's value at risk is split evenly across the flagged items that serve it (``counts``
    of them per KPI, else counted in ``findings``)."""
    flagged = flagged_counts(findings, serves) if counts is None else counts
    none: set[str] = set()
    out = []
    for f in findings:
        kind, _, kid = f.subject.partition(":")
        if kind == "kpi":
            value = at_risk.get(kid, 0.0)
        else:
            value = sum(at_risk.get(k, 0.0) / flagged[k]
                        for k in sorted(serves.get(f.subject, none)) if at_risk.get(k))
        value = round(value, 2)
        out.append(f if value == f.value_at_risk else replace(f, value_at_risk=value))
    return out


def _findings(matches: dict[str, list[Rule]], values: dict[str, dict[str, Any]]) -> list[Finding]:
    return [Finding(signal=rule.signal or rule.id, severity=rule.severity, subject=ref,
                    reason=render_message(rule.message, values[ref]), rule_id=rule.id,
                    label=rule.label, advice=render_message(rule.advice, values[ref]))
            for ref, rules in matches.items() for rule in rules]


@dataclass
class Examination:
    """The whole portfolio judged as of one moment, and (when asked) what the rules saw."""

    statuses: dict[str, KpiStatus]  # by KPI id, config order
    mappings: list[Mapping]
    findings: list[Finding]  # as the rules raised them, without reminders
    task_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by task ref
    kpi_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by "kpi:<id>"
    joins: dict[str, dict[str, Any]] = field(default_factory=dict)  # non-empty join facts
    shares: dict[str, dict[str, Share]] = field(default_factory=dict)  # KPI shares, by task


def examine(ws: Workspace, tasks: list[Task], measurements: list[Measurement], now: datetime,
            rules: RuleBook | None = None, facts: bool = False,
            recall: Recalled | None = None) -> Examination:
    """Stages 2 and 3 as of ``now`` with ``rules`` (default: the workspace's): each KPI's
    status, the mappings and the findings; with ``facts``, also the values the signal rules
    saw, so `rules explain` shows the very facts a pass judges on. With ``recall``, only
    facts not matched on an earlier pass go to the rule engine."""
    cfg = ws.config
    book = rules or ws.rules
    statuses = kpi_statuses(cfg.kpis, measurements, now, cfg.status)
    mapper, assessor = Mapper(book.mappings), Assessor(book.signals, cfg.judgement)
    try:
        mappings = mapper.map(tasks, now, recall=recall.map if recall else None)
        findings = assessor.assess(tasks, mappings, cfg.kpis, now, statuses, measurements,
                                   recall=recall.drift if recall else None)
        seen = (assessor.facts(tasks, mappings, cfg.kpis, now, statuses, measurements)
                if facts else ({}, {}))
    finally:
        mapper.close()
        assessor.close()
    return Examination(statuses, mappings, findings, *seen, joins=assessor.joins,
                       shares=assessor.shares)


def judge(ws: Workspace, tasks: list[Task], measurements: list[Measurement],
          first_seen: dict[tuple[str, str, str], datetime], now: datetime,
          recall: Recalled | None = None
          ) -> tuple[dict[str, KpiStatus], list[Mapping], list[Finding]]:
    """Stages 2 and 3 as of ``now``: each KPI's status, the mappings, and the findings with
    their reminders (``first_seen`` by (signal, subject, rule id) of the open ones)."""
    seen = examine(ws, tasks, measurements, now, recall=recall)
    return seen.statuses, seen.mappings, reminded(ws, seen.findings, first_seen, now)


@dataclass
class Recalled:
    """The matches an earlier pass kept, per stage: mapping rules, then task drift rules."""

    map: Recall
    drift: Recall

    @classmethod
    def load(cls, ws: Workspace, store: Store, full: bool, refs: set[str] | None = None
             ) -> Recalled:
        """Both stages' kept matches, of every task or of ``refs``."""
        return cls(Recall.load(store, "map", ws.rules.mappings, full, refs),
                   Recall.load(store, "drift", [r for r in ws.rules.signals if r.subject == "task"],
                               full, refs))


def assess_pass(ws: Workspace, store: Store, tasks: list[Task], now: datetime,
                full: bool = False) -> tuple[Verdicts, Examination]:
    """Stages 2 and 3 of a pass on the store's measurements, reminders included, matching
    only the facts that changed since the last pass (all of them if ``full``). Records no
    finding (sync records them when it applies); keeps the matches for the next pass.
    Also returns the examination (findings as the rules raised them, join facts)."""
    open_before = open_findings(store)
    recall = Recalled.load(ws, store, full)
    seen = examine(ws, tasks, store.measurements(), now, recall=recall)
    recall.map.save(store)
    recall.drift.save(store)
    return Verdicts.of(seen.statuses, seen.mappings,
                       reminded(ws, seen.findings, open_before, now), open_before,
                       {"map": recall.map.rematched, "drift": recall.drift.rematched}), seen
