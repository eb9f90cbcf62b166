"""Resampling bars to a coarser bar size, keeping bar-start labels."""

from __future__ import annotations

import re

import pandas as pd

from stratvector.errors import DataError

_BAR_SIZE = re.compile(r"^\s*(\d+)\s*(s|sec|secs|m|min|mins|h|hour|hours|d|day|days|w|week)\s*$")
_UNIT = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "m": "min",
    "min": "min",
    "mins": "min",
    "h": "h",
    "hour": "h",
    "hours": "h",
    "d": "D",
    "day": "D",
    "days": "D",
    "w": "W",
    "week": "W",
}
_SECONDS = {"s": 1, "min": 60, "h": 3600, "D": 86400, "W": 7 * 86400}


def parse_bar_size(bar_size: str) -> pd.Timedelta:
    """Parse ``"1d"``, ``"5min"``, ``"1 hour"``, ``"5 secs"`` into a Timedelta."""
    m = _BAR_SIZE.match(bar_size.lower())
    if not m:
        raise DataError(f"bar size {bar_size!r} not understood; use e.g. 1d, 1h, 5min, 30s, 1w")
    n, unit = int(m.group(1)), _UNIT[m.group(2)]
    return pd.Timedelta(seconds=n * _SECONDS[unit])


def periods_per_year(bar_size: str, trading_days: int = 252, hours_per_day: float = 6.5) -> float:
    """Bars per year for annualization: 252 for daily; intraday uses a 6.5-hour session."""
    secs = parse_bar_size(bar_size).total_seconds()
    day = 86400.0
    if secs >= day:
        return trading_days * day / secs
    return trading_days * hours_per_day * 3600.0 / secs


def resample_bars(bars: pd.DataFrame, bar_size: str) -> pd.DataFrame:
    """Aggregate bars into ``bar_size`` buckets: first open, max high, min low, last close,
    summed volume; buckets with no bars are dropped. Labels are bucket start times."""
    rule = parse_bar_size(bar_size)
    agg = bars.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return agg.dropna(subset=["open", "close"])
