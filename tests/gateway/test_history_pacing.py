"""The pacing gate's three rules, request planning, and the history scheduler against the
IB Gateway stand-in through the real ib_async client (loopback, fake pacing clock)."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from pathlib import Path

import pandas as pd
import pytest
from ib_async import BarDataList, Stock

from stratvector.data import load_csv, parse_bar_size, resample_bars, synthetic_bars
from stratvector.data.cache import BarCache, to_ns
from stratvector.errors import ConfigError, DataError, StratVectorError
from stratvector.gateway.history import (
    MAX_DURATION,
    HistoryError,
    HistoryScheduler,
    ib_bar_size,
    plan_requests,
)
from stratvector.gateway.pacing import PacingGate, PacingPolicy, RequestKey, bar_seconds
from stratvector.ibsim import PacingLimits
from stratvector.ibsim.faults import PacingGuard
from stratvector.ibsim.market import con_id_for
from tests.gateway.conftest_history import (
    ErrorLog,
    FakeTime,
    copy_samples,
    expected,
    history_requests,
    run,
    sent_errors,
    session,
)

EXACT = PacingPolicy(margin_s=0.0)


def key(contract: str = "AAPL", **kw: object) -> RequestKey:
    return RequestKey(contract, **kw)  # type: ignore[arg-type]


def aapl() -> Stock:
    return Stock("AAPL", "SMART", "USD")


# --- the pacing gate ------------------------------------------------------------------------


def test_gate_global_rule_waits_for_the_oldest_request_to_leave_the_window():
    gate = PacingGate(EXACT)
    for i in range(60):
        assert gate.wait_time(key(f"S{i}"), float(i)) == 0.0
        gate.record(key(f"S{i}"), float(i))
    assert gate.wait_time(key("NEW"), 59.0) == pytest.approx(541.0)  # request at t=0 + 600
    assert gate.wait_time(key("NEW"), 599.5) == pytest.approx(0.5)
    assert gate.wait_time(key("NEW"), 600.0) == 0.0  # exactly one window old: expired
    gate.record(key("NEW"), 600.0)
    assert gate.wait_time(key("NEWER"), 600.0) == pytest.approx(1.0)  # now t=1 is oldest
    assert gate.recent(600.0) == 60


def test_gate_per_contract_rule_allows_five_per_two_seconds_per_contract_and_tick_type():
    gate = PacingGate(EXACT)
    for i in range(5):
        k = key(duration=f"{i + 1} D")
        assert gate.wait_time(k, i * 0.1) == 0.0
        gate.record(k, i * 0.1)
    sixth = key(duration="6 D")
    assert gate.wait_time(sixth, 0.5) == pytest.approx(1.5)  # first at 0.0 leaves at 2.0
    assert gate.wait_time(key("MSFT"), 0.5) == 0.0  # another contract
    assert gate.wait_time(key(what_to_show="MIDPOINT"), 0.5) == 0.0  # another tick type
    assert gate.wait_time(sixth, 2.0) == 0.0


def test_gate_identical_rule_holds_the_same_request_for_fifteen_seconds():
    gate = PacingGate(EXACT)
    k = key(bar_size="1 day", duration="1 Y", end="20200101 00:00:00 UTC")
    gate.record(k, 100.0)
    assert gate.wait_time(k, 105.0) == pytest.approx(10.0)
    assert gate.wait_time(key(bar_size="1 day", duration="2 D"), 105.0) == 0.0
    assert gate.wait_time(k, 115.0) == 0.0


def test_gate_adds_the_safety_margin_only_to_real_waits():
    gate = PacingGate(PacingPolicy(margin_s=0.25))
    assert gate.wait_time(key(), 0.0) == 0.0
    gate.record(key(), 0.0)
    assert gate.wait_time(key(), 1.0) == pytest.approx(14.25)


def test_gate_obeyed_never_breaks_ibsims_pacing_rules():
    """Random bursts over a few contracts: a client that waits as the gate says is never
    refused by the stand-in's independent implementation of IB's rules. (The default
    safety margin also absorbs float rounding at the exact window boundaries.)"""
    rng = random.Random(7)
    t = 0.0
    guard = PacingGuard(PacingLimits(), clock=lambda: t)
    gate = PacingGate(PacingPolicy())
    for i in range(400):
        k = key(rng.choice("ABC"), duration=f"{rng.randint(1, 3)} D")
        t += rng.choice([0.0, 0.0, 0.01, 0.3, 5.0])
        wait = gate.wait_time(k, t)
        t += wait
        assert gate.wait_time(k, t) == 0.0
        gate.record(k, t)
        assert guard.check((k.contract, k.what_to_show), k) == "", f"request {i} at {t}"
    assert t > 600  # the long window was exercised


@pytest.mark.parametrize(
    ("size", "seconds"),
    [
        ("1 secs", 1),
        ("5 secs", 5),
        ("30 secs", 30),
        ("1 min", 60),
        ("2 mins", 120),
        ("1 hour", 3600),
        ("8 hours", 28800),
        ("1 day", 86400),
        ("1 week", 604800),
        ("1 month", 30 * 86400),
        (" 15 SECS ", 15),
        ("", None),
        ("1d", None),
        ("5 minutes", None),
    ],
)
def test_bar_seconds_reads_ibs_bar_size_strings(size, seconds):
    assert bar_seconds(size) == seconds


def test_gate_ten_minute_rule_applies_only_to_bars_of_thirty_seconds_or_less():
    """IB's historical data limitations: the 60-per-10-minutes rule is for bars of 30 s
    or less. Larger bars neither wait for it nor use up its allowance."""
    gate = PacingGate(EXACT)
    t = 0.0
    for i in range(100):  # a 100-symbol daily warmup: one request each, 50 ms apart
        k = key(f"S{i}", bar_size="1 day", duration="1 Y")
        assert gate.wait_time(k, t) == 0.0, i
        gate.record(k, t)
        t += 0.05
    for size in ("1 min", "1 hour", "1 week", "1 month"):
        assert gate.wait_time(key("NEW", bar_size=size), t) == 0.0
    assert gate.recent(t) == 0  # none of them counts toward the small-bar allowance
    for i in range(60):
        k = key(f"T{i}", bar_size="30 secs")
        assert gate.wait_time(k, t) == 0.0
        gate.record(k, t)
    assert gate.recent(t) == 60
    for size in ("1 secs", "5 secs", "30 secs", "", "bogus"):  # unknown sizes count too
        assert gate.wait_time(key("NEW", bar_size=size), t) == pytest.approx(600.0), size
    assert gate.wait_time(key("NEW", bar_size="1 min"), t) == 0.0
    assert gate.wait_time(key("NEW", bar_size="1 day"), t) == 0.0


def test_gate_per_contract_and_identical_rules_still_apply_to_daily_bars():
    gate = PacingGate(EXACT)
    for i in range(5):
        k = key(bar_size="1 day", duration=f"{i + 1} D")
        gate.record(k, 0.0)
    assert gate.wait_time(key(bar_size="1 day", duration="6 D"), 0.5) == pytest.approx(1.5)
    assert gate.wait_time(key(bar_size="1 day", duration="1 D"), 5.0) == pytest.approx(10.0)


def test_policy_can_apply_the_ten_minute_rule_to_every_bar_size():
    gate = PacingGate(PacingPolicy(margin_s=0.0, window_max_bar_s=math.inf, max_requests=2))
    gate.record(key("A", bar_size="1 day"), 0.0)
    gate.record(key("B", bar_size="1 day"), 0.0)
    assert gate.wait_time(key("C", bar_size="1 day"), 1.0) == pytest.approx(599.0)
    wider = PacingGate(PacingPolicy(margin_s=0.0, window_max_bar_s=60.0, max_requests=1))
    wider.record(key("A", bar_size="1 min"), 0.0)
    assert wider.wait_time(key("B", bar_size="1 min"), 0.0) == pytest.approx(600.0)
    assert wider.wait_time(key("B", bar_size="2 mins"), 0.0) == 0.0


def test_gate_with_mixed_bar_sizes_never_breaks_ibsims_pacing_rules():
    """As the test above, with small and large bars mixed: the stand-in's guard, told each
    request's bar size, agrees with the gate; far more than 60 requests in 10 minutes
    pass when most are for large bars."""
    rng = random.Random(11)
    t = 0.0
    guard = PacingGuard(PacingLimits(), clock=lambda: t)
    gate = PacingGate(PacingPolicy())
    sizes = ["5 secs", "30 secs", "1 min", "1 hour", "1 day"]
    n, longest = 600, 0.0
    for i in range(n):
        size = rng.choice(sizes)
        k = key(rng.choice("ABCDEFGH"), duration=f"{rng.randint(1, 3)} D", bar_size=size)
        t += rng.choice([0.0, 0.0, 0.01, 0.3, 2.0])
        wait = gate.wait_time(k, t)
        longest = max(longest, wait)
        t += wait
        gate.record(k, t)
        assert guard.check((k.contract, k.what_to_show), k, bar_seconds(size)) == "", i
    assert longest > 60  # the small bars did wait for the 10-minute rule...
    assert n > 60 * (t / 600 + 1)  # ...and all bars together outran it


def test_ibsims_guard_applies_the_ten_minute_rule_only_to_small_bars():
    t = 0.0
    guard = PacingGuard(PacingLimits(max_requests=2), clock=lambda: t)
    assert guard.check("A", 1, 30.0) == guard.check("B", 2, 5.0) == ""
    assert "requests within 600" in guard.check("C", 3, 1.0)
    assert guard.check("C", 4, 86400.0) == guard.check("D", 5, 60.0) == ""
    assert "requests within 600" in guard.check("E", 6, None)  # unknown size: counted
    strict = PacingGuard(PacingLimits(max_requests=1, window_max_bar=math.inf), lambda: t)
    assert strict.check("A", 1, 86400.0) == ""
    assert "requests within 600" in strict.check("B", 2, 86400.0)


def test_backoff_doubles_from_two_seconds_up_to_a_minute():
    p = PacingPolicy()
    assert [p.backoff(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert (p.max_requests, p.window_s, p.per_contract_max, p.per_contract_window_s) == (
        60,
        600.0,
        5,
        2.0,
    )
    assert (p.identical_cooldown_s, p.max_retries, p.window_max_bar_s) == (15.0, 5, 30.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_requests": 0},
        {"window_s": 0},
        {"backoff_factor": 0.5},
        {"max_retries": -1},
        {"window_max_bar_s": 0},
    ],
)
def test_policy_rejects_nonsense(bad):
    with pytest.raises(ConfigError):
        PacingPolicy(**bad)


# --- bar sizes and request plans -------------------------------------------------------------


def test_ib_bar_size_maps_project_sizes():
    assert ib_bar_size("1d") == "1 day"
    assert ib_bar_size("1h") == "1 hour"
    assert ib_bar_size("5min") == "5 mins"
    assert ib_bar_size("1min") == "1 min"
    assert ib_bar_size("30s") == "30 secs"
    assert ib_bar_size("4h") == "4 hours"
    assert ib_bar_size("1w") == "1 week"
    with pytest.raises(DataError, match=r"offers .*5min"):
        ib_bar_size("7min")


@pytest.mark.parametrize(
    ("bar_size", "start", "end", "now"),
    [
        ("1d", "2013-01-01", "2023-09-22", "2023-09-22"),
        ("1d", "2014-01-01", "2015-01-01", "2020-01-01"),
        ("5min", "2024-01-01", "2024-01-20", "2024-01-20 12:00"),
        ("1min", "2024-01-02 14:30", "2024-01-04 21:00", "2024-01-05"),
        ("1h", "2023-01-01", "2023-06-01", "2023-06-01 10:00"),
        ("5s", "2024-01-02 14:30", "2024-01-02 16:00", "2024-01-03"),
    ],
)
def test_plan_covers_the_range_with_requests_ib_accepts(bar_size, start, end, now):
    a, b, n = to_ns(start), to_ns(end), to_ns(now)
    plan = plan_requests(bar_size, a, b, n)
    assert plan[0].end == b and plan[-1].start == a  # newest first, back to the start
    for newer, older in itertools.pairwise(plan):
        assert older.end == newer.start
    step = int(parse_bar_size(bar_size).total_seconds())
    longest = MAX_DURATION[step]
    for req in plan:
        value, unit = req.duration.split()
        seconds = {"S": 1, "D": 86400, "Y": 365 * 86400}[unit] * int(value)
        assert seconds <= longest, req
        assert unit != "Y" or value == "1"
        end = n if req.end_date_time is None else to_ns(req.end_date_time)
        assert end >= req.end  # the request reaches the last wanted bar...
        assert end - seconds * 1_000_000_000 <= req.start  # ...and back to the first
        assert req.end <= req.complete_until <= max(req.end, end - step * 1_000_000_000)


def test_plan_sends_an_empty_end_for_a_request_reaching_now():
    plan = plan_requests("1d", to_ns("2023-06-01"), to_ns("2023-09-21"), to_ns("2023-09-21"))
    assert len(plan) == 1 and plan[0].end_date_time is None


# --- the scheduler against the stand-in -------------------------------------------------------


def test_history_equals_the_csv_file_and_a_second_call_comes_from_the_cache(tmp_path):
    bars = copy_samples(tmp_path / "bars")
    tr = tmp_path / "t.jsonl"

    async def main():
        async with session(bars, transcript=tr) as (_sim, ib):
            sched = HistoryScheduler(ib, BarCache(tmp_path / "cache"))
            got = await sched.bars(
                aapl(), "1d", pd.Timestamp("2014-03-03"), pd.Timestamp("2015-06-30")
            )
            first = len(history_requests(tr))
            again = await sched.bars(
                aapl(), "1d", pd.Timestamp("2014-06-02"), pd.Timestamp("2015-01-02")
            )
            return got, again, first, len(history_requests(tr)), sched

    got, again, first, total, sched = run(main())
    pd.testing.assert_frame_equal(got, expected(bars / "AAPL_1d.csv", "2014-03-03", "2015-06-30"))
    pd.testing.assert_frame_equal(again, expected(bars / "AAPL_1d.csv", "2014-06-02", "2015-01-02"))
    assert first == sched.requests_sent >= 1
    assert total == first  # the second call made no request
    req = history_requests(tr)[0]
    assert "1 day" in req and "TRADES" in req


def test_concurrent_calls_for_one_symbol_share_one_download(tmp_path):
    bars = copy_samples(tmp_path / "bars")

    async def main():
        async with session(bars) as (_sim, ib):
            sched = HistoryScheduler(ib, BarCache(tmp_path / "cache"))
            start, end = pd.Timestamp("2014-03-03"), pd.Timestamp("2014-09-30")
            got = await asyncio.gather(*(sched.bars(aapl(), "1d", start, end) for _ in range(3)))
            return got, sched

    got, sched = run(main(), timeout=10)  # an identical second request would wait 15 s
    assert sched.requests_sent == 1
    for g in got:
        pd.testing.assert_frame_equal(g, got[0])


def test_a_restart_fetches_only_the_gap(tmp_path):
    bars = copy_samples(tmp_path / "bars")
    tr = tmp_path / "t.jsonl"
    cache_dir = tmp_path / "cache"

    async def main():
        async with session(bars, transcript=tr) as (_sim, ib):
            await HistoryScheduler(ib, BarCache(cache_dir)).bars(
                aapl(), "1d", pd.Timestamp("2014-01-02"), pd.Timestamp("2014-12-31")
            )
            before = len(history_requests(tr))
            fresh = HistoryScheduler(ib, BarCache(cache_dir))  # a restarted daemon
            cached = await fresh.bars(
                aapl(), "1d", pd.Timestamp("2014-02-03"), pd.Timestamp("2014-11-28")
            )
            assert fresh.requests_sent == 0
            wider = await fresh.bars(
                aapl(), "1d", pd.Timestamp("2014-01-02"), pd.Timestamp("2015-03-31")
            )
            return before, history_requests(tr)[before:], cached, wider, fresh

    before, gap_requests, cached, wider, fresh = run(main())
    csv = bars / "AAPL_1d.csv"
    pd.testing.assert_frame_equal(cached, expected(csv, "2014-02-03", "2014-11-28"))
    pd.testing.assert_frame_equal(wider, expected(csv, "2014-01-02", "2015-03-31"))
    assert before >= 1
    assert len(gap_requests) == fresh.requests_sent == 1
    fields = gap_requests[0]
    assert "20150402 00:00:00 UTC" in fields  # ends a day after 2015-03-31's bar closed...
    assert "91 D" in fields  # ...and reaches back only to the cached range's end (2015-01-01)


def test_many_symbols_of_daily_bars_at_once_never_wait_ten_minutes_nor_violate_pacing(
    tmp_path,
):
    """Over 60 daily-bar requests: IB's 10-minute rule is for bars of 30 s or less, so
    only the per-contract and identical rules pace them (seconds, not ten minutes), and
    the stand-in, which enforces IB's rules, refuses none."""
    symbols = ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA")
    bars = copy_samples(tmp_path / "bars", symbols)
    tr = tmp_path / "t.jsonl"
    fake = FakeTime()

    async def main():
        async with session(bars, fake=fake, transcript=tr, start=2699) as (_sim, ib):
            errors = ErrorLog(ib)
            sched = HistoryScheduler(
                ib, BarCache(tmp_path / "cache"), clock=fake.now, sleep=fake.sleep
            )
            fake.scheduler = sched
            t0 = fake.now()
            results = await asyncio.gather(
                *(
                    sched.bars(Stock(s, "SMART", "USD"), "1d", pd.Timestamp("2013-01-01"))
                    for s in symbols
                )
            )
            return results, errors.codes(), sched, fake.now() - t0

    results, codes, sched, elapsed = run(main())
    assert 162 not in codes
    assert sent_errors(tr, 162) == 0
    assert sched.pacing_violations == 0
    assert sched.requests_sent == len(history_requests(tr)) > 60
    assert elapsed < 60  # the 60-per-10-minutes rule did not apply
    for sym, got in zip(symbols, results, strict=True):
        pd.testing.assert_frame_equal(got, expected(bars / f"{sym}_1d.csv", "2013-01-01"))


