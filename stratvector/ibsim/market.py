"""Bars from files, the one simulated clock, and historical queries that never see the future.

Time model
----------
All bar files are merged into one *timeline*: the sorted union of their bar start times.
The clock's position ``p`` says that the first ``p`` timeline entries are closed. A
symbol's closed bars are those starting at or before ``timeline[p - 1]``. "Now" is the close
of the last closed bar, ``timeline[p - 1] + bar_duration``; ``reqCurrentTime`` answers it.
:meth:`SimClock.advance` closes the next timeline entry; nothing else moves time.

Historical answers contain closed bars only, ending at ``min(endDateTime, now)``.

Forming bars (``forming=True``): each timeline entry also *opens*, at its session time
(:mod:`stratvector.ibsim.sessions`: intraday at its start, daily at the session open of
its date) and closes at its end (daily: the session close). ``opened`` says the next
entry has opened (its bars are forming); :meth:`SimClock.open_next` opens it. "Now" is
then a time of its own (:attr:`SimClock.time_ns`): the open or close last passed, or
where :meth:`SimClock.move_to` put it between them. A request ending now also gets the
forming bar (its open as every price, no volume), as IB sends the bar in progress.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stratvector.data import load_bars, symbols_in
from stratvector.errors import DataError
from stratvector.ibsim.requests import ContractSpec
from stratvector.ibsim.sessions import SessionTable, build_sessions
from stratvector.ibsim.ticks import ON_GRID_TOLERANCE, US_STOCK_RULE, MarketRule

_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$")
_BAR_SIZE = re.compile(r"^\s*(\d+)\s*(secs?|mins?|hours?|days?|weeks?|months?)\s*$")
_UNIT_SECONDS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


class QueryError(Exception):
    """A market-data request ibsim cannot answer; ``code`` is the IB error code to send."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BarSize:
    """An IB bar size: ``seconds`` for fixed sizes, or ``months`` for calendar months."""

    text: str
    seconds: int = 0
    months: int = 0

    @property
    def daily_or_longer(self) -> bool:
        return self.months > 0 or self.seconds >= 86400

    def approx(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.seconds or self.months * 30 * 86400)


def parse_ib_bar_size(text: str) -> BarSize:
    """Parse IB's barSizeSetting (``"1 day"``, ``"5 mins"``, ``"1 hour"``, ``"1 month"``)."""
    m = _BAR_SIZE.match(text.lower())
    if not m:
        raise QueryError(
            321,
            f"Error validating request.-'bar size' : cause - invalid bar size {text!r}; "
            "use e.g. '1 day', '1 hour', '5 mins', '30 secs', '1 week', '1 month'",
        )
    n, unit = int(m.group(1)), m.group(2).rstrip("s")
    if not 0 < n <= 10_000:
        raise QueryError(321, f"Error validating request.-'bar size' : cause - {text!r}")
    if unit == "month":
        return BarSize(text, months=n)
    return BarSize(text, seconds=n * _UNIT_SECONDS[unit])


def duration_start(end: pd.Timestamp, duration: str) -> pd.Timestamp:
    """The start of an IB durationStr (``"30 D"``, ``"1 Y"``, ``"3600 S"``) ending at ``end``."""
    m = _DURATION.match(duration.upper())
    if not m or int(m.group(1)) <= 0:
        raise QueryError(
            321,
            f"Error validating request.-'duration' : cause - invalid duration {duration!r}; "
            "use '<n> S|D|W|M|Y'",
        )
    n, unit = int(m.group(1)), m.group(2)
    try:
        if unit == "S":
            return end - pd.Timedelta(seconds=n)
        if unit == "D":
            return end - pd.Timedelta(days=n)
        if unit == "W":
            return end - pd.Timedelta(weeks=n)
        if unit == "M":
            return end - pd.DateOffset(months=n)
        return end - pd.DateOffset(years=n)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        # Longer than the data can hold: everything before ``end``.
        return pd.Timestamp("1900-01-01", tz="UTC")


def parse_ib_timestamp(text: str) -> pd.Timestamp:
    """Parse IB's ``yyyymmdd[ hh:mm:ss[ tz]]`` or ``yyyymmdd-hh:mm:ss`` (UTC if no zone).

    A bare date means its midnight. Raises :class:`QueryError` (321) when unreadable.
    """
    text = text.strip()
    if len(text) > 8 and text[8] == "-":
        text = text[:8] + " " + text[9:]
    parts = text.split()
    tz = parts[2] if len(parts) >= 3 else "UTC"
    try:
        if len(parts) == 1:
            ts = pd.Timestamp(pd.to_datetime(parts[0], format="%Y%m%d"))
        else:
            ts = pd.Timestamp(pd.to_datetime(parts[0] + " " + parts[1], format="%Y%m%d %H:%M:%S"))
        return ts.tz_localize(tz).tz_convert("UTC")
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as exc:
        raise QueryError(
            321, f"Error validating request.-'time' : cause - cannot parse {text[:40]!r}"
        ) from exc


