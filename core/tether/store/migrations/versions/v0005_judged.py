"""Schema 5: what the last judgement left per task (``judged``) and for the whole portfolio
(``judgement``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.migrations import missing

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    if missing("judged"):
        op.create_table(
            "judged",
            sa.Column("task", sa.String(512), primary_key=True),
            sa.Column("row", sa.String(64), nullable=False),
            sa.Column("age_tick", sa.Integer, nullable=True, index=True),
            sa.Column("idle_tick", sa.Integer, nullable=True, index=True),
            sa.Column("joins", sa.Text, nullable=True),
            sa.Column("findings", sa.Text, nullable=True))
    if missing("judgement"):
        op.create_table(
            "judgement",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("data", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("judgement")
    op.drop_table("judged")
