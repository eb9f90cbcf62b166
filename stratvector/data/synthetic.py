"""A seeded synthetic OHLCV generator for tests and benchmarks.

Prices follow a geometric random walk; each bar's open gaps from the previous close,
and high/low bracket open and close, so every generated frame passes validation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_bars(
    n: int,
    seed: int = 0,
    freq: str = "1D",
    start: str = "2015-01-02",
    price: float = 100.0,
    drift: float = 0.0002,
    volatility: float = 0.015,
    gap_volatility: float = 0.003,
    volume: float = 1_000_000.0,
) -> pd.DataFrame:
    """Return ``n`` valid bars from a seeded random walk.

    ``freq`` is a pandas frequency (``"1D"``, ``"1min"``, ``"B"``); ``volatility`` is the
    per-bar standard deviation of log close-to-close returns.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    rng = np.random.default_rng(seed)
    gaps = rng.normal(0.0, gap_volatility, n)
    intraday = rng.normal(drift, volatility, n)
    log_close = np.log(price) + np.cumsum(gaps + intraday)
    close = np.exp(log_close)
    open_ = np.exp(log_close - intraday)
    spread_hi = np.abs(rng.normal(0.0, volatility / 2, n))
    spread_lo = np.abs(rng.normal(0.0, volatility / 2, n))
    high = np.maximum(open_, close) * np.exp(spread_hi)
    low = np.minimum(open_, close) * np.exp(-spread_lo)
    vol = np.floor(volume * rng.lognormal(0.0, 0.5, n))
    index = pd.date_range(start=start, periods=n, freq=freq, tz="UTC", name="time")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": vol}, index=index
    )
