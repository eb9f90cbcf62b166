"""Every empyrical-covered metric equals empyrical on real daily data (rtol 1e-9).

Data: close-to-close simple returns of AAPL and NVDA (2013-2023, 2,698 days) and the
S&P 500 index (1990-2022, 8,312 days); AAPL against the S&P 500 on common dates for
alpha and beta. empyrical (empyrical-reloaded) is the oracle; scipy (which empyrical
requires) for skew and kurtosis.
"""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from stratvector import analytics as A

RTOL = 1e-9


def close(actual: float, expected: float) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=0)


# (our function, empyrical function), both called as f(returns_array, ppy)
SCALAR_CASES = {
    "total_return": (lambda r, p: A.total_return(r), lambda r, p: ep.cum_returns_final(r)),
    "cagr": (A.cagr, lambda r, p: ep.annual_return(r, annualization=p)),
    "annual_volatility": (
        A.annual_volatility,
        lambda r, p: ep.annual_volatility(r, annualization=p),
    ),
    "sharpe": (
        lambda r, p: A.sharpe_ratio(r, 0.0, p),
        lambda r, p: ep.sharpe_ratio(r, annualization=p),
    ),
    "sortino": (
        lambda r, p: A.sortino_ratio(r, 0.0, p),
        lambda r, p: ep.sortino_ratio(r, annualization=p),
    ),
    "downside_risk": (
        lambda r, p: A.downside_risk(r, 0.0, p),
        lambda r, p: ep.downside_risk(r, annualization=p),
    ),
    "calmar": (A.calmar_ratio, lambda r, p: ep.calmar_ratio(r, annualization=p)),
    "max_drawdown": (lambda r, p: A.max_drawdown(r), lambda r, p: ep.max_drawdown(r)),
    "omega": (
        lambda r, p: A.omega_ratio(r, 0.0, 0.0, p),
        lambda r, p: ep.omega_ratio(r, annualization=p),
    ),
    "tail_ratio": (lambda r, p: A.tail_ratio(r), lambda r, p: ep.tail_ratio(r)),
    "stability": (lambda r, p: A.stability(r), lambda r, p: ep.stability_of_timeseries(r)),
    "var_95": (
        lambda r, p: A.value_at_risk(r, 0.95),
        lambda r, p: -ep.value_at_risk(r, cutoff=0.05),
    ),
    "var_99": (
        lambda r, p: A.value_at_risk(r, 0.99),
        lambda r, p: -ep.value_at_risk(r, cutoff=0.01),
    ),
    "cvar_95": (
        lambda r, p: A.conditional_value_at_risk(r, 0.95),
        lambda r, p: -ep.conditional_value_at_risk(r, cutoff=0.05),
    ),
    "cvar_99": (
        lambda r, p: A.conditional_value_at_risk(r, 0.99),
        lambda r, p: -ep.conditional_value_at_risk(r, cutoff=0.01),
    ),
    "skew": (lambda r, p: A.skew(r), lambda r, p: scipy.stats.skew(r)),
    "kurtosis": (lambda r, p: A.kurtosis(r), lambda r, p: scipy.stats.kurtosis(r)),
}


@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
@pytest.mark.parametrize("ppy", [252, 52, 1638.0])
def test_scalar_metric_matches_empyrical(name: str, ppy: float, real_returns: pd.Series) -> None:
    ours, theirs = SCALAR_CASES[name]
    r = real_returns.to_numpy()
    expected = float(theirs(r, ppy))
    assert np.isfinite(expected)
    close(ours(r, ppy), expected)


@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
def test_summary_matches_empyrical(name: str, real_returns: pd.Series) -> None:
    """The summary (which shares intermediates between keys) gives the same numbers."""
    _, theirs = SCALAR_CASES[name]
    got = A.summary(real_returns, periods_per_year=252)
    close(got[name], float(theirs(real_returns.to_numpy(), 252)))


def test_risk_free_rate_matches_empyrical(real_returns: pd.Series) -> None:
    r = real_returns.to_numpy()
    rf = 0.0001  # per period
    close(A.sharpe_ratio(r, rf, 252), ep.sharpe_ratio(r, risk_free=rf))
    close(A.omega_ratio(r, rf, 0.0, 252), ep.omega_ratio(r, risk_free=rf))
    s = A.summary(r, risk_free=rf)
    close(s["sharpe"], ep.sharpe_ratio(r, risk_free=rf))
    close(s["omega"], ep.omega_ratio(r, risk_free=rf))
    # The risk-free rate really moves the Sharpe ratio (guards against it being ignored).
    assert abs(s["sharpe"] - A.sharpe_ratio(r)) > 0.05


