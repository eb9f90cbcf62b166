"""Equity -> returns, cumulative growth, drawdown series and durations, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratvector import analytics as A


def test_returns_from_equity_array() -> None:
    got = A.returns_from_equity(np.array([100.0, 110.0, 99.0]))
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], [0.1, -0.1])


def test_returns_from_equity_with_initial_capital_and_series() -> None:
    idx = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    eq = pd.Series([105.0, 110.25, 99.225], index=idx, name="equity")
    got = A.returns_from_equity(eq, initial=100.0)
    assert isinstance(got, pd.Series)
    assert got.index.equals(idx)
    np.testing.assert_allclose(got.to_numpy(), [0.05, 0.05, -0.1])
    # And the metrics agree with the equity curve: total return = last / initial - 1.
    assert A.total_return(got) == pytest.approx(99.225 / 100.0 - 1.0, rel=1e-12)


def test_cumulative_returns_counts_nan_as_flat() -> None:
    got = A.cumulative_returns(np.array([0.1, np.nan, -0.5]))
    np.testing.assert_allclose(got, [0.1, 0.1, -0.45])


def test_cagr_by_hand() -> None:
    # 504 days doubling the money: 2 ** (252 / 504) - 1 = sqrt(2) - 1 per year.
    r = np.full(504, 2.0 ** (1 / 504) - 1.0)
    assert A.cagr(r) == pytest.approx(np.sqrt(2.0) - 1.0, rel=1e-12)
    assert A.total_return(r) == pytest.approx(1.0, rel=1e-12)


def test_drawdown_series_from_returns_anchored_at_one() -> None:
    got = A.drawdown_series(np.array([-0.1, 0.05, 0.2, -0.5]))
    # equity 0.9, 0.945, 1.134, 0.567 against peaks 1, 1, 1.134, 1.134
    np.testing.assert_allclose(got, [-0.1, -0.055, 0.0, -0.5], atol=1e-15)


def test_drawdown_series_from_equity() -> None:
    eq = pd.Series([100.0, 120.0, np.nan, 90.0, 130.0, 117.0])
    got = A.drawdown_series(equity=eq)
    assert isinstance(got, pd.Series)
    np.testing.assert_allclose(
        got.to_numpy(), [0.0, 0.0, np.nan, -0.25, 0.0, -0.1], equal_nan=True, atol=1e-15
    )


@pytest.mark.parametrize(
    ("kwargs", "args"), [({}, ()), ({"equity": [1.0]}, ([0.1],))], ids=["neither", "both"]
)
def test_drawdown_series_needs_exactly_one_input(kwargs: dict, args: tuple) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        A.drawdown_series(*args, **kwargs)


def test_max_drawdown_by_hand() -> None:
    assert A.max_drawdown([0.1, -0.2, 0.05, -0.1]) == pytest.approx(
        1.1 * 0.8 * 1.05 * 0.9 / 1.1 - 1.0, rel=1e-12
    )
    assert A.max_drawdown([0.01, 0.02]) == 0.0


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ([-0.1, 0.2], 2),  # peak at the anchor, recovered at point 2
        ([-0.1], 1),  # open drawdown: anchor to the last point
        ([0.1, 0.1], 0),  # never underwater
        ([0.1, -0.1, 0.05, 0.1], 3),  # peak at point 1, recovered at 4
        ([0.1, -0.5, 0.1, -0.1], 3),  # peak at 1, still open at 4
        ([-0.1, 0.2, -0.1, -0.1, 0.5], 3),  # runs of 2 and 3: the longest wins
        ([-0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.5, -0.01], 9),  # recovered at 9
        ([0.1, -0.1, 0.0, 0.0, 0.0], 4),  # flat periods underwater still count
        ([-0.1, 0.1 / 0.9, -0.2], 2),  # exact recovery to the peak ends the first run
    ],
)
def test_max_drawdown_duration_by_hand(returns: list[float], expected: int) -> None:
    assert A.max_drawdown_duration(np.array(returns)) == expected


def test_max_drawdown_duration_real_data_matches_a_plain_loop(real_returns: pd.Series) -> None:
    """The vectorized runs agree with a straightforward scan of the equity curve."""
    r = real_returns.to_numpy()
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    best, peak_value, peak_at = 0, equity[0], 0
    for i, e in enumerate(equity):
        if e < peak_value:  # underwater: the drawdown has lasted i - peak_at so far
            best = max(best, i - peak_at)
        else:  # at or above the peak: a run that was underwater recovers here
            if i - peak_at > 1:
                best = max(best, i - peak_at)
            peak_value, peak_at = e, i
    got = A.max_drawdown_duration(r)
    assert got == best
    assert got > 100  # every one of these series has a long drawdown