def test_small_bars_wait_for_the_ten_minute_rule(tmp_path):
    """30-second bars are under IB's 10-minute rule (here 5 requests per 10 minutes on both
    sides): the scheduler waits for it and is never refused."""
    d = tmp_path / "bars"
    d.mkdir()
    src = synthetic_bars(7 * 960, freq="30s", start="2024-01-01")  # 56 hours: > 5 requests
    src.to_csv(d / "SYN_30s.csv")
    tr = tmp_path / "t.jsonl"
    fake = FakeTime()
    limits = PacingLimits(max_requests=5)

    async def main():
        async with session(d, fake=fake, transcript=tr, start=len(src), pacing=limits) as (
            _sim,
            ib,
        ):
            sched = HistoryScheduler(
                ib, policy=PacingPolicy(max_requests=5), clock=fake.now, sleep=fake.sleep
            )
            fake.scheduler = sched
            t0 = fake.now()
            got = await sched.bars(
                Stock("SYN", "SMART", "USD"), "30s", pd.Timestamp("2024-01-01 00:00")
            )
            return got, sched, fake.now() - t0

    got, sched, elapsed = run(main())
    pd.testing.assert_frame_equal(got, load_csv(d / "SYN_30s.csv"))
    assert sched.requests_sent == len(history_requests(tr)) > 5
    assert sched.pacing_violations == 0 and sent_errors(tr, 162) == 0
    assert elapsed >= 600  # the 6th request waited for the first to leave the window


