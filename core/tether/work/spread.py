"""A sync spread over shards: the coordinator's side. It holds the store's run lock "sync" (one
pass at a time), hands the units to an Executor (this process, or Celery workers), applies the
pass's write budget across every shard's plan, and settles the pass as a single-process sync
does; the trackers end up exactly as that sync leaves them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from tether.kpi.status import kpi_statuses
from tether.model import OpResult, WriteOp
from tether.pipeline.apply import ApplyReport, settle_interrupted
from tether.pipeline.incremental import Recall
from tether.pipeline.kept import settle
from tether.pipeline.plan import within_budget
from tether.pipeline.result import RunResult, Unread
from tether.store.db import Store
from tether.store.records import unread_since
from tether.work import jobs, units
from tether.work.shards import shards_of
from tether.work.wire import dump, load
from tether.workspace import Workspace


class Executor(Protocol):
    """Runs the units of one pass and returns what each handed on, by shard name."""

    def pull_and_assess(self, job: jobs.Job, shards: list[str]) -> tuple[dict[str, Any], Any]:
        """Pull every shard (in parallel where it can), then assess once all are in."""

    def plan(self, job: jobs.Job, shards: list[str]) -> dict[str, Any]:
        """Plan each shard (the assessment left its work in the store)."""

    def write(self, job: jobs.Job, ops: dict[str, tuple[list[Any], list[Any]]]
              ) -> dict[str, Any]:
        """Write each shard's (chosen, deferred) ops."""


class InProcess:
    """Every unit in this process, one after another: the units' logic without a broker."""

    def __init__(self, ws: Workspace, store: Store):
        self.ws, self.store = ws, store

    def pull_and_assess(self, job: jobs.Job, shards: list[str]) -> tuple[dict[str, Any], Any]:
        for name in shards:
            jobs.pull(self.ws, self.store, job, name)
        return jobs.pulls(self.store, job, shards), jobs.assess(self.ws, self.store, job, shards)

    def plan(self, job: jobs.Job, shards: list[str]) -> dict[str, Any]:
        return {name: jobs.plan(self.ws, self.store, job, name) for name in shards}

    def write(self, job: jobs.Job, ops: dict[str, tuple[list[Any], list[Any]]]
              ) -> dict[str, Any]:
        return {name: jobs.write(self.ws, self.store, job, name, chosen, deferred)
                for name, (chosen, deferred) in ops.items()}


def spread_pass(ws: Workspace, store: Store, result: RunResult, executor: Executor,
                clock: Callable[[], datetime], full: bool, sources: set[str] | None,
                kpis: bool) -> None:
    """Stages 1 to 5 of a sync as units on ``executor``, filling ``result`` as run_pass does
    (the caller holds the run lock "sync")."""
    result.interrupted = settle_interrupted(store, result.started)
    shards = [s.name for s in shards_of(ws, sources)]
    job = jobs.Job(str(ws.config.file), result.run_id, result.started, full,
                   sources is None or kpis,
                   sorted(f"{e.source}:{e.key}" for e in result.interrupted), ws.overrides)
    if not full:  # the pulls keep their items' matches only under these very rules
        Recall("map", ws.rules.mappings).save(store, everything=False)
    store.work_queued(result.run_id, [f"pull {s}" for s in shards] + ["assess"], clock())
    pulls, assessed_json = executor.pull_and_assess(job, shards)
    assessed = load(units.Assessed, assessed_json)
    del assessed_json
    pulled = {name: load(units.Pulled, p) for name, p in pulls.items()}
    before = [run for run in store.runs(limit=500) if run.id != result.run_id]
    requests: Counter[tuple[str, str]] = Counter()
    for name, p in pulled.items():
        source = name.split("@", 1)[0]
        if p.unread:
            result.unread[name] = Unread(p.unread, unread_since(before, name) or result.started)
        else:
            result.pulled[source] = result.pulled.get(source, 0) + p.pulled
        requests.update({(source, k): n for k, n in p.requests.items()})
    _verdicts(ws, store, result, assessed)
    result.rematched["map"] = (result.rematched.get("map", 0)
                               + sum(p.mapped for p in pulled.values()))

    store.work_queued(result.run_id, [f"plan {s}" for s in assessed.work], clock())
    plans = executor.plan(job, list(assessed.work))
    for name, p in plans.items():
        requests.update({(name.split("@", 1)[0], k): n for k, n in p["requests"].items()})
    wrote = _write(ws, store, result, executor, job, assessed, plans, clock)
    for name, w in wrote.items():
        requests.update({(name.split("@", 1)[0], k): n for k, n in w.requests.items()})
    for (source, answer), n in sorted(requests.items()):
        result.requests.setdefault(source, {})[answer] = n

    unfinished = {ref for w in wrote.values() for ref in w.unfinished}
    settle(store, set(assessed.waiting) | unfinished, result.held, True,
           None if assessed.scope is None else set(assessed.scope))
    store.prune(result.started - timedelta(days=ws.config.retention_days))
    store.forget_results(result.run_id)
    result.units = store.work(result.run_id)


def _write(ws: Workspace, store: Store, result: RunResult, executor: Executor, job: jobs.Job,
           assessed: units.Assessed, plans: dict[str, Any], clock: Callable[[], datetime]
           ) -> dict[str, units.Wrote]:
    """Rank every shard's ops under the pass's write budget as one process ranks them, then
    have each shard with items write its share; what each write unit did, by shard."""
    owner: dict[int, str] = {}  # each op's shard, by id
    ops = []
    for name, p in plans.items():
        for raw in p.pop("ops"):
            op = load(WriteOp, raw)
            owner[id(op)] = name
            ops.append(op)
    ops.sort(key=lambda op: (op.source, op.key))  # a single pass's order: by item
    held = [load(WriteOp, op) for p in plans.values() for op in p.pop("held")]
    wb = ws.config.writeback
    chosen, deferred = within_budget(ops, wb.budget, wb.source_budget)
    result.ops, result.deferred, result.held = ops, deferred, held + assessed.held
    result.not_annotated = sum(p["not_annotated"] for p in plans.values())
    result.budget = wb.budget
    writes: dict[str, tuple[list[Any], list[Any]]] = {
        name: ([], []) for name, n in assessed.work.items() if n}
    for i, group in enumerate((chosen, deferred)):
        for op in group:
            writes[owner[id(op)]][i].append(dump(op))
    store.work_queued(result.run_id, [f"write {s}" for s in writes], clock())
    wrote = {name: load(units.Wrote, w) for name, w in executor.write(job, writes).items()}
    results: list[OpResult] = [r for w in wrote.values() for r in w.results]
    result.applied = ApplyReport(results, deferred)
    result.notices = list(dict.fromkeys(n for w in wrote.values() for n in w.notices))
    return wrote


def _verdicts(ws: Workspace, store: Store, result: RunResult, a: units.Assessed) -> None:
    """The assessment's verdicts into the pass's result, as a single-process pass lists them."""
    cfg = ws.config
    result.kpi_statuses = kpi_statuses(cfg.kpis, store.measurements(), result.started, cfg.status)
    result.items, result.judged, result.listed = a.items, a.judged, a.listed
    result.mappings, result.findings, result.totals = a.mappings, a.findings, a.totals
    result.new_findings, result.cleared = set(a.new), a.cleared
    result.rematched = a.rematched
    result.tasks = store.load_tasks(refs=a.shown)
