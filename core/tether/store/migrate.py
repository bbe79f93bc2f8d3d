"""Bringing a store's schema to this Tether's: Alembic runs the numbered revisions under
tether/store/migrations/; a store from before Alembic (a ``schema_version`` row, no
``alembic_version``) is adopted at the revision of its number, then upgraded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa

from tether.errors import TetherError
from tether.store import tables

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = f"{tables.SCHEMA_VERSION:04d}"
# pg_advisory_xact_lock key: two Tethers opening one new store take turns creating it.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"tether.store.migrate").digest()[:8], "big", signed=True)


def migrate(conn: sa.Connection, where: str) -> None:
    """Upgrade the store on ``conn`` to HEAD within the transaction ``conn`` is in. Raises
    TetherError, having changed nothing, when a newer Tether wrote the store; ``where``
    names the store (its URL without the password) in that message."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    inspector = sa.inspect(conn)
    legacy = (conn.execute(sa.select(sa.func.max(tables.schema.c.version))).scalar()
              if inspector.has_table("schema_version") else None)
    current = (conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
               if inspector.has_table("alembic_version") else None)
    newer = max(legacy or 0, int(current) if current and current.isdigit() else 0)
    if newer > tables.SCHEMA_VERSION or (current is not None and not current.isdigit()):
        raise TetherError(f"state store at {where} was written by a newer Tether "
                          f"(schema {newer or current}); upgrade tether")
    if current == HEAD and legacy == tables.SCHEMA_VERSION:
        return  # the common case: nothing to do, and Alembic is not even imported
    from alembic import command
    from alembic.config import Config

    config = Config()
    # A Config without a file: configparser would read a "%" in the path as interpolation.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = conn
    if current is None and legacy:
        # Written before Alembic: its schema number is the revision it is at.
        command.stamp(config, f"{legacy:04d}")
    command.upgrade(config, "head")
    # Tethers from before Alembic read only this: a bigger number makes them refuse the store.
    conn.execute(tables.schema.delete())
    conn.execute(tables.schema.insert().values(version=tables.SCHEMA_VERSION))
