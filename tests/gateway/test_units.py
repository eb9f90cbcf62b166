"""Small pure pieces of the live path: mode and account checks, limit prices, the bar
window, config sections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ib_async import Order, TagValue

from stratvector.config import GatewaySection
from stratvector.gateway import AccountMismatchError, LiveTradingNotConfirmed, ModeDecision
from stratvector.gateway.execution import limit_price
from stratvector.gateway.exits import ExitSpec, exit_price, to_tick
from stratvector.gateway.outgoing import new_order
from stratvector.gateway.safety import check_account, is_paper_account, port_warning, resolve_mode
from stratvector.gateway.window import BarWindow


def test_paper_is_the_default_and_live_needs_every_switch() -> None:
    assert resolve_mode("paper", None, None, None) == ModeDecision("paper", None)
    assert resolve_mode("live", "U1", "paper", None).mode == "paper"  # --paper always wins
    assert resolve_mode("live", "U1234", "live", "U1234") == ModeDecision("live", "U1234")
    for args in [
        ("paper", None, "live", None),
        ("live", None, "live", "U1"),
        ("live", "DU1234", "live", "DU1234"),
        ("live", "U1234", None, "U1234"),
        ("live", "U1234", "live", None),
    ]:
        with pytest.raises(LiveTradingNotConfirmed):
            resolve_mode(*args)


def test_account_check() -> None:
    assert is_paper_account("DU123") and is_paper_account("df9") and not is_paper_account("U1")
    assert check_account(ModeDecision("paper", None), ["DU1"], "h:1") == "DU1"
    assert check_account(ModeDecision("live", "U2"), ["U1", "U2"], "h:1") == "U2"
    with pytest.raises(AccountMismatchError, match="several accounts"):
        check_account(ModeDecision("paper", None), ["DU1", "DU2"], "h:1")
    with pytest.raises(AccountMismatchError, match="live account U1"):
        check_account(ModeDecision("paper", None), ["U1"], "h:1")
    with pytest.raises(AccountMismatchError, match="paper account DU1"):
        check_account(ModeDecision("live", "DU1"), ["DU1"], "h:1")
    with pytest.raises(AccountMismatchError, match="not to the configured account"):
        check_account(ModeDecision("live", "U9"), ["U1"], "h:1")
    assert port_warning("paper", 4001) and port_warning("live", 4002)
    assert port_warning("paper", 4002) is None


def test_limit_price_never_pays_more_than_the_offset() -> None:
    assert limit_price(100.0, "BUY", 10, 0.01) == 100.1
    assert limit_price(100.0, "SELL", 10, 0.01) == 99.9
    assert limit_price(10.003, "BUY", 5, 0.01) == 10.0  # 10.008 floored
    assert limit_price(10.003, "SELL", 5, 0.01) == 10.0  # 9.998 ceiled


def test_bar_window_keeps_the_newest_bars_and_builds_schema_frames() -> None:
    w = BarWindow(5)
    idx = pd.date_range("2024-01-01", periods=12, freq="D", tz="UTC")
    df = pd.DataFrame(
        {c: np.arange(12.0) + k for k, c in enumerate(["open", "high", "low", "close", "volume"])},
        index=idx,
    )
    assert w.extend(df.iloc[:8]) == 8 and len(w) == 5
    assert not w.append(int(idx[3].value), 1, 1, 1, 1, 1)  # not newer: ignored
    for t in idx[8:]:
        assert w.append(int(t.value), 1.0, 2.0, 0.5, 1.5, 10.0)
    f = w.frame()
    assert len(f) == 5 and f.index[-1] == idx[-1] and str(f.index.tz) == "UTC"
    assert list(f.columns) == ["open", "high", "low", "close", "volume"]
    assert f["close"].to_numpy().flags["C_CONTIGUOUS"]
    assert w.close_at(int(idx[-1].value)) == 1.5 and np.isnan(w.close_at(int(idx[0].value)))
    assert len(w.frame(upto=int(idx[9].value))) == 3
    assert w.total == 12


def test_bar_window_last_close_is_the_newest_close_after_every_write() -> None:
    w = BarWindow(4)  # a buffer of 16: compacted on the way
    assert np.isnan(w.last_close)
    idx = pd.date_range("2024-01-01", periods=40, freq="D", tz="UTC")
    closes = np.linspace(10.0, 49.0, 40)
    df = pd.DataFrame(
        {"open": closes, "high": closes, "low": closes, "close": closes, "volume": closes},
        index=idx,
    )
    w.extend(df.iloc[:6])
    assert w.last_close == closes[5] == w.frame()["close"].iloc[-1]
    assert w.extend(df.iloc[:6]) == 0 and w.last_close == closes[5]  # nothing newer
    for k in range(6, 30):
        w.append(int(idx[k].value), 0.0, 0.0, 0.0, float(closes[k]), 0.0)
        assert w.last_close == closes[k] == w.frame()["close"].iloc[-1]
    assert not w.append(int(idx[3].value), 0.0, 0.0, 0.0, -1.0, 0.0)  # older: ignored
    assert w.last_close == closes[29]
    w.extend(df.iloc[25:40])  # more than the capacity at once
    assert w.last_close == closes[39] == w.frame()["close"].iloc[-1]


def test_gateway_section_defaults_and_validation() -> None:
    g = GatewaySection()
    assert (g.mode, g.resolved_port, g.order_type, g.on_unknown_position) == (
        "paper",
        4002,
        "market",
        "halt",
    )
    assert GatewaySection(mode="live").resolved_port == 4001
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        GatewaySection(restart_window="late")
    with pytest.raises(ValueError, match="time zone"):
        GatewaySection(restart_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="not an IB account id"):
        GatewaySection(account="me")


def _spec(quantity: float, **kw: float) -> ExitSpec:
    values = {"stop_loss": 0.02, "trailing_stop": 0.0, "take_profit": 0.04, "estimate": 100.0}
    return ExitSpec(quantity=quantity, **{**values, **kw})  # type: ignore[arg-type]


def test_to_tick_rounds_up_or_down_and_keeps_prices_on_the_tick() -> None:
    assert to_tick(98.123, 0.01, up=True) == 98.13
    assert to_tick(98.123, 0.01, up=False) == 98.12
    assert to_tick(101 * 0.98, 0.01, up=True) == 98.98  # 98.97999999999999: on the tick
    assert to_tick(101 * 0.98, 0.01, up=False) == 98.98
    assert to_tick(100.3, 0.25, up=True) == 100.5 and to_tick(100.3, 0.25, up=False) == 100.25
    assert to_tick(0.123456, 0.0001, up=True) == 0.1235
    assert to_tick(98.123, 0.0, up=True) == 98.123  # no tick known: unchanged
    assert exit_price(98.123, -1.0, 0.01) == 98.13  # a sell exit (closing a long): up
    assert exit_price(98.123, 1.0, 0.01) == 98.12  # a buy exit (covering a short): down


def test_exit_children_are_on_the_tick_in_the_positions_favour() -> None:
    """Closing a long (sell exits): stop and target rounded up. Covering a short (buy
    exits): rounded down. The stop is never looser than the unrounded level and the
    target never worse."""
    long_reduce = _spec(-100.0, entry=100.37, peak=104.91, trailing_stop=0.03)
    stp, _, journaled = long_reduce.order("stop", "r", "DAY", "", tick=0.01)
    assert stp.orderType == "STP" and stp.auxPrice == journaled == 98.37  # 98.3626
    trail, _, _ = long_reduce.order("trail", "r", "DAY", "", tick=0.01)
    assert trail.trailStopPrice == 101.77 and trail.trailingPercent == 3.0  # 101.7627
    lmt, journaled, _ = long_reduce.order("tp", "r", "DAY", "", tick=0.01)
    assert lmt.lmtPrice == journaled == 104.39  # 104.3848
    short_reduce = _spec(100.0, entry=100.37, peak=97.11, trailing_stop=0.03)
    assert short_reduce.order("stop", "r", "DAY", "", 0.01)[0].auxPrice == 102.37  # 102.3774
    assert short_reduce.order("trail", "r", "DAY", "", 0.05)[0].trailStopPrice == 100.0
    assert short_reduce.order("tp", "r", "DAY", "", 0.01)[0].lmtPrice == 96.35  # 96.3552
    opening = _spec(-100.0, estimate=100.37)  # the take-profit at the estimated entry
    assert opening.order("tp", "r", "DAY", "")[0].lmtPrice == 104.39  # default tick 0.01
    stop, _, _ = opening.order("stop", "r", "DAY", "")
    assert stop.orderType == "TRAIL" and stop.trailingPercent == 2.0  # IB prices it


def test_fixed_exit_prices_are_on_the_tick_in_the_positions_favour() -> None:
    long_ = _spec(-100.0)
    stop = long_.fixed("stop", Order(orderType="TRAIL", trailingPercent=2.0), 100.37, 0.01)
    assert stop.orderType == "STP" and stop.auxPrice == 98.37
    assert long_.fixed("tp", Order(orderType="LMT"), 100.37, 0.01).lmtPrice == 104.39
    short = _spec(100.0)
    assert short.fixed("stop", Order(), 100.37, 0.01).auxPrice == 102.37
    assert short.fixed("tp", Order(), 100.37, 0.01).lmtPrice == 96.35
    assert short.fixed("tp", Order(), 100.37, 0.25).lmtPrice == 96.25
    added = _spec(-200.0, old_entry=100.0, old_quantity=100.0)
    assert added.fixed("stop", Order(), 101.0, 0.01).auxPrice == 98.49  # 100.5 x 0.98


def test_a_trailing_stop_never_looser_than_the_stop_loss_replaces_it() -> None:
    """stop_loss with trailing_stop: the backtest exits at the tighter level. The
    stop-loss child is left out when the trailing stop is provably never looser."""
    assert _spec(-100.0, trailing_stop=0.02).legs() == ["trail", "tp"]  # opening, equal
    assert _spec(-100.0, trailing_stop=0.01).legs() == ["trail", "tp"]
    assert _spec(-100.0, trailing_stop=0.03).legs() == ["stop", "trail", "tp"]
    # reducing a long bought at 100: the trail from a peak of 103 is at 99.91 > 98
    assert _spec(-50.0, trailing_stop=0.03, entry=100.0, peak=103.0).legs()[0] == "trail"
    assert _spec(-50.0, trailing_stop=0.03, entry=100.0, peak=100.5).legs()[0] == "stop"
    # reducing a short sold at 100: the trail from a low of 97 is at 99.91 < 102
    assert _spec(50.0, trailing_stop=0.03, entry=100.0, peak=97.0).legs()[0] == "trail"
    assert _spec(50.0, trailing_stop=0.03, entry=100.0, peak=99.5).legs()[0] == "stop"
    # adding: the new entry is known only after the fill; both are kept
    add = _spec(-200.0, trailing_stop=0.01, peak=105.0, old_entry=100.0, old_quantity=100.0)
    assert add.legs() == ["stop", "trail", "tp"]
    assert _spec(-100.0, trailing_stop=0.0).legs() == ["stop", "tp"]


def test_view_at_agrees_with_the_separate_lookups_at_every_time() -> None:
    w = BarWindow(8)
    idx = pd.date_range("2024-01-01", periods=10, freq="2D", tz="UTC")
    df = pd.DataFrame(
        {c: np.arange(10.0) + k for k, c in enumerate(["open", "high", "low", "close", "volume"])},
        index=idx,
    )
    w.extend(df)
    step = 86_400 * 10**9
    times = [int(t.value) for t in idx] + [int(idx[-1].value) + step, int(idx[0].value) - step]
    times += [int(t.value) + step for t in idx]  # the days between bars
    for t in times:
        mark, h, lo, c = w.view_at(t)
        hlc = w.hlc_at(t)
        expect = (np.nan, np.nan, np.nan) if hlc is None else hlc
        np.testing.assert_array_equal([mark, h, lo, c], [w.last_close_upto(t), *expect])
    assert w.view_at(int(idx[-1].value)) == (12.0, 10.0, 11.0, 12.0)  # newest: fast path


def test_new_order_equals_ib_async_orders_constructor() -> None:
    cases = [
        {},
        {"action": "BUY", "totalQuantity": 100.0, "orderType": "MKT", "tif": "DAY"},
        {"action": "SELL", "totalQuantity": 7.0, "orderType": "LMT", "lmtPrice": 10.5},
        {"orderRef": "sv1|s|AAPL|20240102T000000Z", "account": "DU1", "transmit": False},
        {"algoParams": [TagValue("a", "1")], "parentId": 3},
    ]
    for values in cases:
        # ib_async's Order compares by identity: compare what it holds
        assert vars(new_order(**values)) == vars(Order(**values))
    a, b = new_order(), new_order()
    for name in ("algoParams", "conditions", "orderComboLegs", "softDollarTier"):
        assert getattr(a, name) is not getattr(b, name)  # fresh, as the factories give
    a.conditions.append("x")
    assert Order().conditions == [] and b.conditions == []
    with pytest.raises(TypeError, match="lmtPrise"):
        new_order(lmtPrise=1.0)
