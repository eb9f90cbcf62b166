"""A Parquet cache of bars per (symbol, bar size) that remembers which ranges it holds.

Layout: ``root/<bar size>/<symbol>.parquet``. The bar size is normalized (``"1 day"`` and
``"1d"`` share ``root/1d/``) and the symbol is percent-encoded where it is not a safe file
name (``"BRK B"`` -> ``BRK%20B.parquet``). Each file holds bars in the schema of
:mod:`stratvector.data.schema` plus a *coverage record* in its Parquet metadata: the time
ranges for which the file holds every bar there is. A range with no bars inside a covered
range is known to be empty (a holiday), not missing, so it is never fetched again.

Times
-----
The public methods take timestamps (naive ones are UTC) and treat both ends as
inclusive, on bar *start* times: ``get(s, e)`` is every bar starting in ``[s, e]``.
:class:`CachedBars` works on int64 nanoseconds with half-open ranges ``[a, b)``, which is
what the history scheduler computes with.

Failure model
-------------
- The constructor does no I/O; the folder is created by the first :meth:`BarCache.put`.
- Writes are atomic (temporary file in the same folder, then ``os.replace``): a crash
  leaves the old file or the new one, never half of one.
- A file that cannot be read or fails validation is logged and treated as a miss; the
  next :meth:`BarCache.put` replaces it. Reading never raises for a bad file.
- Two processes writing the same file do not corrupt it, but one's update may be lost
  (last writer wins); it is then fetched again later.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratvector.data.resample import parse_bar_size
from stratvector.data.schema import BAR_COLUMNS, index_ns, validate_bars
from stratvector.errors import DataError

log = logging.getLogger("stratvector.data.cache")

#: The resolution of bar timestamps in cached and fetched frames: the one pandas gives
#: parsed CSV/Parquet times, so bars from the cache compare equal to bars from the loaders.
BAR_TIME_UNIT: str = pd.to_datetime(["2000-01-01"], utc=True).unit

_META_KEY = b"stratvector.cache"
_FORMAT_VERSION = 1

TimeLike = datetime | pd.Timestamp | str


def canonical_bar_size(bar_size: str) -> str:
    """The cache's folder name for a bar size: ``"1 day"`` -> ``"1d"``, ``"5 mins"`` -> ``"5min"``."""
    secs = int(parse_bar_size(bar_size).total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def to_ns(ts: TimeLike) -> int:
    """A timestamp as int64 nanoseconds since the epoch; naive values are taken as UTC."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")
    return int(t.as_unit("ns").value)


def from_ns(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def empty_bars() -> pd.DataFrame:
    """A frame with no bars, shaped like the schema (validation rejects empty frames)."""
    index = pd.DatetimeIndex([], dtype=f"datetime64[{BAR_TIME_UNIT}, UTC]", name="time")
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in BAR_COLUMNS}, index=index)


def normalize_bars(bars: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate ``bars`` and give their index :data:`BAR_TIME_UNIT`; empty -> :func:`empty_bars`."""
    if isinstance(bars, pd.DataFrame) and len(bars) == 0:
        return empty_bars()
    out = validate_bars(bars, source)
    if out.index.unit != BAR_TIME_UNIT:
        out = out.copy(deep=False)
        out.index = out.index.as_unit(BAR_TIME_UNIT)
    return out


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping half-open ranges; touching ranges are joined."""
    out: list[tuple[int, int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def missing_ranges(covered: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    """The parts of ``[a, b)`` not inside ``covered`` (sorted, merged ranges)."""
    gaps: list[tuple[int, int]] = []
    pos = a
    for ca, cb in covered:
        if cb <= pos:
            continue
        if ca >= b:
            break
        if ca > pos:
            gaps.append((pos, min(ca, b)))
        pos = max(pos, cb)
        if pos >= b:
            break
    if pos < b:
        gaps.append((pos, b))
    return gaps


def replace_range(old: pd.DataFrame, new: pd.DataFrame, a: int, b: int) -> pd.DataFrame:
    """``old`` with every bar in ``[a, b)`` replaced by ``new`` (whose bars all lie there).

    Both frames must already be normalized (:func:`normalize_bars`). New bars win: the
    range ``[a, b)`` is taken to be complete in ``new``.
    """
    t = index_ns(old.index)
    keep = old[(t < a) | (t >= b)]
    if keep.empty:
        return new
    if new.empty:
        return keep
    merged = pd.concat([keep, new]).sort_index(kind="stable")
    return validate_bars(merged, "<merged bars>")


@dataclass(frozen=True)
class CachedBars:
    """One cache file's content: bars and the half-open ns ranges known to be complete."""

    bars: pd.DataFrame
    covered: tuple[tuple[int, int], ...]

    def missing(self, a: int, b: int) -> list[tuple[int, int]]:
        """Half-open ns ranges inside ``[a, b)`` the cache does not cover."""
        return missing_ranges(list(self.covered), a, b)

    def covers(self, a: int, b: int) -> bool:
        return not self.missing(a, b)

    def slice(self, a: int, b: int) -> pd.DataFrame:
        """Bars starting in ``[a, b)`` (ns)."""
        t = index_ns(self.bars.index)
        lo, hi = np.searchsorted(t, a, side="left"), np.searchsorted(t, b, side="left")
        return self.bars.iloc[lo:hi]


class BarCache:
    """Parquet files of bars under ``root``, one per (symbol, bar size). See the module
    docstring for the layout, the coverage record and what happens on failure."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, symbol: str, bar_size: str) -> Path:
        """Where the bars of ``symbol`` at ``bar_size`` are kept."""
        if not symbol or not symbol.strip():
            raise DataError("bar cache: empty symbol")
        return self.root / canonical_bar_size(bar_size) / f"{quote(symbol, safe='')}.parquet"

    # --- reading -------------------------------------------------------------------------

    def read(self, symbol: str, bar_size: str) -> CachedBars | None:
        """The whole file, or ``None`` if there is none or it is unreadable (logged)."""
        p = self.path(symbol, bar_size)
        if not p.is_file():
            return None
        try:
            return _read_file(p)
        except Exception as exc:  # pyarrow, json and validation raise many unrelated types
            log.warning("bar cache: ignoring unreadable file %s (%s); it will be rewritten", p, exc)
            return None

    def get(
        self, symbol: str, bar_size: str, start: TimeLike, end: TimeLike
    ) -> pd.DataFrame | None:
        """Bars starting in ``[start, end]``, or ``None`` unless the cache covers all of it.

        A covered range without bars gives an empty frame, not ``None``.
        """
        a, b = _span(start, end)
        entry = self.read(symbol, bar_size)
        if entry is None or not entry.covers(a, b):
            return None
        return entry.slice(a, b)

    def coverage(self, symbol: str, bar_size: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The covered ranges as ``(first, last)`` inclusive timestamps."""
        entry = self.read(symbol, bar_size)
        if entry is None:
            return []
        return [(from_ns(a), from_ns(b - 1)) for a, b in entry.covered]

    def missing(
        self, symbol: str, bar_size: str, start: TimeLike, end: TimeLike
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The parts of ``[start, end]`` not covered, as inclusive ``(first, last)`` pairs."""
        a, b = _span(start, end)
        entry = self.read(symbol, bar_size)
        gaps = [(a, b)] if entry is None else entry.missing(a, b)
        return [(from_ns(x), from_ns(y - 1)) for x, y in gaps]

    # --- writing -------------------------------------------------------------------------

    def put(
        self,
        symbol: str,
        bar_size: str,
        bars: pd.DataFrame,
        covered_start: TimeLike,
        covered_end: TimeLike,
    ) -> CachedBars:
        """Store ``bars`` as the complete content of ``[covered_start, covered_end]``.

        Bars already cached in that range are replaced (new bars win); bars and coverage
        outside it are kept. Every bar of ``bars`` must start inside the range. The merged
        result is validated, written atomically, and returned. Raises :class:`DataError`
        for bars outside the range or a file that cannot be written.
        """
        a, b = _span(covered_start, covered_end)
        p = self.path(symbol, bar_size)
        new = normalize_bars(bars, f"bars for the cache of {symbol} {bar_size}")
        if len(new):
            t = index_ns(new.index)
            if t[0] < a or t[-1] >= b:
                raise DataError(
                    f"bar cache {p}: bars from {new.index[0]} to {new.index[-1]} are not all "
                    f"inside the covered range {from_ns(a)} .. {from_ns(b - 1)}"
                )
        old = self.read(symbol, bar_size)
        if old is None:
            merged, covered = new, [(a, b)]
        else:
            merged = replace_range(old.bars, new, a, b)
            covered = [*old.covered, (a, b)]
        entry = CachedBars(merged, tuple(merge_ranges(covered)))
        try:
            _write_file(p, entry, symbol, canonical_bar_size(bar_size))
        except OSError as exc:
            raise DataError(f"bar cache: cannot write {p}: {exc}") from exc
        return entry


def _span(start: TimeLike, end: TimeLike) -> tuple[int, int]:
    a, last = to_ns(start), to_ns(end)
    if last < a:
        raise DataError(f"bar cache: range end {from_ns(last)} is before its start {from_ns(a)}")
    return a, last + 1


def _read_file(p: Path) -> CachedBars:
    try:
        return _decode(p)
    finally:
        _release_arrow_memory()


def _decode(p: Path) -> CachedBars:
    # ParquetFile reads the one file directly; pq.read_table would build a dataset over
    # it (the same table, but loading Arrow's dataset and Acero libraries: ~4 MB resident)
    with pq.ParquetFile(p) as f:
        table = f.read()
    meta = json.loads((table.schema.metadata or {})[_META_KEY])
    if meta.get("version") != _FORMAT_VERSION:
        raise DataError(f"unknown cache format version {meta.get('version')!r}")
    covered = merge_ranges([(int(a), int(b)) for a, b in meta["covered"]])
    frame = table.to_pandas()
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError("no time index")
    bars = normalize_bars(frame, str(p))
    return CachedBars(bars, tuple(covered))


def _write_file(p: Path, entry: CachedBars, symbol: str, bar_size: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(entry.bars, preserve_index=True)
    meta = {
        "version": _FORMAT_VERSION,
        "symbol": symbol,
        "bar_size": bar_size,
        "covered": [[a, b] for a, b in entry.covered],
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        del table
        _release_arrow_memory()


def _release_arrow_memory() -> None:
    """Hand back the pages Arrow's allocator keeps after a file's buffers are freed.

    Arrow's default pool (mimalloc) keeps freed pages per thread: a trader whose warmup
    reads and writes a hundred files held ~10 MB more for nothing. Only pages without
    a live buffer are returned; nothing in use is touched."""
    pa.default_memory_pool().release_unused()


__all__ = [
    "BAR_TIME_UNIT",
    "BarCache",
    "CachedBars",
    "canonical_bar_size",
    "empty_bars",
    "from_ns",
    "merge_ranges",
    "missing_ranges",
    "normalize_bars",
    "replace_range",
    "to_ns",
]