def parse_end_time(text: str) -> pd.Timestamp | None:
    """Parse endDateTime: ``""`` means now; a bare date means the end of that day."""
    text = text.strip()
    if not text:
        return None
    ts = parse_ib_timestamp(text)
    return ts + pd.Timedelta(days=1) if len(text) == 8 else ts


@dataclass(frozen=True, eq=False)
class Instrument:
    """One symbol's bars (validated) and the contract ibsim describes it with.

    ``min_tick`` is the ``minTick`` contract details report. ``market_rule`` gives the
    valid prices per price band (:mod:`stratvector.ibsim.ticks`): order prices off the
    grid of their band are refused (error 110). Without a rule (an old server) prices
    must be multiples of ``min_tick``.
    """

    symbol: str
    con_id: int
    path: Path
    bars: pd.DataFrame
    primary_exchange: str = "NASDAQ"
    currency: str = "USD"
    min_tick: float = 0.01
    market_rule: MarketRule | None = US_STOCK_RULE
    times: np.ndarray = field(init=False, repr=False)
    open: np.ndarray = field(init=False, repr=False)
    high: np.ndarray = field(init=False, repr=False)
    low: np.ndarray = field(init=False, repr=False)
    close: np.ndarray = field(init=False, repr=False)
    volume: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        bars = self.bars.copy()
        bars.index = pd.DatetimeIndex(bars.index).as_unit("ns")
        object.__setattr__(self, "bars", bars)
        object.__setattr__(self, "times", bars.index.asi8.copy())
        for col in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, col, self.bars[col].to_numpy(dtype=np.float64))

    def __len__(self) -> int:
        return len(self.times)

    def time(self, i: int) -> pd.Timestamp:
        return pd.Timestamp(int(self.times[i]), tz="UTC")

    def conforms(self, price: float) -> bool:
        """True if IB would accept ``price`` as an order price of this contract."""
        if self.market_rule is not None:
            return self.market_rule.conforms(price)
        if not (math.isfinite(price) and self.min_tick > 0):
            return True
        n = price / self.min_tick
        return abs(n - round(n)) <= ON_GRID_TOLERANCE


def con_id_for(symbol: str) -> int:
    """A stable contract id for ``symbol`` (the same in every run and on every machine)."""
    return 100_000 + zlib.crc32(symbol.encode()) % 900_000_000


class BarStore:
    """All instruments, looked up by symbol or contract id. Built by :meth:`load`."""

    def __init__(self, instruments: dict[str, Instrument], bar_duration: pd.Timedelta) -> None:
        self.instruments = instruments
        self.bar_duration = bar_duration
        self._by_con_id = {inst.con_id: inst for inst in instruments.values()}
        self.timeline: np.ndarray = np.unique(
            np.concatenate([inst.times for inst in instruments.values()])
        )

    @classmethod
    def load(
        cls,
        directory: str | Path,
        primary_exchange: str = "NASDAQ",
        currency: str = "USD",
        *,
        min_tick: float = 0.01,
        market_rule: MarketRule | None = US_STOCK_RULE,
    ) -> BarStore:
        """Load and validate every bar file in ``directory``; every contract gets
        ``min_tick`` and ``market_rule``.

        Raises :class:`DataError` naming the file and row of the first bad bar, or saying
        the directory is missing or holds no bar files.
        """
        d = Path(directory)
        if not d.is_dir():
            raise DataError(f"{d}: bar directory not found")
        files = symbols_in(d)
        if not files:
            raise DataError(f"{d}: no bar files (*.csv, *.parquet); one file per symbol")
        instruments: dict[str, Instrument] = {}
        seen: dict[int, str] = {}
        for symbol, path in files.items():
            bars = load_bars(path)
            con_id = con_id_for(symbol)
            while con_id in seen:  # a crc collision: keep both symbols distinct
                con_id += 1
            seen[con_id] = symbol
            instruments[symbol] = Instrument(
                symbol,
                con_id,
                path,
                bars,
                primary_exchange=primary_exchange,
                currency=currency,
                min_tick=min_tick,
                market_rule=market_rule,
            )
        return cls(instruments, _infer_bar_duration(instruments.values()))

    def by_symbol(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol) or self.instruments.get(symbol.upper())

    def by_con_id(self, con_id: int) -> Instrument | None:
        return self._by_con_id.get(con_id)

    def market_rule(self, rule_id: int) -> MarketRule | None:
        """The rule some contract names as ``rule_id`` (reqMarketRule), or ``None``."""
        for inst in self.instruments.values():
            if inst.market_rule is not None and inst.market_rule.rule_id == rule_id:
                return inst.market_rule
        return None

    def lookup(self, spec: ContractSpec) -> Instrument | None:
        """The instrument a client's contract names, or ``None`` (IB error 200).

        A contract id wins when given; otherwise the symbol (or local symbol) must match,
        and secType and currency, when given, must be ``STK`` and the store's currency.
        """
        if spec.sec_type and spec.sec_type != "STK":
            return None
        if spec.currency and spec.currency != self._currency():
            return None
        if spec.con_id:
            inst = self.by_con_id(spec.con_id)
            if inst is None or (spec.symbol and spec.symbol != inst.symbol):
                return None
            return inst
        name = spec.symbol or spec.local_symbol
        return self.by_symbol(name) if name else None

    def _currency(self) -> str:
        return next(iter(self.instruments.values())).currency


