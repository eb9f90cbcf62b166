"""Faults: each with zero lost fills and zero duplicate orders (and, where the fault does
not change what the backtest would do, the backtest's exact fills)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from ib_async import IB, MarketOrder, Stock

from stratvector.config import load_config
from stratvector.gateway import State
from stratvector.ibsim import PacingLimits
from stratvector.store import Journal
from tests.gateway.conftest import (
    assert_books_agree,
    assert_parity,
    backtest_reference,
    journal_fills,
    running_sim,
    sim_costs,
    step,
    step_until_orders,
    trading,
    wait_reconnected,
    write_bars,
    write_config,
)

SYMBOLS = {"AAA": 21, "BBB": 22}


def _setup(tmp_path: Path, **config) -> Path:
    write_bars(tmp_path / "bars", SYMBOLS, n=120)
    return write_config(tmp_path, "sma", list(SYMBOLS), **config)


async def test_drop_between_send_and_fill(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg]) as trader:
            for k in range(1, 4):
                await step_until_orders(sim, trader)
                assert sim.ctx.book.working(), "the orders should be working at IB, unfilled"
                sim.drop_connections()
                await wait_reconnected(trader, k)
            await step(sim, trader, 120)
            assert trader.supervisor.reconnects == 3
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))


async def test_gateway_restart_mid_session(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg]) as trader:
            await step(sim, trader, 20)
            restart = sim.begin_restart(0.5)
            await trader.until(lambda: trader.state.state != State.READY, 5)
            await restart
            await wait_reconnected(trader)
            await step(sim, trader, 120)
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))


async def test_fill_while_disconnected_is_recovered(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg]) as trader:
            for k in range(1, 3):
                await step_until_orders(sim, trader)
                fills_before = trader.executor.stats.fills
                restart = sim.begin_restart(0.6)
                await trader.until(lambda: not trader.ib.isConnected(), 5)
                assert await sim.advance(1) == 1  # the orders fill while nobody listens
                await restart
                await wait_reconnected(trader, k)
                assert trader.last_report is not None
                assert trader.last_report.fills_recovered >= 1
                assert trader.executor.stats.fills > fills_before
            await step(sim, trader, 120)
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))


async def test_connectivity_lost_then_restored(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg]) as trader:
            for data_lost in (False, True):
                await step_until_orders(sim, trader)
                sim.connectivity_lost()
                await trader.until(lambda: trader.state.state == State.DEGRADED, 5)
                await sim.advance(1)  # fills and a bar arrive; no decision while degraded
                sent = trader.executor.stats.sent
                await asyncio.sleep(0.1)
                assert trader.executor.stats.sent == sent
                sim.connectivity_restored(data_lost=data_lost)
                await trader.until(lambda: trader.state.state == State.READY and trader.quiet(), 10)
            await step(sim, trader, 120)
            assert trader.supervisor.reconnects == 0
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))


async def test_order_rejected_by_ib_is_journaled_and_not_resent(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step_until_orders(sim, trader)
        sim.reject_next_order("ibsim: no shares to borrow", count=10)
        await step_until_orders(sim, trader)
        sim.ctx.faults.reject_next.clear()
        assert trader.executor.stats.rejected >= 1
        await step(sim, trader, 30)
    assert_books_agree(sim, cfg)
    with Journal(load_config(cfg).journal_url()) as j:
        rejected = [o for o in j.orders.list_orders(limit=None) if o.status == "Cancelled"]
        events = j.events.list_events(kind="order_rejected")
    assert rejected and events
    with Journal(load_config(cfg).journal_url()) as j:
        msgs = [h.message or "" for h in j.orders.history(rejected[0].order_ref)]
    assert any("no shares to borrow" in m for m in msgs)
    assert rejected[0].ib_order_id is not None


async def _buy_from_another_client(sim, symbol: str, qty: int) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=77, timeout=5)
    try:
        [contract] = await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
        ib.placeOrder(contract, MarketOrder("BUY", qty))
        await ib.reqCurrentTimeAsync()
    finally:
        ib.disconnect()


async def test_unknown_position_on_reconnect_halts(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 3)
        await _buy_from_another_client(sim, "AAA", 7)
        await step(sim, trader, 1)  # it fills; only a reconnect reconciles positions
        sim.drop_connections()
        await wait_reconnected(trader)
        assert trader.state.state == State.HALTED
        assert trader.last_report.unknown_positions == {"AAA": 7.0}
        sent = trader.executor.stats.sent
        await step(sim, trader, 30)
        assert trader.executor.stats.sent == sent  # nothing new while halted
    with Journal(load_config(cfg).journal_url()) as j:
        assert j.control.is_halted()
        assert j.events.list_events(kind="reconcile")


async def test_unknown_position_on_reconnect_adopted(tmp_path: Path) -> None:
    cfg = _setup(tmp_path, gateway='on_unknown_position = "adopt"')
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 3)
        held = trader.ledgers["sma_crossover"].position("AAA")
        await _buy_from_another_client(sim, "AAA", 7)
        await step(sim, trader, 1)
        sim.drop_connections()
        await wait_reconnected(trader)
        assert trader.state.state == State.READY
        ledger = trader.ledgers["sma_crossover"]
        ledger.settle(2**62)
        assert ledger.position("AAA") == held + 7
        await step(sim, trader, 40)
        ib_pos = {p.inst.symbol: p.qty for p in sim.ctx.account.positions()}
        assert ib_pos.get("AAA", 0.0) == ledger.position("AAA")
    fills = journal_fills(cfg)
    assert fills["exec_id"].str.startswith("adopt:").sum() == 1


async def test_pacing_violation_during_warmup(tmp_path: Path) -> None:
    from stratvector.gateway.pacing import PacingPolicy

    cfg = _setup(tmp_path)
    pacing = PacingLimits(max_requests=1, window=1.0, window_max_bar=math.inf)  # daily bars too
    policy = PacingPolicy(backoff_initial_s=0.2, backoff_max_s=1.0, identical_cooldown_s=0.5)
    async with running_sim(
        tmp_path / "bars", start=30, pacing=pacing, **sim_costs(load_config(cfg))
    ) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg], pacing=policy) as trader:
            violations = trader.history.pacing_violations
            refused = sum(f.refusals for f in trader.feeds.values())
            await step(sim, trader, 100)
        bt = backtest_reference(cfg, sim, first)
    assert violations >= 1 and refused >= 1
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))


async def test_limit_orders_with_offset(tmp_path: Path) -> None:
    cfg = _setup(tmp_path, gateway='order_type = "limit"\nlimit_offset_bps = 50')
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 40)
        assert trader.executor.stats.sent > 0
    with Journal(load_config(cfg).journal_url()) as j:
        orders = j.orders.list_orders(limit=None)
    assert orders and all(o.order_type == "LMT" for o in orders)
    for o in orders:
        ref = o.detail["ref_price"]
        assert (
            (o.limit_price <= ref * 1.005 + 1e-9)
            if o.side == "BUY"
            else (o.limit_price >= ref * 0.995 - 1e-9)
        )
        assert abs(o.limit_price * 100 - round(o.limit_price * 100)) < 1e-6  # on the tick
    assert_books_agree(sim, cfg)
