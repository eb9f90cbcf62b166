"""Built-in strategies: contract, warmup, semantics against hand-made and pandas references."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pandas as pd
import pytest

from stratvector.errors import StrategyError
from stratvector.strategy import Strategy, builtin_strategies
from stratvector.strategy import indicators as ind
from stratvector.strategy.builtins import (
    BUILTINS,
    BollingerBreakout,
    BuyAndHold,
    Momentum,
    RsiReversion,
    SmaCrossover,
)
from stratvector.strategy.builtins.momentum import momentum_nb
from stratvector.strategy.builtins.sma_crossover import sma_crossover_nb

VARIANTS = [
    SmaCrossover(),
    SmaCrossover(fast=5, slow=20, allow_short=True),
    SmaCrossover(fast=50, slow=200),
    Momentum(),
    Momentum(lookback_period=60, entry_threshold=0.05, exit_threshold=0.0, allow_short=True),
    Momentum(lookback_period=2),
    RsiReversion(),
    RsiReversion(period=2, lower=10.0, upper=90.0, exit_level=60.0, allow_short=True),
    BollingerBreakout(),
    BollingerBreakout(window=50, num_std=1.5, allow_short=True),
    BuyAndHold(),
]


def bars_from_close(close: list[float]) -> pd.DataFrame:
    c = np.asarray(close, dtype=np.float64)
    idx = pd.date_range("2020-01-01", periods=c.size, freq="D", tz="UTC", name="time")
    return pd.DataFrame(
        {"open": c, "high": c, "low": c, "close": c, "volume": np.zeros(c.size)}, index=idx
    )


def states(long_entry, long_exit, short_entry, short_exit, valid) -> np.ndarray:
    """A plain-Python hysteresis reference, bar by bar."""
    out, state = [], 0
    for le, lx, se, sx, ok in zip(
        long_entry, long_exit, short_entry, short_exit, valid, strict=True
    ):
        if not ok:
            out.append(math.nan)
            continue
        if (state == 1 and lx) or (state == -1 and sx):
            state = 0
        if state == 0:
            state = 1 if le else (-1 if se else 0)
        out.append(float(state))
    return np.array(out)


# --- the contract -------------------------------------------------------------------------


def test_builtins_tuple_and_registry_agree():
    assert isinstance(BUILTINS, tuple) and all(issubclass(c, Strategy) for c in BUILTINS)
    assert set(builtin_strategies()) == {
        "sma_crossover",
        "momentum",
        "rsi_reversion",
        "bollinger_breakout",
        "buy_and_hold",
    }


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_param_specs_are_complete(cls):
    assert cls.__doc__ and cls.name
    for key, p in cls.params.items():
        assert p.doc, f"{cls.name}.{key} has no doc"
        if p.kind is bool:
            continue
        assert p.low is not None and p.high is not None and p.low <= p.default <= p.high, key
        assert p.step is not None and p.step > 0, key
        assert isinstance(p.low, p.kind) and isinstance(p.high, p.kind), key
    cls()  # defaults satisfy the constraints


@pytest.mark.parametrize("strategy", VARIANTS, ids=repr)
def test_target_shape_values_and_warmup_on_aapl(strategy, aapl):
    t = strategy.target(aapl)
    assert isinstance(t, pd.Series) and t.name == "target" and t.dtype == np.float64
    assert t.index.equals(aapl.index)
    w = strategy.warmup
    assert w >= 1
    assert t.iloc[: w - 1].isna().all()
    assert not np.isnan(t.iloc[w - 1])
    assert t.iloc[w - 1 :].notna().all()
    assert set(t.dropna().unique()) <= {-1.0, 0.0, 1.0}
    if not strategy.values.get("allow_short", False):
        assert (t.dropna() >= 0).all()


@pytest.mark.parametrize("strategy", VARIANTS, ids=repr)
def test_short_histories(strategy, aapl):
    w = strategy.warmup
    assert strategy.target(aapl.iloc[:0]).empty
    short = strategy.target(aapl.iloc[: w - 1])
    assert len(short) == w - 1 and short.isna().all()
    exact = strategy.target(aapl.iloc[:w])
    assert exact.iloc[:-1].isna().all() and not np.isnan(exact.iloc[-1])


def test_long_short_variants_actually_go_short(aapl):
    for s in VARIANTS:
        if s.values.get("allow_short"):
            assert (s.target(aapl) == -1.0).any(), repr(s)


# --- sma_crossover ------------------------------------------------------------------------


@pytest.mark.parametrize("allow_short", [False, True])
def test_sma_crossover_matches_pandas(aapl, allow_short):
    s = SmaCrossover(fast=8, slow=30, allow_short=allow_short)
    c = aapl["close"]
    f, sl = c.rolling(8).mean(), c.rolling(30).mean()
    expected = np.where(f > sl, 1.0, -1.0 if allow_short else 0.0)
    expected[(f == sl).to_numpy()] = 0.0
    expected[sl.isna().to_numpy()] = np.nan
    np.testing.assert_array_equal(s.target(aapl).to_numpy(), expected)
    np.testing.assert_array_equal(
        sma_crossover_nb(c.to_numpy(), 8, 30, allow_short), s.target(aapl).to_numpy()
    )


def test_sma_crossover_constraint_and_bounds():
    with pytest.raises(StrategyError, match="fast < slow"):
        SmaCrossover(fast=50, slow=50)
    with pytest.raises(StrategyError, match="out of bounds"):
        SmaCrossover(fast=1)
    assert SmaCrossover(fast=20, slow=100).warmup == 100


# --- momentum -----------------------------------------------------------------------------


def test_momentum_params_are_exactly_the_documented_ones():
    assert list(Momentum.params) == [
        "lookback_period",
        "entry_threshold",
        "exit_threshold",
        "allow_short",
    ]
    assert Momentum.params.defaults() == {
        "lookback_period": 14,
        "entry_threshold": 0.02,
        "exit_threshold": -0.01,
        "allow_short": False,
    }
    assert Momentum().warmup == 15


def test_momentum_config_loads():
    cfg = tomllib.loads(
        "[parameters]\nentry_threshold = 0.02\nexit_threshold = -0.01\nlookback_period = 14\n"
    )
    m = Momentum(**cfg["parameters"])
    assert m.values == Momentum.params.defaults()
    assert isinstance(m.p.lookback_period, int) and isinstance(m.p.entry_threshold, float)


def test_momentum_hysteresis_by_hand():
    # one-bar returns: +3 %, +0.97 %, -0.48 %, -1.47 %, +0.49 %, +2.44 %
    bars = bars_from_close([100, 103, 104, 103.5, 102, 102.5, 105])
    t = Momentum(lookback_period=1).target(bars).to_numpy()
    np.testing.assert_array_equal(t, [np.nan, 1, 1, 1, 0, 0, 1])


def test_momentum_short_side_mirrors_and_reverses_in_one_bar():
    # -3 % short, -0.5 % hold, +0.5 % hold (cover needs > +1 %), +1.5 % cover, +2.5 % long,
    # then -4 %: the long exits and the short opens on the same bar
    bars = bars_from_close([100, 97, 96.515, 96.998, 98.453, 100.914, 96.877])
    t = Momentum(lookback_period=1, allow_short=True).target(bars).to_numpy()
    np.testing.assert_array_equal(t, [np.nan, -1, -1, -1, 0, 1, -1])
    long_only = Momentum(lookback_period=1).target(bars).to_numpy()
    np.testing.assert_array_equal(long_only, [np.nan, 0, 0, 0, 0, 1, 0])


@pytest.mark.parametrize("allow_short", [False, True])
def test_momentum_matches_a_python_loop_on_aapl(aapl, allow_short):
    m = Momentum(
        lookback_period=20, entry_threshold=0.03, exit_threshold=-0.02, allow_short=allow_short
    )
    r = (aapl["close"] / aapl["close"].shift(20) - 1.0).to_numpy()
    with np.errstate(invalid="ignore"):
        expected = states(r > 0.03, r < -0.02, (r < -0.03) & allow_short, r > 0.02, ~np.isnan(r))
    np.testing.assert_array_equal(m.target(aapl).to_numpy(), expected)
    np.testing.assert_array_equal(
        momentum_nb(aapl["close"].to_numpy(), 20, 0.03, -0.02, allow_short), expected
    )


def test_momentum_rejects_exit_above_entry():
    with pytest.raises(StrategyError, match="exit_threshold <= entry_threshold"):
        Momentum(entry_threshold=0.01, exit_threshold=0.02)


# --- rsi_reversion ------------------------------------------------------------------------


@pytest.mark.parametrize("allow_short", [False, True])
def test_rsi_reversion_matches_a_python_loop(aapl, allow_short):
    s = RsiReversion(period=10, lower=35.0, upper=65.0, exit_level=55.0, allow_short=allow_short)
    r = ind.rsi(aapl["close"].to_numpy(), 10)
    with np.errstate(invalid="ignore"):
        expected = states(r < 35, r > 55, (r > 65) & allow_short, r < 55, ~np.isnan(r))
    np.testing.assert_array_equal(s.target(aapl).to_numpy(), expected)
    assert s.warmup == 11


def test_rsi_reversion_by_hand():
    # period 2: falls push the RSI to 0 (enter long), a rise to 100 (exit)
    bars = bars_from_close([10, 9, 8, 8.5, 9.5, 9.4])
    t = RsiReversion(period=2).target(bars).to_numpy()
    assert np.isnan(t[:2]).all()
    np.testing.assert_array_equal(t[2:], [1, 1, 0, 0])


def test_rsi_reversion_constraints():
    with pytest.raises(StrategyError, match="lower < exit_level"):
        RsiReversion(lower=40.0, exit_level=35.0)
    with pytest.raises(StrategyError, match="exit_level < upper"):
        RsiReversion(exit_level=80.0, upper=75.0)


# --- bollinger_breakout -------------------------------------------------------------------


@pytest.mark.parametrize("allow_short", [False, True])
def test_bollinger_breakout_matches_a_python_loop(aapl, allow_short):
    s = BollingerBreakout(window=30, num_std=1.75, allow_short=allow_short)
    c = aapl["close"]
    mid = c.rolling(30).mean().to_numpy()
    sd = c.rolling(30).std(ddof=0).to_numpy()
    up, lo, x = mid + 1.75 * sd, mid - 1.75 * sd, c.to_numpy()
    expected = states(x > up, x < mid, (x < lo) & allow_short, x > mid, ~np.isnan(mid))
    got = s.target(aapl).to_numpy()
    # a close within 1e-9 of a band could flip either way; there is none on this data
    assert np.nanmin(np.abs(x - up) / x) > 1e-9 and np.nanmin(np.abs(x - mid) / x) > 1e-9
    np.testing.assert_array_equal(got, expected)


def test_bollinger_breakout_by_hand():
    bars = bars_from_close([10, 10, 10, 10, 10, 12, 11.5, 10.5, 10.0, 7.0])
    t = BollingerBreakout(window=5, num_std=1.0, allow_short=True).target(bars).to_numpy()
    assert np.isnan(t[:4]).all()
    # flat in the constant window, break above, hold above the middle, exit below it,
    # then a close under the lower band goes short
    np.testing.assert_array_equal(t[4:], [0, 1, 1, 0, 0, -1])


# --- buy_and_hold -------------------------------------------------------------------------


def test_buy_and_hold(aapl):
    s = BuyAndHold()
    assert s.warmup == 1 and len(BuyAndHold.params) == 0
    t = s.target(aapl)
    assert (t == 1.0).all() and t.index.equals(aapl.index)
    with pytest.raises(StrategyError, match="unknown parameter"):
        BuyAndHold(fast=3)
