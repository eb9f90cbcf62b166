"""Order-level limits: each rejects exactly the order past it and allows the one at it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stratvector.risk import (
    AccountState,
    Decision,
    OrderProposal,
    RiskChecker,
    RiskLimits,
    opened_quantity,
)

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def order(qty: float, symbol: str = "AAPL", price: float = 100.0, at: datetime = T0):
    return OrderProposal("momentum", symbol, qty, price, at)


def account(
    positions: dict[str, float] | None = None,
    prices: dict[str, float] | None = None,
    equity: float = 100_000.0,
    peak: float | None = None,
    day_start: float | None = None,
) -> AccountState:
    return AccountState(
        equity=equity,
        peak_equity=equity if peak is None else peak,
        day_start_equity=equity if day_start is None else day_start,
        positions=positions or {},
        prices=prices or {},
    )


def limits_of(decision: Decision) -> list[str]:
    return [b.limit for b in decision.breaches]


# ------------------------------------------------------------------ max_order_notional


def test_order_notional_at_limit_allowed_one_share_more_rejected():
    checker = RiskChecker(RiskLimits(max_order_notional=50_000))
    assert checker.check(order(500), account()) == Decision(True, ())
    assert checker.check(order(-500), account()).allowed  # opening a short
    rejected = checker.check(order(501), account())
    assert not rejected.allowed
    assert limits_of(rejected) == ["max_order_notional"]
    breach = rejected.breaches[0]
    assert breach.value == pytest.approx(50_100.0)
    assert breach.threshold == 50_000.0
    assert not breach.trips_kill  # not in the default kill_on
    assert not rejected.trips_kill
    assert not checker.check(order(-501), account()).allowed


def test_order_notional_message_names_limit_value_and_threshold():
    checker = RiskChecker(RiskLimits(max_order_notional=50_000))
    decision = checker.check(order(500, price=190.0), account())
    assert decision.message == (
        "max_order_notional: order AAPL +500 @ 190.00 = 95,000.00 > 50,000.00"
    )
    assert "\n" not in decision.message


def test_message_shows_enough_decimals_to_tell_value_from_threshold():
    checker = RiskChecker(RiskLimits(max_order_notional=50_000))
    decision = checker.check(order(1, price=50_000.004), account())
    assert not decision.allowed
    assert decision.message.endswith("= 50,000.004 > 50,000.000")


def test_float_rounding_at_the_threshold_is_not_a_breach():
    price = 0.1 + 0.2  # 0.30000000000000004
    assert 1_000 * price > 300.0
    checker = RiskChecker(RiskLimits(max_order_notional=300.0))
    assert checker.check(order(1_000, price=price), account()).allowed
    assert not checker.check(order(1_001, price=price), account()).allowed


# ------------------------------------------------------------------ max_position_value


def test_position_value_counts_the_position_after_the_order():
    checker = RiskChecker(RiskLimits(max_position_value=100_000))
    held = account({"AAPL": 600}, {"AAPL": 100.0})
    assert checker.check(order(400), held).allowed  # 1,000 shares = 100,000
    rejected = checker.check(order(401), held)
    assert limits_of(rejected) == ["max_position_value"]
    assert rejected.breaches[0].value == pytest.approx(100_100.0)
    assert rejected.message == (
        "max_position_value: AAPL position +1,001 after order AAPL +401 @ 100.00"
        " = 100,100.00 > 100,000.00"
    )


def test_position_value_uses_the_order_reference_price():
    checker = RiskChecker(RiskLimits(max_position_value=100_000))
    stale = account({"AAPL": 500}, {"AAPL": 50.0})  # the account's price is stale
    assert not checker.check(order(1, price=200.0), stale).allowed  # 501 * 200
    assert checker.check(order(-500 + 1, price=200.0), stale).allowed  # reducing


def test_position_value_short_side():
    checker = RiskChecker(RiskLimits(max_position_value=10_000))
    short = account({"TSLA": -90}, {"TSLA": 100.0})
    assert checker.check(order(-10, "TSLA"), short).allowed
    assert not checker.check(order(-11, "TSLA"), short).allowed


# ------------------------------------------------------------------ max_gross_exposure


def test_gross_exposure_sums_all_symbols_after_the_order():
    checker = RiskChecker(RiskLimits(max_gross_exposure=1.5))
    book = account({"MSFT": 1_000, "TSLA": -200}, {"MSFT": 50.0, "TSLA": 250.0})
    # gross before: 50,000 + 50,000 = 100,000 (1.0x); room for 50,000 of AAPL
    assert checker.check(order(500), book).allowed
    assert checker.check(order(-500), book).allowed  # shorts count by absolute value
    rejected = checker.check(order(501), book)
    assert limits_of(rejected) == ["max_gross_exposure"]
    assert rejected.breaches[0].value == pytest.approx(1.501)
    assert rejected.message == (
        "max_gross_exposure: gross 150,100.00 / equity 100,000.00 = 1.501x > 1.500x"
        " after order AAPL +501 @ 100.00"
    )


def test_gross_exposure_already_over_blocks_increases_elsewhere_but_not_reductions():
    checker = RiskChecker(RiskLimits(max_gross_exposure=1.0))
    book = account({"MSFT": 3_000}, {"MSFT": 50.0})  # 1.5x after a market move
    assert not checker.check(order(1), book).allowed
    assert checker.check(order(-1_000, "MSFT", price=50.0), book).allowed
    assert checker.check(order(-3_000, "MSFT", price=50.0), book).allowed


def test_gross_exposure_fails_closed_without_a_price_for_a_held_symbol():
    checker = RiskChecker(RiskLimits(max_gross_exposure=2.0))
    for prices in ({}, {"MSFT": math.nan}, {"MSFT": 0.0}):
        decision = checker.check(order(1), account({"MSFT": 10, "IBM": 0}, prices))
        assert limits_of(decision) == ["max_gross_exposure"]
        assert math.isnan(decision.breaches[0].value)
        assert "no usable price for held MSFT" in decision.message
    # a flat symbol without a price is irrelevant
    assert checker.check(order(1), account({"IBM": 0})).allowed


def test_gross_exposure_fails_closed_without_positive_equity():
    checker = RiskChecker(RiskLimits(max_gross_exposure=2.0))
    decision = checker.check(order(1), account(equity=0.0, peak=1.0, day_start=1.0))
    assert limits_of(decision) == ["max_gross_exposure"]
    assert decision.breaches[0].value == math.inf
    assert "equity is 0.00" in decision.message


# ------------------------------------------------------------------ risk-reducing orders and flips


@pytest.mark.parametrize(
    ("held", "qty", "opened"),
    [
        (0, 100, 100),
        (0, -100, 100),
        (100, 50, 50),
        (-100, -50, 50),
        (100, -40, 0),
        (100, -100, 0),
        (-100, 100, 0),
        (100, -150, 50),
        (-100, 250, 150),
        (0.3, -0.3 - 1e-12, 0),  # float noise when closing is not a flip
    ],
)
def test_opened_quantity(held, qty, opened):
    assert opened_quantity(held, qty) == pytest.approx(opened)


def every_limit(**overrides) -> RiskLimits:
    values = dict(
        max_position_value=1_000.0,
        max_gross_exposure=0.1,
        max_order_notional=1_000.0,
        max_orders_per_minute=1,
        max_daily_loss=0.01,
        max_drawdown=0.01,
    )
    values.update(overrides)
    return RiskLimits(**values)


def test_risk_reducing_orders_pass_every_breached_limit():
    checker = RiskChecker(every_limit())
    # deep in every breach: big positions, 50% daily loss, 50% drawdown, rate used up
    checker.record_sent(order(1, "MSFT", at=T0 - timedelta(seconds=1)))
    book = account(
        {"AAPL": 5_000, "MSFT": -2_000},
        {"AAPL": 100.0, "MSFT": 100.0},
        equity=50_000.0,
        peak=100_000.0,
        day_start=100_000.0,
    )
    assert not checker.check(order(1), book).allowed
    for reducing in (order(-1), order(-2_500), order(-5_000), order(2_000, "MSFT")):
        assert checker.check(reducing, book) == Decision(True, ()), reducing
    # a flip is judged on the part past zero: one share short is still too much here
    flip = checker.check(order(-5_001), book)
    assert not flip.allowed
    assert set(limits_of(flip)) == {
        "max_gross_exposure",
        "max_orders_per_minute",
        "max_daily_loss",
        "max_drawdown",
    }


def test_flip_is_checked_for_the_part_past_zero_only():
    checker = RiskChecker(RiskLimits(max_order_notional=50_000, max_position_value=50_000))
    long = account({"AAPL": 1_000}, {"AAPL": 100.0})
    # sell 1,500: closes 1,000 (always fine) and opens 500 short = 50,000: allowed
    assert checker.check(order(-1_500), long).allowed
    rejected = checker.check(order(-1_501), long)
    assert limits_of(rejected) == ["max_position_value", "max_order_notional"]
    notional = rejected.breaches[1]
    assert notional.value == pytest.approx(50_100.0)
    assert notional.message == (
        "max_order_notional: order AAPL -1,501 @ 100.00, -501 past flat = 50,100.00 > 50,000.00"
    )


def test_all_breaches_are_reported_in_limit_order():
    checker = RiskChecker(every_limit(kill_on=("max_order_notional",)))
    decision = checker.check(
        order(100), account(equity=98_000.0, peak=100_000.0, day_start=100_000.0)
    )
    assert limits_of(decision) == [
        "max_position_value",
        "max_gross_exposure",
        "max_order_notional",
        "max_daily_loss",
        "max_drawdown",
    ]
    assert [b.trips_kill for b in decision.breaches] == [False, False, True, False, False]
    assert decision.trips_kill


def test_limits_off_allow_anything():
    checker = RiskChecker(RiskLimits())
    assert checker.check(order(1e9), account(equity=1.0, peak=1e9, day_start=1e9)) == Decision(
        True, ()
    )


# ------------------------------------------------------------------ max_orders_per_minute


def test_rate_limit_uses_a_rolling_60_second_window():
    checker = RiskChecker(RiskLimits(max_orders_per_minute=3))
    book = account()
    for seconds in (0, 20, 40):
        at = T0 + timedelta(seconds=seconds)
        assert checker.check(order(1, at=at), book).allowed
        checker.record_sent(order(1, at=at))
    # 4th order inside the minute of the first: rejected
    fourth = checker.check(order(1, at=T0 + timedelta(seconds=59.999)), book)
    assert limits_of(fourth) == ["max_orders_per_minute"]
    assert fourth.breaches[0].value == 4.0 and fourth.breaches[0].threshold == 3.0
    assert fourth.message == (
        "max_orders_per_minute: order AAPL +1 @ 100.00 would be order 4 in the 60 s to "
        "2024-03-04T14:30:59.999000Z > 3"
    )
    # exactly 60 s after the first, the first has left the window (t - 60 s, t]
    assert checker.check(order(1, at=T0 + timedelta(seconds=60)), book).allowed
    checker.record_sent(order(1, at=T0 + timedelta(seconds=60)))
    assert not checker.check(order(1, at=T0 + timedelta(seconds=61)), book).allowed
    assert checker.check(order(1, at=T0 + timedelta(seconds=80)), book).allowed


def test_rate_limit_counts_reducing_orders_but_never_blocks_them():
    checker = RiskChecker(RiskLimits(max_orders_per_minute=2))
    book = account({"AAPL": 100}, {"AAPL": 100.0})
    for i in range(2):
        checker.record_sent(order(-10, at=T0 + timedelta(seconds=i)))
    at = T0 + timedelta(seconds=5)
    assert checker.check(order(-10, at=at), book).allowed  # reducing: always
    assert not checker.check(order(10, at=at), book).allowed  # adding: window is full


def test_rate_limit_window_is_account_wide_and_timezone_independent():
    checker = RiskChecker(RiskLimits(max_orders_per_minute=1))
    checker.record_sent(OrderProposal("meanrev", "MSFT", 5, 10.0, T0))
    new_york = timezone(timedelta(hours=-5))
    later = (T0 + timedelta(seconds=30)).astimezone(new_york)
    decision = checker.check(order(1, at=later), account())
    assert not decision.allowed  # another strategy and symbol, same account
    assert decision.message.endswith("in the 60 s to 2024-03-04T14:30:30Z > 1")


def test_record_sent_out_of_order_and_check_account_ages_the_window():
    checker = RiskChecker(RiskLimits(max_orders_per_minute=2))
    checker.record_sent(order(1, at=T0 + timedelta(seconds=10)))
    checker.record_sent(order(1, at=T0))  # arrives late
    assert not checker.check(order(1, at=T0 + timedelta(seconds=30)), account()).allowed
    assert checker.check(order(1, at=T0 + timedelta(seconds=60.5)), account()).allowed
    assert checker.check_account(account(), T0 + timedelta(minutes=5)) == ()
    assert checker.check(order(1, at=T0 + timedelta(seconds=30)), account()).allowed


def test_check_does_not_record():
    checker = RiskChecker(RiskLimits(max_orders_per_minute=1))
    for _ in range(5):
        assert checker.check(order(1), account()).allowed


# ------------------------------------------------------------------ input validation


def test_proposal_and_account_validation():
    with pytest.raises(ValueError, match="tz-aware"):
        OrderProposal("s", "AAPL", 1, 1.0, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="non-zero"):
        order(0)
    with pytest.raises(ValueError, match="price must be > 0"):
        order(1, price=0.0)
    with pytest.raises(ValueError, match="finite"):
        order(math.nan)
    with pytest.raises(TypeError, match="number"):
        order(True)
    with pytest.raises(ValueError, match="symbol"):
        order(1, symbol="")
    with pytest.raises(ValueError, match="equity must be finite"):
        account(equity=math.nan)
    with pytest.raises(ValueError, match="position MSFT"):
        account({"MSFT": math.inf})
    new_york = timezone(timedelta(hours=-5))
    assert order(1, at=T0.astimezone(new_york)).time.utcoffset() == timedelta(0)


def test_account_state_is_a_snapshot():
    positions = {"AAPL": 10.0}
    state = account(positions, {"AAPL": 1.0})
    positions["AAPL"] = 1e9
    assert state.positions == {"AAPL": 10.0}
    with pytest.raises(TypeError):
        state.positions["AAPL"] = 5.0  # type: ignore[index]


def test_checker_needs_limits_and_tz_aware_now():
    with pytest.raises(TypeError, match="RiskLimits"):
        RiskChecker({"max_daily_loss": 0.03})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now must be tz-aware"):
        RiskChecker(RiskLimits()).check_account(account(), datetime(2024, 1, 1))


def test_adding_an_order_equals_the_account_built_with_it() -> None:
    base = account({"AAPL": 10.0, "MSFT": -5.0}, {"AAPL": 100.0, "MSFT": 50.0}, peak=120_000.0)
    after = base.adding("AAPL", 7.0).adding("NVDA", 3.0, price=400.0).adding("MSFT", 5.0, 1.0)
    built = account(
        {"AAPL": 17.0, "MSFT": 0.0, "NVDA": 3.0},
        {"AAPL": 100.0, "MSFT": 50.0, "NVDA": 400.0},  # a held symbol keeps its price
        peak=120_000.0,
    )
    assert after == built
    assert dict(base.positions) == {"AAPL": 10.0, "MSFT": -5.0}  # the base is unchanged
    with pytest.raises(TypeError):
        after.positions["AAPL"] = 1.0  # type: ignore[index]  # still read-only
    # the checks see the same account either way
    checker = RiskChecker(RiskLimits(max_gross_exposure=0.05))
    probe = order(4.0, "NVDA", 400.0)
    assert checker.check(probe, after) == checker.check(probe, built)


def test_adding_refuses_a_quantity_that_is_not_finite() -> None:
    with pytest.raises(ValueError, match="position AAPL"):
        account().adding("AAPL", math.nan)


def test_held_value_carried_through_a_batch_equals_the_value_built_fresh() -> None:
    """The held value a batch's orders are checked against is computed once and then
    carried by each order; after any sequence of orders (opening, closing, flipping, an
    unpriced symbol given a price) it equals the value of the account built fresh."""
    import random

    rng = random.Random(7)
    symbols = [f"S{i}" for i in range(12)]
    positions = {s: float(rng.choice([-30, -5, 0, 5, 40])) for s in symbols}
    prices = {s: rng.uniform(5, 500) for s in symbols[:-2]}  # S10, S11 held unpriced
    prices["S9"] = math.nan  # a held symbol with an unusable price
    state = account(positions, prices)
    state.held_value()  # computed once, then carried
    for _ in range(200):
        sym = rng.choice(symbols)
        qty = float(rng.choice([-40, -7, -1, 1, 3, 25]))
        price = rng.uniform(5, 500) if rng.random() < 0.3 else None
        state = state.adding(sym, qty, price)
        fresh = account(dict(state.positions), dict(state.prices))
        total, unpriced = state.held_value()
        assert unpriced == fresh.held_value()[1]
        assert total == pytest.approx(fresh.held_value()[0], rel=1e-12)


def test_gross_exposure_of_a_batch_matches_each_order_checked_on_a_fresh_account() -> None:
    """Checking a batch against a carried account gives the decisions (and breach values)
    of checking each order against the account built fresh with the earlier orders."""
    checker = RiskChecker(RiskLimits(max_gross_exposure=1.2))
    base = account({"AAPL": 300.0, "MSFT": -200.0, "NVDA": 50.0}, {"AAPL": 150.0, "MSFT": 300.0})
    batch = [("NVDA", 10.0, 400.0), ("AAPL", 100.0, 150.0), ("TSLA", 50.0, 200.0)]
    carried = base
    for sym, qty, px in batch:
        proposal = order(qty, sym, px)
        fresh = account(dict(carried.positions), dict(carried.prices))
        got, want = checker.check(proposal, carried), checker.check(proposal, fresh)
        assert got.allowed == want.allowed
        assert [(b.limit, b.message) for b in got.breaches] == [
            (b.limit, b.message) for b in want.breaches
        ]
        carried = carried.adding(sym, qty, px)
    # NVDA was held unpriced until its own order priced it: now every order is valued.
    # AAPL 401 x 100 (the probe's price) + MSFT 200 x 300 + NVDA 60 x 400 + TSLA 50 x 200
    breach = checker.check(order(1.0), carried).breaches[0]
    assert breach.message.startswith("max_gross_exposure: gross 134,100.00 / equity")
    assert (
        checker.check(order(1.0), base)
        .breaches[0]
        .message.startswith("max_gross_exposure: no usable price for held NVDA")
    )
