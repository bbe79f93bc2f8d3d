"""What the last judgement left behind, per task and for the whole portfolio, so a later pass
can judge only the items that changed (see tether.pipeline.delta)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from tether.model import Finding
from tether.rules.tally import Share, Tally
from tether.store import tables


@dataclass(frozen=True)
class JudgedRow:
    """One task as last judged: ``row`` hashes what other items and KPIs read from it; the
    ticks say when its ``age_days`` and ``idle_days`` next reach an age a rule tests."""

    row: str
    age_tick: int | None  # the minute (since the epoch) its age next matters to a rule
    idle_tick: int | None  # the same for its idle days
    joins: dict[str, Any] | None  # its guardrail and conflict facts, when any is set
    findings: list[Finding]  # as its rules raised them (no value at risk, no reminder)


class JudgedState:
    """The judged half of the Store (it shares the Store's engine)."""

    _engine: sa.engine.Engine

    def load_judgement(self) -> dict[str, Any] | None:
        """The portfolio-wide record of the last judgement, or None."""
        with self._engine.begin() as conn:
            data = conn.execute(sa.select(tables.judgement.c.data)).scalar()
        return json.loads(data) if data else None

    def save_judgement(self, record: dict[str, Any] | None) -> None:
        """Replace the record (None forgets it: the next pass judges everything)."""
        with self._engine.begin() as conn:
            conn.execute(tables.judgement.delete())
            if record is not None:
                conn.execute(tables.judgement.insert().values(
                    id=1, data=json.dumps(record, sort_keys=True, default=str)))

    def load_judged(self, refs: set[str] | None = None) -> dict[str, JudgedRow]:
        """Rows by task ref (all, or only ``refs``)."""
        j = tables.judged.c
        query = sa.select(j.task, j.row, j.age_tick, j.idle_tick, j.joins, j.findings)
        with self._engine.begin() as conn:
            rows = tables.rows_where(conn, query, j.task, refs)
        return {task: JudgedRow(row, age, idle, json.loads(joins) if joins else None,
                                [Finding(**f) for f in json.loads(found)] if found else [])
                for task, row, age, idle, joins, found in rows}

    def save_judged(self, rows: dict[str, JudgedRow], everything: bool,
                    gone: Iterable[str] = ()) -> None:
        """Replace the rows of ``rows``' tasks and drop those of ``gone``; ``everything``:
        drop every other row too."""
        values = [{"task": task, "row": r.row, "age_tick": r.age_tick, "idle_tick": r.idle_tick,
                   "joins": json.dumps(r.joins, sort_keys=True) if r.joins else None,
                   "findings": json.dumps([asdict(f) for f in r.findings])
                   if r.findings else None} for task, r in rows.items()]
        with self._engine.begin() as conn:
            tables.replace_rows(conn, tables.judged, tables.judged.c.task,
                                None if everything else rows.keys() | set(gone), values)

    def save_places(self, keys: dict[str, set[str]] | None,
                    shares: dict[str, dict[str, Share]], refs: set[str] | None) -> None:
        """Replace the join keys (unless ``keys`` is None) and KPI shares of ``refs`` (None:
        of every task) with ``keys`` and ``shares``."""
        share_rows = [{"task": t, "kpi": kid, **share._asdict()}
                      for t, mine in shares.items() for kid, share in mine.items()]
        with self._engine.begin() as conn:
            if keys is not None:
                tables.replace_rows(conn, tables.judged_keys, tables.judged_keys.c.task, refs,
                                    [{"task": t, "key": k}
                                     for t, mine in keys.items() for k in sorted(mine)])
            tables.replace_rows(conn, tables.judged_kpis, tables.judged_kpis.c.task, refs,
                                share_rows)

    def join_keys(self, refs: set[str]) -> dict[str, set[str]]:
        """The stored join keys of ``refs`` (tasks without any are left out)."""
        k = tables.judged_keys.c
        out: dict[str, set[str]] = {}
        with self._engine.begin() as conn:
            for task, key in tables.rows_where(conn, sa.select(k.task, k.key), k.task, refs):
                out.setdefault(task, set()).add(key)
        return out

    def holders(self, keys: set[str]) -> set[str]:
        """The tasks holding any of ``keys``."""
        k = tables.judged_keys.c
        with self._engine.begin() as conn:
            return {task for (task,) in tables.rows_where(conn, sa.select(k.task), k.key, keys)}

    def kpi_tallies(self) -> dict[str, Tally]:
        """Each KPI's counts: the sums of the stored shares."""
        c = tables.judged_kpis.c
        query = sa.select(c.kpi, sa.func.count(), *(sa.func.sum(getattr(c, n)) for n in Share._fields))
        with self._engine.begin() as conn:
            return {kpi: Tally(linked, *(int(v) for v in sums))
                    for kpi, linked, *sums in conn.execute(query.group_by(c.kpi))}

    def flagged_on(self, kpis: set[str]) -> set[str]:
        """The tasks mapped to one of ``kpis`` that had findings when last judged."""
        k, j = tables.judged_kpis.c, tables.judged.c
        query = (sa.select(k.task).join_from(tables.judged_kpis, tables.judged, j.task == k.task)
                 .where(j.findings.is_not(None)))
        with self._engine.begin() as conn:
            return {task for (task,) in tables.rows_where(conn, query, k.kpi, kpis)}

    def judged_findings(self) -> list[Finding]:
        """Every task's findings as last judged, in task order."""
        j = tables.judged.c
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(j.findings).where(j.findings.is_not(None))
                                .order_by(j.task))
            return [Finding(**f) for (found,) in rows for f in json.loads(found)]

    def ticked(self, after: int, upto: int) -> set[str]:
        """Tasks whose age or idle days came to matter to a rule in the minutes (after,
        upto] (see tether.pipeline.kept.ticks)."""
        j = tables.judged.c
        with self._engine.begin() as conn:
            return set(conn.execute(sa.select(j.task).where(sa.or_(
                *(sa.and_(col > after, col <= upto) for col in (j.age_tick, j.idle_tick))
            ))).scalars())
