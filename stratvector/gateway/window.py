"""The last N closed bars of one symbol, kept as arrays, handed out as schema frames.

Appends are O(1) amortized (a buffer twice the capacity, compacted when full); a frame
for ``Strategy.target`` is a fresh copy (the strategy may keep it), built with the
columns contiguous so numba kernels read them without another copy. Times are int64
nanoseconds (UTC bar start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratvector.data.schema import BAR_COLUMNS, index_ns

_COLUMNS = pd.Index(list(BAR_COLUMNS))
_NAN = float("nan")


class BarWindow:
    """Closed bars of one symbol, strictly increasing in time, at most ``capacity``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        size = max(2 * capacity, 16)
        self._t = np.empty(size, dtype=np.int64)
        self._v = np.empty((5, size), dtype=np.float64)
        self._lo = 0
        self._hi = 0
        self.total = 0  # bars ever appended (warmup is judged on this)
        # the newest close as a Python float: read for every held symbol on every decision
        # (the risk checks' prices), set by the two writes (append, extend)
        self.last_close = _NAN

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def last_time(self) -> int | None:
        return int(self._t[self._hi - 1]) if self._hi > self._lo else None

    def _room(self, n: int) -> None:
        """Make space for ``n`` more bars at the end (drops the oldest beyond capacity)."""
        size = self._t.shape[0]
        if self._hi + n <= size:
            return
        keep = min(self._hi - self._lo, max(self.capacity - n, 0))
        if n > size - keep:  # a bulk load larger than the buffer
            bigger = max(size * 2, keep + n)
            t = np.empty(bigger, dtype=np.int64)
            v = np.empty((5, bigger), dtype=np.float64)
        else:
            t, v = self._t, self._v
        src = slice(self._hi - keep, self._hi)
        t[:keep] = self._t[src]
        v[:, :keep] = self._v[:, src]
        self._t, self._v = t, v
        self._lo, self._hi = 0, keep

    def append(self, t: int, o: float, h: float, lo: float, c: float, vol: float) -> bool:
        """Add a bar newer than the last one; False (ignored) if it is not newer."""
        last = self.last_time
        if last is not None and t <= last:
            return False
        self._room(1)
        i = self._hi
        self._t[i] = t
        self._v[0, i], self._v[1, i], self._v[2, i], self._v[3, i], self._v[4, i] = (
            o,
            h,
            lo,
            c,
            vol,
        )
        self._hi += 1
        self.last_close = float(c)
        if self._hi - self._lo > self.capacity:
            self._lo = self._hi - self.capacity
        self.total += 1
        return True

    def extend(self, bars: pd.DataFrame) -> int:
        """Add the bars of a schema frame that are newer than the last; returns how many."""
        if bars.empty:
            return 0
        times = index_ns(bars.index)
        last = self.last_time
        keep = times > last if last is not None else np.ones(len(times), dtype=bool)
        n = int(keep.sum())
        if n == 0:
            return 0
        self._room(n)
        i = self._hi
        self._t[i : i + n] = times[keep]
        for k, col in enumerate(BAR_COLUMNS):
            self._v[k, i : i + n] = bars[col].to_numpy(dtype=np.float64)[keep]
        self._hi += n
        self.last_close = float(self._v[3, self._hi - 1])
        if self._hi - self._lo > self.capacity:
            self._lo = self._hi - self.capacity
        self.total += n
        return n

    def index_of(self, t: int) -> int | None:
        """Position (0-based within the window) of the bar starting at ``t``, if held."""
        if self._hi > self._lo and self._t[self._hi - 1] == t:  # the usual case: the newest
            return self._hi - 1 - self._lo
        ts = self._t[self._lo : self._hi]
        i = int(np.searchsorted(ts, t))
        return i if i < len(ts) and ts[i] == t else None

    def close_at(self, t: int) -> float:
        i = self.index_of(t)
        return float(self._v[3, self._lo + i]) if i is not None else float("nan")

    def view_at(self, t: int) -> tuple[float, float, float, float]:
        """``(mark, high, low, close)`` at bar time ``t`` in one call (the decision reads
        every symbol's): the close of the newest bar starting at or before ``t``, and the
        high, low and close of the bar starting at ``t`` (NaN without such a bar)."""
        hi = self._hi
        if hi > self._lo:
            newest = self._t[hi - 1]
            if newest == t:  # the usual case
                _, h, lo, c, _ = self._v[:, hi - 1].tolist()
                return c, h, lo, c
            if newest < t:
                return float(self._v[3, hi - 1]), _NAN, _NAN, _NAN
        hlc = self.hlc_at(t)
        mark = self.last_close_upto(t)
        return (mark, _NAN, _NAN, _NAN) if hlc is None else (mark, *hlc)

    def hlc_at(self, t: int) -> tuple[float, float, float] | None:
        """High, low and close of the bar starting at ``t`` (None if not held)."""
        hi = self._hi
        if hi > self._lo and self._t[hi - 1] == t:  # the usual case: the newest
            k = hi - 1
        else:
            i = self.index_of(t)
            if i is None:
                return None
            k = self._lo + i
        _, h, lo, c, _ = self._v[:, k].tolist()
        return h, lo, c

    def last_close_upto(self, t: int) -> float:
        """The close of the newest bar starting at or before ``t`` (NaN if none)."""
        if self._hi > self._lo and self._t[self._hi - 1] <= t:
            return float(self._v[3, self._hi - 1])
        ts = self._t[self._lo : self._hi]
        i = int(np.searchsorted(ts, t, side="right")) - 1
        return float(self._v[3, self._lo + i]) if i >= 0 else float("nan")

    def times(self) -> np.ndarray:
        return self._t[self._lo : self._hi]

    def column(self, name: str) -> np.ndarray:
        return self._v[BAR_COLUMNS.index(name), self._lo : self._hi]

    def frame(self, upto: int | None = None) -> pd.DataFrame:
        """The held bars (up to and including time ``upto``) as a new schema frame."""
        hi = self._hi
        if upto is not None and not (hi > self._lo and self._t[hi - 1] <= upto):
            hi = self._lo + int(np.searchsorted(self._t[self._lo : self._hi], upto, side="right"))
        values = self._v[:, self._lo : hi].copy()  # (5, n) C-order: columns contiguous
        index = pd.DatetimeIndex(
            self._t[self._lo : hi].astype("datetime64[ns]"), name="time"
        ).tz_localize("UTC")
        return pd.DataFrame(values.T, index=index, columns=_COLUMNS, copy=False)
