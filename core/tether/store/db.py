"""The state store: cursors, task snapshots, mappings, KPI history, findings, ledger and runs.

Built on SQLAlchemy Core with portable types only, so a SQLite file (the default) and a
shared PostgreSQL database behave the same. Every public method is its own transaction,
committed before it returns: a crash never loses a call that already returned.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from tether.errors import TetherError
from tether.model import Mapping, Measurement
from tether.store import lock, tables
from tether.store.findings import FindingState
from tether.store.hooks import HookState
from tether.store.judged import JudgedState
from tether.store.ledger import WriteLedger
from tether.store.migrate import migrate
from tether.store.records import RunRecord
from tether.store.snapshots import TaskState
from tether.store.work import WorkState


class Store(TaskState, WriteLedger, JudgedState, FindingState, HookState, WorkState):
    """Tether's durable state at one SQLAlchemy URL; use as a context manager or close()."""

    def __init__(self, url: str):
        """Open (creating if needed) the store; TetherError if a newer Tether wrote it."""
        try:
            parsed = make_url(url)
        except sa.exc.ArgumentError:  # its message would echo the URL, password included
            raise TetherError("state store URL is not a valid SQLAlchemy URL") from None
        self.url = parsed.render_as_string(hide_password=True)  # as given, for messages
        if parsed.drivername == "postgresql":
            # The postgres extra's driver; SQLAlchemy's default would be psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        options: dict[str, Any] = {}
        self._sqlite_file: Path | None = None  # run locks: see tether.store.lock
        # Run locks within this process only, by scope: see tether.store.lock.
        self._local_locks: dict[str, threading.Lock] | None = (
            None if parsed.get_backend_name() in ("sqlite", "postgresql") else {})
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database or ""
            if db in ("", ":memory:"):
                # One shared connection, else every checkout would see a fresh empty database.
                options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
                self._local_locks = {}
            elif db.startswith("file:"):  # a URI filename (?uri=true); its query is the URL's
                if parsed.query.get("mode") == "memory":
                    self._local_locks = {}
                else:
                    self._sqlite_file = Path(db[len("file:"):])
            else:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
                self._sqlite_file = Path(db)
        try:
            self._engine = sa.create_engine(parsed, **options)
        except (sa.exc.SQLAlchemyError, ImportError) as exc:  # unknown dialect, missing driver
            hint = "; install it with pip install 'tether[postgres]'" if (
                isinstance(exc, ImportError) and parsed.get_backend_name() == "postgresql") else ""
            raise TetherError(f"cannot open state store at {self.url}: {exc}{hint}") from None
        try:
            self._migrate()
        except sa.exc.SQLAlchemyError as exc:
            self._engine.dispose()
            # Only the driver's own message: SQLAlchemy's wrapper can echo parameters.
            raise TetherError(f"cannot open state store at {self.url}: "
                              f"{getattr(exc, 'orig', None) or exc}") from None
        except BaseException:
            self._engine.dispose()
            raise

    def _migrate(self) -> None:
        # PostgreSQL serialises migrations with a lock of its own (see migrate); SQLite
        # would let two processes opening a new file both create its tables.
        with (lock.file_lock(self._sqlite_file, "migrate") if self._sqlite_file
              else nullcontext()), self._engine.begin() as conn:
            migrate(conn, self.url)

    def run_lock(self, scope: str, wait: bool = True,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_wait: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """Hold the run lock ``scope`` for a ``with`` block: one writer per scope, across
        processes and hosts sharing the store. Taken by another, it waits (``on_wait`` is
        told who has it first) or, with wait=False, raises TetherError naming the holder."""
        return lock.run_lock(self._engine, self._sqlite_file, self._local_locks, scope, wait,
                             self.url, clock, on_wait)

    def close(self) -> None:
        """Release every connection; the store must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- sync cursors ---------------------------------------------------------------------

    def get_cursor(self, source: str) -> str | None:
        """The cursor last saved for ``source``, or None if it never synced."""
        with self._engine.begin() as conn:
            return conn.execute(
                sa.select(tables.cursors.c.cursor).where(tables.cursors.c.source == source)).scalar()

    def set_cursor(self, source: str, cursor: str | None) -> None:
        """Save ``cursor`` for ``source``; None forgets it (the next pull is a full one)."""
        with self._engine.begin() as conn:
            if cursor is None:
                conn.execute(tables.cursors.delete().where(tables.cursors.c.source == source))
            else:
                tables.upsert(conn, tables.cursors, [{"source": source, "cursor": cursor}])

    def load_memory(self, source: str) -> dict[str, Any]:
        """What ``source``'s connector kept after its last pass (empty if nothing)."""
        with self._engine.begin() as conn:
            data = conn.execute(sa.select(tables.memory.c.data)
                                .where(tables.memory.c.source == source)).scalar()
        return json.loads(data) if data else {}

    def save_memory(self, source: str, data: dict[str, Any]) -> None:
        """Replace what ``source``'s connector keeps between passes."""
        with self._engine.begin() as conn:
            if not data:
                conn.execute(tables.memory.delete().where(tables.memory.c.source == source))
            else:
                tables.upsert(conn, tables.memory,
                              [{"source": source, "data": json.dumps(data, sort_keys=True)}])

    # -- matches kept between passes ------------------------------------------------------

    def load_matches(self, stage: str, book: str, refs: Iterable[str] | None = None
                     ) -> dict[str, tuple[str, tuple[str, ...]]]:
        """By task ref (every one, or ``refs``), (facts hash, matched rule ids) of ``stage``
        as last saved, if it was saved for the rule set ``book``; else nothing."""
        m, b = tables.matches.c, tables.match_books.c
        with self._engine.begin() as conn:
            if conn.execute(sa.select(b.book).where(b.stage == stage)).scalar() != book:
                return {}
            rows = tables.rows_where(conn, sa.select(m.task, m.hash, m.rules).where(m.stage == stage),
                               m.task, refs)
            return {task: (digest, tuple(json.loads(rules))) for task, digest, rules in rows}

    def save_matches(self, stage: str, book: str,
                     changed: dict[str, tuple[str, tuple[str, ...]]], keep: set[str] | None,
                     drop: Iterable[str] = (), reset: bool = True) -> None:
        """Record ``stage``'s matches under the rule set ``book``: ``changed`` rows replace
        theirs; rows of tasks neither changed nor in ``keep`` (None: every task but those
        in ``drop``) are forgotten. Matches kept for another rule set are dropped first, or,
        unless ``reset``, nothing is saved (units saving side by side must not race to)."""
        m, b = tables.matches.c, tables.match_books.c
        with self._engine.begin() as conn:
            if conn.execute(sa.select(b.book).where(b.stage == stage)).scalar() != book:
                if not reset:
                    return
                conn.execute(tables.matches.delete().where(m.stage == stage))
                conn.execute(tables.match_books.delete().where(b.stage == stage))
                conn.execute(tables.match_books.insert().values(stage=stage, book=book))
            if keep is None:
                stored, keep = set(drop), set()
            else:
                stored = set(conn.execute(sa.select(m.task).where(m.stage == stage)).scalars())
            gone = sorted(stored - keep - set(changed))
            replaced = sorted(set(changed))
            for i in range(0, max(len(gone), len(replaced)), 500):
                conn.execute(tables.matches.delete().where(
                    m.stage == stage, m.task.in_(gone[i:i + 500] + replaced[i:i + 500])))
            if changed:
                conn.execute(tables.matches.insert(), [
                    {"stage": stage, "task": task, "hash": digest, "rules": json.dumps(list(ids))}
                    for task, (digest, ids) in changed.items()])

    # -- mappings -------------------------------------------------------------------------

    def save_mappings(self, mappings: list[Mapping], tasks: set[str] | None = None) -> None:
        """Replace the stored mappings with ``mappings`` (those of the latest run); with
        ``tasks``, only those tasks' mappings are replaced (the others did not change)."""
        rows = [{"task": x.task, "kpi": x.kpi, "rule_id": x.rule_id, "weight": x.weight,
                 "reason": x.reason} for x in mappings if tasks is None or x.task in tasks]
        with self._engine.begin() as conn:
            tables.replace_rows(conn, tables.mappings, tables.mappings.c.task, tasks, rows)

    def load_mappings(self) -> list[Mapping]:
        """The latest run's mappings, sorted by (task, kpi, rule_id)."""
        t = tables.mappings.c
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(t.task, t.kpi, t.rule_id, t.weight, t.reason)
                                .order_by(t.task, t.kpi, t.rule_id, t.id))
            return [Mapping(*row) for row in rows]

    # -- KPI measurements -----------------------------------------------------------------

    def add_measurements(self, ms: list[Measurement]) -> int:
        """Add measurements not yet stored; a (kpi, at) already present keeps its first
        value, so re-importing is idempotent. Returns how many were new."""
        t = tables.measurements.c
        fresh: dict[tuple[str, datetime], float] = {}
        for m in ms:
            fresh.setdefault((m.kpi, tables.utc(m.at)), m.value)
        if not fresh:
            return 0
        with self._engine.begin() as conn:
            kpis = sorted({kpi for kpi, _ in fresh})
            for kpi, at in conn.execute(sa.select(t.kpi, t.at).where(t.kpi.in_(kpis))):
                fresh.pop((kpi, tables.read_set(at)), None)
            if fresh:
                conn.execute(tables.measurements.insert(), [
                    {"kpi": kpi, "at": at, "value": value} for (kpi, at), value in fresh.items()])
        return len(fresh)

    def measurements(self, kpi: str | None = None) -> list[Measurement]:
        """Stored measurements, of one KPI or all, sorted by (kpi, at)."""
        t = tables.measurements.c
        query = sa.select(t.kpi, t.at, t.value).order_by(t.kpi, t.at)
        if kpi is not None:
            query = query.where(t.kpi == kpi)
        with self._engine.begin() as conn:
            return [Measurement(k, tables.read_set(at), v) for k, at, v in conn.execute(query)]

    def prune(self, before: datetime) -> dict[str, int]:
        """Forget runs, finished ledger entries and cleared findings older than ``before``;
        open findings, pending writes, KPI history and what Tether wrote stay."""
        cut = tables.utc(before)
        with self._engine.begin() as conn:
            return {
                "runs": conn.execute(tables.runs.delete().where(
                    tables.runs.c.started < cut, tables.runs.c.status != "running")).rowcount,
                "work": conn.execute(tables.work.delete().where(
                    tables.work.c.queued < cut)).rowcount,
                "ledger": conn.execute(tables.ledger.delete().where(
                    tables.ledger.c.started < cut, tables.ledger.c.status != "pending")).rowcount,
                "findings": conn.execute(tables.findings.delete().where(
                    tables.findings.c.cleared_at.is_not(None), tables.findings.c.cleared_at < cut)).rowcount,
            }

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, mode: str, packs: dict[str, str], now: datetime) -> int:
        """Record a run as running with its rule pack versions; returns its id."""
        with self._engine.begin() as conn:
            pk = conn.execute(tables.runs.insert().values(
                mode=mode, started=tables.utc(now), status="running",
                packs=json.dumps(packs, sort_keys=True), counts="{}")).inserted_primary_key
            assert pk is not None  # a single-row INSERT always has its primary key
            return pk[0]

    def finish_run(self, run_id: int, status: str, counts: dict[str, int], now: datetime) -> None:
        """Close a run as "ok", "partial" (a source could not be read) or "failed", with its
        counts."""
        if status not in ("ok", "partial", "failed"):
            raise ValueError(f"run status must be 'ok', 'partial' or 'failed', not {status!r}")
        with self._engine.begin() as conn:
            if not conn.execute(tables.runs.update().where(tables.runs.c.id == run_id).values(
                    status=status, finished=tables.utc(now),
                    counts=json.dumps(counts, sort_keys=True))).rowcount:
                raise ValueError(f"no run {run_id}")

    def run_status(self, run_id: int) -> str | None:
        """The status of run ``run_id`` ("running", "ok", ...), None if it is not kept."""
        with self._engine.begin() as conn:
            return conn.execute(sa.select(tables.runs.c.status)
                                .where(tables.runs.c.id == run_id)).scalar()

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest ``limit`` runs, newest first."""
        t = tables.runs.c
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(tables.runs).order_by(t.started.desc(), t.id.desc())
                                .limit(limit)).all()
        return [RunRecord(id=r.id, mode=r.mode, started=tables.read_set(r.started),
                          finished=tables.read(r.finished), status=r.status,
                          packs=json.loads(r.packs), counts=json.loads(r.counts)) for r in rows]

