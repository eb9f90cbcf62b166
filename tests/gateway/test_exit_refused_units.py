"""The receiver's answer to a refused protective exit, without IB: real ib_async
``Trade``/``Order``/``OrderStatus``/``Fill`` objects, a fake ``IB`` whose ``cancelOrder``
changes the status as ib_async does, a fake journal queue and ledger.

The end-to-end cases are in test_exit_refused.py; here the ones ibsim cannot produce: a
parent filling after its bracket was abandoned (a fill racing the cancel), a staged
parent whose cancel waits for IB's first answer, and our own cancels' errors, which are
not refusals.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from ib_async import CommissionReport, Contract, Execution, Fill, Order, OrderStatus, Trade
from ib_async.objects import TradeLogEntry

from stratvector.gateway.execution import ExecStats
from stratvector.gateway.order_book import OrderBook
from stratvector.gateway.receiver import Receiver
from stratvector.store import make_order_ref
from tests.gateway.fakes import FakeQueue

T0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)
PARENT = make_order_ref("s1", "AAA", T0)
STOP, TP = PARENT + "|stop", PARENT + "|tp"


class Ledger:
    def __init__(self, position: float = 0.0) -> None:
        self.index = {"AAA": 0}
        self.pos = position

    def position(self, symbol: str) -> float:
        return self.pos

    def add_fill(self, *args: Any, **kwargs: Any) -> None:
        self.pos += args[2]


class FakeIB:
    """``cancelOrder`` as ib_async's: a staged order is closed at once, any other one
    waits for IB (``PendingCancel``); either status is emitted to the receiver."""

    def __init__(self) -> None:
        self.trades: dict[str, Trade] = {}
        self.cancels: list[str] = []
        self.wrapper = SimpleNamespace(fills={})
        self.rx: Receiver | None = None

    def cancelOrder(self, order: Order) -> Trade:
        trade = self.trades[order.orderRef]
        self.cancels.append(order.orderRef)
        if not trade.isDone():
            st = trade.orderStatus.status
            staged = st == OrderStatus.PendingSubmit and not order.transmit
            new = OrderStatus.Cancelled if staged else OrderStatus.PendingCancel
            status(trade, new, self.rx)
        return trade


def status(trade: Trade, new: str, rx: Any, code: int = 0, filled: float = 0.0) -> None:
    """IB (or ib_async) reports ``new`` for ``trade``; ``code``: with that error."""
    trade.orderStatus.status = new
    trade.orderStatus.filled = filled
    trade.log.append(TradeLogEntry(T1, new, f"Error {code}: refused" if code else "", code))
    if rx is not None:
        rx._on_status(trade)


def setup(position: float = 0.0) -> tuple[Receiver, FakeIB, FakeQueue, list[tuple[str, str]]]:
    """A market entry with a staged stop-loss and the transmitting take-profit, all
    placed, none answered by IB yet."""
    ib, jq = FakeIB(), FakeQueue()
    contracts: Any = SimpleNamespace(symbol_for=lambda c: "AAA")
    rx = Receiver(ib, jq, contracts, {"s1": Ledger(position)}, OrderBook(), ExecStats())  # type: ignore[arg-type,dict-item]
    ib.rx = rx
    tripped: list[tuple[str, str]] = []
    rx.on_unprotected = lambda strategy, reason: tripped.append((strategy, reason))
    for oid, (r, parent_id, transmit) in enumerate(
        [(PARENT, 0, False), (STOP, 1, False), (TP, 1, True)], start=1
    ):
        order = Order(
            orderId=oid,
            clientId=1,
            action="BUY" if r == PARENT else "SELL",
            totalQuantity=10,
            orderRef=r,
            parentId=parent_id,
            transmit=transmit,
        )
        t = Trade(Contract(symbol="AAA"), order, OrderStatus(status=OrderStatus.PendingSubmit))
        ib.trades[r] = t
        rx.book.track(t)
    rx.book.fix[PARENT] = [(TP, "tp", None)]  # its take-profit is fixed once it fills
    return rx, ib, jq, tripped


def parent_fill(rx: Receiver) -> Fill:
    ex = Execution(
        execId="e1", orderRef=PARENT, side="BOT", shares=10, price=100.0, time=T1, orderId=1
    )
    return Fill(Contract(symbol="AAA"), ex, CommissionReport("e1", 1.0, "USD"), T1)


def test_a_staged_parent_is_cancelled_when_ib_answers_it_and_a_late_fill_trips() -> None:
    rx, ib, jq, tripped = setup()
    status(ib.trades[STOP], OrderStatus.Cancelled, rx, code=110)  # the staged stop refused
    assert ib.cancels == [] and PARENT in rx.book.abandoned  # staged: wait for IB
    assert PARENT not in rx.book.fix  # its children are cancelled, not fixed
    status(ib.trades[PARENT], OrderStatus.Submitted, rx)  # IB transmitted it without the stop
    assert ib.cancels == [TP, PARENT] and set(rx.book.acks) == {TP, PARENT}
    reason = rx.book.abandoned[PARENT].reason
    assert reason == "protective exit stop refused: Error 110: refused"
    journaled = [a for fn, a, k in jq.calls if fn == "record_status" and k["message"] == reason]
    assert {a[0] for a in journaled} == {TP, PARENT}  # the cancels carry the reason
    status(ib.trades[PARENT], OrderStatus.Submitted, rx)  # a repeat: not cancelled again
    assert ib.cancels == [TP, PARENT] and tripped == []
    # the entry filled before the cancel reached IB: the position lacks its stop
    assert rx.ingest_fill(parent_fill(rx))
    ((strategy, why),) = tripped
    assert strategy == "s1" and why.startswith(PARENT) and reason in why
    assert rx.book.abandoned == {}


def test_an_abandoned_parent_cancelled_without_a_fill_is_forgotten() -> None:
    rx, ib, _, tripped = setup()
    status(ib.trades[PARENT], OrderStatus.Submitted, rx)  # transmitted already
    status(ib.trades[TP], OrderStatus.PreSubmitted, rx)
    status(ib.trades[STOP], OrderStatus.Inactive, rx, code=201)  # refused afterwards
    assert ib.cancels == [TP, PARENT]  # IB has them: cancelled at once
    assert PARENT not in rx.book.fix
    status(ib.trades[TP], OrderStatus.Cancelled, rx)
    status(ib.trades[PARENT], OrderStatus.Cancelled, rx)
    assert rx.book.abandoned == {} and rx.book.acks == {} and tripped == []


def test_a_refused_exit_of_a_held_position_trips_at_once() -> None:
    rx, ib, _, tripped = setup(position=-10.0)  # the order covers a short the strategy holds
    status(ib.trades[STOP], OrderStatus.Cancelled, rx, code=110)
    ((strategy, why),) = tripped
    assert strategy == "s1" and why.startswith(STOP) and "protective exit stop refused" in why
    assert "Error 110: refused" in why and rx.book.abandoned == {}


def test_errors_answering_our_own_cancels_are_not_refusals() -> None:
    rx, ib, _, tripped = setup(position=-10.0)
    for r, st in ((PARENT, OrderStatus.Submitted), (STOP, OrderStatus.PreSubmitted)):
        status(ib.trades[r], st, rx)
    ib.cancelOrder(ib.trades[STOP].order)  # the position changes: its exits are cancelled
    status(ib.trades[STOP], OrderStatus.Cancelled, rx, code=10148)  # e.g. already done
    status(ib.trades[TP], OrderStatus.Cancelled, rx, code=202)  # IB's "Order Canceled"
    assert tripped == [] and rx.book.abandoned == {}


def test_fixed_exit_prices_are_sent_transmitted() -> None:
    # the stop was placed staged (transmit=False, the bracket's last child transmitted
    # it): its price fix must go out with transmit=True, or TWS would hold it
    from stratvector.gateway.exits import ExitSpec

    rx, ib, _, _ = setup()
    placed: list[Order] = []
    ib.placeOrder = lambda contract, order: placed.append(order)  # type: ignore[attr-defined]
    rx.contracts = SimpleNamespace(get=lambda symbol: 0.01)  # type: ignore[assignment]
    spec = ExitSpec(quantity=-10, stop_loss=0.05, trailing_stop=0.0, take_profit=0.1, estimate=99.0)
    rx.book.fix[PARENT] = [(STOP, "stop", spec), (TP, "tp", spec)]
    for ref in (PARENT, STOP, TP):
        status(ib.trades[ref], OrderStatus.Submitted, rx)
    rx.fix_children(PARENT, 100.0)
    assert [(o.orderRef, o.transmit) for o in placed] == [(STOP, True), (TP, True)]
    assert placed[0].auxPrice == 95.0 and placed[1].lmtPrice == 110.0
