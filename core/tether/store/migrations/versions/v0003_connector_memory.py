"""Schema 3: what each connector keeps between passes (``connector_memory``), as JSON."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.migrations import missing

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    if missing("connector_memory"):
        op.create_table(
            "connector_memory",
            sa.Column("source", sa.String(255), primary_key=True),
            sa.Column("data", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("connector_memory")
