"""Request planning for IB historical data: a span of bars split into IB-sized requests.

Pure functions and tables, no I/O: :class:`~stratvector.gateway.history.HistoryScheduler`
plans each range its cache is missing here, then paces, sends and retries the requests.

- A missing range is split into requests no longer than IB allows for the bar size
  (:data:`MAX_DURATION`: IB's table of valid duration / bar size pairs, e.g. one day of
  1-minute bars, one week of 5-minute bars, one month of hourly bars, one year of daily
  bars), newest first. Durations are ``"N S"``, ``"N D"`` or ``"1 Y"``.
- IB labels bars by their start and returns those that ended by ``endDateTime``. So a
  request ends one bar after the next whole second (daily and longer bars: the next UTC
  midnight) following the last bar it wants; that also takes in a daily session that
  ends after midnight UTC. The scheduler drops bars outside the planned range, and the
  range it records as complete (:attr:`HistoryRequest.complete_until`) reaches one bar
  before ``endDateTime``. A request whose end is not in the past is sent with
  ``endDateTime=""`` (now).

Times are int64 UTC nanoseconds with half-open ranges ``[start, end)``, as in
:class:`~stratvector.data.cache.CachedBars`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from stratvector.data.cache import canonical_bar_size, from_ns
from stratvector.data.resample import parse_bar_size
from stratvector.errors import DataError

_S = 1_000_000_000
_DAY = 86_400
_WEEK = 7 * _DAY

#: IB's bar-size strings by bar length in seconds (the only sizes IB accepts).
IB_BAR_SIZES: dict[int, str] = {
    1: "1 secs",
    5: "5 secs",
    10: "10 secs",
    15: "15 secs",
    30: "30 secs",
    60: "1 min",
    120: "2 mins",
    180: "3 mins",
    300: "5 mins",
    600: "10 mins",
    900: "15 mins",
    1200: "20 mins",
    1800: "30 mins",
    3600: "1 hour",
    7200: "2 hours",
    10800: "3 hours",
    14400: "4 hours",
    28800: "8 hours",
    _DAY: "1 day",
    _WEEK: "1 week",
}

#: The longest duration (seconds) of one request per bar length, from IB's table of valid
#: duration / bar size combinations (1800 S, 3600 S, 14400 S, 28800 S, 1 D, 2 D, 1 W,
#: 1 M taken as 30 days, 1 Y taken as 365 days).
MAX_DURATION: dict[int, int] = {
    1: 1800,
    5: 3600,
    10: 14400,
    15: 14400,
    30: 28800,
    60: _DAY,
    120: 2 * _DAY,
    180: _WEEK,
    300: _WEEK,
    600: _WEEK,
    900: _WEEK,
    1200: _WEEK,
    1800: 30 * _DAY,
    3600: 30 * _DAY,
    7200: 30 * _DAY,
    10800: 30 * _DAY,
    14400: 30 * _DAY,
    28800: 30 * _DAY,
    _DAY: 365 * _DAY,
    _WEEK: 365 * _DAY,
}


def ib_bar_size(bar_size: str) -> str:
    """IB's barSizeSetting for a project bar size: ``"1d"`` -> ``"1 day"``, ``"5min"`` ->
    ``"5 mins"``. Raises :class:`DataError` for a size IB does not offer."""
    secs = int(parse_bar_size(bar_size).total_seconds())
    ib = IB_BAR_SIZES.get(secs)
    if ib is None:
        offered = ", ".join(canonical_bar_size(f"{s}s") for s in IB_BAR_SIZES)
        raise DataError(f"IB has no {bar_size!r} bars; it offers {offered}")
    return ib


@dataclass(frozen=True)
class HistoryRequest:
    """One IB request of a plan: it fetches the bars starting in ``[start, end)`` (ns).

    ``end_date_time`` is IB's endDateTime (``None`` = now, sent as ``""``); ``duration``
    is IB's durationStr reaching back from it to at least ``start``. IB's answer holds
    every bar starting in ``[start, complete_until)``: for an end in the past that is up
    to one bar before ``end_date_time`` (a little beyond ``end``, which closes the gap
    between an inclusive end date and the next day); for a request up to now it is ``end``.
    """

    start: int
    end: int
    end_date_time: datetime | None
    duration: str
    complete_until: int


def plan_requests(bar_size: str, start: int, end: int, now: int) -> list[HistoryRequest]:
    """Split the bars starting in ``[start, end)`` (ns, ``end <= now``) into IB requests,
    newest first, each within :data:`MAX_DURATION` for ``bar_size``."""
    step_s = int(parse_bar_size(bar_size).total_seconds())
    if step_s not in MAX_DURATION:
        ib_bar_size(bar_size)  # raises with the list of offered sizes
    step = step_s * _S
    grid = _DAY * _S if step_s >= _DAY else _S
    longest = MAX_DURATION[step_s] * _S
    now_grid = _ceil(now, grid)
    out: list[HistoryRequest] = []
    hi = end
    while hi > start:
        want_end = _ceil(hi, grid) + step
        live = want_end >= now
        req_end = min(want_end, now_grid) if live else want_end
        lo = max(start, req_end - longest)
        span = req_end - _floor(lo, grid)
        out.append(
            HistoryRequest(
                start=lo,
                end=hi,
                end_date_time=None if live else from_ns(req_end).to_pydatetime(),
                duration=_duration(span, grid),
                complete_until=hi if live else max(hi, req_end - step),
            )
        )
        hi = lo
    return out


def _ceil(ns: int, grid: int) -> int:
    return -(-ns // grid) * grid


def _floor(ns: int, grid: int) -> int:
    return ns // grid * grid


def _duration(span: int, grid: int) -> str:
    if grid >= _DAY * _S:
        days = math.ceil(span / (_DAY * _S))
        return "1 Y" if days >= 365 else f"{days} D"
    secs = math.ceil(span / _S)
    return f"{secs} S" if secs <= _DAY else f"{math.ceil(secs / _DAY)} D"


__all__ = [
    "IB_BAR_SIZES",
    "MAX_DURATION",
    "HistoryRequest",
    "ib_bar_size",
    "plan_requests",
]