def _infer_bar_duration(instruments: object) -> pd.Timedelta:
    diffs = [np.diff(inst.times) for inst in instruments if len(inst) > 1]  # type: ignore[attr-defined]
    if not diffs:
        return pd.Timedelta(days=1)
    return pd.Timedelta(int(np.median(np.concatenate(diffs))), unit="ns")


class SimClock:
    """The server's one clock: how many timeline entries are closed (see module docstring).

    ``sessions`` (:class:`~stratvector.ibsim.sessions.SessionTable`) gives each entry's
    open and close time; default the bars' own times in UTC.
    """

    def __init__(
        self,
        store: BarStore,
        start: str | int | None = None,
        *,
        sessions: SessionTable | None = None,
        forming: bool = False,
    ) -> None:
        self.store = store
        self.timeline = store.timeline
        self.sessions = sessions or build_sessions(store.timeline, store.bar_duration, None, "UTC")
        self.forming = forming
        self.opened = False
        n = len(self.timeline)
        if start is None:
            pos = min(252, n - 1)
        elif isinstance(start, int):
            pos = start
        else:
            ts = pd.Timestamp(start)
            ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
            pos = int(np.searchsorted(self.timeline, ts.value, side="left"))
        if not 0 <= pos <= n:
            raise DataError(f"ibsim start {start!r} is outside the data (0..{n} bars)")
        self.pos = pos
        #: forming mode's time (ns): the close of the last closed entry to begin with
        self.time_ns = int(self.sessions.closes[pos - 1]) if pos else int(self.sessions.opens[0])

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.timeline)

    def advance(self) -> int | None:
        """Close the next timeline entry; return its index, or ``None`` at the end."""
        if self.at_end:
            return None
        self.pos += 1
        if self.forming:
            self.opened = False
            self.time_ns = max(self.time_ns, int(self.sessions.closes[self.pos - 1]))
        return self.pos - 1

    def next_event(self) -> int | None:
        """When the clock next has something to do (ns): the next entry's open (forming
        mode, none open) or the close of the next entry; ``None`` at the end."""
        if self.at_end:
            return None
        if self.forming and not self.opened:
            return int(self.sessions.opens[self.pos])
        if self.forming:
            return int(self.sessions.closes[self.pos])
        return int(self.timeline[self.pos] + self.store.bar_duration.value)

    def open_next(self) -> int | None:
        """Forming mode: open the next entry (its bars start forming); its index, or
        ``None`` if one is open already or the data has ended."""
        if self.at_end or self.opened or not self.forming:
            return None
        self.opened = True
        self.time_ns = max(self.time_ns, int(self.sessions.opens[self.pos]))
        return self.pos

    def move_to(self, t_ns: int) -> None:
        """Forming mode: time passes to ``t_ns`` (never backwards; nothing opens or
        closes here: the server does that first)."""
        self.time_ns = max(self.time_ns, int(t_ns))

    def forming_bar(self, inst: Instrument) -> int | None:
        """Index of ``inst``'s bar that is forming now, if any."""
        return self.bar_at(inst, self.pos) if self.opened else None

    def now(self) -> pd.Timestamp:
        """The close of the last closed bar (the start of the data before any bar closed);
        in forming mode the clock's own time."""
        if self.forming:
            return pd.Timestamp(self.time_ns, tz="UTC")
        if self.pos == 0:
            return pd.Timestamp(int(self.timeline[0]), tz="UTC")
        return pd.Timestamp(int(self.timeline[self.pos - 1]), tz="UTC") + self.store.bar_duration

    def last_closed_time(self) -> int | None:
        """Start time (ns) of the last closed timeline entry."""
        return int(self.timeline[self.pos - 1]) if self.pos else None

    def closed_count(self, inst: Instrument) -> int:
        """How many of ``inst``'s bars are closed."""
        last = self.last_closed_time()
        if last is None:
            return 0
        return int(np.searchsorted(inst.times, last, side="right"))

    def bar_at(self, inst: Instrument, timeline_index: int) -> int | None:
        """Index of ``inst``'s bar starting at ``timeline[timeline_index]``, if it has one."""
        t = self.timeline[timeline_index]
        i = int(np.searchsorted(inst.times, t, side="left"))
        return i if i < len(inst) and inst.times[i] == t else None


