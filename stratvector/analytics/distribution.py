"""The shape of the per-period return distribution: mean, extremes, hit rate, moments.

Per-period figures (not annualized), fractions of equity. NaN returns are dropped.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from stratvector.analytics._arrays import ArrayLike, clean, is_constant


def avg_return(returns: ArrayLike) -> float:
    """Arithmetic mean per-period return (fraction per period). NaN when empty."""
    r = clean(returns)
    return float(r.mean()) if r.size else float("nan")


def best_period(returns: ArrayLike) -> float:
    """Largest single-period return (fraction). NaN when empty."""
    r = clean(returns)
    return float(r.max()) if r.size else float("nan")


def worst_period(returns: ArrayLike) -> float:
    """Smallest single-period return (fraction; negative for a loss). NaN when empty."""
    r = clean(returns)
    return float(r.min()) if r.size else float("nan")


def win_rate_periods(returns: ArrayLike) -> float:
    """Fraction of periods with a strictly positive return (0 counts as not a win).

    Over the non-NaN periods, in [0, 1]. NaN when empty.
    """
    r = clean(returns)
    return float(np.count_nonzero(r > 0) / r.size) if r.size else float("nan")


class Moments(NamedTuple):
    """Sample moments of a cleaned return array, computed in one pass by :func:`moments`.

    ``m2``, ``m3``, ``m4`` are biased central moments ``mean((r - mean) ** k)``;
    ``constant`` is True when every value is the same (exact comparison, so a
    floating-point residue in ``m2`` cannot turn a zero deviation into a tiny one).
    """

    n: int
    mean: float
    m2: float
    m3: float
    m4: float
    constant: bool

    @property
    def std(self) -> float:
        """Sample standard deviation with ``ddof=1``: ``sqrt(m2 * n / (n - 1))``.

        NaN for fewer than 2 values, exactly 0 for constant values.
        """
        if self.n < 2:
            return float("nan")
        return 0.0 if self.constant else math.sqrt(self.m2 * self.n / (self.n - 1))

    @property
    def skew(self) -> float:
        """``m3 / m2 ** 1.5``; NaN when empty or constant."""
        if self.n == 0 or self.constant:
            return float("nan")
        return self.m3 / self.m2**1.5

    @property
    def kurtosis(self) -> float:
        """Excess kurtosis ``m4 / m2 ** 2 - 3``; NaN when empty or constant."""
        if self.n == 0 or self.constant:
            return float("nan")
        return self.m4 / (self.m2 * self.m2) - 3.0


def moments(returns: ArrayLike) -> Moments:
    """Mean and biased central moments 2-4 of the non-NaN returns (see :class:`Moments`)."""
    r = clean(returns)
    if r.size == 0:
        nan = float("nan")
        return Moments(0, nan, nan, nan, nan, False)
    mean = float(r.mean())
    d = r - mean
    d2 = d * d
    return Moments(
        n=int(r.size),
        mean=mean,
        m2=float(d2.mean()),
        m3=float((d2 * d).mean()),
        m4=float((d2 * d2).mean()),
        constant=is_constant(r),
    )


def skew(returns: ArrayLike) -> float:
    """Sample skewness ``m3 / m2 ** 1.5`` with biased central moments ``m_k = mean((r - mean) ** k)``.

    Same as ``scipy.stats.skew(r)`` (``bias=True``), which empyrical's stats list uses.
    Dimensionless. NaN when empty or constant (zero variance).
    """
    return moments(returns).skew


def kurtosis(returns: ArrayLike) -> float:
    """Excess kurtosis ``m4 / m2 ** 2 - 3`` with biased central moments (0 for a normal).

    Same as ``scipy.stats.kurtosis(r)`` (``fisher=True, bias=True``). Dimensionless. NaN
    when empty or constant (zero variance).
    """
    return moments(returns).kurtosis
