"""Bar files with real trading sessions, for the forming-bar tests (ibsim and gateway)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratvector.data import synthetic_bars


def session_starts(days: int, minutes: int, start: str = "2024-01-02") -> pd.DatetimeIndex:
    """Bar starts of ``days`` business days of 09:30-16:00 New York (January: UTC-5)."""
    out: list[pd.Timestamp] = []
    for day in pd.bdate_range(start, periods=days, tz="UTC"):
        first = day + pd.Timedelta(hours=14, minutes=30)
        out += list(pd.date_range(first, day + pd.Timedelta(hours=21), freq=f"{minutes}min"))[:-1]
    return pd.DatetimeIndex(out, name="time")


def write_session_bars(
    folder: Path, symbols: dict[str, int], days: int = 3, minutes: int = 15
) -> Path:
    """Seeded synthetic intraday bars in regular US sessions, one CSV per symbol
    (``SYM_<minutes>min.csv``)."""
    folder.mkdir(parents=True, exist_ok=True)
    index = session_starts(days, minutes)
    for sym, seed in symbols.items():
        df = synthetic_bars(len(index), seed=seed, freq=f"{minutes}min", volatility=0.004)
        df.index = index
        df.round(4).to_csv(folder / f"{sym}_{minutes}min.csv")
    return folder
