"""Market data from files: contract details, historical bars, the live replay, ticks."""

from __future__ import annotations

import asyncio
import datetime as dt

import pandas as pd
import pytest
from ib_async import Stock

from stratvector.data import load_bars, synthetic_bars
from stratvector.ibsim.market import con_id_for

from ._support import ErrorLog, client, running, sync, wait_until

AAPL = Stock("AAPL", "SMART", "USD")


def _file(sample_dir, symbol="AAPL") -> pd.DataFrame:
    return load_bars(sample_dir / f"{symbol}_1d.csv")


def _bar_tuples(bars) -> list[tuple]:
    return [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def _file_tuples(df: pd.DataFrame) -> list[tuple]:
    return [
        (t.date(), r.open, r.high, r.low, r.close, r.volume)
        for t, r in zip(df.index, df.itertuples(), strict=True)
    ]


async def test_contract_details_for_every_symbol(sample_dir):
    async with running(sample_dir) as sim, client(sim) as ib:
        for symbol in ("AAPL", "NVDA"):
            [cd] = await ib.reqContractDetailsAsync(Stock(symbol, "SMART", "USD"))
            c = cd.contract
            assert (c.symbol, c.secType, c.currency, c.exchange) == (symbol, "STK", "USD", "SMART")
            assert c.conId == con_id_for(symbol)
            assert cd.minTick == 0.01
            assert cd.timeZoneId == "UTC"
            assert "STP" in cd.orderTypes and "TRAIL" in cd.orderTypes
            # by contract id alone, too
            [again] = await ib.reqContractDetailsAsync(Stock(conId=c.conId))
            assert again.contract.symbol == symbol


async def test_unknown_symbol_gets_error_200(sample_dir):
    async with running(sample_dir) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        assert await ib.qualifyContractsAsync(Stock("ZZZZ", "SMART", "USD")) == [None]
        bars = await ib.reqHistoricalDataAsync(
            Stock("ZZZZ", "SMART", "USD"), "", "1 M", "1 day", "TRADES", True
        )
        assert len(bars) == 0
        await sync(ib)
        assert errors.codes().count(200) == 2
        assert await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "EUR")) == [None]


