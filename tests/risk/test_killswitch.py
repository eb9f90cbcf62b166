"""The kill switch against a real SQLite journal: persisted, shared across instances and
processes, cleared by resume, latched when the journal cannot be written."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratvector.risk import (
    AccountState,
    Breach,
    KillSwitch,
    RiskChecker,
    RiskLimits,
)
from stratvector.store import Journal, JournalError

AT = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def journal(url: str) -> Iterator[Journal]:
    with Journal(url) as j:
        yield j


@pytest.fixture
def other(url: str, journal: Journal) -> Iterator[Journal]:
    """A second connection to the same file, as the CLI or dashboard would open it."""
    with Journal(url) as j:
        yield j


def daily_loss_breaches() -> tuple[Breach, ...]:
    checker = RiskChecker(RiskLimits(max_daily_loss=0.03))
    breaches = checker.check_account(AccountState(96_000.0, 100_000.0, 100_000.0), AT)
    assert breaches and breaches[0].trips_kill
    return breaches


def test_trip_persists_the_halt_and_logs_the_breaches(journal, other):
    switch = KillSwitch(journal)
    assert not switch.is_halted() and switch.reason() is None
    breaches = daily_loss_breaches()
    switch.trip("daily loss limit", breaches, at=AT)

    assert switch.is_halted()
    assert switch.reason() == "daily loss limit"
    state = other.control.state()
    assert state.halted and state.reason == "daily loss limit" and state.actor == "risk"
    assert state.changed_at == AT
    assert other.control.is_halted("any-strategy")
    assert KillSwitch(other).is_halted()  # a new process's switch sees it too

    events = other.events.list_events()
    assert [e.kind for e in events] == ["limit_breach", "kill_switch"]  # newest first
    breach_event = other.events.list_events(kind="limit_breach")[0]
    assert breach_event.severity == "error"
    assert breach_event.at == AT
    assert breach_event.detail == {
        "scope": "*",
        "reason": "daily loss limit",
        "actor": "risk",
        "breaches": [asdict(b) for b in breaches],
    }
    assert breach_event.message == f"kill switch *: {breaches[0].message}"
    kill_event = other.events.list_events(kind="kill_switch")[0]
    assert kill_event.detail["reason"] == "daily loss limit"


def test_resume_from_another_instance_clears_it(journal, other):
    switch = KillSwitch(journal)
    switch.trip("drawdown", daily_loss_breaches(), at=AT)
    assert switch.is_halted()
    other.control.resume(actor="ops", reason="reviewed")
    assert not switch.is_halted()
    assert switch.reason() is None
    switch.trip("drawdown again", at=AT + timedelta(minutes=1))  # can trip again
    assert other.control.state().reason == "drawdown again"


def test_halt_and_resume_from_the_cli_process_take_effect(url, journal):
    switch = KillSwitch(journal)

    def cli(*args: str) -> None:
        code = "import sys; from stratvector.cli import main; sys.exit(main(sys.argv[1:]))"
        subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)

    db = url.removeprefix("sqlite:///")
    cli("halt", "--journal", db, "operator check")
    assert switch.is_halted()
    assert switch.reason() == "operator check"
    cli("resume", "--journal", db)
    assert not switch.is_halted()


def test_trip_without_breaches_logs_only_the_halt(journal):
    KillSwitch(journal).trip("manual flatten", actor="ops@desk", at=AT)
    assert [e.kind for e in journal.events.list_events()] == ["kill_switch"]
    assert journal.control.state().actor == "ops@desk"


def test_tripping_a_halted_scope_keeps_the_first_cause_and_logs_the_new_breach(journal):
    switch = KillSwitch(journal)
    switch.trip("daily loss limit", daily_loss_breaches(), at=AT)
    switch.trip("drawdown limit", daily_loss_breaches(), at=AT + timedelta(minutes=5))
    state = journal.control.state()
    assert state.reason == "daily loss limit" and state.changed_at == AT
    assert [e.kind for e in journal.events.list_events()] == [
        "limit_breach",
        "limit_breach",
        "kill_switch",
    ]


def test_strategy_scope(journal, other):
    momentum = KillSwitch(journal, strategy="momentum")
    meanrev = KillSwitch(journal, strategy="meanrev")
    everything = KillSwitch(journal)
    assert momentum.scope == "momentum" and everything.scope == "*"

    momentum.trip("drift", daily_loss_breaches(), at=AT)
    assert momentum.is_halted()
    assert not meanrev.is_halted() and not everything.is_halted()
    assert other.control.is_halted("momentum") and not other.control.is_halted()
    assert other.events.list_events(kind="limit_breach")[0].strategy == "momentum"

    other.control.halt("all stop", actor="ops")
    assert meanrev.is_halted() and meanrev.reason() == "all stop"
    assert momentum.reason() == "all stop"  # the global halt is named first
    other.control.resume(actor="ops")
    assert momentum.reason() == "drift" and not meanrev.is_halted()
    other.control.resume(actor="ops", scope="momentum")
    assert not momentum.is_halted()


def test_a_trip_that_cannot_be_written_is_latched_until_the_journal_is_back(url):
    closed = Journal(url)  # not open: every call raises JournalError
    switch = KillSwitch(closed)  # no I/O in the constructor
    with pytest.raises(JournalError):
        switch.trip("daily loss limit", daily_loss_breaches(), at=AT)
    assert switch.is_halted()  # latched, though the journal is unreachable
    assert switch.reason() == "daily loss limit"

    closed.open()
    assert switch.is_halted()  # this call writes the pending halt and event
    with Journal(url) as reader:
        state = reader.control.state()
        assert state.halted and state.reason == "daily loss limit" and state.changed_at == AT
        assert {e.kind for e in reader.events.list_events()} == {"kill_switch", "limit_breach"}
        reader.control.resume(actor="ops")
    assert not switch.is_halted()  # from now on the journal decides
    closed.close()


def test_reading_an_unreachable_journal_raises(url):
    switch = KillSwitch(Journal(url))
    with pytest.raises(JournalError, match="not open"):
        switch.is_halted()


def test_argument_validation(journal):
    with pytest.raises(ValueError, match="strategy name"):
        KillSwitch(journal, strategy="*")
    with pytest.raises(ValueError, match="strategy name"):
        KillSwitch(journal, strategy="")
    switch = KillSwitch(journal)
    with pytest.raises(ValueError, match="needs a reason"):
        switch.trip("  ")
    with pytest.raises(ValueError, match="tz-aware"):
        switch.trip("x", at=datetime(2024, 1, 1))
    assert not switch.is_halted()
