"""Brackets IB refused part of, without IB: :meth:`OrderBook.untransmitted` (which of a
bracket's orders are still staged and must be cancelled) and the receiver's cleanup on a
rejection, with real ib_async ``Trade``/``Order``/``OrderStatus`` objects and a fake IB
whose ``cancelOrder`` does what ib_async's does to an untransmitted order."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from ib_async import Contract, Fill, Order, OrderStatus, Trade, TradeLogEntry

from stratvector.gateway.execution import ExecStats
from stratvector.gateway.order_book import OrderBook, Tracked, staged
from stratvector.gateway.receiver import Receiver
from stratvector.gateway.refusals import ORDER_REJECTED
from stratvector.store import make_order_ref
from tests.gateway.fakes import FakeQueue

T0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)
PARENT = make_order_ref("s1", "AAA", T0)
STOP = make_order_ref("s1", "AAA", T0, "stop")
TP = make_order_ref("s1", "AAA", T0, "tp")
NOW = dt.datetime(2024, 1, 2, 15, tzinfo=dt.UTC)
PS = OrderStatus.PendingSubmit


def placed(
    ref: str, order_id: int, parent_id: int = 0, transmit: bool = False, client_id: int = 1
) -> Trade:
    """A Trade as ib_async's ``placeOrder`` makes it (PendingSubmit, one log entry)."""
    order = Order(
        orderId=order_id,
        clientId=client_id,
        action="SELL" if parent_id else "BUY",
        totalQuantity=10,
        orderType="LMT" if parent_id else "MKT",
        orderRef=ref,
        parentId=parent_id,
        transmit=transmit,
    )
    status = OrderStatus(orderId=order_id, status=PS)
    return Trade(Contract(symbol="AAA"), order, status, [], [TradeLogEntry(NOW, PS)])


def answer(trade: Trade, status: str, code: int = 0, message: str = "") -> Trade:
    """IB answered ``trade`` (with an error ``code``: a refusal, as ib_async books it)."""
    trade.orderStatus.status = status
    trade.log.append(TradeLogEntry(NOW, status, message, code))
    return trade


def refuse(trade: Trade, code: int = 110) -> Trade:
    return answer(trade, OrderStatus.Cancelled, code, f"Error {code}, reqId {trade.order.orderId}")


def bracket(book: OrderBook, *legs: str, first_id: int = 10) -> list[Trade]:
    """A parent and its children placed as the executor does (the last one transmits)."""
    trades = [placed(PARENT, first_id)]
    for i, leg in enumerate(legs):
        ref = make_order_ref("s1", "AAA", T0, leg)
        trades.append(placed(ref, first_id + 1 + i, first_id, transmit=i == len(legs) - 1))
    for t in trades:
        book.track(t)
    return trades


def refs(found: tuple[str, list[Tracked]] | None) -> tuple[str, list[str]] | None:
    return None if found is None else (found[0], [t.ref for t in found[1]])


# ---------------------------------------------------------------------- staged()


def test_staged_means_placed_untransmitted_and_never_answered() -> None:
    book = OrderBook()
    parent, _, _ = bracket(book, "stop", "tp")
    assert staged(book.orders[PARENT]) and staged(book.orders[STOP])
    assert not staged(book.orders[TP])  # transmit=True: on its way to IB
    answer(parent, OrderStatus.PreSubmitted)
    assert not staged(book.orders[PARENT])  # IB answered: transmitted
    # TWS may show a held, untransmitted order as Inactive (no error): still staged
    answer(parent, OrderStatus.Inactive)
    assert not staged(book.orders[PARENT])  # ... but not once IB answered otherwise
    held = placed(PARENT + "x", 99)
    assert staged(Tracked("x", "s1", "AAA", T0, None, 10, answer(held, OrderStatus.Inactive)))
    rejected = refuse(placed(PARENT + "y", 98), 201)
    answer(rejected, OrderStatus.Inactive)
    assert not staged(Tracked("y", "s1", "AAA", T0, None, 10, rejected))  # refused: done
    gone = Tracked("z", "s1", "AAA", T0, None, 10, placed(PARENT + "z", 97), closed=True)
    assert not staged(gone) and not staged(Tracked("n", "s1", "AAA", T0, None, 10))
    filled = placed(PARENT + "f", 96)
    filled.fills.append(Fill(Contract(), SimpleNamespace(), SimpleNamespace(), NOW))  # type: ignore[arg-type]
    assert not staged(Tracked("f", "s1", "AAA", T0, None, 10, filled))


