"""Schema 6: each judged task's join keys (``judged_keys``) and its shares of the KPIs'
counts (``judged_kpis``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.migrations import missing

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    if missing("judged_keys"):
        op.create_table(
            "judged_keys",
            sa.Column("task", sa.String(512), primary_key=True),
            sa.Column("key", sa.String(1024), primary_key=True, index=True))
    if missing("judged_kpis"):
        op.create_table(
            "judged_kpis",
            sa.Column("task", sa.String(512), primary_key=True),
            sa.Column("kpi", sa.String(255), primary_key=True),
            sa.Column("open", sa.Integer, nullable=False),
            sa.Column("effort", sa.BigInteger, nullable=False),
            sa.Column("in_window", sa.Integer, nullable=False),
            sa.Column("done_in_window", sa.Integer, nullable=False))


def downgrade() -> None:
    op.drop_table("judged_kpis")
    op.drop_table("judged_keys")
