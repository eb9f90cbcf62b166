"""The journal's WAL checkpoints on SQLite: automatic ones can be turned off (the
trader's journal), and :meth:`Journal.checkpoint` copies the log into the database
file, with writers committing meanwhile; on PostgreSQL it is nothing to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stratvector.store import Journal, make_order_ref

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def _write(journal: Journal, n: int, start: int = 0) -> None:
    for k in range(start, start + n):
        t = T0 + timedelta(days=k)
        journal.orders.record_intent(
            make_order_ref("s", "AAPL", t), "s", "AAPL", t, "BUY", 1.0, detail={"k": k}
        )


def _autocheckpoint(journal: Journal) -> int:
    with journal.sqlite_write() as conn:
        return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_automatic_checkpoints_can_be_turned_off_and_run_by_hand(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url, autocheckpoint=False).open() as journal:
        assert _autocheckpoint(journal) == 0
        _write(journal, 400)  # ~3 pages a commit: past SQLite's 1,000-page default
        busy, frames, done = journal.checkpoint()
        assert busy == 0 and frames > 1000 and done == frames  # nothing was copied before
        _write(journal, 10, start=400)
        busy, frames, done = journal.checkpoint()
        assert busy == 0 and done == frames  # the log restarted: only the new frames
        assert frames < 100
    with Journal(url).open() as journal:  # the default: SQLite's own
        assert _autocheckpoint(journal) == 1000
        assert len(journal.orders.pending_intents()) == 410  # nothing lost


def test_a_writer_commits_while_a_checkpoint_has_a_reader_waiting(tmp_path: Path) -> None:
    with Journal(f"sqlite:///{tmp_path / 'j.db'}", autocheckpoint=False).open() as journal:
        _write(journal, 50)
        with journal.read() as s:  # a reader holding a snapshot: the checkpoint stops short
            s.connection().exec_driver_sql("SELECT count(*) FROM order_intents").one()
            _write(journal, 5, start=50)  # a writer is not blocked by it either
            busy, frames, done = journal.checkpoint()
            assert busy == 0 and done <= frames
        _write(journal, 5, start=55)
        assert len(journal.orders.pending_intents()) == 60


def test_checkpoint_is_nothing_to_do_on_postgresql(pg_schema_url: str) -> None:
    with Journal(pg_schema_url).open() as journal:
        assert journal.checkpoint() is None