def test_sortino_target_and_omega_required_return_match_empyrical(
    real_returns: pd.Series,
) -> None:
    r = real_returns.to_numpy()
    close(A.sortino_ratio(r, 0.0005, 252), ep.sortino_ratio(r, required_return=0.0005))
    close(A.downside_risk(r, 0.0005, 252), ep.downside_risk(r, required_return=0.0005))
    close(A.omega_ratio(r, 0.0, 0.08, 252), ep.omega_ratio(r, required_return=0.08))


@pytest.mark.parametrize("level", [0.9, 0.975, 0.995])
def test_other_var_levels_match_empyrical(level: float, real_returns: pd.Series) -> None:
    r = real_returns.to_numpy()
    cutoff = round(1 - level, 12)
    close(A.value_at_risk(r, level), -ep.value_at_risk(r, cutoff=cutoff))
    close(A.conditional_value_at_risk(r, level), -ep.conditional_value_at_risk(r, cutoff=cutoff))


def test_cvar_tail_count_at_exact_boundary() -> None:
    """n - 1 = 10 with level 0.9: 1 - 0.9 is 0.0999..98 in floats, the tail holds 2."""
    r = np.linspace(-0.05, 0.05, 11)
    close(A.conditional_value_at_risk(r, 0.9), -ep.conditional_value_at_risk(r, cutoff=0.1))
    close(A.conditional_value_at_risk(r, 0.9), -(r[0] + r[1]) / 2)


@pytest.mark.parametrize("risk_free", [0.0, 0.0001])
def test_alpha_beta_match_empyrical(
    risk_free: float, aapl_vs_sp500: tuple[pd.Series, pd.Series]
) -> None:
    aapl, spx = aapl_vs_sp500
    assert len(aapl) > 2000
    exp_alpha, exp_beta = ep.alpha_beta(aapl, spx, risk_free=risk_free)
    got_alpha, got_beta = A.alpha_beta(aapl.to_numpy(), spx.to_numpy(), risk_free)
    close(got_alpha, exp_alpha)
    close(got_beta, exp_beta)
    close(A.alpha(aapl, spx, risk_free), exp_alpha)
    close(A.beta(aapl, spx, risk_free), exp_beta)


def test_summary_aligns_series_on_common_dates(
    raw_returns: dict[str, pd.Series], aapl_vs_sp500: tuple[pd.Series, pd.Series]
) -> None:
    """Unaligned Series (different date ranges, leading NaN) are joined on the index."""
    aapl_raw, spx_raw = raw_returns["AAPL"], raw_returns["SP500"]
    assert not aapl_raw.index.equals(spx_raw.index)
    aapl, spx = aapl_vs_sp500
    exp_alpha, exp_beta = ep.alpha_beta(aapl, spx)
    got = A.summary(aapl_raw, benchmark=spx_raw)
    close(got["alpha"], exp_alpha)
    close(got["beta"], exp_beta)
    # Non-benchmark keys use all of AAPL, not only the dates the index also has.
    close(got["n_periods"], float(aapl_raw.notna().sum()))
    close(got["sharpe"], ep.sharpe_ratio(aapl_raw.dropna().to_numpy()))


def test_alignment_without_sorted_index(aapl_vs_sp500: tuple[pd.Series, pd.Series]) -> None:
    """A shuffled benchmark index takes the general join path and gives the same beta."""
    aapl, spx = aapl_vs_sp500
    shuffled = spx.sample(frac=1.0, random_state=7)
    close(A.beta(aapl, shuffled), ep.beta(aapl, spx))


def test_cumulative_and_drawdown_series_match_empyrical(real_returns: pd.Series) -> None:
    np.testing.assert_allclose(
        A.cumulative_returns(real_returns), ep.cum_returns(real_returns), rtol=RTOL, atol=1e-12
    )
    ours = A.drawdown_series(real_returns)
    assert isinstance(ours, pd.Series)
    assert ours.index.equals(real_returns.index)
    np.testing.assert_allclose(
        ours.to_numpy(), ep.stats.drawdown_series(real_returns).to_numpy(), rtol=RTOL, atol=1e-12
    )


def test_leading_nan_is_dropped(raw_returns: dict[str, pd.Series]) -> None:
    raw = raw_returns["NVDA"]
    assert np.isnan(raw.iloc[0])
    clean = raw.dropna().to_numpy()
    got = A.summary(raw)
    close(got["sharpe"], ep.sharpe_ratio(clean))
    close(got["cagr"], ep.annual_return(clean))
    close(got["var_95"], -ep.value_at_risk(clean))
    assert got["n_periods"] == len(raw) - 1
