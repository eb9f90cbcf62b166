"""SMA crossover: long while the fast moving average is above the slow one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numba import njit, prange

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.indicators import sma_nb
from stratvector.strategy.params import Param, Params


@njit(cache=True)
def sma_crossover_nb(close: np.ndarray, fast: int, slow: int, allow_short: bool) -> np.ndarray:
    """+1 where SMA(fast) > SMA(slow); -1 where below if ``allow_short``, else 0; NaN
    until both averages exist (first value at ``slow - 1``)."""
    return cross_targets_nb(sma_nb(close, fast), sma_nb(close, slow), allow_short)


@njit(cache=True)
def cross_targets_nb(f: np.ndarray, s: np.ndarray, allow_short: bool) -> np.ndarray:
    """The crossover rule on two precomputed averages (shared by target and target_batch)."""
    out = np.full(f.shape[0], np.nan)
    for i in range(f.shape[0]):
        if np.isnan(f[i]) or np.isnan(s[i]):
            continue
        if f[i] > s[i]:
            out[i] = 1.0
        elif allow_short and f[i] < s[i]:
            out[i] = -1.0
        else:
            out[i] = 0.0
    return out


@njit(cache=True, parallel=True)
def sma_matrix_nb(close: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Row i: ``sma_nb(close, windows[i])``, the rows computed in parallel."""
    out = np.empty((windows.shape[0], close.shape[0]))
    for i in prange(windows.shape[0]):
        out[i] = sma_nb(close, windows[i])
    return out


@njit(cache=True, parallel=True)
def cross_batch_nb(
    smas: np.ndarray, fast: np.ndarray, slow: np.ndarray, allow_short: np.ndarray
) -> np.ndarray:
    """Row i: the crossover rule on ``smas[fast[i]]`` and ``smas[slow[i]]``."""
    out = np.empty((fast.shape[0], smas.shape[1]))
    for i in prange(fast.shape[0]):
        out[i] = cross_targets_nb(smas[fast[i]], smas[slow[i]], allow_short[i])
    return out


class SmaCrossover(Strategy):
    """Long (+1) while the fast SMA of the close is above the slow SMA, else flat (0).

    With ``allow_short`` the position is short (-1) while the fast SMA is below the slow
    one; equal averages mean flat. Both averages include bar t's close, so the target
    at t is known when bar t closes. Warmup is ``slow`` bars.
    """

    name = "sma_crossover"
    params = Params(
        fast=Param(10, 2, 100, "fast SMA window, bars", step=2),
        slow=Param(50, 10, 400, "slow SMA window, bars", step=10),
        allow_short=Param(False, doc="go short (-1) while fast < slow instead of flat"),
        constraints=("fast < slow",),
    )

    @property
    def warmup(self) -> int:
        return int(self.p.slow)

    @classmethod
    def target_batch(
        cls, bars: pd.DataFrame, param_sets: Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """One SMA per distinct window, shared by every set that uses it."""
        close = bars["close"].to_numpy(dtype=np.float64)
        defaults = cls.params.defaults()
        resolved = [{**defaults, **p} for p in param_sets]
        windows = sorted({p["fast"] for p in resolved} | {p["slow"] for p in resolved})
        row = {w: i for i, w in enumerate(windows)}
        smas = sma_matrix_nb(close, np.array(windows, dtype=np.int64))
        fast = np.array([row[p["fast"]] for p in resolved], dtype=np.int64)
        slow = np.array([row[p["slow"]] for p in resolved], dtype=np.int64)
        short = np.array([bool(p["allow_short"]) for p in resolved])
        return cross_batch_nb(smas, fast, slow, short)

    def target(self, bars: pd.DataFrame) -> pd.Series:
        close = bars["close"].to_numpy(dtype=np.float64)
        return as_target_series(
            sma_crossover_nb(close, self.p.fast, self.p.slow, self.p.allow_short), bars
        )
