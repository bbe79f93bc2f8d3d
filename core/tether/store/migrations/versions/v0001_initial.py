"""Schema 1: cursors, task snapshots, mappings, measurements, findings, ledger and runs.

Revisions 0001 to 0006 make only the tables a store lacks: before Alembic, Tether made its
tables with create_all, so a store it adopts may hold some tables of a later number.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.migrations import missing

revision = "0001"
down_revision = None

Name = sa.String(255)
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    if missing("schema_version"):  # where Tethers before Alembic read the schema number
        op.create_table("schema_version", sa.Column("version", sa.Integer, nullable=False))
    if missing("cursors"):
        op.create_table(
            "cursors",
            sa.Column("source", Name, primary_key=True),
            sa.Column("cursor", sa.Text, nullable=False))
    if missing("tasks"):
        op.create_table(
            "tasks",
            sa.Column("source", Name, primary_key=True),
            sa.Column("key", Name, primary_key=True),
            sa.Column("data", sa.Text, nullable=False),
            sa.Column("hash", sa.String(64), nullable=False))
    if missing("mappings"):
        op.create_table(
            "mappings",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("task", sa.String(512), nullable=False),
            sa.Column("kpi", Name, nullable=False),
            sa.Column("rule_id", Name, nullable=False),
            sa.Column("weight", sa.Float, nullable=False),
            sa.Column("reason", sa.Text, nullable=False))
    if missing("measurements"):
        op.create_table(
            "measurements",
            sa.Column("kpi", Name, nullable=False),
            sa.Column("at", When, nullable=False),
            sa.Column("value", sa.Float, nullable=False),
            sa.UniqueConstraint("kpi", "at", name="uq_measurement"))
    if missing("findings"):
        op.create_table(
            "findings",
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
            sa.Index("ix_findings_subject", "subject"))
    if missing("ledger"):
        op.create_table(
            "ledger",
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
            sa.Index("ix_ledger_task", "source", "key"))
    if missing("runs"):
        op.create_table(
            "runs",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("mode", sa.String(32), nullable=False),
            sa.Column("started", When, nullable=False),
            sa.Column("finished", When, nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("packs", sa.Text, nullable=False),
            sa.Column("counts", sa.Text, nullable=False))


def downgrade() -> None:
    for name in ("runs", "ledger", "findings", "measurements", "mappings", "tasks", "cursors",
                 "schema_version"):
        op.drop_table(name)
