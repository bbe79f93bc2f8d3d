"""Alembic's entry point: migrate the connection tether.store.migrate hands over, inside the
transaction it already began (no alembic.ini, no URL of its own)."""

from alembic import context

context.configure(connection=context.config.attributes["connection"],
                  version_table="alembic_version", transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
