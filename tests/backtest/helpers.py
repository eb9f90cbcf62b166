"""Test strategies for the backtester."""

from __future__ import annotations

import pandas as pd

from stratvector.strategy import Strategy


class FixedTargets(Strategy):
    """Plays back given target Series per symbol.

    ``tables`` maps symbol -> (bars, targets); the bars a call receives are matched by
    their close prices, since the engine hands the strategy validated copies.
    """

    name = "fixed_targets"

    def __init__(self, tables: dict[str, tuple[pd.DataFrame, pd.Series]], warmup: int = 1) -> None:
        super().__init__()
        self._tables = tables
        self._warmup = warmup

    @property
    def warmup(self) -> int:
        return self._warmup

    def target(self, bars: pd.DataFrame) -> pd.Series:
        for frame, series in self._tables.values():
            if (
                frame.index.equals(bars.index)
                and (frame["close"].to_numpy() == bars["close"].to_numpy()).all()
            ):
                return series.rename("target").astype(float)
        raise KeyError("no targets for these bars")