def test_a_pacing_violation_is_retried_with_backoff_and_succeeds(tmp_path):
    bars = copy_samples(tmp_path / "bars")
    fake = FakeTime()

    async def main():
        async with session(bars, fake=fake) as (sim, ib):
            errors = ErrorLog(ib)
            # Another client used up AAPL's per-contract allowance a moment ago.
            for i in range(5):
                assert sim.ctx.pacing.check((con_id_for("AAPL"), "TRADES"), ("other", i)) == ""
            sched = HistoryScheduler(ib, clock=fake.now, sleep=fake.sleep)
            fake.scheduler = sched
            got = await sched.bars(
                aapl(), "1d", pd.Timestamp("2014-03-03"), pd.Timestamp("2014-09-30")
            )
            return got, errors.codes(), sched

    got, codes, sched = run(main())
    pd.testing.assert_frame_equal(got, expected(bars / "AAPL_1d.csv", "2014-03-03", "2014-09-30"))
    assert codes.count(162) == 1 and sched.pacing_violations == 1
    assert fake.sleeps[0] == 2.0  # the first backoff
    assert sum(fake.sleeps) >= 15.0  # and the identical request waited out IB's 15 s rule


def test_pacing_violations_beyond_the_retries_raise_history_error(tmp_path):
    bars = copy_samples(tmp_path / "bars")
    fake = FakeTime()

    async def main():
        strict = PacingLimits(max_requests=1, window=3600.0, window_max_bar=math.inf)
        async with session(bars, fake=fake, pacing=strict) as (_sim, ib):
            sched = HistoryScheduler(ib, clock=fake.now, sleep=fake.sleep)
            fake.scheduler = sched
            with pytest.raises(HistoryError) as info:
                await sched.bars(
                    aapl(), "1d", pd.Timestamp("2013-01-02"), pd.Timestamp("2015-12-31")
                )
            return info.value, sched

    err, sched = run(main())
    assert err.reason == "pacing" and err.code == 162 and err.retryable
    assert isinstance(err, StratVectorError)
    assert "AAPL" in str(err) and "1d" in str(err) and "2013-01-02" in str(err)
    assert sched.pacing_violations == 6  # the first refusal and five retries
    assert [s for s in fake.sleeps if s in (2.0, 4.0, 8.0, 16.0, 32.0)] == [2, 4, 8, 16, 32]


