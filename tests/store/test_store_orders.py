"""Order intents: idempotency, submission, status history, pending intents."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from stratvector.store import (
    ABANDONED,
    INTENT,
    Intent,
    IntentConflictError,
    OrderIdConflictError,
    UnknownOrderError,
    intents,
    make_order_ref,
    order_records,
    order_refs,
    orders,
    parse_order_ref,
)
from stratvector.store._status import ORDER_COLUMNS
from stratvector.store.intents import INTENT_FIELDS, INTENT_IDENTITY
from stratvector.store.order_records import OrderRecord

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _intent(journal, symbol="AAPL", bar_time=T0, qty=100.0, side="BUY", **kw):
    ref = make_order_ref("momentum", symbol, bar_time)
    return journal.orders.record_intent(ref, "momentum", symbol, bar_time, side, qty, **kw)


# ---------------------------------------------------------------------- order refs


def test_order_ref_is_deterministic_and_parses_back():
    ref = make_order_ref("momentum", "AAPL", T0)
    assert ref == "sv1|momentum|AAPL|20240102T143000Z"
    eastern = T0.astimezone(timezone(timedelta(hours=-5)))
    assert make_order_ref("momentum", "AAPL", eastern) == ref  # same instant, same ref
    parts = parse_order_ref(ref)
    assert parts is not None
    assert (parts.strategy, parts.symbol, parts.bar_time, parts.leg) == (
        "momentum",
        "AAPL",
        T0,
        None,
    )
    assert parse_order_ref(make_order_ref("m", "X", T0, leg="stop")).leg == "stop"
    assert parse_order_ref("manual order from TWS") is None
    assert parse_order_ref("") is None


def test_order_ref_refuses_bad_parts():
    with pytest.raises(ValueError, match="tz-aware"):
        make_order_ref("m", "AAPL", datetime(2024, 1, 2, 14, 30))
    with pytest.raises(ValueError, match="'\\|'"):
        make_order_ref("a|b", "AAPL", T0)


# ---------------------------------------------------------------------- intents


def test_record_intent_is_durable_and_idempotent(journal):
    first = _intent(journal, limit_price=None, target=0.5, detail={"price": 185.2})
    assert first.created and first.status == INTENT and not first.submitted
    assert first.bar_time == T0 and first.bar_time.tzinfo is not None
    again = _intent(journal, target=0.7, detail={"price": 185.3})  # sizing inputs may differ
    assert not again.created
    assert again.order_ref == first.order_ref and again.created_at == first.created_at
    assert again.target == 0.5  # the first write wins
    assert len(journal.orders.list_orders()) == 1


def test_same_ref_for_a_different_order_is_refused(journal):
    first = _intent(journal, qty=100)
    with pytest.raises(IntentConflictError, match="quantity") as info:
        _intent(journal, qty=120)
    assert info.value.existing.quantity == first.quantity
    with pytest.raises(IntentConflictError, match="side"):
        _intent(journal, side="SELL")
    assert journal.orders.get(first.order_ref).quantity == 100


def test_record_intents_writes_a_batch_in_one_transaction(journal):
    refs = [make_order_ref("m", sym, T0) for sym in ("AAPL", "MSFT", "NVDA")]
    journal.orders.record_intent(refs[1], "m", "MSFT", T0, "SELL", 5)  # journaled before
    journal.orders.record_intent(refs[2], "m", "NVDA", T0, "BUY", 7)
    batch = [
        Intent(refs[0], "m", "AAPL", T0, "BUY", 10, detail={"leg": None}),
        Intent(refs[1], "m", "MSFT", T0, "SELL", 5),  # the same order: a replay
        Intent(refs[2], "m", "NVDA", T0, "BUY", 8),  # the same ref, another order
        Intent(
            make_order_ref("m", "AAPL", T0, "stop"),
            "m",
            "AAPL",
            T0,
            "SELL",
            10,
            "STP",
            stop_price=95.0,
        ),
    ]
    out = journal.orders.record_intents(batch)
    assert [type(o).__name__ for o in out] == [
        "OrderRecord",
        "OrderRecord",
        "IntentConflictError",
        "OrderRecord",
    ]
    assert out[0].created and out[3].created and not out[1].created
    for fresh in (out[0], out[3]):  # built from the values written, equal to a read back
        assert dataclasses.replace(fresh, created=False) == journal.orders.get(fresh.order_ref)
    assert out[2].existing.quantity == 7  # returned, not raised; the others are written
    assert out[3].stop_price == 95.0 and out[0].detail == {"leg": None}
    assert len(journal.orders.list_orders()) == 4
    assert journal.orders.record_intents([]) == []
    with pytest.raises(ValueError, match="twice"):
        journal.orders.record_intents([batch[0], batch[0]])
    with pytest.raises(ValueError, match="quantity"):  # validated before anything is written
        journal.orders.record_intents(
            [
                Intent(make_order_ref("m", "X", T0), "m", "X", T0, "BUY", 1),
                Intent(make_order_ref("m", "Y", T0), "m", "Y", T0, "BUY", 0),
            ]
        )
    assert journal.orders.get(make_order_ref("m", "X", T0)) is None


def test_intent_validation(journal):
    ref = make_order_ref("m", "AAPL", T0)
    with pytest.raises(ValueError, match="quantity"):
        journal.orders.record_intent(ref, "m", "AAPL", T0, "BUY", 0)
    with pytest.raises(ValueError, match="side"):
        journal.orders.record_intent(ref, "m", "AAPL", T0, "HOLD", 1)
    with pytest.raises(ValueError, match="limit_price"):
        journal.orders.record_intent(ref, "m", "AAPL", T0, "BUY", 1, "LMT")
    with pytest.raises(ValueError, match="tz-aware"):
        journal.orders.record_intent(ref, "m", "AAPL", datetime(2024, 1, 2), "BUY", 1)
    assert journal.orders.get(ref) is None
    lmt = journal.orders.record_intent(ref, "m", "AAPL", T0, "bot", 0.5, "lmt", limit_price=10.0)
    assert (lmt.side, lmt.order_type, lmt.quantity, lmt.limit_price) == ("BUY", "LMT", 0.5, 10.0)


# ---------------------------------------------------------------------- submission, status


def test_mark_submitted_is_idempotent_and_catches_double_sends(journal):
    o = _intent(journal)
    sub = journal.orders.mark_submitted(o.order_ref, 17, client_id=3)
    assert sub.submitted and sub.status == "PendingSubmit" and sub.ib_order_id == 17
    assert sub.perm_id is None
    sub = journal.orders.mark_submitted(o.order_ref, 17, 900001, client_id=3)  # perm id later
    assert sub.perm_id == 900001
    assert journal.orders.by_perm_id(900001).order_ref == o.order_ref
    assert len(journal.orders.history(o.order_ref)) == 1  # repeat added nothing
    with pytest.raises(OrderIdConflictError, match="sent twice"):
        journal.orders.mark_submitted(o.order_ref, 18)
    with pytest.raises(OrderIdConflictError, match="perm id"):
        journal.orders.mark_submitted(o.order_ref, 17, 900002)
    with pytest.raises(UnknownOrderError):
        journal.orders.mark_submitted("sv1|x|Y|20240101T000000Z", 1)
    other = _intent(journal, "MSFT")
    with pytest.raises(OrderIdConflictError, match="already belongs"):
        journal.orders.mark_submitted(other.order_ref, 40, 900001)
    assert journal.orders.get(other.order_ref).status == INTENT  # nothing written


def test_status_history_keeps_arrival_order(journal):
    o = _intent(journal)
    journal.orders.mark_submitted(o.order_ref, 17, 900001, at=T0)
    reports = [
        ("PreSubmitted", 0, 100, None),
        ("Submitted", 0, 100, None),
        ("Submitted", 0, 100, None),  # IB repeats itself: not stored twice
        ("Submitted", 40, 60, 185.0),
        ("Filled", 100, 0, 185.1),
        ("Submitted", 40, 60, 185.0),  # a late report after the terminal one
    ]
    for i, (status, filled, remaining, avg) in enumerate(reports, start=1):
        journal.orders.record_status(
            o.order_ref, status, filled, remaining, avg, T0 + timedelta(seconds=i)
        )
    history = journal.orders.history(o.order_ref)
    assert [(h.status, h.filled) for h in history] == [
        ("PendingSubmit", 0),
        ("PreSubmitted", 0),
        ("Submitted", 0),
        ("Submitted", 40),
        ("Filled", 100),
        ("Submitted", 40),
    ]
    assert [h.at for h in history] == [T0 + timedelta(seconds=s) for s in (0, 1, 2, 4, 5, 6)]
    assert all(h.at.tzinfo == UTC for h in history)
    current = journal.orders.get(o.order_ref)
    assert current.status == "Filled" and current.terminal  # the late report did not regress it
    assert (current.filled, current.remaining, current.avg_fill_price) == (100, 0, 185.1)


def test_status_before_mark_submitted(journal):
    o = _intent(journal)
    rec = journal.orders.record_status(o.order_ref, "Submitted", 0, 100, perm_id=5, ib_order_id=9)
    assert rec.submitted and rec.perm_id == 5 and rec.ib_order_id == 9
    with pytest.raises(UnknownOrderError):
        journal.orders.record_status("nope", "Submitted")


def test_status_history_is_append_only(journal):
    o = _intent(journal)
    journal.orders.mark_submitted(o.order_ref, 1)
    for statement in (
        "UPDATE order_status_history SET status = 'Filled'",
        "DELETE FROM order_status_history",
    ):
        with pytest.raises(DBAPIError, match="append-only"), journal.write() as s:
            s.execute(text(statement))
    assert [h.status for h in journal.orders.history(o.order_ref)] == ["PendingSubmit"]


def test_pending_intents_and_abandon(journal):
    a = _intent(journal, "AAPL")
    b = _intent(journal, "MSFT")
    c = _intent(journal, "NVDA")
    d = _intent(journal, "AMZN")
    journal.orders.mark_submitted(b.order_ref, 2)
    journal.orders.record_status(b.order_ref, "Submitted", 0, 100)
    journal.orders.mark_submitted(c.order_ref, 3)
    journal.orders.record_status(c.order_ref, "Cancelled", 0, 100)
    journal.orders.mark_submitted(d.order_ref, 4)
    journal.orders.record_status(d.order_ref, "Inactive", 0, 100)  # not terminal at IB
    pending = journal.orders.pending_intents()
    assert [p.order_ref for p in pending] == [a.order_ref, b.order_ref, d.order_ref]
    assert pending[0].status == INTENT
    abandoned = journal.orders.abandon(a.order_ref, "not found at IB after restart")
    assert abandoned.status == ABANDONED and abandoned.terminal
    assert [p.order_ref for p in journal.orders.pending_intents()] == [b.order_ref, d.order_ref]
    assert journal.orders.history(a.order_ref)[-1].message == "not found at IB after restart"
    assert journal.orders.pending_intents(strategy="other") == []


def test_list_orders_newest_first_with_filters(journal):
    refs = [_intent(journal, bar_time=T0 + timedelta(days=i)).order_ref for i in range(3)]
    journal.orders.mark_submitted(refs[0], 1)
    journal.orders.record_status(refs[0], "Filled", 100, 0, 10.0)
    listed = journal.orders.list_orders()
    assert [o.order_ref for o in listed] == refs[::-1]
    assert [o.order_ref for o in journal.orders.list_orders(open_only=True)] == refs[:0:-1]
    assert len(journal.orders.list_orders(limit=1)) == 1
    assert journal.orders.list_orders(symbol="MSFT") == []
    assert len(journal.orders.list_orders(strategy="momentum")) == 3


# ---------------------------------------------------------------------- module layout


def test_an_intents_fields_are_the_records_intent_part():
    """A record is the intent's row (INTENT_FIELDS; fresh_record takes the row as keyword
    arguments) and the order's columns: a column added to either goes in the record."""
    assert tuple(f.name for f in dataclasses.fields(Intent)) == INTENT_FIELDS
    record_fields = tuple(f.name for f in dataclasses.fields(OrderRecord))
    assert record_fields[: len(INTENT_FIELDS)] == INTENT_FIELDS
    assert set(record_fields) == {*INTENT_FIELDS, *ORDER_COLUMNS, "created"}
    assert set(INTENT_IDENTITY) < set(INTENT_FIELDS) and "order_ref" not in INTENT_IDENTITY


def test_the_order_names_stay_importable_from_orders():
    for name in orders.__all__:
        assert hasattr(orders, name), name
    assert orders.make_order_ref is order_refs.make_order_ref
    assert orders.OrderRefParts is order_refs.OrderRefParts
    assert orders.ORDER_REF_PREFIX == "sv1" and orders.SIDES == ("BUY", "SELL")
    assert orders.Intent is intents.Intent
    assert orders.OrderRecord is order_records.OrderRecord
    assert orders.order_record is order_records.order_record
