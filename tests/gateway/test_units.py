"""Small pure pieces of the live path: mode and account checks, limit prices, the bar
window, config sections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratvector.config import GatewaySection
from stratvector.gateway import AccountMismatchError, LiveTradingNotConfirmed, ModeDecision
from stratvector.gateway.execution import limit_price
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
