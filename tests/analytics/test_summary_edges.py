"""The summary's contract (keys, docs, inputs) and its behaviour on degenerate data."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from stratvector import analytics as A
from stratvector.errors import StratVectorError

NAN = float("nan")


def test_keys_are_the_documented_constant() -> None:
    s = A.summary(np.array([0.01, -0.02, 0.03]))
    assert tuple(s) == A.SUMMARY_KEYS
    assert all(type(v) is float for v in s.values())
    # the minimum the issue names; the full list is the documented constant itself
    required = {
        "cagr", "annual_volatility", "sharpe", "sortino", "calmar",
        "max_drawdown", "var_95", "cvar_95", "alpha", "beta",
    }  # fmt: skip
    assert required <= set(A.SUMMARY_KEYS)


def test_every_key_has_a_row_in_the_docstring_table() -> None:
    doc = A.summary.__doc__ or ""
    rows = {line.split()[0] for line in doc.splitlines() if line.strip() and line[4:5] != " "}
    missing = [k for k in A.SUMMARY_KEYS if k not in rows]
    assert not missing, f"undocumented summary keys: {missing}"


def _quiet_summary(values: object, **kwargs: object) -> dict[str, float]:
    """summary() with every warning turned into an error (no 'mean of empty slice')."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return A.summary(values, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values",
    [[], np.array([np.nan, np.nan]), pd.Series([], dtype=float)],
    ids=["empty", "all-nan", "empty-series"],
)
def test_empty_input_gives_nan_everywhere(values: object) -> None:
    s = _quiet_summary(values, benchmark=values)
    assert s["n_periods"] == 0
    assert all(math.isnan(v) for k, v in s.items() if k != "n_periods")


def test_single_value() -> None:
    s = _quiet_summary([0.01])
    expected = {
        "total_return": 0.01,
        "cagr": 1.01**252 - 1,
        "max_drawdown": 0.0,
        "max_drawdown_duration": 0.0,
        "var_95": -0.01,
        "cvar_95": -0.01,
        "var_99": -0.01,
        "cvar_99": -0.01,
        "tail_ratio": 1.0,
        "best_period": 0.01,
        "worst_period": 0.01,
        "downside_risk": 0.0,
        "avg_return": 0.01,
        "win_rate_periods": 1.0,
        "n_periods": 1.0,
    }
    for key, value in expected.items():
        assert s[key] == pytest.approx(value, rel=1e-12), key
    undefined = set(A.SUMMARY_KEYS) - set(expected)
    assert all(math.isnan(s[k]) for k in undefined), {k: s[k] for k in undefined}


def test_single_loss_is_an_open_drawdown() -> None:
    s = _quiet_summary([-0.02])
    assert s["max_drawdown"] == pytest.approx(-0.02)
    assert s["max_drawdown_duration"] == 1
    assert s["calmar"] == pytest.approx((0.98**252 - 1) / 0.02)
    assert s["win_rate_periods"] == 0.0


def test_constant_returns() -> None:
    s = _quiet_summary(np.full(50, 0.001))
    assert s["annual_volatility"] == 0.0
    for key in ("sharpe", "sortino", "calmar", "omega", "skew", "kurtosis"):
        assert math.isnan(s[key]), key  # zero dispersion / no losses: undefined
    assert s["max_drawdown"] == 0.0 and s["max_drawdown_duration"] == 0
    for key in ("var_95", "cvar_95", "parametric_var_95", "cornish_fisher_var_95"):
        assert s[key] == pytest.approx(-0.001, rel=1e-12), key
    assert s["tail_ratio"] == pytest.approx(1.0)
    assert s["stability"] == pytest.approx(1.0, rel=1e-9)  # a straight log-equity line
    assert s["cagr"] == pytest.approx(1.001**252 - 1, rel=1e-12)


def test_all_zero_returns() -> None:
    s = _quiet_summary(np.zeros(30))
    assert s["total_return"] == 0 and s["cagr"] == 0 and s["max_drawdown"] == 0
    assert s["var_95"] == 0 and s["downside_risk"] == 0 and s["win_rate_periods"] == 0
    for key in ("sharpe", "sortino", "calmar", "omega", "tail_ratio", "stability", "skew"):
        assert math.isnan(s[key]), key


def test_no_losing_period_gives_nan_ratios_not_inf() -> None:
    s = _quiet_summary([0.01, 0.02, 0.0, 0.03])
    assert math.isnan(s["sortino"]) and math.isnan(s["omega"]) and math.isnan(s["calmar"])
    assert s["sharpe"] > 0 and math.isfinite(s["sharpe"])


def test_constant_benchmark_gives_nan_alpha_beta() -> None:
    s = _quiet_summary([0.01, -0.01, 0.02], benchmark=[0.001, 0.001, 0.001])
    assert math.isnan(s["alpha"]) and math.isnan(s["beta"])


def test_benchmark_by_hand() -> None:
    b = np.array([0.01, -0.02, 0.03, 0.0])
    r = 2.0 * b + 0.001  # beta 2, alpha 0.001 per period
    s = A.summary(r, benchmark=b, periods_per_year=12)
    assert s["beta"] == pytest.approx(2.0, rel=1e-12)
    assert s["alpha"] == pytest.approx(1.001**12 - 1, rel=1e-9)
    assert math.isnan(A.summary(r)["alpha"])


def test_interior_nan_is_dropped_not_counted() -> None:
    with_gap = A.summary(np.array([np.nan, 0.01, np.nan, -0.02, 0.03]))
    without = A.summary(np.array([0.01, -0.02, 0.03]))
    assert with_gap == pytest.approx(without, nan_ok=True)
    assert with_gap["n_periods"] == 3


def test_input_errors_say_what_to_pass() -> None:
    with pytest.raises(StratVectorError, match="3 values but benchmark has 2"):
        A.summary([0.1, 0.2, 0.3], benchmark=[0.1, 0.2])
    with pytest.raises(StratVectorError, match="periods_per_year must be a positive"):
        A.summary([0.1, 0.2], periods_per_year=-1)
    with pytest.raises(StratVectorError, match="1-D"):
        A.summary(np.zeros((3, 2)))
    with pytest.raises(StratVectorError, match="one column"):
        A.summary(pd.DataFrame({"a": [0.1], "b": [0.2]}))
    with pytest.raises(StratVectorError, match="not numeric"):
        A.summary(["x", "y"])


def test_one_column_frame_and_list_are_accepted(real_returns: pd.Series) -> None:
    expected = A.summary(real_returns)
    assert A.summary(real_returns.to_frame()) == pytest.approx(expected, nan_ok=True)
    assert A.summary(list(real_returns)) == pytest.approx(expected, nan_ok=True)


def test_public_functions_agree_with_summary(real_returns: pd.Series) -> None:
    """summary() shares intermediates; the one-metric functions compute on their own."""
    s = A.summary(real_returns, periods_per_year=252)
    singles = {
        "annual_volatility": A.annual_volatility(real_returns),
        "sharpe": A.sharpe_ratio(real_returns),
        "calmar": A.calmar_ratio(real_returns),
        "max_drawdown_duration": A.max_drawdown_duration(real_returns),
        "parametric_var_95": A.parametric_var(real_returns),
        "cornish_fisher_var_95": A.cornish_fisher_var(real_returns),
        "cvar_99": A.conditional_value_at_risk(real_returns, 0.99),
        "best_period": A.best_period(real_returns),
        "win_rate_periods": A.win_rate_periods(real_returns),
    }
    for key, value in singles.items():
        assert s[key] == pytest.approx(value, rel=1e-12), key
