"""Trade statistics, exposure and turnover, and the monthly returns table, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stratvector import analytics as A
from stratvector.data import load_csv, sample_path
from stratvector.errors import StratVectorError

# --- trade_stats -------------------------------------------------------------------


def test_trade_stats_by_hand() -> None:
    pnl = np.array([100.0, -50.0, 200.0, 0.0, -150.0, np.nan])
    s = A.trade_stats(pnl)
    assert tuple(s) == A.TRADE_STATS_KEYS
    assert s["n_trades"] == 5  # the NaN is not a trade; the scratch (0) is
    assert s["n_wins"] == 2 and s["n_losses"] == 2
    assert s["win_rate"] == pytest.approx(2 / 5)
    assert s["gross_profit"] == 300.0
    assert s["gross_loss"] == -200.0
    assert s["profit_factor"] == pytest.approx(1.5)
    assert s["expectancy"] == pytest.approx(100.0 / 5)
    assert s["avg_win"] == pytest.approx(150.0)
    assert s["avg_loss"] == pytest.approx(-100.0)
    assert s["payoff_ratio"] == pytest.approx(1.5)
    assert s["largest_win"] == 200.0
    assert s["largest_loss"] == -150.0


def test_trade_stats_with_no_trades() -> None:
    for empty in ([], np.array([np.nan, np.nan])):
        s = A.trade_stats(empty)
        assert s["n_trades"] == 0 and s["n_wins"] == 0 and s["n_losses"] == 0
        assert s["gross_profit"] == 0 and s["gross_loss"] == 0
        undefined = set(A.TRADE_STATS_KEYS) - {
            "n_trades",
            "n_wins",
            "n_losses",
            "gross_profit",
            "gross_loss",
        }
        assert all(math.isnan(s[k]) for k in undefined)


def test_trade_stats_only_winners() -> None:
    s = A.trade_stats([10.0, 30.0])
    assert s["win_rate"] == 1.0
    assert math.isnan(s["profit_factor"])  # no losses: zero denominator
    assert math.isnan(s["payoff_ratio"]) and math.isnan(s["avg_loss"])
    assert s["largest_win"] == 30.0 and math.isnan(s["largest_loss"])
    assert s["expectancy"] == 20.0


# --- exposure and turnover ----------------------------------------------------------


def test_exposure_by_hand() -> None:
    pos = np.array([0.0, 50.0, -100.0, 150.0])  # signed values are taken as absolute
    equity = np.array([100.0, 100.0, 200.0, 100.0])
    assert A.exposure(pos, equity) == pytest.approx((0 + 0.5 + 0.5 + 1.5) / 4)


def test_exposure_sums_symbols_and_skips_bad_periods() -> None:
    pos = np.array([[10.0, -20.0], [np.nan, np.nan], [30.0, 30.0], [5.0, 5.0]])
    equity = np.array([100.0, 100.0, 120.0, 0.0])
    # periods: 30/100, (all NaN: skipped), 60/120, (equity 0: skipped)
    assert A.exposure(pos, equity) == pytest.approx((0.3 + 0.5) / 2)
    assert math.isnan(A.exposure([1.0], [0.0]))


def test_turnover_by_hand() -> None:
    traded = np.array([100.0, 0.0, -100.0, 50.0])  # buys and sells both count
    equity = np.array([100.0, 100.0, 100.0, 100.0])
    # 250 traded over 4 periods with equity 100: 0.625 per period, x 252 per year
    assert A.turnover(traded, equity, 252) == pytest.approx(250 / 100 * 252 / 4)
    # A full buy and full sell once a year (252 days) is a turnover of 2.0.
    year = np.zeros(252)
    year[[0, -1]] = [100.0, 100.0]
    assert A.turnover(year, np.full(252, 100.0), 252) == pytest.approx(2.0)


def test_turnover_nan_handling_and_length_check() -> None:
    traded = np.array([np.nan, 100.0, 100.0])
    equity = np.array([100.0, np.nan, 100.0])
    # period 1 has no equity: dropped; the NaN trade counts as no trade
    assert A.turnover(traded, equity, 12) == pytest.approx(100 / 100 * 12 / 2)
    with pytest.raises(StratVectorError, match="3 periods but equity has 2"):
        A.turnover(traded, equity[:2], 12)
    with pytest.raises(StratVectorError, match="periods_per_year"):
        A.turnover(traded, equity, 0)


# --- monthly_returns ----------------------------------------------------------------


def test_monthly_returns_two_months_by_hand() -> None:
    idx = pd.DatetimeIndex(
        ["2021-01-04", "2021-01-29", "2021-02-01", "2021-02-26", "2022-03-15"], tz="UTC"
    )
    r = pd.Series([0.01, 0.02, -0.01, 0.03, 0.05], index=idx)
    t = A.monthly_returns(r)
    assert list(t.columns) == [*range(1, 13), "year"]
    assert list(t.index) == [2021, 2022]
    jan, feb = 1.01 * 1.02 - 1, 0.99 * 1.03 - 1
    assert t.loc[2021, 1] == pytest.approx(jan, rel=1e-12)
    assert t.loc[2021, 2] == pytest.approx(feb, rel=1e-12)
    assert t.loc[2021, "year"] == pytest.approx((1 + jan) * (1 + feb) - 1, rel=1e-12)
    assert t.loc[2022, 3] == pytest.approx(0.05)
    assert t.loc[2022, "year"] == pytest.approx(0.05)
    assert t.loc[2021, 3:12].isna().all() and t.loc[2022, [1, 2, 4]].isna().all()


def test_monthly_returns_nan_month_and_errors() -> None:
    idx = pd.DatetimeIndex(["2021-01-04", "2021-02-01", "2021-02-02"], tz="UTC")
    t = A.monthly_returns(pd.Series([np.nan, 0.1, 0.1], index=idx))
    assert math.isnan(t.loc[2021, 1])
    assert t.loc[2021, 2] == pytest.approx(0.21)
    assert t.loc[2021, "year"] == pytest.approx(0.21)
    with pytest.raises(StratVectorError, match="DatetimeIndex"):
        A.monthly_returns(pd.Series([0.1, 0.2]))
    with pytest.raises(StratVectorError, match="DatetimeIndex"):
        A.monthly_returns(np.array([0.1]))  # type: ignore[arg-type]
    empty = A.monthly_returns(pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC")))
    assert empty.empty and list(empty.columns) == [*range(1, 13), "year"]


def test_monthly_table_matches_index_prices() -> None:
    """Year and month cells of the S&P 500 equal price ratios read off the closes."""
    close = load_csv(sample_path("SP500"))["close"]
    t = A.monthly_returns(close.pct_change())
    year_end = close.groupby(close.index.year).last()
    assert t.loc[2019, "year"] == pytest.approx(year_end[2019] / year_end[2018] - 1, rel=1e-10)
    assert t.loc[2008, "year"] == pytest.approx(year_end[2008] / year_end[2007] - 1, rel=1e-10)
    month_end = close.groupby([close.index.year, close.index.month]).last()
    assert t.loc[2020, 3] == pytest.approx(
        month_end[(2020, 3)] / month_end[(2020, 2)] - 1, rel=1e-10
    )
    assert t.loc[2020, 3] < -0.12  # the COVID crash month
