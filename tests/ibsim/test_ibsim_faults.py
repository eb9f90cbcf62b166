"""Faults as the client sees them: drops, a Gateway restart, 1100/1101/1102, pacing, jitter."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from ib_async import IB, MarketOrder, Stock

from stratvector.ibsim import PacingLimits

from ._support import ErrorLog, client, running, sync, wait_until

AAPL = Stock("AAPL", "SMART", "USD")


async def test_drop_all_connections(sample_dir):
    async with running(sample_dir) as sim, client(sim, 1) as a, client(sim, 2) as b:
        gone = []
        a.disconnectedEvent += lambda: gone.append("a")
        b.disconnectedEvent += lambda: gone.append("b")
        assert sim.drop_connections() == 2
        await wait_until(lambda: sorted(gone) == ["a", "b"], what="both clients dropped")
        assert not a.isConnected() and not b.isConnected()
        async with client(sim, 1) as again:  # the server itself keeps accepting
            assert again.isConnected()


async def test_gateway_restart_refuses_then_accepts_with_state_kept(syn_dir):
    async with running(syn_dir, start=1) as sim:
        async with client(sim) as ib:
            [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
            ib.placeOrder(c, MarketOrder("BUY", 10))
            await sync(ib)
            await sim.advance(1)
            await sync(ib)
            gone = []
            ib.disconnectedEvent += lambda: gone.append(True)
            task = sim.begin_restart(0.6)
            await wait_until(lambda: gone, what="restart drops the client")
        await asyncio.sleep(0.05)
        assert not sim.accepting
        with pytest.raises(ConnectionRefusedError):
            await IB().connectAsync("127.0.0.1", sim.port, clientId=1, timeout=2)
        await asyncio.wait_for(task, 3)
        assert sim.accepting
        async with client(sim) as ib:
            [pos] = ib.positions()
            assert pos.position == 10
            assert len(ib.fills()) == 1


async def test_connectivity_notices_with_the_socket_open(sample_dir):
    async with running(sample_dir, speed=200.0) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        sim.connectivity_lost()
        await wait_until(lambda: 1100 in errors.codes(), what="1100")
        pos = sim.ctx.clock.pos
        await asyncio.sleep(0.1)
        assert sim.ctx.clock.pos == pos  # the replay pauses while IB is "away"
        assert ib.isConnected()
        sim.connectivity_restored(data_lost=False)
        await wait_until(lambda: 1102 in errors.codes(), what="1102")
        await wait_until(lambda: sim.ctx.clock.pos > pos, what="replay resumes")
        assert ib.isConnected()
        await sync(ib)  # ib_async re-requests the account summary on 1102: answered


async def test_connectivity_restored_with_data_lost_ends_subscriptions(sample_dir):
    async with running(sample_dir) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "", "5 D", "1 day", "TRADES", True, keepUpToDate=True
        )
        n = len(bars)
        sim.connectivity_lost()
        sim.connectivity_restored(data_lost=True)
        await wait_until(lambda: 1101 in errors.codes(), what="1101")
        assert errors.codes().index(1100) < errors.codes().index(1101)
        await sim.advance(3)
        await sync(ib)
        assert len(bars) == n  # the client must resubscribe after 1101


async def test_pacing_identical_request_and_per_contract_burst(sample_dir):
    async with running(sample_dir) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        first = await ib.reqHistoricalDataAsync(AAPL, "", "5 D", "1 day", "TRADES", True)
        again = await ib.reqHistoricalDataAsync(AAPL, "", "5 D", "1 day", "TRADES", True)
        assert len(first) > 0 and len(again) == 0
        assert errors.codes() == [162]
        assert "pacing violation" in errors.items[0][2]
        # "six or more requests for the same contract within two seconds" violate
        results = []
        for days in range(6, 11):
            bars = await ib.reqHistoricalDataAsync(AAPL, "", f"{days} D", "1 day", "TRADES", True)
            results.append(len(bars))
        assert all(r > 0 for r in results[:4])
        assert results[4] == 0  # the 6th distinct request within 2 s
        assert errors.codes().count(162) == 2
        assert "6 or more" in errors.items[-1][2]
        other = await ib.reqHistoricalDataAsync(
            Stock("NVDA", "SMART", "USD"), "", "5 D", "1 day", "TRADES", True
        )
        assert len(other) > 0  # another contract is not affected


async def test_pacing_total_requests_per_window(sample_dir):
    # IB counts only bars of 30 s or less; this test counts every size (daily data)
    limits = PacingLimits(
        max_requests=4, window=600.0, per_contract_max=100, window_max_bar=math.inf
    )
    async with running(sample_dir, pacing=limits) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        got = [
            len(await ib.reqHistoricalDataAsync(AAPL, "", f"{d} D", "1 day", "TRADES", True))
            for d in range(5, 10)
        ]
        assert [g > 0 for g in got] == [True, True, True, True, False]
        assert errors.codes() == [162]


async def test_jitter_delays_messages_but_keeps_their_order(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
        sim.set_jitter(0.03, min_delay=0.01)
        t0 = time.perf_counter()
        await sync(ib)
        assert time.perf_counter() - t0 >= 0.01
        trades = [ib.placeOrder(c, MarketOrder("BUY", 10)) for _ in range(5)]
        await sync(ib)
        await sim.advance(1)
        await sync(ib)
        assert [t.orderStatus.status for t in trades] == ["Filled"] * 5
        assert all(len(t.fills) == 1 and t.fills[0].commissionReport.commission for t in trades)
        sim.set_jitter(0.0)
