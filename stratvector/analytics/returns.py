"""Returns from equity, cumulative growth, CAGR and volatility.

All returns are simple (arithmetic) per-period returns: ``r_t = E_t / E_{t-1} - 1`` as a
fraction (0.01 = 1 %). Annualized figures use ``periods_per_year`` (252 for daily bars;
for intraday bars see :func:`stratvector.data.periods_per_year`). The definitions are
empyrical's (empyrical-reloaded); deviations are named in each docstring.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stratvector.analytics._arrays import (
    ArrayLike,
    check_periods_per_year,
    clean,
    to_1d,
)
from stratvector.analytics.distribution import Moments, moments
from stratvector.errors import StratVectorError


def returns_from_equity(equity: ArrayLike, initial: float | None = None) -> np.ndarray | pd.Series:
    """Simple per-period returns of an equity curve, one per equity value.

    ``r_t = equity_t / equity_{t-1} - 1``. The first return is NaN unless ``initial``
    (the capital before the first value, e.g. the backtest's starting cash) is given, in
    which case it is ``equity_0 / initial - 1``. Metrics drop the leading NaN.

    A Series in gives a Series out with the same index; anything else gives an ndarray.
    Equity must be positive: after a value of 0 the next return is NaN (0/0) or inf.
    """
    arr = to_1d(equity, "equity")
    prev = np.empty_like(arr)
    if arr.size:
        prev[0] = np.nan if initial is None else float(initial)
        prev[1:] = arr[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = arr / prev - 1.0
    if isinstance(equity, pd.Series):
        return pd.Series(out, index=equity.index, name=equity.name)
    return out


def cumulative_returns(returns: ArrayLike) -> np.ndarray | pd.Series:
    """Compounded return up to and including each period: ``prod(1 + r_0..r_t) - 1``.

    Same as ``empyrical.cum_returns(returns)``: a NaN return counts as 0 (no change), so
    the output has one value per input value. A Series in gives a Series out.
    """
    arr = to_1d(returns)
    out = np.cumprod(1.0 + np.nan_to_num(arr, nan=0.0, posinf=np.inf, neginf=-np.inf)) - 1.0
    if isinstance(returns, pd.Series):
        return pd.Series(out, index=returns.index, name=returns.name)
    return out


def total_return(returns: ArrayLike) -> float:
    """Compounded return over the whole sample, ``prod(1 + r) - 1`` (a fraction).

    empyrical ``cum_returns_final``. NaN returns are dropped (equivalent to empyrical,
    which counts them as 0). Empty or all-NaN input gives NaN.
    """
    r = clean(returns)
    if r.size == 0:
        return float("nan")
    return float(np.prod(1.0 + r) - 1.0)


def cagr(returns: ArrayLike, periods_per_year: float = 252) -> float:
    """Compound annual growth rate: ``prod(1 + r) ** (periods_per_year / n) - 1``.

    empyrical ``annual_return`` / ``cagr``; ``n`` is the number of (non-NaN) periods.
    Units: fraction per year. Empty or all-NaN input gives NaN.

    Deviation: empyrical counts interior NaN returns in ``n`` (as 0-return periods);
    here they are dropped. Identical when NaN only lead the series.
    """
    ppy = check_periods_per_year(periods_per_year)
    r = clean(returns)
    if r.size == 0:
        return float("nan")
    growth = float(np.prod(1.0 + r))
    if growth < 0:  # only possible with returns below -100 %, i.e. not simple returns
        return float("nan")
    return growth ** (ppy / r.size) - 1.0


def annual_volatility(returns: ArrayLike, periods_per_year: float = 252) -> float:
    """Annualized standard deviation: ``std(r, ddof=1) * sqrt(periods_per_year)``.

    empyrical ``annual_volatility`` (with its default ``alpha=2``). Units: fraction per
    square-root year. Fewer than 2 values give NaN; constant returns give exactly 0.
    """
    return volatility_from_moments(moments(returns), periods_per_year)


def volatility_from_moments(m: Moments, periods_per_year: float = 252) -> float:
    """:func:`annual_volatility` from precomputed :class:`~.distribution.Moments`."""
    return m.std * math.sqrt(check_periods_per_year(periods_per_year))


def align_returns(
    returns: ArrayLike, benchmark: ArrayLike, name: str = "benchmark"
) -> tuple[np.ndarray, np.ndarray]:
    """Pair ``returns`` with ``benchmark`` and keep the periods where both are present.

    Two Series are aligned on their index (inner join, the dates both have); otherwise
    the inputs are paired by position and must have the same length. Rows where either
    value is NaN are dropped. Returns two float64 arrays of equal length.
    """
    if isinstance(returns, pd.Series) and isinstance(benchmark, pd.Series):
        ri, bi = returns.index, benchmark.index
        if ri.equals(bi):
            r, b = to_1d(returns), to_1d(benchmark, name)
        elif (
            ri.is_monotonic_increasing
            and bi.is_monotonic_increasing
            and ri.is_unique
            and bi.is_unique
        ):
            # Both strictly increasing (the project's convention): the common labels
            # appear in the same order in each, so two membership masks align them.
            r = to_1d(returns)[ri.isin(bi)]
            b = to_1d(benchmark, name)[bi.isin(ri)]
        else:
            joined = pd.concat([returns, benchmark], axis=1, join="inner")
            r = joined.iloc[:, 0].to_numpy(dtype=np.float64, na_value=np.nan)
            b = joined.iloc[:, 1].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        r = to_1d(returns)
        b = to_1d(benchmark, name)
        if r.size != b.size:
            raise StratVectorError(
                f"returns has {r.size} values but {name} has {b.size}; pass two pandas "
                "Series to align them by date, or arrays of the same length"
            )
    keep = ~(np.isnan(r) | np.isnan(b))
    if not keep.all():
        r, b = r[keep], b[keep]
    return r, b