# ---------------------------------------------------------------------- untransmitted()


def test_a_refused_transmitting_child_leaves_the_parent_and_siblings_to_cancel() -> None:
    book = OrderBook()
    _, _, tp = bracket(book, "stop", "tp")
    assert refs(book.untransmitted(refuse(tp))) == (PARENT, [STOP, PARENT])  # children first


def test_a_single_refused_child_leaves_its_parent_to_cancel() -> None:
    book = OrderBook()
    _, tp = bracket(book, "tp")
    assert refs(book.untransmitted(refuse(tp, 201))) == (PARENT, [PARENT])


def test_siblings_ib_already_answered_are_not_cancelled() -> None:
    book = OrderBook()
    _, stop, tp = bracket(book, "stop", "tp")
    # the staged stop was refused first: nothing yet, the transmitting child decides
    assert book.untransmitted(refuse(stop)) is None
    assert refs(book.untransmitted(refuse(tp))) == (PARENT, [PARENT])


def test_a_transmitted_bracket_is_left_alone() -> None:
    book = OrderBook()
    parent, stop, tp = bracket(book, "stop", "tp")
    for t in (parent, stop, tp):
        answer(t, OrderStatus.PreSubmitted)
    answer(parent, OrderStatus.Filled)
    answer(stop, OrderStatus.Submitted)
    # e.g. a modification of the take-profit rejected after the entry filled
    assert refs(book.untransmitted(refuse(tp, 201))) == (PARENT, [])


def test_a_refused_parent_waits_for_the_answer_to_its_transmitting_child() -> None:
    book = OrderBook()
    parent, stop, tp = bracket(book, "stop", "tp")
    refuse(parent)
    # the children's answers are still to come, the transmitting child's last
    assert refs(book.untransmitted(parent)) == (PARENT, [])
    # IB refused the transmitting child and left the stop staged: the stop is cancelled
    assert refs(book.untransmitted(refuse(tp, 201))) == (PARENT, [STOP])
    # ... or IB refused the stop too: nothing is left
    refuse(stop, 201)
    assert refs(book.untransmitted(tp)) == (PARENT, [])


def test_a_refused_parent_without_a_pending_transmitting_child_cancels_its_staged_ones() -> None:
    book = OrderBook()
    parent, _stop, tp = bracket(book, "stop", "tp")
    answer(tp, OrderStatus.Inactive, 201)  # answered before the parent (not IB's order)
    assert refs(book.untransmitted(refuse(parent))) == (PARENT, [STOP])


def test_plain_and_foreign_orders_have_no_bracket() -> None:
    book = OrderBook()
    plain = placed(make_order_ref("s1", "BBB", T0), 5, transmit=True)
    book.track(plain)
    assert book.untransmitted(refuse(plain)) is None
    assert book.untransmitted(refuse(placed("typed in TWS", 6, transmit=True))) is None
    flatten = placed(make_order_ref("s1", "BBB", T0, "flatten"), 7, transmit=True)
    assert book.untransmitted(refuse(flatten)) is None


def test_the_bracket_is_matched_by_ib_ids_not_refs_alone() -> None:
    book = OrderBook()
    _, _, tp = bracket(book, "stop", "tp")
    # the same refs sent again by another client (another session's orders)
    other = [placed(PARENT, 50, client_id=2), placed(STOP, 51, 50, client_id=2)]
    book.orders[PARENT].trade, book.orders[STOP].trade = other
    assert refs(book.untransmitted(refuse(tp))) == (PARENT, [])
    # a later bar's bracket of the same symbol is not this one
    book2 = OrderBook()
    _, tp2 = bracket(book2, "tp")
    book2.track(placed(make_order_ref("s1", "AAA", T1), 20))
    assert refs(book2.untransmitted(refuse(tp2))) == (PARENT, [PARENT])


