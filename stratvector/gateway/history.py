"""Historical bars from IB for warm-up: cached, split into IB-sized requests, paced.

:class:`HistoryScheduler` answers "the bars of this contract at this bar size from
``start`` to ``end``" in the project's bar schema (UTC bar-start index, float64
``open high low close volume``). It serves what the :class:`~stratvector.data.cache.BarCache`
already covers, fetches only the missing ranges from IB, and stores them, so a restart
re-downloads nothing it already has.

Requests
--------
- A missing range is split into IB-sized requests, newest first, by
  :func:`~stratvector.gateway.history_plan.plan_requests` (durations, ``endDateTime``);
  bars IB sends outside a request's planned range are dropped.
- Error 162 "HMDS query returned no data" means IB has no bars there (before a
  listing, a holiday): the range is recorded as empty, not retried.
- Before each request the :class:`~stratvector.gateway.pacing.PacingGate` says how long
  to wait; the scheduler sleeps that long, so it never breaks a pacing rule it knows of.
  IB's 60-requests-per-10-minutes rule only holds for bars of 30 seconds or less, so a
  daily or hourly warmup of many symbols is paced by the per-contract and
  identical-request rules alone (the key carries IB's bar size for that).
  Error 162 (pacing violation) and timeouts are retried after the policy's backoff;
  after ``max_retries`` they fail with :class:`HistoryError`.

Time
----
- "Now" is IB's server time (``reqCurrentTime``), fetched whenever the cache alone
  cannot answer, so a simulated gateway (``ibsim``) and real IB behave alike.
- Only closed bars are returned and cached: a bar counts as closed once ``start +
  bar size <= now`` (a daily bar once its UTC day is over). For the newest request the
  cache records coverage only up to the last bar IB sent, so a bar IB publishes late is
  fetched on the next call instead of being cached as missing.
- Daily bars come from IB dated ``YYYYMMDD`` (ib_async gives ``datetime.date``): they are
  labelled at UTC midnight of that date, as the CSV loader labels daily files. Intraday
  bars are requested with ``formatDate=2`` (epoch seconds), so the TWS time zone setting
  does not matter.

Hazards
-------
- Use one scheduler per IB connection: the pacing gate only knows its own requests.
- ib_async keys ``reqCurrentTime`` by a single name: a concurrent ``reqCurrentTime`` by
  other code on the same ``IB`` can make one of them time out (retried here).
- The cache is keyed by symbol, so two contracts with the same symbol (a stock listed
  in two currencies) must not share a cache folder. ``what_to_show`` other than
  ``TRADES`` and ``use_rth=False`` are cached under ``SYMBOL.WHAT`` / ``SYMBOL.ALLHOURS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import ib_async
import numpy as np
import pandas as pd
from ib_async import util as ib_util

from stratvector.data.cache import (
    BAR_TIME_UNIT,
    BarCache,
    CachedBars,
    canonical_bar_size,
    empty_bars,
    from_ns,
    normalize_bars,
    replace_range,
    to_ns,
)
from stratvector.data.resample import parse_bar_size
from stratvector.data.schema import index_ns
from stratvector.errors import DataError
from stratvector.gateway.history_plan import (
    IB_BAR_SIZES,
    MAX_DURATION,
    HistoryRequest,
    ib_bar_size,
    plan_requests,
)
from stratvector.gateway.pacing import DEFAULT_POLICY, PacingGate, PacingPolicy, RequestKey

log = logging.getLogger("stratvector.gateway.history")

_S = 1_000_000_000

# ib_async treats these codes as warnings that do not end a request (wrapper.error);
# 321 ("error validating request") is among them but does end a historical request at IB.
_IB_WARNINGS = frozenset({105, 110, 165, 329, 399, 404, 434, 492, 10167})
_NOT_ENDED_BY_IB_ASYNC = frozenset({321})


class HistoryError(DataError):
    """Historical bars could not be loaded from IB.

    ``reason`` is one of ``"unknown_contract"`` (error 200), ``"pacing"`` (error 162
    after all retries), ``"timeout"``, ``"disconnected"``, ``"rejected"`` (any other IB
    error) or ``"invalid"`` (a bad argument); ``code`` is IB's error code when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        symbol: str,
        bar_size: str,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        reason: str,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.symbol = symbol
        self.bar_size = bar_size
        self.start = start
        self.end = end
        self.reason = reason
        self.code = code

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (pacing, timeout, lost connection)."""
        return self.reason in ("pacing", "timeout", "disconnected")


@dataclass(frozen=True)
class _Call:
    """The parameters of one ``bars()`` call, for requests and error messages."""

    contract: ib_async.Contract
    symbol: str
    bar_size: str
    ib_size: str
    what_to_show: str
    use_rth: bool
    start: pd.Timestamp
    end: pd.Timestamp | None

    def error(self, detail: str, reason: str, code: int | None = None) -> HistoryError:
        end = "now" if self.end is None else str(self.end)
        return HistoryError(
            f"cannot load {self.bar_size} history of {self.symbol} from {self.start} to "
            f"{end}: {detail}",
            symbol=self.symbol,
            bar_size=self.bar_size,
            start=self.start,
            end=self.end,
            reason=reason,
            code=code,
        )


@dataclass(frozen=True)
class _Retry:
    """A request outcome: IB refused it for pacing (``code`` 162) or it timed out (None)."""

    code: int | None


class HistoryScheduler:
    """Historical bars for many contracts through one ib_async ``IB``, cached and paced.

    The constructor does no I/O. ``clock`` (monotonic seconds) and ``sleep`` drive the
    pacing waits and backoff, so tests can run IB's 10-minute window in no time;
    ``timeout`` is the seconds one IB request may take before it is retried.

    Counters for metrics and tests: ``requests_sent``, ``pacing_violations``,
    ``timeouts``, ``in_flight`` (requests sent and not yet answered).
    """

    def __init__(
        self,
        ib: ib_async.IB,
        cache: BarCache | None = None,
        policy: PacingPolicy = DEFAULT_POLICY,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        timeout: float = 60.0,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout}")
        self._ib = ib
        self._cache = cache
        self.policy = policy
        self._gate = PacingGate(policy)
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._time_lock: asyncio.Lock | None = None
        self.requests_sent = 0
        self.pacing_violations = 0
        self.timeouts = 0
        self.in_flight = 0

    @property
    def gate(self) -> PacingGate:
        """The pacing gate (requests made outside the scheduler go through :meth:`admit`)."""
        return self._gate

    async def admit(
        self,
        contract: ib_async.Contract,
        *,
        what_to_show: str,
        ib_size: str,
        duration: str,
        use_rth: bool,
        end: str = "",
    ) -> None:
        """Wait until IB's pacing allows a historical-data request made outside this
        scheduler (the feed's keepUpToDate subscriptions), and count it: every request
        on the connection goes through one gate, on this scheduler's clock, keyed by
        the contract as the scheduler's own requests are."""
        symbol = contract.symbol or contract.localSymbol or ""
        key = RequestKey(symbol.upper(), what_to_show, ib_size, duration, end, use_rth)
        while (wait := self._gate.wait_time(key, self._clock())) > 0:
            await self._sleep(wait)
        self._gate.record(key, self._clock())

    async def bars(
        self,
        contract: ib_async.Contract,
        bar_size: str,
        start: datetime,
        end: datetime | None = None,
        *,
        what_to_show: str = "TRADES",
        use_rth: bool = True,
    ) -> pd.DataFrame:
        """The closed bars of ``contract`` starting in ``[start, end]`` (``end=None``: up
        to now), validated, in the project schema; empty if there are none.

        Served from the cache where it covers the range; the rest is fetched from IB
        (paced, retried) and cached. Naive datetimes are UTC. Raises :class:`HistoryError`
        for an unknown contract (IB error 200), a pacing violation or timeout that
        outlasts the retries, a lost connection, or any other IB error.
        """
        symbol = contract.symbol or contract.localSymbol or ""
        start_ts = from_ns(to_ns(start))
        end_ts = None if end is None else from_ns(to_ns(end))
        call = _Call(contract, symbol, bar_size, "", what_to_show, use_rth, start_ts, end_ts)
        try:
            call = replace(call, ib_size=ib_bar_size(bar_size))
        except DataError as exc:
            raise call.error(str(exc), "invalid") from exc
        if not symbol:
            raise call.error("the contract has no symbol or localSymbol", "invalid")
        if end_ts is not None and end_ts < start_ts:
            raise call.error("the end is before the start", "invalid")
        name = _cache_name(symbol, what_to_show, use_rth)
        lock = self._locks.setdefault((name, canonical_bar_size(bar_size)), asyncio.Lock())
        async with lock:
            return await self._bars(call, name)

    # --- one call, with the (symbol, bar size) lock held ------------------------------------

    async def _bars(self, call: _Call, name: str) -> pd.DataFrame:
        a = to_ns(call.start)
        cached = await self._read_cache(name, call.bar_size)
        if call.end is not None and cached is not None:
            b = to_ns(call.end) + 1
            if cached.covers(a, b):
                log.debug("history %s %s: served from the cache", call.symbol, call.bar_size)
                return cached.slice(a, b)
        now = await self._server_now(call)
        step = int(parse_bar_size(call.bar_size).total_seconds()) * _S
        closed_until = now - step + 1  # bars starting before this have closed
        b = closed_until if call.end is None else min(to_ns(call.end) + 1, closed_until)
        frame = cached.bars if cached is not None else empty_bars()
        if b <= a:
            return frame.iloc[0:0]
        gaps = cached.missing(a, b) if cached is not None else [(a, b)]
        for gap_start, gap_end in reversed(gaps):
            for req in plan_requests(call.bar_size, gap_start, gap_end, now):
                got = await self._fetch(call, req)
                cover_end = req.complete_until
                if req.end_date_time is None:
                    # up to now: claim only what IB sent, a bar it publishes late comes next time
                    cover_end = int(index_ns(got.index)[-1]) + 1 if len(got) else req.start
                frame = replace_range(frame, got, req.start, cover_end)
                if cover_end > req.start:
                    await self._write_cache(name, call, got, req.start, cover_end)
        t = index_ns(frame.index)
        return frame[(t >= a) & (t < b)]

    async def _fetch(self, call: _Call, req: HistoryRequest) -> pd.DataFrame:
        """One planned request: wait for the gate, send, retry pacing errors and timeouts."""
        end_text = ib_util.formatIBDatetime(req.end_date_time)
        key = RequestKey(
            contract=call.symbol.upper(),
            what_to_show=call.what_to_show,
            bar_size=call.ib_size,
            duration=req.duration,
            end=end_text,
            use_rth=call.use_rth,
        )
        retry = 0
        while True:
            while (wait := self._gate.wait_time(key, self._clock())) > 0:
                log.debug("history %s: pacing wait %.3f s", call.symbol, wait)
                await self._sleep(wait)
            if not self._ib.isConnected():
                raise call.error("not connected to IB", "disconnected")
            self._gate.record(key, self._clock())
            self.requests_sent += 1
            self.in_flight += 1
            try:
                outcome = await self._request(call, req, end_text)
            finally:
                self.in_flight -= 1
            if isinstance(outcome, pd.DataFrame):
                return outcome
            retry += 1
            if retry > self.policy.max_retries:
                what = "refused for pacing (error 162)" if outcome.code else "timed out"
                raise call.error(
                    f"the request (end {end_text or 'now'}, duration {req.duration}) was "
                    f"{what} {retry} times; IB's historical-data limits are shared by every "
                    "client of this IB login",
                    "pacing" if outcome.code else "timeout",
                    outcome.code,
                )
            delay = self.policy.backoff(retry)
            log.warning(
                "history %s %s: retry %d of %d in %.1f s",
                call.symbol,
                call.bar_size,
                retry,
                self.policy.max_retries,
                delay,
            )
            await self._sleep(delay)

    async def _request(
        self, call: _Call, req: HistoryRequest, end_text: str
    ) -> pd.DataFrame | _Retry:
        """Send one request; return its bars or :class:`_Retry`, or raise :class:`HistoryError`."""
        probe = copy.copy(call.contract)  # its identity routes IB's errors to this request
        errors: list[tuple[int, str]] = []
        failed = asyncio.Event()

        def on_error(req_id: int, code: int, text: str, contract: object) -> None:
            if contract is probe and code not in _IB_WARNINGS and not 2100 <= code < 2200:
                errors.append((code, text))
                failed.set()

        loop = asyncio.get_running_loop()
        started = loop.time()
        self._ib.errorEvent += on_error
        task = asyncio.ensure_future(
            self._ib.reqHistoricalDataAsync(
                probe,
                endDateTime=end_text,
                durationStr=req.duration,
                barSizeSetting=call.ib_size,
                whatToShow=call.what_to_show,
                useRTH=call.use_rth,
                formatDate=2,
                keepUpToDate=False,
                timeout=self._timeout,
            )
        )
        waiter = asyncio.ensure_future(failed.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and errors and errors[0][0] in _NOT_ENDED_BY_IB_ASYNC:
                task.cancel()  # ib_async keeps waiting on a request IB has rejected
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
        finally:
            self._ib.errorEvent -= on_error
            waiter.cancel()
            if not task.done():
                task.cancel()
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, ConnectionError):
            raise call.error(f"the connection to IB was lost ({exc})", "disconnected") from exc
        if isinstance(exc, ib_async.RequestError):
            errors.insert(0, (exc.code, exc.message))
        elif exc is not None:
            raise exc
        if errors:
            code, text = errors[0]
            return self._on_ib_error(call, code, text)
        bars = [] if task.cancelled() else task.result()
        if not bars and loop.time() - started >= self._timeout * 0.999:
            # ib_async returns an empty list when its timeout expires (it cancels at IB)
            self.timeouts += 1
            log.warning("history %s: request timed out after %.1f s", call.symbol, self._timeout)
            return _Retry(None)
        return self._to_frame(call, req, bars)

    def _on_ib_error(self, call: _Call, code: int, text: str) -> pd.DataFrame | _Retry:
        lowered = text.lower()
        if code == 162 and "pacing" in lowered:
            self.pacing_violations += 1
            log.warning("history %s: IB pacing violation: %s", call.symbol, text)
            return _Retry(162)
        if code == 162 and "no data" in lowered:
            return empty_bars()  # IB has no bars in this range (before listing, holidays)
        if code == 200:
            raise call.error(
                f"IB error 200: {text}; check the symbol, secType, exchange and currency",
                "unknown_contract",
                code,
            )
        raise call.error(f"IB error {code}: {text}", "rejected", code)

    def _to_frame(self, call: _Call, req: HistoryRequest, bars: list[Any]) -> pd.DataFrame:
        """IB's bars as a validated frame: those starting in ``[start, complete_until)``."""
        if not bars:
            return empty_bars()
        times = np.fromiter((_bar_time_ns(b.date) for b in bars), dtype=np.int64, count=len(bars))
        cols = {
            name: np.fromiter((getattr(b, name) for b in bars), dtype=np.float64, count=len(bars))
            for name in ("open", "high", "low", "close", "volume")
        }
        cols["volume"] = np.maximum(cols["volume"], 0.0)  # IB sends -1 where there is none
        keep = (times >= req.start) & (times < req.complete_until)
        index = pd.DatetimeIndex(times[keep].astype("datetime64[ns]"), name="time")
        frame = pd.DataFrame(
            {k: v[keep] for k, v in cols.items()},
            index=index.tz_localize("UTC").as_unit(BAR_TIME_UNIT),
        )
        try:
            return normalize_bars(frame, f"IB {call.ib_size} bars of {call.symbol}")
        except DataError as exc:
            raise call.error(f"IB sent invalid bars: {exc}", "rejected") from exc

    # --- IB server time and the cache (off the event loop) ------------------------------

    async def _server_now(self, call: _Call) -> int:
        """IB's current time in ns (the simulated clock under ibsim); one query at a time."""
        if self._time_lock is None:
            self._time_lock = asyncio.Lock()
        retry = 0
        async with self._time_lock:
            while True:
                try:
                    now = await asyncio.wait_for(self._ib.reqCurrentTimeAsync(), self._timeout)
                    return to_ns(now)
                except ConnectionError as exc:
                    raise call.error(f"not connected to IB ({exc})", "disconnected") from exc
                except TimeoutError:
                    retry += 1
                    self.timeouts += 1
                    if retry > self.policy.max_retries:
                        raise call.error("IB did not answer reqCurrentTime", "timeout") from None
                    await self._sleep(self.policy.backoff(retry))

    async def _read_cache(self, name: str, bar_size: str) -> CachedBars | None:
        if self._cache is None:
            return None
        return await asyncio.to_thread(self._cache.read, name, bar_size)

    async def _write_cache(
        self, name: str, call: _Call, bars: pd.DataFrame, a: int, b: int
    ) -> None:
        if self._cache is None:
            return
        try:
            await asyncio.to_thread(
                self._cache.put, name, call.bar_size, bars, from_ns(a), from_ns(b - 1)
            )
        except DataError as exc:
            log.warning("history %s: not cached (%s); the bars are still returned", name, exc)


def _cache_name(symbol: str, what_to_show: str, use_rth: bool) -> str:
    parts = [symbol]
    if what_to_show.upper() != "TRADES":
        parts.append(what_to_show.upper())
    if not use_rth:
        parts.append("ALLHOURS")
    return ".".join(parts)


def _bar_time_ns(value: object) -> int:
    """A bar date from ib_async as UTC ns: a ``date`` is UTC midnight of that date."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return to_ns(value)
    if isinstance(value, date):
        return to_ns(datetime(value.year, value.month, value.day, tzinfo=UTC))
    raise DataError(f"unexpected bar date {value!r} from IB")


__all__ = [
    "IB_BAR_SIZES",
    "MAX_DURATION",
    "HistoryError",
    "HistoryRequest",
    "HistoryScheduler",
    "ib_bar_size",
    "plan_requests",
]
