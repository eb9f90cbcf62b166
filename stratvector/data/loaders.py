"""CSV and Parquet bar loaders that accept the common column spellings.

Every loader returns bars in the schema of :mod:`stratvector.data.schema` or raises a
:class:`~stratvector.errors.DataError` naming the file and the first bad line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from stratvector.data.schema import BAR_COLUMNS, validate_bars
from stratvector.errors import DataError

_TIME_NAMES = ("time", "date", "datetime", "timestamp", "ts", "index")
_ALIASES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last", "price"),
    "volume": ("volume", "vol", "v"),
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"),
}
SUFFIXES = (".csv", ".parquet", ".pq")


def _norm(name: object) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def _normalize_frame(raw: pd.DataFrame, source: str, adjust: str) -> pd.DataFrame:
    cols = {_norm(c): c for c in raw.columns}
    time_col = next((cols[n] for n in _TIME_NAMES if n in cols), None)
    if time_col is None:
        raise DataError(
            f"{source}: no time column; expected one of {', '.join(_TIME_NAMES)} "
            f"(found {', '.join(map(str, raw.columns))})"
        )
    found: dict[str, str] = {}
    for std, names in _ALIASES.items():
        for n in names:
            if n in cols:
                found[std] = cols[n]
                break
    value_cols = [c for c in raw.columns if c != time_col]
    if "close" not in found and len(value_cols) == 1:
        # A close-only series (e.g. an index level): the bar is a single price.
        found = {"close": value_cols[0]}
    if "close" not in found:
        raise DataError(
            f"{source}: no close column (found {', '.join(map(str, raw.columns))}); "
            "expected Close/close or a single value column"
        )
    close = pd.to_numeric(raw[found["close"]], errors="coerce")
    frame = pd.DataFrame(index=range(len(raw)))
    for col in ("open", "high", "low"):
        frame[col] = pd.to_numeric(raw[found[col]], errors="coerce") if col in found else close
    frame["close"] = close
    frame["volume"] = (
        pd.to_numeric(raw[found["volume"]], errors="coerce") if "volume" in found else 0.0
    )
    if adjust == "total":
        if "adj_close" not in found:
            raise DataError(f"{source}: adjust='total' needs an Adj Close column")
        ratio = pd.to_numeric(raw[found["adj_close"]], errors="coerce") / close
        for col in ("open", "high", "low", "close"):
            frame[col] = frame[col] * ratio
    elif adjust != "split":
        raise DataError(f"{source}: adjust must be 'split' or 'total', not {adjust!r}")
    times = pd.to_datetime(raw[time_col], utc=True, errors="coerce", format="mixed")
    frame.index = pd.DatetimeIndex(times)
    return frame


def load_csv(path: str | Path, adjust: str = "split") -> pd.DataFrame:
    """Load bars from a CSV file (one header line) and validate them."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        raw = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{p}: cannot parse CSV: {exc}") from exc
    return validate_bars(_normalize_frame(raw, str(p), adjust), str(p), line_offset=2)


def load_parquet(path: str | Path, adjust: str = "split") -> pd.DataFrame:
    """Load bars from a Parquet file (time as index or column) and validate them."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        raw = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{p}: cannot read Parquet: {exc}") from exc
    if isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names="time")
    return validate_bars(_normalize_frame(raw, str(p), adjust), str(p))


def load_bars(path: str | Path, adjust: str = "split") -> pd.DataFrame:
    """Load a bar file by its suffix (``.csv``, ``.parquet``/``.pq``)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return load_csv(p, adjust)
    if suffix in (".parquet", ".pq"):
        return load_parquet(p, adjust)
    raise DataError(f"{p}: unsupported file type {suffix!r}; use .csv or .parquet")


def find_symbol_file(symbol: str, paths: Sequence[str | Path], bar_size: str = "1d") -> Path:
    """Find ``SYMBOL_<bar_size>.csv|parquet`` or ``SYMBOL.csv|parquet`` in ``paths``.

    A path may be a directory to search or a file whose stem names the symbol.
    """
    stems = (f"{symbol}_{bar_size}", symbol)
    for base in map(Path, paths):
        if base.is_file():
            if base.stem in stems or base.stem.upper().split("_")[0] == symbol.upper():
                return base
            continue
        for stem in stems:
            for suffix in SUFFIXES:
                cand = base / f"{stem}{suffix}"
                if cand.is_file():
                    return cand
    searched = ", ".join(str(p) for p in paths) or "(no paths)"
    raise DataError(f"no data for symbol {symbol!r} at bar size {bar_size}: searched {searched}")


def symbols_in(directory: str | Path) -> dict[str, Path]:
    """Map symbol -> file for every bar file in ``directory`` (``AAPL_1d.csv`` -> ``AAPL``)."""
    out: dict[str, Path] = {}
    for p in sorted(Path(directory).iterdir()):
        if p.suffix.lower() in SUFFIXES:
            out[p.stem.split("_")[0]] = p
    return out


def load_symbols(
    symbols: Iterable[str],
    paths: Sequence[str | Path],
    bar_size: str = "1d",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    adjust: str = "split",
) -> dict[str, pd.DataFrame]:
    """Load and slice bars for each symbol; ``end`` is exclusive (bars starting before it)."""
    out: dict[str, pd.DataFrame] = {}
    for sym in symbols:
        path = find_symbol_file(sym, paths, bar_size)
        bars = slice_bars(load_bars(path, adjust), start, end)
        if bars.empty:
            raise DataError(f"{path}: no bars for {sym} between {start} and {end}")
        out[sym] = bars
    return out


def slice_bars(
    bars: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Bars with ``start <= time < end`` (naive timestamps are taken as UTC)."""
    if start is not None:
        bars = bars[bars.index >= _utc(start)]
    if end is not None:
        bars = bars[bars.index < _utc(end)]
    return bars


def _utc(ts: str | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")


__all__ = [
    "BAR_COLUMNS",
    "find_symbol_file",
    "load_bars",
    "load_csv",
    "load_parquet",
    "load_symbols",
    "slice_bars",
    "symbols_in",
]
