"""Symbols to IB contracts: built without I/O, qualified after every (re)connect.

Each configured symbol is a US-style stock (``STK`` on ``exchange``, in ``currency``).
:meth:`ContractBook.qualify` asks IB for the contract details of every symbol at once and
raises one :class:`ContractError` naming every symbol IB does not know or finds ambiguous,
before anything is traded. A contract id that changes between connects is logged (IB
does that after corporate actions); positions are matched by contract id and symbol.

Price increments
----------------
``minTick`` is one number, but IB checks an order price against the *market rule* of
the contract: price bands ``(lowEdge, increment)``, a price valid when it is a multiple
of the increment of its band (error 110 otherwise). US stocks (0.0001 below $1, 0.01
from $1) happen to fit ``minTick``; tiered exchanges (Europe, Asia, many futures) do
not. So qualifying also reads each contract's rule and fetches every distinct rule once
(``reqMarketRule``, answered as ``PriceIncrement`` bands), and
:meth:`Instrument.tick_at` gives the increment at a price.

Which rule: ``marketRuleIds`` holds one id per entry of ``validExchanges``. Orders go to
``exchange``; when that is a direct route (not ``SMART``) listed there, its rule is
taken. Otherwise (SMART, this project's default) the rule of the contract's primary
exchange -- the listing's own grid, which a SMART-routed order must meet there -- and
when the primary exchange is not listed (US stocks list ``ISLAND``, not ``NASDAQ``), the
first id, which is SMART's own.

A rule IB does not answer (an old server; ib_async waits 1 s for it) or answers with no
usable band leaves :meth:`Instrument.tick_at` at ``min_tick``, with one warning per rule
for the book's life: prices are then rounded as before rather than not traded. Rules are
fetched again at every qualify (IB may change them); a rule known from an earlier
qualify is kept when a later fetch fails.

Trading sessions
----------------
Qualifying also reads each contract's sessions: ``liquidHours`` (regular hours) and
``tradingHours`` (all hours) in the zone ``timeZoneId``, as IB lists them for about a
week ahead, e.g. ``20231120:0930-20231120:1600;20231121:CLOSED`` (older servers write
``20231120:0930-1600,1700-1800``). :class:`TradingHours` holds them in UTC;
:meth:`Instrument.hours` picks one by ``use_rth``. The live feed takes the close of a
daily bar from them (:mod:`stratvector.gateway.sessions`). IB's zone ids follow Java:
short ids such as ``EST`` name the exchange's zone *with* daylight saving (trading
hours are exchange-local all year), so they are read as ``America/New_York`` and so on,
not as zoneinfo's fixed offsets. Text that cannot be read leaves the hours unknown, with
one warning per symbol; :meth:`ContractBook.refresh_hours` fetches them again (the feed
does when a bar's day lies beyond what IB listed).
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ib_async import IB, Contract, ContractDetails, Stock

from stratvector.gateway.errors import ContractError

log = logging.getLogger("stratvector.gateway.contracts")

#: The tick assumed when IB reports no usable ``minTick`` (US stocks: one cent).
FALLBACK_TICK = 0.01

Bands = tuple[tuple[float, ...], tuple[float, ...]]  # (low edges ascending, increments)

_NS = 1_000_000_000

#: IB's Java short zone ids that zoneinfo lacks or reads as fixed offsets.
_JAVA_ZONES = {
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "CTT": "Asia/Shanghai",
    "HKT": "Asia/Hong_Kong",
    "JST": "Asia/Tokyo",
    "IST": "Asia/Kolkata",
    "AET": "Australia/Sydney",
}


@dataclass(frozen=True, eq=False)
class TradingHours:
    """A contract's sessions from one of IB's hours strings, as UTC ns.

    ``opens``/``closes`` are the sessions in order; ``first_day``..``last_day`` the
    exchange-local days the text speaks of (``CLOSED`` days included); a session's trade
    day is the local day it closes on (a close at midnight belongs to the day before).
    """

    zone: ZoneInfo
    opens: tuple[int, ...]
    closes: tuple[int, ...]
    first_day: dt.date
    last_day: dt.date
    day_closes: dict[dt.date, int] = field(default_factory=dict, repr=False)

    def covers(self, day: dt.date) -> bool:
        """True if IB listed ``day`` (a session or ``CLOSED``)."""
        return self.first_day <= day <= self.last_day

    def close_of_day(self, day: dt.date) -> int | None:
        """The last close of the sessions of trade day ``day`` (None: none listed)."""
        return self.day_closes.get(day)

    def session_at(self, t: int) -> tuple[int, int] | None:
        """``(open, close)`` of the session holding time ``t`` (ns), if any."""
        i = bisect.bisect_right(self.opens, t) - 1
        return (self.opens[i], self.closes[i]) if i >= 0 and t < self.closes[i] else None

    def local_day(self, t: int) -> dt.date:
        return dt.datetime.fromtimestamp(t // _NS, self.zone).date()

    def end_of_day(self, day: dt.date) -> int:
        """Local midnight after ``day`` (ns): no session of that trade day ends later."""
        nxt = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone)
        return int(nxt.timestamp()) * _NS


def zone_of(zone_id: str) -> ZoneInfo | None:
    """The zone of IB's ``timeZoneId`` (``US/Eastern``, ``EST``, ``Europe/London``...)."""
    name = (zone_id or "").strip().split(" ")[0]
    if not name:
        return None
    try:
        return ZoneInfo(_JAVA_ZONES.get(name.upper(), name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_trading_hours(text: str, zone_id: str) -> TradingHours | None:
    """IB's ``liquidHours``/``tradingHours`` text in ``timeZoneId``; ``None`` if either is
    empty or unknown. Raises ``ValueError`` for text in neither of IB's two formats."""
    tz = zone_of(zone_id)
    if tz is None or not (text or "").strip():
        return None
    sessions: list[tuple[int, int]] = []
    days: list[dt.date] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        day_text, _, rest = part.partition(":")
        day = _day(day_text)
        days.append(day)
        if rest.strip().upper() == "CLOSED":
            continue
        for span in filter(None, (r.strip() for r in rest.split(","))):
            a, dash, b = span.partition("-")
            if not dash:
                raise ValueError(f"session {span!r} in {part!r} has no '-'")
            start, start_day = _stamp(a, day, tz)
            end, _ = _stamp(b, start_day, tz)
            if end <= start and ":" not in b:  # old format past midnight: 1700-1600
                end, _ = _stamp(b, start_day + dt.timedelta(days=1), tz)
            if end <= start:
                raise ValueError(f"session {span!r} in {part!r} ends before it opens")
            sessions.append((start, end))
    if not days:
        return None
    sessions.sort()
    closes: dict[dt.date, int] = {}
    for _, end in sessions:
        trade_day = dt.datetime.fromtimestamp((end - 1) // _NS, tz).date()
        closes[trade_day] = max(end, closes.get(trade_day, end))
        days.append(trade_day)
    return TradingHours(
        tz,
        tuple(s for s, _ in sessions),
        tuple(e for _, e in sessions),
        min(days),
        max(days),
        closes,
    )


def _day(text: str) -> dt.date:
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"date {text!r} is not YYYYMMDD")
    return dt.datetime.strptime(text, "%Y%m%d").date()


def _stamp(text: str, day: dt.date, tz: ZoneInfo) -> tuple[int, dt.date]:
    """``HHMM`` on ``day`` or ``YYYYMMDD:HHMM`` in ``tz`` as UTC ns (``2400``: midnight
    after the day), and the day it was written on."""
    text = text.strip()
    if ":" in text:
        day_text, _, text = text.partition(":")
        day = _day(day_text)
    if len(text) != 4 or not text.isdigit() or int(text[:2]) > 24 or int(text[2:]) > 59:
        raise ValueError(f"time {text!r} is not HHMM")
    hh, mm = int(text[:2]), int(text[2:])
    # aware + timedelta is wall-clock arithmetic: the offset is the one in force then
    when = dt.datetime.combine(day, dt.time(), tz) + dt.timedelta(hours=hh, minutes=mm)
    return int(when.timestamp()) * _NS, day


@dataclass(frozen=True)
class Instrument:
    """A qualified contract and what order pricing and the bar feed need from its details.

    ``low_edges``/``increments`` are the bands of the contract's market rule
    (``market_rule``, ``None`` when IB named or answered none); empty means ``min_tick``
    applies at every price. ``liquid_hours``/``trading_hours`` are its sessions
    (``None``: IB gave none that could be read).
    """

    symbol: str
    contract: Contract
    con_id: int
    min_tick: float
    market_rule: int | None = None
    low_edges: tuple[float, ...] = ()
    increments: tuple[float, ...] = ()
    liquid_hours: TradingHours | None = None
    trading_hours: TradingHours | None = None

    def hours(self, use_rth: bool) -> TradingHours | None:
        """The sessions bars with ``useRTH=use_rth`` keep to: liquid (regular) hours for
        RTH bars, trading hours otherwise; the other list when IB gave only one."""
        first, second = (
            (self.liquid_hours, self.trading_hours)
            if use_rth
            else (self.trading_hours, self.liquid_hours)
        )
        return first if first is not None else second

    def tick_at(self, price: float) -> float:
        """The minimum price increment IB accepts at ``price``: the increment of the
        rule's band holding it (the highest low edge at or below the price), else
        ``min_tick`` (no rule known, or a price below the first band)."""
        i = bisect.bisect_right(self.low_edges, price)
        return self.increments[i - 1] if i else self.min_tick


class ContractBook:
    """The contracts of all traded symbols, keyed by symbol and by contract id."""

    def __init__(self, symbols: Iterable[str], exchange: str = "SMART", currency: str = "USD"):
        self.symbols = list(dict.fromkeys(symbols))
        self.exchange = exchange
        self.currency = currency
        self._by_symbol: dict[str, Instrument] = {}
        self._by_con_id: dict[int, str] = {}
        self._rules: dict[int, Bands] = {}  # the last good answer per market rule id
        self._warned: set[int] = set()  # rules already warned about
        self._bad_hours: set[str] = set()  # symbols whose hours text was unreadable

    def spec(self, symbol: str) -> Contract:
        return Stock(symbol, self.exchange, self.currency)

    async def qualify(self, ib: IB, timeout: float) -> None:
        """Fetch details for every symbol and their market rules; raise
        :class:`ContractError` for unknown or ambiguous symbols."""

        async def one(symbol: str) -> tuple[str, list]:
            details = await asyncio.wait_for(ib.reqContractDetailsAsync(self.spec(symbol)), timeout)
            return symbol, list(details or [])

        results = await asyncio.gather(*(one(s) for s in self.symbols))
        unknown = [s for s, d in results if not d]
        ambiguous = [s for s, d in results if len(d) > 1]
        if unknown or ambiguous:
            parts = []
            if unknown:
                parts.append(f"unknown to IB: {', '.join(unknown)}")
            if ambiguous:
                parts.append(f"ambiguous: {', '.join(ambiguous)}")
            raise ContractError(
                f"cannot trade {'; '.join(parts)} (as STK on {self.exchange} in "
                f"{self.currency}); check [data] symbols"
            )
        rule_of = {symbol: rule_id_for(details[0], self.exchange) for symbol, details in results}
        await self._fetch_rules(ib, rule_of, timeout)
        for symbol, details in results:
            d = details[0]
            c = d.contract
            old = self._by_symbol.get(symbol)
            if old is not None and old.con_id != c.conId:
                log.warning("contract id of %s changed: %d -> %d", symbol, old.con_id, c.conId)
            tick = float(d.minTick) if d.minTick and math.isfinite(d.minTick) else FALLBACK_TICK
            rule = rule_of[symbol]
            edges, incs = self._rules.get(rule, ((), ())) if rule is not None else ((), ())
            liquid, trading = self._hours_of(symbol, d)
            self._by_symbol[symbol] = Instrument(
                symbol, c, int(c.conId), tick, rule, edges, incs, liquid, trading
            )
            self._by_con_id[int(c.conId)] = symbol

    async def refresh_hours(self, ib: IB, symbol: str, timeout: float) -> bool:
        """Fetch ``symbol``'s details again and keep its new sessions (IB lists about a
        week ahead). True if IB answered with exactly one contract; a qualified symbol is
        needed. Errors other than a timeout propagate."""
        inst = self.get(symbol)
        try:
            details = await asyncio.wait_for(ib.reqContractDetailsAsync(self.spec(symbol)), timeout)
        except TimeoutError:
            return False
        if len(details or []) != 1:
            return False
        liquid, trading = self._hours_of(symbol, details[0])
        self._by_symbol[symbol] = dataclasses.replace(
            inst, liquid_hours=liquid, trading_hours=trading
        )
        return True

    def _hours_of(
        self, symbol: str, d: ContractDetails
    ) -> tuple[TradingHours | None, TradingHours | None]:
        """The liquid and trading hours of ``d``; unreadable text is warned about once per
        symbol and left unknown."""
        out: list[TradingHours | None] = []
        for name in ("liquidHours", "tradingHours"):
            text = getattr(d, name, "") or ""
            try:
                out.append(parse_trading_hours(text, d.timeZoneId or ""))
            except ValueError as exc:
                out.append(None)
                if symbol not in self._bad_hours:
                    self._bad_hours.add(symbol)
                    log.warning(
                        "%s: cannot read %s %r (timeZoneId %r): %s; its sessions are unknown",
                        symbol,
                        name,
                        text[:80],
                        d.timeZoneId,
                        exc,
                    )
        return out[0], out[1]

    async def _fetch_rules(self, ib: IB, rule_of: dict[str, int | None], timeout: float) -> None:
        """Ask IB for each rule of ``rule_of`` (symbol -> rule id) once, concurrently, and
        keep the good answers in ``_rules``. A connection lost meanwhile propagates (the
        sync fails); anything else about a rule only costs its precision (see the module
        docstring)."""

        async def one(rule_id: int) -> tuple[int, Bands | None, str]:
            try:
                answer = await asyncio.wait_for(ib.reqMarketRuleAsync(rule_id), timeout)
            except TimeoutError:
                answer = None  # ib_async answers None itself after 1 s
            if answer is None:
                return rule_id, None, "IB did not answer reqMarketRule"
            bands = bands_of(answer)
            return rule_id, bands, "" if bands else f"no usable band in {answer!r}"

        rule_ids = sorted({r for r in rule_of.values() if r is not None})
        for rule_id, bands, why in await asyncio.gather(*(one(r) for r in rule_ids)):
            if bands is not None:
                self._rules[rule_id] = bands
                continue
            if rule_id in self._warned:
                continue
            self._warned.add(rule_id)
            users = ", ".join(s for s, r in rule_of.items() if r == rule_id)
            fallback = (
                "keeping the rule fetched earlier"
                if rule_id in self._rules
                else "rounding prices to the contract's minTick, which IB refuses "
                "(error 110) where the rule's increment is coarser"
            )
            log.warning("market rule %d of %s: %s; %s", rule_id, users, why, fallback)

    @property
    def qualified(self) -> bool:
        return len(self._by_symbol) == len(self.symbols)

    def get(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise ContractError(f"{symbol} is not qualified yet (not connected?)") from None

    def symbol_for(self, contract: Contract) -> str | None:
        """The configured symbol of ``contract`` (by contract id, else by symbol)."""
        sym = self._by_con_id.get(int(contract.conId or 0))
        if sym is not None:
            return sym
        return contract.symbol if contract.symbol in self._by_symbol else None


def rule_id_for(details: ContractDetails, exchange: str) -> int | None:
    """The market rule id that applies to orders routed to ``exchange`` (see the module
    docstring for the choice); ``None`` when the details name no rule."""
    ids = [p.strip() for p in (details.marketRuleIds or "").split(",")]
    venues = [p.strip() for p in (details.validExchanges or "").split(",")]
    wanted = [exchange] if exchange and exchange != "SMART" else []
    wanted.append(details.contract.primaryExchange if details.contract else "")
    for venue in wanted:
        if venue and venue in venues:
            i = venues.index(venue)
            if i < len(ids) and ids[i].isdigit():
                return int(ids[i])
    return int(ids[0]) if ids and ids[0].isdigit() else None


def bands_of(increments: Sequence[object]) -> Bands | None:
    """``(low edges, increments)`` from IB's ``PriceIncrement`` list, sorted by low edge;
    ``None`` if no band has a finite low edge and a finite positive increment (a band
    repeated at one edge keeps its last increment)."""
    by_edge: dict[float, float] = {}
    for band in increments:
        try:
            low, inc = float(band.lowEdge), float(band.increment)  # type: ignore[attr-defined]
        except (AttributeError, TypeError, ValueError):
            continue
        if math.isfinite(low) and math.isfinite(inc) and inc > 0:
            by_edge[low] = inc
    if not by_edge:
        return None
    edges = tuple(sorted(by_edge))
    return edges, tuple(by_edge[e] for e in edges)
