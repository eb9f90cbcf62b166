"""Trading sessions of the stand-in's bars.

Sessions (what contract details report, and when bars open and close with forming bars)
---------------------------------------------------------------------------------------
- Daily (and longer) bars: one session per bar date, ``session`` hours (``"09:30-16:00"``)
  of that date in ``time_zone``; an overnight session (``"18:00-17:00"``) opens the day
  before. Without ``session`` the whole day (local midnight to midnight).
- Intraday bars: each run of back-to-back bars (a bar starting where the previous one
  ended) is a session, from its first bar's start to its last bar's end. So the hours
  are the bars' own, whatever they hold.

Contract details carry them as IB does: ``timeZoneId`` is ``time_zone``, and
``liquidHours`` and ``tradingHours`` (the same text: ibsim has one session kind) list the
sessions of the local days from yesterday to six days after today, a day without one as
``YYYYMMDD:CLOSED`` (IB lists about a week).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

_SESSION = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")
_S = 1_000_000_000
_DAY = 86400 * _S


def parse_session(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` as (open, close) seconds after midnight; a close at or before
    the open is on the next day. Raises ``ValueError``."""
    m = _SESSION.match(text)
    if not m:
        raise ValueError(f"session {text!r} must look like '09:30-16:00'")
    a = int(m.group(1)) * 3600 + int(m.group(2)) * 60
    b = int(m.group(3)) * 3600 + int(m.group(4)) * 60
    if b > 86400:
        raise ValueError(f"session {text!r}: a time after 24:00")
    return a, b if b > a else b + 86400


@dataclass(frozen=True, eq=False)
class SessionTable:
    """When each timeline entry's bars open and close (``opens``/``closes``, ns), and the
    distinct sessions (``starts``/``ends``, ascending) in ``zone``."""

    zone_id: str
    opens: np.ndarray
    closes: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_id)

    def hours_text(self, now: pd.Timestamp) -> str:
        """IB's hours text for the days from yesterday to six days after today (local)."""
        zone = self.zone
        today = now.tz_convert(zone).date()
        days = [today + dt.timedelta(days=d) for d in range(-1, 7)]
        lo = _midnight(days[0], zone)
        hi = _midnight(days[-1] + dt.timedelta(days=1), zone)
        i, j = np.searchsorted(self.ends, [lo, hi], side="right")
        by_day: dict[dt.date, list[str]] = {}
        for start, end in zip(self.starts[i:j], self.ends[i:j], strict=True):
            trade_day = _local(int(end) - 1, zone).date()
            text = f"{_stamp(int(start), zone)}-{_stamp(int(end), zone)}"
            by_day.setdefault(trade_day, []).append(text)
        parts: list[str] = []
        for day in days:
            parts += by_day.get(day) or [f"{day:%Y%m%d}:CLOSED"]
        return ";".join(parts)


def build_sessions(
    timeline: np.ndarray, bar_duration: pd.Timedelta, session: str | None, zone_id: str
) -> SessionTable:
    """The sessions of a bar timeline (see the module docstring)."""
    times = np.asarray(timeline, dtype=np.int64)
    dur = int(bar_duration.value)
    if dur >= _DAY:
        a, b = parse_session(session) if session else (0, 86400)
        back = pd.Timedelta(days=1 if b > 86400 else 0)  # an overnight session opens the day before
        dates = pd.DatetimeIndex(times, tz="UTC").normalize().tz_localize(None) - back
        opens = _localize(dates + pd.Timedelta(seconds=a), zone_id)
        closes = _localize(dates + pd.Timedelta(seconds=b), zone_id)
        return SessionTable(zone_id, opens, closes, opens, closes)
    closes = times + dur
    first = np.r_[True, times[1:] != closes[:-1]] if len(times) else np.zeros(0, dtype=bool)
    last = np.r_[first[1:], True] if len(times) else first
    return SessionTable(zone_id, times.copy(), closes, times[first], closes[last])


def _localize(naive: pd.DatetimeIndex, zone_id: str) -> np.ndarray:
    local = naive.tz_localize(zone_id, ambiguous="NaT", nonexistent="shift_forward")
    if local.hasnans:  # an ambiguous wall time (a DST fall-back): take the earlier
        local = naive.tz_localize(zone_id, ambiguous=np.ones(len(naive), dtype=bool))
    return local.tz_convert("UTC").as_unit("ns").asi8.copy()


def _local(t: int, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(t // _S, zone)


def _midnight(day: dt.date, zone: ZoneInfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), zone).timestamp()) * _S


def _stamp(t: int, zone: ZoneInfo) -> str:
    return _local(t, zone).strftime("%Y%m%d:%H%M")
