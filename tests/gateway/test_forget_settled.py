"""Settled orders are forgotten (ib_async's books stay bounded) without changing what is
traded: the fills still equal the backtest's, and a reconnect that replays the forgotten
executions books none of them twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stratvector.config import load_config
from tests.gateway.conftest import (
    assert_books_agree,
    assert_parity,
    backtest_reference,
    journal_fills,
    running_sim,
    settle,
    sim_costs,
    step,
    trading,
    wait_reconnected,
    write_bars,
    write_config,
)

FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


async def test_forgotten_orders_change_nothing_traded_and_are_not_booked_again(
    tmp_path: Path,
) -> None:
    write_bars(tmp_path / "bars", {"AAA": 41, "BBB": 42}, n=140)
    cfg = write_config(tmp_path, "sma", ["AAA", "BBB"], risk="position_size = 0.4")
    async with running_sim(tmp_path / "bars", start=40, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg]) as trader:
            wrapper = trader.ib.wrapper
            receiver = trader.executor.receiver
            forgotten = 0
            for _ in range(5):
                await step(sim, trader, 20)
                await settle(trader)
                # nothing is settled "before" a time in the past
                assert receiver.forget_settled(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == 0
                done = [t for t in wrapper.trades.values() if t.isDone()]
                forgotten += receiver.forget_settled(FAR_FUTURE)
                assert all(not t.isDone() for t in wrapper.trades.values())
                assert len(done) == 0 or forgotten > 0
                assert all(
                    t.trade is None or not t.trade.isDone() for t in trader.executor.orders.values()
                )
            assert forgotten > 10, "the run should have settled orders to forget"
            fills_before = trader.executor.stats.fills
            sim.drop_connections()  # the sync replays every execution of the session
            await wait_reconnected(trader, 1)
            assert trader.executor.stats.fills == fills_before  # none booked twice
            await step(sim, trader, 15)
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))
