"""One pass over a workspace: the stages in order (pull, map and assess, plan, and for sync
apply); each stage owns its work, this module only sequences them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tether.errors import TetherError
from tether.pipeline.apply import apply_pass, settle_interrupted
from tether.pipeline.delta import judge_pass
from tether.pipeline.kept import settle
from tether.pipeline.plan import plan_pass
from tether.pipeline.pull import pull_all
from tether.pipeline.result import RunResult, Unread
from tether.store.db import Store
from tether.store.records import unread_since
from tether.workspace import Workspace

if TYPE_CHECKING:
    from tether.work.spread import Executor


def run_pass(ws: Workspace, store: Store, mode: str,
             clock: Callable[[], datetime] = lambda: datetime.now(UTC), full: bool = False,
             sources: set[str] | None = None, wait: bool = True,
             on_wait: Callable[[str], None] | None = None, kpis: bool = False,
             executor: Executor | None = None) -> RunResult:
    """Run one pass; ``mode`` "plan" writes nothing to trackers, "sync" applies the plan.
    Only facts that changed since the last pass go to the rule engine, unless ``full``.
    With ``sources``, only those are pulled (a webhook said they changed; a name may be a
    shard's, ``source@scope``) and the KPI sources are not read (unless ``kpis``); the
    other sources' items keep their snapshots. A sync holds the store's run lock "sync"
    throughout (its judgement and writes span every source): a second one waits
    (``on_wait`` is told who holds it), or with ``wait`` False raises TetherError naming the
    holder. A sync goes to the workers when a broker is configured (tether.work), or to
    ``executor``; the trackers end up the same."""
    with (store.run_lock("sync", wait, clock, on_wait) if mode == "sync"
          else nullcontext()):
        now = clock()
        result = RunResult(store.start_run(mode, ws.rules.packs, now), mode, now,
                           packs=ws.rules.packs)
        sent = {name: Counter(c.requests) for name, c in ws.connectors.items()}
        if mode == "sync" and executor is None:
            executor = on_workers(ws)
        try:
            if executor is not None and mode == "sync":
                from tether.work.spread import spread_pass

                spread_pass(ws, store, result, executor, clock, full, sources, kpis)
            else:
                _run(ws, store, result, clock, full, sources, kpis)
        except BaseException:
            store.finish_run(result.run_id, "failed", _counts(result), clock())
            raise
        result.status = ("failed" if result.applied and result.applied.failed
                         else "partial" if result.unread else "ok")
        result.finished = clock()
        if executor is None or mode != "sync":  # else the units counted theirs
            result.requests = {name: dict(sorted((c.requests - sent[name]).items()))
                               for name, c in ws.connectors.items() if c.requests - sent[name]}
        store.finish_run(result.run_id, result.status, _counts(result), result.finished)
        return result


def on_workers(ws: Workspace) -> Executor | None:
    """The workers, when the config names a broker that is set; else None."""
    from tether.work import broker_url

    url = broker_url(ws.config)
    if url is None:
        return None
    try:
        from tether.work.queue import OnWorkers
    except ImportError:
        raise TetherError(f"${ws.config.workers.broker_env} is set, so passes go to workers, "
                          "but Celery is not installed: pip install 'tether[workers]', or "
                          f"unset {ws.config.workers.broker_env} to run passes here") from None
    return OnWorkers(ws.config, url)


def _run(ws: Workspace, store: Store, result: RunResult, clock: Callable[[], datetime],
         full: bool, sources: set[str] | None, kpis: bool) -> None:
    if result.mode == "sync":
        result.interrupted = settle_interrupted(store, result.started)
    changed: set[str] = set()
    unread: dict[str, str] = {}
    only = None if sources is None else {name.split("@", 1)[0] for name in sources}
    result.pulled = pull_all(ws, store, changed, unread, only, kpis)
    before = [run for run in store.runs(limit=500) if run.id != result.run_id]
    result.unread = {name: Unread(error, unread_since(before, name) or result.started)
                     for name, error in unread.items()}
    judged = judge_pass(ws, store, changed, result.started, full, result.mode == "sync")
    verdicts = judged.verdicts
    result.tasks, result.items = judged.shown, judged.items
    result.judged = judged.judged
    result.kpi_statuses, result.mappings = verdicts.statuses, verdicts.mappings
    result.findings, result.new_findings = verdicts.findings, verdicts.new
    result.cleared, result.rematched = verdicts.cleared, verdicts.rematched
    result.listed, result.totals = verdicts.scope is None, verdicts.totals
    # Nothing is read from or written to a source that could not be read; its items wait.
    waiting = {t.ref for t in judged.tasks if t.source in unread}
    planned = plan_pass(ws, store, [t for t in judged.tasks if t.ref not in waiting],
                        verdicts.mappings, verdicts.findings,
                        {f"{e.source}:{e.key}" for e in result.interrupted}, result.pulled)
    result.ops, result.deferred = planned.ops, planned.deferred
    result.held = planned.held + judged.held  # judged: held on items not planned again
    result.not_annotated, result.budget = planned.not_annotated, ws.config.writeback.budget
    if result.mode == "sync":
        result.applied = apply_pass(ws, store, result.run_id, planned, verdicts, result.started,
                                    clock)
        result.notices = [n for c in ws.connectors.values() for n in c.notices()]
    applied = result.applied
    settle(store, waiting | ({op.task for op in planned.ops} if applied is None
                             else applied.unfinished()), result.held, result.mode == "sync", verdicts.scope)
    for name, connector in ws.connectors.items():
        store.save_memory(name, connector.memory)


def _counts(result: RunResult) -> dict[str, int]:
    applied = result.applied
    return {
        "tasks": result.items, "mappings": sum(result.totals.links.values()),
        "findings": result.totals.findings, "planned": len(result.ops),
        "applied": applied.applied if applied else 0,
        "failed": applied.failed if applied else 0,
        "deferred": len(applied.deferred) if applied else 0,
        "held": len(result.held), "interrupted": len(result.interrupted),
        **{f"unread:{name}": 1 for name in result.unread},
    }
