"""Forming bars end to end: the trader on IB's kind of keepUpToDate stream (ibsim with
``forming_bars``) decides each bar once, at its close plus the grace period -- not when
the next bar appears -- and trades what the backtest trades on the same bars.

Time: ibsim's simulated clock is also the feed's (:class:`~tests.gateway.clocks.SimTime`).
A test closes a bar in ibsim, lets the trader read what ibsim sent (one round trip on the
trader's own connection: ibsim answers in order, ib_async handles in order), then fires
the feed's due timer; it never waits in real time for a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd

from stratvector.backtest.engine import simulate_targets, strategy_target
from stratvector.backtest.result import BacktestResult
from stratvector.config import load_config
from stratvector.data import load_bars
from stratvector.gateway import Trader
from stratvector.gateway.feed import ClosedBar
from stratvector.gateway.sessions import SESSION_CLOSE_GRACE
from stratvector.ibsim import IBSim
from tests.gateway.clocks import SimTime
from tests.gateway.conftest import (
    assert_parity,
    backtest_reference,
    journal_fills,
    make_trader,
    running_sim,
    sim_costs,
    wait_reconnected,
    write_bars,
    write_config,
)
from tests.ibsim._forming import write_session_bars

US = {"forming_bars": True, "session": "09:30-16:00", "time_zone": "US/Eastern"}
GRACE = SESSION_CLOSE_GRACE


def forming_config(folder: Path, symbols: list[str], bar_size: str = "1d", **kw: str) -> Path:
    """A strategy config on IB's forming-bar stream (``bar_size`` other than daily too)."""
    extra = 'bar_updates = "forming"\n' + "\n".join(f"{k} = {v}" for k, v in kw.items())
    path = write_config(folder, "sma", symbols, gateway=extra)
    path.write_text(path.read_text().replace('bar_size = "1d"', f'bar_size = "{bar_size}"'))
    return path


@contextlib.asynccontextmanager
async def forming_trader(
    sim: IBSim, cfg: Path
) -> AsyncIterator[tuple[Trader, SimTime, list[ClosedBar]]]:
    """A started trader whose feeds run on ibsim's clock; every reported bar is recorded."""
    trader = make_trader(sim, [cfg])
    clock = SimTime(sim)
    seen: list[ClosedBar] = []
    for feed in trader.feeds.values():
        feed.clock = clock
        report = feed.on_bar

        def record(bar: ClosedBar, report=report) -> None:
            seen.append(bar)
            report(bar)

        feed.on_bar = record
    await trader.start()
    try:
        await trader.until(trader.quiet, 20)
        yield trader, clock, seen
    finally:
        await trader.stop()


async def read_and_fire(trader: Trader, clock: SimTime) -> None:
    """Let the trader read everything ibsim sent, then run the feed timers now due."""
    await asyncio.wait_for(trader.ib.reqCurrentTimeAsync(), 10)
    clock.fire()


async def close_next(sim: IBSim, trader: Trader, clock: SimTime) -> int:
    """Close the next bar in ibsim (opening it first if needed); its start time (ns)."""
    assert await sim.advance(1) == 1
    await read_and_fire(trader, clock)
    return int(sim.ctx.clock.last_closed_time() or 0)


async def let_pass(sim: IBSim, trader: Trader, clock: SimTime, seconds: float) -> None:
    await sim.advance_time(seconds)
    await read_and_fire(trader, clock)


async def decided(trader: Trader, t: int) -> None:
    await trader.until(lambda: trader.seen(t) and trader.quiet(), 20)


def once_each(seen: list[ClosedBar]) -> Counter[tuple[str, int]]:
    counts = Counter((b.symbol, b.time) for b in seen)
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not twice, f"bars reported more than once: {twice}"
    return counts


