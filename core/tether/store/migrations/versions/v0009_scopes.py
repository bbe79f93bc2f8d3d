"""Schema 9: each task's scope (the Jira project, GitHub repository or Asana project a shard
of its source pulls), and ``work``: each work unit of a pass spread over workers, for
``tether status``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def _key(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("scope", _key(255), nullable=True))
    op.create_index("ix_tasks_scope", "tasks", ["source", "scope"])
    op.create_table(
        "work",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("unit", _key(512), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("queued", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_table("work")
    op.drop_index("ix_tasks_scope", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("scope")
