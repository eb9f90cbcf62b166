"""The vectorized backtester: numba kernel, cost models, settings, results.

``stratvector.backtest.run(strategy_or_config, bars, **overrides)`` is the entry point.

The names below are loaded on first use (PEP 562), so importing one submodule (the
trading process needs ``costs``, ``nb`` and ``settings``) does not import the
optimizer, walk-forward, Monte Carlo and run-store modules with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "BpsSlippage": "costs",
    "HalfSpreadSlippage": "costs",
    "IBKRFixed": "costs",
    "IBKRTiered": "costs",
    "NoCommission": "costs",
    "NoSlippage": "costs",
    "PercentCommission": "costs",
    "PerOrderCommission": "costs",
    "SqrtImpactSlippage": "costs",
    "run": "engine",
    "simulate": "engine",
    "strategy_target": "engine",
    "MonteCarloResult": "montecarlo",
    "returns_monte_carlo": "montecarlo",
    "trade_monte_carlo": "montecarlo",
    "BacktestResult": "result",
    "backtest_run_payload": "runs",
    "list_runs": "runs",
    "load_run": "runs",
    "save_run": "runs",
    "GeneticSettings": "search",
    "SearchResult": "search",
    "optimize": "search",
    "BacktestSettings": "settings",
    "cost_model": "settings",
    "ParamSpace": "space",
    "Objective": "sweep",
    "SweepResult": "sweep",
    "evaluate": "sweep",
    "WalkForwardResult": "walkforward",
    "walk_forward": "walkforward",
}

if TYPE_CHECKING:
    from stratvector.backtest.costs import (
        BpsSlippage,
        HalfSpreadSlippage,
        IBKRFixed,
        IBKRTiered,
        NoCommission,
        NoSlippage,
        PercentCommission,
        PerOrderCommission,
        SqrtImpactSlippage,
    )
    from stratvector.backtest.engine import run, simulate, strategy_target
    from stratvector.backtest.montecarlo import (
        MonteCarloResult,
        returns_monte_carlo,
        trade_monte_carlo,
    )
    from stratvector.backtest.result import BacktestResult
    from stratvector.backtest.runs import backtest_run_payload, list_runs, load_run, save_run
    from stratvector.backtest.search import GeneticSettings, SearchResult, optimize
    from stratvector.backtest.settings import BacktestSettings, cost_model
    from stratvector.backtest.space import ParamSpace
    from stratvector.backtest.sweep import Objective, SweepResult, evaluate
    from stratvector.backtest.walkforward import WalkForwardResult, walk_forward


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "BacktestResult",
    "BacktestSettings",
    "BpsSlippage",
    "GeneticSettings",
    "HalfSpreadSlippage",
    "IBKRFixed",
    "IBKRTiered",
    "MonteCarloResult",
    "NoCommission",
    "NoSlippage",
    "Objective",
    "ParamSpace",
    "PerOrderCommission",
    "PercentCommission",
    "SearchResult",
    "SqrtImpactSlippage",
    "SweepResult",
    "WalkForwardResult",
    "backtest_run_payload",
    "cost_model",
    "evaluate",
    "list_runs",
    "load_run",
    "optimize",
    "returns_monte_carlo",
    "run",
    "save_run",
    "simulate",
    "strategy_target",
    "trade_monte_carlo",
    "walk_forward",
]
