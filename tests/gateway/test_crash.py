"""Crashes: the trading process killed with SIGKILL between writing an intent and its
fill, then restarted; and a death between the intent and ``placeOrder``. Zero lost fills,
zero duplicate orders, and the backtest's fills."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from stratvector.config import load_config
from stratvector.store import Journal
from tests.gateway.conftest import (
    assert_books_agree,
    assert_parity,
    backtest_reference,
    done_with,
    journal_fills,
    make_trader,
    running_sim,
    settle,
    sim_costs,
    spawn_trader,
    step,
    step_process,
    wait_status,
    write_bars,
    write_config,
)


async def test_kill_9_between_intent_and_fill_then_restart(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", {"AAA": 71, "BBB": 72}, n=100)
    cfg = write_config(tmp_path, "sma", ["AAA", "BBB"])
    status = tmp_path / "status.json"
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        proc = await spawn_trader(cfg, sim.port, status)
        await wait_status(status, proc, done_with(first))
        for _ in range(60):
            await step_process(sim, status, proc)
            if sim.ctx.book.working():
                break
        working = sim.ctx.book.working()
        assert working, "no order was sent"
        with Journal(load_config(cfg).journal_url()) as j:
            pending = {o.order_ref for o in j.orders.pending_intents()}
        assert {o.req.order_ref for o in working} <= pending  # journaled, sent, unfilled
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        status.unlink()
        assert await sim.advance(1) == 1  # the orders fill while the trader is dead
        proc = await spawn_trader(cfg, sim.port, status)
        s = await wait_status(status, proc, done_with(sim.ctx.clock.last_closed_time()))
        assert s["fills"] >= len(working)
        for _ in range(30):
            await step_process(sim, status, proc)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))


async def test_death_between_intent_and_place_order(tmp_path: Path) -> None:
    """The journal holds intents IB never saw: on restart, still for the newest bar, they
    are sent under their own refs (once); the fills are the backtest's."""
    write_bars(tmp_path / "bars", {"AAA": 81, "BBB": 82}, n=100)
    cfg = write_config(tmp_path, "sma", ["AAA", "BBB"])
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        trader = make_trader(sim, [cfg])
        await trader.start()
        await settle(trader)
        lost: list[str] = []
        real_place = trader.executor.placer.place

        def die_before_sending(ref, plan, order, submitted=None):  # the process "dies" here
            lost.append(ref)
            raise RuntimeError("the process died here")

        trader.executor.placer.place = die_before_sending  # type: ignore[method-assign]
        for _ in range(60):
            await sim.advance(1)
            t = sim.ctx.clock.last_closed_time()
            await trader.until(
                lambda t=t: (
                    trader.seen(t)
                    and all(r.idle.is_set() for r in trader.runners.values())
                    and trader.jq.backlog == 0
                ),
                10,
            )
            if lost:
                break
        assert lost and not sim.ctx.book.working()
        trader.executor.placer.place = real_place  # type: ignore[method-assign]
        trader.conn.close()  # no clean stop: the process is gone
        await trader.supervisor.stop()
        await trader.guard.stop()
        trader.jq.close()
        trader.journal.close()

        again = make_trader(sim, [cfg])
        await again.start()
        try:
            await settle(again)
            assert again.last_report is not None and again.last_report.resent == len(lost)
            assert {o.req.order_ref for o in sim.ctx.book.working()} == set(lost)
            await step(sim, again, 40)
        finally:
            await again.stop()
        bt = backtest_reference(cfg, sim, first)
    assert_books_agree(sim, cfg)
    assert_parity(bt, journal_fills(cfg))
