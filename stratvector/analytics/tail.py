"""One-period Value at Risk and Conditional VaR of a return series, as POSITIVE losses.

Every function takes a confidence ``level`` in (0, 1) (0.95 -> the worst 5 % of periods,
tail probability ``a = 1 - level``) and returns the loss as a positive fraction of
equity for ONE period of the returns' frequency (multiply by the equity for currency;
horizon scaling and Monte Carlo live in :mod:`stratvector.risk`). A negative result
means even the tail quantile is a gain. NaN returns are dropped; empty input (and,
for the parametric forms, fewer than 2 values) gives NaN.

Sign convention vs empyrical: ``value_at_risk(r, 0.95) == -empyrical.value_at_risk(r,
cutoff=0.05)`` and ``conditional_value_at_risk(r, 0.95) ==
-empyrical.conditional_value_at_risk(r, cutoff=0.05)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from stratvector.analytics._arrays import ArrayLike, clean, tail_probability
from stratvector.analytics.distribution import Moments, moments

_NAN = float("nan")
_NORMAL = NormalDist()


def value_at_risk(returns: ArrayLike, level: float = 0.95) -> float:
    """Historical VaR: ``-percentile(r, 100 * (1 - level))`` (linear interpolation).

    The negated empyrical ``value_at_risk(r, cutoff=1 - level)``. NaN when empty.
    """
    return float(historical_var_cvar(returns, (level,))[0][0])


def conditional_value_at_risk(returns: ArrayLike, level: float = 0.95) -> float:
    """Historical CVaR (expected shortfall): minus the mean of the ``k`` lowest returns.

    ``k = floor((n - 1) * (1 - level)) + 1``: the returns at or below the order statistic
    at the VaR cutoff. The negated empyrical ``conditional_value_at_risk(r, cutoff=1 -
    level)``. NaN when empty.
    """
    return float(historical_var_cvar(returns, (level,))[1][0])


def historical_var_cvar(
    returns: ArrayLike, levels: Sequence[float] = (0.95, 0.99)
) -> tuple[np.ndarray, np.ndarray]:
    """Historical VaR and CVaR at several confidence levels with one percentile pass.

    Returns ``(var, cvar)``, two arrays aligned with ``levels``, each entry as
    :func:`value_at_risk` and :func:`conditional_value_at_risk` define it (all NaN when
    the input is empty).
    """
    a = np.array([tail_probability(lv) for lv in levels], dtype=np.float64)
    r = clean(returns)
    if r.size == 0:
        return np.full(a.size, np.nan), np.full(a.size, np.nan)
    var = -np.percentile(r, 100.0 * a)
    k = ((r.size - 1) * a).astype(np.int64) + 1  # tail counts, floor as int() does
    part = np.partition(r, np.unique(k - 1))  # every k-th smallest in place at once
    prefix = np.cumsum(part[: int(k.max())])
    cvar = -prefix[k - 1] / k
    return var, cvar


def parametric_var(returns: ArrayLike, level: float = 0.95) -> float:
    """Gaussian VaR: ``-(mu + z * sigma)`` with ``z = Phi^-1(1 - level)`` (-1.645 at 95 %).

    ``mu`` is the mean and ``sigma`` the standard deviation (``ddof=1``) of the
    per-period returns. NaN with fewer than 2 values. Not in empyrical.
    """
    return parametric_var_from_moments(moments(returns), level)


def parametric_var_from_moments(m: Moments, level: float = 0.95) -> float:
    """:func:`parametric_var` from precomputed :class:`~.distribution.Moments`."""
    z = _NORMAL.inv_cdf(tail_probability(level))
    return -(m.mean + z * m.std)


def parametric_cvar(returns: ArrayLike, level: float = 0.95) -> float:
    """Gaussian CVaR: ``-(mu - sigma * phi(z) / a)`` with ``a = 1 - level``, ``z = Phi^-1(a)``.

    ``phi`` is the standard normal density; ``mu``, ``sigma`` (``ddof=1``) as in
    :func:`parametric_var`. NaN with fewer than 2 values. Not in empyrical.
    """
    a = tail_probability(level)
    m = moments(returns)
    return -(m.mean - m.std * _NORMAL.pdf(_NORMAL.inv_cdf(a)) / a)


def cornish_fisher_z(z: float, skewness: float, excess_kurtosis: float) -> float:
    """The Cornish-Fisher adjusted quantile of a standard normal quantile ``z``.

    ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3 z) K / 24 - (2 z^3 - 5 z) S^2 / 36``
    with skewness ``S`` and excess kurtosis ``K``; ``z_cf == z`` when ``S = K = 0``.
    """
    s, k = skewness, excess_kurtosis
    return (
        z
        + (z * z - 1.0) * s / 6.0
        + (z**3 - 3.0 * z) * k / 24.0
        - (2.0 * z**3 - 5.0 * z) * s * s / 36.0
    )


def cornish_fisher_var(returns: ArrayLike, level: float = 0.95) -> float:
    """Modified (Cornish-Fisher) VaR: ``-(mu + z_cf * sigma)``.

    ``z = Phi^-1(1 - level)``, ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3 z) K / 24 -
    (2 z^3 - 5 z) S^2 / 36`` (:func:`cornish_fisher_z`), where ``S`` is the sample
    skewness and ``K`` the sample EXCESS kurtosis, both with biased moments (scipy's
    defaults, see :func:`~stratvector.analytics.distribution.skew`), and ``mu``,
    ``sigma`` (``ddof=1``) as in :func:`parametric_var`, to which it reduces when
    ``S = K = 0``. Favre & Galeano (2002); not in empyrical. NaN with fewer than 2
    values.

    Constant returns (``sigma = 0``, ``S`` and ``K`` undefined) give ``-mu``, the same
    as :func:`parametric_var`: the adjusted quantile is multiplied by zero.
    """
    return cornish_fisher_var_from_moments(moments(returns), level)


def cornish_fisher_var_from_moments(m: Moments, level: float = 0.95) -> float:
    """:func:`cornish_fisher_var` from precomputed :class:`~.distribution.Moments`."""
    z = _NORMAL.inv_cdf(tail_probability(level))
    sigma = m.std
    if math.isnan(sigma):
        return _NAN
    if sigma == 0.0:
        return -m.mean
    return -(m.mean + cornish_fisher_z(z, m.skew, m.kurtosis) * sigma)
