"""Monte Carlo of a backtest: resample its closed trades or its per-period returns.

- :func:`trade_monte_carlo` asks "what if the same trades had come in another order, or
  another draw of trades like them?". The closed trades' net P&L (currency, after costs)
  is applied one after another to the starting equity: ``E_0 = init_cash``,
  ``E_k = E_{k-1} + pnl_k``. ``"shuffle"`` permutes the trades (the final equity is
  unchanged, only the path and its drawdown differ); ``"bootstrap"`` draws the same
  number of trades with replacement.
- :func:`returns_monte_carlo` compounds per-period simple returns from the starting
  equity, ``E_t = E_{t-1} (1 + r_t)``, resampled by a circular block bootstrap:
  ``block_size=1`` is the i.i.d. bootstrap; longer blocks keep short-range
  autocorrelation and volatility clusters. ``block="fixed"`` uses blocks of exactly
  ``block_size`` periods starting at uniform random positions and wrapping from the last
  period to the first; ``block="stationary"`` (Politis and Romano) uses blocks of
  geometric length with mean ``block_size``. With ``block="fixed"`` and
  ``block_size == len(returns)`` every path is a rotation of the original sequence: its
  final equity is the original's, its drawdown in general is not.

Definitions (ARCHITECTURE.md, "Metrics"): max drawdown is ``min_t E_t / max(E_0..E_t) - 1``,
a NEGATIVE fraction, the running peak including the starting equity (as empyrical).
Trade paths are marked at trade exits only, so their drawdowns miss intra-trade losses
and are shallower than the bar-level drawdown of the backtest. There is no ruin floor: a
path may go below zero equity, its drawdown then below -1.

Reproducibility: simulation ``i`` draws from its own counter-based stream keyed by
``(seed, i)`` (SplitMix64), so results are identical whatever the number of numba
threads, and the first ``k`` simulations are the same whatever ``n_sims``. Memory is
O(n_sims + n_steps) unless paths are kept: ``keep_paths`` equity paths (the first
simulations; 100 by default) are stored for plots and checks. The numba kernels are in
:mod:`stratvector.backtest.montecarlo_nb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd

from stratvector.backtest.montecarlo_nb import returns_paths_nb, trade_paths_nb
from stratvector.errors import StratVectorError

TRADE_METHODS = ("bootstrap", "shuffle")
BLOCK_METHODS = ("fixed", "stationary")
DEFAULT_QUANTILES = (5, 25, 50, 75, 95)


class MonteCarloError(StratVectorError):
    """Invalid input or parameters for a Monte Carlo run."""


# ---------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """Distribution of final equity and max drawdown over ``n_sims`` simulated paths.

    ``final_equity`` (currency), ``total_return`` (``final_equity / init_cash - 1``) and
    ``max_drawdown`` (negative fraction) have one value per simulation. ``paths`` holds
    the equity of the first simulations (``n_paths x (n_steps + 1)``, column 0 is
    ``init_cash``), or None. ``observed_*`` are the same statistics of the original,
    unresampled sequence. ``n_steps`` is trades or periods per path.
    """

    final_equity: np.ndarray
    max_drawdown: np.ndarray
    total_return: np.ndarray
    init_cash: float
    method: str
    n_steps: int
    seed: int
    observed_final_equity: float
    observed_max_drawdown: float
    paths: np.ndarray | None = None

    @property
    def n_sims(self) -> int:
        return int(self.final_equity.shape[0])

    @property
    def probability_of_loss(self) -> float:
        """Fraction of simulations ending below the starting equity."""
        return float(np.mean(self.final_equity < self.init_cash))

    def percentiles(self, q: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        """Percentiles (0-100, linear interpolation as ``numpy.percentile``): rows
        ``final_equity``, ``total_return``, ``max_drawdown``; one column per ``q``.

        For ``max_drawdown`` the LOW percentiles are the bad tail (deeper drawdowns)."""
        qs = [float(x) for x in q]
        if not qs or any(not 0.0 <= x <= 100.0 for x in qs):
            raise MonteCarloError(f"percentiles need values in [0, 100], got {list(q)}")
        rows = {
            "final_equity": self.final_equity,
            "total_return": self.total_return,
            "max_drawdown": self.max_drawdown,
        }
        data = [np.percentile(v, qs) for v in rows.values()]
        return pd.DataFrame(data, index=list(rows), columns=list(q))

    def summary(self) -> dict[str, float]:
        """Headline statistics as plain floats (for reports, the journal, the dashboard)."""
        fe, tr, dd = self.final_equity, self.total_return, self.max_drawdown
        return {
            "n_sims": float(self.n_sims),
            "n_steps": float(self.n_steps),
            "mean_final_equity": float(fe.mean()),
            "median_final_equity": float(np.median(fe)),
            "mean_total_return": float(tr.mean()),
            "median_total_return": float(np.median(tr)),
            "total_return_p5": float(np.percentile(tr, 5)),
            "total_return_p95": float(np.percentile(tr, 95)),
            "median_max_drawdown": float(np.median(dd)),
            "max_drawdown_p5": float(np.percentile(dd, 5)),
            "worst_max_drawdown": float(dd.min()),
            "probability_of_loss": self.probability_of_loss,
            "observed_final_equity": self.observed_final_equity,
            "observed_max_drawdown": self.observed_max_drawdown,
            "prob_drawdown_worse_than_observed": float(np.mean(dd < self.observed_max_drawdown)),
        }


# ---------------------------------------------------------------------- API


def trade_monte_carlo(
    result_or_pnl: Any,
    n_sims: int = 1000,
    method: str = "bootstrap",
    seed: int = 0,
    init_cash: float | None = None,
    keep_paths: int = 100,
) -> MonteCarloResult:
    """Resample the closed trades' net P&L (see the module docstring for definitions).

    ``result_or_pnl`` is a :class:`~stratvector.backtest.BacktestResult` (its closed
    trades and ``settings.init_cash``), a trades DataFrame with a ``pnl`` column (rows
    with ``is_open`` true are dropped), or P&L values in currency, in trade order (then
    ``init_cash`` is required). ``method`` is ``"bootstrap"`` or ``"shuffle"``.
    """
    if method not in TRADE_METHODS:
        raise MonteCarloError(f"method must be one of {TRADE_METHODS}, got {method!r}")
    pnl, default_cash = _trade_pnl(result_or_pnl)
    cash = _init_cash(init_cash if init_cash is not None else default_cash, "pnl")
    pnl = _finite(pnl, "trade P&L", "the trades")
    n_sims, n_keep, key = _sim_params(n_sims, keep_paths, seed)
    final, mdd, paths = trade_paths_nb(pnl, n_sims, method == "shuffle", key, cash, n_keep)
    observed = cash + np.concatenate(([0.0], np.cumsum(pnl)))
    return _result(final, mdd, paths, cash, method, len(pnl), seed, observed)


def returns_monte_carlo(
    result_or_returns: Any,
    n_sims: int = 1000,
    block_size: int = 1,
    horizon: int | None = None,
    seed: int = 0,
    block: str = "fixed",
    init_cash: float | None = None,
    keep_paths: int = 100,
) -> MonteCarloResult:
    """Block-bootstrap per-period simple returns into ``horizon``-period equity paths.

    ``result_or_returns`` is a :class:`~stratvector.backtest.BacktestResult` (its
    ``returns`` and ``settings.init_cash``) or returns as fractions (an array or Series
    without NaN; ``init_cash`` then defaults to 1, so equity is a growth factor).
    ``horizon`` defaults to the number of returns; ``block`` is ``"fixed"`` or
    ``"stationary"`` (see the module docstring).
    """
    from stratvector.backtest.result import BacktestResult

    if block not in BLOCK_METHODS:
        raise MonteCarloError(f"block must be one of {BLOCK_METHODS}, got {block!r}")
    if isinstance(result_or_returns, BacktestResult):
        values = result_or_returns.returns.to_numpy()
        default_cash: float | None = result_or_returns.settings.init_cash
    else:
        values, default_cash = result_or_returns, 1.0
    cash = _init_cash(init_cash if init_cash is not None else default_cash, "returns")
    rets = _finite(values, "returns", "the returns (e.g. returns.dropna())")
    n = len(rets)
    block_size = _positive_int(block_size, "block_size")
    if block_size > n:
        raise MonteCarloError(f"block_size must be at most the number of returns ({n})")
    horizon = n if horizon is None else _positive_int(horizon, "horizon")
    n_sims, n_keep, key = _sim_params(n_sims, keep_paths, seed)
    final, mdd, paths = returns_paths_nb(
        rets, n_sims, horizon, block_size, block == "stationary", key, cash, n_keep
    )
    observed = cash * np.concatenate(([1.0], np.cumprod(1.0 + rets)))
    method = f"{block}_block(size={block_size})"
    return _result(final, mdd, paths, cash, method, horizon, seed, observed)


# ---------------------------------------------------------------------- helpers


def _trade_pnl(source: Any) -> tuple[Any, float | None]:
    from stratvector.backtest.result import BacktestResult

    if isinstance(source, BacktestResult):
        return _closed_pnl(source.trades), source.settings.init_cash
    if isinstance(source, pd.DataFrame):
        if "pnl" not in source.columns:
            raise MonteCarloError("a trades DataFrame needs a 'pnl' column")
        return _closed_pnl(source), None
    return source, None


def _closed_pnl(trades: pd.DataFrame) -> np.ndarray:
    if "is_open" in trades.columns:
        trades = trades.loc[~trades["is_open"].astype(bool)]
    return trades["pnl"].to_numpy(dtype=np.float64)


def _finite(values: Any, what: str, fix: str) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)  # a writable, contiguous copy
    except (TypeError, ValueError) as exc:
        raise MonteCarloError(f"{what} must be numbers: {exc}") from exc
    if arr.ndim != 1:
        raise MonteCarloError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise MonteCarloError(f"no {what} to resample (empty input): check {fix}")
    if arr.size >= 2**32:
        raise MonteCarloError(f"too many {what} ({arr.size}); the kernels take fewer than 2**32")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise MonteCarloError(
            f"{what} contain {bad.size} NaN or infinite values (first at position "
            f"{bad[0]}); clean {fix} first"
        )
    return arr


def _init_cash(value: float | None, what: str) -> float:
    if value is None:
        raise MonteCarloError(f"init_cash is required with raw {what} (the starting equity)")
    cash = float(value)
    if not np.isfinite(cash) or cash <= 0:
        raise MonteCarloError(f"init_cash must be a positive number, got {value!r}")
    return cash


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise MonteCarloError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _sim_params(n_sims: Any, keep_paths: Any, seed: Any) -> tuple[int, int, np.uint64]:
    n_sims = _positive_int(n_sims, "n_sims")
    if isinstance(keep_paths, bool) or not isinstance(keep_paths, Integral) or keep_paths < 0:
        raise MonteCarloError(f"keep_paths must be an integer >= 0, got {keep_paths!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise MonteCarloError(f"seed must be a non-negative integer, got {seed!r}")
    key = np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0]
    return n_sims, min(int(keep_paths), n_sims), np.uint64(key)


def _result(
    final: np.ndarray,
    mdd: np.ndarray,
    paths: np.ndarray,
    cash: float,
    method: str,
    n_steps: int,
    seed: int,
    observed: np.ndarray,
) -> MonteCarloResult:
    total = final / cash - 1.0
    for arr in (final, mdd, total, paths):
        arr.setflags(write=False)
    peak = np.maximum.accumulate(observed)
    return MonteCarloResult(
        final_equity=final,
        max_drawdown=mdd,
        total_return=total,
        init_cash=cash,
        method=method,
        n_steps=n_steps,
        seed=int(seed),
        observed_final_equity=float(observed[-1]),
        observed_max_drawdown=float(min((observed / peak).min() - 1.0, 0.0)),
        paths=paths if paths.shape[0] else None,
    )
