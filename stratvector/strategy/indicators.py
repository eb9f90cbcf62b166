"""Technical indicators: numba kernels (``*_nb``) and thin array/Series wrappers.

The kernels are plain ``@njit(cache=True)`` functions over 1-D float64 arrays; strategies
and parameter sweeps call them directly. The wrappers without the suffix accept a NumPy
array or a pandas Series, check the window, and return the same kind (a Series keeps its
index). Every output has the input's length; positions without enough data are NaN.
All indicators are causal: the value at ``t`` uses inputs up to and including ``t``.

Definitions (``n`` is the window or period, in bars):

- ``sma``: mean of the last ``n`` values; first value at ``n - 1``.
- ``ema``: ``e[t] = a * x[t] + (1 - a) * e[t-1]`` with ``a = 2 / (n + 1)``, the recursion of
  ``pandas.Series.ewm(span=n, adjust=False)``, but *seeded* with the SMA of the first ``n``
  values at ``n - 1`` (as TA-Lib and most charting tools do) instead of with ``x[0]``.
  Seeding makes the first value an honest average instead of one price, and makes the
  output independent of how much history precedes the first ``n`` bars.
- ``rsi``: Wilder's RSI; gains and losses of ``x[t] - x[t-1]`` are averaged with
  ``a = 1 / n``, seeded with their plain mean over the first ``n`` changes, so the first
  value is at ``n``. ``rsi = 100 * avg_gain / (avg_gain + avg_loss)``; 50 when both are 0.
- ``atr``: Wilder's average true range; ``TR[t] = max(h - l, |h - c[t-1]|, |l - c[t-1]|)``
  needs the previous close, so the first ATR (the mean of ``TR[1..n]``) is at ``n``.
- ``bollinger``: middle = SMA, bands = middle +/- ``num_std`` x the rolling *population*
  standard deviation (``ddof=0``, Bollinger's own definition; ``rolling(n).std(ddof=0)``).
- ``rolling_std``: corrected two-pass standard deviation of each window (exactly 0 for a
  constant window), any ``ddof`` below ``n``. Cost O(len x n), with no cancellation drift:
  it stays accurate on near-constant windows where a running-sum update loses digits.
- ``rolling_volatility``: sample std (``ddof=1``) of the last ``n`` simple returns
  ``x[t] / x[t-1] - 1``, times ``sqrt(periods_per_year)`` when given; first value at ``n``.
- ``rolling_return``: ``x[t] / x[t-n] - 1``; first value at ``n``.

Missing values: NaN and +/-inf in the input are *missing*; they never raise. A window
statistic (``sma``, ``rolling_std``, ``bollinger``, ``rolling_volatility``) is NaN when its
window holds a missing value, as pandas ``rolling`` with ``min_periods = n`` does. A
recursive one (``ema``, ``rsi``, ``atr``) is NaN at a missing value and then *restarts*:
it behaves as if the series began after the gap, so it needs a fresh warm-up. A bar for
``atr`` is missing when any of its high, low or close is. ``rolling_return`` is NaN when
either end is missing or the base is 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit

ArrayLike = np.ndarray | pd.Series


# --- kernels ------------------------------------------------------------------------------


@njit(cache=True)
def sma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over ``n`` bars (compensated running sum, O(len))."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if n < 1:
        return out
    total = 0.0  # Kahan-compensated sum of the finite values in the window
    comp = 0.0
    missing = 0  # non-finite values in the window
    for i in range(size):
        v = x[i]
        if math.isfinite(v):
            y = v - comp
            t = total + y
            comp = (t - total) - y
            total = t
        else:
            missing += 1
        if i >= n:
            old = x[i - n]
            if math.isfinite(old):
                y = -old - comp
                t = total + y
                comp = (t - total) - y
                total = t
            else:
                missing -= 1
        if i >= n - 1 and missing == 0:
            out[i] = total / n
    return out


@njit(cache=True)
def rolling_std_nb(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Rolling standard deviation over ``n`` bars with ``ddof`` (corrected two-pass per window)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if n < 1 or ddof < 0 or ddof >= n:
        return out
    run = 0  # consecutive finite values ending at i
    for i in range(size):
        if not math.isfinite(x[i]):
            run = 0
            continue
        run += 1
        if run < n:
            continue
        first = x[i - n + 1]
        total = 0.0
        constant = True
        for j in range(i - n + 1, i + 1):
            total += x[j]
            if x[j] != first:
                constant = False
        if constant:
            out[i] = 0.0
            continue
        mean = total / n
        ss = 0.0
        sd = 0.0  # sum of deviations: corrects the rounding error of the mean
        for j in range(i - n + 1, i + 1):
            d = x[j] - mean
            ss += d * d
            sd += d
        ss -= sd * sd / n
        out[i] = math.sqrt(ss / (n - ddof)) if ss > 0.0 else 0.0
    return out


@njit(cache=True)
def seeded_smoothing_nb(x: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Exponential smoothing with weight ``alpha``, seeded with the mean of the first
    ``n`` finite values (first value at position ``n - 1`` of a finite run); a
    non-finite value restarts the warmup. EMA and Wilder's ATR are this with
    ``alpha = 2 / (n + 1)`` and ``1 / n``."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if n < 1:
        return out
    run = 0
    prev = np.nan
    for i in range(size):
        v = x[i]
        if not math.isfinite(v):
            run = 0
            continue
        run += 1
        if run < n:
            continue
        if run == n:
            total = 0.0
            for j in range(i - n + 1, i + 1):
                total += x[j]
            prev = total / n
        else:
            prev = (1.0 - alpha) * prev + alpha * v
        out[i] = prev
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average, ``a = 2 / (n + 1)``, seeded with the SMA at ``n - 1``."""
    return seeded_smoothing_nb(x, n, 2.0 / (n + 1.0))


