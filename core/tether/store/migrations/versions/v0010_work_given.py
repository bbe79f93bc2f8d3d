"""Schema 10: what a work unit is given (``work.given``), when it is too large for a broker
message: each shard's share of the assessment, which its plan unit reads."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("work") as batch:
        batch.add_column(sa.Column("given", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work") as batch:
        batch.drop_column("given")
