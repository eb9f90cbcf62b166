"""Price-dependent ticks without a server: the contract book's market rules
(:meth:`Instrument.tick_at`, which rule applies, fetching each rule once and falling back
to minTick) and rounding of limit and exit prices across band edges."""

from __future__ import annotations

import asyncio
import logging
import math

import numpy as np
import pytest
from ib_async import Contract, ContractDetails, Order, PriceIncrement

from stratvector.gateway.contracts import ContractBook, Instrument, bands_of, rule_id_for
from stratvector.gateway.exits import ExitSpec, exit_price, round_price
from stratvector.gateway.outgoing import limit_price
from stratvector.ibsim.ticks import MarketRule

TIERED_BANDS = ((0.0, 0.001), (10.0, 0.005), (50.0, 0.01))  # min_tick 0.001


def inst(bands: tuple[tuple[float, float], ...] = TIERED_BANDS, min_tick: float = 0.001):
    edges = tuple(lo for lo, _ in bands)
    incs = tuple(inc for _, inc in bands)
    return Instrument("AAA", Contract(symbol="AAA"), 1, min_tick, 239, edges, incs)


TIERED = inst()
US = inst(((0.0, 0.0001), (1.0, 0.01)), min_tick=0.01)
# low edges off their own band's grid: a crossing needs a second rounding
ODD_UP = inst(((0.0, 0.001), (10.002, 0.005)))
ODD_DOWN = inst(((0.0, 0.003), (10.002, 0.005)))


# ---------------------------------------------------------------------- tick_at


def test_tick_at_is_the_increment_of_the_band_holding_the_price() -> None:
    assert TIERED.tick_at(0.5) == TIERED.tick_at(9.999) == 0.001
    assert TIERED.tick_at(10.0) == TIERED.tick_at(49.999) == 0.005  # an edge is in its band
    assert TIERED.tick_at(50.0) == TIERED.tick_at(1e9) == 0.01
    assert TIERED.tick_at(-1.0) == 0.001  # below the first band: min_tick
    no_rule = Instrument("AAA", Contract(), 1, 0.05)
    assert no_rule.tick_at(25.0) == no_rule.tick_at(0.5) == 0.05
    above = inst(((5.0, 0.01),), min_tick=0.002)
    assert above.tick_at(4.0) == 0.002 and above.tick_at(5.0) == 0.01


def _details(ids: str, venues: str, primary: str = "NASDAQ") -> ContractDetails:
    contract = Contract(conId=7, symbol="AAA", primaryExchange=primary)
    return ContractDetails(contract=contract, marketRuleIds=ids, validExchanges=venues)


def test_the_rule_of_the_primary_exchange_else_the_first() -> None:
    assert rule_id_for(_details("26,239,12", "SMART,IBIS,FWB", "IBIS"), "SMART") == 239
    # US stocks list ISLAND, not NASDAQ: the first (SMART's) rule
    assert rule_id_for(_details("26,26,26", "SMART,AMEX,ISLAND"), "SMART") == 26
    # a direct route listed in validExchanges takes its own rule
    assert rule_id_for(_details("26,239,12", "SMART,IBIS,FWB", "IBIS"), "FWB") == 12
    assert rule_id_for(_details("26,239,12", "SMART,IBIS,FWB", "IBIS"), "XETRA") == 239
    assert rule_id_for(_details("26,239", "SMART,X,IBIS", "IBIS"), "SMART") == 26  # short
    assert rule_id_for(_details("", "SMART,NASDAQ"), "SMART") is None  # an old server
    assert rule_id_for(_details("x,1", "SMART,ISLAND"), "SMART") is None  # not an id


def test_bands_are_sorted_and_unusable_ones_dropped() -> None:
    answer = [
        PriceIncrement(50.0, 0.01),
        PriceIncrement(0.0, 0.001),
        PriceIncrement(10.0, 0.005),
        PriceIncrement(20.0, 0.0),
        PriceIncrement(30.0, math.nan),
    ]
    assert bands_of(answer) == ((0.0, 10.0, 50.0), (0.001, 0.005, 0.01))
    assert bands_of([]) is None and bands_of([PriceIncrement(0.0, -1.0)]) is None


# ---------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("table", "price", "up", "expected"),
    [
        (TIERED, 25.1234, True, 25.125),  # inside the 0.005 band
        (TIERED, 25.1234, False, 25.12),
        (TIERED, 9.9996, True, 10.0),  # up across 10: lands on the edge, on both grids
        (TIERED, 10.0004, False, 10.0),  # down onto the edge
        (TIERED, 49.9996, True, 50.0),
        (TIERED, 50.004, False, 50.0),
        (TIERED, 49.997, False, 49.995),
        (TIERED, 25.125000000001, True, 25.125),  # on the grid up to float noise: kept
        (TIERED, 3 * 8.335, False, 25.005),  # 25.004999999999995
        (US, 0.99995, True, 1.0),  # 0.0001 grid up to 1.0000: valid at 0.01
        (US, 0.99995, False, 0.9999),
        (US, 1.004, False, 1.0),
        (ODD_UP, 10.0015, True, 10.005),  # 10.002 is in the 0.005 band, off its grid
        (ODD_DOWN, 10.003, False, 9.999),  # 10.000 is in the 0.003 band, off its grid
        (TIERED, math.inf, True, math.inf),
    ],
)
def test_round_price_lands_on_the_grid_of_its_band(
    table: Instrument, price: float, up: bool, expected: float
) -> None:
    assert round_price(price, table, up) == expected


