"""Strategies with config versions; backtest and search runs with their results."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from stratvector.store import NotFoundError

D0 = datetime(2020, 1, 1, tzinfo=UTC)
D1 = datetime(2023, 12, 31, tzinfo=UTC)


def test_strategy_configs_are_versioned_by_content(journal):
    v1 = journal.strategies.register("mom_aapl", {"fast": 10, "slow": 50}, spec="momentum")
    assert (v1.version, v1.created, v1.spec) == (1, True, "momentum")
    same = journal.strategies.register("mom_aapl", {"slow": 50, "fast": 10})  # key order
    assert (same.version, same.created, same.id) == (1, False, v1.id)
    v2 = journal.strategies.register("mom_aapl", {"fast": 20, "slow": 50})
    assert v2.version == 2 and v2.config_hash != v1.config_hash
    assert [c.version for c in journal.strategies.configs("mom_aapl")] == [1, 2]
    assert journal.strategies.latest_config("mom_aapl").config == {"fast": 20, "slow": 50}
    assert journal.strategies.latest_config("nope") is None
    (info,) = journal.strategies.list_strategies()
    assert (info.name, info.spec, info.latest_version) == ("mom_aapl", "momentum", 2)


def test_save_list_and_load_runs(journal):
    cfg = journal.strategies.register("mom", {"fast": 10})
    metrics = {"sharpe": 1.25, "sortino": float("nan"), "max_drawdown": -0.21, "trades": 42}
    run = journal.runs.save_run(
        "optimization",
        {"strategy": "momentum", "grid": {"fast": [5, 10, 20]}},
        strategy="mom",
        strategy_config_id=cfg.id,
        data_start=D0,
        data_end=D1,
        symbols=["AAPL", "MSFT"],
        code_version="0.1.0+g1234abc",
        metrics=metrics,
        artefacts={"report": "runs/12/report.html", "trades": "runs/12/trades.parquet"},
        results=[
            {"label": f"fast={f}", "params": {"fast": f}, "metrics": {"sharpe": s}}
            for f, s in ((5, 0.9), (10, 1.25), (20, math.inf))
        ],
    )
    assert run.id > 0 and run.metrics["sortino"] is None  # NaN stored as null
    loaded = journal.runs.load_run(run.id)
    assert loaded.config == {"strategy": "momentum", "grid": {"fast": [5, 10, 20]}}
    assert (loaded.data_start, loaded.data_end) == (D0, D1)
    assert loaded.symbols == ["AAPL", "MSFT"] and loaded.code_version == "0.1.0+g1234abc"
    assert loaded.metrics == {"sharpe": 1.25, "sortino": None, "max_drawdown": -0.21, "trades": 42}
    assert loaded.artefacts["report"] == "runs/12/report.html"
    assert [r.label for r in loaded.results] == ["fast=5", "fast=10", "fast=20"]
    assert loaded.results[2].metrics == {"sharpe": None}
    backtest = journal.runs.save_run("backtest", {"strategy": "momentum"}, strategy="other")
    assert backtest.code_version  # defaults to the installed version
    assert [r.id for r in journal.runs.list_runs()] == [backtest.id, run.id]
    assert [r.id for r in journal.runs.list_runs(kind="optimization")] == [run.id]
    assert [r.id for r in journal.runs.list_runs(strategy="other")] == [backtest.id]
    assert journal.runs.list_runs()[1].results == ()  # lists stay light
    with pytest.raises(NotFoundError, match="no run with id 999"):
        journal.runs.load_run(999)


def test_run_results_reject_unknown_keys(journal):
    with pytest.raises(ValueError, match="unknown keys"):
        journal.runs.save_run("optimization", {}, results=[{"parms": {}}])
    assert journal.runs.list_runs() == []


def test_numpy_values_are_stored_as_plain_json(journal):
    np = pytest.importorskip("numpy")
    run = journal.runs.save_run(
        "backtest",
        {"weights": np.array([0.5, 0.5])},
        metrics={"sharpe": np.float64(1.5), "n": np.int64(3), "bad": np.float64("nan")},
    )
    loaded = journal.runs.load_run(run.id)
    assert loaded.config == {"weights": [0.5, 0.5]}
    assert loaded.metrics == {"sharpe": 1.5, "n": 3, "bad": None}
