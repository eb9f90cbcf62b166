"""Trading hours, bar ends, the close timer, and the feed's forming-bar closes (no IB).

The feed tests drive a :class:`BarFeed` through a stand-in ``IB`` that hands out
ib_async ``BarDataList`` objects; updates are emitted as ib_async emits them
(``updateEvent(bars, hasNewBar)``), and time is a :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pandas as pd
import pytest
from ib_async import BarData, BarDataList, Contract, ContractDetails

from stratvector.gateway.contracts import ContractBook, Instrument, parse_trading_hours, zone_of
from stratvector.gateway.feed import BarFeed, ClosedBar
from stratvector.gateway.sessions import (
    CLOSE_GRACE,
    SESSION_CLOSE_GRACE,
    CloseTimer,
    bar_end,
)
from tests.gateway.clocks import ManualClock

S = 1_000_000_000
DAY = 86400 * S
US_WEEK = (
    "20231118:CLOSED;20231119:CLOSED;20231120:0930-20231120:1600;"
    "20231121:0930-20231121:1600;20231122:0930-20231122:1600;20231123:CLOSED;"
    "20231124:0930-20231124:1300"
)


def ns(text: str) -> int:
    """UTC ns of ``text`` (a trailing ``Z`` means UTC)."""
    return int(pd.Timestamp(text.removesuffix("Z"), tz="UTC").value)


def secs(text: str) -> float:
    return ns(text) / S


# ---------------------------------------------------------------------- trading hours


def test_liquid_hours_in_ibs_format_become_utc_sessions() -> None:
    h = parse_trading_hours(US_WEEK, "US/Eastern")
    assert h is not None
    assert (h.first_day, h.last_day) == (dt.date(2023, 11, 18), dt.date(2023, 11, 24))
    assert h.opens[0] == ns("2023-11-20 14:30Z") and h.closes[0] == ns("2023-11-20 21:00Z")
    assert h.close_of_day(dt.date(2023, 11, 24)) == ns("2023-11-24 18:00Z")  # half day
    assert h.close_of_day(dt.date(2023, 11, 23)) is None  # CLOSED
    assert h.covers(dt.date(2023, 11, 23)) and not h.covers(dt.date(2023, 11, 27))
    assert h.session_at(ns("2023-11-21 15:00Z")) == (
        ns("2023-11-21 14:30Z"),
        ns("2023-11-21 21:00Z"),
    )
    assert h.session_at(ns("2023-11-21 22:00Z")) is None
    assert h.end_of_day(dt.date(2023, 11, 23)) == ns("2023-11-24 05:00Z")


def test_hours_across_dst_old_format_overnight_and_midnight_closes() -> None:
    summer = parse_trading_hours("20230703:0930-20230703:1600", "America/New_York")
    assert summer is not None and summer.closes == (ns("2023-07-03 20:00Z"),)
    # the older format: one date, several spans, a span past midnight
    old = parse_trading_hours("20090507:0700-1830,1830-2330;20090508:CLOSED", "US/Eastern")
    assert old is not None and len(old.opens) == 2
    assert old.close_of_day(dt.date(2009, 5, 7)) == ns("2009-05-08 03:30Z")
    night = parse_trading_hours("20090507:1700-1600", "US/Central")
    assert night is not None and night.closes == (ns("2009-05-08 21:00Z"),)
    # a futures session opening the evening before: its trade day is the closing day
    fut = parse_trading_hours("20231119:1700-20231120:1600;20231120:1700-20231121:1600", "CST")
    assert fut is not None
    assert fut.close_of_day(dt.date(2023, 11, 20)) == ns("2023-11-20 22:00Z")
    full = parse_trading_hours("20231120:0000-20231120:2400", "UTC")
    assert full is not None and full.close_of_day(dt.date(2023, 11, 20)) == ns("2023-11-21Z")


def test_java_short_zone_ids_keep_daylight_saving() -> None:
    assert zone_of("EST") is not None and str(zone_of("EST")) == "America/New_York"
    assert str(zone_of("US/Eastern")) == "US/Eastern"
    assert zone_of("") is None and zone_of("Nowhere/Land") is None
    h = parse_trading_hours("20230703:0930-20230703:1600", "EST")
    assert h is not None and h.closes == (ns("2023-07-03 20:00Z"),)  # EDT, not UTC-5 fixed


def test_unreadable_or_missing_hours() -> None:
    assert parse_trading_hours("", "US/Eastern") is None
    assert parse_trading_hours(US_WEEK, "") is None
    assert parse_trading_hours(US_WEEK, "Mars/Olympus") is None
    for bad in ("2023112:0930-20231120:1600", "20231120:0930", "20231120:1600-20231120:0930"):
        with pytest.raises(ValueError):
            parse_trading_hours(bad, "US/Eastern")


def test_instrument_hours_follow_use_rth() -> None:
    liquid = parse_trading_hours("20231120:0930-20231120:1600", "US/Eastern")
    trading = parse_trading_hours("20231120:0400-20231120:2000", "US/Eastern")
    both = Instrument("A", Contract(), 1, 0.01, liquid_hours=liquid, trading_hours=trading)
    assert both.hours(True) is liquid and both.hours(False) is trading
    only = Instrument("A", Contract(), 1, 0.01, trading_hours=trading)
    assert only.hours(True) is trading
    assert Instrument("A", Contract(), 1, 0.01).hours(True) is None


# ---------------------------------------------------------------------- bar ends


def test_bar_end_daily_intraday_and_unknown() -> None:
    h = parse_trading_hours(US_WEEK, "US/Eastern")
    day = ns("2023-11-20Z")
    assert bar_end(day, DAY, h) == (ns("2023-11-20 21:00Z"), True, True)
    # a day IB lists as CLOSED, and one it does not list: local midnight, flagged
    assert bar_end(ns("2023-11-23Z"), DAY, h) == (ns("2023-11-24 05:00Z"), True, True)
    assert bar_end(ns("2023-11-28Z"), DAY, h) == (ns("2023-11-29 05:00Z"), True, False)
    assert bar_end(day, DAY, None) is None
    assert bar_end(day, 7 * DAY, h) is None
    five = 300 * S
    assert bar_end(ns("2023-11-20 15:00Z"), five, h) == (ns("2023-11-20 15:05Z"), False, True)
    assert bar_end(ns("2023-11-20 20:55Z"), five, h) == (ns("2023-11-20 21:00Z"), True, True)
    hour = 3600 * S  # the half day's last hourly bar is cut short by the 13:00 close
    assert bar_end(ns("2023-11-24 17:30Z"), hour, h) == (ns("2023-11-24 18:00Z"), True, True)
    assert bar_end(ns("2023-11-20 15:00Z"), five, None) == (ns("2023-11-20 15:05Z"), False, False)


# ---------------------------------------------------------------------- the timer


async def test_one_clock_callback_for_all_symbols() -> None:
    clock = ManualClock(100.0)
    due: list[tuple[str, int]] = []
    timer = CloseTimer(clock, lambda s, t: due.append((s, t)))
    for i, sym in enumerate(("A", "B", "C")):
        timer.arm(sym, 1, 110.0 + i)
    assert len(clock.pending) == 1 and clock.pending[0].when == 110.0
    timer.arm("A", 2, 130.0)  # A moved on: the callback moves to B's deadline
    assert [c.when for c in clock.pending] == [111.0]
    timer.disarm("B", 1)
    assert [c.when for c in clock.pending] == [112.0]
    assert clock.set(125.0) == 1
    assert due == [("C", 1)] and timer.armed("A") == 2
    assert [c.when for c in clock.pending] == [130.0]
    timer.cancel()
    assert not clock.pending and not timer.active and len(timer) == 0
    clock.set(1000.0)
    assert due == [("C", 1)]


async def test_a_callback_that_fires_early_rearms() -> None:
    clock = ManualClock(100.0)
    due: list[str] = []
    timer = CloseTimer(clock, lambda s, t: due.append(s))
    timer.arm("A", 1, 110.0)
    clock.pending[0].run()  # the loop woke it, the clock says 105
    clock.now = 105.0
    assert due == []
    assert [c.when for c in clock.pending] == [110.0]
    clock.set(110.0)
    assert due == ["A"]


# ---------------------------------------------------------------------- the feed


class FakeIB:
    """Enough of ib_async's ``IB`` for :class:`BarFeed`: keepUpToDate lists per symbol."""

    def __init__(self, initial: dict[str, list[BarData]]) -> None:
        self.initial = initial
        self.lists: dict[str, BarDataList] = {}
        self.cancelled: list[str] = []
        self.details: dict[str, list[ContractDetails]] = {}

    def isConnected(self) -> bool:
        return True

    async def reqHistoricalDataAsync(self, contract: Contract, **kw: Any) -> BarDataList:
        assert kw["keepUpToDate"]
        bars = BarDataList()
        bars.extend(self.initial[contract.symbol])
        self.lists[contract.symbol] = bars
        return bars

    def cancelHistoricalData(self, bars: BarDataList) -> None:
        self.cancelled.append(next(s for s, b in self.lists.items() if b is bars))

    async def reqContractDetailsAsync(self, contract: Contract) -> list[ContractDetails]:
        return self.details.get(contract.symbol, [])


