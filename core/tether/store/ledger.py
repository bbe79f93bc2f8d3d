"""The write ledger: each write recorded before it is sent and settled after, so a crashed run
is recovered exactly; and what Tether knows it wrote on each item."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tether.model import OpKind, OpResult, WriteOp, Written
from tether.store import records, tables
from tether.store.records import LedgerEntry


class WriteLedger:
    """The ledger half of the Store (it shares the Store's engine)."""

    _engine: sa.engine.Engine

    # -- write ledger ---------------------------------------------------------------------

    def ledger_begin(self, run_id: int, op: WriteOp, now: datetime) -> int:
        """Record ``op`` as pending before it is sent; returns the entry id."""
        with self._engine.begin() as conn:
            pk = conn.execute(tables.ledger.insert().values(
                run_id=run_id, source=op.source, key=op.key, kind=tables.text(op.kind),
                value=op.value, comment_id=op.comment_id, status="pending",
                started=tables.utc(now))).inserted_primary_key
            assert pk is not None  # a single-row INSERT always has its primary key
            return pk[0]

    def ledger_end(self, entry_id: int, result: OpResult, now: datetime) -> None:
        """Mark the entry done or failed with the connector's error and comment id."""
        t = tables.ledger.c
        values: dict[str, Any] = {"status": "done" if result.ok else "failed",
                                  "error": result.error, "finished": tables.utc(now)}
        if result.comment_id is not None:  # keep the id known at begin when none came back
            values["comment_id"] = result.comment_id
        with self._engine.begin() as conn:
            if not conn.execute(tables.ledger.update().where(t.id == entry_id).values(**values)).rowcount:
                raise ValueError(f"no ledger entry {entry_id}")

    def ledger_note(self, run_id: int, op: WriteOp, status: str, note: str,
                    now: datetime) -> None:
        """Record an op Tether chose not to send (``held``: a person's override) with why."""
        with self._engine.begin() as conn:
            conn.execute(tables.ledger.insert().values(
                run_id=run_id, source=op.source, key=op.key, kind=tables.text(op.kind),
                value=op.value, comment_id=op.comment_id, status=status, error=note,
                started=tables.utc(now), finished=tables.utc(now)))

    def ledger_interrupt(self, now: datetime, refs: set[str] | None = None
                         ) -> list[LedgerEntry]:
        """Close every pending entry (its run died mid-write), or those on ``refs``, as
        "interrupted"; return them."""
        pending = [e for e in self.ledger_pending()
                   if refs is None or f"{e.source}:{e.key}" in refs]
        if pending:
            with self._engine.begin() as conn:
                conn.execute(tables.ledger.update().where(tables.ledger.c.id.in_([e.id for e in pending]))
                             .values(status="interrupted", finished=tables.utc(now),
                                     error="the run stopped before the tracker answered"))
        return pending

    def ledger_unsettled_comments(self) -> set[str]:
        """Refs whose latest comment write failed or was cut short: the comment may exist
        unmarked (written, then the marking failed), so the next read must look harder."""
        t = tables.ledger.c
        kinds = (tables.text(OpKind.CREATE_COMMENT), tables.text(OpKind.UPDATE_COMMENT))
        latest = (sa.select(t.source, t.key, sa.func.max(t.id).label("last"))
                  .where(t.kind.in_(kinds), t.status != "held")
                  .group_by(t.source, t.key).subquery())
        query = (sa.select(t.source, t.key).join(latest, t.id == latest.c.last)
                 .where(t.status.in_(("failed", "interrupted"))))
        with self._engine.begin() as conn:
            return {f"{source}:{key}" for source, key in conn.execute(query)}

    def ledger_of_run(self, run_id: int, refs: set[str]) -> list[LedgerEntry]:
        """The entries ``run_id`` made on ``refs``, oldest first."""
        t = tables.ledger.c
        with self._engine.begin() as conn:
            return [e for e in (records.ledger_entry(row) for row in conn.execute(
                sa.select(tables.ledger).where(t.run_id == run_id).order_by(t.id)))
                if f"{e.source}:{e.key}" in refs]

    def ledger_pending(self) -> list[LedgerEntry]:
        """Entries begun but never ended (a crash mid-write), oldest first."""
        t = tables.ledger.c
        with self._engine.begin() as conn:
            return [records.ledger_entry(row) for row in conn.execute(
                sa.select(tables.ledger).where(t.status == "pending").order_by(t.id))]

    def ledger_for(self, task_ref: str) -> list[LedgerEntry]:
        """Every write to the task ``<source>:<key>``, oldest first."""
        source, _, key = task_ref.partition(":")
        t = tables.ledger.c
        with self._engine.begin() as conn:
            return [records.ledger_entry(row) for row in conn.execute(
                sa.select(tables.ledger).where(t.source == source, t.key == key).order_by(t.id))]

    # -- what Tether wrote, per item ------------------------------------------------------

    def load_written(self, refs: Iterable[str] | None = None) -> dict[str, Written]:
        """By task ref: what Tether knows it wrote there (on every item, or on ``refs``)."""
        w = tables.written.c
        query = sa.select(w.task, w.data)
        with self._engine.begin() as conn:
            rows = tables.rows_where(conn, query, w.task, refs)
        return {task: records.written_from(json.loads(data)) for task, data in rows}

    def save_written(self, changed: dict[str, Written]) -> None:
        """Upsert the given items' records (only pass those that changed)."""
        if not changed:
            return
        with self._engine.begin() as conn:  # in key order: concurrent writers lock alike
            tables.upsert(conn, tables.written, [
                {"task": task, "data": json.dumps(records.written_to(record), sort_keys=True)}
                for task, record in sorted(changed.items())])
