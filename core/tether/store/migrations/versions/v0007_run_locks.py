"""Schema 7: who holds each run lock (``run_locks``); on PostgreSQL, keys sorted byte by
byte (collation "C"), as SQLite sorts them, whatever the database's default collation."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

# The key columns, by table, with their lengths.
KEYS = {
    "cursors": {"source": 255}, "connector_memory": {"source": 255},
    "tasks": {"source": 255, "key": 255}, "mappings": {"task": 512, "kpi": 255, "rule_id": 255},
    "measurements": {"kpi": 255}, "findings": {"signal": 255, "subject": 255, "rule_id": 255},
    "ledger": {"source": 255, "key": 255, "comment_id": 255}, "written": {"task": 512},
    "matches": {"task": 512}, "judged": {"task": 512}, "judged_keys": {"task": 512, "key": 1024},
    "judged_kpis": {"task": 512, "kpi": 255},
}


def upgrade() -> None:
    op.create_table(
        "run_locks",
        sa.Column("scope", sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql"),
                  primary_key=True),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False))
    _collate('"C"')


def downgrade() -> None:
    _collate("pg_catalog.\"default\"")
    op.drop_table("run_locks")


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite compares text byte by byte already
    for table, columns in KEYS.items():  # one statement per table: its indexes are rebuilt once
        op.execute(f"ALTER TABLE {table} " + ", ".join(
            f'ALTER COLUMN "{name}" TYPE varchar({length}) COLLATE {collation}'
            for name, length in columns.items()))
