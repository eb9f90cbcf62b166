"""Round-trip trades from the order records.

A trade is one position episode of a symbol: it opens when the position leaves zero and
closes when it returns to zero. An order that flips the position closes one trade and
opens the next, its quantity, commission and slippage split pro rata. A trade still open
at the end is marked to the last close (``is_open``), its exit price that close.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

REASON_NAMES = ("signal", "stop_loss", "take_profit", "trailing_stop", "halt")

TRADE_COLUMNS = [
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "quantity",
    "pnl",
    "return",
    "commission",
    "slippage",
    "exit_reason",
    "bars_held",
    "is_open",
]

# columns of the array trades_nb returns
_SYM, _DIR, _ENTRY, _EXIT, _QIN, _VIN, _QOUT, _VOUT, _COMM, _SLIP, _REASON, _OPEN = range(12)


@njit(cache=True)
def trades_nb(orders: np.ndarray, n_sym: int, last_bar: int, last_close: np.ndarray) -> np.ndarray:
    """One row per trade (see the ``_SYM..._OPEN`` column constants), in closing order,
    then the trades still open at the end."""
    n = orders.shape[0]
    out = np.empty((n + n_sym, 12))
    k = 0
    pos = np.zeros(n_sym)
    st = np.zeros((n_sym, 12))
    active = np.zeros(n_sym, dtype=np.bool_)
    for i in range(n):
        j = int(orders[i, 2])
        bar = orders[i, 1]
        qty, px, comm, slip = orders[i, 3], orders[i, 4], orders[i, 5], orders[i, 6]
        sign = 1.0 if qty > 0 else -1.0
        remaining = qty
        if active[j] and sign != st[j, _DIR]:
            closing = min(abs(qty), abs(pos[j]))
            share = closing / abs(qty)
            st[j, _QOUT] += closing
            st[j, _VOUT] += closing * px
            st[j, _COMM] += comm * share
            st[j, _SLIP] += slip * share
            st[j, _REASON] = orders[i, 7]
            pos[j] += sign * closing
            remaining = qty - sign * closing
            comm *= 1.0 - share
            slip *= 1.0 - share
            if abs(pos[j]) <= 1e-9 * max(1.0, st[j, _QIN]):
                pos[j] = 0.0
                st[j, _EXIT] = bar
                out[k] = st[j]
                k += 1
                active[j] = False
        if remaining != 0.0:
            if not active[j]:
                st[j] = 0.0
                st[j, _SYM] = j
                st[j, _DIR] = 1.0 if remaining > 0 else -1.0
                st[j, _ENTRY] = bar
                active[j] = True
            st[j, _QIN] += abs(remaining)
            st[j, _VIN] += abs(remaining) * px
            st[j, _COMM] += comm
            st[j, _SLIP] += slip
            pos[j] += remaining
    for j in range(n_sym):
        if active[j]:
            rest = st[j, _QIN] - st[j, _QOUT]
            st[j, _QOUT] += rest
            st[j, _VOUT] += rest * last_close[j]
            st[j, _EXIT] = last_bar
            st[j, _OPEN] = 1.0
            out[k] = st[j]
            k += 1
    return out[:k]


def trade_records(
    orders: np.ndarray, n_sym: int, last_close: np.ndarray, n_bars: int
) -> np.ndarray:
    """:func:`trades_nb` sorted by entry bar, then symbol."""
    rec = trades_nb(orders, n_sym, n_bars - 1, last_close)
    return rec[np.lexsort((rec[:, _SYM], rec[:, _ENTRY]))]


def trades_frame(rec: np.ndarray, index: pd.DatetimeIndex, symbols: list[str]) -> pd.DataFrame:
    """The trade table from :func:`trade_records` rows."""
    direction = rec[:, _DIR]
    is_open = rec[:, _OPEN] > 0
    entry, exit_ = rec[:, _ENTRY].astype(np.int64), rec[:, _EXIT].astype(np.int64)
    value_in, value_out = rec[:, _VIN], rec[:, _VOUT]
    pnl = direction * (value_out - value_in) - rec[:, _COMM]
    with np.errstate(invalid="ignore", divide="ignore"):
        exit_price = np.where(rec[:, _QOUT] > 0, value_out / rec[:, _QOUT], np.nan)
        ret = np.where(value_in > 0, pnl / value_in, np.nan)
    exit_time = pd.DatetimeIndex(index[exit_]).where(~is_open)
    reasons = np.asarray(REASON_NAMES, dtype=object)[rec[:, _REASON].astype(np.int64)]
    return pd.DataFrame(
        {
            "symbol": np.asarray(symbols, dtype=object)[rec[:, _SYM].astype(np.int64)],
            "direction": np.where(direction > 0, "long", "short").astype(object),
            "entry_time": index[entry],
            "exit_time": exit_time,
            "entry_price": value_in / rec[:, _QIN],
            "exit_price": exit_price,
            "quantity": rec[:, _QIN],
            "pnl": pnl,
            "return": ret,
            "commission": rec[:, _COMM],
            "slippage": rec[:, _SLIP],
            "exit_reason": np.where(is_open, "open", reasons).astype(object),
            "bars_held": exit_ - entry,
            "is_open": is_open,
        },
        columns=TRADE_COLUMNS,
    )
