"""The state store's tables (portable SQLAlchemy Core types only) and how values are kept in
them: datetimes as aware UTC, enums as their plain value."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

# The number of the newest migration (tether/store/migrations/versions/vNNNN_*.py); kept in
# ``schema_version`` too, where Tethers from before the migrations look for it.
SCHEMA_VERSION = 10

meta = sa.MetaData()


def Key(length: int) -> sa.types.TypeEngine[str]:  # named as the types it stands beside
    """A string that is sorted and compared byte by byte on every database: PostgreSQL's
    default collation follows a language (``B`` after ``a``), SQLite's is binary."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


Name = Key(255)
When = sa.DateTime(timezone=True)

schema = sa.Table("schema_version", meta, sa.Column("version", sa.Integer, nullable=False))
cursors = sa.Table(
    "cursors", meta,
    sa.Column("source", Name, primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),
)
# What each connector keeps between passes (ETags, sync tokens, comment ids), as JSON.
memory = sa.Table(
    "connector_memory", meta,
    sa.Column("source", Name, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)
# Which rules each task's facts matched, per stage, with the hash of those facts and the
# fingerprint of the rule set: a pass re-matches only facts it has not seen.
matches = sa.Table(
    "matches", meta,
    sa.Column("stage", sa.String(32), primary_key=True),
    sa.Column("task", Key(512), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("rules", sa.Text, nullable=False),
)
match_books = sa.Table(
    "match_books", meta,
    sa.Column("stage", sa.String(32), primary_key=True),
    sa.Column("book", sa.String(64), nullable=False),
)
# What the last judgement left per task, so a later pass judges only what changed: the hash
# of what the rest of the portfolio reads from the task, the second of the day its ages tick,
# its join facts (guardrail, conflict) and its findings. One row per judgement in ``judgement``.
judged = sa.Table(
    "judged", meta,
    sa.Column("task", Key(512), primary_key=True),
    sa.Column("row", sa.String(64), nullable=False),
    sa.Column("age_tick", sa.Integer, nullable=True, index=True),
    sa.Column("idle_tick", sa.Integer, nullable=True, index=True),
    sa.Column("joins", sa.Text, nullable=True),
    sa.Column("findings", sa.Text, nullable=True),
)
# What other items' join facts read from a task: its entity keys ("e|kind|value") and the
# refs it links to ("l|ref"); indexed by key to find the items around a changed one.
judged_keys = sa.Table(
    "judged_keys", meta,
    sa.Column("task", Key(512), primary_key=True),
    sa.Column("key", Key(1024), primary_key=True, index=True),
)
# Each task's share in the counts of each KPI it is mapped to (tether.rules.tally.Share).
judged_kpis = sa.Table(
    "judged_kpis", meta,
    sa.Column("task", Key(512), primary_key=True),
    sa.Column("kpi", Name, primary_key=True),
    sa.Column("open", sa.Integer, nullable=False),
    sa.Column("effort", sa.BigInteger, nullable=False),
    sa.Column("in_window", sa.Integer, nullable=False),
    sa.Column("done_in_window", sa.Integer, nullable=False),
)
judgement = sa.Table(
    "judgement", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)
tasks = sa.Table(
    "tasks", meta,
    sa.Column("source", Name, primary_key=True),
    sa.Column("key", Name, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The shard of its source that pulls it (None: the source is pulled whole).
    sa.Column("scope", Name, nullable=True),
    sa.Index("ix_tasks_scope", "source", "scope"),
)
mappings = sa.Table(
    "mappings", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", Key(512), nullable=False),
    sa.Column("kpi", Name, nullable=False),
    sa.Column("rule_id", Name, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)
measurements = sa.Table(
    "measurements", meta,
    sa.Column("kpi", Name, nullable=False),
    sa.Column("at", When, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.UniqueConstraint("kpi", "at", name="uq_measurement"),
)
findings = sa.Table(
    "findings", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signal", Name, nullable=False),
    sa.Column("subject", Name, nullable=False),
    sa.Column("rule_id", Name, nullable=False),
    sa.Column("severity", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("value_at_risk", sa.Float, nullable=False),
    sa.Column("first_seen", When, nullable=False),
    sa.Column("last_seen", When, nullable=False),
    sa.Column("cleared_at", When, nullable=True),
    sa.Index("ix_findings_subject", "subject"),
)
ledger = sa.Table(
    "ledger", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("source", Name, nullable=False),
    sa.Column("key", Name, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("comment_id", Name, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started", When, nullable=False),
    sa.Column("finished", When, nullable=True),
    sa.Index("ix_ledger_task", "source", "key"),
)
written = sa.Table(
    "written", meta,
    sa.Column("task", Key(512), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)
runs = sa.Table(
    "runs", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("started", When, nullable=False),
    sa.Column("finished", When, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("packs", sa.Text, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
)
# Each work unit of a pass spread over workers (tether.work): "pull <shard>", "assess",
# "write <shard>"; its state (queued, running, done, failed), tries and counts (JSON).
work = sa.Table(
    "work", meta,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("unit", Key(512), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(255), nullable=True),
    sa.Column("queued", When, nullable=False),
    sa.Column("started", When, nullable=True),
    sa.Column("finished", When, nullable=True),
    sa.Column("tries", sa.Integer, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("result", sa.Text, nullable=True),  # what the unit handed on, as JSON
    sa.Column("given", sa.Text, nullable=True),  # what it is given, as JSON (see work_give)
)
# Who holds each run lock (see tether.store.lock), for the message the next one gets.
run_locks = sa.Table(
    "run_locks", meta,
    sa.Column("scope", Name, primary_key=True),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("since", When, nullable=False),
)

# What a webhook's tracker handed over itself (Asana's handshake secret), per webhook; a row
# with no secret and ``expected_until`` set says an install is waiting for handshakes
# (``hook`` "*": any of the source's webhooks), so that none other is taken.
hook_secrets = sa.Table(
    "hook_secrets", meta,
    sa.Column("source", Name, primary_key=True),
    sa.Column("hook", Name, primary_key=True),
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("expected_until", When, nullable=True),
)
# The webhook deliveries taken lately, by the tracker's delivery id: a retry is answered as
# a duplicate, across restarts too.
deliveries = sa.Table(
    "deliveries", meta,
    sa.Column("source", Name, primary_key=True),
    sa.Column("delivery", Key(512), primary_key=True),
    sa.Column("at", When, nullable=False),
    sa.Index("ix_deliveries_at", "at"),
)

def utc(dt: datetime) -> datetime:
    """Aware UTC; naive input is taken as UTC, as codec.parse_datetime does."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def read(dt: datetime | str | None) -> datetime | None:
    # SQLite hands DateTime back naive (it drops the zone); everything was written as UTC.
    if dt is None:
        return None
    return read_set(dt)


def read_set(dt: datetime | str) -> datetime:
    """``read`` for a value that is never None (a NOT NULL column)."""
    return utc(datetime.fromisoformat(dt) if isinstance(dt, str) else dt)


def text(value: str | Enum) -> str:
    # str() of a str-Enum member is "OpKind.ADD_LABEL" on 3.11; store the plain value.
    return str(value.value) if isinstance(value, Enum) else value


# Bound parameters per statement: SQLite before 3.32 allows 999 (PostgreSQL 65,535).
PARAMS = 999


def upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same columns, the primary key among them); where a row
    with the same primary key exists, overwrite its other columns. One INSERT .. ON CONFLICT
    DO UPDATE per chunk on PostgreSQL and SQLite (3.24+); delete-then-insert elsewhere."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # no portable upsert; the caller's transaction keeps this atomic
        pk = sa.tuple_(*table.primary_key.columns)
        for i in range(0, len(rows), PARAMS // len(keys)):
            conn.execute(table.delete().where(pk.in_(
                [tuple(r[k] for k in keys) for r in rows[i:i + PARAMS // len(keys)]])))
        conn.execute(table.insert(), rows)
        return
    step = max(1, PARAMS // len(rows[0]))
    for i in range(0, len(rows), step):
        stmt = insert(table).values(rows[i:i + step])
        conn.execute(stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}))


def replace_rows(conn: sa.Connection, table: sa.Table, column: sa.Column,
                 keys: Iterable[str] | None, rows: list[dict[str, Any]]) -> None:
    """Delete the rows whose ``column`` is one of ``keys`` (every row when None), in chunks
    that stay under bound-parameter limits, then insert ``rows``."""
    if keys is None:
        conn.execute(table.delete())
    else:
        chosen = sorted(keys)
        for i in range(0, len(chosen), 500):
            conn.execute(table.delete().where(column.in_(chosen[i:i + 500])))
    if rows:
        conn.execute(table.insert(), rows)


def rows_where(conn: sa.Connection, query: sa.Select, column: sa.Column,
                values: Iterable[str] | None) -> list[sa.Row]:
    """The rows of ``query`` (whose ``column`` is one of ``values``, when given), asked in
    chunks that stay under bound-parameter limits."""
    if values is None:
        return list(conn.execute(query))
    chosen = sorted(set(values))
    return [row for i in range(0, len(chosen), 500)
            for row in conn.execute(query.where(column.in_(chosen[i:i + 500])))]
