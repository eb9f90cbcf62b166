"""Small SQL helpers shared by the repositories (dialect-specific bits live here)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Select, Table
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


def sqlite_insert_ignore_many(
    conn: Any,
    dialect: Dialect,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    key: str,
) -> set[Any]:
    """:func:`insert_ignore_many` on SQLite's own connection (``sqlite3``, in a write
    transaction, from :meth:`~stratvector.store.engine.Journal.sqlite_write`).

    The same statement (``INSERT ... ON CONFLICT DO NOTHING RETURNING key``, one per up
    to :data:`_SQLITE_ROWS_PER_STATEMENT` rows) with the values converted by the
    columns' own SQLAlchemy types (their bind processors: times, JSON), so the rows are
    exactly those the SQLAlchemy path writes; without the session, the compiled-statement
    lookup and the per-row parameter processing, which cost twice the insert and its
    commit for a bar's intents. Every row must have the same keys."""
    if not rows:
        return set()
    names = tuple(rows[0])
    processors = _bind_processors(table, dialect, names)
    created: set[Any] = set()
    step = max(1, _SQLITE_MAX_VARIABLES // len(names))
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        sql = _sqlite_insert_ignore_sql(table, dialect, names, tuple(conflict), key, len(chunk))
        columns = [
            _converted([row[name] for row in chunk], proc)
            for name, proc in zip(names, processors, strict=True)
        ]
        params = [value for row in zip(*columns, strict=True) for value in row]
        created.update(r[0] for r in conn.execute(sql, params))
    return created


def _converted(values: list[Any], proc: Callable[[Any], Any] | None) -> list[Any]:
    """One column's values through its bind processor, each distinct time once (a
    decision's intents share their bar time and their creation time)."""
    if proc is None:
        return values
    if type(values[0]) is datetime:
        memo: dict[datetime, Any] = {}
        return [memo[v] if v in memo else memo.setdefault(v, proc(v)) for v in values]
    return [proc(v) for v in values]


_SQLITE_MAX_VARIABLES = 999  # SQLite's smallest compiled-in limit of ``?`` per statement


@functools.cache
def _bind_processors(
    table: Table, dialect: Dialect, names: tuple[str, ...]
) -> tuple[Callable[[Any], Any] | None, ...]:
    # the dialect's own form of each type: SQLite's DATETIME formats the stored text
    return tuple(table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)


@functools.cache
def _sqlite_insert_ignore_sql(
    table: Table,
    dialect: Dialect,
    names: tuple[str, ...],
    conflict: tuple[str, ...],
    key: str,
    n: int,
) -> str:
    quote = dialect.identifier_preparer.quote
    row = "(" + ", ".join("?" * len(names)) + ")"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in names)}) "
        f"VALUES {', '.join([row] * n)} "
        f"ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO NOTHING "
        f"RETURNING {quote(key)}"
    )


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
