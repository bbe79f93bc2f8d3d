"""Judging only what changed: stages 2 and 3 for the items a pull changed (and those whose
ages grew), on the portfolio the store keeps (see tether.pipeline.kept).

A pass uses what the last one kept when that pass finished, on the same UTC day and with
the same digest. It maps and judges the changed items; when one of them changed what others
read (closed, re-mapped, re-sized, new, gone, another entity key or link), it also judges
the items around it (tether.pipeline.places) and counts the KPIs again from the kept
shares, as it does when a KPI window moment passed (that item's shares are taken again).
The items whose share of a KPI's value at risk moved, whose reminder fell due, that a plan
left unwritten, and the KPIs' anchor items are listed too. Exact: the
facts each rule sees are the ones a full judgement gives it; tests/test_incremental.py
checks it against judging every item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from tether.kpi.status import KpiStatus, kpi_statuses
from tether.model import Finding, Mapping, OpKind, Task, WriteOp
from tether.pipeline.assess import Assessor, Recalled, assess_pass, at_risk, with_value_at_risk
from tether.pipeline.kept import (
    STATUS_FIELDS,
    VERSION,
    aging,
    inputs,
    minute,
    portfolio_row,
    record_full,
    status_digest,
    ticks,
    weights_of,
    window_moments,
)
from tether.pipeline.map import Mapper
from tether.pipeline.places import Places
from tether.pipeline.plan import anchor_refs
from tether.pipeline.render import Renderer
from tether.pipeline.verdicts import Totals, Verdicts, open_findings, reminded
from tether.rules.signals import JOIN_FIELDS, own_links, served
from tether.store.db import Store
from tether.store.judged import JudgedRow
from tether.store.tables import utc
from tether.workspace import Workspace


@dataclass
class Delta:
    """A judgement of the changed items only, on the stored portfolio: what it lists covers
    ``scope`` (those items, the items whose share of a KPI's value at risk moved, the KPIs'
    anchor items) and every KPI."""

    statuses: dict[str, KpiStatus]
    mappings: list[Mapping]  # of the items in scope
    findings: list[Finding]  # of the items in scope and every KPI, with value at risk
    before: list[Finding]  # the same as the last pass saw them
    changed: set[str]  # the items judged again or gone, and those plans judged since a sync
    scope: set[str]
    pending: set[str]  # items the last pass left without their verdict: planned again
    tasks: list[Task]  # the items judged again
    judged: int  # how many items were judged again (or are gone)
    at: datetime  # the moment the last pass judged
    held: list[WriteOp]  # held back on other items, as the last pass planned
    items: int
    rematched: dict[str, int]
    totals: Totals
    risky: bool  # comments show each finding's value at risk (a template does)


def judge_changes(ws: Workspace, store: Store, changed: set[str], now: datetime,
                  records: bool = True) -> Delta | None:
    """Stages 2 and 3 for the items in ``changed`` (and those whose ages grew) on the
    portfolio the store keeps, and for the items around those that changed what others read;
    None when the whole portfolio may have moved, so everything must be judged. A pass that
    ``records`` its verdicts also lists the items plans judged since the last one did."""
    record = store.load_judgement()
    if (record is None or record.get("v") != VERSION or not record.get("settled")
            or ws.config.writeback.since is not None
            or (records and record["unsaved"] is True)):
        return None
    unsaved = set(record["unsaved"]) if records else set()
    at, now = datetime.fromisoformat(record["at"]), utc(now)
    cfg = ws.config
    measurements = store.measurements()
    statuses = kpi_statuses(cfg.kpis, measurements, now, cfg.status)
    if (not at <= now < at + timedelta(days=1)
            or inputs(ws, measurements, statuses, now) != record["inputs"]):
        return None
    # A window moment that passed changes its KPI's counts (and only them): its item's
    # shares are taken again and the KPIs counted again; no item's own facts move.
    passed = [ref for x, ref in record["moments"] if at.timestamp() < x <= now.timestamp()]
    dirty = set(changed)
    if now > at:
        # Whole seconds, one early: a tick at 10:00:00.5 after a pass at 10:00:00.7 the day
        # before counts; a few items judged again needlessly cost nothing.
        dirty |= store.ticked(minute(at) - 1, minute(now))
    rows = store.load_judged(dirty)
    tasks = [t for t in store.load_tasks(refs=dirty) if t.source in ws.connectors]
    gone = rows.keys() - {t.ref for t in tasks}
    recall = Recalled.load(ws, store, full=False, refs=dirty)
    stored = recall.map.seen
    if not rows.keys() <= stored.keys():
        return None
    mapper = Mapper(ws.rules.mappings)
    try:
        fresh = mapper.map(tasks, now, recall=recall.map)
    finally:
        mapper.close()
    keys, weights = cfg.judgement.entities, weights_of(fresh)
    moved = gone | {t.ref for t in tasks if t.ref not in rows
                    or portfolio_row(t, weights.get(t.ref, []), keys) != rows[t.ref].row}
    by_id = {r.id: r for r in ws.rules.mappings}
    place = Places(ws, store, tasks, fresh, moved, recall.map, by_id)
    near = place.near()
    loaded = {t.ref: t for t in place.tasks(near | {t.ref for t in tasks})}
    rows.update(store.load_judged(loaded.keys() - rows.keys()))
    if not loaded.keys() - moved <= rows.keys():
        return None  # an item the last judgement did not keep: judge everything
    kpis, serves = {k.id: k for k in cfg.kpis}, served(place.mappings(set(loaded)))
    joined = place.joins(near, statuses)
    links = {}
    for ref, task in loaded.items():
        joins = joined.get(ref) if ref in near else rows[ref].joins
        links[ref] = {**own_links(task, serves.get(ref, set()), kpis, statuses), **(joins or {})}
    kpi_before = [Finding(**f) for f in record["kpi_findings"]]
    kpi_after = kpi_before
    recall.drift.recall(store, loaded.keys())  # the items around: matched before, likely alike
    assessor = Assessor(ws.rules.signals, cfg.judgement)
    try:
        found = assessor.task_findings(dict(sorted(loaded.items())), links, now, recall.drift)
        if moved:
            place.save(now)
        place.reshare({ref for ref in passed if ref} - moved, now)
        if (moved or passed
                or status_digest(statuses, STATUS_FIELDS) != record["kpi_inputs"]):
            kpi_after = assessor.kpi_findings(store.kpi_tallies(), list(cfg.kpis), now,
                                              statuses, measurements)
    finally:
        assessor.close()
    judged = loaded.keys() | gone
    old_maps = place.mappings(judged, kept=True)
    new_maps = place.mappings(set(loaded))
    served_before, served_after = served(old_maps), served(new_maps)
    flagged_before: dict[str, int] = record["flagged"]
    flagged_after = dict(flagged_before)
    for kid in (k for r in judged if rows.get(r) and rows[r].findings
                for k in served_before.get(r, ())):
        flagged_after[kid] -= 1
    for kid in (k for r in {f.subject for f in found} for k in served_after.get(r, ())):
        flagged_after[kid] = flagged_after.get(kid, 0) + 1
    flagged_after = {k: n for k, n in sorted(flagged_after.items()) if n}
    # A reminder that falls due changes a finding's text.
    risk_before, risk_after = record["at_risk"], at_risk(statuses)
    risky = Renderer(cfg.writeback.templates).shows_value_at_risk()
    # Each KPI's value at risk is shared by its flagged items: when their number changes,
    # every flagged item's share moves. Comments show no share (unless a template does), so
    # the others are not listed for it: a task finding's value at risk is its share as of
    # the pass that last listed it (the report works every share out afresh).
    revalued = {k for k in flagged_before.keys() | flagged_after.keys()
                if (flagged_before.get(k), risk_before.get(k, 0.0))
                != (flagged_after.get(k), risk_after.get(k, 0.0))} if risky else set()
    anchors = {r for f in kpi_before + kpi_after for r in anchor_refs(f.subject, kpis)}
    others = (store.flagged_on(revalued) | anchors | _reminders_due(ws, store, at, now)
              | set(record["pending"]) | unsaved) - judged
    kept = store.load_judged(others)
    recall.map.recall(store, kept.keys())
    kept_maps = place.mappings(set(kept), kept=True)
    served_kept = served(kept_maps)
    old_found = [f for r in sorted(judged) if r in rows for f in rows[r].findings]
    kept_found = [f for r in sorted(kept) for f in kept[r].findings]
    for stage in (recall.map, recall.drift):
        stage.forget(gone)
        stage.save(store, everything=False)
    ages = aging(ws)
    store.save_judged({ref: JudgedRow(
        portfolio_row(t, weights.get(ref, []), keys) if ref in dirty else rows[ref].row,
        *ticks(t, ages, now),
        {n: v for n, v in links[ref].items() if n in JOIN_FIELDS and v} or None,
        [f for f in found if f.subject == ref]) for ref, t in loaded.items()},
        everything=False, gone=gone)
    totals = Totals(**record["totals"])
    totals.count(old_maps, old_found + kpi_before, sign=-1)
    totals.count(new_maps, found + kpi_after)
    record.update(at=now.isoformat(), settled=False,  # settle() says so after the plan
                  items=record["items"] - len(gone) + len(loaded.keys() - rows.keys()),
                  kpi_findings=[asdict(f) for f in kpi_after], flagged=flagged_after,
                  at_risk=risk_after, kpi_inputs=status_digest(statuses, STATUS_FIELDS),
                  totals=asdict(totals),
                  moments=sorted({(x, ref) for x, ref in record["moments"]
                                  if x > now.timestamp() and ref not in moved}
                                 | set(window_moments(ws, [t for t in tasks if t.ref in moved],
                                                      fresh, measurements, now))))
    store.save_judgement(record)
    mappings = sorted(new_maps + kept_maps, key=lambda m: _order(m.task))
    return Delta(statuses, mappings,
                 with_value_at_risk(sorted(found + kept_found, key=lambda f: _order(f.subject))
                                    + kpi_after, {**served_kept, **served_after}, risk_after,
                                    flagged_after),
                 with_value_at_risk(sorted(old_found + kept_found, key=lambda f: _order(f.subject))
                                    + kpi_before, {**served_kept, **served_before},
                                    risk_before, flagged_before),
                 judged | unsaved, judged | unsaved | kept.keys(), set(record["pending"]),
                 list(loaded.values()), len(judged), at,
                 [WriteOp(**{**op, "kind": OpKind(op["kind"])}) for op in record["held"]],
                 record["items"], {"map": recall.map.rematched, "drift": recall.drift.rematched},
                 totals, risky)


def _order(ref: str) -> tuple[str, ...]:
    """A full pass's item order: by source, then key."""
    return tuple(ref.split(":", 1))


