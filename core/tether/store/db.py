"""The state store: cursors, task snapshots, mappings, KPI history, findings, ledger and runs.

Built on SQLAlchemy Core with portable types only, so a SQLite file (the default) and a
shared PostgreSQL database behave the same. Every public method is its own transaction,
committed before it returns: a crash never loses a call that already returned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from tether.codec import task_from_dict, task_to_dict
from tether.errors import TetherError
from tether.model import Finding, Mapping, Measurement, OpKind, OpResult, Task, WriteOp, Written

SCHEMA_VERSION = 2

_meta = sa.MetaData()
_Name = sa.String(255)
_When = sa.DateTime(timezone=True)

_schema = sa.Table("schema_version", _meta, sa.Column("version", sa.Integer, nullable=False))
_cursors = sa.Table(
    "cursors", _meta,
    sa.Column("source", _Name, primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),
)
_tasks = sa.Table(
    "tasks", _meta,
    sa.Column("source", _Name, primary_key=True),
    sa.Column("key", _Name, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
_mappings = sa.Table(
    "mappings", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(512), nullable=False),
    sa.Column("kpi", _Name, nullable=False),
    sa.Column("rule_id", _Name, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)
_measurements = sa.Table(
    "measurements", _meta,
    sa.Column("kpi", _Name, nullable=False),
    sa.Column("at", _When, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.UniqueConstraint("kpi", "at", name="uq_measurement"),
)
_findings = sa.Table(
    "findings", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signal", _Name, nullable=False),
    sa.Column("subject", _Name, nullable=False),
    sa.Column("rule_id", _Name, nullable=False),
    sa.Column("severity", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("value_at_risk", sa.Float, nullable=False),
    sa.Column("first_seen", _When, nullable=False),
    sa.Column("last_seen", _When, nullable=False),
    sa.Column("cleared_at", _When, nullable=True),
    sa.Index("ix_findings_subject", "subject"),
)
_ledger = sa.Table(
    "ledger", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("source", _Name, nullable=False),
    sa.Column("key", _Name, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("comment_id", _Name, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started", _When, nullable=False),
    sa.Column("finished", _When, nullable=True),
    sa.Index("ix_ledger_task", "source", "key"),
)
_written = sa.Table(
    "written", _meta,
    sa.Column("task", sa.String(512), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)
_runs = sa.Table(
    "runs", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("started", _When, nullable=False),
    sa.Column("finished", _When, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("packs", sa.Text, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class FindingRecord:
    """One episode of a finding: open while ``cleared_at`` is None."""

    signal: str
    subject: str
    rule_id: str
    severity: str
    reason: str
    value_at_risk: float
    first_seen: datetime
    last_seen: datetime
    cleared_at: datetime | None


@dataclass(frozen=True)
class FindingChanges:
    """How the current findings differ from the open ones recorded before."""

    new: list[Finding]
    ongoing: list[Finding]
    cleared: list[FindingRecord]


@dataclass(frozen=True)
class LedgerEntry:
    """One write Tether began on a tracker, and how it ended (``finished`` None if never)."""

    id: int
    run_id: int
    source: str
    key: str
    kind: str
    value: str
    comment_id: str | None
    status: str  # "pending" | "done" | "failed" | "interrupted" | "held"
    error: str | None
    started: datetime
    finished: datetime | None


@dataclass(frozen=True)
class RunRecord:
    """One run of Tether: its mode, rule pack versions and what it counted."""

    id: int
    mode: str
    started: datetime
    finished: datetime | None
    status: str  # "running" | "ok" | "failed"
    packs: dict[str, str]
    counts: dict[str, int]


def _utc(dt: datetime) -> datetime:
    """Aware UTC; naive input is taken as UTC, as codec.parse_datetime does."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _read(dt: datetime | str | None) -> datetime | None:
    # SQLite hands DateTime back naive (it drops the zone); everything was written as UTC.
    if dt is None:
        return None
    return _utc(datetime.fromisoformat(dt) if isinstance(dt, str) else dt)


def _key(f: Finding | FindingRecord) -> tuple[str, str, str]:
    return (f.signal, f.subject, f.rule_id)


