"""Migrations build the schema from empty, match the models, and keep SQLite configured."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from stratvector.store import Journal, JournalError, migrate
from stratvector.store.intents import Intent
from stratvector.store.migrate import alembic_config, head_revision
from stratvector.store.models import Base

EXPECTED_TABLES = {
    "account_snapshots",
    "alembic_version",
    "drift_reports",
    "events",
    "fills",
    "halt_state",
    "order_intents",
    "order_status_history",
    "orders",
    "position_snapshot_lines",
    "position_snapshots",
    "risk_reports",
    "run_results",
    "runs",
    "strategies",
    "strategy_configs",
}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_create_schema_from_empty(journal_url):
    assert _tables(journal_url) == set()
    with Journal(journal_url) as journal:
        assert journal.schema_revision() == head_revision()
    assert _tables(journal_url) == EXPECTED_TABLES


def test_migrated_schema_matches_models(journal_url):
    with Journal(journal_url):
        pass
    engine = create_engine(journal_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_reopen_is_a_no_op_and_keeps_data(journal_url):
    with Journal(journal_url) as j:
        j.events.record_event("connect", {"port": 4002})
    with Journal(journal_url) as j:
        assert j.schema_revision() == head_revision()
        assert [e.detail for e in j.events.list_events()] == [{"port": 4002}]


def test_downgrade_to_base_and_upgrade_again(journal_url):
    with Journal(journal_url):
        pass
    engine = create_engine(journal_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert _tables(journal_url) <= {"alembic_version"}
    finally:
        engine.dispose()
    with Journal(journal_url) as j:
        assert j.schema_revision() == head_revision()
    assert _tables(journal_url) == EXPECTED_TABLES


def _intent_indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        # PostgreSQL lists the unique constraint's own index too
        names = {ix["name"] for ix in inspect(engine).get_indexes("order_intents")}
        return {n for n in names if n.startswith("ix_")}
    finally:
        engine.dispose()


def test_0002_moves_the_intents_index_to_creation_time_and_keeps_the_intents(journal_url):
    when = datetime(2024, 3, 1, 21, tzinfo=UTC)
    with Journal(journal_url) as j:
        j.orders.record_intents(
            [Intent(f"sv1|s|{sym}|x", "s", sym, when, "BUY", 10) for sym in ("AAA", "BBB")]
        )
    assert _intent_indexes(journal_url) == {"ix_order_intents_created_at"}
    engine = create_engine(journal_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
    finally:
        engine.dispose()
    assert _intent_indexes(journal_url) == {"ix_order_intents_strategy_symbol_bar_time"}
    with Journal(journal_url) as j:  # opening upgrades it again
        assert j.schema_revision() == "0002"
        refs = [o.order_ref for o in j.orders.list_orders()]
    assert sorted(refs) == ["sv1|s|AAA|x", "sv1|s|BBB|x"]
    assert _intent_indexes(journal_url) == {"ix_order_intents_created_at"}


def test_open_without_migrate_refuses_an_old_schema(journal_url):
    try:
        Journal(journal_url, migrate=False).open()
    except JournalError as exc:
        assert "(empty)" in str(exc) and head_revision() in str(exc)
    else:
        raise AssertionError("expected JournalError")
    assert _tables(journal_url) == set()  # nothing written
    with Journal(journal_url):
        pass
    with Journal(journal_url, migrate=False) as j:  # at head: fine
        assert j.schema_revision() == head_revision()


def test_unknown_newer_revision_is_refused(journal_url):
    with Journal(journal_url):
        pass
    engine = create_engine(journal_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    engine.dispose()
    j = Journal(journal_url)
    try:
        j.open()
    except JournalError as exc:
        assert "9999_future" in str(exc) and "newer StratVector" in str(exc)
    else:
        raise AssertionError("expected JournalError")


def test_sqlite_pragmas(tmp_path):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as j:
        assert j.sqlite_journal_mode() == "wal"
        with j.read() as s:
            conn = s.connection()
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    # WAL is a property of the file: a plain connection sees it too.
    import sqlite3

    with sqlite3.connect(tmp_path / "j.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_postgres_has_no_journal_mode(journal):
    if journal.backend == "sqlite":
        assert journal.sqlite_journal_mode() == "wal"
    else:
        assert journal.sqlite_journal_mode() is None


def test_packaged_head_constant_matches_the_migration_scripts():
    # a new revision without HEAD moved would leave journals unmigrated
    assert head_revision() == migrate.HEAD


def test_opening_an_up_to_date_journal_does_not_load_alembic(tmp_path):
    path = tmp_path / "j.db"
    Journal(path=path).open().close()  # creates and migrates (loads Alembic here)
    code = (
        "import sys\n"
        "from stratvector.store import Journal\n"
        f"j = Journal(path={str(path)!r}).open()\n"
        "assert j.schema_revision() is not None\n"
        "j.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
