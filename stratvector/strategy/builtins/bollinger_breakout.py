"""Bollinger breakout: follow a close outside the bands until it returns to the middle."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.indicators import bollinger_nb
from stratvector.strategy.params import Param, Params
from stratvector.strategy.signals import latch_nb


@njit(cache=True)
def bollinger_breakout_nb(
    close: np.ndarray, window: int, num_std: float, allow_short: bool
) -> np.ndarray:
    """Long from close > upper band until close < middle; with ``allow_short`` short from
    close < lower band until close > middle. NaN before ``window - 1``."""
    mid, upper, lower = bollinger_nb(close, window, num_std)
    valid = np.isfinite(mid) & np.isfinite(upper)
    short_entry = (close < lower) & allow_short
    return latch_nb(close > upper, close < mid, short_entry, close > mid, valid)


class BollingerBreakout(Strategy):
    """Breakout on Bollinger bands of the close (SMA +/- ``num_std`` population std).

    Long (+1) when the close ends above the upper band, held until it closes below the
    middle band. With ``allow_short``, short (-1) on a close below the lower band, held
    until a close above the middle. The bands include bar t's close. Warmup is
    ``window`` bars.
    """

    name = "bollinger_breakout"
    params = Params(
        window=Param(20, 5, 250, "band window, bars", step=5),
        num_std=Param(2.0, 0.5, 4.0, "band half-width in standard deviations", step=0.25),
        allow_short=Param(False, doc="also trade breakouts below the lower band"),
    )

    @property
    def warmup(self) -> int:
        return int(self.p.window)

    def target(self, bars: pd.DataFrame) -> pd.Series:
        close = bars["close"].to_numpy(dtype=np.float64)
        p = self.p
        values = bollinger_breakout_nb(close, p.window, p.num_std, p.allow_short)
        return as_target_series(values, bars)
