"""Alpha and beta against a benchmark (CAPM regression), as empyrical ``alpha_beta``.

``returns`` and ``benchmark`` are simple per-period returns. Two pandas Series are
aligned on their index (the dates both have); arrays are paired by position and must
have the same length. Periods where either is NaN are dropped.
"""

from __future__ import annotations

import numpy as np

from stratvector.analytics._arrays import ArrayLike, check_periods_per_year, is_constant
from stratvector.analytics.returns import align_returns

_NAN = float("nan")


def _beta(r: np.ndarray, b: np.ndarray, risk_free: float) -> float:
    if r.size < 2 or is_constant(b):
        return _NAN
    # cov(b - rf, r - rf) / var(b - rf); a constant rf changes neither. Population
    # moments on both sides, so the ddof cancels.
    bc = b - b.mean()
    return float((bc @ (r - r.mean())) / (bc @ bc))


def alpha_beta(
    returns: ArrayLike,
    benchmark: ArrayLike,
    risk_free: float = 0.0,
    periods_per_year: float = 252,
) -> tuple[float, float]:
    """Annualized alpha and beta of ``returns`` against ``benchmark``.

    - ``beta = cov(b, r) / var(b)`` (same ddof on both sides).
    - ``alpha = (1 + mean((r - rf) - beta * (b - rf))) ** periods_per_year - 1``: the mean
      per-period residual return, compounded to a year, exactly as empyrical does.

    ``risk_free`` is a constant per-period rate. Units: alpha is a fraction per year,
    beta is dimensionless. Both are NaN with fewer than 2 paired periods or a constant
    benchmark (empyrical: benchmark variance below 1e-30).
    """
    ppy = check_periods_per_year(periods_per_year)
    r, b = align_returns(returns, benchmark)
    beta = _beta(r, b, risk_free)
    if np.isnan(beta):
        return _NAN, _NAN
    resid = (r - risk_free) - beta * (b - risk_free)
    alpha = (1.0 + resid.mean()) ** ppy - 1.0
    return float(alpha), beta


def beta(returns: ArrayLike, benchmark: ArrayLike, risk_free: float = 0.0) -> float:
    """Beta of ``returns`` against ``benchmark``; see :func:`alpha_beta`."""
    r, b = align_returns(returns, benchmark)
    return _beta(r, b, risk_free)


def alpha(
    returns: ArrayLike,
    benchmark: ArrayLike,
    risk_free: float = 0.0,
    periods_per_year: float = 252,
) -> float:
    """Annualized alpha of ``returns`` against ``benchmark``; see :func:`alpha_beta`."""
    return alpha_beta(returns, benchmark, risk_free, periods_per_year)[0]