def test_unknown_symbol_raises_history_error_naming_it(tmp_path):
    bars = copy_samples(tmp_path / "bars")

    async def main():
        async with session(bars) as (_sim, ib):
            with pytest.raises(HistoryError) as info:
                await HistoryScheduler(ib).bars(
                    Stock("ZZZZ", "SMART", "USD"), "1d", pd.Timestamp("2014-01-02")
                )
            return info.value

    err = run(main())
    assert err.reason == "unknown_contract" and err.code == 200 and not err.retryable
    assert "ZZZZ" in str(err) and "error 200" in str(err)
    assert err.symbol == "ZZZZ" and err.bar_size == "1d"


def test_a_lost_connection_raises_history_error(tmp_path):
    bars = copy_samples(tmp_path / "bars")

    async def main():
        async with session(bars) as (sim, ib):
            sched = HistoryScheduler(ib)
            sim.set_jitter(0.2, 0.2)  # answers arrive late; the socket drops first
            asyncio.get_running_loop().call_later(0.05, sim.drop_connections)
            with pytest.raises(HistoryError) as lost:
                await sched.bars(aapl(), "1d", pd.Timestamp("2014-01-02"))
            with pytest.raises(HistoryError) as down:
                await sched.bars(aapl(), "1d", pd.Timestamp("2014-01-02"))
            return lost.value, down.value

    lost, down = run(main())
    assert lost.reason == down.reason == "disconnected" and lost.retryable
    assert "AAPL" in str(down)


