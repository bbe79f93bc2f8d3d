"""The state store (SQLAlchemy Core on SQLite or PostgreSQL): cursors, snapshots, findings,
ledger and runs."""