# ---------------------------------------------------------------------- the receiver


class FakeIB:
    """``cancelOrder`` as ib_async's for an untransmitted order: ``Cancelled`` at once,
    emitted as a status (to the receiver, as ``orderStatusEvent`` would)."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.receiver: Receiver | None = None
        self.trades: dict[int, Trade] = {}

    def cancelOrder(self, order: Order) -> Trade:
        self.cancelled.append(order.orderRef)
        trade = self.trades[order.orderId]
        assert not order.transmit and trade.orderStatus.status == PS
        answer(trade, OrderStatus.Cancelled)
        assert self.receiver is not None
        self.receiver._on_status(trade)
        return trade


def receiving() -> tuple[Receiver, FakeIB, FakeQueue]:
    ib, jq = FakeIB(), FakeQueue()
    contracts: Any = SimpleNamespace(symbol_for=lambda c: None)
    rx = Receiver(ib, jq, contracts, {}, OrderBook(), ExecStats())  # type: ignore[arg-type]
    ib.receiver = rx
    return rx, ib, jq


def test_a_refused_transmitting_child_cancels_the_staged_bracket_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rx, ib, jq = receiving()
    trades = bracket(rx.book, "stop", "tp")
    ib.trades = {t.order.orderId: t for t in trades}
    rx.book.fix[PARENT] = [(TP, "tp", SimpleNamespace())]  # type: ignore[list-item]
    tp = trades[2]
    with caplog.at_level(logging.WARNING, "stratvector.gateway.refusals"):
        rx._on_status(refuse(tp))
    assert ib.cancelled == [STOP, PARENT]
    assert rx.stats.rejected == 1 and rx.book.closing == {} and PARENT not in rx.book.fix
    statuses = {
        args[0]: (args[1], kw["message"]) for fn, args, kw in jq.calls if fn == "record_status"
    }
    assert statuses[TP] == ("Cancelled", "Error 110, reqId 12")
    for ref in (STOP, PARENT):
        status, message = statuses[ref]
        assert status == "Cancelled"
        assert message.startswith(f"bracket {PARENT} never transmitted: {TP} refused by IB")
        assert "Error 110" in message
    events = [(args, kw) for fn, args, kw in jq.calls if fn == "record_event"]
    assert [(a[0], a[1]) for a, _ in events] == [(ORDER_REJECTED, {"order_ref": TP, "code": 110})]
    (record,) = [r for r in caplog.records if r.name == "stratvector.gateway.refusals"]
    assert record.levelname == "WARNING" and PARENT in record.getMessage()
    assert "Error 110" in record.getMessage()
    # nothing of it is working or in flight: the symbol is decided again
    assert rx.book.in_flight() == 0 and rx.book.working("s1", T1) == set()


def test_a_refused_plain_order_cancels_nothing() -> None:
    rx, ib, _ = receiving()
    plain = placed(make_order_ref("s1", "AAA", T0), 5, transmit=True)
    rx.book.track(plain)
    rx._on_status(refuse(plain, 201))
    assert ib.cancelled == [] and rx.stats.rejected == 1
    assert rx.book.working("s1", T1) == set()


def test_a_refused_staged_child_waits_for_the_transmitting_one() -> None:
    rx, ib, _ = receiving()
    trades = bracket(rx.book, "stop", "tp")
    ib.trades = {t.order.orderId: t for t in trades}
    rx._on_status(refuse(trades[1]))
    assert ib.cancelled == [] and rx.book.in_flight() == 2  # the parent and the tp
    rx._on_status(refuse(trades[2]))
    assert ib.cancelled == [PARENT] and rx.book.in_flight() == 0
