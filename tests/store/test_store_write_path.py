"""The hot write path (mark_submitted, record_status, record_fill, record_commission).

These methods are written with SQL Core statements rather than the ORM; the tests pin
what they must keep: the record returned equals what a fresh read returns, the status
rules (repeats, terminal states, filled never decreasing), fills marking orders Filled,
and that a writer waiting for another one acts on what that one committed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from stratvector.store import INTENT, OrderIdConflictError, make_order_ref
from stratvector.store.models import Fill, Order, OrderIntent

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
UNSET_DOUBLE = 1.7976931348623157e308


def _intent(journal, symbol="AAPL", qty=100.0, account=None):
    ref = make_order_ref("momentum", symbol, T0)
    journal.orders.record_intent(
        ref, "momentum", symbol, T0, "BUY", qty, account=account, detail={"price": 185.25}
    )
    return ref


def _order_account(journal, ref):
    with journal.read() as s:
        return s.scalars(
            select(Order.account).join(OrderIntent).where(OrderIntent.order_ref == ref)
        ).one()


def _same_as_read(journal, rec):
    fresh = journal.orders.get(rec.order_ref)
    assert rec == fresh
    return fresh


# ---------------------------------------------------------------------- returned records


def test_mark_submitted_returns_what_a_read_returns(journal):
    ref = _intent(journal, account="DU1")
    first = journal.orders.mark_submitted(ref, 17, client_id=3, at=T0)
    _same_as_read(journal, first)
    assert (first.status, first.ib_order_id, first.client_id, first.perm_id) == (
        "PendingSubmit",
        17,
        3,
        None,
    )
    assert (first.filled, first.remaining, first.submitted_at) == (0.0, 100.0, T0)
    assert first.detail == {"price": 185.25} and first.account == "DU1"
    later = T0 + timedelta(seconds=5)
    again = journal.orders.mark_submitted(ref, 17, 900001, client_id=3, account="DU9", at=later)
    _same_as_read(journal, again)
    assert again.perm_id == 900001
    assert again.submitted_at == T0  # the first submission time stays
    assert again.updated_at >= first.updated_at
    assert _order_account(journal, ref) == "DU1"  # the intent's account, kept once set


def test_mark_submitted_keeps_the_account_given_first(journal):
    ref = _intent(journal, account=None)
    journal.orders.mark_submitted(ref, 1, account="DU2")
    journal.orders.mark_submitted(ref, 1, account="DU3")
    assert _order_account(journal, ref) == "DU2"


def test_record_status_returns_what_a_read_returns(journal):
    ref = _intent(journal)
    # before mark_submitted (reconciliation found the order at IB first)
    rec = journal.orders.record_status(ref, "PreSubmitted", 0, 100, perm_id=77, ib_order_id=5)
    _same_as_read(journal, rec)
    assert (rec.status, rec.perm_id, rec.ib_order_id, rec.submitted_at) == (
        "PreSubmitted",
        77,
        5,
        None,
    )
    rec = journal.orders.record_status(ref, "Submitted", 40, 60, 185.0, last_fill_price=185.0)
    _same_as_read(journal, rec)
    assert (rec.filled, rec.remaining, rec.avg_fill_price, rec.last_fill_price) == (
        40,
        60,
        185.0,
        185.0,
    )
    rec = journal.orders.record_status(ref, "Filled", 100, 0, 185.5, last_fill_price=186.0)
    _same_as_read(journal, rec)
    late = journal.orders.record_status(ref, "Submitted", 40, 60, 185.0)
    assert _same_as_read(journal, late) == rec  # nothing changed, not even updated_at


def test_record_fill_and_commission_return_what_a_read_returns(journal):
    ref = _intent(journal)
    journal.orders.mark_submitted(ref, 17, 900001)
    fill = journal.fills.record_fill(
        "e1", ref, T0, 60, 10.0, "BOT", ib_order_id=17, perm_id=900001, exchange="ISLAND"
    )
    assert fill.created
    assert dataclasses.replace(fill, created=False) == journal.fills.get("e1")
    assert (fill.strategy, fill.symbol, fill.side, fill.time) == ("momentum", "AAPL", "BUY", T0)
    replay = journal.fills.record_fill("e1", ref, T0, 60, 10.0, "BUY")
    assert not replay.created and replay == journal.fills.get("e1")

    with_commission = journal.fills.record_commission("e1", 1.25, "USD", realized_pnl=7.5)
    assert with_commission == journal.fills.get("e1")
    assert (with_commission.commission, with_commission.commission_currency) == (1.25, "USD")
    assert with_commission.realized_pnl == 7.5
    # a later report without currency or P&L keeps them; the commission is replaced
    later = journal.fills.record_commission("e1", 2.0, None, realized_pnl=UNSET_DOUBLE)
    assert later == journal.fills.get("e1")
    assert (later.commission, later.commission_currency, later.realized_pnl) == (2.0, "USD", 7.5)
    cleared = journal.fills.record_commission("e1", UNSET_DOUBLE)  # last report wins
    assert cleared.commission is None and cleared == journal.fills.get("e1")


def test_replayed_fill_keeps_a_known_commission_and_first_values(journal):
    ref = _intent(journal)
    journal.fills.record_fill("e1", ref, T0, 60, 10.0, "BUY", commission=1.0)
    replay = journal.fills.record_fill(
        "e1", ref, T0, 60, 99.0, "BUY", commission=5.0, commission_currency="EUR"
    )
    assert not replay.created and replay == journal.fills.get("e1")
    assert (replay.price, replay.commission, replay.commission_currency) == (10.0, 1.0, None)
    missing = journal.fills.record_fill("e2", ref, T0, 1, 10.0, "BUY")
    assert missing.commission is None
    filled_in = journal.fills.record_fill(
        "e2", ref, T0, 1, 10.0, "BUY", commission=0.5, commission_currency="USD", realized_pnl=3
    )
    assert filled_in == journal.fills.get("e2")
    assert (filled_in.commission, filled_in.commission_currency, filled_in.realized_pnl) == (
        0.5,
        "USD",
        3.0,
    )


# ---------------------------------------------------------------------- status rules


def test_only_a_repeat_of_the_newest_entry_is_skipped(journal):
    ref = _intent(journal)
    journal.orders.mark_submitted(ref, 1, at=T0)
    for i, status in enumerate(["Submitted", "Submitted", "PreSubmitted", "Submitted"], 1):
        journal.orders.record_status(ref, status, 0, 100, at=T0 + timedelta(seconds=i))
    # same numbers, other message: still a repeat
    journal.orders.record_status(ref, "Submitted", 0, 100, message="again")
    # same status, another remaining: not a repeat
    journal.orders.record_status(ref, "Submitted", 0, 90)
    history = journal.orders.history(ref)
    assert [(h.status, h.remaining) for h in history] == [
        ("PendingSubmit", 100),
        ("Submitted", 100),
        ("PreSubmitted", 100),
        ("Submitted", 100),
        ("Submitted", 90),
    ]
    assert history[1].at == T0 + timedelta(seconds=1)  # the first of the repeats is kept


def test_filled_never_decreases_and_terminal_states_stay(journal):
    ref = _intent(journal)
    journal.orders.mark_submitted(ref, 1)
    journal.orders.record_status(ref, "Submitted", 40, 60, 185.0, last_fill_price=185.0)
    # an older report arriving late: the status moves, the fill numbers do not go back
    rec = journal.orders.record_status(ref, "PreSubmitted", 0, 100, last_fill_price=184.0)
    assert (rec.status, rec.filled, rec.remaining, rec.avg_fill_price) == (
        "PreSubmitted",
        40,
        60,
        185.0,
    )
    assert rec.last_fill_price == 184.0
    cancelled = journal.orders.record_status(ref, "Cancelled", 40, 0, 185.0)
    late = journal.orders.record_status(ref, "Submitted", 60, 40, 186.0, last_fill_price=187.0)
    assert late == cancelled and late.status == "Cancelled" and late.filled == 40
    assert journal.orders.history(ref)[-1].status == "Submitted"  # kept in the history
    # a terminal report after a terminal one does change the state
    filled = journal.orders.record_status(ref, "Filled", 100, 0, 185.6)
    assert (filled.status, filled.filled, filled.avg_fill_price) == ("Filled", 100, 185.6)


def test_record_status_id_conflicts_write_nothing(journal):
    a = _intent(journal, "AAPL")
    b = _intent(journal, "MSFT")
    journal.orders.mark_submitted(a, 1, 500)
    journal.orders.mark_submitted(b, 2)
    with pytest.raises(OrderIdConflictError, match="already belongs"):
        journal.orders.record_status(b, "Submitted", 0, 100, perm_id=500)
    with pytest.raises(OrderIdConflictError, match="sent twice"):
        journal.orders.record_status(b, "Submitted", 0, 100, ib_order_id=3)
    with pytest.raises(OrderIdConflictError, match="perm id"):
        journal.orders.record_status(a, "Submitted", 0, 100, perm_id=501)
    assert [h.status for h in journal.orders.history(b)] == ["PendingSubmit"]
    assert journal.orders.get(b).perm_id is None and journal.orders.get(b).ib_order_id == 2
    c = _intent(journal, "NVDA")  # no order row yet: the conflict must not create one
    with pytest.raises(OrderIdConflictError, match="already belongs"):
        journal.orders.record_status(c, "Submitted", 0, 100, perm_id=500)
    assert journal.orders.get(c).status == INTENT and journal.orders.history(c) == []
    # perm id 0 is IB's "not assigned yet"
    assert journal.orders.record_status(b, "Submitted", 0, 100, perm_id=0).perm_id is None


# ---------------------------------------------------------------------- fills mark Filled


def test_fills_covering_the_quantity_mark_filled_with_the_average_price(journal):
    ref = _intent(journal, qty=100)
    journal.orders.mark_submitted(ref, 1, 9001)
    journal.fills.record_fill("e1", ref, T0, 30, 10.0, "BUY")
    journal.fills.record_fill("e2", ref, T0 + timedelta(seconds=1), 30, 10.5, "BUY")
    assert journal.orders.get(ref).status == "PendingSubmit"
    at = T0 + timedelta(seconds=2)
    journal.fills.record_fill("e3", ref, at, 40, 11.25, "BUY")
    order = journal.orders.get(ref)
    assert (order.status, order.filled, order.remaining) == ("Filled", 100, 0)
    assert order.avg_fill_price == pytest.approx((30 * 10.0 + 30 * 10.5 + 40 * 11.25) / 100)
    last = journal.orders.history(ref)[-1]
    assert (last.status, last.source, last.at, last.filled) == ("Filled", "fills", at, 100)
    assert last.message == "fills cover the intent's quantity"
    # IB's own final report with the same numbers is a repeat; a replayed fill adds nothing
    journal.orders.record_status(ref, "Filled", 100, 0, order.avg_fill_price)
    journal.fills.record_fill("e3", ref, at, 40, 11.25, "BUY")
    assert len(journal.orders.history(ref)) == 2


def test_fills_without_a_submission_create_a_filled_order(journal):
    ref = _intent(journal, qty=10)
    journal.fills.record_fill("e1", ref, T0, 12, 5.0, "BUY")  # over-filled
    order = journal.orders.get(ref)
    assert (order.status, order.filled, order.remaining, order.avg_fill_price) == (
        "Filled",
        12,
        0,
        5.0,
    )
    assert order.ib_order_id is None and order.submitted_at is None
    assert [(h.status, h.source) for h in journal.orders.history(ref)] == [("Filled", "fills")]


def test_fills_do_not_touch_a_terminal_order(journal):
    ref = _intent(journal, qty=10)
    journal.orders.mark_submitted(ref, 1)
    cancelled = journal.orders.record_status(ref, "Cancelled", 0, 10)
    journal.fills.record_fill("e1", ref, T0, 10, 5.0, "BUY")
    assert journal.orders.get(ref) == cancelled
    assert len(journal.orders.history(ref)) == 2


# ---------------------------------------------------------------------- concurrent writers


def _behind_a_writer(journal, ref, change, call):
    """Run ``call`` in a thread while another transaction holds the intent's lock and
    makes ``change``; commit that one after a while. Returns what ``call`` returned."""
    out: list = []
    with journal.write() as s:
        s.execute(select(OrderIntent.id).where(OrderIntent.order_ref == ref).with_for_update())
        change(s)
        worker = threading.Thread(target=lambda: out.append(call()))
        worker.start()
        time.sleep(0.5)  # the call must wait for this transaction
        assert not out, "the call did not wait for the writer holding the intent"
    worker.join(30)
    assert out
    return out[0]


def test_a_waiting_status_report_sees_what_the_other_writer_committed(journal):
    ref = _intent(journal)
    journal.orders.mark_submitted(ref, 1)
    journal.orders.record_status(ref, "Submitted", 0, 100)

    def fill_it(s):
        s.execute(
            update(Order)
            .where(
                Order.intent_id
                == select(OrderIntent.id).where(OrderIntent.order_ref == ref).scalar_subquery()
            )
            .values(status="Filled", filled=100.0, remaining=0.0, avg_fill_price=10.0)
        )

    rec = _behind_a_writer(
        journal, ref, fill_it, lambda: journal.orders.record_status(ref, "Submitted", 50, 50, 9.0)
    )
    assert (rec.status, rec.filled, rec.remaining, rec.avg_fill_price) == ("Filled", 100, 0, 10)
    assert journal.orders.get(ref) == rec


def test_a_waiting_fill_counts_the_fill_the_other_writer_committed(journal):
    ref = _intent(journal, qty=100)
    journal.orders.mark_submitted(ref, 1)

    def add_fill(s):
        intent_id = s.scalars(select(OrderIntent.id).where(OrderIntent.order_ref == ref)).one()
        s.execute(
            insert(Fill).values(
                exec_id="e1",
                intent_id=intent_id,
                order_ref=ref,
                strategy="momentum",
                symbol="AAPL",
                side="BUY",
                quantity=60.0,
                price=10.0,
                time=T0,
                recorded_at=T0,
            )
        )

    fill = _behind_a_writer(
        journal, ref, add_fill, lambda: journal.fills.record_fill("e2", ref, T0, 40, 11.0, "BUY")
    )
    assert fill.created
    order = journal.orders.get(ref)
    assert (order.status, order.filled) == ("Filled", 100)
    assert order.avg_fill_price == pytest.approx(10.4)


# ---------------------------------------------------------------------- intents on SQLite


def _intents(n: int, at: datetime) -> list:
    from stratvector.store.intents import Intent

    return [
        Intent(
            order_ref=make_order_ref("momentum", f"S{i}", at, "stop" if i % 3 == 2 else None),
            strategy="momentum",
            symbol=f"S{i}",
            bar_time=at,
            side="SELL" if i % 2 else "BUY",
            quantity=10.5 + i,
            order_type="STP" if i % 3 == 2 else ("LMT" if i % 3 == 1 else "MKT"),
            limit_price=101.25 if i % 3 == 1 else None,
            stop_price=95.0 if i % 3 == 2 else None,
            time_in_force="GTC" if i % 3 == 2 else "DAY",
            account="DU1" if i % 2 else None,
            target=[0.5, -0.25, None][i % 3],
            detail={"price": 100.0 + i, "nested": {"a": [1, 2.5, None]}, "é": "ü"},
            created_at=at + timedelta(microseconds=i),
        )
        for i in range(n)
    ]


def test_sqlite_intent_insert_writes_exactly_the_rows_sqlalchemy_writes(tmp_path):
    """A bar's intents are inserted through sqlite3 itself on SQLite; the stored values
    (types included) and what the ORM reads back equal what SQLAlchemy's insert writes.
    Over 999 variables, the insert is split into several statements."""
    from sqlalchemy import text

    from stratvector.store import open_journal
    from stratvector.store._sql import insert_ignore_many
    from stratvector.store.intents import intent_values

    fast = open_journal(f"sqlite:///{tmp_path / 'fast.db'}")
    core = open_journal(f"sqlite:///{tmp_path / 'core.db'}")
    intents = _intents(150, T0)  # 150 rows x 14 columns: three statements
    records = fast.orders.record_intents(intents)
    assert all(r.created for r in records)
    with core.write() as s:
        rows = [intent_values(i) for i in intents]
        assert len(insert_ignore_many(s, OrderIntent, rows, ["order_ref"], "order_ref")) == 150

    def stored(journal):
        cols = ", ".join(f"{c}, typeof({c})" for c in OrderIntent.__table__.c.keys())  # noqa: SIM118
        with journal.read() as s:
            return s.execute(text(f"SELECT {cols} FROM order_intents ORDER BY id")).all()

    assert stored(fast) == stored(core)
    assert [fast.orders.get(r.order_ref) for r in records] == [
        core.orders.get(r.order_ref) for r in records
    ]
    # what the call returns is what a read returns (but for ``created``)
    assert [dataclasses.replace(r, created=False) for r in records] == [
        fast.orders.get(r.order_ref) for r in records
    ]
    fast.close()
    core.close()


def test_a_batch_without_creation_times_gets_one(journal):
    """Intents of one batch without their own ``created_at`` share the batch's: they
    are written in one transaction."""
    intents = [dataclasses.replace(i, created_at=None) for i in _intents(5, T0)]
    before = datetime.now(UTC)
    records = journal.orders.record_intents(intents)
    stamps = {r.created_at for r in records}
    assert len(stamps) == 1 and before <= stamps.pop() <= datetime.now(UTC)
    assert [journal.orders.get(r.order_ref) for r in records] == [
        dataclasses.replace(r, created=False) for r in records
    ]


def test_sqlite_intent_insert_replays_and_conflicts_in_one_batch(tmp_path):
    """Journaled again, the same intents are replays (not created), a changed one is a
    conflict, and a new one in the same batch is still written."""
    from stratvector.store import IntentConflictError, open_journal

    journal = open_journal(f"sqlite:///{tmp_path / 'j.db'}")
    first = _intents(4, T0)
    journal.orders.record_intents(first)
    changed = dataclasses.replace(first[1], quantity=999.0)
    new = _intents(6, T0)[5]
    out = journal.orders.record_intents([first[0], changed, first[3], new])
    assert [getattr(r, "created", None) for r in out] == [False, None, False, True]
    assert isinstance(out[1], IntentConflictError)
    assert "quantity: journaled 11.5, now 999.0" in str(out[1])
    assert journal.orders.get(new.order_ref) is not None
    journal.close()


def test_sqlite_intent_insert_rolls_back_a_failed_batch(tmp_path):
    """A row the database refuses (here a CHECK constraint, bypassing the validation)
    rolls back the whole batch and is raised as SQLAlchemy's IntegrityError; the next
    batch is written normally."""
    from sqlalchemy.exc import IntegrityError

    from stratvector.store import open_journal
    from stratvector.store._sql import sqlite_insert_ignore_many
    from stratvector.store.intents import intent_values

    journal = open_journal(f"sqlite:///{tmp_path / 'j.db'}")
    rows = [intent_values(i) for i in _intents(3, T0)]
    rows[2]["side"] = "HOLD"
    with pytest.raises(IntegrityError), journal.sqlite_write() as conn:
        sqlite_insert_ignore_many(
            conn, journal.dialect, OrderIntent.__table__, rows, ["order_ref"], "order_ref"
        )
    assert all(journal.orders.get(r["order_ref"]) is None for r in rows)
    assert all(r.created for r in journal.orders.record_intents(_intents(3, T0)))
    journal.close()


def test_mark_submitted_many_equals_one_call_each_and_isolates_a_refused_one(journal):
    """A placed batch journaled in one transaction: each record equals what
    mark_submitted returns for it alone; an unknown ref and an id conflict are returned
    as errors and write nothing, while the others are written."""
    from stratvector.store import UnknownOrderError

    refs = [_intent(journal, symbol=s, account="DU1") for s in ("AAA", "BBB", "CCC")]
    journal.orders.mark_submitted(refs[2], 30, client_id=3, at=T0)  # already sent as 30
    out = journal.orders.mark_submitted_many(
        [(refs[0], 10), ("sv1|nope|X|20240102T143000Z", 11), (refs[1], 20), (refs[2], 31)],
        client_id=3,
        at=T0,
    )
    assert isinstance(out[1], UnknownOrderError)
    assert isinstance(out[3], OrderIdConflictError)
    for rec in (out[0], out[2]):
        assert rec == journal.orders.get(rec.order_ref)
        assert (rec.status, rec.client_id, rec.submitted_at, rec.account) == (
            "PendingSubmit",
            3,
            T0,
            "DU1",
        )
    assert (out[0].ib_order_id, out[2].ib_order_id) == (10, 20)
    assert journal.orders.get(refs[2]).ib_order_id == 30  # the conflict wrote nothing
    # the same as one call each (an idempotent repeat; only the update time moves)
    again = journal.orders.mark_submitted(refs[0], 10, client_id=3, at=T0)
    assert dataclasses.replace(again, updated_at=None) == dataclasses.replace(
        out[0], updated_at=None
    )
