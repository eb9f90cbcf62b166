"""Grid, random and genetic search; walk-forward; Dask gives identical results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratvector.backtest import BacktestSettings, run
from stratvector.backtest.search import GeneticSettings, optimize
from stratvector.backtest.space import ParamSpace
from stratvector.backtest.sweep import Objective
from stratvector.backtest.walkforward import make_windows, walk_forward
from stratvector.data import load_csv, sample_path
from stratvector.errors import ConfigError, StratVectorError
from stratvector.strategy.builtins.sma_crossover import SmaCrossover

RANGES = {"fast": "5:50:5", "slow": "20:200:20"}


@pytest.fixture(scope="module")
def bars():
    return {s: load_csv(sample_path(s)) for s in ("AAPL", "GOOG")}


def test_grid_search_ranks_every_set_and_picks_the_max(bars):
    space = ParamSpace(SmaCrossover, RANGES)
    res = optimize(SmaCrossover, bars, space, BacktestSettings(), method="grid", objective="sharpe")
    assert res.n_evaluated == len(space.grid())
    per_set = res.sweep.table.groupby("set_id")["sharpe"].mean()
    assert res.best_score == pytest.approx(per_set.max())
    assert list(res.ranking["score"]) == sorted(res.ranking["score"], reverse=True)
    # the best set's plain backtests reproduce its score
    plain = np.mean(
        [run(SmaCrossover(**res.best_params), b).metrics["sharpe"] for b in bars.values()]
    )
    assert plain == pytest.approx(res.best_score, rel=1e-9)


def test_weighted_objective_and_min_aggregate(bars):
    space = ParamSpace(SmaCrossover, RANGES)
    obj = Objective.parse("sharpe=1,max_drawdown=2", aggregate="min")
    res = optimize(SmaCrossover, bars, space, BacktestSettings(), objective=obj)
    t = res.sweep.table
    scores = (t["sharpe"] + 2 * t["max_drawdown"]).groupby(t["set_id"]).min()
    assert res.best_score == pytest.approx(scores.max())


def test_random_search_is_seeded_and_unique(bars):
    space = ParamSpace(SmaCrossover, RANGES)
    a = optimize(SmaCrossover, bars, space, BacktestSettings(), method="random", n_iter=25, seed=3)
    b = optimize(SmaCrossover, bars, space, BacktestSettings(), method="random", n_iter=25, seed=3)
    c = optimize(SmaCrossover, bars, space, BacktestSettings(), method="random", n_iter=25, seed=4)
    assert a.n_evaluated == 25
    pd.testing.assert_frame_equal(a.ranking, b.ranking)
    assert not a.ranking.index.equals(c.ranking.index) or not a.ranking.equals(c.ranking)
    assert not a.ranking[["fast", "slow"]].duplicated().any()


def test_genetic_search_is_seeded_improves_and_respects_constraints(bars):
    space = ParamSpace(SmaCrossover, RANGES)
    ga = GeneticSettings(population=12, generations=6, elitism=2)
    a = optimize(
        SmaCrossover, bars, space, BacktestSettings(), method="genetic", genetic=ga, seed=7
    )
    b = optimize(
        SmaCrossover, bars, space, BacktestSettings(), method="genetic", genetic=ga, seed=7
    )
    assert a.best_params == b.best_params
    pd.testing.assert_frame_equal(a.history, b.history)
    assert list(a.history["best"]) == sorted(a.history["best"])  # elitism: never worse
    assert (a.ranking["fast"] < a.ranking["slow"]).all()
    assert a.n_evaluated < len(space.grid())
    with pytest.raises(ConfigError):
        GeneticSettings(population=1)


def test_walk_forward_windows_and_out_of_sample_stitching(bars):
    idx = bars["AAPL"].index
    rolling = make_windows(idx, 500, 250)
    assert rolling[0].train_start == idx[0] and rolling[0].test_start == idx[500]
    assert rolling[1].train_start == idx[250]
    anchored = make_windows(idx, 500, 250, anchored=True)
    assert all(w.train_start == idx[0] for w in anchored)
    assert rolling[-1].test_end == idx[-1]
    with pytest.raises(ConfigError, match="longer than the data"):
        make_windows(idx, 2600, 200)

    space = ParamSpace(SmaCrossover, {"fast": "5:25:10", "slow": "30:90:30"})
    wf = walk_forward(
        SmaCrossover, bars, space, BacktestSettings(position_size=0.5), train=500, test=250
    )
    w = wf.windows
    assert len(w) == len(rolling)
    # stitched equity compounds the windows' returns
    assert wf.oos_equity.iloc[-1] == pytest.approx(100_000 * np.prod(1 + w["oos_return"]), rel=1e-9)
    assert wf.oos_equity.index[0] == idx[500] and wf.oos_equity.index.is_monotonic_increasing
    assert not wf.oos_equity.index.duplicated().any()
    assert wf.metrics["oos_sharpe"] == pytest.approx(wf.oos_sharpe)
    assert set(wf.stability["parameter"]) == {"fast", "slow"}
    # each window's chosen set is the best of its in-sample search
    first = wf.searches[0]
    assert w.loc[0, "fast"] == first.best_params["fast"]


@pytest.mark.integration
def test_dask_local_cluster_gives_identical_results(bars):
    from stratvector.backtest.distributed import dask_client, dask_evaluator

    space = ParamSpace(SmaCrossover, RANGES)
    local = optimize(SmaCrossover, bars, space, BacktestSettings(), metrics=("omega",))
    with dask_client("local", n_workers=2) as client:
        remote = optimize(
            SmaCrossover,
            bars,
            space,
            BacktestSettings(),
            metrics=("omega",),
            evaluator=dask_evaluator(client, sets_per_task=17),
        )
        ga = GeneticSettings(population=10, generations=3)
        g_local = optimize(
            SmaCrossover, bars, space, BacktestSettings(), method="genetic", genetic=ga, seed=1
        )
        g_remote = optimize(
            SmaCrossover,
            bars,
            space,
            BacktestSettings(),
            method="genetic",
            genetic=ga,
            seed=1,
            evaluator=dask_evaluator(client, sets_per_task=4),
        )
    pd.testing.assert_frame_equal(local.sweep.table, remote.sweep.table)
    assert local.best_params == remote.best_params
    pd.testing.assert_frame_equal(g_local.history, g_remote.history)


def test_unreachable_dask_scheduler_is_a_clear_error():
    from stratvector.backtest.distributed import dask_client

    with (
        pytest.raises(
            StratVectorError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
        ),
        dask_client("tcp://127.0.0.1:9", timeout=1),
    ):
        pass
