"""Drawdowns: the series, the maximum (a negative fraction) and the longest duration.

The equity curve behind a return series starts at 1 before the first period (the
"anchor", as in empyrical), so a loss in the very first period is a drawdown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratvector.analytics._arrays import ArrayLike, clean, to_1d


def drawdown_series(
    returns: ArrayLike | None = None, *, equity: ArrayLike | None = None
) -> np.ndarray | pd.Series:
    """Drawdown at each period: ``E_t / max(E_0..E_t) - 1`` (0 at a peak, negative below).

    Give exactly one of:

    - ``returns`` (simple returns): the equity is ``cumprod(1 + r)`` anchored at 1 before
      the first period; a NaN return counts as 0 (no change), so there is one value per
      return. Same as ``empyrical.drawdown_series``.
    - ``equity=`` (an equity curve in currency): the running peak starts at the first
      value; a NaN equity value gives NaN there and is skipped by the running peak.

    A Series in gives a Series out with the same index. Units: fraction of the peak.
    """
    if (returns is None) == (equity is None):
        raise TypeError("drawdown_series takes returns or equity=..., exactly one of them")
    source = returns if returns is not None else equity
    arr = to_1d(source, "returns" if returns is not None else "equity")
    if returns is not None:
        level = np.cumprod(1.0 + np.nan_to_num(arr, nan=0.0, posinf=np.inf, neginf=-np.inf))
        peak = np.maximum(np.maximum.accumulate(level), 1.0) if level.size else level
    else:
        level = arr
        peak = np.fmax.accumulate(level) if level.size else level
    with np.errstate(divide="ignore", invalid="ignore"):
        out = level / peak - 1.0
    if isinstance(source, pd.Series):
        return pd.Series(out, index=source.index, name=source.name)
    return out


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough loss of compounded returns, as a NEGATIVE fraction.

    ``min_t (E_t / max(E_0..E_t) - 1)`` with ``E`` anchored at 1 before the first period;
    e.g. -0.35 for a 35 % drawdown, 0.0 when the equity never falls. empyrical
    ``max_drawdown``. Empty or all-NaN input gives NaN.
    """
    r = clean(returns)
    if r.size == 0:
        return float("nan")
    return _max_drawdown(*_level_and_peak(r))


def max_drawdown_duration(returns: ArrayLike) -> float:
    """Longest drawdown in periods, from its peak to its recovery (or to the end).

    On the equity curve anchored at 1 before the first period (index 0) with one point
    per period after it, a drawdown starts at a peak index ``p`` (the last point at the
    running maximum) and ends at the first later index ``q`` where equity is back at or
    above that peak; its duration is ``q - p``. A drawdown still open at the last index
    ``L`` lasts ``L - p``. Examples: returns ``[-0.1, 0.2]`` -> 2 (peak 0, recovered at
    2); ``[-0.1]`` -> 1 (open); no losses -> 0. Empty or all-NaN input gives NaN.

    Not in empyrical. Vectorized: it measures runs of underwater points with numpy.
    """
    r = clean(returns)
    if r.size == 0:
        return float("nan")
    return _max_duration(*_level_and_peak(r))


def drawdown_stats(returns: ArrayLike) -> tuple[float, float]:
    """``(max_drawdown(r), max_drawdown_duration(r))`` from one pass over the equity curve."""
    r = clean(returns)
    if r.size == 0:
        return float("nan"), float("nan")
    level, peak = _level_and_peak(r)
    return _max_drawdown(level, peak), _max_duration(level, peak)


def _level_and_peak(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equity after each period (anchored at 1) and its running peak, anchor included."""
    level = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(level)
    np.maximum(peak, 1.0, out=peak)
    return level, peak


def _max_drawdown(level: np.ndarray, peak: np.ndarray) -> float:
    return min(float(np.min(level / peak)) - 1.0, 0.0)


def _max_duration(level: np.ndarray, peak: np.ndarray) -> float:
    # Points: 0 is the anchor (never underwater), 1..n follow each period, n+1 is a
    # sentinel that is never underwater so that every run has an end edge.
    n = level.size
    under = np.zeros(n + 2, dtype=np.int8)
    under[1:-1] = level < peak
    edges = np.diff(under)
    peaks = np.flatnonzero(edges == 1)  # edge i -> i+1 enters a run: i is its peak
    if peaks.size == 0:
        return 0.0
    last_under = np.flatnonzero(edges == -1)  # edge j -> j+1 leaves it: j is underwater
    durations = last_under + 1 - peaks  # recovery point (j + 1) minus peak point
    if last_under[-1] == n:  # the last run is still open at the last point n
        durations[-1] -= 1
    return float(durations.max())
