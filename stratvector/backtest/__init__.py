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
from stratvector.backtest.result import BacktestResult
from stratvector.backtest.settings import BacktestSettings, cost_model

__all__ = [
    "BacktestResult",
    "BacktestSettings",
    "BpsSlippage",
    "HalfSpreadSlippage",
    "IBKRFixed",
    "IBKRTiered",
    "NoCommission",
    "NoSlippage",
    "PerOrderCommission",
    "PercentCommission",
    "SqrtImpactSlippage",
    "cost_model",
    "run",
    "simulate",
    "strategy_target",
]
