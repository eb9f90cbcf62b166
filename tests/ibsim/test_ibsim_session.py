"""Session: handshake, startup sync, notices, current time, several clients, 326."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, Stock

from ._support import ErrorLog, client, running, sync, wait_until


async def test_connect_and_sync_is_fast_and_complete(sample_dir):
    async with running(sample_dir) as sim:
        ib = IB()
        errors = ErrorLog(ib)
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=7, timeout=5, raiseSyncErrors=True)
        elapsed = time.perf_counter() - t0
        try:
            assert ib.isConnected()
            assert elapsed < 1.0, f"connect took {elapsed:.2f}s"
            assert ib.managedAccounts() == ["DU1234567"]
            assert ib.client.serverVersion() == 178
            assert ib.positions() == []
            assert ib.openTrades() == []
            assert ib.fills() == []
            values = {v.tag: v.value for v in ib.accountValues() if v.currency in ("USD", "")}
            assert float(values["NetLiquidation"]) == pytest.approx(1_000_000.0)
            assert float(values["TotalCashValue"]) == pytest.approx(1_000_000.0)
            await sync(ib)
            assert {2104, 2106, 2158} <= set(errors.codes())
            assert ib.client.getReqId() >= 1
        finally:
            ib.disconnect()


async def test_current_time_is_the_simulated_close(sample_dir):
    async with running(sample_dir, start="2020-03-02") as sim, client(sim) as ib:
        now = await ib.reqCurrentTimeAsync()
        assert now == sim.ctx.clock.now().to_pydatetime()
        # AAPL's last closed bar starts 2020-02-28 (a Friday); now is its close.
        assert now.isoformat() == "2020-02-29T00:00:00+00:00"
        await sim.advance(1)
        assert (await ib.reqCurrentTimeAsync()).isoformat() == "2020-03-03T00:00:00+00:00"


async def test_several_clients_with_distinct_ids(sample_dir):
    async with (
        running(sample_dir) as sim,
        client(sim, 1) as a,
        client(sim, 2) as b,
        client(sim, 0) as c,
    ):
        assert a.isConnected() and b.isConnected() and c.isConnected()
        assert sorted(sim.status()["clients"]) == [0, 1, 2]
        [ca] = await a.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [cb] = await b.qualifyContractsAsync(Stock("NVDA", "SMART", "USD"))
        assert ca.conId and cb.conId and ca.conId != cb.conId


async def test_duplicate_client_id_gets_326_and_times_out(sample_dir):
    async with running(sample_dir) as sim, client(sim, 5) as first:
        second = IB()
        errors = ErrorLog(second)
        with pytest.raises((asyncio.TimeoutError, TimeoutError)):
            await second.connectAsync("127.0.0.1", sim.port, clientId=5, timeout=0.5)
        assert 326 in errors.codes()
        assert not second.isConnected()
        assert first.isConnected()
        # the id is free again once its holder leaves
        first.disconnect()
        await wait_until(lambda: 5 not in sim.status()["clients"], what="id 5 released")
        async with client(sim, 5) as again:
            assert again.isConnected()


@pytest.mark.parametrize("version", [157, 163, 170, 176, 177])
async def test_older_server_versions_decode_cleanly(sample_dir, version):
    """Field layouts that change with the server version (contract details, openOrder,
    completedOrder, execDetails, error) decode without errors at each negotiated version."""
    from ib_async import LimitOrder, MarketOrder

    async with running(sample_dir, server_version=version) as sim, client(sim) as ib:
        assert ib.client.serverVersion() == version
        [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        assert c.conId
        trade = ib.placeOrder(c, MarketOrder("BUY", 10))
        resting = ib.placeOrder(c, LimitOrder("BUY", 10, 1.0))
        await sync(ib)
        await sim.advance(1)
        await sync(ib)
        assert trade.orderStatus.status == "Filled"
        assert trade.fills[0].commissionReport.commission == pytest.approx(1.0)
        ib.cancelOrder(resting.order)
        await sync(ib)
        assert resting.orderStatus.status == "Cancelled"
        done = await ib.reqCompletedOrdersAsync(False)
        assert {t.orderStatus.status for t in done} == {"Filled", "Cancelled"}
        fills = await ib.reqExecutionsAsync()
        assert len(fills) == 1
