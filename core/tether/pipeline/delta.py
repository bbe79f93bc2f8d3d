"""Judging only what changed (stages 2 and 3 for a few items, on the portfolio the store keeps).

After every full judgement the store keeps, per item, the hash of what other items and KPIs
read from it (its KPIs and weights, state, size, dates, links, entity keys), the second of
the day its ages grow, its guardrail and conflict facts and its findings; and for the
portfolio, a digest of the rules, config, KPI measurements and statuses, the KPI findings
and the moments within a day at which a KPI's trailing window gains or loses an item.

A later pass on the same UTC day whose digest is the same, and where no window moment
passed, maps and judges only the items whose snapshot changed or whose ages grew, with
their stored join facts, as long as none of them changed what others read from it (then, or
when an item is new or gone, everything is judged again). Exact: the facts each rule sees
are the ones a full judgement would give it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tether.kpi.status import KpiStatus, kpi_statuses
from tether.model import Finding, Mapping, Measurement, OpKind, Task, WriteOp
from tether.pipeline.assess import (
    Assessor,
    Recalled,
    Verdicts,
    assess_pass,
    open_findings,
    reminded,
    with_value_at_risk,
)
from tether.pipeline.incremental import fingerprint
from tether.pipeline.map import Mapper
from tether.pipeline.plan import anchor_refs
from tether.rules.entities import EntityKeys
from tether.rules.signals import own_links, served
from tether.rules.window import closed_at
from tether.store.db import Store
from tether.store.judged import JudgedRow
from tether.store.tables import utc
from tether.workspace import Workspace

VERSION = 1
STATUS_FIELDS = ("status", "lifecycle", "value", "attainment", "forecast_attainment",
                 "value_at_risk", "in_band", "ahead", "trend", "reason")


def inputs(ws: Workspace, measurements: list[Measurement], statuses: dict[str, KpiStatus],
           now: datetime) -> str:
    """Digest of everything besides the items that a judgement depends on, as of ``now``."""
    return fingerprint({
        "v": VERSION, "day": utc(now).date().isoformat(), "config": asdict(ws.config),
        "rules": [repr(r) for r in (*ws.rules.mappings, *ws.rules.signals)],
        "markup": {n: repr(c.capabilities) for n, c in ws.connectors.items()},
        "measurements": [(m.kpi, m.at, m.value) for m in measurements],
        "statuses": {k: [getattr(s, f) for f in STATUS_FIELDS] for k, s in statuses.items()}})


def portfolio_row(task: Task, weights: Iterable[tuple[str, float]], keys: EntityKeys) -> str:
    """Hash of what other items and the KPIs read from ``task`` (its KPIs and weights)."""
    return fingerprint([sorted(weights), task.status_category, task.estimate, task.created,
                  closed_at(task), sorted(link.target for link in task.links),
                  sorted(f"{k[0]}|{k[1]}|{v}" for k, v in keys.of(task).items())])


def _second(moment: datetime) -> int:
    """The second of the UTC day of ``moment``: whole days since it grow by one then."""
    moment = utc(moment)
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _tick(moment: datetime | None) -> int | None:
    return None if moment is None else _second(moment)


def _weights(mappings: Iterable[Mapping]) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for m in mappings:
        out.setdefault(m.task, []).append((m.kpi, m.weight))
    return out


def _moments(ws: Workspace, tasks: list[Task], mappings: list[Mapping],
             measurements: list[Measurement], now: datetime) -> list[float]:
    """Moments in the next day at which a KPI's trailing window gains or loses an item or a
    measurement (window_facts): a pass after one of them judges everything."""
    by_ref = {t.ref: t for t in tasks}
    span = timedelta(days=ws.config.judgement.window_days)
    found: set[datetime] = set()
    kpis = {k.id: k for k in ws.config.kpis}
    for m in mappings:
        task, kpi = by_ref.get(m.task), kpis.get(m.kpi)
        if task is None or kpi is None:
            continue
        lag = timedelta(days=kpi.lag_days)
        closed = closed_at(task)
        found.update(x for x in (task.created and task.created + lag, closed and closed + lag,
                                 closed and closed + lag + span) if x is not None)
    found.update(x for m in measurements for x in (m.at, m.at + span))
    start, end = utc(now), utc(now) + timedelta(days=1)
    return sorted(x.timestamp() for x in map(utc, found) if start < x <= end)


def record_full(ws: Workspace, store: Store, tasks: list[Task], mappings: list[Mapping],
                findings: list[Finding], joins: dict[str, dict[str, Any]],
                measurements: list[Measurement], statuses: dict[str, KpiStatus],
                now: datetime) -> None:
    """Keep what a full judgement of ``tasks`` found (``findings`` as the rules raised them),
    for the next pass to judge only what changes; unsettled until ``settle``."""
    keys, weights = ws.config.judgement.entities, _weights(mappings)
    mine: dict[str, list[Finding]] = {}
    for f in findings:
        mine.setdefault(f.subject, []).append(replace(f, value_at_risk=0.0))
    store.save_judged({t.ref: JudgedRow(portfolio_row(t, weights.get(t.ref, []), keys),
                                        _tick(t.created), _tick(t.updated or t.created),
                                        joins.get(t.ref), mine.get(t.ref, []))
                       for t in tasks}, everything=True)
    store.save_judgement({
        "v": VERSION, "at": utc(now).isoformat(), "settled": False, "items": len(tasks),
        "inputs": inputs(ws, measurements, statuses, now),
        "moments": _moments(ws, tasks, mappings, measurements, now),
        "kpi_findings": [asdict(f) for f in findings if f.subject.startswith("kpi:")],
        "held": []})


def settle(store: Store, settled: bool, held: list[WriteOp]) -> None:
    """After planning (and applying): whether every item now shows its verdict, so the next
    pass may judge only what changes; and the writes held back for a person."""
    record = store.load_judgement()
    if record is not None:
        record.update(settled=settled, held=[asdict(op) for op in held])
        store.save_judgement(record)


@dataclass
class Delta:
    """A judgement of the changed items only, on the stored portfolio."""

    statuses: dict[str, KpiStatus]
    mappings: list[Mapping]  # of every item
    findings: list[Finding]  # of every item and KPI, with value at risk, no reminder
    before: list[Finding]  # the same as the last pass saw them
    changed: set[str]  # the items judged again
    tasks: list[Task]  # those items
    at: datetime  # the moment the last pass judged
    held: list[WriteOp]  # held back on other items, as the last pass planned
    items: int
    rematched: dict[str, int]


def judge_changes(ws: Workspace, store: Store, changed: set[str], now: datetime
                  ) -> Delta | None:
    """Stages 2 and 3 for the items in ``changed`` (and those whose ages grew) on the
    portfolio the store keeps; None when the rest of the portfolio may have moved, so
    everything must be judged."""
    record = store.load_judgement()
    if (record is None or record.get("v") != VERSION or not record.get("settled")
            or ws.config.writeback.since is not None):
        return None
    at, now = datetime.fromisoformat(record["at"]), utc(now)
    cfg = ws.config
    measurements = store.measurements()
    statuses = kpi_statuses(cfg.kpis, measurements, now, cfg.status)
    if (not at <= now < at + timedelta(days=1)
            or any(at.timestamp() < x <= now.timestamp() for x in record["moments"])
            or inputs(ws, measurements, statuses, now) != record["inputs"]):
        return None
    dirty = set(changed)
    if now > at:
        # Whole seconds, one early: a tick at 10:00:00.5 after a pass at 10:00:00.7 the day
        # before counts; a few items judged again needlessly cost nothing.
        dirty |= store.ticked(_second(at) - 1, _second(now))
    rows = store.load_judged(dirty)
    tasks = store.load_tasks(refs=dirty)
    if len(tasks) != len(dirty) or dirty - rows.keys():
        return None  # an item is new or gone: the portfolio moved
    recall = Recalled.load(ws, store, full=False)
    mapper = Mapper(ws.rules.mappings)
    try:
        fresh = mapper.map(tasks, now, recall=recall.map)
    finally:
        mapper.close()
    weights, keys = _weights(fresh), cfg.judgement.entities
    if any(portfolio_row(t, weights.get(t.ref, []), keys) != rows[t.ref].row for t in tasks):
        return None
    stored = recall.map.seen
    if not rows.keys() <= stored.keys() or record["items"] != len(stored):
        return None
    kpis, serves = {k.id: k for k in cfg.kpis}, served(fresh)
    links = {t.ref: {**own_links(t, serves.get(t.ref, set()), kpis, statuses),
                     **(rows[t.ref].joins or {})} for t in tasks}
    assessor = Assessor(ws.rules.signals, cfg.judgement)
    try:
        found = assessor.task_findings({t.ref: t for t in tasks}, links, now, recall.drift)
    finally:
        assessor.close()
    recall.map.save(store, everything=False)
    recall.drift.save(store, everything=False)
    by_id = {r.id: r for r in ws.rules.mappings}
    mappings = list(fresh)
    for ref, (_, ids) in stored.items():
        if ref not in dirty:
            mappings += [Mapping(ref, by_id[i].kpi or "", i, by_id[i].weight,
                                 by_id[i].description or f"matched rule {i}") for i in ids]
    mappings.sort(key=lambda m: tuple(m.task.split(":", 1)))
    kpi_found = [Finding(**f) for f in record["kpi_findings"]]
    old = store.judged_findings()
    new = [f for f in old if f.subject not in dirty] + found
    new.sort(key=lambda f: tuple(f.subject.split(":", 1)))
    every = served(mappings)
    store.save_judged({t.ref: replace(rows[t.ref], idle_tick=_tick(t.updated or t.created),
                                      findings=[f for f in found if f.subject == t.ref])
                       for t in tasks}, everything=False)
    record.update(at=now.isoformat(), settled=False)  # settle() says so after the plan
    store.save_judgement(record)
    return Delta(statuses, mappings, with_value_at_risk(new + kpi_found, every, statuses),
                 with_value_at_risk(old + kpi_found, every, statuses), dirty, tasks, at,
                 [WriteOp(**{**op, "kind": OpKind(op["kind"])}) for op in record["held"]],
                 len(stored), {"map": recall.map.rematched, "drift": recall.drift.rematched})


@dataclass
class Judged:
    """Stages 2 and 3 of a pass, and which items the plan must look at again."""

    verdicts: Verdicts
    tasks: list[Task]  # the items to plan: every item, or those whose verdict may differ
    shown: list[Task]  # the items the pass's output names: those, and every flagged one
    held: list[WriteOp]  # held back on items not planned again, as the last pass held them
    items: int  # items in the portfolio


def judge_pass(ws: Workspace, store: Store, changed: set[str], now: datetime,
               full: bool = False) -> Judged:
    """Judge only the items in ``changed`` (snapshots the pull changed) and those whose ages
    grew when the rest of the portfolio cannot have moved; else, or with ``full``, every
    item. Keeps what it found for the next pass."""
    delta = None if full else judge_changes(ws, store, changed, now)
    if delta is None:
        tasks = [t for t in store.load_tasks() if t.source in ws.connectors]
        verdicts, seen = assess_pass(ws, store, tasks, now, full)
        record_full(ws, store, tasks, seen.mappings, seen.findings, seen.joins,
                    store.measurements(), seen.statuses, now)
        return Judged(verdicts, tasks, tasks, [], len(tasks))
    open_before = open_findings(store)
    findings = reminded(ws, delta.findings, open_before, now)
    moved = _moved(reminded(ws, delta.before, open_before, delta.at), findings)
    kpis = {k.id: k for k in ws.config.kpis}
    again = delta.changed | {s for s in moved if not s.startswith("kpi:")} | {
        ref for s in moved for ref in anchor_refs(s, kpis)}
    tasks = delta.tasks + store.load_tasks(refs=again - delta.changed)
    flagged = {f.subject for f in findings if not f.subject.startswith("kpi:")} - again
    verdicts = Verdicts.of(delta.statuses, delta.mappings, findings, open_before,
                           delta.rematched, delta.changed)
    return Judged(verdicts, tasks, tasks + store.load_tasks(refs=flagged),
                  [op for op in delta.held if op.task not in again], delta.items)


def _moved(before: list[Finding], after: list[Finding]) -> set[str]:
    """Subjects whose findings (text, value at risk, reminders) differ."""
    def grouped(findings: list[Finding]) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in findings:
            out.setdefault(f.subject, []).append(f)
        return out

    old, new = grouped(before), grouped(after)
    return {s for s in old.keys() | new.keys() if old.get(s) != new.get(s)}
