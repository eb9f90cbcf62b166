"""Market rules in the stand-in: contract details name the rule, reqMarketRule answers its
price bands through the real client, and order prices are checked against the increment
of the band they lie in (error 110), not against minTick."""

from __future__ import annotations

import argparse

import pytest
from ib_async import IB, LimitOrder, Order, Stock, StopOrder

from stratvector.errors import ConfigError
from stratvector.ibsim import US_STOCK_RULE, IBSimConfig, MarketRule
from stratvector.ibsim.cli import add_arguments, config_from_args

from ._support import ErrorLog, client, running, sync

TIERED = MarketRule(239, ((0.0, 0.001), (10.0, 0.005), (50.0, 0.01)))


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_rule_bands_increments_and_grid() -> None:
    assert TIERED.increment_at(9.999) == 0.001
    assert TIERED.increment_at(10.0) == 0.005  # a low edge belongs to its band
    assert TIERED.increment_at(49.995) == 0.005 and TIERED.increment_at(50.0) == 0.01
    assert TIERED.increment_at(1e6) == 0.01 and TIERED.increment_at(-1.0) == 0.001
    assert TIERED.conforms(9.997) and TIERED.conforms(10.0) and TIERED.conforms(25.125)
    assert not TIERED.conforms(25.123) and not TIERED.conforms(50.005)
    assert TIERED.conforms(25.125000000001)  # decimal-text noise
    assert US_STOCK_RULE.conforms(0.1234) and not US_STOCK_RULE.conforms(1.001)
    assert TIERED.smallest == 0.001
    assert MarketRule.parse(" 0:0.001, 10:0.005,50:0.01 ", 239) == TIERED
    assert MarketRule.parse(TIERED.text(), 239) == TIERED


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ((), "at least one band"),
        (((1.0, 0.01),), "start at 0"),
        (((0.0, 0.01), (0.0, 0.05)), "must increase"),
        (((0.0, 0.0),), "finite and > 0"),
        (((0.0, float("nan")),), "finite and > 0"),
    ],
)
def test_invalid_rules_are_refused(bands: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MarketRule(1, bands)


def test_config_and_command_line(tmp_path) -> None:
    cfg = IBSimConfig(bars=tmp_path)
    assert cfg.market_rule == US_STOCK_RULE and cfg.min_tick == 0.01
    with pytest.raises(ConfigError, match="min_tick"):
        IBSimConfig(bars=tmp_path, min_tick=0.0)
    with pytest.raises(ConfigError, match="EDGE:INCREMENT"):
        MarketRule.parse("0=0.01", 1)
    args = _parse(
        "--bars", str(tmp_path), "--market-rule", TIERED.text(), "--market-rule-id", "239"
    )
    assert config_from_args(args).market_rule == TIERED
    args = _parse("--bars", str(tmp_path), "--market-rule", "none", "--min-tick", "0.001")
    cfg = config_from_args(args)
    assert cfg.market_rule is None and cfg.min_tick == 0.001
    assert config_from_args(_parse("--bars", str(tmp_path))).market_rule == US_STOCK_RULE


async def _contract(ib: IB):
    [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
    return c


async def test_contract_details_and_req_market_rule_through_the_client(syn_dir) -> None:
    async with (
        running(syn_dir, start=1, market_rule=TIERED, min_tick=0.001) as sim,
        client(sim) as ib,
    ):
        [d] = await ib.reqContractDetailsAsync(Stock("SYN", "SMART", "USD"))
        assert d.minTick == 0.001
        assert d.validExchanges == "SMART,NASDAQ" and d.marketRuleIds == "239,239"
        bands = await ib.reqMarketRuleAsync(239)
        assert [(b.lowEdge, b.increment) for b in bands] == list(TIERED.bands)
        errors = ErrorLog(ib)
        assert await ib.reqMarketRuleAsync(26) is None  # unknown here: no answer
        await sync(ib)
        assert errors.codes() == [321]


async def test_the_default_is_the_us_stock_rule(syn_dir) -> None:
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        [d] = await ib.reqContractDetailsAsync(Stock("SYN", "SMART", "USD"))
        assert (d.minTick, d.marketRuleIds) == (0.01, "26,26")
        bands = await ib.reqMarketRuleAsync(26)
        assert [(b.lowEdge, b.increment) for b in bands] == [(0.0, 0.0001), (1.0, 0.01)]
        c = await _contract(ib)
        penny = ib.placeOrder(c, LimitOrder("BUY", 10, 0.1234))  # 0.0001 below $1
        cent = ib.placeOrder(c, LimitOrder("BUY", 10, 1.001))  # 0.01 from $1
        await sync(ib)
        assert penny.orderStatus.status == "Submitted"
        assert cent.orderStatus.status == "Cancelled" and cent.log[-1].errorCode == 110


async def test_an_old_server_names_no_rule_and_checks_min_tick(syn_dir) -> None:
    async with (
        running(syn_dir, start=1, market_rule=None, min_tick=0.05) as sim,
        client(sim) as ib,
    ):
        [d] = await ib.reqContractDetailsAsync(Stock("SYN", "SMART", "USD"))
        assert (d.minTick, d.marketRuleIds) == (0.05, "")
        c = await _contract(ib)
        ok = ib.placeOrder(c, LimitOrder("BUY", 10, 99.95))
        off = ib.placeOrder(c, LimitOrder("BUY", 10, 99.99))
        await sync(ib)
        assert ok.orderStatus.status == "Submitted"
        assert off.orderStatus.status == "Cancelled" and off.log[-1].errorCode == 110


async def test_prices_are_checked_against_the_band_they_lie_in(syn_dir) -> None:
    """minTick (0.001) is the finest band's increment: a price on it but off the grid of
    a coarser band is refused (new orders and modifications), a price on its band's grid
    is accepted, whatever its band."""
    async with (
        running(syn_dir, start=1, market_rule=TIERED, min_tick=0.001) as sim,
        client(sim) as ib,
    ):
        errors = ErrorLog(ib)
        c = await _contract(ib)
        good = [
            ib.placeOrder(c, LimitOrder("BUY", 10, 9.999)),  # 0.001 band
            ib.placeOrder(c, LimitOrder("BUY", 10, 25.125)),  # 0.005 band
            ib.placeOrder(c, StopOrder("SELL", 10, 50.01)),  # 0.01 band
            ib.placeOrder(c, LimitOrder("BUY", 10, 10.0)),  # the edge, on both grids
        ]
        trail = Order(action="SELL", totalQuantity=10, orderType="TRAIL")
        trail.trailingPercent, trail.trailStopPrice = 2.0, 25.123
        bad = [
            ib.placeOrder(c, LimitOrder("BUY", 10, 25.123)),
            ib.placeOrder(c, StopOrder("SELL", 10, 50.005)),
            ib.placeOrder(c, trail),
        ]
        await sync(ib)
        assert [t.orderStatus.status for t in good] == ["Submitted"] * 4
        for t in bad:
            assert t.orderStatus.status == "Cancelled"
            assert t.log[-1].errorCode == 110, t.log
            assert sim.ctx.book.get(1, t.order.orderId) is None
        moved = good[1]
        moved.order.lmtPrice = 30.002  # on minTick, off the 0.005 grid: refused, kept
        ib.placeOrder(c, moved.order)
        await sync(ib)
        assert sim.ctx.book.get(1, moved.order.orderId).req.lmt_price == 25.125
        moved.order.lmtPrice = 30.005
        ib.placeOrder(c, moved.order)
        await sync(ib)
        assert sim.ctx.book.get(1, moved.order.orderId).req.lmt_price == 30.005
        assert errors.codes().count(110) == 4
