"""A journal that cannot be opened: one clear message, password masked, nothing written."""

from __future__ import annotations

import socket

import pytest

from stratvector.errors import StratVectorError
from stratvector.store import Journal, JournalError, mask_url, open_journal
from stratvector.store.engine import resolve_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_constructor_does_no_io(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "journal.db"
    journal = Journal(f"sqlite:///{missing}")  # must not raise or touch the disk
    assert not journal.is_open
    assert not missing.parent.exists()
    Journal("postgresql://u:pw@127.0.0.1:1/db")  # no connection attempt either


def test_sqlite_in_missing_folder(tmp_path):
    missing = tmp_path / "nope" / "journal.db"
    with pytest.raises(JournalError) as info:
        open_journal(f"sqlite:///{missing}")
    message = str(info.value)
    assert isinstance(info.value, StratVectorError)
    assert str(missing.parent) in message and "does not exist" in message
    assert "\n" not in message
    assert not missing.parent.exists()  # nothing half-written


def test_sqlite_path_argument_in_missing_folder(tmp_path):
    with pytest.raises(JournalError, match="does not exist"):
        open_journal(path=tmp_path / "nope" / "journal.db")


def test_sqlite_file_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "journal.db"
    bogus.write_bytes(b"this is not a database, just some text long enough" * 100)
    before = bogus.read_bytes()
    with pytest.raises(JournalError, match="not a database"):
        open_journal(f"sqlite:///{bogus}")
    assert bogus.read_bytes() == before


def test_sqlite_path_is_a_folder(tmp_path):
    with pytest.raises(JournalError, match="is a folder"):
        open_journal(path=tmp_path)


def test_unreachable_postgres_masks_password():
    port = _free_port()
    url = f"postgresql://trader:s3cr3t-pw@127.0.0.1:{port}/journal"
    with pytest.raises(JournalError) as info:
        open_journal(url, connect_timeout=3)
    message = str(info.value)
    assert "s3cr3t-pw" not in message
    assert f"postgresql+psycopg://trader:***@127.0.0.1:{port}/journal" in message
    assert "\n" not in message
    assert "running" in message or "check host" in message  # says what to check


def test_unsupported_backend():
    with pytest.raises(JournalError, match="backend 'mysql' is not supported") as info:
        open_journal("mysql://root:hunter2@localhost/db")
    assert "hunter2" not in str(info.value)


def test_garbage_url_masks_password():
    with pytest.raises(JournalError) as info:
        open_journal("postgresql://user:hunter2@host:notaport/db")
    assert "hunter2" not in str(info.value)


def test_using_a_closed_journal_says_so(tmp_path):
    journal = Journal(path=tmp_path / "j.db")
    with pytest.raises(JournalError, match="not open"):
        journal.orders.pending_intents()


def test_mask_url_variants():
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert "pw" not in mask_url("weird://u:pw@")


def test_url_resolution(tmp_path):
    assert resolve_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert resolve_url(str(tmp_path / "j.db")).database == str(tmp_path / "j.db")
    assert resolve_url(None, tmp_path / "j.db").get_backend_name() == "sqlite"
    with pytest.raises(JournalError, match="not both"):
        resolve_url("sqlite:///a.db", tmp_path / "b.db")


def test_default_path_follows_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with Journal() as journal:
        assert journal.url == f"sqlite:///{tmp_path / 'state' / 'stratvector' / 'journal.db'}"
    assert (tmp_path / "state" / "stratvector" / "journal.db").is_file()


def test_memory_journal_works():
    with Journal("sqlite://") as journal:
        journal.events.record_event("connect")
        assert len(journal.events.list_events()) == 1
