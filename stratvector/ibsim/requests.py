"""Parsers for the client messages ibsim understands, each into a small typed value.

Layouts follow ib_async 2.1's ``client.py`` (the authority) for the negotiated server
version. Every parser raises :class:`~stratvector.ibsim.protocol.ProtocolError` on a
missing or unparseable field; none of them trusts a count or length sent by the client
beyond :data:`MAX_LIST`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stratvector.ibsim.protocol import FieldReader, ProtocolError

#: Upper bound on any client-declared list length (combo legs, tag-value lists).
MAX_LIST = 64


# --- incoming message ids (client -> server) ------------------------------------------
REQ_MKT_DATA = 1
CANCEL_MKT_DATA = 2
PLACE_ORDER = 3
CANCEL_ORDER = 4
REQ_OPEN_ORDERS = 5
REQ_ACCOUNT_UPDATES = 6
REQ_EXECUTIONS = 7
REQ_IDS = 8
REQ_CONTRACT_DETAILS = 9
REQ_AUTO_OPEN_ORDERS = 15
REQ_ALL_OPEN_ORDERS = 16
REQ_MANAGED_ACCTS = 17
REQ_HISTORICAL_DATA = 20
CANCEL_HISTORICAL_DATA = 25
REQ_CURRENT_TIME = 49
REQ_REAL_TIME_BARS = 50
CANCEL_REAL_TIME_BARS = 51
REQ_GLOBAL_CANCEL = 58
REQ_MARKET_DATA_TYPE = 59
REQ_POSITIONS = 61
REQ_ACCOUNT_SUMMARY = 62
CANCEL_ACCOUNT_SUMMARY = 63
CANCEL_POSITIONS = 64
START_API = 71
REQ_ACCOUNT_UPDATES_MULTI = 76
CANCEL_ACCOUNT_UPDATES_MULTI = 77
REQ_MATCHING_SYMBOLS = 81
REQ_HEAD_TIMESTAMP = 87
CANCEL_HEAD_TIMESTAMP = 90
REQ_MARKET_RULE = 91
REQ_COMPLETED_ORDERS = 99
REQ_USER_INFO = 104


@dataclass(frozen=True)
class ContractSpec:
    """The contract fields a client sends (the 12-field block of ``client.py``)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


def read_contract(r: FieldReader) -> ContractSpec:
    return ContractSpec(
        con_id=r.int("conId"),
        symbol=r.str("symbol"),
        sec_type=r.str("secType"),
        last_trade_date=r.str("lastTradeDateOrContractMonth"),
        strike=r.float("strike"),
        right=r.str("right"),
        multiplier=r.str("multiplier"),
        exchange=r.str("exchange"),
        primary_exchange=r.str("primaryExchange"),
        currency=r.str("currency"),
        local_symbol=r.str("localSymbol"),
        trading_class=r.str("tradingClass"),
    )


def _count(r: FieldReader, what: str) -> int:
    n = r.int(what)
    if not 0 <= n <= MAX_LIST:
        raise ProtocolError(f"message {r.msg_id}: {what} {n} outside 0..{MAX_LIST}")
    return n


def _skip_bag_legs(r: FieldReader, contract: ContractSpec, per_leg: int) -> None:
    if contract.sec_type == "BAG":
        r.skip(_count(r, "comboLegs count") * per_leg, "combo leg")


@dataclass(frozen=True)
class OrderRequest:
    """The fields of placeOrder that ibsim acts on or echoes back in openOrder.

    Prices are ``None`` when unset. ``conditions`` is the number of order conditions; ibsim
    rejects orders that carry any, so the fields after them are not needed.
    """

    order_id: int
    contract: ContractSpec
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str = "DAY"
    oca_group: str = ""
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    hidden: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    oca_type: int = 0
    all_or_none: bool = False
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    what_if: bool = False
    conditions: int = 0
    algo_strategy: str = ""
    delta_neutral: bool = False

    def modified(self, **changes: object) -> OrderRequest:
        return replace(self, **changes)  # type: ignore[arg-type]


