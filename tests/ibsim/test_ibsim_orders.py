"""Orders through the real client: every type's lifecycle, fill prices, commissions, P&L.

The synthetic series SYN (``conftest.SYN_ROWS``) has known prices. The stand-in starts
with bar 0 closed (``start=1``); each ``sim.advance(1)`` reveals the next bar.
"""

from __future__ import annotations

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Order, Stock, StopLimitOrder, StopOrder

from stratvector.backtest.costs import BpsSlippage, IBKRFixed, commission, slipped_price

from ._support import ErrorLog, client, running, sync, wait_until
from .conftest import SYN_ROWS

SYN = Stock("SYN", "SMART", "USD")


def fee(qty: float, price: float) -> float:
    return commission(IBKRFixed(), qty, price)


def statuses(trade) -> list[str]:
    return [e.status for e in trade.log]


class EventOrder:
    """Status changes of one trade and API errors, in arrival order."""

    def __init__(self, ib: IB, trade) -> None:
        self.items: list[tuple[str, object]] = []
        trade.statusEvent += lambda t: self.items.append(("status", t.orderStatus.status))
        ib.errorEvent += lambda req_id, code, *_: self.items.append(("error", code))


async def _qualified(ib: IB):
    [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
    return c


async def _step(sim, ib: IB, n: int = 1) -> None:
    """Let the server read what the client sent, close ``n`` bars, let the client read."""
    await sync(ib)
    await sim.advance(n)
    await sync(ib)


async def test_market_order_round_trip_prices_commissions_positions_pnl(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        buy = ib.placeOrder(c, MarketOrder("BUY", 100))
        await sync(ib)
        assert buy.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 1 opens at 100
        assert buy.orderStatus.status == "Filled"
        assert statuses(buy)[:2] == ["PendingSubmit", "Submitted"]
        assert statuses(buy)[-1] == "Filled"
        [fill] = buy.fills
        assert fill.execution.price == SYN_ROWS[1][0] == 100.0
        assert fill.execution.side == "BOT"
        assert fill.execution.time.date().isoformat() == "2024-01-03"
        assert fill.commissionReport.commission == pytest.approx(fee(100, 100.0))
        assert fill.commissionReport.realizedPNL == 0.0  # opening fill: unset -> 0
        [pos] = ib.positions()
        assert pos.position == 100 and pos.avgCost == pytest.approx(100.0 + fee(100, 100.0) / 100)
        [item] = ib.portfolio()
        assert item.marketPrice == SYN_ROWS[1][3]
        assert item.unrealizedPNL == pytest.approx(100 * (101.0 - pos.avgCost))

        sell = ib.placeOrder(c, MarketOrder("SELL", 100))
        await _step(sim, ib)  # bar 2 opens at 102
        assert sell.orderStatus.status == "Filled"
        [fill2] = sell.fills
        assert fill2.execution.price == 102.0 and fill2.execution.side == "SLD"
        realized = (102.0 - pos.avgCost) * 100 - fee(100, 102.0)
        assert fill2.commissionReport.realizedPNL == pytest.approx(realized)
        await wait_until(lambda: not ib.positions(), what="a flat position")
        values = {
            v.tag: float(v.value)
            for v in ib.accountValues()
            if v.currency == "USD" and v.tag in ("NetLiquidation", "RealizedPnL", "TotalCashValue")
        }
        cash = 1_000_000 - 100 * 100.0 - fee(100, 100.0) + 100 * 102.0 - fee(100, 102.0)
        assert values["TotalCashValue"] == pytest.approx(cash, abs=0.01)
        assert values["NetLiquidation"] == pytest.approx(cash, abs=0.01)
        assert values["RealizedPnL"] == pytest.approx(realized, abs=0.01)


async def test_market_order_slippage_from_the_cost_model(syn_dir):
    model = BpsSlippage(bps=10.0)
    async with running(syn_dir, start=1, slippage=model) as sim, client(sim) as ib:
        c = await _qualified(ib)
        buy = ib.placeOrder(c, MarketOrder("BUY", 10))
        await _step(sim, ib)
        assert buy.orderStatus.avgFillPrice == slipped_price(model, 100.0, 10, 1.0)
        sell = ib.placeOrder(c, MarketOrder("SELL", 10))
        await _step(sim, ib)
        assert sell.orderStatus.avgFillPrice == slipped_price(model, 102.0, 10, -1.0)


async def test_limit_order_rests_then_fills_at_the_limit_or_a_better_open(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        lmt = ib.placeOrder(c, LimitOrder("BUY", 10, 97.5))
        await _step(sim, ib, 2)  # bars 1-2 stay above 97.5
        assert lmt.orderStatus.status == "Submitted" and not lmt.fills
        await _step(sim, ib)  # bar 3: low 97
        assert lmt.orderStatus.status == "Filled"
        assert lmt.fills[0].execution.price == 97.5
        gap = ib.placeOrder(c, LimitOrder("BUY", 10, 96.5))
        await _step(sim, ib)  # bar 4 opens at 96: better than the limit
        assert gap.fills[0].execution.price == 96.0


async def test_stop_order_fills_at_the_stop_or_the_gap_open(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        ib.placeOrder(c, MarketOrder("BUY", 20))
        await _step(sim, ib)
        stop = ib.placeOrder(c, StopOrder("SELL", 10, 97.5))
        await _step(sim, ib)  # bar 2: low 101
        assert stop.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 3: open 103, low 97
        assert stop.fills[0].execution.price == 97.5
        gap = ib.placeOrder(c, StopOrder("SELL", 10, 96.5))
        await _step(sim, ib)  # bar 4 opens at 96, through the stop
        assert gap.fills[0].execution.price == 96.0
        await wait_until(lambda: not ib.positions(), what="flat")


async def test_stop_limit_triggers_then_fills_within_the_limit(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        sl = ib.placeOrder(c, StopLimitOrder("BUY", 10, 105.5, 105.0))
        await _step(sim, ib, 4)  # highs 102, 104, 103.5, 99
        assert sl.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 5: high 106 triggers at 105, within the 105.5 limit
        assert sl.fills[0].execution.price == 105.0


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [(2.0, None, 102.0), (None, 2.0, 104.0 * 0.98)],
)
async def test_trailing_stop_ratchets_then_triggers(syn_dir, amount, percent, expected):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        ib.placeOrder(c, MarketOrder("BUY", 10))
        await _step(sim, ib)  # long at 100; last close 101
        trail = Order(action="SELL", totalQuantity=10, orderType="TRAIL")
        if amount is not None:
            trail.auxPrice = amount
        else:
            trail.trailingPercent = percent
        t = ib.placeOrder(c, trail)
        await _step(sim, ib)  # bar 2: low 101 stays above; the high 104 ratchets the stop
        assert t.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 3: open 103, low 97 -> triggered at the ratcheted stop
        assert t.fills[0].execution.price == pytest.approx(expected)


async def test_bracket_take_profit_fills_and_cancels_the_stop_loss(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        errors = ErrorLog(ib)
        parent, tp, sl = (
            ib.placeOrder(c, o) for o in ib.bracketOrder("BUY", 100, 100.5, 103.5, 98.0)
        )
        await sync(ib)
        assert parent.orderStatus.status == "Submitted"
        assert tp.orderStatus.status == sl.orderStatus.status == "PreSubmitted"
        await _step(sim, ib)  # bar 1 opens at 100: the parent fills, children start working
        assert parent.orderStatus.status == "Filled"
        assert parent.fills[0].execution.price == 100.0
        assert tp.orderStatus.status == sl.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 2: high 104 reaches the take-profit
        assert tp.orderStatus.status == "Filled" and tp.fills[0].execution.price == 103.5
        assert sl.orderStatus.status == "Cancelled"
        assert (sl.order.orderId, 202) in [(r, code) for r, code, _ in errors.items]
        realized = tp.fills[0].commissionReport.realizedPNL
        avg = 100.0 + fee(100, 100.0) / 100
        assert realized == pytest.approx((103.5 - avg) * 100 - fee(100, 103.5))
        await wait_until(lambda: not ib.positions(), what="flat")


async def test_bracket_filled_at_the_open_exits_in_the_same_bar_stop_first(syn_dir):
    """As the backtest: exits are checked in the bar of an entry filled at the open, and
    when the stop-loss and the take-profit both could fill in that bar, the stop wins."""
    async with running(syn_dir, start=3) as sim, client(sim) as ib:
        c = await _qualified(ib)
        orders = ib.bracketOrder("BUY", 10, 103.2, 103.4, 97.5)
        parent, tp, sl = (ib.placeOrder(c, o) for o in orders)
        await _step(sim, ib)  # bar 3: open 103 fills the parent; high 103.5, low 97
        assert parent.orderStatus.status == "Filled"
        assert parent.fills[0].execution.price == 103.0
        assert sl.orderStatus.status == "Filled" and sl.fills[0].execution.price == 97.5
        assert tp.orderStatus.status == "Cancelled"
        assert ib.positions() == []


async def test_open_phase_fills_at_the_open_and_the_children_work_as_fixed_before_the_rest(
    syn_dir,
):
    """advance_open fills what the open fills and reports it without closing the bar; the
    client then moves the bracket's children (as the gateway fixes a take-profit at the
    entry's fill), and the rest of the bar is matched against the moved prices."""
    async with running(syn_dir, start=3) as sim, client(sim) as ib:
        c = await _qualified(ib)
        parent, tp, sl = (
            ib.placeOrder(c, o) for o in ib.bracketOrder("BUY", 10, 103.2, 103.4, 97.5)
        )
        await sync(ib)
        closed = sim.ctx.clock.last_closed_time()
        assert await sim.advance_open()  # bar 3 opens at 103
        await sync(ib)
        assert parent.orderStatus.status == "Filled"
        assert parent.fills[0].execution.price == 103.0
        assert sim.ctx.clock.last_closed_time() == closed  # the bar is still open
        assert tp.orderStatus.status == sl.orderStatus.status == "Submitted"
        assert not tp.fills and not sl.fills  # nothing of the bar's range applied yet
        tp.order.lmtPrice, sl.order.auxPrice = 104.0, 96.0  # the client moves both
        ib.placeOrder(c, tp.order)
        ib.placeOrder(c, sl.order)
        await _step(sim, ib)  # the rest of bar 3: high 103.5, low 97
        assert sim.ctx.clock.last_closed_time() > closed
        assert not tp.fills and not sl.fills  # neither moved level was reached
        assert [(p.position, p.contract.symbol) for p in ib.positions()] == [(10.0, "SYN")]
        assert len(parent.fills) == 1  # matched once, not again by the rest of the bar


async def test_bracket_filled_inside_the_bar_exits_from_the_next_bar(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        parent, tp, sl = (
            ib.placeOrder(c, o) for o in ib.bracketOrder("BUY", 10, 99.5, 110.0, 99.2)
        )
        await _step(sim, ib)  # bar 1: open 100, low 99: the parent fills at 99.5 inside the bar
        assert parent.fills[0].execution.price == 99.5
        assert sl.orderStatus.status == "Submitted" and not sl.fills  # low 99 not applied
        await _step(sim, ib)  # bar 2: low 101
        assert sl.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 3: low 97 triggers the stop at 99.2
        assert sl.fills[0].execution.price == 99.2
        assert tp.orderStatus.status == "Cancelled"


async def test_bracket_parent_cancel_cancels_the_children(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        parent, tp, sl = (ib.placeOrder(c, o) for o in ib.bracketOrder("BUY", 10, 50.0, 60.0, 40.0))
        await sync(ib)
        ib.cancelOrder(parent.order)
        await wait_until(lambda: sl.orderStatus.status == "Cancelled", what="children cancelled")
        assert parent.orderStatus.status == tp.orderStatus.status == "Cancelled"


async def test_oca_group_one_fill_cancels_the_rest(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        a, b = ib.oneCancelsAll([LimitOrder("BUY", 10, 99.5), StopOrder("BUY", 10, 103.8)], "g1", 1)
        ta, tb = ib.placeOrder(c, a), ib.placeOrder(c, b)
        await _step(sim, ib)  # bar 1: low 99 fills the limit; high 102 misses the stop
        assert ta.orderStatus.status == "Filled" and ta.fills[0].execution.price == 99.5
        assert tb.orderStatus.status == "Cancelled"


async def test_oca_reduce_type_shrinks_the_others(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        a, b = ib.oneCancelsAll(
            [LimitOrder("BUY", 100, 99.5), LimitOrder("BUY", 150, 90.0)], "g2", 2
        )
        ta, tb = ib.placeOrder(c, a), ib.placeOrder(c, b)
        await _step(sim, ib)
        assert ta.orderStatus.status == "Filled"
        assert tb.orderStatus.status == "Submitted"
        await wait_until(lambda: tb.order.totalQuantity == 50, what="reduced to 50")


async def test_modify_then_fill_at_the_new_price(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        t = ib.placeOrder(c, LimitOrder("BUY", 10, 90.0))
        await sync(ib)
        t.order.lmtPrice = 99.5
        ib.placeOrder(c, t.order)
        await wait_until(lambda: any(e.message == "Modified" for e in t.log), what="Modified")
        await _step(sim, ib)
        assert t.fills[0].execution.price == 99.5
        [open_order] = [
            o for o in (await ib.reqCompletedOrdersAsync(False)) if o.order.permId == t.order.permId
        ]
        assert open_order.order.lmtPrice == 99.5


async def test_cancel_sends_cancelled_then_202(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        t = ib.placeOrder(c, LimitOrder("BUY", 10, 50.0))
        await sync(ib)
        seen = EventOrder(ib, t)
        ib.cancelOrder(t.order)
        await wait_until(lambda: ("error", 202) in seen.items, what="error 202")
        assert seen.items.index(("status", "Cancelled")) < seen.items.index(("error", 202))
        await _step(sim, ib, 3)
        assert not t.fills


async def test_global_cancel_cancels_every_clients_orders(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim, 1) as a, client(sim, 2) as b:
        c = await _qualified(a)
        t1 = a.placeOrder(c, LimitOrder("BUY", 10, 50.0))
        t2 = a.placeOrder(c, StopOrder("BUY", 10, 150.0))
        t3 = b.placeOrder(c, LimitOrder("SELL", 10, 150.0))
        await sync(a, b)
        a.reqGlobalCancel()
        await wait_until(
            lambda: all(t.orderStatus.status == "Cancelled" for t in (t1, t2, t3)),
            what="all cancelled",
        )
        assert sim.status()["open_orders"] == 0


async def test_reject_next_order_sends_201_then_inactive(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        sim.reject_next_order("margin test")
        t = ib.placeOrder(c, MarketOrder("BUY", 10))
        seen = EventOrder(ib, t)
        await wait_until(lambda: t.orderStatus.status == "Inactive", what="Inactive")
        assert seen.items.index(("error", 201)) < seen.items.index(("status", "Inactive"))
        assert any("margin test" in e.message for e in t.log)
        ok = ib.placeOrder(c, MarketOrder("BUY", 10))  # only the next one is rejected
        await _step(sim, ib)
        assert ok.orderStatus.status == "Filled"


async def test_invalid_orders_are_rejected_or_get_200(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        c = await _qualified(ib)
        moc = ib.placeOrder(c, Order(action="BUY", totalQuantity=10, orderType="MOC"))
        zero = ib.placeOrder(c, MarketOrder("BUY", 0))
        unknown = ib.placeOrder(Stock("ZZZZ", "SMART", "USD"), MarketOrder("BUY", 10))
        await wait_until(lambda: 200 in errors.codes(), what="error 200")
        await wait_until(lambda: zero.orderStatus.status == "Inactive", what="rejected")
        assert moc.orderStatus.status == "Inactive"
        assert errors.codes().count(201) == 2
        assert unknown.orderStatus.status == "Cancelled"  # ib_async's reaction to error 200


async def test_partial_fills_with_participation(syn_dir):
    async with running(syn_dir, start=1, participation=0.05) as sim, client(sim) as ib:
        c = await _qualified(ib)  # bar volume 1000 -> at most 50 shares per bar
        t = ib.placeOrder(c, MarketOrder("BUY", 120))
        await _step(sim, ib)
        assert t.orderStatus.status == "Submitted"
        assert (t.orderStatus.filled, t.orderStatus.remaining) == (50, 70)
        await _step(sim, ib, 2)
        assert t.orderStatus.status == "Filled"
        assert [f.execution.shares for f in t.fills] == [50, 50, 20]
        assert [f.execution.price for f in t.fills] == [100.0, 102.0, 103.0]
        assert t.orderStatus.avgFillPrice == pytest.approx((50 * 100 + 50 * 102 + 20 * 103) / 120)
        assert [f.execution.cumQty for f in t.fills] == [50, 100, 120]


async def test_what_if_reports_the_model_commission(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        state = await ib.whatIfOrderAsync(c, MarketOrder("BUY", 1000))
        assert state.commission == pytest.approx(fee(1000, 100.0))
        assert sim.status()["open_orders"] == 0


async def test_day_orders_expire_when_enabled(syn_dir):
    async with running(syn_dir, start=1, expire_day_orders=True) as sim, client(sim) as ib:
        c = await _qualified(ib)
        day = ib.placeOrder(c, LimitOrder("BUY", 10, 97.5))  # tif "" is DAY at IB
        gtc = ib.placeOrder(c, LimitOrder("BUY", 10, 97.5, tif="GTC"))
        await _step(sim, ib)  # bar 1: works, no fill
        assert day.orderStatus.status == "Submitted"
        await _step(sim, ib)  # bar 2 is a new day: the DAY order expired first
        assert day.orderStatus.status == "Cancelled"
        await _step(sim, ib, 1)  # bar 3: low 97 fills the GTC order
        assert gtc.orderStatus.status == "Filled" and not day.fills
