"""The fast sweep path against the plain per-set path, and the parameter space."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratvector.backtest import (
    BacktestSettings,
    BpsSlippage,
    IBKRTiered,
    PercentCommission,
    run,
)
from stratvector.backtest.space import ParamSpace
from stratvector.backtest.sweep import FAST_METRICS, Objective, evaluate
from stratvector.data import load_csv, sample_path, synthetic_bars
from stratvector.errors import ConfigError
from stratvector.strategy import Strategy
from stratvector.strategy.builtins.momentum import Momentum
from stratvector.strategy.builtins.sma_crossover import SmaCrossover


@pytest.fixture(scope="module")
def real_bars():
    return {s: load_csv(sample_path(s)).loc["2016":"2020"] for s in ("AAPL", "NVDA")}


SETTINGS = [
    BacktestSettings(),
    BacktestSettings(
        commission=IBKRTiered(),
        slippage=BpsSlippage(3),
        stop_loss=0.05,
        trailing_stop=0.1,
        take_profit=0.2,
        position_size=0.8,
    ),
    BacktestSettings(
        lot_size=0.0, size_on="fill", commission=PercentCommission(0.001), max_drawdown=0.2
    ),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize(
    "cls,ranges",
    [
        (SmaCrossover, {"fast": "5:40:7", "slow": "20:120:25", "allow_short": "false,true"}),
        (Momentum, {"lookback_period": "5,20,60", "entry_threshold": "0.0,0.03"}),
    ],
)
def test_every_sweep_row_equals_the_plain_backtest(real_bars, settings, cls, ranges):
    sets = ParamSpace(cls, ranges).grid()
    res = evaluate(cls, real_bars, sets, settings, metrics=("omega", "tail_ratio"), chunk_size=5)
    assert len(res.table) == len(sets) * 2
    for i in range(0, len(sets), max(1, len(sets) // 6)):
        for sym, bars in real_bars.items():
            plain = run(cls(**sets[i]), bars, **_as_overrides(settings))
            row = res.table[(res.table.set_id == i) & (res.table.symbol == sym)].iloc[0]
            for key in (*FAST_METRICS, "omega", "tail_ratio"):
                a, b = row[key], plain.metrics[key]
                assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(
                    b, rel=1e-9, abs=1e-12
                ), (i, sym, key)


def _as_overrides(s: BacktestSettings) -> dict:
    import dataclasses

    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}


def test_target_batch_override_equals_target():
    bars = synthetic_bars(600, seed=5)
    sets = ParamSpace(
        SmaCrossover, {"fast": "2:30:4", "slow": "10:90:20", "allow_short": "false,true"}
    ).grid()
    fast = SmaCrossover.target_batch(bars, sets)
    plain = np.stack([SmaCrossover(**p).target(bars).to_numpy() for p in sets])
    np.testing.assert_array_equal(fast, plain)
    default = Strategy.target_batch.__func__(Momentum, bars, [{"lookback_period": 7}])
    np.testing.assert_array_equal(default[0], Momentum(lookback_period=7).target(bars).to_numpy())


def test_equity_curves_kept_on_request(real_bars):
    sets = [{"fast": 10, "slow": 50}]
    res = evaluate(SmaCrossover, real_bars, sets, BacktestSettings(), keep_equity=True)
    plain = run(SmaCrossover(fast=10, slow=50), real_bars["NVDA"])
    pd.testing.assert_series_equal(res.equity[(0, "NVDA")], plain.equity, check_freq=False)


def test_space_parsing_and_errors():
    space = ParamSpace(SmaCrossover, {"fast": "5:20:5", "slow": "10,20,30"})
    assert space.dimensions[0].values == (5, 10, 15, 20)
    assert all(p["fast"] < p["slow"] for p in space.grid())
    assert len(space.grid()) == 3 + 2 + 2 + 1  # fast 5, 10, 15, 20 against the slower windows
    cases = [
        ({"fast": "20:5:5"}, "inverted range"),
        ({"fast": "5:20:0"}, "step must be > 0"),
        ({"fast": "5:20"}, "expected start:stop:step"),
        ({"fsat": "5:20:5"}, "did you mean 'fast'"),
        ({"fast": "1:20:1"}, "out of bounds"),
        ({"fast": "5.5,6"}, "whole number"),
        ({"fast": "a,b"}, "is not a number"),
        ({"fast": "90:100:10", "slow": "10:20:10"}, "no parameter set satisfies"),
    ]
    for ranges, message in cases:
        with pytest.raises(ConfigError, match=message):
            ParamSpace(SmaCrossover, ranges).grid()
    declared = ParamSpace(SmaCrossover)  # no ranges: the declared bounds and steps
    assert declared.names == ("fast", "slow") and declared.fixed == {"allow_short": False}


def test_objective_parsing():
    assert Objective.parse("sharpe").weights == (("sharpe", 1.0),)
    assert Objective.parse("annual_volatility").weights == (("annual_volatility", -1.0),)
    assert Objective.parse("sharpe=1,max_drawdown=0.5").weights == (
        ("sharpe", 1.0),
        ("max_drawdown", 0.5),
    )
    with pytest.raises(ConfigError, match="did you mean 'sharpe'"):
        Objective.parse("sharp")
    with pytest.raises(ConfigError, match="aggregate"):
        Objective.parse("sharpe", "max")
