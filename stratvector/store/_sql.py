"""Small SQL helpers shared by the repositories (dialect-specific bits live here)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Insert, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session, model: type, values: Mapping[str, Any], conflict: Sequence[str]
) -> bool:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING``; True if the row was written.

    Race-free: the database decides, not a prior SELECT. Uses ``RETURNING`` to learn
    whether a row was inserted (driver rowcounts are not reliable for this), so SQLite
    must be 3.35 or newer.
    """
    name = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    stmt = (
        dialect_insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*table.primary_key.columns)
    )
    return session.execute(stmt).first() is not None


def insert_ignore_many(
    session: Session,
    model: type,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    key: str,
) -> set[Any]:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` of many rows; returns the ``key``
    values of the rows written (the others existed).

    One statement per (table, conflict, key), built once and executed on the session's
    connection with every row as a parameter set (SQLAlchemy batches them as
    "insertmanyvalues"): a multi-row VALUES would be compiled anew per row count, and
    the ORM's execute path costs more than the insert itself for a bar's few intents."""
    if not rows:
        return set()
    conn = session.connection()
    table = model.__table__  # type: ignore[attr-defined]
    stmt = _insert_ignore(table, tuple(conflict), key)[conn.dialect.name]
    return {row[0] for row in conn.execute(stmt, [dict(r) for r in rows])}


@functools.cache
def _insert_ignore(table: Table, conflict: tuple[str, ...], key: str) -> dict[str, Insert]:
    return insert_ignore_statements(table, conflict, [table.c[key]])


def for_update(session: Session, stmt: Select[Any]) -> Select[Any]:
    """Lock the selected rows on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt


def needs_row_locks(conn: Connection) -> bool:
    """True where a writer must lock the rows it reads before writing (PostgreSQL);
    on SQLite the writer's ``BEGIN IMMEDIATE`` holds the database's write lock."""
    return conn.dialect.name == "postgresql"


def insert_ignore_statements(
    table: Table, conflict: Sequence[str], returning: Sequence[Any]
) -> dict[str, Insert]:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING returning`` per backend
    name, built once (hot paths reuse SQLAlchemy's compiled form); execute it with the
    row as parameters: it returns a row only if the row was written."""
    return {
        name: dialect_insert(table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*returning)
        for name, dialect_insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
    }
