"""The public performance summary: one dict of named floats per return series."""

from __future__ import annotations

from stratvector.analytics._arrays import ArrayLike, check_periods_per_year, clean
from stratvector.analytics.benchmark import alpha_beta
from stratvector.analytics.distribution import best_period, moments, win_rate_periods, worst_period
from stratvector.analytics.drawdown import drawdown_stats
from stratvector.analytics.ratios import (
    calmar_from_parts,
    downside_risk,
    omega_ratio,
    sharpe_from_moments,
    sortino_ratio,
    stability,
    tail_ratio,
)
from stratvector.analytics.returns import cagr, total_return, volatility_from_moments
from stratvector.analytics.tail import (
    cornish_fisher_var_from_moments,
    historical_var_cvar,
    parametric_var_from_moments,
)

SUMMARY_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "var_95",
    "cvar_95",
    "var_99",
    "cvar_99",
    "parametric_var_95",
    "cornish_fisher_var_95",
    "alpha",
    "beta",
    "omega",
    "tail_ratio",
    "stability",
    "skew",
    "kurtosis",
    "best_period",
    "worst_period",
    "downside_risk",
    "avg_return",
    "win_rate_periods",
    "n_periods",
)
"""The keys of :func:`summary`, in order; each is documented in its docstring table."""


