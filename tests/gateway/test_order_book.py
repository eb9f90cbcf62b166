"""The executor's order book and receiving side without IB: real ib_async ``Trade``,
``Order``, ``OrderStatus`` and ``Fill`` objects, a fake clock and a fake journal queue."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

from ib_async import CommissionReport, Contract, Execution, Fill, Order, OrderStatus, Trade

from stratvector.gateway.contracts import Instrument
from stratvector.gateway.execution import EXIT_LEGS, ExecStats, Tracked
from stratvector.gateway.order_book import ACK_TIMEOUT, OrderBook
from stratvector.gateway.outgoing import build
from stratvector.gateway.receiver import Receiver
from stratvector.gateway.runner import OrderPlan
from stratvector.store import make_order_ref
from tests.gateway.fakes import FakeQueue

T0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)


def ref(
    symbol: str = "AAA", when: dt.datetime = T0, leg: str | None = None, sid: str = "s1"
) -> str:
    return make_order_ref(sid, symbol, when, leg)


def trade(
    order_ref: str,
    qty: float = 10,
    action: str = "BUY",
    status: str = OrderStatus.Submitted,
    filled: float = 0.0,
    remaining: float | None = None,
) -> Trade:
    left = qty - filled if remaining is None else remaining
    return Trade(
        contract=Contract(symbol="AAA"),
        order=Order(action=action, totalQuantity=qty, orderRef=order_ref),
        orderStatus=OrderStatus(status=status, filled=filled, remaining=left),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- the order book


def test_track_adopts_our_orders_with_signed_quantities_and_ignores_others() -> None:
    book = OrderBook()
    r = ref(leg="stop")
    t = book.track(trade(r, 7, "SELL"))
    assert t is not None and (t.strategy, t.symbol, t.bar_time, t.leg) == ("s1", "AAA", T0, "stop")
    assert t.quantity == -7 and book.orders[r] is t and r in book.live
    assert book.track(trade("placed by hand in TWS")) is None and len(book.orders) == 1
    # tracked again (a reconnect): the same record, bound to IB's new Trade
    newer = trade(r, 7, "SELL", OrderStatus.Filled, filled=7)
    assert book.track(newer) is t and t.trade is newer and t.done


def test_a_done_order_is_not_live() -> None:
    book = OrderBook()
    r = ref()
    book.track(trade(r, status=OrderStatus.Cancelled))
    assert r in book.orders and r not in book.live
    assert book.live_orders() == []


def test_working_quantities_count_what_is_still_to_fill() -> None:
    book = OrderBook()
    book.track(trade(ref("AAA"), 10, status=OrderStatus.Submitted, filled=4))  # IB: 6 left
    book.track(trade(ref("AAA", T1), 3, "SELL", OrderStatus.PendingSubmit, remaining=0))
    # IB reports nothing left but the order is not done: its own quantity less its fills
    book.track(trade(ref("BBB"), 5, "SELL", OrderStatus.PreSubmitted, filled=1, remaining=0))
    book.track(trade(ref("CCC"), 8, status=OrderStatus.Filled, filled=8))  # done
    assert book.working_quantities() == {"AAA": 6 - 3, "BBB": -4}


def test_live_orders_drop_what_finished_since() -> None:
    book = OrderBook()
    t = book.track(trade(ref()))
    assert t is not None and book.live_orders() == [t]
    assert t.trade is not None
    t.trade.orderStatus.status = OrderStatus.Filled
    assert book.live_orders() == [] and not book.live


def test_working_is_strategy_orders_decided_before_the_bar() -> None:
    book = OrderBook()
    book.track(trade(ref("AAA", T0)))
    book.track(trade(ref("BBB", T0, leg="stop")))  # protective: never blocks a decision
    book.track(trade(ref("CCC", T1)))  # decided at the bar asked about
    book.track(trade(ref("DDD", T0, sid="s2")))  # another strategy's
    book.track(trade(ref("EEE", T0, leg="flatten")))
    assert "stop" in EXIT_LEGS and "flatten" not in EXIT_LEGS
    assert book.working("s1", T1) == {"AAA", "EEE"}
    assert book.working("s1", T1 + dt.timedelta(days=1)) == {"AAA", "CCC", "EEE"}
    assert book.working("s2", T1) == {"DDD"}
    book.orders[ref("FFF")] = Tracked(ref("FFF"), "s1", "FFF", T0, None, 1.0)  # no Trade
    book.live.add(ref("FFF"))
    assert book.working("s1", T1) == {"AAA", "EEE"}


def test_in_flight_counts_orders_ib_has_not_acknowledged() -> None:
    book = OrderBook()
    book.track(trade(ref("AAA"), status=OrderStatus.PendingSubmit))
    book.track(trade(ref("BBB"), status=OrderStatus.Submitted))
    book.track(trade(ref("CCC"), status=OrderStatus.PendingSubmit))
    assert book.in_flight() == 2


def test_pending_acks_expire_after_the_timeout() -> None:
    clock = Clock()
    book = OrderBook(clock=clock)
    book.expect_ack("a")
    clock.now += 1.0
    book.expect_ack("b", {"orderType": "STP", "auxPrice": 9.5})
    assert book.acks["b"] == (clock.now, {"orderType": "STP", "auxPrice": 9.5})
    clock.now += ACK_TIMEOUT - 1.0
    assert book.pending_acks() == 2  # "a" is exactly ACK_TIMEOUT old: still pending
    clock.now += 0.5
    assert book.pending_acks() == 1 and "a" not in book.acks
    clock.now += 1.0
    assert book.pending_acks() == 0


def test_resync_binds_ib_trades_and_closes_orders_gone_from_ib() -> None:
    book = OrderBook()
    kept, gone, finished = ref("AAA"), ref("BBB"), ref("CCC")
    for r in (kept, gone, finished):
        book.track(trade(r))
    book.orders[finished].trade = trade(finished, status=OrderStatus.Filled, filled=10)
    book.orders[kept].closed = True  # closed at an earlier reconnect, listed again now
    at_ib = trade(kept, filled=2)
    adopted = ref("DDD")
    book.resync([at_ib, trade(adopted, 4, "SELL"), trade("someone else's")])
    assert book.orders[kept].trade is at_ib and not book.orders[kept].closed
    assert kept in book.live
    assert book.orders[gone].closed and book.orders[gone].done
    assert not book.orders[finished].closed  # finished on its own: left as it was
    assert book.orders[adopted].quantity == -4 and adopted in book.live
    assert len(book.orders) == 4
    assert {t.ref for t in book.live_orders()} == {kept, adopted}


def test_prune_forgets_the_oldest_done_orders_only() -> None:
    book = OrderBook()
    refs = [ref("AAA", T0 + dt.timedelta(days=i)) for i in range(6)]
    for i, r in enumerate(refs):
        book.track(trade(r, status=OrderStatus.Filled if i % 2 == 0 else OrderStatus.Submitted))
    book.prune(keep=4)
    assert list(book.orders) == [refs[1], refs[3], refs[4], refs[5]]  # oldest done ones
    book.prune(keep=1)
    assert list(book.orders) == [refs[1], refs[3], refs[5]]  # working ones are kept


# ---------------------------------------------------------------------- sending


def test_build_sends_a_limit_at_the_offset_and_journals_the_account() -> None:
    plan = OrderPlan("s1", "AAA", T0, -5.0, 100.0, -0.5)
    inst = Instrument("AAA", Contract(symbol="AAA"), 1, 0.01)  # no market rule: min_tick
    out = build(plan, ref(), inst, order_type="limit", limit_offset_bps=10, tif="DAY", account="")
    assert (out.order.action, out.order.totalQuantity, out.order.orderType) == ("SELL", 5, "LMT")
    assert out.order.lmtPrice == 99.9 and out.order.orderRef == ref() and out.children == []
    (intent,) = out.intents
    assert intent.limit_price == 99.9 and intent.account is None and intent.target == -0.5
    flatten = OrderPlan("s1", "AAA", T0, 5.0, 100.0, None, "flatten")
    out = build(
        flatten,
        ref(leg="flatten"),
        inst,
        order_type="limit",
        limit_offset_bps=10,
        tif="GTC",
        account="DU1",
    )
    assert (out.order.orderType, out.order.tif, out.order.account) == ("MKT", "GTC", "DU1")
    assert out.intents[0].account == "DU1"


def test_protective_exits_outlive_the_session_whatever_the_entry_tif() -> None:
    # a DAY stop would expire at the close and leave the position unprotected overnight
    from stratvector.gateway.exits import ExitSpec

    spec = ExitSpec(quantity=-5, stop_loss=0.05, trailing_stop=0.0, take_profit=0.1, estimate=100)
    plan = OrderPlan("s1", "AAA", T0, 5.0, 100.0, 0.5, exits=spec)
    inst = Instrument("AAA", Contract(symbol="AAA"), 1, 0.01)
    out = build(plan, ref(), inst, order_type="market", limit_offset_bps=0, tif="DAY", account="")
    assert out.order.tif == "DAY" and out.intents[0].time_in_force == "DAY"
    assert [c[2].tif for c in out.children] == ["GTC", "GTC"]
    assert [i.time_in_force for i in out.intents[1:]] == ["GTC", "GTC"]


# ---------------------------------------------------------------------- receiving


def receiver() -> tuple[Receiver, Any, Any]:
    jq: Any = FakeQueue()
    ib: Any = SimpleNamespace(wrapper=SimpleNamespace(fills={}))
    contracts: Any = SimpleNamespace(symbol_for=lambda c: None)
    ledger: Any = SimpleNamespace(fills=[], commissions={})
    ledger.add_fill = lambda *a, **k: ledger.fills.append((a, k))
    ledger.set_commission = lambda e, c: ledger.commissions.__setitem__(e, c)
    rx = Receiver(ib, jq, contracts, {"s1": ledger}, OrderBook(), ExecStats())
    return rx, jq, ledger


def fill(exec_id: str, commission: float | None = None) -> Fill:
    ex = Execution(
        execId=exec_id, orderRef=ref(), side="BOT", shares=10, price=101.5, time=T1, orderId=7
    )
    report = CommissionReport(exec_id, commission, "USD") if commission is not None else None
    return Fill(Contract(symbol="AAA"), ex, report or CommissionReport(), T1)


def test_a_fill_waits_for_its_commission_and_is_journaled_once_with_it() -> None:
    async def go() -> None:
        rx, jq, ledger = receiver()
        f = fill("e1")
        assert rx.ingest_fill(f) and not rx.ingest_fill(f)  # once, by execId
        assert jq.calls == [] and rx.stats.fills == 1
        ((args, kwargs),) = ledger.fills
        assert args[:4] == ("e1", "AAA", 10.0, 101.5) and kwargs == {"exit_leg": False}
        rx.ib.wrapper.fills["e1"] = f
        rx._on_commission(Trade(), f, CommissionReport("e1", 1.25, "USD"))  # IB's event
        ((fn, args, kwargs),) = jq.calls
        assert fn == "record_fill" and args[0] == "e1" and kwargs["commission"] == 1.25
        assert ledger.commissions == {"e1": 1.25}
        rx.flush_fills()
        assert len(jq.calls) == 1  # nothing left waiting

    asyncio.run(go())


def test_a_fill_with_its_commission_is_journaled_at_once_and_leftovers_flush() -> None:
    async def go() -> None:
        rx, jq, _ = receiver()
        assert rx.ingest_fill(fill("e1", commission=1.0))
        assert [c[0] for c in jq.calls] == ["record_fill"] and jq.calls[0][2]["commission"] == 1.0
        assert rx.ingest_fill(fill("e2"))
        rx.flush_fills()  # stopping: journaled without its commission
        assert [c[0] for c in jq.calls] == ["record_fill", "record_fill"]
        assert jq.calls[1][2]["commission"] is None

    asyncio.run(go())