def test_round_price_property_against_the_stand_ins_check() -> None:
    """Random prices across the bands: the result is accepted by ibsim's independent check,
    moved only the asked way, and by less than the increment where it lands (the nearest
    valid price, increments growing with the price)."""
    rule = MarketRule(239, TIERED_BANDS)
    rng = np.random.default_rng(7)
    prices = np.concatenate(
        [
            rng.uniform(0.0, 80.0, 3000),
            10.0 + rng.uniform(-0.002, 0.002, 500),
            50.0 + rng.uniform(-0.02, 0.02, 500),
        ]
    )
    for p in prices.round(6):
        p = float(p)
        for up in (True, False):
            r = round_price(p, TIERED, up)
            assert rule.conforms(r), (p, up, r)
            moved = (r - p) if up else (p - r)
            assert -1e-9 <= moved < TIERED.tick_at(r) + 1e-9, (p, up, r)


def _spec(quantity: float, **kw: float) -> ExitSpec:
    values = {"stop_loss": 0.02, "trailing_stop": 0.0, "take_profit": 0.04, "estimate": 25.0}
    return ExitSpec(quantity=quantity, **{**values, **kw})  # type: ignore[arg-type]


def test_long_exits_round_up_with_the_increment_at_their_price() -> None:
    """Closing a long (sell exits): up, each with its own band's increment."""
    spec = _spec(-100.0, entry=25.3737, peak=26.0, trailing_stop=0.03)
    stop, _, journaled = spec.order("stop", "r", "DAY", "", TIERED)
    assert stop.auxPrice == journaled == 24.87  # 24.866226: the 0.005 band
    trail, _, _ = spec.order("trail", "r", "DAY", "", TIERED)
    assert trail.trailStopPrice == 25.22  # 25.22
    tp, journaled, _ = spec.order("tp", "r", "DAY", "", TIERED)
    assert tp.lmtPrice == journaled == 26.39  # 26.388648 up to 26.39
    # take-profit across 50: 48.5 x 1.031 = 50.0035 -> the 0.01 band
    across = _spec(-100.0, entry=48.5, take_profit=0.031)
    assert across.order("tp", "r", "DAY", "", TIERED)[0].lmtPrice == 50.01
    # a stop below 10: the finer band
    low = _spec(-100.0, entry=10.1234)
    assert low.order("stop", "r", "DAY", "", TIERED)[0].auxPrice == 9.921  # 9.920932
    fixed = _spec(-100.0).fixed("stop", Order(orderType="TRAIL"), 25.3737, TIERED)
    assert fixed.orderType == "STP" and fixed.auxPrice == 24.87
    assert _spec(-100.0).fixed("tp", Order(), 48.08, TIERED).lmtPrice == 50.01  # 50.0032


def test_short_exits_round_down_with_the_increment_at_their_price() -> None:
    """Covering a short (buy exits): down."""
    spec = _spec(100.0, entry=25.3737, peak=24.0, trailing_stop=0.03)
    assert spec.order("stop", "r", "DAY", "", TIERED)[0].auxPrice == 25.88  # 25.881174
    assert spec.order("trail", "r", "DAY", "", TIERED)[0].trailStopPrice == 24.72
    assert spec.order("tp", "r", "DAY", "", TIERED)[0].lmtPrice == 24.355  # 24.358752
    # just below 50: 49.0 x 1.0204 = 49.9996, down in the 0.005 band (not to 50.00)
    near = _spec(100.0, entry=49.0, stop_loss=0.0204)
    assert near.order("stop", "r", "DAY", "", TIERED)[0].auxPrice == 49.995
    # just above 50: 49.0301 x 1.02 = 50.010702, down in the 0.01 band
    assert _spec(100.0).fixed("stop", Order(), 49.0301, TIERED).auxPrice == 50.01
    # across 50 down: 50.2 x 1.02 = 51.204 stop; 52.1 x 0.96 = 50.016 target; 52.05 x
    # 0.96 = 49.968 -> the 0.005 band
    assert _spec(100.0).fixed("stop", Order(), 50.2, TIERED).auxPrice == 51.2
    assert _spec(100.0).fixed("tp", Order(), 52.1, TIERED).lmtPrice == 50.01
    assert _spec(100.0).fixed("tp", Order(), 52.05, TIERED).lmtPrice == 49.965
    assert _spec(100.0).fixed("tp", Order(), 10.31, TIERED).lmtPrice == 9.897  # 9.8976


