"""Trade-level and returns Monte Carlo: determinism, invariants, and paths checked with pandas."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest

from stratvector.backtest import run
from stratvector.backtest.montecarlo import (
    MonteCarloResult,
    returns_monte_carlo,
    trade_monte_carlo,
)
from stratvector.data import synthetic_bars
from stratvector.errors import StratVectorError
from stratvector.strategy.registry import builtin_strategies

RNG = np.random.default_rng(42)
PNL = RNG.normal(40.0, 900.0, 120)
RETS = RNG.normal(0.0004, 0.012, 400)


def _pandas_max_drawdown(path: np.ndarray) -> float:
    eq = pd.Series(path)
    return float((eq / eq.cummax() - 1.0).min())


@pytest.fixture(scope="module")
def backtest():
    return run(builtin_strategies()["momentum"], synthetic_bars(900, seed=3))


def test_same_seed_same_result_and_different_seed_differs():
    a = trade_monte_carlo(PNL, 500, init_cash=1e5, seed=7)
    b = trade_monte_carlo(PNL, 500, init_cash=1e5, seed=7)
    c = trade_monte_carlo(PNL, 500, init_cash=1e5, seed=8)
    assert np.array_equal(a.final_equity, b.final_equity)
    assert np.array_equal(a.max_drawdown, b.max_drawdown)
    assert not np.array_equal(a.final_equity, c.final_equity)
    r1 = returns_monte_carlo(RETS, 300, block_size=5, seed=1)
    r2 = returns_monte_carlo(RETS, 300, block_size=5, seed=1)
    assert np.array_equal(r1.final_equity, r2.final_equity)


def test_results_do_not_depend_on_thread_count_or_n_sims():
    before = numba.get_num_threads()
    try:
        many = returns_monte_carlo(RETS, 2000, block_size=4, block="stationary", seed=5)
        numba.set_num_threads(1)
        one = returns_monte_carlo(RETS, 2000, block_size=4, block="stationary", seed=5)
        trades_one = trade_monte_carlo(PNL, 300, "shuffle", init_cash=1e5)
    finally:
        numba.set_num_threads(before)
    trades_many = trade_monte_carlo(PNL, 300, "shuffle", init_cash=1e5)
    assert np.array_equal(many.final_equity, one.final_equity)
    assert np.array_equal(many.max_drawdown, one.max_drawdown)
    assert np.array_equal(trades_one.max_drawdown, trades_many.max_drawdown)
    # simulation i is the same whatever n_sims
    few = returns_monte_carlo(RETS, 50, block_size=4, block="stationary", seed=5)
    assert np.array_equal(few.final_equity, many.final_equity[:50])


def test_shuffle_keeps_final_equity_exactly_and_changes_drawdown():
    pnl = np.round(PNL * 4) / 4  # quarter units: every partial sum is exact in float64
    mc = trade_monte_carlo(pnl, 1000, "shuffle", init_cash=100_000.0)
    assert np.all(mc.final_equity == 100_000.0 + pnl.sum())
    assert mc.observed_final_equity == 100_000.0 + pnl.sum()
    assert np.unique(mc.max_drawdown).size > 100
    assert mc.max_drawdown.min() < mc.observed_max_drawdown < mc.max_drawdown.max()
    # every kept path is a permutation of the trades
    steps = np.diff(mc.paths, axis=1)
    assert np.array_equal(np.sort(steps, axis=1), np.tile(np.sort(pnl), (len(steps), 1)))


def test_bootstrap_mean_final_equity_matches_expectation():
    n_sims = 40_000
    mc = trade_monte_carlo(PNL, n_sims, "bootstrap", init_cash=50_000.0, seed=11)
    expected = 50_000.0 + len(PNL) * PNL.mean()
    stderr = np.sqrt(len(PNL)) * PNL.std() / np.sqrt(n_sims)
    assert abs(mc.final_equity.mean() - expected) < 5 * stderr
    # the spread of final equity is that of a sum of n i.i.d. draws
    assert mc.final_equity.std() == pytest.approx(np.sqrt(len(PNL)) * PNL.std(), rel=0.03)
    steps = np.diff(mc.paths, axis=1).ravel()
    assert np.abs(steps[:, None] - PNL[None, :]).min(axis=1).max() < 1e-6  # drawn from PNL


@pytest.mark.parametrize("kind", ["shuffle", "bootstrap", "fixed", "stationary"])
def test_max_drawdown_and_final_equity_match_pandas_on_the_kept_paths(kind):
    if kind in ("shuffle", "bootstrap"):
        mc = trade_monte_carlo(PNL, 400, kind, init_cash=20_000.0, keep_paths=25)
    else:
        mc = returns_monte_carlo(RETS, 400, block_size=6, block=kind, keep_paths=25)
    assert mc.paths.shape == (25, mc.n_steps + 1)
    assert np.all(mc.paths[:, 0] == mc.init_cash)
    for i, path in enumerate(mc.paths):
        assert mc.final_equity[i] == path[-1]
        assert mc.max_drawdown[i] == pytest.approx(_pandas_max_drawdown(path), abs=1e-12)
    assert np.all(mc.max_drawdown <= 0)
    assert np.allclose(mc.total_return, mc.final_equity / mc.init_cash - 1)


def test_block_of_full_length_gives_rotations_of_the_original():
    mc = returns_monte_carlo(RETS, 200, block_size=len(RETS), keep_paths=200, init_cash=10.0)
    assert np.allclose(mc.final_equity, mc.observed_final_equity, rtol=1e-12)
    starts = set()
    for path in mc.paths:
        r = path[1:] / path[:-1] - 1.0
        start = int(np.argmin(np.abs(RETS - r[0])))
        assert np.allclose(r, np.roll(RETS, -start), atol=1e-12)
        starts.add(start)
    assert len(starts) > 50  # random rotations, not always the original order
    assert mc.max_drawdown.min() < mc.max_drawdown.max()


def _source_positions(mc: MonteCarloResult) -> np.ndarray:
    r = mc.paths[:, 1:] / mc.paths[:, :-1] - 1.0
    order = np.argsort(RETS)
    found = np.searchsorted(RETS[order], r - 1e-13)
    return order[np.clip(found, 0, len(RETS) - 1)]


def test_fixed_blocks_continue_inside_blocks_and_stationary_blocks_have_the_mean_length():
    mc = returns_monte_carlo(RETS, 300, block_size=5, horizon=1000, keep_paths=300)
    assert mc.paths.shape == (300, 1001) and mc.n_steps == 1000
    pos = _source_positions(mc)
    cont = pos[:, 1:] == (pos[:, :-1] + 1) % len(RETS)
    inside = np.arange(1, 1000) % 5 != 0
    assert cont[:, inside].all()  # within a block, consecutive periods (circular)
    assert cont[:, ~inside].mean() < 0.02  # block starts are random
    st = returns_monte_carlo(RETS, 300, block_size=5, block="stationary", keep_paths=300)
    p = _source_positions(st)
    breaks = 1.0 - (p[:, 1:] == (p[:, :-1] + 1) % len(RETS)).mean()
    assert breaks == pytest.approx(1 / 5, abs=0.01)
    iid = returns_monte_carlo(RETS, 300, block_size=1, keep_paths=300)
    q = _source_positions(iid)
    assert (q[:, 1:] == (q[:, :-1] + 1) % len(RETS)).mean() < 0.02


def test_backtest_result_inputs(backtest):
    trades = backtest.trades
    closed = trades.loc[~trades["is_open"], "pnl"].to_numpy()
    init = backtest.settings.init_cash
    mc = trade_monte_carlo(backtest, 300, "shuffle")
    assert mc.init_cash == init and mc.n_steps == len(closed)
    assert mc.observed_final_equity == pytest.approx(init + closed.sum())
    assert np.allclose(mc.final_equity, init + closed.sum())
    same = trade_monte_carlo(trades, 300, "shuffle", init_cash=init)
    assert np.array_equal(same.max_drawdown, mc.max_drawdown)
    rm = returns_monte_carlo(backtest, 300, block_size=len(backtest.returns))
    assert rm.observed_final_equity == pytest.approx(backtest.final_equity, rel=1e-12)
    assert rm.observed_max_drawdown == pytest.approx(backtest.metrics["max_drawdown"], rel=1e-9)
    assert np.allclose(rm.final_equity, backtest.final_equity, rtol=1e-10)


def test_percentiles_summary_and_probability_of_loss():
    mc = trade_monte_carlo(PNL, 2000, init_cash=1e4, seed=2)
    table = mc.percentiles()
    assert list(table.index) == ["final_equity", "total_return", "max_drawdown"]
    assert list(table.columns) == [5, 25, 50, 75, 95]
    assert table.loc["final_equity", 50] == pytest.approx(np.median(mc.final_equity))
    assert table.loc["max_drawdown", 5] == pytest.approx(np.percentile(mc.max_drawdown, 5))
    assert mc.percentiles([1, 99.5]).shape == (3, 2)
    assert mc.probability_of_loss == pytest.approx(np.mean(mc.final_equity < 1e4))
    summary = mc.summary()
    assert all(isinstance(v, float) for v in summary.values())
    assert summary["n_sims"] == 2000 and summary["probability_of_loss"] == mc.probability_of_loss
    assert summary["worst_max_drawdown"] == mc.max_drawdown.min()
    with pytest.raises(StratVectorError, match=r"\[0, 100\]"):
        mc.percentiles([150])


def test_results_are_read_only_and_paths_are_bounded():
    mc = trade_monte_carlo(PNL, 50, init_cash=1e4, keep_paths=1000)
    assert mc.paths.shape[0] == 50  # never more than n_sims
    assert trade_monte_carlo(PNL, 50, init_cash=1e4, keep_paths=0).paths is None
    with pytest.raises(ValueError):
        mc.final_equity[0] = 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: trade_monte_carlo([], init_cash=1e4), "empty"),
        (lambda: trade_monte_carlo(PNL, 0, init_cash=1e4), "n_sims"),
        (lambda: trade_monte_carlo(PNL, 2.5, init_cash=1e4), "n_sims"),
        (lambda: trade_monte_carlo([1.0, np.nan], init_cash=1e4), "NaN"),
        (lambda: trade_monte_carlo([1.0, np.inf], init_cash=1e4), "infinite"),
        (lambda: trade_monte_carlo(PNL), "init_cash is required"),
        (lambda: trade_monte_carlo(PNL, init_cash=-1), "positive"),
        (lambda: trade_monte_carlo(PNL, method="permute", init_cash=1), "shuffle"),
        (lambda: trade_monte_carlo(PNL, init_cash=1, seed=-1), "seed"),
        (lambda: trade_monte_carlo(pd.DataFrame({"x": [1.0]}), init_cash=1), "'pnl'"),
        (lambda: returns_monte_carlo(np.r_[np.nan, RETS]), "dropna"),
        (lambda: returns_monte_carlo([]), "empty"),
        (lambda: returns_monte_carlo(RETS, block_size=0), "block_size"),
        (lambda: returns_monte_carlo(RETS, block_size=len(RETS) + 1), "at most"),
        (lambda: returns_monte_carlo(RETS, horizon=0), "horizon"),
        (lambda: returns_monte_carlo(RETS, block="moving"), "stationary"),
        (lambda: returns_monte_carlo(RETS.reshape(20, 20)), "one-dimensional"),
    ],
)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(StratVectorError, match=message):
        call()


def test_a_backtest_without_closed_trades_is_an_error():
    bars = synthetic_bars(50, seed=1)
    result = run(builtin_strategies()["buy_and_hold"], bars)
    with pytest.raises(StratVectorError, match="no trade P&L"):
        trade_monte_carlo(result)
