"""Alembic migration environment of the journal (shipped inside the package)."""
