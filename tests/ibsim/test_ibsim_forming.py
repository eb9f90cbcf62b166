"""Forming bars: keepUpToDate streams that end with the bar in progress, trading sessions
in contract details, simulated time between bars, and revisions of a closed bar."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from ib_async import MarketOrder, Stock

from stratvector.data import load_bars
from stratvector.errors import ConfigError
from stratvector.gateway.contracts import parse_trading_hours
from stratvector.ibsim import IBSimConfig
from stratvector.ibsim.cli import add_arguments, config_from_args
from stratvector.ibsim.control import execute

from ._forming import write_session_bars
from ._support import client, running, sync, wait_until
from .conftest import SYN_ROWS

SYN = Stock("SYN", "SMART", "USD")
FIF = Stock("FIF", "SMART", "USD")
US = {"forming_bars": True, "session": "09:30-16:00", "time_zone": "US/Eastern"}


def utc(text: str) -> dt.datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def values(b) -> tuple[float, ...]:
    return (b.open, b.high, b.low, b.close, b.volume)


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    return write_session_bars(tmp_path / "intraday", {"FIF": 5}, days=3, minutes=15)


async def test_daily_bar_opens_at_the_session_open_and_closes_at_its_close(syn_dir):
    async with running(syn_dir, start=3, **US) as sim, client(sim) as ib:
        # start: bar 2 (Thu 2024-01-04) closed at 16:00 New York, nothing forming
        assert await ib.reqCurrentTimeAsync() == utc("2024-01-04 21:00")
        bars = await ib.reqHistoricalDataAsync(
            SYN, "", "5 D", "1 day", "TRADES", True, keepUpToDate=True
        )
        assert bars[-1].date == dt.date(2024, 1, 4)
        updates: list[tuple[dt.date, bool, tuple[float, ...]]] = []
        bars.updateEvent += lambda b, new: updates.append((b[-1].date, new, values(b[-1])))
        assert await sim.advance_time(17 * 3600) == 0  # 16:00 -> 09:00: still nothing
        await sync(ib)
        assert updates == [] and not sim.status()["forming"]
        await sim.advance_time(1800)  # 09:30: Friday's bar opens, its open as every price
        await sync(ib)
        o = SYN_ROWS[3][0]
        assert updates == [(dt.date(2024, 1, 5), True, (o, o, o, o, 0.0))]
        assert await ib.reqCurrentTimeAsync() == utc("2024-01-05 14:30")
        assert await sim.advance(1) == 1  # 16:00: it closes, whole
        await sync(ib)
        assert updates[-1] == (dt.date(2024, 1, 5), False, (*SYN_ROWS[3], 1000.0))
        assert await ib.reqCurrentTimeAsync() == utc("2024-01-05 21:00")
        # over the weekend nothing opens; Monday's bar opens and closes within 3 days
        assert await sim.advance_time(3 * 86400) == 1
        await sync(ib)
        assert [(d, new) for d, new, _ in updates[2:]] == [
            (dt.date(2024, 1, 8), True),
            (dt.date(2024, 1, 8), False),
        ]
        assert await ib.reqCurrentTimeAsync() == utc("2024-01-08 21:00")


async def test_intraday_stream_ends_with_the_forming_bar(session_dir):
    f = load_bars(session_dir / "FIF_15min.csv")
    async with running(session_dir, start=20, **US) as sim, client(sim) as ib:
        # bar 19 closed at 19:30 UTC and bar 20 opened at once: the list ends with it
        bars = await ib.reqHistoricalDataAsync(
            FIF, "", "7200 S", "15 mins", "TRADES", True, keepUpToDate=True, formatDate=2
        )
        assert bars[-1].date == f.index[20].to_pydatetime()
        o = f["open"].iloc[20]
        assert values(bars[-1]) == (o, o, o, o, 0.0)
        assert values(bars[-2]) == tuple(f.iloc[19][["open", "high", "low", "close", "volume"]])
        flags: list[tuple[dt.datetime, bool]] = []
        bars.updateEvent += lambda b, new: flags.append((b[-1].date, new))
        await sim.advance(1)  # bar 20 closes (update), bar 21 opens (a new bar)
        await sync(ib)
        assert flags == [(f.index[20], False), (f.index[21], True)]
        assert values(bars[-2]) == tuple(f.iloc[20][["open", "high", "low", "close", "volume"]])
        await sim.advance(5)  # ... up to bar 25, the session's last: nothing opens after it
        await sync(ib)
        assert flags[-1] == (f.index[25], False) and bars[-1].date == f.index[25]
        assert not sim.status()["forming"]
        assert await ib.reqCurrentTimeAsync() == utc("2024-01-02 21:00")
        await sim.advance_time(17.5 * 3600)  # the next morning's open
        await sync(ib)
        assert flags[-1] == (f.index[26], True)
        # a request ending now has the bar in progress; one ending in the past does not
        now = await ib.reqHistoricalDataAsync(
            FIF, "", "3600 S", "15 mins", "TRADES", True, formatDate=2
        )
        assert now[-1].date == f.index[26] and now[-1].volume == 0
        past = await ib.reqHistoricalDataAsync(
            FIF, "20240103 14:00:00 UTC", "1 D", "15 mins", "TRADES", True, formatDate=2
        )
        assert past[-1].date == f.index[25]


async def test_a_coarser_forming_bar_grows_with_each_open(session_dir):
    f = load_bars(session_dir / "FIF_15min.csv")
    async with running(session_dir, start=5, **US) as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(
            FIF, "", "1 D", "1 hour", "TRADES", True, keepUpToDate=True, formatDate=2
        )
        # 14:00-15:00 UTC bucket: bars 0-1 closed... the 15:00 bucket holds bars 2-5, 5 forming
        hour = f.iloc[2:6]
        assert bars[-1].date == utc("2024-01-02 15:00")
        assert bars[-1].open == hour["open"].iloc[0] and bars[-1].close == hour["open"].iloc[3]
        assert bars[-1].volume == hour["volume"].iloc[:3].sum()
        await sim.advance(1)  # bar 5 closes, bar 6 (16:00 bucket) opens
        await sync(ib)
        assert bars[-2].close == hour["close"].iloc[3]
        assert bars[-2].high == hour["high"].max() and bars[-2].volume == hour["volume"].sum()
        assert bars[-1].date == utc("2024-01-02 16:00") and bars[-1].volume == 0


async def test_contract_details_report_sessions_consistent_with_the_bars(syn_dir, session_dir):
    async with running(syn_dir, start=3, **US) as sim, client(sim) as ib:
        [cd] = await ib.reqContractDetailsAsync(SYN)
        assert cd.timeZoneId == "US/Eastern" and cd.liquidHours == cd.tradingHours
        assert cd.liquidHours.startswith("20240103:0930-20240103:1600;20240104:0930-")
        assert "20240106:CLOSED;20240107:CLOSED" in cd.liquidHours
        hours = parse_trading_hours(cd.liquidHours, cd.timeZoneId)
        assert hours is not None
        times = sim.ctx.store.by_symbol("SYN").times
        for i, t in enumerate(times):
            day = pd.Timestamp(t, tz="UTC").date()
            if hours.covers(day):
                assert hours.close_of_day(day) == sim.ctx.clock.sessions.closes[i]
    async with running(session_dir, start=30, **US) as sim, client(sim) as ib:
        [cd] = await ib.reqContractDetailsAsync(FIF)
        hours = parse_trading_hours(cd.liquidHours, cd.timeZoneId)
        assert hours is not None
        f = load_bars(session_dir / "FIF_15min.csv")
        for t in f.index:
            session = hours.session_at(t.value)
            assert session is not None, t
            assert session[1] == pd.Timestamp(t.date(), tz="UTC").value + 21 * 3600 * 10**9
    async with running(syn_dir, start=3) as sim, client(sim) as ib:  # the defaults: UTC days
        [cd] = await ib.reqContractDetailsAsync(SYN)
        assert cd.timeZoneId == "UTC"
        assert cd.liquidHours.startswith("20240104:0000-20240105:0000;20240105:0000-")


async def test_a_revised_bar_reaches_subscribers_and_leaves_the_data(syn_dir):
    async with running(syn_dir, start=3, **US) as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(
            SYN, "", "5 D", "1 day", "TRADES", True, keepUpToDate=True
        )
        assert sim.revise_last_bar("SYN", close=98.75, volume=1500) == 1
        await sync(ib)
        o, h, lo, _ = SYN_ROWS[2]
        assert bars[-1].date == dt.date(2024, 1, 4) and values(bars[-1]) == (o, h, lo, 98.75, 1500)
        again = await ib.reqHistoricalDataAsync(SYN, "", "4 D", "1 day", "TRADES", True)
        assert again[-1].close == SYN_ROWS[2][3]
        with pytest.raises(ValueError, match="no symbol"):
            sim.revise_last_bar("NOPE", close=1)
        with pytest.raises(ValueError, match="cannot revise"):
            sim.revise_last_bar("SYN", vwap=1)
        assert await execute(sim, "revise SYN close=99.5") == {"ok": True, "subscriptions": 1}
        await sync(ib)
        assert bars[-1].close == 99.5
        reply = await execute(sim, "time 63000")  # to Friday's 09:30 open
        assert reply == {"ok": True, "closed": 0}
        await wait_until(lambda: bars[-1].date == dt.date(2024, 1, 5), what="Friday's bar")
        assert (await execute(sim, "revise SYN close"))["ok"] is False


async def test_step_time_without_forming_bars_closes_bars_by_their_end(syn_dir):
    async with running(syn_dir, start=3) as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(
            SYN, "", "5 D", "1 day", "TRADES", True, keepUpToDate=True
        )
        # now is the end of Thursday's bar (Friday 00:00 UTC); Friday's bar ends Saturday.
        # Without forming bars time does not rest between bars: each call counts from now
        assert await sim.advance_time(86400 - 1) == 0
        assert await sim.advance_time(86400) == 1
        await sync(ib)
        assert bars[-1].date == dt.date(2024, 1, 5) and not sim.status()["forming"]


def test_forming_options_are_validated(tmp_path):
    assert IBSimConfig(bars=tmp_path, **US).session == "09:30-16:00"
    IBSimConfig(bars=tmp_path, session="18:00-17:00")  # overnight
    with pytest.raises(ConfigError, match="session"):
        IBSimConfig(bars=tmp_path, session="9-5")
    with pytest.raises(ConfigError, match="time_zone"):
        IBSimConfig(bars=tmp_path, time_zone="Mars/Olympus")


async def test_an_overnight_session_opens_the_evening_before(syn_dir):
    async with running(
        syn_dir, start=3, forming_bars=True, session="18:00-17:00", time_zone="US/Central"
    ) as sim:
        clock = sim.ctx.clock
        assert clock.now() == pd.Timestamp("2024-01-04 23:00", tz="UTC")  # Thu 17:00 Chicago
        await sim.advance_time(3600)  # Thu 18:00 Chicago: Friday's session opens
        assert sim.status()["forming"]
        assert clock.now() == pd.Timestamp("2024-01-05 00:00", tz="UTC")


def test_forming_cli_flags(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = ["--bars", str(tmp_path), "--forming-bars", "--session", "09:30-16:00"]
    cfg = config_from_args(parser.parse_args([*args, "--time-zone", "US/Eastern"]))
    assert (cfg.forming_bars, cfg.session, cfg.time_zone) == (True, "09:30-16:00", "US/Eastern")
    cfg = config_from_args(parser.parse_args(["--bars", str(tmp_path)]))
    assert (cfg.forming_bars, cfg.session, cfg.time_zone) == (False, None, "UTC")


async def test_a_market_order_sent_while_a_bar_forms_fills_at_its_open(syn_dir):
    async with running(syn_dir, start=3, **US) as sim, client(sim) as ib:
        [c] = await ib.qualifyContractsAsync(SYN)
        await sim.advance_time(17.5 * 3600)  # Friday's bar opens
        assert sim.status()["forming"]
        buy = ib.placeOrder(c, MarketOrder("BUY", 10))
        await sync(ib)
        assert buy.orderStatus.status == "Submitted"
        await sim.advance(1)  # it closes: the order fills at its open
        await wait_until(lambda: buy.orderStatus.status == "Filled", what="the fill")
        assert buy.fills[0].execution.price == SYN_ROWS[3][0]
