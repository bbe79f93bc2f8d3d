"""Schema 8: webhook secrets a tracker handed over (``hook_secrets``, moved out of the
connector memory rows named ``hooks:<source>`` where schema 7 kept them) and the deliveries
taken lately (``deliveries``), so that a restarted service still knows both."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def _key(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    secrets = op.create_table(
        "hook_secrets",
        sa.Column("source", _key(255), primary_key=True),
        sa.Column("hook", _key(255), primary_key=True),
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("expected_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "deliveries",
        sa.Column("source", _key(255), primary_key=True),
        sa.Column("delivery", _key(512), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_deliveries_at", "deliveries", ["at"])
    memory = sa.table("connector_memory", sa.column("source", sa.String),
                      sa.column("data", sa.Text))
    conn = op.get_bind()
    kept = conn.execute(sa.select(memory.c.source, memory.c.data)
                        .where(memory.c.source.like("hooks:%"))).all()
    rows = [{"source": source.removeprefix("hooks:"), "hook": str(hook), "secret": str(secret),
             "expected_until": None}
            for source, data in kept for hook, secret in json.loads(data).items()]
    if rows:
        op.bulk_insert(secrets, rows)
    conn.execute(memory.delete().where(memory.c.source.like("hooks:%")))


def downgrade() -> None:
    op.drop_index("ix_deliveries_at", "deliveries")
    op.drop_table("deliveries")
    op.drop_table("hook_secrets")