def bar(day: str, o: float, h: float, lo: float, c: float, v: float = 100.0) -> BarData:
    return BarData(date=dt.date.fromisoformat(day), open=o, high=h, low=lo, close=c, volume=v)


def push(bars: BarDataList, b: BarData) -> None:
    """Deliver ``b`` as ib_async does: a new bar, or a change of the last one."""
    new = b.date > bars[-1].date
    if new:
        bars.append(b)
    else:
        bars[-1] = b
    bars.updateEvent.emit(bars, new)


def book_with(hours: str | None, *symbols: str) -> ContractBook:
    book = ContractBook(list(symbols))
    for i, sym in enumerate(symbols):
        h = parse_trading_hours(hours, "US/Eastern") if hours else None
        book._by_symbol[sym] = Instrument(sym, Contract(symbol=sym), i + 1, 0.01, liquid_hours=h)
    return book


def daily_feed(book: ContractBook, clock: ManualClock) -> tuple[BarFeed, list[ClosedBar]]:
    seen: list[ClosedBar] = []
    feed = BarFeed(book, book.symbols, "1d", seen.append, capacity=50, clock=clock)
    feed.live = True
    return feed, seen


def when_seen(seen: list[ClosedBar]) -> list[tuple[str, str]]:
    return [(b.symbol, pd.Timestamp(b.time, tz="UTC").date().isoformat()) for b in seen]


