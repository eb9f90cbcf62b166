"""Risk-adjusted ratios: Sharpe, Sortino (and downside risk), Calmar, omega, tail, stability.

Definitions are empyrical's (empyrical-reloaded) on simple per-period returns, with
``periods_per_year`` as the annualization factor (252 daily) and standard deviations
with ``ddof=1``. Rates given as ``risk_free`` or ``target`` are PER PERIOD (a daily rate
for daily returns), as in empyrical, except omega's ``required_return`` which is annual.

One rule differs from empyrical and is repeated in each docstring: **a ratio whose
denominator is zero is NaN, never +-inf** (empyrical returns inf for e.g. a Sharpe of
constant non-zero returns or a Sortino with no losing period). An infinite score would
win every parameter sweep on a degenerate sample; NaN marks it as undefined.
"""

from __future__ import annotations

import math

import numpy as np

from stratvector.analytics._arrays import ArrayLike, check_periods_per_year, clean, is_constant
from stratvector.analytics.distribution import Moments, moments
from stratvector.analytics.drawdown import max_drawdown
from stratvector.analytics.returns import cagr

_NAN = float("nan")


def sharpe_ratio(
    returns: ArrayLike, risk_free: float = 0.0, periods_per_year: float = 252
) -> float:
    """Annualized Sharpe ratio: ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``.

    empyrical ``sharpe_ratio``; ``risk_free`` is a constant per-period rate (it shifts
    the mean, not the deviation). Dimensionless. NaN with fewer than 2 returns.

    Deviation: constant returns (zero standard deviation) give NaN; empyrical gives
    +-inf for a non-zero constant.
    """
    return sharpe_from_moments(moments(returns), risk_free, periods_per_year)


def sharpe_from_moments(m: Moments, risk_free: float = 0.0, periods_per_year: float = 252) -> float:
    """:func:`sharpe_ratio` from precomputed :class:`~.distribution.Moments`."""
    ppy = check_periods_per_year(periods_per_year)
    if m.n < 2 or m.constant:
        return _NAN
    return (m.mean - risk_free) / m.std * math.sqrt(ppy)


def downside_risk(returns: ArrayLike, target: float = 0.0, periods_per_year: float = 252) -> float:
    """Annualized downside deviation: ``sqrt(mean(min(r - target, 0) ** 2)) * sqrt(ppy)``.

    The mean runs over ALL periods (a period above the target contributes 0), not only
    the losing ones. empyrical ``downside_risk``; ``target`` is a per-period rate.
    Units: fraction per square-root year. NaN when empty.
    """
    ppy = check_periods_per_year(periods_per_year)
    r = clean(returns)
    if r.size == 0:
        return _NAN
    below = np.minimum(r - target, 0.0)
    return float(np.sqrt(np.mean(below * below)) * np.sqrt(ppy))


def sortino_ratio(returns: ArrayLike, target: float = 0.0, periods_per_year: float = 252) -> float:
    """Annualized Sortino ratio: ``mean(r - target) * ppy / downside_risk(r, target, ppy)``.

    empyrical ``sortino_ratio`` with ``required_return=target`` (per period, 0 by
    default); see :func:`downside_risk`. Dimensionless. NaN with fewer than 2 returns.

    Deviation: a zero downside deviation (no period below the target) gives NaN;
    empyrical gives +inf (or NaN for a zero mean).
    """
    ppy = check_periods_per_year(periods_per_year)
    r = clean(returns)
    if r.size < 2:
        return _NAN
    dd = downside_risk(r, target, ppy)
    if not dd > 0:
        return _NAN
    return float(np.mean(r - target) * ppy / dd)


def calmar_ratio(returns: ArrayLike, periods_per_year: float = 252) -> float:
    """Calmar ratio: ``cagr(r) / abs(max_drawdown(r))`` over the whole sample.

    empyrical ``calmar_ratio`` (which also uses the full sample, not a trailing 36
    months). Dimensionless. NaN when empty or when there is no drawdown (the
    denominator is zero; empyrical returns NaN there too).
    """
    r = clean(returns)
    return calmar_from_parts(cagr(r, periods_per_year), max_drawdown(r))


def calmar_from_parts(growth: float, mdd: float) -> float:
    """:func:`calmar_ratio` from a precomputed CAGR and (negative) max drawdown."""
    if not mdd < 0:
        return _NAN
    out = growth / -mdd
    return float(out) if math.isfinite(out) else _NAN


def omega_ratio(
    returns: ArrayLike,
    risk_free: float = 0.0,
    required_return: float = 0.0,
    periods_per_year: float = 252,
) -> float:
    """Omega ratio: gains over losses relative to a per-period threshold.

    With ``tau = (1 + required_return) ** (1 / ppy) - 1`` (``required_return`` is
    ANNUAL; 0 by default so ``tau = 0``) and ``x = r - risk_free - tau``:
    ``omega = sum(x[x > 0]) / -sum(x[x < 0])``. empyrical ``omega_ratio`` with
    ``annualization=periods_per_year``. Dimensionless. NaN with fewer than 2 returns,
    when ``required_return <= -1``, or when no period is below the threshold (zero
    denominator; empyrical returns NaN there too).
    """
    ppy = check_periods_per_year(periods_per_year)
    r = clean(returns)
    if r.size < 2 or required_return <= -1:
        return _NAN
    tau = required_return if ppy == 1 else (1.0 + required_return) ** (1.0 / ppy) - 1.0
    x = r - risk_free - tau
    losses = -x[x < 0.0].sum()
    if not losses > 0:
        return _NAN
    return float(x[x > 0.0].sum() / losses)


def tail_ratio(returns: ArrayLike) -> float:
    """Tail ratio: ``abs(percentile(r, 95)) / abs(percentile(r, 5))``.

    Percentiles with numpy's default linear interpolation, as empyrical
    ``tail_ratio``. 0.25 means the left tail is four times the right. Dimensionless.
    NaN when empty.

    Deviation: a zero 5th percentile gives NaN; empyrical gives inf (or NaN for 0/0).
    """
    r = clean(returns)
    if r.size == 0:
        return _NAN
    p5, p95 = np.percentile(r, [5.0, 95.0])
    if p5 == 0:
        return _NAN
    return float(abs(p95) / abs(p5))


def stability(returns: ArrayLike) -> float:
    """Stability of timeseries: R^2 of an OLS line through the cumulative log returns.

    ``y_t = sum(log1p(r_0..r_t))`` regressed on ``t = 0..n-1``; R^2 =
    ``cov(t, y) ** 2 / (var(t) * var(y))``. empyrical ``stability_of_timeseries``. In
    [0, 1]; 1 is a perfectly steady compounding curve. NaN with fewer than 2 returns.

    Deviation: when ``y`` is flat (all returns 0) R^2 is 0/0 and the result is NaN;
    empyrical (through scipy's ``linregress``) returns 0.
    """
    r = clean(returns)
    if r.size < 2:
        return _NAN
    y = np.cumsum(np.log1p(r))
    if not np.isfinite(y[-1]) or is_constant(y):
        return _NAN
    t = np.arange(r.size, dtype=np.float64)
    t -= t.mean()
    y = y - y.mean()
    sty = float(t @ y)
    return sty * sty / (float(t @ t) * float(y @ y))
