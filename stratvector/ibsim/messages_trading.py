"""Builders of the order, execution and account messages: openOrder, orderStatus,
completedOrder, execDetails with commission reports, positions, portfolio and account
values.

Part of :mod:`stratvector.ibsim.messages` (which re-exports every name here; import from
there), under its rules: each builder is a list of fields in TWS's exact layout,
field-for-field with ib_async 2.1's ``decoder.py`` for the negotiated server version
``v``. Pure functions: no state, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratvector.ibsim.protocol import UNSET_DOUBLE_TEXT, Msg

if TYPE_CHECKING:
    import pandas as pd

    from stratvector.ibsim.account import ExecutionRecord, PositionView
    from stratvector.ibsim.market import Instrument
    from stratvector.ibsim.orders import SimOrder

# --- outgoing message ids (server -> client) -------------------------------------------
ORDER_STATUS = 3
OPEN_ORDER = 5
ACCT_VALUE = 6
PORTFOLIO_VALUE = 7
ACCT_UPDATE_TIME = 8
EXECUTION_DATA = 11
OPEN_ORDER_END = 53
ACCT_DOWNLOAD_END = 54
EXECUTION_DATA_END = 55
COMMISSION_REPORT = 59
POSITION_DATA = 61
POSITION_END = 62
ACCOUNT_SUMMARY = 63
ACCOUNT_SUMMARY_END = 64
ACCOUNT_UPDATE_MULTI = 73
ACCOUNT_UPDATE_MULTI_END = 74
COMPLETED_ORDER = 101
COMPLETED_ORDERS_END = 102


def _contract_block(inst: Instrument, exchange: str) -> Msg:
    """conId..tradingClass as execDetails, position, openOrder, completedOrder and
    updatePortfolio carry it (11 fields; ``exchange`` fills the exchange slot, which
    updatePortfolio reads as primaryExchange)."""
    return [
        inst.con_id,
        inst.symbol,
        "STK",
        "",
        0.0,
        "",
        "",
        exchange,
        inst.currency,
        inst.symbol,
        "NMS",
    ]


# --- orders ------------------------------------------------------------------------------


def order_status(o: SimOrder) -> Msg:
    """orderStatus (3, no version field): ``orderId, status, filled, remaining,
    avgFillPrice, permId, parentId, lastFillPrice, clientId, whyHeld, mktCapPrice``."""
    return [
        ORDER_STATUS,
        o.order_id,
        o.status,
        o.filled,
        o.remaining,
        o.avg_fill_price,
        o.perm_id,
        o.req.parent_id,
        o.last_fill_price,
        o.client_id,
        o.why_held,
        0.0,
    ]


def _order_head(o: SimOrder) -> Msg:
    r = o.req
    return [
        r.action,
        r.total_quantity,
        r.order_type,
        r.lmt_price,
        r.aux_price,
        r.tif,
        r.oca_group,
        o.account,
        r.open_close,
        r.origin,
        r.order_ref,
    ]


def open_order(v: int, o: SimOrder, what_if: Msg | None = None) -> Msg:
    """openOrder (5, no version field), field for field with ``Decoder.openOrder``.

    ``what_if`` replaces the order-state block (status + margins + commissions) for a
    what-if answer; otherwise the state is the order's status with unset margins.
    """
    r = o.req
    msg: Msg = [OPEN_ORDER, o.order_id, *_contract_block(o.inst, "SMART"), *_order_head(o)]
    msg += [
        o.client_id,
        o.perm_id,
        r.outside_rth,
        r.hidden,
        0.0,  # discretionaryAmt
        r.good_after_time,
        "",  # deprecated sharesAllocation
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if v < 177:
        msg.append("")  # faProfile
    msg += [
        "",  # modelCode
        r.good_till_date,
        "",  # rule80A
        None,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        None,
        None,
        None,
        None,
        None,  # startingPrice, stockRefPrice, delta, range low/high
        0,  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        r.all_or_none,
        None,  # minQty
        r.oca_type,
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        None,  # nbboPriceCap
        r.parent_id,
        0,  # triggerMethod
        None,  # volatility
        None,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral block follows)
        None,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        None,  # referencePriceType
        o.trail_stop,  # trailStopPrice
        r.trailing_percent,
        None,  # basisPoints
        None,  # basisPointsType
        "",  # comboLegsDescrip
        0,  # combo legs
        0,  # order combo legs
        0,  # smart combo routing params
        None,  # scaleInitLevelSize
        None,  # scaleSubsLevelSize
        None,  # scalePriceIncrement (unset: no scale block follows)
        "",  # hedgeType (empty: no hedgeParam)
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # delta-neutral contract present
        "",  # algoStrategy (empty: no params)
        False,  # solicited
    ]
    if what_if is not None:
        msg += [True, *what_if]
    else:
        msg += [False, o.status, *([UNSET_DOUBLE_TEXT] * 9), None, None, None, "", ""]
    msg += [
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions
        "",  # adjustedOrderType
        None,  # triggerPrice
        o.trail_stop,  # trailStopPrice
        None,  # lmtPriceOffset
        None,  # adjustedStopPrice
        None,  # adjustedStopLimitPrice
        None,  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",
        "",
        "",  # softDollarTier name, value, display name
        None,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
    ]
    if v >= 159:
        msg.append(None)  # duration
    if v >= 160:
        msg.append(None)  # postToAts
    if v >= 162:
        msg.append(False)  # autoCancelParent
    if v >= 170:
        msg += [None, None, None, None, None]  # minTradeQty .. midOffsetAtHalf
    return msg


def what_if_state(status: str, commission: float, margin: float, equity: float) -> Msg:
    """The order-state block of a what-if openOrder (status, 9 margin fields, commissions,
    currency, warning text)."""
    m = str(round(margin, 2))
    e = str(round(equity, 2))
    return [status, "0", "0", e, m, m, "0", m, m, e, commission, commission, commission, "USD", ""]


def open_order_end() -> Msg:
    return [OPEN_ORDER_END, 1]


def completed_order(v: int, o: SimOrder) -> Msg:
    """completedOrder (101, no version field, no orderId/clientId), field for field with
    ``Decoder.completedOrder``."""
    r = o.req
    msg: Msg = [COMPLETED_ORDER, *_contract_block(o.inst, "SMART"), *_order_head(o)]
    msg += [o.perm_id, r.outside_rth, r.hidden, 0.0, r.good_after_time, "", "", ""]
    if v < 177:
        msg.append("")  # faProfile
    msg += [
        "",  # modelCode
        r.good_till_date,
        "",  # rule80A
        None,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        None,
        None,
        None,
        None,
        None,  # startingPrice .. stockRangeUpper
        0,  # displaySize
        False,  # sweepToFill
        r.all_or_none,
        None,  # minQty
        r.oca_type,
        0,  # triggerMethod
        None,  # volatility
        None,  # volatilityType
        "",  # deltaNeutralOrderType
        None,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        None,  # referencePriceType
        o.trail_stop,
        r.trailing_percent,
        "",  # comboLegsDescrip
        0,
        0,
        0,  # combo legs, order combo legs, routing params
        None,
        None,
        None,  # scale init/subs level size, price increment
        "",  # hedgeType
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # delta-neutral contract present
        "",  # algoStrategy
        False,  # solicited
        o.status,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions
        o.trail_stop,
        None,  # lmtPriceOffset
        None,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        o.filled,  # filledQuantity
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        o.parent_perm_id,
        o.completed_time,
        o.completed_status,
    ]
    if v >= 170:
        msg += [None, None, None, None, None]
    return msg


def completed_orders_end() -> Msg:
    return [COMPLETED_ORDERS_END]


# --- executions --------------------------------------------------------------------------


def exec_details(v: int, req_id: int, ex: ExecutionRecord) -> Msg:
    """execDetails (11, no version field); ``pendingPriceRevision`` from v178."""
    msg: Msg = [EXECUTION_DATA, req_id, ex.order_id, *_contract_block(ex.inst, ex.exchange)]
    msg += [
        ex.exec_id,
        ex.time_text,
        ex.account,
        ex.exchange,
        ex.side,
        ex.shares,
        ex.price,
        ex.perm_id,
        ex.client_id,
        0,
        ex.cum_qty,
        ex.avg_price,
        ex.order_ref,
        "",
        None,
        "",
        ex.liquidity,
    ]
    if v >= 178:
        msg.append(False)
    return msg


def exec_details_end(req_id: int) -> Msg:
    return [EXECUTION_DATA_END, 1, req_id]


def commission_report(ex: ExecutionRecord) -> Msg:
    """commissionReport (59): exactly 8 fields; realized P&L is TWS's unset value on a fill
    that only opens a position."""
    realized = UNSET_DOUBLE_TEXT if ex.realized_pnl is None else ex.realized_pnl
    return [
        COMMISSION_REPORT,
        1,
        ex.exec_id,
        ex.commission,
        ex.currency,
        realized,
        UNSET_DOUBLE_TEXT,
        "",
    ]


# --- account -----------------------------------------------------------------------------


def position(account: str, p: PositionView) -> Msg:
    """position (61, version 3): exactly 16 fields."""
    return [
        POSITION_DATA,
        3,
        account,
        *_contract_block(p.inst, p.inst.primary_exchange),
        p.qty,
        p.avg_cost,
    ]


def position_end() -> Msg:
    return [POSITION_END, 1]


def portfolio_value(account: str, p: PositionView) -> Msg:
    """updatePortfolio (7, version 8): exactly 20 fields."""
    return [
        PORTFOLIO_VALUE,
        8,
        *_contract_block(p.inst, p.inst.primary_exchange),
        p.qty,
        p.market_price,
        p.market_value,
        p.avg_cost,
        p.unrealized_pnl,
        p.realized_pnl,
        account,
    ]


def account_value(key: str, value: str, currency: str, account: str) -> Msg:
    return [ACCT_VALUE, 2, key, value, currency, account]


def account_time(ts: pd.Timestamp) -> Msg:
    return [ACCT_UPDATE_TIME, 1, ts.strftime("%H:%M")]


def account_download_end(account: str) -> Msg:
    return [ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(
    req_id: int, account: str, model: str, key: str, value: str, currency: str
) -> Msg:
    return [ACCOUNT_UPDATE_MULTI, 1, req_id, account, model, key, value, currency]


def account_update_multi_end(req_id: int) -> Msg:
    return [ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Msg:
    return [ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Msg:
    return [ACCOUNT_SUMMARY_END, 1, req_id]