async def test_daily_bar_closes_at_session_close_plus_grace_once() -> None:
    clock = ManualClock(secs("2023-11-20 15:00Z"))
    feed, seen = daily_feed(book_with(US_WEEK, "AAA", "BBB"), clock)
    ib = FakeIB(
        {
            s: [bar("2023-11-17", 9, 9, 9, 9), bar("2023-11-20", 10, 10, 10, 10)]
            for s in ("AAA", "BBB")
        }
    )
    await feed.subscribe(ib)  # type: ignore[arg-type]
    assert len(clock.pending) == 1  # one callback for both symbols
    close = secs("2023-11-20 21:00Z")
    assert clock.pending[0].when == close + SESSION_CLOSE_GRACE
    for sym in ("AAA", "BBB"):
        push(ib.lists[sym], bar("2023-11-20", 10, 12, 9, 11))
    clock.set(close + SESSION_CLOSE_GRACE - 1)
    assert seen == []
    clock.set(close + SESSION_CLOSE_GRACE)
    assert when_seen(seen) == [("AAA", "2023-11-20"), ("BBB", "2023-11-20")]
    assert feed.windows["AAA"].last_close == 11.0 and feed.timer_closes == 2
    # the next morning's bar appears: bar 20 is not reported again
    clock.now = secs("2023-11-21 14:30Z")
    for sym in ("AAA", "BBB"):
        push(ib.lists[sym], bar("2023-11-21", 11, 11, 11, 11))
    assert len(seen) == 2 and feed.revisions == 0
    assert feed.timer.armed("AAA") == ns("2023-11-21Z")
    feed.unsubscribe(ib)  # type: ignore[arg-type]
    assert not clock.pending and not feed.timer.active and sorted(ib.cancelled) == ["AAA", "BBB"]


async def test_revision_after_the_decision_warns_once_and_keeps_the_values(caplog) -> None:
    clock = ManualClock(secs("2023-11-20 15:00Z"))
    feed, seen = daily_feed(book_with(US_WEEK, "AAA"), clock)
    ib = FakeIB({"AAA": [bar("2023-11-17", 9, 9, 9, 9), bar("2023-11-20", 10, 12, 9, 11)]})
    await feed.subscribe(ib)  # type: ignore[arg-type]
    clock.set(secs("2023-11-20 21:05Z"))
    assert len(seen) == 1
    bars = ib.lists["AAA"]
    with caplog.at_level(logging.WARNING, "stratvector.gateway.feed"):
        push(bars, bar("2023-11-20", 10, 12.5, 9, 11.4, 130))  # a late print
        push(bars, bar("2023-11-20", 10, 12.5, 9, 11.4, 130))  # the same again: no news
        push(bars, bar("2023-11-21", 11.4, 11.4, 11.4, 11.4))  # next bar carries it too
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "AAA" in warnings[0] and "2023-11-20" in warnings[0]
    assert "high 12 -> 12.5" in warnings[0] and "close 11 -> 11.4" in warnings[0]
    assert "volume 100 -> 130" in warnings[0]
    assert len(seen) == 1 and feed.revisions == 1
    assert feed.windows["AAA"].last_close == 11.0  # the decided values stay


