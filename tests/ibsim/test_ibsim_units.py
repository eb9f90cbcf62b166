"""Unit tests without sockets: field encoding, framing, parsers, pacing, layouts."""

from __future__ import annotations

import math

import pytest

from stratvector.ibsim import PacingLimits
from stratvector.ibsim import messages as m
from stratvector.ibsim.faults import PacingGuard
from stratvector.ibsim.market import BarStore, parse_ib_bar_size, parse_ib_timestamp
from stratvector.ibsim.protocol import (
    UNSET_DOUBLE,
    UNSET_INTEGER,
    FieldReader,
    ProtocolError,
    encode_frame,
    format_field,
    parse_version_range,
    split_fields,
)


def test_field_encoding_follows_tws():
    import numpy as np

    assert format_field(True) == "1" and format_field(False) == "0"
    assert format_field(100) == "100" and format_field(100.0) == "100"
    assert format_field(np.float64(19.5)) == "19.5" and format_field(np.int64(7)) == "7"
    assert format_field(np.bool_(True)) == "1"
    assert format_field(None) == "" and format_field(UNSET_DOUBLE) == ""
    assert format_field(UNSET_INTEGER) == "" and format_field(math.nan) == ""
    x = 19.928571701049805
    assert float(format_field(x)) == x


def test_framing_round_trip_and_malformed_bodies():
    frame = encode_frame([49, 1, "x"])
    assert frame[:4] == len(frame[4:]).to_bytes(4, "big")
    assert split_fields(frame[4:]) == ["49", "1", "x"]
    with pytest.raises(ProtocolError, match="empty"):
        split_fields(b"")
    with pytest.raises(ProtocolError, match="terminator"):
        split_fields(b"49\x001")


def test_version_range_parsing():
    assert parse_version_range(b"v157..178") == (157, 178, "")
    assert parse_version_range(b"v100..178 +PACEAPI") == (100, 178, "+PACEAPI")
    assert parse_version_range(b"v176") == (176, 176, "")
    for bad in (b"157..178", b"vx..y", b"v178..157"):
        with pytest.raises(ProtocolError):
            parse_version_range(bad)


def test_field_reader_names_the_problem():
    r = FieldReader(["3", "abc", "", "1e309", "Infinite"])
    assert r.int("id") == 3
    with pytest.raises(ProtocolError, match=r"field 1 \(orderId\)"):
        r.int("orderId")
    assert r.float("lmt") is None
    assert r.float("big") == math.inf
    assert r.float("inf") == math.inf
    with pytest.raises(ProtocolError, match="missing field 5"):
        r.str("more")


def test_pacing_guard_at_ib_defaults_with_a_fake_clock():
    now = [0.0]
    guard = PacingGuard(PacingLimits(), clock=lambda: now[0])
    assert guard.check("A", ("A", 1)) == ""
    assert "identical" in guard.check("A", ("A", 1))
    now[0] = 15.0
    assert guard.check("A", ("A", 1)) == ""  # 15 s later the same request is fine
    for i in range(4):
        assert guard.check("A", ("A", "d", i)) == ""
    assert "6 or more" in guard.check("A", ("A", "d", 99))  # the 6th within 2 s
    now[0] = 17.5
    assert guard.check("A", ("A", "d", 99)) == ""
    # 60 per 10 minutes across contracts
    guard = PacingGuard(PacingLimits(), clock=lambda: now[0])
    for i in range(60):
        now[0] = 100.0 + i
        assert guard.check(f"C{i}", i) == ""
    assert "60 requests" in guard.check("X", "x")
    now[0] = 700.0  # the first request of the window has aged out
    assert guard.check("X", "x") == ""


def test_fixed_layouts_have_the_field_counts_ib_async_unpacks(syn_dir):
    store = BarStore.load(syn_dir)
    inst = store.by_symbol("SYN")
    from stratvector.ibsim.account import Account

    acct = Account("DU1", 1000.0)
    acct.apply_fill(inst, 1.0, 10, 100.0, 1.0, inst.time(1))
    view = acct.position(inst)
    assert len(m.position("DU1", view)) == 16
    assert len(m.portfolio_value("DU1", view)) == 20
    assert len(m.tick_price(1, 4, 1.0, 1.0)) == 7
    assert len(m.error(178, 1, 200, "x")) == 6 and len(m.error(165, 1, 200, "x")) == 5
    assert m.contract_data(178, 1, inst)[1] == 1  # no version field from 164


def test_bar_size_and_time_parsing():
    assert parse_ib_bar_size("1 day").seconds == 86400
    assert parse_ib_bar_size("5 mins").seconds == 300
    assert parse_ib_bar_size("1 month").months == 1
    assert (
        parse_ib_timestamp("20240105 09:30:00 US/Eastern").isoformat()
        == "2024-01-05T14:30:00+00:00"
    )
    assert parse_ib_timestamp("20240105-09:30:00").isoformat() == "2024-01-05T09:30:00+00:00"
    for bad in ("7 fortnights", "0 days", "99999 days"):
        with pytest.raises(Exception, match="bar size"):
            parse_ib_bar_size(bad)


def test_account_flip_splits_the_commission_and_realizes_the_closed_part(syn_dir):
    from stratvector.ibsim.account import Account

    inst = BarStore.load(syn_dir).by_symbol("SYN")
    acct = Account("DU1", 1_000_000.0)
    t = inst.time(1)
    assert acct.apply_fill(inst, 1.0, 100, 10.0, 1.0, t) is None  # opening only
    realized = acct.apply_fill(inst, -1.0, 150, 12.0, 1.5, t)
    assert realized == pytest.approx((12.0 - 10.01) * 100 - 1.0)
    pos = acct.position(inst)
    assert pos.qty == -50
    assert pos.avg_cost == pytest.approx((12.0 * 50 - 0.5) / 50)  # a short's cost net of fees
    assert acct.cash == pytest.approx(1_000_000 - 1001.0 + 1800.0 - 1.5)
    assert acct.month_volume(t) == 250


def test_monthly_and_weekly_aggregation_labels(syn_dir):
    from stratvector.ibsim.market import aggregate

    bars = BarStore.load(syn_dir).by_symbol("SYN").bars
    month = aggregate(bars, parse_ib_bar_size("1 month"))
    assert len(month) == 1 and month.index[0] == bars.index[0]
    assert month.high.iloc[0] == bars.high.max() and month.close.iloc[0] == bars.close.iloc[-1]
    week = aggregate(bars, parse_ib_bar_size("1 week"))
    assert [t.weekday() for t in week.index][1:] == [0] * (len(week) - 1)  # Mondays
    assert week.volume.sum() == bars.volume.sum()
