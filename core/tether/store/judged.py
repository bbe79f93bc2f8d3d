"""What the last judgement left behind, per task and for the whole portfolio, so a later pass
can judge only the items that changed (see tether.pipeline.delta)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from tether.model import Finding
from tether.store import tables

DAY = 86400


@dataclass(frozen=True)
class JudgedRow:
    """One task as last judged: ``row`` hashes what other items and KPIs read from it; the
    ticks are the second of the UTC day its ``age_days`` and ``idle_days`` grow by one."""

    row: str
    age_tick: int | None
    idle_tick: int | None
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
            if refs is None:
                rows = list(conn.execute(query))
            else:
                chosen = sorted(refs)
                rows = [r for i in range(0, len(chosen), 500)
                        for r in conn.execute(query.where(j.task.in_(chosen[i:i + 500])))]
        return {task: JudgedRow(row, age, idle, json.loads(joins) if joins else None,
                                [Finding(**f) for f in json.loads(found)] if found else [])
                for task, row, age, idle, joins, found in rows}

    def save_judged(self, rows: dict[str, JudgedRow], everything: bool) -> None:
        """Replace the rows of ``rows``' tasks; ``everything``: drop every other row too."""
        values = [{"task": task, "row": r.row, "age_tick": r.age_tick, "idle_tick": r.idle_tick,
                   "joins": json.dumps(r.joins, sort_keys=True) if r.joins else None,
                   "findings": json.dumps([asdict(f) for f in r.findings])
                   if r.findings else None} for task, r in rows.items()]
        with self._engine.begin() as conn:
            tables.replace_rows(conn, tables.judged, tables.judged.c.task,
                                None if everything else rows, values)

    def judged_findings(self) -> list[Finding]:
        """Every task's findings as last judged, in task order."""
        j = tables.judged.c
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(j.findings).where(j.findings.is_not(None))
                                .order_by(j.task))
            return [Finding(**f) for (found,) in rows for f in json.loads(found)]

    def ticked(self, after: int, upto: int) -> set[str]:
        """Tasks whose age or idle days grew at a second of the day in (after, upto], the
        window wrapping past midnight when ``upto`` < ``after``."""
        j = tables.judged.c

        def within(col: Any) -> Any:
            if after < upto:
                return sa.and_(col > after, col <= upto)
            return sa.or_(col > after, col <= upto)

        with self._engine.begin() as conn:
            return set(conn.execute(sa.select(j.task).where(
                sa.or_(within(j.age_tick), within(j.idle_tick)))).scalars())