def reference(cfg_path: Path, sim: IBSim, first_ns: int, suffix: str) -> BacktestResult:
    """The backtest of ``cfg_path`` on the bars ibsim revealed (files ``SYM_<suffix>``),
    trading from bar ``first_ns``: :func:`backtest_reference` for any bar size."""
    cfg = load_config(cfg_path)
    strategy, settings = cfg.build()
    last = sim.ctx.clock.last_closed_time()
    frames, targets = {}, {}
    for sym in cfg.data.symbols:
        df = load_bars(Path(cfg.base_dir / cfg.data.paths[0]) / f"{sym}_{suffix}.csv")
        df = df[df.index.as_unit("ns").asi8 <= last]
        tgt = strategy_target(strategy, df, sym)
        tgt[df.index < pd.Timestamp(first_ns, tz="UTC")] = np.nan
        frames[sym], targets[sym] = df, tgt
    return simulate_targets(strategy, frames, targets, settings)


async def test_daily_bars_are_decided_at_the_close_plus_grace_with_backtest_parity(tmp_path):
    write_bars(tmp_path / "bars", {"AAA": 1, "BBB": 2}, n=120)
    cfg = forming_config(tmp_path, ["AAA", "BBB"])
    async with running_sim(tmp_path / "bars", start=40, **US, **sim_costs(load_config(cfg))) as sim:
        await sim.advance_time(GRACE + 1)  # the trader starts after the last close + grace
        first = sim.ctx.clock.last_closed_time()
        async with forming_trader(sim, cfg) as (trader, clock, seen):
            feed = trader.feeds["1d"]
            assert feed.windows["AAA"].last_time == first  # closed at subscribe, catch-up
            runner = trader.runners["sma_crossover"]
            at_start = feed.timer_closes
            for n in range(70):
                t = await close_next(sim, trader, clock)
                assert not trader.seen(t), "decided at the close, before the grace period"
                if n % 7 == 0:
                    await let_pass(sim, trader, clock, GRACE - 1)
                    assert not trader.seen(t), "decided before the grace period ended"
                    await let_pass(sim, trader, clock, 2)
                else:
                    await let_pass(sim, trader, clock, GRACE + 1)
                await decided(trader, t)
                assert not sim.ctx.clock.opened, "the next bar appeared before the decision"
                assert runner.last_decided == t
            status = trader.status()
        bt = backtest_reference(cfg, sim, first)
    assert status["state"] == "ready", status
    counts = once_each(seen)
    assert len(counts) == 2 * 70 and feed.revisions == 0
    assert feed.timer_closes - at_start == 2 * 70
    assert_parity(bt, journal_fills(cfg))


