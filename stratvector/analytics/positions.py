"""Portfolio activity: gross exposure and annualized turnover.

Both take per-period arrays aligned with the equity curve (same length, same periods),
in currency. A 2-D array (periods x symbols) is summed across symbols after taking
absolute values, so a per-symbol position matrix can be passed directly. Not in
empyrical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratvector.analytics._arrays import ArrayLike, check_periods_per_year, to_1d
from stratvector.errors import StratVectorError

_NAN = float("nan")


def _gross(values: ArrayLike | pd.DataFrame, name: str) -> np.ndarray:
    """Per-period sum of absolute values; NaN only where every entry of a row is NaN."""
    if isinstance(values, pd.DataFrame) or np.ndim(values) == 2:
        arr = np.abs(np.asarray(values, dtype=np.float64))
        out = np.nansum(arr, axis=1)
        out[np.isnan(arr).all(axis=1)] = np.nan
        return out
    return np.abs(to_1d(values, name))


def _paired(values: np.ndarray, equity: ArrayLike, name: str) -> np.ndarray:
    eq = to_1d(equity, "equity")
    if eq.size != values.size:
        raise StratVectorError(
            f"{name} has {values.size} periods but equity has {eq.size}; pass one value "
            "per period of the equity curve"
        )
    return eq


def exposure(position_value_abs: ArrayLike | pd.DataFrame, equity: ArrayLike) -> float:
    """Mean gross exposure: ``mean_t(sum_i |position_value_{t,i}| / equity_t)``.

    ``position_value_abs`` is the market value of the open positions at each period
    (absolute values are taken, so signed values also work; a 2-D array is summed
    across symbols). Units: a fraction of equity (1.0 = fully invested, 2.0 = 2x gross
    leverage, 0 = always flat). Periods where either input is NaN or equity is not
    positive are skipped; NaN when no period is left.
    """
    gross = _gross(position_value_abs, "position_value_abs")
    eq = _paired(gross, equity, "position_value_abs")
    ok = ~np.isnan(gross) & (eq > 0)
    if not ok.any():
        return _NAN
    return float(np.mean(gross[ok] / eq[ok]))


def turnover(
    traded_value: ArrayLike | pd.DataFrame,
    equity: ArrayLike,
    periods_per_year: float = 252,
) -> float:
    """Annualized turnover: ``sum_t |traded_value_t| / mean_t(equity_t) * ppy / n``.

    ``traded_value`` is the currency value traded in each period (buys and sells both
    count, as absolute values; a 2-D array is summed across symbols). The result is the
    traded value per year as a multiple of the average equity: buying a full book and
    selling it again within a year is 2.0. (The "one-way" convention of some reports is
    half of this.) ``n`` is the number of periods with a known equity; a NaN traded
    value counts as no trade. NaN when no period has a known equity or the mean equity
    is not positive.
    """
    ppy = check_periods_per_year(periods_per_year)
    traded = _gross(traded_value, "traded_value")
    eq = _paired(traded, equity, "traded_value")
    ok = ~np.isnan(eq)
    if not ok.any():
        return _NAN
    mean_equity = float(eq[ok].mean())
    if not mean_equity > 0:
        return _NAN
    total = float(np.nansum(traded[ok]))
    return total / mean_equity * ppy / int(ok.sum())