async def test_next_bar_before_the_deadline_closes_the_bar_and_disarms() -> None:
    clock = ManualClock(secs("2023-11-20 15:00Z"))
    feed, seen = daily_feed(book_with(US_WEEK, "AAA"), clock)
    ib = FakeIB({"AAA": [bar("2023-11-17", 9, 9, 9, 9), bar("2023-11-20", 10, 12, 9, 11)]})
    await feed.subscribe(ib)  # type: ignore[arg-type]
    push(ib.lists["AAA"], bar("2023-11-21", 11, 11, 11, 11))  # (e.g. a late-started clock)
    assert when_seen(seen) == [("AAA", "2023-11-20")]
    assert feed.timer.armed("AAA") == ns("2023-11-21Z")
    clock.set(secs("2023-11-20 21:05Z"))
    assert len(seen) == 1 and feed.timer_closes == 0


async def test_subscribing_after_the_close_closes_the_last_bar_at_once() -> None:
    """A restart in the evening: the stream's last bar ended hours ago."""
    clock = ManualClock(secs("2023-11-20 23:00Z"))
    feed, seen = daily_feed(book_with(US_WEEK, "AAA"), clock)
    feed.live = False  # during a sync: appended as catch-up, not reported
    ib = FakeIB({"AAA": [bar("2023-11-17", 9, 9, 9, 9), bar("2023-11-20", 10, 12, 9, 11)]})
    await feed.subscribe(ib)  # type: ignore[arg-type]
    assert seen == [] and feed.windows["AAA"].last_time == ns("2023-11-20Z")
    assert not clock.pending


async def test_without_hours_a_daily_bar_waits_for_the_next_bar(caplog) -> None:
    clock = ManualClock(secs("2023-11-20 15:00Z"))
    feed, seen = daily_feed(book_with(None, "AAA", "BBB"), clock)
    initial = [bar("2023-11-17", 9, 9, 9, 9), bar("2023-11-20", 10, 12, 9, 11)]
    ib = FakeIB({"AAA": list(initial), "BBB": list(initial)})
    with caplog.at_level(logging.WARNING, "stratvector.gateway.feed"):
        await feed.subscribe(ib)  # type: ignore[arg-type]
        for sym in ("AAA", "BBB"):
            push(ib.lists[sym], bar("2023-11-21", 11, 11, 11, 11))
            push(ib.lists[sym], bar("2023-11-22", 11, 11, 11, 11))
    assert not clock.pending
    assert when_seen(seen) == [
        ("AAA", "2023-11-20"),
        ("AAA", "2023-11-21"),
        ("BBB", "2023-11-20"),
        ("BBB", "2023-11-21"),
    ]
    logged = [r.getMessage() for r in caplog.records if "next one appears" in r.getMessage()]
    assert len(logged) == 2 and logged[0].startswith("AAA") and logged[1].startswith("BBB")


async def test_intraday_bar_closes_at_its_end_and_the_session_last_at_the_close() -> None:
    clock = ManualClock(secs("2023-11-20 20:51Z"))
    book = book_with(US_WEEK, "AAA")
    seen: list[ClosedBar] = []
    feed = BarFeed(book, ["AAA"], "5min", seen.append, capacity=50, clock=clock)
    feed.live = True

    def b5(t: str, c: float) -> BarData:
        return BarData(
            date=pd.Timestamp(t).to_pydatetime(), open=c, high=c, low=c, close=c, volume=1
        )

    ib = FakeIB({"AAA": [b5("2023-11-20 20:45Z", 1), b5("2023-11-20 20:50Z", 2)]})
    await feed.subscribe(ib)  # type: ignore[arg-type]
    assert clock.pending[0].when == secs("2023-11-20 20:55Z") + CLOSE_GRACE
    clock.set(secs("2023-11-20 20:55Z") + CLOSE_GRACE)  # no next bar yet: the clock closes it
    assert len(seen) == 1
    push(ib.lists["AAA"], b5("2023-11-20 20:55Z", 3))  # the session's last bar
    assert len(seen) == 1
    assert clock.pending[0].when == secs("2023-11-20 21:00Z") + SESSION_CLOSE_GRACE
    clock.set(secs("2023-11-20 21:05Z"))
    assert [pd.Timestamp(b.time, tz="UTC").strftime("%H:%M") for b in seen] == ["20:50", "20:55"]


