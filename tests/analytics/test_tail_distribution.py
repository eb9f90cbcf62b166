"""VaR/CVaR (historical, Gaussian, Cornish-Fisher) and the distribution moments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from stratvector import analytics as A
from stratvector.errors import StratVectorError

Z95 = -1.6448536269514722  # Phi^-1(0.05)
Z99 = -2.3263478740408408  # Phi^-1(0.01)
PHI = (1.0 + 5.0**0.5) / 2.0


def zero_skew_zero_kurtosis_sample() -> np.ndarray:
    """Ten points with skewness 0 and excess kurtosis 0 exactly (in real arithmetic).

    Values -c, -1, 0 (six times), 1, c: m2 = (2 + 2c^2)/10, m4 = (2 + 2c^4)/10, and
    m4 = 3 m2^2 holds for c^2 = (3 + sqrt 5)/2, i.e. c = the golden ratio.
    """
    base = np.array([-PHI, -1.0, 0, 0, 0, 0, 0, 0, 1.0, PHI])
    return 0.0005 + 0.01 * base


def test_sample_really_has_zero_skew_and_kurtosis() -> None:
    x = zero_skew_zero_kurtosis_sample()
    assert abs(scipy.stats.skew(x)) < 1e-12
    assert abs(scipy.stats.kurtosis(x)) < 1e-12


def test_cornish_fisher_reduces_to_parametric_without_skew_and_kurtosis() -> None:
    x = zero_skew_zero_kurtosis_sample()
    for level in (0.95, 0.99):
        assert A.cornish_fisher_var(x, level) == pytest.approx(
            A.parametric_var(x, level), rel=1e-10
        )
    assert A.cornish_fisher_z(Z95, 0.0, 0.0) == Z95


def test_parametric_var_and_cvar_by_hand() -> None:
    x = np.array([-0.01, 0.01, -0.02, 0.02])  # mean 0
    sigma = np.sqrt((2 * 0.01**2 + 2 * 0.02**2) / 3)  # ddof=1
    assert A.parametric_var(x, 0.95) == pytest.approx(-Z95 * sigma, rel=1e-12)
    assert A.parametric_var(x, 0.99) == pytest.approx(-Z99 * sigma, rel=1e-12)
    density = np.exp(-(Z95**2) / 2) / np.sqrt(2 * np.pi)
    assert A.parametric_cvar(x, 0.95) == pytest.approx(sigma * density / 0.05, rel=1e-12)
    # A positive mean lowers the loss one for one.
    assert A.parametric_var(x + 0.001, 0.95) == pytest.approx(-Z95 * sigma - 0.001, rel=1e-12)


def test_cornish_fisher_formula_with_scipy_moments(real_returns: pd.Series) -> None:
    """The documented formula, evaluated from scipy's skew/kurtosis and numpy's mean/std."""
    r = real_returns.to_numpy()
    s, k = scipy.stats.skew(r), scipy.stats.kurtosis(r)
    mu, sigma = r.mean(), r.std(ddof=1)
    for level, z in ((0.95, Z95), (0.99, Z99)):
        z_cf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
        assert A.cornish_fisher_var(r, level) == pytest.approx(-(mu + z_cf * sigma), rel=1e-9)
        assert A.summary(r)["cornish_fisher_var_95"] == pytest.approx(
            A.cornish_fisher_var(r, 0.95), rel=1e-12
        )


def test_cornish_fisher_sees_fat_left_tail() -> None:
    """Negative skew and fat tails make the 99 % modified VaR exceed the Gaussian one."""
    rng = np.random.default_rng(3)
    x = 0.01 * rng.standard_t(df=3, size=5000) - 0.02 * (rng.random(5000) < 0.02)
    assert A.skew(x) < 0 and A.kurtosis(x) > 3
    assert A.cornish_fisher_var(x, 0.99) > 1.2 * A.parametric_var(x, 0.99)


def test_historical_var_cvar_by_hand() -> None:
    x = np.arange(-10, 11) / 100.0  # 21 values: -0.10 .. 0.10
    # 5th percentile, linear: position 0.05 * 20 = 1 -> -0.09 exactly
    assert A.value_at_risk(x, 0.95) == pytest.approx(0.09, rel=1e-12)
    # k = floor(20 * 0.05) + 1 = 2 lowest: (-0.10 - 0.09) / 2
    assert A.conditional_value_at_risk(x, 0.95) == pytest.approx(0.095, rel=1e-12)
    var, cvar = A.historical_var_cvar(x, (0.95, 0.5))
    np.testing.assert_allclose(var, [0.09, 0.0], atol=1e-15)
    np.testing.assert_allclose(cvar, [0.095, 0.05], rtol=1e-12)


def test_var_is_a_positive_loss_and_cvar_exceeds_it(real_returns: pd.Series) -> None:
    s = A.summary(real_returns)
    for level in ("95", "99"):
        assert 0 < s[f"var_{level}"] < s[f"cvar_{level}"] < 0.5
    assert s["var_99"] > s["var_95"]


@pytest.mark.parametrize("level", [0.0, 1.0, 95, -0.5])
def test_bad_confidence_level_is_rejected(level: float) -> None:
    with pytest.raises(StratVectorError, match="strictly between 0 and 1"):
        A.value_at_risk([0.01, -0.01], level)


def test_skew_and_kurtosis_by_hand() -> None:
    x = np.array([0.0, 0.0, 0.0, 1.0])
    # mean 1/4; deviations -1/4 (x3), 3/4; m2 = 3/16, m3 = 3/32, m4 = 21/256
    assert A.skew(x) == pytest.approx((3 / 32) / (3 / 16) ** 1.5, rel=1e-12)
    assert A.kurtosis(x) == pytest.approx((21 / 256) / (3 / 16) ** 2 - 3, rel=1e-12)
    m = A.moments(x)
    assert m.std == pytest.approx(0.5, rel=1e-12)  # sqrt(3/16 * 4/3)


def test_period_statistics_by_hand() -> None:
    x = np.array([0.02, -0.01, 0.0, np.nan, 0.03])
    assert A.avg_return(x) == pytest.approx(0.01, rel=1e-12)
    assert A.best_period(x) == 0.03
    assert A.worst_period(x) == -0.01
    assert A.win_rate_periods(x) == 0.5  # 0.0 is not a win; the NaN is not a period