async def test_the_session_last_intraday_bar_is_decided_at_the_close_not_next_morning(tmp_path):
    # seeds where a session's last bar changes the position (its order fills next morning)
    write_session_bars(tmp_path / "bars", {"AAA": 55, "BBB": 56}, days=4, minutes=15)
    cfg = forming_config(
        tmp_path, ["AAA", "BBB"], "15min", warmup_start='"2024-01-02"', history_bars="500"
    )
    async with running_sim(tmp_path / "bars", start=30, **US, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with forming_trader(sim, cfg) as (trader, clock, seen):
            feed = trader.feeds["15min"]
            ends = []
            for _ in range(72):
                t = await close_next(sim, trader, clock)
                if sim.ctx.clock.opened:  # inside the session: the next bar closed it
                    await decided(trader, t)
                    continue
                # the session's last bar: no next bar until tomorrow
                assert not trader.seen(t)
                await let_pass(sim, trader, clock, GRACE - 1)
                assert not trader.seen(t), "a bar ending at the close waits the session grace"
                await let_pass(sim, trader, clock, 2)
                await decided(trader, t)
                assert not sim.ctx.clock.opened, "decided the next morning"
                ends.append(pd.Timestamp(t, tz="UTC").strftime("%m-%d %H:%M"))
            status = trader.status()
        bt = reference(cfg, sim, first, "15min")
    assert status["state"] == "ready", status
    assert ends == ["01-03 20:45", "01-04 20:45"]
    once_each(seen)
    assert feed.timer_closes == 2 * len(ends)
    assert_parity(bt, journal_fills(cfg))
    # trades were decided at a session's last bar (filled at the next morning's open)
    fills = pd.DatetimeIndex(bt.orders["time"])
    assert (fills.strftime("%H:%M") == "14:30").any(), bt.orders


async def test_a_bar_revised_after_its_decision_is_warned_about_and_not_decided_again(
    tmp_path, caplog
):
    write_bars(tmp_path / "bars", {"AAA": 1, "BBB": 2}, n=60)
    cfg = forming_config(tmp_path, ["AAA", "BBB"])
    async with running_sim(tmp_path / "bars", start=40, **US, **sim_costs(load_config(cfg))) as sim:
        await sim.advance_time(GRACE + 1)
        async with forming_trader(sim, cfg) as (trader, clock, seen):
            feed = trader.feeds["1d"]
            runner = trader.runners["sma_crossover"]
            t = await close_next(sim, trader, clock)
            await let_pass(sim, trader, clock, GRACE + 1)
            await decided(trader, t)
            decisions = runner.decisions
            close = feed.windows["AAA"].close_at(t)
            with caplog.at_level(logging.WARNING, "stratvector.gateway.feed"):
                assert sim.revise_last_bar("AAA", close=round(close * 1.02, 2)) == 1
                await read_and_fire(trader, clock)
                await trader.until(trader.quiet, 20)
                assert runner.decisions == decisions, "the revised bar was decided again"
                t2 = await close_next(sim, trader, clock)  # the next bar brings it again
                await let_pass(sim, trader, clock, GRACE + 1)
                await decided(trader, t2)
                status = trader.status()
        warnings = [r.getMessage() for r in caplog.records if "revised" in r.getMessage()]
    assert len(warnings) == 1, warnings
    day = pd.Timestamp(t, tz="UTC").date().isoformat()
    assert warnings[0].startswith("AAA 1d bar " + day) and f"close {close:g} ->" in warnings[0]
    assert feed.revisions == 1 == status["bar_revisions_after_decision"]
    assert status["bars_closed_by_timer"] == feed.timer_closes > 0  # operators see both
    assert feed.windows["AAA"].close_at(t) == close  # the decided values stay
    assert Counter((b.symbol, b.time) for b in seen)[("AAA", t)] == 1
    assert runner.decisions == decisions + 1  # t2 only


async def test_disconnect_and_stop_cancel_the_close_timer(tmp_path):
    write_bars(tmp_path / "bars", {"AAA": 1}, n=60)
    cfg = forming_config(tmp_path, ["AAA"])
    async with running_sim(tmp_path / "bars", start=40, **US) as sim:
        await sim.advance_time(GRACE + 1)
        async with forming_trader(sim, cfg) as (trader, clock, seen):
            feed = trader.feeds["1d"]
            t = await close_next(sim, trader, clock)
            assert feed.timer.armed("AAA") == t and len(clock.pending) == 1
            sim.drop_connections()
            await trader.until(lambda: not feed.subscribed, 10)
            assert not feed.timer.active and not clock.pending and len(feed.timer) == 0
            reported = len(seen)
            await wait_reconnected(trader)
            # subscribed again: the bar's deadline is set again, and it closes once
            assert feed.timer.armed("AAA") == t and len(clock.pending) == 1
            await let_pass(sim, trader, clock, GRACE + 1)
            await decided(trader, t)
            assert len(seen) == reported + 1
            await close_next(sim, trader, clock)
            assert len(clock.pending) == 1
        assert not feed.timer.active and not clock.pending  # stopped: unsubscribed
    once_each(seen)


def test_the_graces_come_from_the_config(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, "g", ["AAA"], gateway="close_grace = 2.5\nsession_close_grace = 90.0"
    )
    trader = Trader([load_config(cfg)])  # the constructor does no I/O
    (feed,) = trader.feeds.values()
    assert (feed.close_grace, feed.session_close_grace) == (2.5, 90.0)
