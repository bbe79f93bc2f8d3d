"""The numbered revisions; 0001 to 0006 are the schemas Tether kept before Alembic."""
