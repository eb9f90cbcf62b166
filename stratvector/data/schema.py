"""The bar schema every part of StratVector shares, and its validation.

Bars are a DataFrame with a tz-aware UTC ``DatetimeIndex`` named ``time`` holding the
bar *start* time (as IB labels bars), and float64 columns ``open high low close volume``.
The index is strictly increasing with no duplicates. :func:`validate_bars` enforces this
and names the first offending row, so a bad bar never reaches a strategy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratvector.errors import DataError

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


def index_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """The index as int64 nanoseconds since the epoch (UTC), whatever its resolution.

    Cheap: no Timestamp objects are created (``to_numpy()`` on a tz-aware index would).
    """
    return index.as_unit("ns").asi8


def _row_label(source: str, pos: int, line_offset: int | None) -> str:
    if line_offset is None:
        return f"{source}: row {pos}"
    return f"{source}:{pos + line_offset}"


def validate_bars(
    bars: pd.DataFrame, source: str = "<bars>", line_offset: int | None = None
) -> pd.DataFrame:
    """Check ``bars`` against the schema and return it (float64, UTC index) or raise.

    A frame already in the schema (columns in order, float64, UTC index named ``time``)
    is returned as is, without a copy; any other is converted into a new frame.

    ``line_offset`` maps a 0-based row position to a file line number (2 for a CSV with
    one header line) so errors read ``AAPL.csv:1234: high 10.0 < close 10.5``.
    """
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"{source}: expected a DataFrame of bars, got {type(bars).__name__}")
    if len(bars) == 0:
        raise DataError(f"{source}: no bars (empty data)")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; bars need {' '.join(BAR_COLUMNS)}"
        )
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise DataError(f"{source}: the index must be a DatetimeIndex of bar start times")
    idx = bars.index
    conforming = (
        list(bars.columns) == list(BAR_COLUMNS)
        and all(dt == np.float64 for dt in bars.dtypes)
        and str(idx.tz) == "UTC"
        and idx.name == "time"
    )
    if conforming:
        # already in the schema: check it as is and hand back the same frame (no copy)
        out = bars
    else:
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        out = pd.DataFrame(
            {
                c: pd.to_numeric(bars[c], errors="coerce").to_numpy(
                    dtype="float64", na_value=np.nan
                )
                for c in BAR_COLUMNS
            },
            index=idx,
        )
        out.index.name = "time"

    def fail(pos: int, what: str) -> DataError:
        return DataError(f"{_row_label(source, pos, line_offset)}: {what}")

    t = idx.asi8
    bad_time = np.zeros(len(t), dtype=bool)
    dup_time = np.zeros(len(t), dtype=bool)
    if len(t) > 1:
        d = np.diff(t)
        bad_time[1:] = d < 0
        dup_time[1:] = d == 0
    values = out.to_numpy()
    o, h, lo, c, v = (values[:, k] for k in range(len(BAR_COLUMNS)))
    checks: list[tuple[np.ndarray, str]] = [
        (np.asarray(idx.isna()), "missing or unparseable timestamp"),
        (dup_time, "duplicate timestamp"),
        (bad_time & ~np.asarray(idx.isna()), "timestamp not after the previous row"),
        (np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c), "NaN or non-numeric price"),
        (np.isnan(v), "NaN or non-numeric volume"),
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "price must be > 0"),
        (v < 0, "volume must be >= 0"),
        (h < np.maximum(o, c), "high below max(open, close)"),
        (lo > np.minimum(o, c), "low above min(open, close)"),
    ]
    first_bad = len(out)
    first_msg = ""
    for mask, msg in checks:
        hits = np.flatnonzero(mask)
        if hits.size and hits[0] < first_bad:
            first_bad, first_msg = int(hits[0]), msg
    if first_msg:
        row = out.iloc[first_bad]
        vals = " ".join(f"{k}={float(row[k])!r}" for k in BAR_COLUMNS)
        raise fail(first_bad, f"{first_msg} at {idx[first_bad]} ({vals})")
    return out
