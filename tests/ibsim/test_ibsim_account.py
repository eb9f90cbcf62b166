"""Account: positions, portfolio P&L, cash, executions by filter, reconnect, transcript."""

from __future__ import annotations

import json

import pytest
from ib_async import ExecutionFilter, LimitOrder, MarketOrder, Stock

from stratvector.backtest.costs import IBKRFixed, commission

from ._support import client, running, sync, wait_until


async def _contracts(ib):
    return await ib.qualifyContractsAsync(
        Stock("SYN", "SMART", "USD"), Stock("SYN2", "SMART", "USD")
    )


async def _step(sim, ib, n=1):
    await sync(ib)
    await sim.advance(n)
    await sync(ib)


async def test_portfolio_is_marked_each_bar_and_account_values_add_up(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        syn, _ = await _contracts(ib)
        ib.placeOrder(syn, MarketOrder("BUY", 100))
        await _step(sim, ib)
        marks = []
        ib.updatePortfolioEvent += lambda item: marks.append(item.marketPrice)
        await _step(sim, ib, 3)
        assert marks == [103.0, 98.0, 98.5]  # closes of bars 2, 3, 4
        [item] = ib.portfolio()
        avg = 100.0 + commission(IBKRFixed(), 100, 100.0) / 100
        assert item.averageCost == pytest.approx(avg)
        assert item.marketValue == pytest.approx(100 * 98.5)
        assert item.unrealizedPNL == pytest.approx(100 * (98.5 - avg))
        v = {
            x.tag: float(x.value)
            for x in ib.accountValues()
            if x.currency == "USD"
            and x.tag in ("NetLiquidation", "TotalCashValue", "GrossPositionValue", "UnrealizedPnL")
        }
        assert v["NetLiquidation"] == pytest.approx(v["TotalCashValue"] + 100 * 98.5, abs=0.01)
        assert v["GrossPositionValue"] == pytest.approx(9850.0, abs=0.01)
        assert v["UnrealizedPnL"] == pytest.approx(item.unrealizedPNL, abs=0.01)
        summary = {x.tag: x.value for x in await ib.accountSummaryAsync()}
        assert float(summary["NetLiquidation"]) == pytest.approx(v["NetLiquidation"], abs=0.01)


async def test_with_ibs_portfolio_interval_only_changed_positions_are_pushed_between(syn_dir):
    # IB pushes portfolio marks every three minutes, a changed position at once
    async with running(syn_dir, start=1, portfolio_interval=3600.0) as sim, client(sim) as ib:
        syn, syn2 = await _contracts(ib)
        ib.placeOrder(syn, MarketOrder("BUY", 100))
        await _step(sim, ib)  # the first push is a full one
        await wait_until(lambda: [p.position for p in ib.positions()] == [100.0], what="fill")
        pushed = []
        ib.updatePortfolioEvent += lambda item: pushed.append(
            (item.contract.symbol, item.position, item.marketPrice)
        )
        await _step(sim, ib, 2)
        assert pushed == []  # re-marks wait for the next periodic push
        ib.placeOrder(syn2, MarketOrder("BUY", 10))
        await _step(sim, ib)
        assert [(sym, qty) for sym, qty, _ in pushed] == [("SYN2", 10.0)]
        [item] = [i for i in ib.portfolio() if i.contract.symbol == "SYN"]
        assert item.marketPrice == 101.0  # SYN's last push: the full one, at bar 1's close


async def test_a_position_that_goes_flat_is_sent_once_with_zero(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        syn, _ = await _contracts(ib)
        seen = []
        ib.positionEvent += lambda p: seen.append(p.position)
        ib.placeOrder(syn, MarketOrder("SELL", 30))  # a short
        await _step(sim, ib)
        ib.placeOrder(syn, MarketOrder("BUY", 30))
        await _step(sim, ib)
        assert seen == [-30, 0]
        assert ib.positions() == []


async def test_executions_by_filter_after_a_reconnect(syn_dir):
    async with running(syn_dir, start=1) as sim:
        async with client(sim, 3) as ib:
            syn, syn2 = await _contracts(ib)
            ib.placeOrder(syn, MarketOrder("BUY", 10))
            ib.placeOrder(syn2, MarketOrder("BUY", 20))
            await _step(sim, ib)  # 2024-01-03
            ib.placeOrder(syn, MarketOrder("SELL", 10))
            await _step(sim, ib)  # 2024-01-04
        async with client(sim, 3) as ib:
            assert len(ib.fills()) == 3  # synced at connect, with commissions
            assert all(f.commissionReport.commission > 0 for f in ib.fills())
            only_syn2 = await ib.reqExecutionsAsync(ExecutionFilter(symbol="SYN2"))
            assert [f.execution.shares for f in only_syn2] == [20]
            sells = await ib.reqExecutionsAsync(ExecutionFilter(side="SELL"))
            assert [(f.contract.symbol, f.execution.side) for f in sells] == [("SYN", "SLD")]
            later = await ib.reqExecutionsAsync(ExecutionFilter(time="20240104 00:00:00"))
            assert len(later) == 1
            assert await ib.reqExecutionsAsync(ExecutionFilter(clientId=99)) == []
        async with client(sim, 4) as other:  # another client does not see them
            assert other.fills() == []


async def test_master_client_sees_every_clients_executions(syn_dir):
    async with running(syn_dir, start=1, master_client_id=0) as sim:
        async with client(sim, 1) as ib:
            syn, _ = await _contracts(ib)
            ib.placeOrder(syn, MarketOrder("BUY", 10))
            await _step(sim, ib)
        async with client(sim, 0) as master:
            assert len(master.fills()) == 1


async def test_reconnect_after_a_drop_restores_positions_orders_and_executions(syn_dir):
    async with running(syn_dir, start=1) as sim:
        ib = await _connect(sim)
        syn, _ = await _contracts(ib)
        ib.placeOrder(syn, MarketOrder("BUY", 50))
        resting = ib.placeOrder(syn, LimitOrder("BUY", 10, 97.5))
        await _step(sim, ib)
        dropped = []
        ib.disconnectedEvent += lambda: dropped.append(True)
        assert sim.drop_connections() == 1
        await wait_until(lambda: dropped and not ib.isConnected(), what="client sees the drop")
        await sim.advance(2)  # bar 3 fills the resting limit while the client is away
        ib = await _connect(sim)
        try:
            [pos] = ib.positions()
            assert pos.position == 60
            assert ib.openTrades() == []
            fills = ib.fills()
            assert sorted(f.execution.price for f in fills) == [97.5, 100.0]
            done = await ib.reqCompletedOrdersAsync(False)
            assert {t.order.permId for t in done} >= {resting.order.permId}
            # an order still working is restored as an open trade
            working = ib.placeOrder(syn, LimitOrder("BUY", 5, 50.0))
            await sync(ib)
            oid = working.order.orderId
            ib.disconnect()
            ib = await _connect(sim)
            [trade] = ib.openTrades()
            assert (trade.order.orderId, trade.orderStatus.status) == (oid, "Submitted")
            assert trade.order.lmtPrice == 50.0
            ib.cancelOrder(trade.order)
            await wait_until(lambda: trade.orderStatus.status == "Cancelled", what="cancel")
            assert ib.client.getReqId() > oid  # next id is past the ids already used
        finally:
            ib.disconnect()


async def _connect(sim, client_id=1):
    from ib_async import IB

    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5)
    return ib


async def test_transcript_logs_every_message(syn_dir, tmp_path):
    path = tmp_path / "t.jsonl"
    async with running(syn_dir, start=1, transcript=path) as sim, client(sim) as ib:
        await ib.reqCurrentTimeAsync()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    dirs = [x["dir"] for x in lines]
    assert dirs[:2] == ["hs-in", "hs-out"]
    ins = [x["fields"][0] for x in lines if x["dir"] == "in"]
    outs = [x["fields"][0] for x in lines if x["dir"] == "out"]
    assert ins[0] == "71" and "49" in ins
    assert {"15", "9", "49", "62", "53", "102", "54", "55"} <= set(outs)
    assert all(x["conn"] == 1 for x in lines)