def _record(row: Any) -> FindingRecord:
    return FindingRecord(
        signal=row.signal, subject=row.subject, rule_id=row.rule_id, severity=row.severity,
        reason=row.reason, value_at_risk=row.value_at_risk, first_seen=_read(row.first_seen),
        last_seen=_read(row.last_seen), cleared_at=_read(row.cleared_at),
    )


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=row.id, run_id=row.run_id, source=row.source, key=row.key, kind=row.kind,
        value=row.value, comment_id=row.comment_id, status=row.status, error=row.error,
        started=_read(row.started), finished=_read(row.finished),
    )


class Store:
    """Tether's durable state at one SQLAlchemy URL; use as a context manager or close()."""

    def __init__(self, url: str):
        """Open (creating if needed) the store; TetherError if a newer Tether wrote it."""
        try:
            parsed = make_url(url)
        except sa.exc.ArgumentError:  # its message would echo the URL, password included
            raise TetherError("state store URL is not a valid SQLAlchemy URL") from None
        self.url = parsed.render_as_string(hide_password=True)
        options: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database or ""
            if db in ("", ":memory:"):
                # One shared connection, else every checkout would see a fresh empty database.
                options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
            elif not db.startswith("file:"):
                Path(db).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._engine = sa.create_engine(parsed, **options)
        except (sa.exc.SQLAlchemyError, ImportError) as exc:  # unknown dialect, missing driver
            raise TetherError(f"cannot open state store at {self.url}: {exc}") from None
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
        with self._engine.begin() as conn:
            # Check the version before creating anything, so a newer store is left untouched.
            stored = None
            if sa.inspect(conn).has_table("schema_version"):
                stored = conn.execute(sa.select(sa.func.max(_schema.c.version))).scalar()
                if stored is not None and stored > SCHEMA_VERSION:
                    raise TetherError(
                        f"state store at {self.url} was written by a newer Tether "
                        f"(schema {stored}); upgrade tether")
            # Version 2 only added the ``written`` table, which create_all makes.
            _meta.create_all(conn)
            if stored != SCHEMA_VERSION:
                conn.execute(_schema.delete())
                conn.execute(_schema.insert().values(version=SCHEMA_VERSION))

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
                sa.select(_cursors.c.cursor).where(_cursors.c.source == source)).scalar()

    def set_cursor(self, source: str, cursor: str | None) -> None:
        """Save ``cursor`` for ``source``; None forgets it (the next pull is a full one)."""
        with self._engine.begin() as conn:
            conn.execute(_cursors.delete().where(_cursors.c.source == source))
            if cursor is not None:
                conn.execute(_cursors.insert().values(source=source, cursor=cursor))

    # -- task snapshots -------------------------------------------------------------------

    def save_tasks(self, source: str, tasks: list[Task], complete: bool) -> int:
        """Upsert snapshots (``raw`` is not kept); complete=True also drops the source's
        other tasks. Returns rows inserted, updated or deleted; unchanged tasks cost none."""
        rows: dict[str, tuple[str, str]] = {}
        for task in tasks:
            if task.source != source:
                raise ValueError(f"task {task.ref} is not from source {source!r}")
            data = json.dumps(task_to_dict(task), sort_keys=True, default=str)
            rows[task.key] = (data, hashlib.sha256(data.encode()).hexdigest())
        changed = 0
        with self._engine.begin() as conn:
            old = dict(conn.execute(
                sa.select(_tasks.c.key, _tasks.c.hash).where(_tasks.c.source == source)).all())
            for key, (data, digest) in rows.items():
                if key not in old:
                    conn.execute(_tasks.insert().values(
                        source=source, key=key, data=data, hash=digest))
                elif old[key] != digest:
                    conn.execute(_tasks.update()
                                 .where(_tasks.c.source == source, _tasks.c.key == key)
                                 .values(data=data, hash=digest))
                else:
                    continue
                changed += 1
            if complete:
                gone = [key for key in old if key not in rows]
                for i in range(0, len(gone), 500):  # stay under bound-parameter limits
                    changed += conn.execute(_tasks.delete().where(
                        _tasks.c.source == source, _tasks.c.key.in_(gone[i:i + 500]))).rowcount
        return changed

    def patch_labels(self, changes: dict[str, tuple[set[str], set[str]]]) -> None:
        """Apply Tether's own successful label writes (ref -> (added, removed)) to the stored
        snapshots, so the cache never shows a label Tether has since removed, even when the
        next pull does not return the item (same ``updated`` stamp as already seen)."""
        with self._engine.begin() as conn:
            for ref, (added, removed) in changes.items():
                source, _, key = ref.partition(":")
                where = (_tasks.c.source == source, _tasks.c.key == key)
                data = conn.execute(sa.select(_tasks.c.data).where(*where)).scalar()
                if data is None:
                    continue
                task = json.loads(data)
                labels = [x for x in task.get("labels") or [] if x not in removed]
                task["labels"] = labels + sorted(added - set(labels))
                text = json.dumps(task, sort_keys=True, default=str)
                conn.execute(_tasks.update().where(*where).values(
                    data=text, hash=hashlib.sha256(text.encode()).hexdigest()))

    def load_tasks(self, source: str | None = None) -> list[Task]:
        """Saved snapshots, of one source or all, sorted by (source, key)."""
        query = sa.select(_tasks.c.source, _tasks.c.data).order_by(_tasks.c.source, _tasks.c.key)
        if source is not None:
            query = query.where(_tasks.c.source == source)
        with self._engine.begin() as conn:
            return [task_from_dict(json.loads(data), src) for src, data in conn.execute(query)]

    # -- mappings -------------------------------------------------------------------------

    def save_mappings(self, mappings: list[Mapping]) -> None:
        """Replace the stored mappings with ``mappings`` (those of the latest run)."""
        with self._engine.begin() as conn:
            conn.execute(_mappings.delete())
            if mappings:
                conn.execute(_mappings.insert(), [
                    {"task": m.task, "kpi": m.kpi, "rule_id": m.rule_id,
                     "weight": m.weight, "reason": m.reason} for m in mappings])

    def load_mappings(self) -> list[Mapping]:
        """The latest run's mappings, sorted by (task, kpi, rule_id)."""
        t = _mappings.c
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(t.task, t.kpi, t.rule_id, t.weight, t.reason)
                                .order_by(t.task, t.kpi, t.rule_id, t.id))
            return [Mapping(*row) for row in rows]

    # -- KPI measurements -----------------------------------------------------------------

    def add_measurements(self, ms: list[Measurement]) -> int:
        """Add measurements not yet stored; a (kpi, at) already present keeps its first
        value, so re-importing is idempotent. Returns how many were new."""
        t = _measurements.c
        fresh: dict[tuple[str, datetime], float] = {}
        for m in ms:
            fresh.setdefault((m.kpi, _utc(m.at)), m.value)
        if not fresh:
            return 0
        with self._engine.begin() as conn:
            kpis = sorted({kpi for kpi, _ in fresh})
            for kpi, at in conn.execute(sa.select(t.kpi, t.at).where(t.kpi.in_(kpis))):
                fresh.pop((kpi, _read(at)), None)
            if fresh:
                conn.execute(_measurements.insert(), [
                    {"kpi": kpi, "at": at, "value": value} for (kpi, at), value in fresh.items()])
        return len(fresh)

    def measurements(self, kpi: str | None = None) -> list[Measurement]:
        """Stored measurements, of one KPI or all, sorted by (kpi, at)."""
        t = _measurements.c
        query = sa.select(t.kpi, t.at, t.value).order_by(t.kpi, t.at)
        if kpi is not None:
            query = query.where(t.kpi == kpi)
        with self._engine.begin() as conn:
            return [Measurement(k, _read(at), v) for k, at, v in conn.execute(query)]

    # -- findings -------------------------------------------------------------------------

    def record_findings(self, findings: list[Finding], now: datetime) -> FindingChanges:
        """Record the full current set of findings at ``now``.

        An open finding (same signal, subject, rule_id) still present is ongoing: its
        last_seen, severity, reason and value at risk are updated. Open ones absent now get
        cleared_at=now. A finding that was cleared and reappears is new again and gets a
        fresh row (first_seen=now); the cleared row stays as history of the earlier episode.
        """
        now = _utc(now)
        current: dict[tuple[str, str, str], Finding] = {}
        for f in findings:
            current.setdefault(_key(f), f)
        t = _findings.c
        new: list[Finding] = []
        ongoing: list[Finding] = []
        cleared: list[FindingRecord] = []
        with self._engine.begin() as conn:
            open_rows = {_key(row): row for row in conn.execute(
                sa.select(_findings).where(t.cleared_at.is_(None)).order_by(t.id))}
            for key, f in current.items():
                values = {"severity": _text(f.severity), "reason": f.reason,
                          "value_at_risk": f.value_at_risk, "last_seen": now}
                if key in open_rows:
                    conn.execute(_findings.update().where(t.id == open_rows[key].id)
                                 .values(**values))
                    ongoing.append(f)
                else:
                    conn.execute(_findings.insert().values(
                        signal=f.signal, subject=f.subject, rule_id=f.rule_id,
                        first_seen=now, **values))
                    new.append(f)
            for key, row in open_rows.items():
                if key not in current:
                    conn.execute(_findings.update().where(t.id == row.id).values(cleared_at=now))
                    cleared.append(replace(_record(row), cleared_at=now))
        return FindingChanges(new=new, ongoing=ongoing, cleared=cleared)

    def open_findings(self) -> list[FindingRecord]:
        """Findings not cleared, sorted by (subject, signal, rule_id)."""
        t = _findings.c
        with self._engine.begin() as conn:
            return [_record(row) for row in conn.execute(
                sa.select(_findings).where(t.cleared_at.is_(None))
                .order_by(t.subject, t.signal, t.rule_id))]

    def finding_history(self, subject: str) -> list[FindingRecord]:
        """Every episode of every finding on ``subject``, oldest first."""
        t = _findings.c
        with self._engine.begin() as conn:
            return [_record(row) for row in conn.execute(
                sa.select(_findings).where(t.subject == subject).order_by(t.first_seen, t.id))]

    # -- write ledger ---------------------------------------------------------------------

    def ledger_begin(self, run_id: int, op: WriteOp, now: datetime) -> int:
        """Record ``op`` as pending before it is sent; returns the entry id."""
        with self._engine.begin() as conn:
            return conn.execute(_ledger.insert().values(
                run_id=run_id, source=op.source, key=op.key, kind=_text(op.kind),
                value=op.value, comment_id=op.comment_id, status="pending",
                started=_utc(now))).inserted_primary_key[0]

    def ledger_end(self, entry_id: int, result: OpResult, now: datetime) -> None:
        """Mark the entry done or failed with the connector's error and comment id."""
        t = _ledger.c
        values: dict[str, Any] = {"status": "done" if result.ok else "failed",
                                  "error": result.error, "finished": _utc(now)}
        if result.comment_id is not None:  # keep the id known at begin when none came back
            values["comment_id"] = result.comment_id
        with self._engine.begin() as conn:
            if not conn.execute(_ledger.update().where(t.id == entry_id).values(**values)).rowcount:
                raise ValueError(f"no ledger entry {entry_id}")

    def ledger_note(self, run_id: int, op: WriteOp, status: str, note: str,
                    now: datetime) -> None:
        """Record an op Tether chose not to send (``held``: a person's override) with why."""
        with self._engine.begin() as conn:
            conn.execute(_ledger.insert().values(
                run_id=run_id, source=op.source, key=op.key, kind=_text(op.kind),
                value=op.value, comment_id=op.comment_id, status=status, error=note,
                started=_utc(now), finished=_utc(now)))

    def ledger_interrupt(self, now: datetime) -> list[LedgerEntry]:
        """Close every pending entry (its run died mid-write) as "interrupted"; return them."""
        pending = self.ledger_pending()
        if pending:
            with self._engine.begin() as conn:
                conn.execute(_ledger.update().where(_ledger.c.id.in_([e.id for e in pending]))
                             .values(status="interrupted", finished=_utc(now),
                                     error="the run stopped before the tracker answered"))
        return pending

    def ledger_unsettled_comments(self) -> set[str]:
        """Refs whose latest comment write failed or was cut short: the comment may exist
        unmarked (written, then the marking failed), so the next read must look harder."""
        t = _ledger.c
        kinds = (_text(OpKind.CREATE_COMMENT), _text(OpKind.UPDATE_COMMENT))
        latest = (sa.select(t.source, t.key, sa.func.max(t.id).label("last"))
                  .where(t.kind.in_(kinds), t.status != "held")
                  .group_by(t.source, t.key).subquery())
        query = (sa.select(t.source, t.key).join(latest, t.id == latest.c.last)
                 .where(t.status.in_(("failed", "interrupted"))))
        with self._engine.begin() as conn:
            return {f"{source}:{key}" for source, key in conn.execute(query)}

    def ledger_pending(self) -> list[LedgerEntry]:
        """Entries begun but never ended (a crash mid-write), oldest first."""
        t = _ledger.c
        with self._engine.begin() as conn:
            return [_entry(row) for row in conn.execute(
                sa.select(_ledger).where(t.status == "pending").order_by(t.id))]

    def ledger_for(self, task_ref: str) -> list[LedgerEntry]:
        """Every write to the task ``<source>:<key>``, oldest first."""
        source, _, key = task_ref.partition(":")
        t = _ledger.c
        with self._engine.begin() as conn:
            return [_entry(row) for row in conn.execute(
                sa.select(_ledger).where(t.source == source, t.key == key).order_by(t.id))]

    # -- what Tether wrote, per item ------------------------------------------------------

    def load_written(self) -> dict[str, Written]:
        """By task ref: what Tether knows it wrote there."""
        with self._engine.begin() as conn:
            return {task: _written_from(json.loads(data))
                    for task, data in conn.execute(sa.select(_written.c.task, _written.c.data))}

    def save_written(self, changed: dict[str, Written]) -> None:
        """Upsert the given items' records (only pass those that changed)."""
        if not changed:
            return
        with self._engine.begin() as conn:
            existing = set(conn.execute(sa.select(_written.c.task).where(
                _written.c.task.in_(list(changed)))).scalars()) if len(changed) < 500 else \
                set(conn.execute(sa.select(_written.c.task)).scalars())
            for task, record in changed.items():
                data = json.dumps(_written_to(record), sort_keys=True)
                if task in existing:
                    conn.execute(_written.update().where(_written.c.task == task)
                                 .values(data=data))
                else:
                    conn.execute(_written.insert().values(task=task, data=data))

    # -- retention ------------------------------------------------------------------------

    def prune(self, before: datetime) -> dict[str, int]:
        """Forget runs, finished ledger entries and cleared findings older than ``before``;
        open findings, pending writes, KPI history and what Tether wrote stay."""
        cut = _utc(before)
        with self._engine.begin() as conn:
            return {
                "runs": conn.execute(_runs.delete().where(
                    _runs.c.started < cut, _runs.c.status != "running")).rowcount,
                "ledger": conn.execute(_ledger.delete().where(
                    _ledger.c.started < cut, _ledger.c.status != "pending")).rowcount,
                "findings": conn.execute(_findings.delete().where(
                    _findings.c.cleared_at.is_not(None), _findings.c.cleared_at < cut)).rowcount,
            }

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, mode: str, packs: dict[str, str], now: datetime) -> int:
        """Record a run as running with its rule pack versions; returns its id."""
        with self._engine.begin() as conn:
            return conn.execute(_runs.insert().values(
                mode=mode, started=_utc(now), status="running",
                packs=json.dumps(packs, sort_keys=True), counts="{}")).inserted_primary_key[0]

    def finish_run(self, run_id: int, status: str, counts: dict[str, int], now: datetime) -> None:
        """Close a run as "ok" or "failed" with its counts."""
        if status not in ("ok", "failed"):
            raise ValueError(f"run status must be 'ok' or 'failed', not {status!r}")
        with self._engine.begin() as conn:
            if not conn.execute(_runs.update().where(_runs.c.id == run_id).values(
                    status=status, finished=_utc(now),
                    counts=json.dumps(counts, sort_keys=True))).rowcount:
                raise ValueError(f"no run {run_id}")

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest ``limit`` runs, newest first."""
        t = _runs.c
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(_runs).order_by(t.started.desc(), t.id.desc())
                                .limit(limit)).all()
        return [RunRecord(id=r.id, mode=r.mode, started=_read(r.started),
                          finished=_read(r.finished), status=r.status,
                          packs=json.loads(r.packs), counts=json.loads(r.counts)) for r in rows]


def _written_to(w: Written) -> dict[str, Any]:
    return {"labels_verdict": w.labels_verdict, "labels": sorted(w.labels),
            "comment_verdict": w.comment_verdict, "comment_id": w.comment_id,
            "comment_gone": w.comment_gone, "held": sorted(w.held), "unmasked": w.unmasked,
            "own_updated": w.own_updated.isoformat() if w.own_updated else None,
            "activity": w.activity.isoformat() if w.activity else None}


def _written_from(d: dict[str, Any]) -> Written:
    return Written(d["labels_verdict"], frozenset(d["labels"]), d["comment_verdict"],
                   d["comment_id"], d["comment_gone"], frozenset(d["held"]), d["unmasked"],
                   _read(d["own_updated"]), _read(d["activity"]))


def _text(value: str | Enum) -> str:
    # str() of a str-Enum member is "OpKind.ADD_LABEL" on 3.11; store the plain value.
    return str(value.value) if isinstance(value, Enum) else value
