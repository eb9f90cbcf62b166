"""Time-series momentum with hysteresis on the rolling return."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.indicators import rolling_return_nb
from stratvector.strategy.params import Param, Params
from stratvector.strategy.signals import latch_nb


@njit(cache=True)
def momentum_nb(
    close: np.ndarray, lookback: int, entry: float, exit_: float, allow_short: bool
) -> np.ndarray:
    """Position from the ``lookback``-bar return ``r``: long when ``r > entry``, back to
    flat when ``r < exit_``; with ``allow_short`` short when ``r < -entry`` and back to
    flat when ``r > -exit_``. Otherwise the previous state holds. NaN before ``lookback``."""
    r = rolling_return_nb(close, lookback)
    valid = np.isfinite(r)
    short_entry = (r < -entry) & allow_short
    return latch_nb(r > entry, r < exit_, short_entry, r > -exit_, valid)


class Momentum(Strategy):
    """Go long when the ``lookback_period``-bar return rises above ``entry_threshold``
    and stay long until it falls below ``exit_threshold`` (hysteresis: between the two
    thresholds the previous state holds). With ``allow_short`` the rule is mirrored:
    short below ``-entry_threshold``, cover above ``-exit_threshold``.

    Thresholds are simple returns (0.02 = +2 % over the lookback). The conditions are
    levels, not crossings: a return already above the entry threshold on the first
    valid bar enters. Warmup is ``lookback_period + 1`` bars (the return needs the close
    ``lookback_period`` bars back).
    """

    name = "momentum"
    params = Params(
        lookback_period=Param(14, 1, 252, "bars over which the return is measured", step=1),
        entry_threshold=Param(0.02, 0.0, 0.5, "enter long when the return is above", step=0.005),
        exit_threshold=Param(-0.01, -0.5, 0.5, "exit a long when the return is below", step=0.005),
        allow_short=Param(False, doc="mirror the rule on the short side"),
        constraints=("exit_threshold <= entry_threshold",),
    )

    @property
    def warmup(self) -> int:
        return int(self.p.lookback_period) + 1

    def target(self, bars: pd.DataFrame) -> pd.Series:
        close = bars["close"].to_numpy(dtype=np.float64)
        p = self.p
        values = momentum_nb(
            close, p.lookback_period, p.entry_threshold, p.exit_threshold, p.allow_short
        )
        return as_target_series(values, bars)
