"""Schema 4: which rules each task's facts matched, per stage (``matches``), and the rule set
they were matched under (``match_books``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.migrations import missing

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    if missing("matches"):
        op.create_table(
            "matches",
            sa.Column("stage", sa.String(32), primary_key=True),
            sa.Column("task", sa.String(512), primary_key=True),
            sa.Column("hash", sa.String(64), nullable=False),
            sa.Column("rules", sa.Text, nullable=False))
    if missing("match_books"):
        op.create_table(
            "match_books",
            sa.Column("stage", sa.String(32), primary_key=True),
            sa.Column("book", sa.String(64), nullable=False))


def downgrade() -> None:
    op.drop_table("match_books")
    op.drop_table("matches")