async def test_a_day_beyond_the_listed_hours_fetches_fresh_hours() -> None:
    listed = "20231120:0930-20231120:1600"
    clock = ManualClock(secs("2023-11-21 15:00Z"))
    book = book_with(listed, "AAA")
    feed, seen = daily_feed(book, clock)
    ib = FakeIB({"AAA": [bar("2023-11-20", 9, 9, 9, 9), bar("2023-11-21", 10, 12, 9, 11)]})
    fresh = "20231121:0930-20231121:1600;20231122:0930-20231122:1600"
    ib.details["AAA"] = [
        ContractDetails(
            contract=Contract(symbol="AAA", conId=1), liquidHours=fresh, timeZoneId="US/Eastern"
        )
    ]
    clock.now = secs("2023-11-20 23:00Z")  # the 20th's bar closes at once at subscribe
    await feed.subscribe(ib)  # type: ignore[arg-type]
    clock.now = secs("2023-11-21 15:00Z")
    assert feed.timer.deadline("AAA") == secs("2023-11-22 05:00Z") + SESSION_CLOSE_GRACE
    for _ in range(200):  # the refresh runs as a task: let it finish
        await asyncio.sleep(0)
        hours = book.get("AAA").liquid_hours
        if hours is not None and hours.covers(dt.date(2023, 11, 22)):
            break
    else:
        raise AssertionError("the hours were not refreshed")
    assert feed.timer.deadline("AAA") == secs("2023-11-21 21:00Z") + SESSION_CLOSE_GRACE
    clock.set(secs("2023-11-21 21:05Z"))
    assert when_seen(seen)[-1] == ("AAA", "2023-11-21")


async def test_forget_cancels_the_timer_without_a_cancel_request() -> None:
    clock = ManualClock(secs("2023-11-20 15:00Z"))
    feed, seen = daily_feed(book_with(US_WEEK, "AAA"), clock)
    ib = FakeIB({"AAA": [bar("2023-11-17", 9, 9, 9, 9), bar("2023-11-20", 10, 12, 9, 11)]})
    await feed.subscribe(ib)  # type: ignore[arg-type]
    assert clock.pending
    feed.forget()
    assert not clock.pending and not feed.timer.active and ib.cancelled == []
    clock.set(secs("2023-11-21Z"))
    assert seen == []


async def test_contract_book_reads_the_hours_when_qualifying(caplog) -> None:
    class QualifyIB:
        async def reqContractDetailsAsync(self, contract: Contract) -> list[ContractDetails]:
            c = Contract(symbol=contract.symbol, conId=7 if contract.symbol == "AAA" else 8)
            liquid = US_WEEK if contract.symbol == "AAA" else "garbage"
            return [
                ContractDetails(
                    contract=c,
                    minTick=0.01,
                    liquidHours=liquid,
                    tradingHours="",
                    timeZoneId="US/Eastern",
                )
            ]

        async def reqMarketRuleAsync(self, rule_id: int) -> None:
            return None

    book = ContractBook(["AAA", "BBB"])
    with caplog.at_level(logging.WARNING, "stratvector.gateway.contracts"):
        await book.qualify(QualifyIB(), 5.0)  # type: ignore[arg-type]
        await book.qualify(QualifyIB(), 5.0)  # type: ignore[arg-type]
    a = book.get("AAA").hours(True)
    assert a is not None and a.close_of_day(dt.date(2023, 11, 20)) == ns("2023-11-20 21:00Z")
    assert book.get("AAA").trading_hours is None
    assert book.get("BBB").hours(True) is None
    bad = [r for r in caplog.records if "cannot read liquidHours" in r.getMessage()]
    assert len(bad) == 1 and "BBB" in bad[0].getMessage()


def test_the_config_defaults_are_the_feed_defaults() -> None:
    from stratvector.config import GatewaySection

    g = GatewaySection()
    assert (g.close_grace, g.session_close_grace) == (CLOSE_GRACE, SESSION_CLOSE_GRACE)
    feed = BarFeed(ContractBook(["A"]), ["A"], "1d", lambda b: None, capacity=2)
    assert (feed.close_grace, feed.session_close_grace) == (CLOSE_GRACE, SESSION_CLOSE_GRACE)