def summary(
    returns: ArrayLike,
    benchmark: ArrayLike | None = None,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """Performance statistics of a series of simple per-period returns.

    ``returns`` (and ``benchmark``) are simple returns, e.g. daily ``equity.pct_change()``,
    as a pandas Series or numpy array. NaN values (such as the leading one of
    ``pct_change``) are dropped. ``periods_per_year`` annualizes (252 for daily bars).
    ``risk_free`` is a constant PER-PERIOD rate (a daily rate for daily returns), used by
    ``sharpe``, ``omega`` and ``alpha`` (a constant rate leaves ``beta`` unchanged);
    ``sortino`` uses a target of 0.

    The benchmark only feeds ``alpha`` and ``beta`` (NaN without one). When both inputs
    are Series they are aligned on the index (the dates both have); otherwise they are
    paired by position and must have the same length. Every other key uses all of
    ``returns``.

    Every value is a float; a key that is undefined for the input (too few periods, zero
    dispersion, no drawdown ...) is NaN rather than an exception. Definitions follow
    empyrical (empyrical-reloaded); the few deviations are named in the functions cited.
    "ppy" is ``periods_per_year``, "fraction" means 0.01 = 1 %.

    =======================  ==========================================================  ===============================
    key                      definition                                                  units / empyrical
    =======================  ==========================================================  ===============================
    total_return             ``prod(1 + r) - 1``                                         fraction; ``cum_returns_final``
    cagr                     ``prod(1 + r) ** (ppy / n) - 1``                            fraction/yr; ``annual_return``
    annual_volatility        ``std(r, ddof=1) * sqrt(ppy)``                              fraction; ``annual_volatility``
    sharpe                   ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``          ratio; ``sharpe_ratio`` [1]
    sortino                  ``mean(r) * ppy / downside_risk``                           ratio; ``sortino_ratio`` [1]
    calmar                   ``cagr / abs(max_drawdown)``                                ratio; ``calmar_ratio``
    max_drawdown             ``min(E / running_max(E) - 1)``, E anchored at 1            NEGATIVE fraction; ``max_drawdown``
    max_drawdown_duration    longest peak-to-recovery (or peak-to-end if open) span      periods; not in empyrical
    var_95                   ``-percentile(r, 5)``                                       POSITIVE loss; ``-value_at_risk``
    cvar_95                  minus mean of the ``floor((n-1) * 0.05) + 1`` lowest r      POSITIVE loss; ``-conditional_value_at_risk``
    var_99                   ``-percentile(r, 1)``                                       POSITIVE loss; ``-value_at_risk``
    cvar_99                  as cvar_95 with 0.01                                        POSITIVE loss; ``-conditional_value_at_risk``
    parametric_var_95        ``-(mean + Phi^-1(0.05) * std(r, ddof=1))``                 POSITIVE loss; not in empyrical
    cornish_fisher_var_95    ``-(mean + z_cf * std(r, ddof=1))``, z_cf of skew/kurtosis  POSITIVE loss; not in empyrical [2]
    alpha                    ``(1 + mean((r - rf) - beta (b - rf))) ** ppy - 1``         fraction/yr; ``alpha_beta`` [3]
    beta                     ``cov(r, b) / var(b)``                                      ratio; ``alpha_beta`` [3]
    omega                    ``sum(x[x > 0]) / -sum(x[x < 0])``, ``x = r - rf``          ratio; ``omega_ratio``
    tail_ratio               ``abs(percentile(r, 95)) / abs(percentile(r, 5))``          ratio; ``tail_ratio`` [1]
    stability                R^2 of OLS of ``cumsum(log1p(r))`` on time                  in [0, 1]; ``stability_of_timeseries`` [1]
    skew                     ``m3 / m2 ** 1.5`` (biased central moments)                 scipy ``skew``
    kurtosis                 ``m4 / m2 ** 2 - 3`` (excess, biased)                       scipy ``kurtosis``
    best_period              ``max(r)``                                                  fraction per period
    worst_period             ``min(r)``                                                  fraction per period
    downside_risk            ``sqrt(mean(min(r, 0) ** 2)) * sqrt(ppy)`` over ALL periods fraction; ``downside_risk``
    avg_return               ``mean(r)``                                                 fraction per period
    win_rate_periods         share of periods with ``r > 0``                             in [0, 1]
    n_periods                number of non-NaN returns                                   count
    =======================  ==========================================================  ===============================

    [1] A zero denominator gives NaN where empyrical gives +-inf (constant returns for
    sharpe, no losing period for sortino, a zero 5th percentile for tail_ratio); a flat
    cumulative log return gives stability NaN where empyrical gives 0. See
    :mod:`stratvector.analytics.ratios`.
    [2] ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2z^3 - 5z) S^2 / 36`` with
    ``z = Phi^-1(0.05)``, ``S`` = skew, ``K`` = excess kurtosis (the keys above); equal to
    parametric_var_95 when ``S = K = 0``. See :func:`~stratvector.analytics.tail.cornish_fisher_var`.
    [3] NaN without a benchmark, with fewer than 2 paired periods, or a constant benchmark.

    Interior NaN returns are dropped, so ``n`` counts observed periods; empyrical's
    ``annual_return`` would count them as 0-return periods (same result when NaN only
    lead the series). VaR figures are one-period losses as fractions of equity.
    """
    ppy = check_periods_per_year(periods_per_year)
    r = clean(returns)
    nan = float("nan")
    if benchmark is None:
        alpha, beta = nan, nan
    else:
        alpha, beta = alpha_beta(returns, benchmark, risk_free, ppy)
    # Shared intermediates, each computed once: moments, the drawdown curve, the tail.
    m = moments(r)
    mdd, mdd_duration = drawdown_stats(r)
    (var_95, var_99), (cvar_95, cvar_99) = historical_var_cvar(r, (0.95, 0.99))
    growth = cagr(r, ppy)
    out = {
        "total_return": total_return(r),
        "cagr": growth,
        "annual_volatility": volatility_from_moments(m, ppy),
        "sharpe": sharpe_from_moments(m, risk_free, ppy),
        "sortino": sortino_ratio(r, 0.0, ppy),
        "calmar": calmar_from_parts(growth, mdd),
        "max_drawdown": mdd,
        "max_drawdown_duration": mdd_duration,
        "var_95": var_95,
        "cvar_95": cvar_95,
        "var_99": var_99,
        "cvar_99": cvar_99,
        "parametric_var_95": parametric_var_from_moments(m, 0.95),
        "cornish_fisher_var_95": cornish_fisher_var_from_moments(m, 0.95),
        "alpha": alpha,
        "beta": beta,
        "omega": omega_ratio(r, risk_free, 0.0, ppy),
        "tail_ratio": tail_ratio(r),
        "stability": stability(r),
        "skew": m.skew,
        "kurtosis": m.kurtosis,
        "best_period": best_period(r),
        "worst_period": worst_period(r),
        "downside_risk": downside_risk(r, 0.0, ppy),
        "avg_return": m.mean,
        "win_rate_periods": win_rate_periods(r),
        "n_periods": float(r.size),
    }
    return {k: float(v) for k, v in out.items()}
