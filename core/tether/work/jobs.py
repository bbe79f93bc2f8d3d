"""Each work unit as a job: what it is given and hands on is JSON (tether.work.wire), and
the store's ``work`` table makes it idempotent. A unit delivered again after it finished
hands on what it handed on then; one whose pass has ended does nothing."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.errors import SourceError, TetherError
from tether.model import WriteOp
from tether.pipeline.plan import PassPlan
from tether.store.db import Store
from tether.work import units
from tether.work.shards import Shard
from tether.work.wire import dump, load
from tether.workspace import Workspace


@dataclass
class Job:
    """What every unit of one pass shares: where the workspace is, and the pass."""

    config: str  # the tether.yaml every worker loads (the same path on each machine)
    run_id: int
    started: datetime  # the pass's moment: every unit judges as of it
    full: bool = False
    kpis: bool = True
    suspect: list[str] = field(default_factory=list)  # refs whose write a crash cut short
    overrides: dict[str, dict[str, Any]] | None = None  # source options (the demo's sandboxes)


class PassEnded(TetherError):
    """The pass that queued this unit ended (it finished, or its coordinator died and a later
    pass took over): the unit does nothing."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _unit(store: Store, job: Job, unit: str, work: Callable[[], Any],
          counts: Callable[[Any], dict[str, Any]]) -> Any:
    """Run ``work`` once for ``unit`` of ``job``'s pass, recording it in the store. It holds
    the unit's run lock ("shard:<shard>", or "assess"): a copy of the unit delivered while it
    runs waits, then finds it done."""
    shard = unit.partition(" ")[2]
    with store.run_lock(f"shard:{shard}" if shard else unit):
        if store.run_status(job.run_id) != "running":
            raise PassEnded(f"pass {job.run_id} has ended; {unit} was not run")
        done = store.work_begin(job.run_id, unit, worker_name(), datetime.now(UTC))
        if done is not None:
            return done
        try:
            out = dump(work())
        except Exception as exc:
            store.work_end(job.run_id, unit, datetime.now(UTC), {},
                           error=f"{type(exc).__name__}: {exc}")
            raise
        store.work_end(job.run_id, unit, datetime.now(UTC), counts(out), out)
        return out


def pull(ws: Workspace, store: Store, job: Job, shard: str, last_try: bool = True) -> Any:
    """Pull ``shard``; a tracker that cannot be read raises SourceError (to be tried again)
    unless this is the ``last_try``, when the shard is reported unread."""
    def work() -> units.Pulled:
        try:
            return units.pull_shard(ws, store, Shard.parse(shard),
                                    None if job.full else job.started)
        except SourceError as exc:
            if not last_try:
                raise
            return units.Pulled(unread=str(exc))

    return _unit(store, job, f"pull {shard}", work, lambda out: {
        "items": out["pulled"], "changed": len(out["changed"]), "mapped": out["mapped"],
        "requests": sum(out["requests"].values()), **({"unread": 1} if out["unread"] else {})})


class NotPulled(TetherError):
    """The assessment was asked for before every shard's pull finished."""


def pulls(store: Store, job: Job, shards: list[str]) -> dict[str, Any]:
    """What each shard's pull handed on, as the store recorded it (not as a message said:
    a unit delivered twice reports twice); NotPulled if one has not finished."""
    got = {name: store.work_result(job.run_id, f"pull {name}") for name in shards}
    missing = sorted(name for name, p in got.items() if p is None)
    if missing:
        raise NotPulled(f"pass {job.run_id}: {', '.join(missing)} not pulled yet")
    return got


def assess(ws: Workspace, store: Store, job: Job, shards: list[str]) -> Any:
    """Judge the portfolio once every one of ``shards`` is pulled; each shard's share of the
    work is kept in the store for its plan unit, not handed on."""
    def work() -> units.Assessed:
        got = {name: load(units.Pulled, p) for name, p in pulls(store, job, shards).items()}
        assessed, work = units.assess(ws, store, got, job.started, job.full, job.kpis)
        store.work_give(job.run_id, {f"plan {name}": dump(w) for name, w in work.items()},
                        datetime.now(UTC))
        return assessed

    return _unit(store, job, "assess", work, lambda out: {"items": out["items"],
                                                          "judged": out["judged"]})


def plan(ws: Workspace, store: Store, job: Job, shard: str) -> Any:
    """Plan ``shard`` (its part of the assessment is in the store); hands on its ops and
    held ops, and keeps the whole plan in the store for its write unit."""
    given = store.work_given(job.run_id, f"plan {shard}")
    if given is None:
        raise TetherError(f"pass {job.run_id} has no assessment for {shard}; nothing was "
                          "planned")
    out = _unit(store, job, f"plan {shard}", lambda: units.plan_shard(
        ws, store, Shard.parse(shard), load(units.ShardWork, given), set(job.suspect)),
        lambda out: {"items": len(given["refs"]), "ops": len(out["ops"]),
                     "requests": sum(out["requests"].values())})
    return {key: value for key, value in out.items() if key != "plan"}


def write(ws: Workspace, store: Store, job: Job, shard: str, chosen: list[Any],
          deferred: list[Any]) -> Any:
    """Apply the ops of ``shard``'s plan the pass's write budget ``chosen``."""
    planned = store.work_result(job.run_id, f"plan {shard}")
    if planned is None:
        raise TetherError(f"pass {job.run_id} has no plan for {shard}; nothing was written")
    return _unit(store, job, f"write {shard}", lambda: units.write_shard(
        ws, store, job.run_id, Shard.parse(shard), load(PassPlan, planned["plan"]),
        [load(WriteOp, op) for op in chosen], [load(WriteOp, op) for op in deferred],
        lambda: datetime.now(UTC)), lambda out: {
            "written": sum(r["ok"] for r in out["results"]),
            "failed": sum(not r["ok"] for r in out["results"]),
            "requests": sum(out["requests"].values())})
