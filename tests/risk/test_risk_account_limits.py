"""Account-level limits (daily loss, drawdown), kill_on selection, and limits from config."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from stratvector.errors import ConfigError
from stratvector.risk import (
    LIMIT_NAMES,
    AccountState,
    OrderProposal,
    RiskChecker,
    RiskLimits,
    limits_from_mapping,
)

NOW = datetime(2024, 3, 4, 20, 0, tzinfo=UTC)


def state(equity: float, *, peak: float = 100_000.0, day_start: float = 100_000.0):
    return AccountState(equity, peak, day_start, {}, {})


# ------------------------------------------------------------------ max_daily_loss


def test_daily_loss_at_limit_is_fine_a_cent_more_is_a_breach():
    checker = RiskChecker(RiskLimits(max_daily_loss=0.03))
    assert checker.check_account(state(97_000.0), NOW) == ()
    assert checker.check_account(state(97_000.01), NOW) == ()
    (breach,) = checker.check_account(state(96_999.99), NOW)
    assert breach.limit == "max_daily_loss"
    assert breach.value == pytest.approx(0.0300001)
    assert breach.threshold == 0.03
    assert breach.trips_kill  # in the default kill_on
    assert breach.message == (
        "max_daily_loss: equity 96,999.99 is 3.00001% below day-start equity 100,000.00 > 3.00000%"
    )


def test_daily_loss_is_measured_from_the_day_start_not_the_peak():
    checker = RiskChecker(RiskLimits(max_daily_loss=0.03))
    # down 10% from the peak but only 2% today
    assert checker.check_account(state(90_000.0, day_start=91_836.74), NOW) == ()
    # up on the day: no loss at all
    assert checker.check_account(state(120_000.0, peak=120_000.0), NOW) == ()


# ------------------------------------------------------------------ max_drawdown


def test_drawdown_below_peak():
    checker = RiskChecker(RiskLimits(max_drawdown=0.15))
    assert checker.check_account(state(85_000.0, peak=100_000.0, day_start=85_000.0), NOW) == ()
    (breach,) = checker.check_account(state(84_000.0, peak=100_000.0, day_start=84_500.0), NOW)
    assert breach.limit == "max_drawdown"
    assert breach.value == pytest.approx(0.16)
    assert breach.message == (
        "max_drawdown: equity 84,000.00 is 16.00% below peak equity 100,000.00 > 15.00%"
    )


def test_both_account_limits_reported_together():
    checker = RiskChecker(RiskLimits(max_daily_loss=0.03, max_drawdown=0.15))
    breaches = checker.check_account(state(80_000.0), NOW)
    assert [b.limit for b in breaches] == ["max_daily_loss", "max_drawdown"]


def test_account_limits_fail_closed_on_a_non_positive_reference():
    checker = RiskChecker(RiskLimits(max_daily_loss=0.03, max_drawdown=0.15))
    breaches = checker.check_account(state(10.0, peak=0.0, day_start=-5.0), NOW)
    assert [b.limit for b in breaches] == ["max_daily_loss", "max_drawdown"]
    assert all(b.value == math.inf for b in breaches)
    assert "day-start equity is -5.00; cannot measure the loss" in breaches[0].message


def test_account_breach_blocks_opening_orders_but_not_closing_ones():
    checker = RiskChecker(RiskLimits(max_daily_loss=0.03))
    down = AccountState(96_000.0, 100_000.0, 100_000.0, {"AAPL": 100.0}, {"AAPL": 100.0})
    opening = checker.check(OrderProposal("m", "MSFT", 1, 100.0, NOW), down)
    assert not opening.allowed and opening.trips_kill
    assert [b.limit for b in opening.breaches] == ["max_daily_loss"]
    closing = checker.check(OrderProposal("m", "AAPL", -100, 100.0, NOW), down)
    assert closing.allowed and not closing.trips_kill


# ------------------------------------------------------------------ kill_on


def test_kill_on_selects_which_breaches_trip_the_kill_switch():
    down = state(80_000.0)
    default = RiskChecker(RiskLimits(max_daily_loss=0.03, max_drawdown=0.15))
    assert [b.trips_kill for b in default.check_account(down, NOW)] == [True, True]

    only_dd = RiskChecker(
        RiskLimits(max_daily_loss=0.03, max_drawdown=0.15, kill_on=["max_drawdown"])
    )
    assert [b.trips_kill for b in only_dd.check_account(down, NOW)] == [False, True]

    never = RiskChecker(RiskLimits(max_daily_loss=0.03, max_drawdown=0.15, kill_on=()))
    assert [b.trips_kill for b in never.check_account(down, NOW)] == [False, False]

    notional = RiskChecker(RiskLimits(max_order_notional=1_000, kill_on=("max_order_notional",)))
    decision = notional.check(OrderProposal("m", "AAPL", 11, 100.0, NOW), state(100_000.0))
    assert decision.trips_kill


def test_kill_on_is_validated_and_normalized():
    limits = RiskLimits(kill_on=["max_drawdown", "max_drawdown", "max_daily_loss"])
    assert limits.kill_on == ("max_drawdown", "max_daily_loss")
    with pytest.raises(ValueError, match="did you mean 'max_drawdown'"):
        RiskLimits(kill_on=("max_drawdon",))
    with pytest.raises(TypeError, match="list of limit names"):
        RiskLimits(kill_on="max_drawdown")


# ------------------------------------------------------------------ RiskLimits validation


def test_limits_validation():
    assert RiskLimits(max_daily_loss=None, max_orders_per_minute=None).enabled == ()
    assert RiskLimits(max_drawdown=0.2, max_order_notional=5).enabled == (
        "max_order_notional",
        "max_drawdown",
    )
    with pytest.raises(ValueError, match="max_order_notional must be >= 0"):
        RiskLimits(max_order_notional=-1)
    with pytest.raises(ValueError, match="max_gross_exposure must be >= 0"):
        RiskLimits(max_gross_exposure=math.nan)
    with pytest.raises(ValueError, match=r"max_daily_loss is a fraction .*0\.03 means 3%"):
        RiskLimits(max_daily_loss=3)
    with pytest.raises(TypeError, match="max_orders_per_minute must be a whole number"):
        RiskLimits(max_orders_per_minute=2.5)
    with pytest.raises(TypeError, match="max_position_value must be a number"):
        RiskLimits(max_position_value="1e6")
    with pytest.raises(TypeError, match="flatten_on_kill"):
        RiskLimits(flatten_on_kill="yes")
    assert RiskLimits(max_orders_per_minute=10.0).max_orders_per_minute == 10


# ------------------------------------------------------------------ limits_from_mapping


def test_limits_from_mapping_builds_limits():
    limits = limits_from_mapping(
        {
            "max_position_value": 250_000,
            "max_gross_exposure": 1.5,
            "max_order_notional": 50_000,
            "max_orders_per_minute": 30,
            "max_daily_loss": 0.03,
            "max_drawdown": 0.15,
            "kill_on": ["max_daily_loss"],
            "flatten_on_kill": True,
        },
        "strategies/momentum.toml [limits]",
    )
    assert limits == RiskLimits(250_000.0, 1.5, 50_000.0, 30, 0.03, 0.15, ("max_daily_loss",), True)
    assert limits_from_mapping({}, "x") == RiskLimits()
    assert set(LIMIT_NAMES) <= set(limits.__dataclass_fields__)


def test_limits_from_mapping_unknown_key_suggests_the_close_match():
    with pytest.raises(ConfigError) as err:
        limits_from_mapping({"max_daily_los": 0.03}, "strategies/momentum.toml [limits]")
    message = str(err.value)
    assert message.startswith(
        "strategies/momentum.toml [limits]: unknown risk limit key 'max_daily_los';"
        " did you mean 'max_daily_loss'?"
    )
    assert "allowed: max_position_value" in message
    with pytest.raises(ConfigError, match="unknown risk limit key 'zzz' allowed"):
        limits_from_mapping({"zzz": 1}, "cfg")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"max_drawdown": -0.1}, r"cfg: max_drawdown must be >= 0 \(0 turns the limit off\)"),
        ({"max_orders_per_minute": -1}, "cfg: max_orders_per_minute must be >= 0"),
        ({"max_orders_per_minute": "ten"}, "cfg: max_orders_per_minute must be a whole number"),
        ({"kill_on": ["max_daily_los"]}, "cfg: kill_on: unknown limit 'max_daily_los'; did you"),
        ({"max_daily_loss": 5}, "cfg: max_daily_loss is a fraction"),
        ({"flatten_on_kill": 1}, "cfg: flatten_on_kill must be true or false"),
    ],
)
def test_limits_from_mapping_rejects_bad_values(data, match):
    with pytest.raises(ConfigError, match=match):
        limits_from_mapping(data, "cfg")


def test_limits_from_mapping_needs_a_table():
    with pytest.raises(ConfigError, match="cfg: risk limits must be a table, not list"):
        limits_from_mapping([("max_drawdown", 0.1)], "cfg")  # type: ignore[arg-type]
