"""Each commission and slippage model on hand-computed cases."""

from __future__ import annotations

import pytest

from stratvector.backtest.costs import (
    BpsSlippage,
    HalfSpreadSlippage,
    IBKRFixed,
    IBKRTiered,
    NoCommission,
    NoSlippage,
    PercentCommission,
    PerOrderCommission,
    SqrtImpactSlippage,
    commission,
    slipped_price,
)


@pytest.mark.parametrize(
    ("qty", "price", "expected"),
    [
        (100, 50.0, 1.00),  # 100 * 0.005 = 0.50 -> minimum USD 1.00
        (1000, 50.0, 5.00),  # 1000 * 0.005
        (10, 5.0, 0.50),  # minimum 1.00 exceeds 1 % of USD 50 -> capped at 0.50
        (10_000, 0.50, 50.0),  # 10_000 * 0.005 = 50 = 1 % of 5_000: both limits agree
        (20_000, 0.40, 80.0),  # 100 > 1 % of 8_000 = 80
        (-1000, 50.0, 5.00),  # the sign of the quantity does not matter
    ],
)
def test_ibkr_fixed(qty, price, expected):
    assert commission(IBKRFixed(), qty, price) == pytest.approx(expected, abs=1e-12)


def test_ibkr_tiered_by_month_volume_and_sales_fees():
    m = IBKRTiered()
    # buy 1000 @ 50, first tier: 1000 * 0.0035 = 3.50 (> 0.35 min, < 500 max)
    # + clearing/exchange 1000 * 0.0005 = 0.50 + pass-through 3.50 * 0.000175
    assert commission(m, 1000, 50.0) == pytest.approx(3.50 + 0.50 + 3.50 * 0.000175, abs=1e-12)
    # same order after 1M shares this month: 1000 * 0.002 = 2.00
    assert commission(m, 1000, 50.0, month_volume=1_000_000) == pytest.approx(
        2.00 + 0.50 + 2.00 * 0.000175, abs=1e-12
    )
    # above 100M shares: 1000 * 0.0005 = 0.50
    assert commission(m, 1000, 50.0, month_volume=2e8) == pytest.approx(
        0.50 + 0.50 + 0.50 * 0.000175
    )
    # a sale adds SEC fee 50_000 * 0.0000278 = 1.39 and TAF 1000 * 0.000166 = 0.166
    buy = commission(m, 1000, 50.0)
    assert commission(m, 1000, 50.0, is_sell=True) == pytest.approx(buy + 1.39 + 0.166, abs=1e-12)
    # TAF is capped at 8.30: 100_000 shares * 0.000166 = 16.6 -> 8.30
    big = commission(m, 100_000, 10.0, is_sell=True) - commission(m, 100_000, 10.0)
    assert big == pytest.approx(1_000_000 * 0.0000278 + 8.30, abs=1e-9)
    # minimum 0.35: 10 shares * 0.0035 = 0.035 -> 0.35
    assert commission(m, 10, 100.0) == pytest.approx(0.35 + 10 * 0.0005 + 0.35 * 0.000175)


def test_percent_per_order_none():
    assert commission(PercentCommission(0.001), 200, 25.0) == pytest.approx(5.0)
    assert commission(PerOrderCommission(2.5), 1, 1000.0) == 2.5
    assert commission(PerOrderCommission(2.5), 0, 1000.0) == 0.0  # no fill, no fee
    assert commission(NoCommission(), 1000, 10.0) == 0.0


def test_slippage_models():
    assert slipped_price(BpsSlippage(10), 100.0, 5, +1) == pytest.approx(100.10)
    assert slipped_price(BpsSlippage(10), 100.0, 5, -1) == pytest.approx(99.90)
    assert slipped_price(HalfSpreadSlippage(20), 50.0, 5, +1) == pytest.approx(50.05)
    assert slipped_price(HalfSpreadSlippage(20), 50.0, 5, -1) == pytest.approx(49.95)
    assert slipped_price(NoSlippage(), 50.0, 5, -1) == 50.0
    # impact = 0.5 * 0.02 * sqrt(10_000 / 1_000_000) = 0.001
    m = SqrtImpactSlippage(k=0.5, max_impact=0.05)
    assert slipped_price(m, 100.0, 10_000, +1, sigma=0.02, adv=1e6) == pytest.approx(100.1)
    assert slipped_price(m, 100.0, 10_000, -1, sigma=0.02, adv=1e6) == pytest.approx(99.9)
    # capped at max_impact: sqrt(1e8 / 1e6) * 0.01 = 0.1 -> 0.05
    assert slipped_price(m, 100.0, 1e8, +1, sigma=0.02, adv=1e6) == pytest.approx(105.0)
    # no volume history: no impact (documented)
    assert slipped_price(m, 100.0, 1e8, +1, sigma=0.02, adv=0.0) == 100.0
