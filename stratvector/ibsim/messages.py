"""Builders of the server -> client messages, each a list of fields in TWS's exact layout.

Layouts are those ib_async 2.1's ``decoder.py`` unpacks, per negotiated server version
(``v``). Several decoders unpack into fixed tuples, so a missing or extra field is a decode
error on the client: keep every builder field-for-field with the decoder, and add a
``v >= N`` branch wherever the decoder has one. Pure functions: no state, no I/O.

This module holds the session messages (errors, ids, accounts list, time) and re-exports
the builders and message ids of its two halves, so callers import everything from here:

- :mod:`stratvector.ibsim.messages_market`: contract details, market rules, symbol
  samples, historical bars and updates, real-time bars, ticks;
- :mod:`stratvector.ibsim.messages_trading`: orders (openOrder, orderStatus,
  completedOrder, what-if), executions and commission reports, positions, portfolio and
  account values.
"""

from __future__ import annotations

from stratvector.ibsim.messages_market import (
    CONTRACT_DATA,
    CONTRACT_DATA_END,
    HEAD_TIMESTAMP,
    HISTORICAL_DATA,
    HISTORICAL_DATA_UPDATE,
    MARKET_DATA_TYPE,
    MARKET_RULE,
    ORDER_TYPES,
    REAL_TIME_BARS,
    SYMBOL_SAMPLES,
    TICK_PRICE,
    TICK_SIZE,
    TICK_SNAPSHOT_END,
    bar_row,
    contract_data,
    contract_data_end,
    head_timestamp,
    historical_data,
    historical_data_update,
    market_data_type,
    market_rule,
    real_time_bar,
    symbol_samples,
    tick_price,
    tick_size,
    tick_snapshot_end,
)
from stratvector.ibsim.messages_trading import (
    ACCOUNT_SUMMARY,
    ACCOUNT_SUMMARY_END,
    ACCOUNT_UPDATE_MULTI,
    ACCOUNT_UPDATE_MULTI_END,
    ACCT_DOWNLOAD_END,
    ACCT_UPDATE_TIME,
    ACCT_VALUE,
    COMMISSION_REPORT,
    COMPLETED_ORDER,
    COMPLETED_ORDERS_END,
    EXECUTION_DATA,
    EXECUTION_DATA_END,
    OPEN_ORDER,
    OPEN_ORDER_END,
    ORDER_STATUS,
    PORTFOLIO_VALUE,
    POSITION_DATA,
    POSITION_END,
    account_download_end,
    account_summary,
    account_summary_end,
    account_time,
    account_update_multi,
    account_update_multi_end,
    account_value,
    commission_report,
    completed_order,
    completed_orders_end,
    exec_details,
    exec_details_end,
    open_order,
    open_order_end,
    order_status,
    portfolio_value,
    position,
    position_end,
    what_if_state,
)
from stratvector.ibsim.protocol import Msg

__all__ = [
    "ACCOUNT_SUMMARY",
    "ACCOUNT_SUMMARY_END",
    "ACCOUNT_UPDATE_MULTI",
    "ACCOUNT_UPDATE_MULTI_END",
    "ACCT_DOWNLOAD_END",
    "ACCT_UPDATE_TIME",
    "ACCT_VALUE",
    "COMMISSION_REPORT",
    "COMPLETED_ORDER",
    "COMPLETED_ORDERS_END",
    "CONTRACT_DATA",
    "CONTRACT_DATA_END",
    "CURRENT_TIME",
    "ERR_MSG",
    "EXECUTION_DATA",
    "EXECUTION_DATA_END",
    "HEAD_TIMESTAMP",
    "HISTORICAL_DATA",
    "HISTORICAL_DATA_UPDATE",
    "MANAGED_ACCTS",
    "MARKET_DATA_TYPE",
    "MARKET_RULE",
    "NEXT_VALID_ID",
    "OPEN_ORDER",
    "OPEN_ORDER_END",
    "ORDER_STATUS",
    "ORDER_TYPES",
    "PORTFOLIO_VALUE",
    "POSITION_DATA",
    "POSITION_END",
    "REAL_TIME_BARS",
    "SYMBOL_SAMPLES",
    "TICK_PRICE",
    "TICK_SIZE",
    "TICK_SNAPSHOT_END",
    "USER_INFO",
    "Msg",
    "account_download_end",
    "account_summary",
    "account_summary_end",
    "account_time",
    "account_update_multi",
    "account_update_multi_end",
    "account_value",
    "bar_row",
    "commission_report",
    "completed_order",
    "completed_orders_end",
    "contract_data",
    "contract_data_end",
    "current_time",
    "error",
    "exec_details",
    "exec_details_end",
    "head_timestamp",
    "historical_data",
    "historical_data_update",
    "managed_accounts",
    "market_data_type",
    "market_rule",
    "next_valid_id",
    "open_order",
    "open_order_end",
    "order_status",
    "portfolio_value",
    "position",
    "position_end",
    "real_time_bar",
    "symbol_samples",
    "tick_price",
    "tick_size",
    "tick_snapshot_end",
    "user_info",
    "what_if_state",
]

# --- outgoing message ids (server -> client) -------------------------------------------
ERR_MSG = 4
NEXT_VALID_ID = 9
MANAGED_ACCTS = 15
CURRENT_TIME = 49
USER_INFO = 107


# --- session -----------------------------------------------------------------------------


def error(v: int, req_id: int, code: int, text: str, advanced: str = "") -> Msg:
    """errorMsg: ``4,2,reqId,code,text`` plus the advanced-reject JSON from v166."""
    msg: Msg = [ERR_MSG, 2, req_id, code, text]
    if v >= 166:
        msg.append(advanced)
    return msg


def next_valid_id(order_id: int) -> Msg:
    return [NEXT_VALID_ID, 1, order_id]


def managed_accounts(accounts: str) -> Msg:
    return [MANAGED_ACCTS, 1, accounts]


def current_time(epoch_seconds: int) -> Msg:
    return [CURRENT_TIME, 1, epoch_seconds]


def user_info(req_id: int) -> Msg:
    return [USER_INFO, req_id, ""]