class _FirstRequestTimesOut:
    """The client, except that its first history request ends as ib_async's timeout does:
    after the timeout, with an empty bar list."""

    def __init__(self, ib, timeout):
        self._ib, self._timeout, self.calls = ib, timeout, 0

    def __getattr__(self, name):
        return getattr(self._ib, name)

    async def reqHistoricalDataAsync(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(self._timeout)
            return BarDataList()
        return await self._ib.reqHistoricalDataAsync(*args, **kwargs)


def test_a_timeout_is_retried(tmp_path):
    bars = copy_samples(tmp_path / "bars")
    fake = FakeTime()

    async def main():
        async with session(bars, fake=fake) as (_sim, ib):
            slow = _FirstRequestTimesOut(ib, 0.5)
            sched = HistoryScheduler(slow, clock=fake.now, sleep=fake.sleep, timeout=0.5)
            fake.scheduler = sched
            got = await sched.bars(
                aapl(), "1d", pd.Timestamp("2014-03-03"), pd.Timestamp("2014-09-30")
            )
            return got, sched, slow.calls

    got, sched, calls = run(main())
    pd.testing.assert_frame_equal(got, expected(bars / "AAPL_1d.csv", "2014-03-03", "2014-09-30"))
    assert sched.timeouts == 1 and calls == 2 and fake.sleeps[0] == 2.0


def test_end_none_means_ibs_now_and_later_calls_fetch_only_new_bars(tmp_path):
    bars = copy_samples(tmp_path / "bars")
    tr = tmp_path / "t.jsonl"

    async def main():
        async with session(bars, transcript=tr, start="2015-01-02") as (sim, ib):
            sched = HistoryScheduler(ib, BarCache(tmp_path / "cache"))
            first = await sched.bars(aapl(), "1d", pd.Timestamp("2014-06-02"))
            n1 = len(history_requests(tr))
            same = await sched.bars(aapl(), "1d", pd.Timestamp("2014-06-02"))
            n2 = len(history_requests(tr))
            await sim.advance(3)
            later = await sched.bars(aapl(), "1d", pd.Timestamp("2014-06-02"))
            return first, same, later, n1, n2, len(history_requests(tr))

    first, same, later, n1, n2, n3 = run(main())
    csv = bars / "AAPL_1d.csv"
    pd.testing.assert_frame_equal(first, expected(csv, "2014-06-02", "2014-12-31"))
    pd.testing.assert_frame_equal(same, first)
    pd.testing.assert_frame_equal(later, expected(csv, "2014-06-02", "2015-01-06"))
    assert (n1, n2, n3) == (1, 1, 2)  # cached until new bars closed; then only the tail


def test_intraday_history_is_split_into_ib_sized_requests(tmp_path):
    d = tmp_path / "bars"
    d.mkdir()
    src = synthetic_bars(8 * 24 * 12, freq="5min", start="2024-01-01")  # eight days of 5 mins
    src.to_csv(d / "SYN_5min.csv")
    tr = tmp_path / "t.jsonl"

    async def main():
        async with session(d, transcript=tr, start=len(src)) as (_sim, ib):
            sched = HistoryScheduler(ib, BarCache(tmp_path / "cache"))
            got = await sched.bars(
                Stock("SYN", "SMART", "USD"), "5min", pd.Timestamp("2024-01-01 00:00")
            )
            hour = await sched.bars(
                Stock("SYN", "SMART", "USD"),
                "1h",
                pd.Timestamp("2024-01-02"),
                pd.Timestamp("2024-01-02 23:00"),
            )
            return got, hour, history_requests(tr)

    got, hour, reqs = run(main())
    want = load_csv(d / "SYN_5min.csv")
    pd.testing.assert_frame_equal(got, want)
    assert len(reqs) == 3  # one week of 5-minute bars per request (IB's limit), then 1 hour
    assert [r for r in reqs[:2] if "5 mins" in r] == reqs[:2]
    assert len(hour) == 24
    day = want[(want.index >= "2024-01-02") & (want.index < "2024-01-03")]
    pd.testing.assert_frame_equal(hour, resample_bars(day, "1h"), check_freq=False)


def test_a_corrupt_or_unwritable_cache_never_stops_history(tmp_path, caplog):
    bars = copy_samples(tmp_path / "bars")
    cache = BarCache(tmp_path / "cache")
    bad = cache.path("AAPL", "1d")
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 not really parquet")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")

    async def main():
        async with session(bars) as (_sim, ib):
            a = await HistoryScheduler(ib, cache).bars(
                aapl(), "1d", pd.Timestamp("2014-03-03"), pd.Timestamp("2014-09-30")
            )
            # another range: a second scheduler's identical request would be refused by
            # IB's 15-second rule (one scheduler per connection knows its own requests)
            b = await HistoryScheduler(ib, BarCache(blocked)).bars(
                aapl(), "1d", pd.Timestamp("2014-03-03"), pd.Timestamp("2014-10-31")
            )
            return a, b

    a, b = run(main())
    want = expected(bars / "AAPL_1d.csv", "2014-03-03", "2014-09-30")
    pd.testing.assert_frame_equal(a, want)
    pd.testing.assert_frame_equal(b, expected(bars / "AAPL_1d.csv", "2014-03-03", "2014-10-31"))
    assert "unreadable" in caplog.text and "not cached" in caplog.text
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", "2014-03-03", "2014-09-30"), want)


