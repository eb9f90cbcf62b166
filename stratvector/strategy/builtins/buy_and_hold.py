"""Buy and hold: fully long from the first bar (the usual benchmark)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.params import Params


class BuyAndHold(Strategy):
    """Target 1.0 on every bar, from the first (warmup 1). Traded at bar 1's open."""

    name = "buy_and_hold"
    params = Params()

    @property
    def warmup(self) -> int:
        return 1

    def target(self, bars: pd.DataFrame) -> pd.Series:
        return as_target_series(np.ones(len(bars)), bars)