def read_place_order(r: FieldReader, version: int) -> OrderRequest:
    """Parse placeOrder (message 3, no version field) as ``client.placeOrder`` writes it."""
    order_id = r.int("orderId")
    contract = read_contract(r)
    r.skip(2, "secIdType/secId")
    action = r.str("action")
    qty = r.float("totalQuantity", 0.0) or 0.0
    order_type = r.str("orderType")
    lmt = r.float("lmtPrice")
    aux = r.float("auxPrice")
    tif = r.str("tif")
    oca_group = r.str("ocaGroup")
    account = r.str("account")
    open_close = r.str("openClose")
    origin = r.int("origin")
    order_ref = r.str("orderRef")
    transmit = r.bool("transmit")
    parent_id = r.int("parentId")
    r.skip(2, "blockOrder/sweepToFill")
    r.int("displaySize")
    r.int("triggerMethod")
    outside_rth = r.bool("outsideRth")
    hidden = r.bool("hidden")
    if contract.sec_type == "BAG":
        r.skip(_count(r, "comboLegs count") * 8, "combo leg")
        r.skip(_count(r, "orderComboLegs count"), "order combo leg")
        r.skip(_count(r, "smartComboRoutingParams count") * 2, "routing param")
    r.skip(1, "sharesAllocation")
    r.float("discretionaryAmt")
    good_after = r.str("goodAfterTime")
    good_till = r.str("goodTillDate")
    r.skip(3, "faGroup/faMethod/faPercentage")
    if version < 177:
        r.skip(1, "faProfile")
    r.str("modelCode")
    r.int("shortSaleSlot")
    r.str("designatedLocation")
    r.int("exemptCode", -1)
    oca_type = r.int("ocaType")
    r.str("rule80A")
    r.str("settlingFirm")
    all_or_none = r.bool("allOrNone")
    r.int("minQty")
    r.float("percentOffset")
    r.skip(3, "eTradeOnly/firmQuoteOnly/nbboPriceCap")
    r.int("auctionStrategy")
    r.skip(5, "startingPrice..stockRangeUpper")
    r.bool("overridePercentageConstraints")
    r.float("volatility")
    r.int("volatilityType")
    dn_type = r.str("deltaNeutralOrderType")
    r.float("deltaNeutralAuxPrice")
    if dn_type:
        r.skip(8, "delta neutral order")
    r.int("continuousUpdate")
    r.int("referencePriceType")
    trail_stop = r.float("trailStopPrice")
    trailing_pct = r.float("trailingPercent")
    r.skip(2, "scaleInitLevelSize/scaleSubsLevelSize")
    increment = r.float("scalePriceIncrement")
    if increment is not None and increment > 0:
        r.skip(7, "scale fields")
    r.skip(3, "scaleTable/activeStartTime/activeStopTime")
    hedge_type = r.str("hedgeType")
    if hedge_type:
        r.skip(1, "hedgeParam")
    r.skip(4, "optOutSmartRouting..notHeld")
    delta_neutral = r.bool("deltaNeutralContract present")
    if delta_neutral:
        r.skip(3, "deltaNeutralContract")
    algo = r.str("algoStrategy")
    if algo:
        r.skip(_count(r, "algoParams count") * 2, "algo param")
    r.str("algoId")
    what_if = r.bool("whatIf")
    r.str("orderMiscOptions")
    r.skip(3, "solicited/randomizeSize/randomizePrice")
    if order_type in ("PEG BENCH", "PEGBENCH"):
        r.skip(5, "pegged to benchmark")
    conditions = _count(r, "conditions count")
    if conditions == 0:
        # The tail is only checked for presence: ibsim uses none of it.
        r.skip(19, "adjusted order / mifid2 / misc fields")
        tail = (version >= 158) + (version >= 160) + (version >= 162)
        tail += (version >= 166) + (version >= 169)
        r.skip(tail, "version dependent order fields")
    return OrderRequest(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=qty,
        order_type=order_type,
        lmt_price=lmt,
        aux_price=aux,
        tif=tif,
        oca_group=oca_group,
        account=account,
        open_close=open_close,
        origin=origin,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        hidden=hidden,
        good_after_time=good_after,
        good_till_date=good_till,
        oca_type=oca_type,
        all_or_none=all_or_none,
        trail_stop_price=trail_stop,
        trailing_percent=trailing_pct,
        what_if=what_if,
        conditions=conditions,
        algo_strategy=algo,
        delta_neutral=delta_neutral,
    )