def test_bad_arguments_raise_history_error_before_any_request():
    sched = HistoryScheduler(object())  # type: ignore[arg-type]  # never touched

    async def main():
        with pytest.raises(HistoryError, match="7min"):
            await sched.bars(aapl(), "7min", pd.Timestamp("2020-01-01"))
        with pytest.raises(HistoryError, match="before the start"):
            await sched.bars(aapl(), "1d", pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-01"))

    run(main())
    assert sched.requests_sent == 0


def test_constructor_does_no_io(tmp_path: Path):
    root = tmp_path / "nothing-yet"
    HistoryScheduler(object(), BarCache(root))  # type: ignore[arg-type]
    assert not root.exists()


async def test_requests_made_outside_the_scheduler_are_admitted_on_its_clock() -> None:
    # the feed's subscriptions: same gate, same (here fake) clock, same key spelling
    fake = FakeTime()
    sched = HistoryScheduler(None, None, clock=fake.now, sleep=fake.sleep)  # type: ignore[arg-type]
    contract = Stock("AAA", "SMART", "USD")
    for duration in ("1 D", "2 D", "3 D", "4 D", "5 D"):  # five for one contract: allowed
        await sched.admit(
            contract, what_to_show="TRADES", ib_size="1 day", duration=duration, use_rth=True
        )
    assert fake.sleeps == [] and fake.t == 1_000.0
    await sched.admit(
        contract, what_to_show="TRADES", ib_size="1 day", duration="6 D", use_rth=True
    )
    # the sixth within 2 s waits on the scheduler's clock (a monotonic clock would not move)
    assert fake.sleeps and fake.t >= 1_002.0
