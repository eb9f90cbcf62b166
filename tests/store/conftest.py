"""Fixtures: every journal test runs on SQLite (a real file) and on PostgreSQL.

PostgreSQL runs when ``STRATVECTOR_TEST_PG_URL`` is set (``start_postgres.sh`` prints a
suitable URL); each test gets its own schema, dropped afterwards. Without the variable
the PostgreSQL variants are reported as skipped with the reason, never as passed; set
``STRATVECTOR_REQUIRE_PG=1`` (CI does) to make a missing variable an error instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from stratvector.store import Journal
from stratvector.store.engine import resolve_url

PG_ENV = "STRATVECTOR_TEST_PG_URL"
REQUIRE_ENV = "STRATVECTOR_REQUIRE_PG"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def pg_base_url() -> str:
    """The PostgreSQL URL from the environment, or skip (or fail, when required)."""
    url = os.environ.get(PG_ENV)
    if url:
        return resolve_url(url).render_as_string(hide_password=False)
    reason = (
        f"{PG_ENV} is not set: PostgreSQL variant not run. Start a server with "
        f'`export {PG_ENV}="$(tests/store/start_postgres.sh)"` to run it'
    )
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_ENV} is set but {reason}")
    pytest.skip(reason)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty PostgreSQL schema (dropped after)."""
    base = pg_base_url()
    schema = f"sv_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = resolve_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty journal database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    j = Journal(journal_url).open()
    try:
        yield j
    finally:
        j.close()