def aggregate(bars: pd.DataFrame, size: BarSize) -> pd.DataFrame:
    """Bars grouped into ``size`` buckets: first open, max high, min low, last close, summed
    volume. Fixed sizes are floored from midnight UTC and labelled by bucket start; weeks
    (Monday-based) and months are labelled by their first bar's start time."""
    if bars.empty:
        return bars
    keys = bucket_keys(bars.index, size)
    n = len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:] - 1, n - 1]
    if size.months or size.seconds % (7 * 86400) == 0:
        labels = bars.index[starts]
    else:
        labels = pd.DatetimeIndex(keys[starts].astype("datetime64[ns]"), tz="UTC")
    out = pd.DataFrame(
        {
            "open": bars["open"].to_numpy()[starts],
            "high": np.maximum.reduceat(bars["high"].to_numpy(), starts),
            "low": np.minimum.reduceat(bars["low"].to_numpy(), starts),
            "close": bars["close"].to_numpy()[ends],
            "volume": np.add.reduceat(bars["volume"].to_numpy(), starts),
        },
        index=labels,
    )
    out.index.name = "time"
    return out


def bucket_keys(index: pd.DatetimeIndex, size: BarSize) -> np.ndarray:
    """The bucket of each bar start (int64), consistent between history and live updates."""
    ns = pd.DatetimeIndex(index).as_unit("ns").asi8
    if size.months:
        months = index.year * 12 + index.month - 1
        return np.asarray(months // size.months, dtype=np.int64)
    step = size.seconds * 1_000_000_000
    if size.seconds % (7 * 86400) == 0:
        # Weeks start on Monday; 1970-01-05 was a Monday.
        monday = pd.Timestamp("1970-01-05", tz="UTC").value
        return (ns - monday) // step
    return (ns // step) * step


def history(
    inst: Instrument,
    clock: SimClock,
    file_bar_size: pd.Timedelta,
    end_text: str,
    duration: str,
    bar_size_text: str,
) -> tuple[pd.DataFrame, BarSize, pd.Timestamp, pd.Timestamp]:
    """The closed bars a reqHistoricalData asks for: ``(bars, size, start, end)``.

    Raises :class:`QueryError` (162 or 321) for a bar size finer than the files' or a
    malformed parameter.
    """
    size = parse_ib_bar_size(bar_size_text)
    if size.months == 0 and pd.Timedelta(seconds=size.seconds) < file_bar_size:
        raise QueryError(
            162,
            "Historical Market Data Service error message:HMDS query returned no data: "
            f"ibsim holds {file_bar_size} bars for {inst.symbol}; {bar_size_text!r} is finer",
        )
    now = clock.now()
    end = parse_end_time(end_text)
    end = now if end is None or end > now else end
    start = duration_start(end, duration)
    closed = inst.bars.iloc[: clock.closed_count(inst)]
    t = closed.index
    sel = closed[(t >= start) & (t < end)]
    j = clock.forming_bar(inst) if end == now else None
    if j is not None and inst.time(j) >= start:
        o = float(inst.open[j])
        row = pd.DataFrame(
            {"open": o, "high": o, "low": o, "close": o, "volume": 0.0}, index=[inst.time(j)]
        )
        sel = pd.concat([sel, row]) if len(sel) else row
    if pd.Timedelta(seconds=size.seconds) != file_bar_size or size.months:
        sel = aggregate(sel, size)
    return sel, size, start, end


def format_bar_time(ts: pd.Timestamp, size: BarSize, format_date: int) -> str:
    """A bar's date as IB writes it: ``yyyymmdd`` for daily and longer bars, else
    ``yyyymmdd hh:mm:ss UTC`` (formatDate 1) or epoch seconds (formatDate 2)."""
    if size.daily_or_longer:
        return ts.strftime("%Y%m%d")
    if format_date == 2:
        return str(int(ts.value // 1_000_000_000))
    return ts.strftime("%Y%m%d %H:%M:%S") + " UTC"


def format_ib_time(ts: pd.Timestamp) -> str:
    """``yyyymmdd hh:mm:ss UTC``: the time format of executions and the handshake."""
    return ts.tz_convert("UTC").strftime("%Y%m%d %H:%M:%S") + " UTC"
