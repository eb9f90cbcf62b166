"""Latency percentiles kept in O(1) per sample, read in microseconds.

The trader times every order and every phase of every decision, and its status (the
status line, the status file, health checks) reports p50/p99 of each. Sorting 10,000
samples per series on every status read cost several milliseconds on the event loop,
right in the path being measured. :class:`LatencyWindow` instead counts samples in
log-spaced bins (each 1 % wide, so a reported percentile is within 1 % of the exact
one) and keeps two generations of ``window`` samples, so percentiles follow the recent
past (between ``window`` and ``2 * window`` newest samples) rather than the whole run.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

_LOW = 1e-7  # seconds: the first bin's lower edge (faster samples count there)
_RATIO = 1.01  # each bin is 1 % wider than the one before
_BINS = int(math.log(1e4 / _LOW) / math.log(_RATIO)) + 1  # up to 10,000 s
_SCALE = 1.0 / math.log(_RATIO)
# the value a bin reports: the geometric middle of its edges
_MIDDLES = _LOW * _RATIO ** (np.arange(_BINS) + 0.5)


class LatencyWindow:
    """Durations in seconds; ``quantile`` over the recent ``window`` to ``2*window``."""

    __slots__ = ("_max", "_n", "_now", "_old", "_old_max", "_old_n", "max", "total", "window")

    def __init__(self, window: int = 10_000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, not {window}")
        self.window = window
        self._now = _zeros()
        self._old = _zeros()
        self._n = 0  # samples in the current generation
        self._old_n = 0  # samples in the previous one
        self._max = self._old_max = 0.0  # the largest sample of each generation
        self.total = 0  # samples ever added
        self.max = 0.0  # the largest sample ever added

    def add(self, seconds: float) -> None:
        """Count one duration (negative or NaN durations count as the smallest bin)."""
        if self._n >= self.window:
            self._old, self._now = self._now, _zeros()
            self._old_n, self._n = self._n, 0
            self._old_max, self._max = self._max, 0.0
        i = int(math.log(seconds / _LOW) * _SCALE) if seconds > _LOW else 0
        self._now[i if i < _BINS else _BINS - 1] += 1
        self._n += 1
        self.total += 1
        if seconds > self._max:
            self._max = seconds
            if seconds > self.max:
                self.max = seconds

    def __len__(self) -> int:
        """Samples the percentiles are computed over."""
        return self._n + self._old_n

    def quantile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in seconds, None before the first sample."""
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be within [0, 100], not {q}")
        n = self._n + self._old_n
        if n == 0:
            return None
        counts = np.frombuffer(self._now, np.int64) + np.frombuffer(self._old, np.int64)
        # the sample of rank ceil(q/100 * n) (nearest rank), at least the first
        rank = max(math.ceil(q / 100.0 * n), 1)
        top = max(self._max, self._old_max)
        if rank == n:
            return top  # the largest, exactly
        i = int(np.searchsorted(np.cumsum(counts), rank))
        return float(min(_MIDDLES[i], top))

    def ms(self, q: float) -> float | None:
        """``quantile`` in milliseconds, rounded to the microsecond."""
        v = self.quantile(q)
        return None if v is None else round(v * 1e3, 3)


def _zeros() -> array:
    return array("q", bytes(8 * _BINS))
