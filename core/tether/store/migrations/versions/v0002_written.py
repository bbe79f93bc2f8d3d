"""Schema 2: what Tether wrote on each item (``written``), for overrides and loop safety."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.migrations import missing

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    if missing("written"):
        op.create_table(
            "written",
            sa.Column("task", sa.String(512), primary_key=True),
            sa.Column("data", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("written")
