"""Builders of the contract and market-data messages: contract details, market rules,
symbol samples, historical bars and their updates, real-time bars and ticks.

Part of :mod:`stratvector.ibsim.messages` (which re-exports every name here; import from
there), under its rules: each builder is a list of fields in TWS's exact layout,
field-for-field with ib_async 2.1's ``decoder.py`` for the negotiated server version
``v``. Pure functions: no state, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from stratvector.ibsim.protocol import Field, Msg

if TYPE_CHECKING:
    from stratvector.ibsim.market import Instrument
    from stratvector.ibsim.ticks import MarketRule

# --- outgoing message ids (server -> client) -------------------------------------------
TICK_PRICE = 1
TICK_SIZE = 2
CONTRACT_DATA = 10
HISTORICAL_DATA = 17
REAL_TIME_BARS = 50
CONTRACT_DATA_END = 52
TICK_SNAPSHOT_END = 57
MARKET_DATA_TYPE = 58
SYMBOL_SAMPLES = 79
HEAD_TIMESTAMP = 88
HISTORICAL_DATA_UPDATE = 90
MARKET_RULE = 93

ORDER_TYPES = "LMT,MKT,STP,STPLMT,TRAIL,OCA,DAY,GTC,WHATIF"


# --- contracts ---------------------------------------------------------------------------


def contract_data(
    v: int, req_id: int, inst: Instrument, zone_id: str = "UTC", hours: str = ""
) -> Msg:
    """contractDetails (10); a version field and mdSizeMultiplier only before v164.
    ``hours`` is both tradingHours and liquidHours, in ``zone_id``."""
    msg: Msg = [CONTRACT_DATA]
    if v < 164:
        msg.append(8)
    msg += [
        req_id,
        inst.symbol,
        "STK",
        "",
        0.0,
        "",
        "SMART",
        inst.currency,
        inst.symbol,
        "NMS",
        "NMS",
        inst.con_id,
        inst.min_tick,
    ]
    if v < 164:
        msg.append(1)  # mdSizeMultiplier
    msg += [
        "",  # multiplier
        ORDER_TYPES,
        f"SMART,{inst.primary_exchange}",
        1,  # priceMagnifier
        0,  # underConId
        inst.symbol,  # longName
        inst.primary_exchange,
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        zone_id,  # timeZoneId
        hours,  # tradingHours
        hours,  # liquidHours
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        _rule_ids(inst),  # marketRuleIds: one per validExchanges entry
        "",  # realExpirationDate
        "COMMON",  # stockType
    ]
    if v == 163:
        msg.append(100)  # suggestedSizeIncrement
    if v >= 164:
        msg += [1, 1, 100]  # minSize, sizeIncrement, suggestedSizeIncrement
    return msg


def contract_data_end(req_id: int) -> Msg:
    return [CONTRACT_DATA_END, 1, req_id]


def symbol_samples(v: int, req_id: int, instruments: Iterable[Instrument]) -> Msg:
    items = list(instruments)
    msg: Msg = [SYMBOL_SAMPLES, req_id, len(items)]
    for inst in items:
        msg += [inst.con_id, inst.symbol, "STK", inst.primary_exchange, inst.currency, 0]
        if v >= 176:
            msg += [inst.symbol, ""]
    return msg


def _rule_ids(inst: Instrument) -> str:
    """marketRuleIds for ``SMART,<primary>``: the contract's one rule on both (empty
    without a rule, as an old server sends)."""
    rule = inst.market_rule
    return "" if rule is None else f"{rule.rule_id},{rule.rule_id}"


def market_rule(rule: MarketRule) -> Msg:
    """marketRule (93, no version field): ``id, n, (lowEdge, increment) x n``."""
    msg: Msg = [MARKET_RULE, rule.rule_id, len(rule.bands)]
    for low_edge, increment in rule.bands:
        msg += [low_edge, increment]
    return msg


# --- market data -------------------------------------------------------------------------


def historical_data(req_id: int, start: str, end: str, rows: list[tuple[str, ...]]) -> Msg:
    """historicalData (17, no version field); each row is
    ``date, open, high, low, close, volume, wap, barCount``."""
    msg: Msg = [HISTORICAL_DATA, req_id, start, end, len(rows)]
    for row in rows:
        msg += list(row)
    return msg


def bar_row(date: str, o: float, h: float, lo: float, c: float, vol: float) -> tuple[Field, ...]:
    """One bar in historicalData order; WAP is (h + l + c) / 3, bar count 1."""
    return (date, o, h, lo, c, vol, (h + lo + c) / 3.0, 1)


def historical_data_update(
    req_id: int, date: str, o: float, h: float, lo: float, c: float, vol: float
) -> Msg:
    """historicalDataUpdate (90): note the order ``barCount, date, open, close, high, low,
    wap, volume``."""
    return [HISTORICAL_DATA_UPDATE, req_id, 1, date, o, c, h, lo, (h + lo + c) / 3.0, vol]


def real_time_bar(
    req_id: int, epoch: int, o: float, h: float, lo: float, c: float, vol: float
) -> Msg:
    return [REAL_TIME_BARS, 3, req_id, epoch, o, h, lo, c, vol, (h + lo + c) / 3.0, 1]


def head_timestamp(req_id: int, text: str) -> Msg:
    return [HEAD_TIMESTAMP, req_id, text]


def tick_price(req_id: int, tick_type: int, price: float, size: float | None) -> Msg:
    """tickPrice (1, version 6): exactly 7 fields, the last the attribute mask."""
    return [TICK_PRICE, 6, req_id, tick_type, price, size, 0]


def tick_size(req_id: int, tick_type: int, size: float) -> Msg:
    return [TICK_SIZE, 6, req_id, tick_type, size]


def tick_snapshot_end(req_id: int) -> Msg:
    return [TICK_SNAPSHOT_END, 1, req_id]


def market_data_type(req_id: int, kind: int) -> Msg:
    return [MARKET_DATA_TYPE, 1, req_id, kind]