def test_exit_price_with_a_constant_tick_is_unchanged() -> None:
    assert exit_price(98.123, -1.0, 0.01) == 98.13 and exit_price(98.123, 1.0, 0.01) == 98.12


def test_limit_prices_never_pay_more_than_the_offset_across_bands() -> None:
    assert limit_price(25.0, "BUY", 10, TIERED) == 25.025
    assert limit_price(25.0, "SELL", 10, TIERED) == 24.975
    assert limit_price(25.013, "BUY", 10, TIERED) == 25.035  # 25.038013 down
    assert limit_price(25.013, "SELL", 10, TIERED) == 24.99  # 24.987987 up
    assert limit_price(49.98, "BUY", 10, TIERED) == 50.02  # 50.02998: the 0.01 band
    assert limit_price(50.02, "SELL", 10, TIERED) == 49.97  # 49.96998: the 0.005 band
    assert limit_price(10.005, "SELL", 10, TIERED) == 9.995  # 9.994995: the 0.001 band
    assert limit_price(9.99, "BUY", 10, TIERED) == 9.999  # 9.99999
    assert limit_price(10.0, "SELL", 0.4, TIERED) == 10.0  # 9.9996 up onto the edge
    assert limit_price(1.0, "SELL", 1, US) == 0.9999  # valid below $1: kept
    assert limit_price(0.9995, "BUY", 10, US) == 1.0  # 1.0004995 down to 1.00
    assert limit_price(100.0, "BUY", 10, 0.0) == 100.1  # no tick known: one cent


# ---------------------------------------------------------------------- the contract book


class FakeIB:
    """Answers contract details for any symbol (one rule per symbol) and market rules."""

    def __init__(self, rules: dict[str, str], answers: dict[int, object]) -> None:
        self.rules = rules
        self.answers = answers
        self.asked: list[int] = []

    async def reqContractDetailsAsync(self, contract: Contract) -> list[ContractDetails]:
        sym = contract.symbol
        c = Contract(conId=100 + len(sym), symbol=sym, primaryExchange="IBIS")
        ids = self.rules[sym]
        return [
            ContractDetails(
                contract=c, minTick=0.001, validExchanges="SMART,IBIS", marketRuleIds=ids
            )
        ]

    async def reqMarketRuleAsync(self, rule_id: int) -> list[PriceIncrement] | None:
        self.asked.append(rule_id)
        answer = self.answers.get(rule_id)
        if isinstance(answer, BaseException):
            raise answer
        if answer == "hang":
            await asyncio.sleep(3600)
        return answer  # type: ignore[return-value]


TIERED_ANSWER = [PriceIncrement(lo, inc) for lo, inc in TIERED_BANDS]


async def test_qualify_fetches_each_distinct_rule_once() -> None:
    ib = FakeIB({"AAA": "26,239", "BBB": "26,239", "CCC": "26,12"}, {239: TIERED_ANSWER})
    book = ContractBook(["AAA", "BBB", "CCC"])
    await book.qualify(ib, 1.0)  # type: ignore[arg-type]
    assert sorted(ib.asked) == [12, 239]
    a = book.get("AAA")
    assert (a.market_rule, a.min_tick, a.tick_at(25.0), a.tick_at(60.0)) == (
        239,
        0.001,
        0.005,
        0.01,
    )
    assert book.get("CCC").tick_at(25.0) == 0.001  # rule 12 unanswered: min_tick


async def test_a_rule_that_cannot_be_fetched_falls_back_to_min_tick_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ib = FakeIB({"AAA": "26,239", "BBB": "26,77"}, {239: "hang", 77: []})
    book = ContractBook(["AAA", "BBB"])
    caplog.set_level(logging.WARNING, "stratvector.gateway.contracts")
    await book.qualify(ib, 0.05)  # type: ignore[arg-type]
    await book.qualify(ib, 0.05)  # type: ignore[arg-type]  (a reconnect: asked again)
    assert ib.asked.count(239) == ib.asked.count(77) == 2
    assert book.get("AAA").tick_at(25.0) == book.get("BBB").tick_at(25.0) == 0.001
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # once per rule, not per qualify
    assert any("239 of AAA" in w and "minTick" in w for w in warnings)
    # a later good answer is used; a failure after it keeps it
    ib.answers[239] = TIERED_ANSWER
    await book.qualify(ib, 0.05)  # type: ignore[arg-type]
    assert book.get("AAA").tick_at(25.0) == 0.005
    ib.answers[239] = None
    await book.qualify(ib, 0.05)  # type: ignore[arg-type]
    assert book.get("AAA").tick_at(25.0) == 0.005 and len(caplog.records) == 2


async def test_a_connection_lost_while_fetching_rules_fails_the_qualify() -> None:
    ib = FakeIB({"AAA": "239"}, {239: ConnectionError("Not connected")})
    with pytest.raises(ConnectionError):
        await ContractBook(["AAA"]).qualify(ib, 1.0)  # type: ignore[arg-type]
