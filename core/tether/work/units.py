"""The work units of a pass spread over workers, as plain functions on a workspace and its
store: pull one shard, assess the portfolio, plan one shard, write one shard. They hand on
only values tether.work.wire turns into JSON; tether.work.jobs makes them idempotent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tether.kpi.sources import store_measurements
from tether.model import Finding, Mapping, OpResult, WriteOp
from tether.pipeline import memory
from tether.pipeline.apply import apply_ops
from tether.pipeline.delta import judge_pass
from tether.pipeline.incremental import Recall
from tether.pipeline.map import Mapper
from tether.pipeline.plan import PassPlan, anchor_refs, plan_pass
from tether.pipeline.pull import save_pull
from tether.pipeline.verdicts import Totals
from tether.store.db import Store
from tether.work.shards import Shard, narrowed, shard_refs, shards_of
from tether.workspace import Workspace

FindingKey = tuple[str, str, str]


@dataclass
class Pulled:
    """What pulling one shard brought."""

    pulled: int = 0
    changed: list[str] = field(default_factory=list)  # refs whose snapshot changed
    unread: str | None = None  # why the tracker could not be read: the shard waits
    requests: dict[str, int] = field(default_factory=dict)
    mapped: int = 0  # changed items the mapping rules matched here, not in the assessment


def pull_shard(ws: Workspace, store: Store, shard: Shard, now: datetime | None = None
               ) -> Pulled:
    """Pull one shard from its cursor into the store (its own cursor and memory), then, as
    of the pass's moment ``now``, match its changed items' mapping rules into the store's
    match cache, where the assessment finds them matched. SourceError propagates: the
    caller retries it, then reports the shard unread."""
    connector = narrowed(ws, shard).connectors[shard.source]
    connector.memory = store.load_memory(shard.name)
    got = connector.pull(store.get_cursor(shard.name))
    changed: set[str] = set()
    n = save_pull(connector, got, store, ws.config.writeback.label_prefix, changed, shard.scope)
    store.save_memory(shard.name, connector.memory)
    mapped = premap(ws, store, changed, now) if now is not None and changed else 0
    return Pulled(n, sorted(changed), None, dict(connector.requests), mapped)


def premap(ws: Workspace, store: Store, refs: set[str], now: datetime) -> int:
    """Match the mapping rules of the items ``refs`` as of ``now`` into the match cache, if
    it holds the matches of these very rules (the coordinator starts each pass so: a rule
    change empties it once, not once per unit); how many the engine matched."""
    recall = Recall.load(store, "map", ws.rules.mappings, refs=refs)
    mapper = Mapper(ws.rules.mappings)
    try:
        mapper.matches(store.load_tasks(refs=refs), now, recall)
    finally:
        mapper.close()
    recall.save(store, everything=False, reset=False)
    return recall.rematched


@dataclass
class ShardWork:
    """What one shard's plan needs from the assessment."""

    refs: list[str] = field(default_factory=list)  # its items to plan, in plan order
    mappings: list[Mapping] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # on them, and KPIs they anchor
    pulled: bool = False  # read even with no item: it keeps its notes current


@dataclass
class Assessed:
    """The portfolio's verdicts, as a pass reports them, and each shard's share of the plan."""

    items: int
    judged: int
    listed: bool  # every item's mappings and findings are listed (else: judged ones)
    mappings: list[Mapping]
    findings: list[Finding]
    new: list[FindingKey]
    cleared: list[FindingKey]
    totals: Totals
    rematched: dict[str, int]
    shown: list[str]  # the items the pass's output names
    held: list[WriteOp]  # held on items not planned again
    waiting: list[str]  # items of shards that could not be read
    scope: list[str] | None  # the items listed, for settle (None: every one)
    work: dict[str, int]  # the shards to plan: how many items each plans


