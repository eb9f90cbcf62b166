"""Tests of the journal (stratvector.store) on SQLite and PostgreSQL."""
