"""Round-trip trades from the order records.

A trade is one position episode of a symbol: it opens when the position leaves zero and
closes when it returns to zero. An order that flips the position closes one trade and
opens the next, its quantity and commission split pro rata. A trade still open at the
end is marked to the last close (``is_open``), its exit price that close.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REASON_NAMES = ("signal", "stop_loss", "take_profit", "trailing_stop", "halt")

TRADE_COLUMNS = [
    "symbol", "direction", "entry_time", "exit_time", "entry_price", "exit_price",
    "quantity", "pnl", "return", "commission", "slippage", "exit_reason", "bars_held",
    "is_open",
]  # fmt: skip


@dataclass
class _Open:
    direction: float
    entry_bar: int
    qty_in: float = 0.0
    value_in: float = 0.0
    qty_out: float = 0.0
    value_out: float = 0.0
    commission: float = 0.0
    slippage: float = 0.0
    reasons: list[int] = field(default_factory=list)


def trades_from_orders(
    orders: np.ndarray,
    index: pd.DatetimeIndex,
    symbols: list[str],
    last_close: np.ndarray,
) -> pd.DataFrame:
    """Build the trade table from kernel order records (see ``simulate_nb``)."""
    rows: list[dict] = []
    for j, sym in enumerate(symbols):
        recs = orders[orders[:, 2] == j]
        pos = 0.0
        cur: _Open | None = None
        for r in recs:
            bar, qty, px, comm, slip, reason = int(r[1]), r[3], r[4], r[5], r[6], int(r[7])
            remaining = qty
            if cur is not None and np.sign(qty) != cur.direction:
                closing = min(abs(qty), abs(pos))
                share = closing / abs(qty)
                cur.qty_out += closing
                cur.value_out += closing * px
                cur.commission += comm * share
                cur.slippage += slip * share
                cur.reasons.append(reason)
                pos += np.sign(qty) * closing
                remaining = qty - np.sign(qty) * closing
                comm, slip = comm * (1 - share), slip * (1 - share)
                if abs(pos) <= 1e-9 * max(1.0, cur.qty_in):
                    pos = 0.0
                    rows.append(_row(sym, cur, index, bar, px, False))
                    cur = None
            if abs(remaining) > 0.0:
                if cur is None:
                    cur = _Open(direction=float(np.sign(remaining)), entry_bar=bar)
                cur.qty_in += abs(remaining)
                cur.value_in += abs(remaining) * px
                cur.commission += comm
                cur.slippage += slip
                pos += remaining
        if cur is not None:
            rows.append(_row(sym, cur, index, len(index) - 1, float(last_close[j]), True))
    frame = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    return frame.sort_values(["entry_time", "symbol"], kind="stable").reset_index(drop=True)


def _row(
    sym: str, tr: _Open, index: pd.DatetimeIndex, exit_bar: int, px: float, is_open: bool
) -> dict:
    if is_open:
        # mark the rest of the position to the last close
        rest = tr.qty_in - tr.qty_out
        qty_out, value_out = tr.qty_out + rest, tr.value_out + rest * px
    else:
        qty_out, value_out = tr.qty_out, tr.value_out
    entry_price = tr.value_in / tr.qty_in
    exit_price = value_out / qty_out if qty_out else np.nan
    gross = tr.direction * (value_out - tr.value_in)
    pnl = gross - tr.commission
    return {
        "symbol": sym,
        "direction": "long" if tr.direction > 0 else "short",
        "entry_time": index[tr.entry_bar],
        "exit_time": pd.NaT if is_open else index[exit_bar],
        "entry_price": entry_price,
        "exit_price": exit_price,
        "quantity": tr.qty_in,
        "pnl": pnl,
        "return": pnl / tr.value_in if tr.value_in else np.nan,
        "commission": tr.commission,
        "slippage": tr.slippage,
        "exit_reason": "open" if is_open else REASON_NAMES[tr.reasons[-1]],
        "bars_held": exit_bar - tr.entry_bar,
        "is_open": is_open,
    }