async def test_historical_daily_bars_equal_the_file_and_stop_at_now(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(AAPL, "", "2 Y", "1 day", "TRADES", True)
        now = sim.ctx.clock.now()
        f = _file(sample_dir)
        expected = f[(f.index >= now - pd.DateOffset(years=2)) & (f.index < now)]
        assert len(bars) == len(expected) > 400
        assert _bar_tuples(bars) == _file_tuples(expected)
        assert bars[-1].date == dt.date(2015, 12, 31)  # the last closed bar: never the future


async def test_historical_with_end_date_in_the_past(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        end = dt.datetime(2015, 6, 1, tzinfo=dt.UTC)
        bars = await ib.reqHistoricalDataAsync(AAPL, end, "1 M", "1 day", "TRADES", True)
        f = _file(sample_dir)
        expected = f[(f.index >= pd.Timestamp("2015-05-01", tz="UTC")) & (f.index < end)]
        assert _bar_tuples(bars) == _file_tuples(expected)
        # an end date after now is clipped to now
        later = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
        clipped = await ib.reqHistoricalDataAsync(AAPL, later, "5 D", "1 day", "TRADES", True)
        assert clipped[-1].date == dt.date(2015, 12, 31)


async def test_weekly_bars_aggregate_the_file(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(AAPL, "", "6 M", "1 week", "TRADES", True)
        now = sim.ctx.clock.now()
        f = _file(sample_dir)
        f = f[(f.index >= now - pd.DateOffset(months=6)) & (f.index < now)]
        groups = f.groupby(f.index.tz_localize(None).to_period("W-SUN"))
        expected = [
            (
                g.index[0].date(),
                g.open.iloc[0],
                g.high.max(),
                g.low.min(),
                g.close.iloc[-1],
                g.volume.sum(),
            )
            for _, g in groups
        ]
        assert _bar_tuples(bars) == expected


async def test_finer_bar_size_than_the_files_gets_162(sample_dir):
    async with running(sample_dir) as sim, client(sim) as ib:
        errors = ErrorLog(ib)
        bars = await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "5 mins", "TRADES", True)
        assert len(bars) == 0
        await sync(ib)
        assert 162 in errors.codes()


@pytest.fixture
def intraday_dir(tmp_path):
    d = tmp_path / "intraday"
    d.mkdir()
    bars = synthetic_bars(300, seed=3, freq="5min", start="2024-01-02 14:30")
    bars.to_csv(d / "FIVE_5min.csv")
    return d


async def test_intraday_bars_resampled_with_both_date_formats(intraday_dir):
    async with running(intraday_dir, start=200, pacing=None) as sim, client(sim) as ib:
        contract = Stock("FIVE", "SMART", "USD")
        epoch = await ib.reqHistoricalDataAsync(
            contract, "", "1 D", "30 mins", "TRADES", False, formatDate=2
        )
        text = await ib.reqHistoricalDataAsync(
            contract, "", "1 D", "30 mins", "TRADES", False, formatDate=1
        )
        f = load_bars(intraday_dir / "FIVE_5min.csv").iloc[:200]
        now = sim.ctx.clock.now()
        f = f[f.index >= now - pd.Timedelta(days=1)]
        agg = f.resample("30min").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        agg = agg.dropna()
        assert [b.date for b in epoch] == [t.to_pydatetime() for t in agg.index]
        assert [b.date for b in text] == [b.date for b in epoch]
        assert [b.close for b in epoch] == list(agg.close)
        assert [b.volume for b in epoch] == list(agg.volume)


async def test_keep_up_to_date_replays_each_closed_bar_once_in_order(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "", "1 M", "1 day", "TRADES", True, keepUpToDate=True
        )
        n0 = len(bars)
        updates: list[tuple[dt.date, bool]] = []
        bars.updateEvent += lambda b, new: updates.append((b[-1].date, new))
        await sim.advance(30)
        await wait_until(lambda: len(bars) >= n0 + 21, what="30 replayed steps")
        f = _file(sample_dir)
        first = pd.Timestamp("2016-01-04", tz="UTC")
        expected = f[f.index >= first].iloc[: len(bars) - n0]
        assert _bar_tuples(bars[n0:]) == _file_tuples(expected)
        assert all(new for _, new in updates)
        dates = [d for d, _ in updates]
        assert dates == sorted(set(dates))  # none repeated, none out of order
        ib.cancelHistoricalData(bars)
        await sync(ib)
        await sim.advance(5)
        await sync(ib)
        assert len(updates) == len(dates)


async def test_keep_up_to_date_weekly_bar_grows_then_rolls(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "", "3 M", "1 week", "TRADES", True, keepUpToDate=True
        )
        n0 = len(bars)
        flags: list[bool] = []
        bars.updateEvent += lambda b, new: flags.append(new)
        await sim.advance(10)  # two trading weeks
        await wait_until(lambda: len(flags) == 10, what="10 weekly updates")
        assert flags.count(True) == 2  # a new week bar twice, updates otherwise
        assert len(bars) == n0 + 2
        again = await ib.reqHistoricalDataAsync(AAPL, "", "13 W", "1 week", "TRADES", True)
        assert _bar_tuples(bars[-2:]) == _bar_tuples(again[-2:])


async def test_real_time_bars_deliver_each_bar(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        rt = ib.reqRealTimeBars(AAPL, 5, "TRADES", False)
        await sync(ib)
        await sim.advance(10)
        await wait_until(lambda: len(rt) == 10, what="10 real-time bars")
        f = _file(sample_dir)
        expected = f[f.index >= pd.Timestamp("2016-01-04", tz="UTC")].iloc[:10]
        got = [(b.time, b.open_, b.high, b.low, b.close, b.volume) for b in rt]
        want = [
            (t.to_pydatetime(), r.open, r.high, r.low, r.close, r.volume)
            for t, r in zip(expected.index, expected.itertuples(), strict=True)
        ]
        assert got == want
        ib.cancelRealTimeBars(rt)


async def test_replay_at_speed_delivers_bars_in_order(sample_dir):
    async with running(sample_dir, start="2016-01-04", speed=100.0) as sim, client(sim) as ib:
        bars = await ib.reqHistoricalDataAsync(
            AAPL, "", "5 D", "1 day", "TRADES", True, keepUpToDate=True
        )
        n0 = len(bars)
        await asyncio.sleep(0.3)
        n = len(bars) - n0
        assert 10 <= n <= 60
        f = _file(sample_dir)
        start = bars[n0 - 1].date
        expected = f[f.index.date > start].iloc[:n]
        assert _bar_tuples(bars[n0:]) == _file_tuples(expected)


async def test_market_data_snapshot_and_stream(sample_dir):
    async with running(sample_dir, start="2016-01-04") as sim, client(sim) as ib:
        [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [ticker] = await ib.reqTickersAsync(c)
        f = _file(sample_dir)
        closed = f[f.index < pd.Timestamp("2016-01-04", tz="UTC")]
        assert ticker.last == closed.close.iloc[-1]
        assert ticker.close == closed.close.iloc[-2]
        assert ticker.bid == ticker.ask == ticker.last
        assert ticker.volume == closed.volume.iloc[-1]
        live = ib.reqMktData(c)
        await sync(ib)
        await sim.advance(1)
        await wait_until(lambda: live.last == f.close.loc["2016-01-04"], what="a live tick")
        ib.cancelMktData(c)


async def test_head_timestamp_and_matching_symbols(sample_dir):
    async with running(sample_dir) as sim, client(sim) as ib:
        head = await ib.reqHeadTimeStampAsync(AAPL, "TRADES", True, 1)
        assert head == dt.datetime(2013, 1, 2)
        found = await ib.reqMatchingSymbolsAsync("NV")
        assert [d.contract.symbol for d in found] == ["NVDA"]