@dataclass(frozen=True)
class HistoricalRequest:
    """reqHistoricalData (message 20, no version field)."""

    req_id: int
    contract: ContractSpec
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def read_historical(r: FieldReader) -> HistoricalRequest:
    req_id = r.int("reqId")
    contract = read_contract(r)
    r.bool("includeExpired")
    end = r.str("endDateTime")
    bar_size = r.str("barSizeSetting")
    duration = r.str("durationStr")
    use_rth = r.bool("useRTH")
    what = r.str("whatToShow")
    fmt = r.int("formatDate", 1)
    _skip_bag_legs(r, contract, 4)
    keep = r.bool("keepUpToDate")
    r.str("chartOptions")
    return HistoricalRequest(req_id, contract, end, bar_size, duration, use_rth, what, fmt, keep)


@dataclass(frozen=True)
class MktDataRequest:
    """reqMktData (message 1, version 11)."""

    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool


def read_mkt_data(r: FieldReader) -> MktDataRequest:
    r.int("version")
    req_id = r.int("reqId")
    contract = read_contract(r)
    _skip_bag_legs(r, contract, 4)
    if r.bool("deltaNeutralContract present"):
        r.skip(3, "deltaNeutralContract")
    ticks = r.str("genericTickList")
    snapshot = r.bool("snapshot")
    r.bool("regulatorySnapshot")
    r.str("mktDataOptions")
    return MktDataRequest(req_id, contract, ticks, snapshot)


@dataclass(frozen=True)
class RealTimeBarsRequest:
    """reqRealTimeBars (message 50, version 3)."""

    req_id: int
    contract: ContractSpec
    bar_size: int
    what_to_show: str


def read_real_time_bars(r: FieldReader) -> RealTimeBarsRequest:
    r.int("version")
    req_id = r.int("reqId")
    contract = read_contract(r)
    size = r.int("barSize")
    what = r.str("whatToShow")
    r.bool("useRTH")
    r.str("realTimeBarsOptions")
    return RealTimeBarsRequest(req_id, contract, size, what)


@dataclass(frozen=True)
class ExecFilter:
    """reqExecutions' filter; empty strings and client id 0 match everything."""

    client_id: int = 0
    account: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


def read_executions(r: FieldReader) -> tuple[int, ExecFilter]:
    r.int("version")
    req_id = r.int("reqId")
    f = ExecFilter(
        client_id=r.int("clientId"),
        account=r.str("acctCode"),
        time=r.str("time"),
        symbol=r.str("symbol"),
        sec_type=r.str("secType"),
        exchange=r.str("exchange"),
        side=r.str("side"),
    )
    return req_id, f


def read_contract_details(r: FieldReader, version: int) -> tuple[int, ContractSpec]:
    r.int("version")
    req_id = r.int("reqId")
    contract = read_contract(r)
    r.bool("includeExpired")
    r.skip(2, "secIdType/secId")
    if version >= 176:
        r.str("issuerId")
    return req_id, contract


def read_head_timestamp(r: FieldReader) -> tuple[int, ContractSpec, int]:
    req_id = r.int("reqId")
    contract = read_contract(r)
    r.bool("includeExpired")
    r.bool("useRTH")
    r.str("whatToShow")
    fmt = r.int("formatDate", 1)
    return req_id, contract, fmt