def assess(ws: Workspace, store: Store, pulls: dict[str, Pulled], started: datetime,
           full: bool, kpis: bool) -> tuple[Assessed, dict[str, ShardWork]]:
    """Stages 2 and 3 over the whole portfolio the store keeps, once the shards are pulled:
    read the KPI sources (when ``kpis``), judge what changed, record the verdicts, and split
    the items to plan by shard (each shard's work, by shard name)."""
    changed = {ref for p in pulls.values() for ref in p.changed}
    for name, c in ws.connectors.items():
        if c.shards():  # a scope taken out of the config: its items leave with it
            store.drop_scopes(name, set(c.shards()), changed)
    if kpis:
        store_measurements(ws.config, ws.plugins, store)
    judged = judge_pass(ws, store, changed, started, full, True)
    verdicts = judged.verdicts
    store.save_mappings(verdicts.mappings, verdicts.changed)
    store.record_findings(verdicts.findings, started, None if verdicts.scope is None else
                          verdicts.scope | {f"kpi:{k.id}" for k in ws.config.kpis})
    unread = {Shard.parse(name) for name, p in pulls.items() if p.unread}
    groups = shard_refs(ws, store, [t.ref for t in judged.tasks])
    waiting = sorted(ref for s in unread for ref in groups.pop(s, []))
    maps: dict[str, list[Mapping]] = {}
    for m in verdicts.mappings:
        maps.setdefault(m.task, []).append(m)
    kpis_by_id = {k.id: k for k in ws.config.kpis}
    found: dict[str, list[Finding]] = {}
    order = {f: i for i, f in reversed(list(enumerate(verdicts.findings)))}
    for f in verdicts.findings:
        for ref in [f.subject, *anchor_refs(f.subject, kpis_by_id)]:
            found.setdefault(ref, []).append(f)
    work = {}
    for shard in shards_of(ws):
        if shard in unread:
            continue
        refs = groups.get(shard, [])
        work[shard.name] = ShardWork(
            refs, [m for r in refs for m in maps.get(r, [])],
            sorted({f for r in refs for f in found.get(r, [])}, key=order.__getitem__),
            shard.name in pulls)
    return Assessed(judged.items, judged.judged, verdicts.scope is None, verdicts.mappings,
                    verdicts.findings, sorted(verdicts.new), verdicts.cleared, verdicts.totals,
                    verdicts.rematched, [t.ref for t in judged.shown], judged.held, waiting,
                    None if verdicts.scope is None else sorted(verdicts.scope),
                    {name: len(w.refs) for name, w in work.items()}), work


@dataclass
class Planned:
    """One shard's plan: what the coordinator needs for the write budget, and what its write
    unit needs to remember the outcome."""

    ops: list[WriteOp]
    held: list[WriteOp]
    not_annotated: int
    requests: dict[str, int]  # sent reading what the items show
    plan: PassPlan


def plan_shard(ws: Workspace, store: Store, shard: Shard, work: ShardWork,
               suspect: set[str]) -> Planned:
    """Stage 4 for one shard: read what its items show, diff with what they should show."""
    one = narrowed(ws, shard)
    connector = one.connectors[shard.source]
    connector.memory = store.load_memory(shard.name)
    tasks = store.load_tasks(refs=work.refs) if work.refs else []
    planned = plan_pass(one, store, tasks, work.mappings, work.findings, suspect,
                        [shard.source] if work.pulled else [])
    store.save_memory(shard.name, connector.memory)
    return Planned(planned.ops, planned.held, planned.not_annotated, dict(connector.requests),
                   planned)


@dataclass
class Wrote:
    """What one shard's write unit did."""

    results: list[OpResult]
    unfinished: list[str]  # items that do not show their verdict yet
    notices: list[str]
    requests: dict[str, int]


def write_shard(ws: Workspace, store: Store, run_id: int, shard: Shard, planned: PassPlan,
                chosen: list[WriteOp], deferred: list[WriteOp],
                clock: Callable[[], datetime]) -> Wrote:
    """Stage 5 for one shard: apply the ``chosen`` ops of its plan, each in the ledger, then
    remember what was written. If an earlier try of this unit began writing and died (its
    worker was killed), nothing is sent again: its ledger rows are closed as interrupted and
    its items left for the next pass, which recovers them as `sync` does after a crash."""
    one = narrowed(ws, shard)
    connector = one.connectors[shard.source]
    connector.memory = store.load_memory(shard.name)
    mine = set(planned.desired)
    earlier = store.ledger_of_run(run_id, mine)
    if earlier:
        store.ledger_interrupt(clock(), mine)
        touched = {f"{e.source}:{e.key}" for e in earlier}
        store.save_written(memory.maybe_written(earlier, store.load_written(touched)))
        return Wrote([], sorted({op.task for op in chosen + deferred}), [],
                     dict(connector.requests))
    report = apply_ops(chosen, one.connectors, store, run_id, len(chosen), None, clock)
    for op in memory.new_holds(planned.held, planned.written):
        store.ledger_note(run_id, op, "held", op.reason, clock())
    store.save_written(memory.remember(planned.written, planned.desired, planned.current,
                                       planned.held, report.results, deferred))
    store.patch_labels(memory.label_changes(report.results))
    store.save_memory(shard.name, connector.memory)
    unfinished = {r.op.task for r in report.results if not r.ok} | {o.task for o in deferred}
    return Wrote(report.results, sorted(unfinished), connector.notices(),
                 dict(connector.requests))
