"""StratVector: one strategy interface for a numba backtester and an IB execution daemon."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "run_backtest"]


def run_backtest(*args, **kwargs):
    """Re-export of :func:`stratvector.backtest.run` (imported lazily to keep start-up fast)."""
    from stratvector.backtest import run

    return run(*args, **kwargs)
