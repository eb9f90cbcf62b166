"""SMA crossover: long while the fast moving average is above the slow one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.indicators import sma_nb
from stratvector.strategy.params import Param, Params


@njit(cache=True)
def sma_crossover_nb(close: np.ndarray, fast: int, slow: int, allow_short: bool) -> np.ndarray:
    """+1 where SMA(fast) > SMA(slow); -1 where below if ``allow_short``, else 0; NaN
    until both averages exist (first value at ``slow - 1``)."""
    f = sma_nb(close, fast)
    s = sma_nb(close, slow)
    out = np.full(close.shape[0], np.nan)
    for i in range(close.shape[0]):
        if np.isnan(f[i]) or np.isnan(s[i]):
            continue
        if f[i] > s[i]:
            out[i] = 1.0
        elif allow_short and f[i] < s[i]:
            out[i] = -1.0
        else:
            out[i] = 0.0
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

    def target(self, bars: pd.DataFrame) -> pd.Series:
        close = bars["close"].to_numpy(dtype=np.float64)
        return as_target_series(
            sma_crossover_nb(close, self.p.fast, self.p.slow, self.p.allow_short), bars
        )
