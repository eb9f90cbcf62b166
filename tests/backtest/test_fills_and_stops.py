"""Fill timing, sizing and each protective exit on hand-built bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratvector.backtest import BacktestSettings, BpsSlippage, IBKRFixed, NoCommission, simulate
from stratvector.backtest.fills import limit_fill_nb, stop_fill_nb
from tests.backtest.helpers import FixedTargets


def _bars(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="D", tz="UTC", name="time")
    o, h, lo, c = zip(*rows, strict=True)
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1e6}, index=idx)


def _run(bars, targets, **kw):
    tgt = pd.Series(targets, index=bars.index, dtype=float)
    kw.setdefault("commission", NoCommission())
    return simulate(
        FixedTargets({"X": (bars, tgt)}), {"X": bars}, BacktestSettings(init_cash=10_000.0, **kw)
    )


def test_stop_and_limit_fill_prices():
    # sell stop at 95: bar trades through it -> the stop; gaps below -> the open
    assert stop_fill_nb(-1.0, 95.0, 100.0, 101.0, 94.0) == 95.0
    assert stop_fill_nb(-1.0, 95.0, 93.0, 96.0, 92.0) == 93.0
    assert np.isnan(stop_fill_nb(-1.0, 95.0, 100.0, 101.0, 95.5))
    # buy stop at 105 (short protection)
    assert stop_fill_nb(1.0, 105.0, 100.0, 106.0, 99.0) == 105.0
    assert stop_fill_nb(1.0, 105.0, 107.0, 108.0, 106.0) == 107.0
    # sell limit (take-profit) at 110: touched -> the limit; opens above -> the open
    assert limit_fill_nb(-1.0, 110.0, 100.0, 111.0, 99.0) == 110.0
    assert limit_fill_nb(-1.0, 110.0, 112.0, 113.0, 111.0) == 112.0
    assert np.isnan(limit_fill_nb(-1.0, 110.0, 100.0, 109.0, 99.0))
    assert limit_fill_nb(1.0, 90.0, 100.0, 101.0, 89.0) == 90.0


def test_next_open_fill_and_whole_share_sizing_at_the_signal_close():
    bars = _bars(
        [(10, 11, 9, 10), (10.5, 11, 10, 10.8), (11, 12, 10.5, 11.5), (11.2, 11.4, 11, 11.3)]
    )
    r = _run(bars, [1, 1, 1, 0])
    o = r.orders
    # decided at bar 0's close (10.0): floor(10_000 / 10.0) = 1000 shares, filled at bar 1's open
    assert o["signal_time"].iloc[0] == bars.index[0] and o["time"].iloc[0] == bars.index[1]
    # the cap uses the close the decision saw; the open gapped up, so cash dips below zero
    assert o["quantity"].iloc[0] == 1000
    assert o["price"].iloc[0] == 10.5
    assert r.cash[1] == pytest.approx(10_000 - 1000 * 10.5)
    # exit decided at bar 3's close: no bar 4, so nothing fills
    assert len(o) == 1
    assert r.equity.iloc[-1] == pytest.approx(10_000 - 1000 * 10.5 + 1000 * 11.3)


def test_commission_and_slippage_in_the_fill():
    bars = _bars(
        [(100, 101, 99, 100), (100, 102, 99, 101), (101, 103, 100, 102), (102, 103, 101, 102)]
    )
    r = _run(bars, [0.5, 0.5, 0, 0], commission=IBKRFixed(), slippage=BpsSlippage(10))
    buy, sell = r.orders.iloc[0], r.orders.iloc[1]
    # 0.5 * 10_000 / 100 = 50 shares at 100 * 1.001; commission max(50 * 0.005, 1) = 1
    assert (buy["quantity"], buy["price"], buy["commission"]) == (50, pytest.approx(100.1), 1.0)
    assert (sell["quantity"], sell["price"], sell["commission"]) == (
        -50,
        pytest.approx(101.898),
        1.0,
    )
    assert buy["slippage"] == pytest.approx(50 * 0.1)
    assert r.final_equity == pytest.approx(10_000 - 50 * 100.1 - 1 + 50 * 101.898 - 1)


def test_stop_loss_at_stop_price_then_flat_until_target_changes():
    bars = _bars(
        [
            (100, 100, 100, 100),
            (100, 101, 99, 100),
            (99, 100, 94, 96),
            (96, 99, 95, 98),
            (98, 99, 97, 98),
        ]
    )
    r = _run(bars, [1, 1, 1, 1, 1], stop_loss=0.05)
    o = r.orders
    assert list(o["reason"]) == ["signal", "stop_loss"]
    assert o["price"].iloc[1] == pytest.approx(95.0)  # entry 100 * (1 - 5 %)
    assert o["time"].iloc[1] == bars.index[2]
    assert r.positions["X"].iloc[-1] == 0  # target unchanged: no re-entry


def test_stop_loss_gap_fills_at_open():
    bars = _bars([(100, 100, 100, 100), (100, 101, 99, 100), (90, 92, 89, 91)])
    r = _run(bars, [1, 1, 1], stop_loss=0.05)
    assert r.orders["price"].iloc[1] == 90.0


def test_take_profit_and_trailing_stop():
    bars = _bars([(100, 100, 100, 100), (100, 101, 99, 100), (101, 112, 100, 111)])
    r = _run(bars, [1, 1, 1], take_profit=0.10)
    assert r.orders["reason"].iloc[1] == "take_profit" and r.orders["price"].iloc[
        1
    ] == pytest.approx(110.0)
    # trailing 10 %: entry 100, peak rises to 120 -> stop 108 hit on bar 3
    bars = _bars(
        [(100, 100, 100, 100), (100, 101, 99, 100), (101, 120, 100, 118), (117, 118, 107, 108)]
    )
    r = _run(bars, [1, 1, 1, 1], trailing_stop=0.10)
    assert r.orders["reason"].iloc[1] == "trailing_stop"
    assert r.orders["price"].iloc[1] == pytest.approx(108.0)


def test_short_stop_loss_mirrors():
    bars = _bars([(100, 100, 100, 100), (100, 101, 99, 100), (101, 106, 100, 104)])
    r = _run(bars, [-1, -1, -1], stop_loss=0.05)
    assert r.orders["quantity"].iloc[0] < 0
    assert r.orders["reason"].iloc[1] == "stop_loss" and r.orders["price"].iloc[1] == pytest.approx(
        105.0
    )


def test_max_drawdown_halts_and_flattens():
    bars = _bars(
        [
            (100, 100, 100, 100),
            (100, 100, 80, 80),
            (80, 81, 79, 80),
            (80, 200, 80, 200),
            (200, 200, 200, 200),
        ]
    )
    r = _run(bars, [1, 1, 1, 1, 0.5], max_drawdown=0.1)
    assert r.halted_at == bars.index[1]
    assert list(r.orders["reason"]) == ["signal", "halt"]
    assert r.positions["X"].iloc[-1] == 0


def test_rebalance_band_trades_on_drift_only_past_the_band():
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (130, 130, 130, 130), (130, 130, 130, 130)]
    bars = _bars(rows)
    none = _run(bars, [0.5, 0.5, 0.5, 0.5], lot_size=0.0)
    banded = _run(bars, [0.5, 0.5, 0.5, 0.5], lot_size=0.0, rebalance_band=0.05)
    assert none.n_orders == 1
    # at bar 2 the weight is 0.5 * 1.3 / 1.15 = 0.565 > 0.5 + 0.05: sell back to 0.5
    assert banded.n_orders == 2 and banded.orders["quantity"].iloc[1] < 0


def test_trade_table_splits_a_flip_and_marks_the_open_trade():
    rows = [
        (100, 100, 100, 100),
        (100, 100, 100, 100),
        (110, 110, 110, 110),
        (120, 120, 120, 120),
        (130, 130, 130, 130),
    ]
    bars = _bars(rows)
    r = _run(bars, [0.5, -0.5, -0.5, -0.5, -0.5], lot_size=1.0)
    t = r.trades
    # bar 0's close: 0.5 * 10_000 / 100 = 50 shares, bought at bar 1's open (100); bar 1's close:
    # -0.5 -> -50, so one order of -100 at bar 2's open (110) closes the long and opens a short
    assert list(t["direction"]) == ["long", "short"]
    first, second = t.iloc[0], t.iloc[1]
    assert first["quantity"] == 50 and first["pnl"] == pytest.approx(50 * 10)
    assert first["exit_reason"] == "signal" and not first["is_open"]
    assert second["is_open"] and pd.isna(second["exit_time"])
    assert second["exit_price"] == 130.0
    assert second["pnl"] == pytest.approx(-second["quantity"] * (130 - 110))
    assert t["pnl"].sum() == pytest.approx(r.final_equity - 10_000.0)
