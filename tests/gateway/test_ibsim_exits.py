"""What the stand-in does with the gateway's protective exits, as IB does: it refuses
prices off the contract's tick (error 110), and when several stops trigger in one bar it
fills them in the order a price moving from the open reaches them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from ib_async import LimitOrder, Order, Stock, StopOrder

from stratvector.backtest.costs import NoSlippage
from stratvector.ibsim.market import Instrument
from stratvector.ibsim.orders import Cancelled, Filled, OrderBook
from stratvector.ibsim.requests import ContractSpec, OrderRequest
from tests.gateway.conftest_history import ErrorLog, copy_samples, run, session
from tests.ibsim._support import sync

# --- the order book, without sockets ----------------------------------------------------------


def _book_with_bar(open_: float, high: float, low: float) -> tuple[OrderBook, Instrument]:
    bars = pd.DataFrame(
        {"open": [open_], "high": [high], "low": [low], "close": [open_], "volume": [1e6]},
        index=pd.DatetimeIndex([pd.Timestamp("2024-01-02", tz="UTC")], name="time"),
    )
    return OrderBook(NoSlippage()), Instrument("SYN", 1, Path("SYN_1d.csv"), bars)


def _stop(order_id: int, action: str, price: float | None, **kw: object) -> OrderRequest:
    kind = "STP" if price is not None else "TRAIL"
    return OrderRequest(order_id, ContractSpec(symbol="SYN"), action, 10.0, kind, None, price, **kw)  # type: ignore[arg-type]


def _fills(events: list[object]) -> list[tuple[int, float]]:
    return [(e.order.order_id, e.price) for e in events if isinstance(e, Filled)]


@pytest.mark.parametrize(
    ("action", "first", "second", "bar", "winner"),
    [
        # a long's stop-loss at 95 placed before its trailing stop at 97: the fall reaches 97
        ("SELL", 95.0, 97.0, (100.0, 101.0, 94.0), (2, 97.0)),
        ("SELL", 97.0, 95.0, (100.0, 101.0, 94.0), (1, 97.0)),
        # a short's stops mirrored: the rise reaches 103 first
        ("BUY", 105.0, 103.0, (100.0, 106.0, 99.0), (2, 103.0)),
        # the open gaps through both: both are reached at once, placement order, the open
        ("SELL", 95.0, 97.0, (94.0, 95.0, 93.0), (1, 94.0)),
    ],
    ids=["sell_tighter_second", "sell_tighter_first", "buy_tighter_second", "gap"],
)
def test_stops_in_one_bar_fill_in_the_order_the_price_reaches_them(
    action: str, first: float, second: float, bar: tuple[float, float, float], winner: tuple
) -> None:
    book, inst = _book_with_bar(*bar)
    for oid, price in ((1, first), (2, second)):
        assert book.place(
            1, _stop(oid, action, price, oca_group="g", oca_type=1), inst, "", 0, 100.0
        )
    events = book.on_bar(inst, 0, 0)
    assert _fills(events) == [winner]
    assert [e.reason for e in events if isinstance(e, Cancelled)] == ["OCA group canceled"]


def test_a_trailing_stop_is_ordered_by_its_current_level() -> None:
    book, inst = _book_with_bar(100.0, 101.0, 94.0)
    book.place(1, _stop(1, "SELL", 95.0, oca_group="g", oca_type=1), inst, "", 0, 100.0)
    trail = _stop(2, "SELL", None, oca_group="g", oca_type=1, trailing_percent=2.0)
    book.place(1, trail, inst, "", 0, 100.0)  # starts at 98 from the last close
    assert _fills(book.on_bar(inst, 0, 0)) == [(2, 98.0)]


# --- error 110 through the real client ----------------------------------------------------------


def test_prices_off_the_tick_are_refused_with_error_110(tmp_path: Path) -> None:
    bars = copy_samples(tmp_path / "bars")

    async def main() -> None:
        async with session(bars) as (sim, ib):
            errors = ErrorLog(ib)
            [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            [details] = await ib.reqContractDetailsAsync(c)
            assert details.minTick == 0.01
            off = ib.placeOrder(c, LimitOrder("BUY", 10, 50.125))
            stop = ib.placeOrder(c, StopOrder("SELL", 10, 10.001))
            trail = Order(action="SELL", totalQuantity=10, orderType="TRAIL")
            trail.trailingPercent, trail.trailStopPrice = 2.0, 10.005
            off_trail = ib.placeOrder(c, trail)
            pct = Order(action="SELL", totalQuantity=10, orderType="TRAIL", trailingPercent=2.5)
            pct_only = ib.placeOrder(c, pct)
            on = ib.placeOrder(c, LimitOrder("BUY", 10, 50.12))
            await sync(ib)
            for t in (off, stop, off_trail):
                assert t.orderStatus.status == "Cancelled", t
                assert t.log[-1].errorCode == 110 and "minimum price variation" in t.log[-1].message
                assert sim.ctx.book.get(1, t.order.orderId) is None  # never accepted
            assert pct_only.orderStatus.status == on.orderStatus.status == "Submitted"
            on.order.lmtPrice = 50.115  # a modification off the tick: refused, order kept
            ib.placeOrder(c, on.order)
            await sync(ib)
            assert sim.ctx.book.get(1, on.order.orderId).req.lmt_price == 50.12
            on.order.lmtPrice = 50.11
            ib.placeOrder(c, on.order)
            await sync(ib)
            await asyncio.sleep(0.05)
            assert sim.ctx.book.get(1, on.order.orderId).req.lmt_price == 50.11
            assert errors.codes().count(110) == 4

    run(main())
