"""RSI mean reversion: buy oversold, sell when the RSI recovers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.indicators import rsi_nb
from stratvector.strategy.params import Param, Params
from stratvector.strategy.signals import latch_nb


@njit(cache=True)
def rsi_reversion_nb(
    close: np.ndarray, period: int, lower: float, upper: float, exit_level: float, allow_short: bool
) -> np.ndarray:
    """Long from RSI < ``lower`` until RSI > ``exit_level``; with ``allow_short`` short from
    RSI > ``upper`` until RSI < ``exit_level``. NaN before ``period``."""
    r = rsi_nb(close, period)
    valid = np.isfinite(r)
    short_entry = (r > upper) & allow_short
    return latch_nb(r < lower, r > exit_level, short_entry, r < exit_level, valid)


class RsiReversion(Strategy):
    """Mean reversion on Wilder's RSI of the close.

    Long (+1) when the RSI drops below ``lower`` (oversold), held until it rises above
    ``exit_level``. With ``allow_short``, short (-1) when the RSI rises above ``upper``
    (overbought), held until it falls below ``exit_level``. Warmup is ``period + 1``
    bars (the RSI needs ``period`` price changes).
    """

    name = "rsi_reversion"
    params = Params(
        period=Param(14, 2, 100, "RSI period, bars", step=2),
        lower=Param(30.0, 5.0, 50.0, "enter long when the RSI is below", step=5.0),
        upper=Param(70.0, 50.0, 95.0, "enter short (allow_short) when the RSI is above", step=5.0),
        exit_level=Param(50.0, 10.0, 90.0, "exit when the RSI crosses back over", step=5.0),
        allow_short=Param(False, doc="also trade the overbought side"),
        constraints=("lower < exit_level", "exit_level < upper"),
    )

    @property
    def warmup(self) -> int:
        return int(self.p.period) + 1

    def target(self, bars: pd.DataFrame) -> pd.Series:
        close = bars["close"].to_numpy(dtype=np.float64)
        p = self.p
        values = rsi_reversion_nb(close, p.period, p.lower, p.upper, p.exit_level, p.allow_short)
        return as_target_series(values, bars)
