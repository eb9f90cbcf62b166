"""The vectorized backtester: numba kernel, cost models, settings, results.

``stratvector.backtest.run(strategy_or_config, bars, **overrides)`` is the entry point.
"""

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
from stratvector.backtest.montecarlo import MonteCarloResult, returns_monte_carlo, trade_monte_carlo
from stratvector.backtest.result import BacktestResult
from stratvector.backtest.runs import backtest_run_payload, list_runs, load_run, save_run
from stratvector.backtest.search import GeneticSettings, SearchResult, optimize
from stratvector.backtest.settings import BacktestSettings, cost_model
from stratvector.backtest.space import ParamSpace
from stratvector.backtest.sweep import Objective, SweepResult, evaluate
from stratvector.backtest.walkforward import WalkForwardResult, walk_forward

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