@njit(cache=True)
def rsi_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's RSI over ``n`` changes, in [0, 100]; first value at ``n``."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if n < 1:
        return out
    alpha = 1.0 / n
    run = 0  # consecutive finite changes ending at i
    gain = 0.0
    loss = 0.0
    for i in range(size):
        if not math.isfinite(x[i]):
            run = -1  # the next value starts a new segment and has no change
            continue
        if run < 0 or i == 0:
            run = 0
            continue
        d = x[i] - x[i - 1]
        run += 1
        g = d if d > 0.0 else 0.0
        lo = -d if d < 0.0 else 0.0
        if run < n:
            continue
        if run == n:
            gain = 0.0
            loss = 0.0
            for j in range(i - n + 1, i + 1):
                dj = x[j] - x[j - 1]
                if dj > 0.0:
                    gain += dj
                else:
                    loss -= dj
            gain /= n
            loss /= n
        else:
            gain = (1.0 - alpha) * gain + alpha * g
            loss = (1.0 - alpha) * loss + alpha * lo
        denom = gain + loss
        out[i] = 50.0 if denom == 0.0 else 100.0 * gain / denom
    return out


@njit(cache=True)
def true_range_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range; NaN at 0 and wherever this or the previous bar is missing."""
    size = close.shape[0]
    out = np.full(size, np.nan)
    for i in range(1, size):
        h = high[i]
        lo = low[i]
        pc = close[i - 1]
        if not (
            math.isfinite(h) and math.isfinite(lo) and math.isfinite(close[i]) and math.isfinite(pc)
        ):
            continue
        if not (math.isfinite(high[i - 1]) and math.isfinite(low[i - 1])):
            continue
        out[i] = max(h - lo, abs(h - pc), abs(lo - pc))
    return out


@njit(cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Wilder's average true range over ``n`` bars; first value at ``n``."""
    if n < 1:
        return np.full(close.shape[0], np.nan)
    return seeded_smoothing_nb(true_range_nb(high, low, close), n, 1.0 / n)


