"""Alembic migrations of the state store, run by tether.store.migrate when a Store opens.

Revision ids are the schema numbers ("0001", "0002", ...; tables.SCHEMA_VERSION is the
newest). A new revision copies the latest file under versions/, takes the next number as
``revision`` and the latest as ``down_revision``, describes its tables itself (never by
importing tether.store.tables, which moves on), and bumps SCHEMA_VERSION.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def missing(table: str) -> bool:
    """The store being migrated has no table ``table`` yet."""
    return not sa.inspect(op.get_bind()).has_table(table)
