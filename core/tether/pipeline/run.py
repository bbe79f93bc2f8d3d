"""One pass over a workspace: pull, map, assess, plan and (for sync) apply."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tether.kpi.sources import store_measurements
from tether.kpi.status import KpiStatus, kpi_statuses
from tether.model import KPI, CurrentAnnotation, Finding, Mapping, Measurement, Task, WriteOp, Written
from tether.pipeline import memory
from tether.pipeline.apply import ApplyReport, apply_ops, within_budget
from tether.pipeline.assess import Assessor
from tether.pipeline.map import Mapper
from tether.pipeline.plan import CommentStyle, desired_annotations, plan
from tether.pipeline.pull import pull_source
from tether.pipeline.render import Renderer, mention
from tether.rules.language import Rule
from tether.rules.loader import RuleBook
from tether.store.db import LedgerEntry, Store
from tether.workspace import Workspace


@dataclass
class RunResult:
    """Everything a pass produced; the CLI renders it as text or JSON."""

    run_id: int
    mode: str
    started: datetime
    finished: datetime | None = None
    status: str = "running"
    packs: dict[str, str] = field(default_factory=dict)
    pulled: dict[str, int] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    mappings: list[Mapping] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    new_findings: set[tuple[str, str, str]] = field(default_factory=set)
    cleared: list[tuple[str, str, str]] = field(default_factory=list)
    ops: list[WriteOp] = field(default_factory=list)
    held: list[WriteOp] = field(default_factory=list)  # a person's override, respected
    interrupted: list[LedgerEntry] = field(default_factory=list)  # writes a crash cut short
    not_annotated: int = 0  # items left alone by writeback.since
    deferred: list[WriteOp] = field(default_factory=list)  # over the write budget
    notices: list[str] = field(default_factory=list)  # connectors' word on how they wrote
    budget: int = 0
    applied: ApplyReport | None = None
    kpi_statuses: dict[str, KpiStatus] = field(default_factory=dict)  # by KPI id, config order


def _finding_key(signal: str, subject: str, rule_id: str) -> tuple[str, str, str]:
    return (signal, subject, rule_id)


def run_pass(ws: Workspace, store: Store, mode: str,
             clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RunResult:
    """Run one pass; ``mode`` "plan" writes nothing to trackers, "sync" applies the plan."""
    now = clock()
    result = RunResult(store.start_run(mode, ws.rules.packs, now), mode, now, packs=ws.rules.packs)
    try:
        _run(ws, store, result, clock)
    except BaseException:
        store.finish_run(result.run_id, "failed", _counts(result), clock())
        raise
    result.status = "ok" if not (result.applied and result.applied.failed) else "failed"
    result.finished = clock()
    store.finish_run(result.run_id, result.status, _counts(result), result.finished)
    return result


def _run(ws: Workspace, store: Store, result: RunResult, clock: Callable[[], datetime]) -> None:
    cfg = ws.config
    wb = cfg.writeback
    if result.mode == "sync":  # writes a crash cut short: their items are re-read with care
        result.interrupted = store.ledger_interrupt(result.started)
        # They may have landed and bumped `updated`: the pull must not take that for activity.
        store.save_written(memory.maybe_written(result.interrupted, store.load_written()))
    for name, connector in ws.connectors.items():
        result.pulled[name] = pull_source(connector, store, wb.label_prefix)
    result.tasks = [t for t in store.load_tasks() if t.source in ws.connectors]
    store_measurements(cfg, ws.plugins, store)  # inline values, then each KPI source
    kpis = {k.id: k for k in cfg.kpis}
    open_before = store.open_findings()
    before = {_finding_key(f.signal, f.subject, f.rule_id) for f in open_before}
    first_seen = {_finding_key(f.signal, f.subject, f.rule_id): f.first_seen for f in open_before}
    result.kpi_statuses, result.mappings, result.findings = judge(
        ws, result.tasks, store.measurements(), first_seen, result.started)
    now_keys = [_finding_key(f.signal, f.subject, f.rule_id) for f in result.findings]
    result.new_findings = {k for k in now_keys if k not in before}
    result.cleared = sorted(before - set(now_keys))

    written = store.load_written()
    annotated = [t for t in result.tasks if wb.since is None or t.ref in written
                 or (t.updated is not None and t.updated >= wb.since)]
    result.not_annotated = len(result.tasks) - len(annotated)
    suspect = {f"{e.source}:{e.key}" for e in result.interrupted}
    suspect |= store.ledger_unsettled_comments()
    current = memory.effective(_read_current(ws, annotated, suspect, written), written)
    desired = desired_annotations(annotated, result.mappings, result.findings, kpis,
                                  wb.label_prefix, wb.comments, current, comment_style(ws),
                                  wb.kpi_labels)
    planned = plan(annotated, desired, current, written)
    result.ops, result.held, result.budget = planned.ops, planned.held, wb.budget
    result.deferred = within_budget(result.ops, wb.budget, wb.source_budget)[1]

    if result.mode == "sync":
        store.save_mappings(result.mappings)
        store.record_findings(result.findings, result.started)
        result.applied = apply_ops(result.ops, ws.connectors, store, result.run_id,
                                   wb.budget, wb.source_budget, clock)
        for op in memory.new_holds(result.held, written):  # noted once, when first honoured
            store.ledger_note(result.run_id, op, "held", op.reason, clock())
        store.save_written(memory.remember(written, desired, current, result.held,
                                           result.applied.results, result.applied.deferred))
        store.patch_labels(memory.label_changes(result.applied.results))
        result.notices = [n for c in ws.connectors.values() for n in c.notices()]
        store.prune(result.started - timedelta(days=cfg.retention_days))


def _read_current(ws: Workspace, tasks: list[Task], suspect: set[str],
                  written: dict[str, Written]) -> dict[str, CurrentAnnotation]:
    """What each task shows now, by ref. Items whose last write was cut short or failed are
    recovered (looked up past any cache or index), so a comment that landed unseen is edited,
    not duplicated; so are items whose comment seems gone, before Tether concludes a person
    deleted it (a missing index is not a deletion)."""
    by_source: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_source[task.source].append(task)
    current: dict[str, CurrentAnnotation] = {}
    prefix = ws.config.writeback.label_prefix
    for name, group in by_source.items():
        connector = ws.connectors[name]
        connector.known_comments = {t.key: written[t.ref].comment_id for t in group
                                    if t.ref in written}
        shown = connector.read_annotations([t for t in group if t.ref not in suspect], prefix)
        careful = [t for t in group if t.ref in suspect or _seems_deleted(
            written.get(t.ref), shown.get(t.key))]
        if careful:
            shown.update(connector.recover(careful, prefix))
        current.update({f"{name}:{key}": value for key, value in shown.items()})
    return current


def _seems_deleted(w: Written | None, shown: CurrentAnnotation | None) -> bool:
    """Tether kept a comment here and the read shows none, not yet confirmed as deleted."""
    return (w is not None and w.comment_id is not None and not w.comment_gone
            and "comment" not in w.held and shown is not None and shown.comment_id is None)


def comment_style(ws: Workspace) -> CommentStyle:
    """Each source's markup and mention rule, and the renderer with the config's templates."""
    packs = ws.rules.packs
    rules = ws.rules.signals
    versions = {r.id: f"pack {r.pack} {packs.get(r.pack, '')[:8]}".rstrip() for r in rules}
    mentioning = frozenset(r.id for r in rules if r.params.get("mention_owner"))
    style = CommentStyle(Renderer(ws.config.writeback.templates, versions, mentioning))
    types = {s.name: s.type for s in ws.config.sources}
    for name, connector in ws.connectors.items():
        style.markup[name] = connector.capabilities.markup
        if ws.config.writeback.mentions and connector.capabilities.mentions != "none":
            style.mentions[name] = partial(_owner_token, source=name, source_type=types[name])
    return style


def _owner_token(kpi: KPI, source: str, source_type: str) -> str | None:
    handle = kpi.handle(source, source_type)
    return mention(handle) if handle else None


@dataclass
class Examination:
    """The whole portfolio judged as of one moment, and (when asked) what the rules saw."""

    statuses: dict[str, KpiStatus]  # by KPI id, config order
    mappings: list[Mapping]
    findings: list[Finding]  # as the rules raised them, without reminders
    task_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by task ref
    kpi_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by "kpi:<id>"


def examine(ws: Workspace, tasks: list[Task], measurements: list[Measurement], now: datetime,
            rules: RuleBook | None = None, facts: bool = False) -> Examination:
    """Stages 2 and 3 as of ``now`` with ``rules`` (default: the workspace's): each KPI's
    status, the mappings and the findings; with ``facts``, also the values the signal rules
    saw, so `rules explain` shows the very facts a pass judges on."""
    cfg = ws.config
    book = rules or ws.rules
    statuses = kpi_statuses(cfg.kpis, measurements, now, cfg.status)
    mapper, assessor = Mapper(book.mappings), Assessor(book.signals, cfg.judgement)
    try:
        mappings = mapper.map(tasks, now)
        findings = assessor.assess(tasks, mappings, cfg.kpis, now, statuses, measurements)
        seen = (assessor.facts(tasks, mappings, cfg.kpis, now, statuses, measurements)
                if facts else ({}, {}))
    finally:
        mapper.close()
        assessor.close()
    return Examination(statuses, mappings, findings, *seen)


def judge(ws: Workspace, tasks: list[Task], measurements: list[Measurement],
          first_seen: dict[tuple[str, str, str], datetime], now: datetime
          ) -> tuple[dict[str, KpiStatus], list[Mapping], list[Finding]]:
    """Stages 2 and 3 as of ``now``: each KPI's status, the mappings, and the findings with
    their reminders (``first_seen`` by (signal, subject, rule id) of the open ones)."""
    seen = examine(ws, tasks, measurements, now)
    rules = {r.id: r for r in ws.rules.signals}
    return seen.statuses, seen.mappings, [with_reminder(f, rules.get(f.rule_id), first_seen, now)
                                          for f in seen.findings]


def with_reminder(finding: Finding, rule: Rule | None,
                  first_seen: dict[tuple[str, str, str], datetime], now: datetime) -> Finding:
    """A finding still open after its rule's ``sla_days`` says so, once per period: the
    changed text re-raises it (the comment is edited) without a write on every run."""
    sla = rule.params.get("sla_days") if rule is not None else None
    since = first_seen.get(_finding_key(finding.signal, finding.subject, finding.rule_id))
    if not sla or since is None or (now - since).days < sla:
        return finding
    periods = (now - since).days // int(sla)
    note = f" Reminder {periods}: first raised on {since.date().isoformat()}, still open."
    return replace(finding, reason=finding.reason + note)


def _counts(result: RunResult) -> dict[str, int]:
    applied = result.applied
    return {
        "tasks": len(result.tasks), "mappings": len(result.mappings),
        "findings": len(result.findings), "planned": len(result.ops),
        "applied": applied.applied if applied else 0,
        "failed": applied.failed if applied else 0,
        "deferred": len(applied.deferred) if applied else 0,
        "held": len(result.held), "interrupted": len(result.interrupted),
    }