@njit(cache=True)
def bollinger_nb(
    x: np.ndarray, n: int, num_std: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands ``(middle, upper, lower)``: SMA +/- ``num_std`` x std (ddof=0)."""
    mid = sma_nb(x, n)
    sd = rolling_std_nb(x, n, 0)
    return mid, mid + num_std * sd, mid - num_std * sd


@njit(cache=True)
def simple_returns_nb(x: np.ndarray, n: int) -> np.ndarray:
    """``x[t] / x[t-n] - 1``; NaN when either end is missing or the base is 0."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if n < 1:
        return out
    for i in range(n, size):
        a = x[i]
        b = x[i - n]
        if math.isfinite(a) and math.isfinite(b) and b != 0.0:
            out[i] = a / b - 1.0
    return out


@njit(cache=True)
def rolling_return_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Rolling ``n``-bar simple return ``x[t] / x[t-n] - 1``; first value at ``n``."""
    return simple_returns_nb(x, n)


@njit(cache=True)
def rolling_volatility_nb(x: np.ndarray, n: int, periods_per_year: float) -> np.ndarray:
    """Sample std (ddof=1) of the last ``n`` one-bar returns, x ``sqrt(periods_per_year)``.

    ``periods_per_year <= 0`` means no annualization.
    """
    out = rolling_std_nb(simple_returns_nb(x, 1), n, 1)
    if periods_per_year > 0.0:
        out *= math.sqrt(periods_per_year)
    return out


# --- wrappers -----------------------------------------------------------------------------


def _values(x: ArrayLike, what: str = "x") -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def _window(n: int, what: str = "n", low: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {n!r}")
    return int(n)


def _like(values: np.ndarray, like: ArrayLike, name: str) -> np.ndarray | pd.Series:
    if isinstance(like, pd.Series):
        return pd.Series(values, index=like.index, name=name)
    return values


def sma(x: ArrayLike, n: int) -> np.ndarray | pd.Series:
    """Simple moving average over ``n`` bars (see the module doc)."""
    return _like(sma_nb(_values(x), _window(n)), x, f"sma_{n}")


def ema(x: ArrayLike, n: int) -> np.ndarray | pd.Series:
    """Exponential moving average (span ``n``, SMA-seeded at ``n - 1``)."""
    return _like(ema_nb(_values(x), _window(n)), x, f"ema_{n}")


def rsi(x: ArrayLike, n: int = 14) -> np.ndarray | pd.Series:
    """Wilder's RSI in [0, 100]; first value at ``n``."""
    return _like(rsi_nb(_values(x), _window(n)), x, f"rsi_{n}")


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> np.ndarray | pd.Series:
    """Wilder's average true range; first value at ``n``. Inputs must have one length."""
    h, lo, c = _values(high, "high"), _values(low, "low"), _values(close, "close")
    if not (h.shape == lo.shape == c.shape):
        raise ValueError(f"high, low, close lengths differ: {h.size}, {lo.size}, {c.size}")
    return _like(atr_nb(h, lo, c, _window(n)), close, f"atr_{n}")


def rolling_std(x: ArrayLike, n: int, ddof: int = 1) -> np.ndarray | pd.Series:
    """Rolling standard deviation over ``n`` bars with ``ddof`` (0 <= ddof < n)."""
    n = _window(n)
    if isinstance(ddof, bool) or not isinstance(ddof, int | np.integer) or not 0 <= ddof < n:
        raise ValueError(f"ddof must be an integer in [0, {n - 1}], got {ddof!r}")
    return _like(rolling_std_nb(_values(x), n, int(ddof)), x, f"std_{n}")


def bollinger(
    x: ArrayLike, n: int = 20, num_std: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | pd.DataFrame:
    """Bollinger bands: a ``(middle, upper, lower)`` tuple of arrays for an array input, a
    DataFrame with those columns for a Series."""
    k = float(num_std)
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"num_std must be a finite number >= 0, got {num_std!r}")
    mid, up, lo = bollinger_nb(_values(x), _window(n), k)
    if isinstance(x, pd.Series):
        return pd.DataFrame({"middle": mid, "upper": up, "lower": lo}, index=x.index)
    return mid, up, lo


def rolling_volatility(
    x: ArrayLike, n: int, periods_per_year: float | None = None
) -> np.ndarray | pd.Series:
    """Sample std of the last ``n`` simple returns (``n >= 2``), annualized by
    ``sqrt(periods_per_year)`` when given (252 for daily bars)."""
    ppy = 0.0 if periods_per_year is None else float(periods_per_year)
    if periods_per_year is not None and not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
    return _like(rolling_volatility_nb(_values(x), _window(n, low=2), ppy), x, f"vol_{n}")


def rolling_return(x: ArrayLike, n: int) -> np.ndarray | pd.Series:
    """``x[t] / x[t-n] - 1``; first value at ``n``."""
    return _like(rolling_return_nb(_values(x), _window(n)), x, f"return_{n}")


__all__ = [
    "atr",
    "atr_nb",
    "bollinger",
    "bollinger_nb",
    "ema",
    "ema_nb",
    "rolling_return",
    "rolling_return_nb",
    "rolling_std",
    "rolling_std_nb",
    "rolling_volatility",
    "rolling_volatility_nb",
    "rsi",
    "rsi_nb",
    "simple_returns_nb",
    "sma",
    "sma_nb",
    "true_range_nb",
]
