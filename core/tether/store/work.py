"""The work half of the Store: each unit of a pass spread over workers (tether.work), so a
unit delivered twice does its work once, and ``tether status`` can show where a pass is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tether.store import tables

STATES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class WorkRecord:
    """One unit of one pass: "pull <shard>", "assess", "plan <shard>", "write <shard>"."""

    run_id: int
    unit: str
    state: str  # one of STATES
    worker: str | None
    queued: datetime
    started: datetime | None
    finished: datetime | None
    tries: int
    counts: dict[str, Any]
    error: str | None


class WorkState:
    """Work units as workers recorded them (it shares the Store's engine)."""

    _engine: sa.engine.Engine

    def work_queued(self, run_id: int, units: list[str], now: datetime) -> None:
        """Record ``units`` of ``run_id`` as queued (a unit already recorded is left as is)."""
        t = tables.work.c
        with self._engine.begin() as conn:
            known = {u for (u,) in conn.execute(sa.select(t.unit).where(t.run_id == run_id))}
            fresh = [{"run_id": run_id, "unit": u, "state": "queued", "queued": tables.utc(now),
                      "tries": 0, "counts": "{}"} for u in units if u not in known]
            if fresh:
                conn.execute(tables.work.insert(), fresh)

    def work_begin(self, run_id: int, unit: str, worker: str, now: datetime) -> Any | None:
        """Mark the unit running (one more try) and return None; if a try already finished it,
        return what that try handed on instead, and change nothing (at-least-once delivery:
        the unit's work is done once)."""
        t = tables.work.c
        where = (t.run_id == run_id, t.unit == unit)
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(t.state, t.result).where(*where)).first()
            if row is not None and row.state == "done":
                return json.loads(row.result or "null")
            values = {"state": "running", "worker": worker[:255], "started": tables.utc(now),
                      "finished": None, "error": None}
            if row is None:
                conn.execute(tables.work.insert().values(
                    run_id=run_id, unit=unit, queued=tables.utc(now), tries=1, counts="{}",
                    **values))
            else:
                conn.execute(tables.work.update().where(*where)
                             .values(tries=t.tries + 1, **values))
        return None

    def work_end(self, run_id: int, unit: str, now: datetime, counts: dict[str, Any],
                 result: Any = None, error: str | None = None) -> None:
        """Mark the unit done with what it hands on (JSON-ready), or failed with ``error``."""
        t = tables.work.c
        with self._engine.begin() as conn:
            conn.execute(tables.work.update().where(t.run_id == run_id, t.unit == unit).values(
                state="failed" if error else "done", finished=tables.utc(now), error=error,
                counts=json.dumps(counts, sort_keys=True),
                result=None if error else json.dumps(result)))

    def work_give(self, run_id: int, given: dict[str, Any], now: datetime) -> None:
        """Record what each unit in ``given`` (JSON-ready, by unit) is to work on: more than
        a broker message should carry. A unit not recorded yet is recorded as queued."""
        t = tables.work.c
        with self._engine.begin() as conn:
            known = {u for (u,) in conn.execute(sa.select(t.unit).where(t.run_id == run_id))}
            for unit, value in given.items():
                text = json.dumps(value)
                if unit in known:
                    conn.execute(tables.work.update().where(
                        t.run_id == run_id, t.unit == unit).values(given=text))
                else:
                    conn.execute(tables.work.insert().values(
                        run_id=run_id, unit=unit, state="queued", queued=tables.utc(now),
                        tries=0, counts="{}", given=text))

    def work_given(self, run_id: int, unit: str) -> Any | None:
        """What ``work_give`` recorded for the unit (None: nothing)."""
        t = tables.work.c
        with self._engine.begin() as conn:
            text = conn.execute(sa.select(t.given).where(
                t.run_id == run_id, t.unit == unit)).scalar()
        return None if text is None else json.loads(text)

    def work_result(self, run_id: int, unit: str) -> Any | None:
        """What a finished unit handed on (None if it has not finished)."""
        t = tables.work.c
        with self._engine.begin() as conn:
            text = conn.execute(sa.select(t.result).where(
                t.run_id == run_id, t.unit == unit, t.state == "done")).scalar()
        return None if text is None else json.loads(text)

    def work(self, run_id: int | None = None) -> list[WorkRecord]:
        """The units of ``run_id`` (else of every pass kept), by run then unit."""
        t = tables.work.c
        query = sa.select(t.run_id, t.unit, t.state, t.worker, t.queued, t.started, t.finished,
                          t.tries, t.counts, t.error).order_by(t.run_id, t.unit)
        if run_id is not None:
            query = query.where(t.run_id == run_id)
        with self._engine.begin() as conn:
            return [WorkRecord(r.run_id, r.unit, r.state, r.worker, tables.read_set(r.queued),
                               r.started and tables.read_set(r.started),
                               r.finished and tables.read_set(r.finished), r.tries,
                               json.loads(r.counts), r.error) for r in conn.execute(query)]

    def forget_results(self, run_id: int) -> None:
        """Drop what the units of a finished pass were given and handed on (plans can be
        large); their records stay for ``tether status``."""
        with self._engine.begin() as conn:
            conn.execute(tables.work.update().where(tables.work.c.run_id == run_id)
                         .values(result=None, given=None))