def _reminders_due(ws: Workspace, store: Store, at: datetime, now: datetime) -> set[str]:
    """The items with an open finding whose rule's reminder (``sla_days``) fell due in
    (``at``, ``now``]: its text changes then."""
    sla = {r.id: int(r.params["sla_days"]) for r in ws.rules.signals if r.params.get("sla_days")}
    if not sla:
        return set()
    return {f.subject for f in store.open_findings(rule_ids=sla)
            if not f.subject.startswith("kpi:")
            and (at - f.first_seen).days // sla[f.rule_id] != (now - f.first_seen).days // sla[f.rule_id]}


@dataclass
class Judged:
    """Stages 2 and 3 of a pass, and which items the plan must look at again."""

    verdicts: Verdicts
    tasks: list[Task]  # the items to plan: every item, or those whose verdict may differ
    shown: list[Task]  # the items the pass's output names: those, and the flagged ones listed
    held: list[WriteOp]  # held back on items not planned again, as the last pass held them
    items: int  # items in the portfolio
    judged: int  # of those, the items judged again


def judge_pass(ws: Workspace, store: Store, changed: set[str], now: datetime,
               full: bool = False, records: bool = True) -> Judged:
    """Judge only the items in ``changed`` (snapshots the pull changed) and those whose ages
    grew when the rest of the portfolio cannot have moved; else, or with ``full``, every
    item. Keeps what it found for the next pass. A pass that ``records`` its verdicts (a
    sync) also lists those of the items plans judged since the last one."""
    delta = None if full else judge_changes(ws, store, changed, now, records)
    if delta is None:
        tasks = [t for t in store.load_tasks() if t.source in ws.connectors]
        verdicts, seen = assess_pass(ws, store, tasks, now, full)
        record_full(ws, store, tasks, seen, store.measurements(), now)
        return Judged(verdicts, tasks, tasks, [], len(tasks), len(tasks))
    kpis = {k.id: k for k in ws.config.kpis}
    open_before = open_findings(store, delta.scope | {f"kpi:{k}" for k in kpis})
    findings = reminded(ws, delta.findings, open_before, now)
    moved = _moved(reminded(ws, delta.before, open_before, delta.at), findings, delta.risky)
    # Planned again: what the pull changed (a person may have touched Tether's annotation)
    # and what the last pass left unwritten, and the items whose verdict moved. An item
    # judged again only because its age grew or a neighbour changed, whose verdict held,
    # shows it already: reading its annotation would cost a request for nothing.
    again = changed | delta.pending | {s for s in moved if not s.startswith("kpi:")} | {
        ref for s in moved for ref in anchor_refs(s, kpis)}
    judged = {t.ref: t for t in delta.tasks}
    tasks = sorted([t for t in delta.tasks if t.ref in again]
                   + store.load_tasks(refs=again - judged.keys()),
                   key=lambda t: _order(t.ref))  # planned in the order a full pass plans
    listed = again | judged.keys()
    flagged = {f.subject for f in findings if not f.subject.startswith("kpi:")} - listed
    verdicts = Verdicts.of(delta.statuses, delta.mappings, findings, open_before,
                           delta.rematched, delta.totals, delta.changed, delta.scope)
    shown = sorted(tasks + [t for t in delta.tasks if t.ref not in again]
                   + store.load_tasks(refs=flagged), key=lambda t: _order(t.ref))
    return Judged(verdicts, tasks, shown, [op for op in delta.held if op.task not in again],
                  delta.items, delta.judged)


def _moved(before: list[Finding], after: list[Finding], risky: bool) -> set[str]:
    """Subjects whose findings (text, reminders; value at risk when ``risky``: comments
    show it) differ."""
    def grouped(findings: list[Finding]) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in findings:
            shown = f if risky or f.subject.startswith("kpi:") else replace(f, value_at_risk=0)
            out.setdefault(f.subject, []).append(shown)
        return out

    old, new = grouped(before), grouped(after)
    return {s for s in old.keys() | new.keys() if old.get(s) != new.get(s)}
