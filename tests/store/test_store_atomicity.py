"""Failures leave nothing half-written: migrations roll back whole, writes are atomic."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import OperationalError

from stratvector.store import Journal, JournalError, JournalUnavailableError, make_order_ref
from stratvector.store import migrate as migrate_module

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def test_failed_migration_rolls_back_entirely(journal_url, monkeypatch):
    real_upgrade = migrate_module.upgrade_to_head

    def upgrade_then_fail(conn):
        real_upgrade(conn)  # every table created...
        raise OperationalError("simulated", {}, Exception("disk full during migration"))

    monkeypatch.setattr(migrate_module, "upgrade_to_head", upgrade_then_fail)
    with pytest.raises(JournalError, match="disk full during migration"):
        Journal(journal_url).open()
    engine = create_engine(journal_url)
    try:
        assert inspect(engine).get_table_names() == []  # ...and all rolled back
    finally:
        engine.dispose()
    monkeypatch.undo()
    with Journal(journal_url) as j:  # and the next open migrates cleanly
        assert j.orders.pending_intents() == []


def test_a_failed_write_commits_nothing(journal):
    ref = make_order_ref("m", "AAPL", T0)
    journal.orders.record_intent(ref, "m", "AAPL", T0, "BUY", 1)
    with pytest.raises(RuntimeError), journal.write() as s:
        from stratvector.store.events import add_event

        add_event(s, "connect")
        raise RuntimeError("boom")
    assert journal.events.list_events() == []


def test_sqlite_writer_locked_out_gets_a_clear_error(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path=path, busy_timeout=0.2) as journal:
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            with pytest.raises(JournalUnavailableError, match="locked") as info:
                journal.events.record_event("connect")
            assert "nothing was written" in str(info.value)
            # Readers are not blocked by a writer in WAL mode.
            assert journal.events.list_events() == []
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        journal.events.record_event("connect")  # and it works once the lock is gone
        assert len(journal.events.list_events()) == 1
