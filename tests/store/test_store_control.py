"""The kill switch persists across reopen and is logged with who and why."""

from __future__ import annotations

from stratvector.store import GLOBAL, Journal


def test_halt_and_resume_persist_across_reopen(journal_url):
    with Journal(journal_url) as j:
        assert not j.control.is_halted()
        assert j.control.state().changed_at is None
        state = j.control.halt("daily loss limit hit", actor="risk", event_kind="kill_switch")
        assert state.halted and state.scope == GLOBAL
    with Journal(journal_url) as j:  # a restart, or another process (the CLI)
        state = j.control.state()
        assert state.halted and state.reason == "daily loss limit hit" and state.actor == "risk"
        assert state.changed_at is not None and state.changed_at.tzinfo is not None
        assert j.control.is_halted() and j.control.is_halted("momentum")
        j.control.resume(actor="ops", reason="reviewed")
    with Journal(journal_url) as j:
        assert not j.control.is_halted()
        assert j.control.state().actor == "ops"
        kinds = [e.kind for e in j.events.list_events()]
        assert kinds == ["resume", "kill_switch"]  # newest first
        kill = j.events.list_events(kind="kill_switch")[0]
        assert kill.severity == "warning"
        assert kill.detail == {
            "scope": "*",
            "actor": "risk",
            "reason": "daily loss limit hit",
            "was_halted": False,
        }


def test_strategy_scope(journal):
    journal.control.halt("drift too high", scope="momentum", actor="drift")
    assert journal.control.is_halted("momentum")
    assert not journal.control.is_halted("meanrev")
    assert not journal.control.is_halted()
    assert [h.scope for h in journal.control.halted_scopes()] == ["momentum"]
    journal.control.halt("everything", actor="ops")
    assert journal.control.is_halted("meanrev")
    assert [h.scope for h in journal.control.halted_scopes()] == ["*", "momentum"]
    journal.control.resume(scope="momentum", actor="ops")
    assert [h.scope for h in journal.control.halted_scopes()] == ["*"]


def test_halt_needs_a_reason_and_defaults_the_actor(journal):
    import pytest

    with pytest.raises(ValueError, match="reason"):
        journal.control.halt("  ")
    state = journal.control.halt("manual")
    assert state.actor and "@" in state.actor
