"""``Journal.sqlite_write``: SQLite's own connection for the decision's intents, kept
checked out between calls, with the journal's pragmas, never reused in a transaction
it could not end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

import stratvector.store.engine as engine_module
from stratvector.store import Journal


def _open(tmp_path: Path) -> Journal:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}").open()
    with journal.sqlite_write() as conn:
        conn.execute("CREATE TABLE probe (k INTEGER PRIMARY KEY, who TEXT)")
        conn.execute("CREATE TABLE child (k INTEGER REFERENCES probe (k))")
    return journal


def _count(journal: Journal, table: str = "probe") -> int:
    with journal.read() as s:
        return int(s.connection().exec_driver_sql(f"SELECT count(*) FROM {table}").scalar())


def test_one_connection_is_kept_with_the_journal_pragmas(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    seen = []
    for k in range(3):
        with journal.sqlite_write() as conn:
            conn.execute("INSERT INTO probe VALUES (?, 'main')", (k,))
            seen.append(conn)
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            assert (sync, keys) == (2, 1)  # FULL, on
        assert not conn.in_transaction
    assert seen[0] is seen[1] is seen[2]
    assert _count(journal) == 3
    journal.close()
    assert journal._kept is None


def test_a_second_thread_meanwhile_takes_a_pooled_connection(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    other: list[object] = []

    def write() -> None:
        with journal.sqlite_write() as conn:  # waits for the main thread's commit
            conn.execute("INSERT INTO probe VALUES (2, 'thread')")
            other.append(conn)

    with journal.sqlite_write() as mine:
        mine.execute("INSERT INTO probe VALUES (1, 'main')")
        thread = threading.Thread(target=write)
        thread.start()
        pool = journal._engine.pool  # the thread holds a second connection before we commit
        deadline = time.monotonic() + 5
        while pool.checkedout() < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert pool.checkedout() == 2
    thread.join(5)
    assert other and other[0] is not mine
    assert _count(journal) == 2
    with journal.sqlite_write() as again:  # the kept one is still the main one
        assert again is mine
    journal.close()


def test_a_failed_commit_is_rolled_back_and_the_connection_reused(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    with pytest.raises(IntegrityError), journal.sqlite_write() as conn:
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute("INSERT INTO probe VALUES (1, 'kept')")
        conn.execute("INSERT INTO child VALUES (99)")  # no probe 99: refused at COMMIT
    assert not conn.in_transaction
    assert _count(journal) == 0 and _count(journal, "child") == 0
    with journal.sqlite_write() as again:
        again.execute("INSERT INTO probe VALUES (1, 'kept')")
    assert again is conn
    assert _count(journal) == 1
    journal.close()


def test_a_transaction_that_cannot_be_ended_discards_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _open(tmp_path)
    monkeypatch.setattr(engine_module, "_rollback", lambda conn: None)  # ROLLBACK fails
    with pytest.raises(RuntimeError), journal.sqlite_write() as conn:
        conn.execute("INSERT INTO probe VALUES (1, 'lost')")
        raise RuntimeError("boom")
    assert journal._kept is None
    monkeypatch.undo()
    # the discarded connection was closed, so its open transaction holds no lock
    with journal.sqlite_write() as fresh:
        fresh.execute("INSERT INTO probe VALUES (2, 'fresh')")
    assert fresh is not conn
    with journal.read() as s:
        rows = s.connection().exec_driver_sql("SELECT k, who FROM probe").all()
    assert [tuple(r) for r in rows] == [(2, "fresh")]
    journal.close()
