"""Short text forms of ib_async's ``Trade`` and ``Fill``, installed by the trader.

ib_async logs every order event at INFO with an f-string (``f"placeOrder: New order
{trade}"``, ``f"orderStatus: {trade}"``, ``f"execDetails: {fill}"`` ...), so the full
dataclass repr is built whether or not that log is on: the contract, every order field
that differs from its default (each compared), the status, and every fill and log entry
the trade has collected. Measured here, that is about 47 us of the ~120 us a
``placeOrder`` costs, paid between a decision and its orders, and again on every status
and execution IB reports, growing with the trade's history.

:func:`install` replaces the two reprs, for the whole process, with one line naming what
such a log line is for: the contract, the order's ids and ref, side, quantity, type and
status (a fill: its execution and commission). It changes nothing else. The trader calls
it when it starts; calling it again does nothing.
"""

from __future__ import annotations

from typing import Any

from ib_async import Fill, Trade


def trade_text(trade: Trade) -> str:
    """``Trade(AAPL BUY 100 LMT @ 185.25 orderId=5 permId=0 orderRef='...' Submitted 0/100)``."""
    c, o, s = trade.contract, trade.order, trade.orderStatus
    price = f" @ {o.lmtPrice}" if "LMT" in (o.orderType or "") else ""
    if (o.orderType or "").startswith(("STP", "TRAIL")):
        price += f" stop {o.auxPrice}"
    return (
        f"Trade({_symbol(c)} {o.action} {o.totalQuantity} {o.orderType}{price} "
        f"orderId={o.orderId} permId={o.permId} parentId={o.parentId} orderRef={o.orderRef!r} "
        f"tif={o.tif} account={o.account!r} {s.status} {s.filled}/{o.totalQuantity})"
    )


def fill_text(fill: Fill) -> str:
    """``Fill(AAPL BOT 100 @ 185.25 execId='...' orderId=5 orderRef='...' commission=1.0)``."""
    e, r = fill.execution, fill.commissionReport
    return (
        f"Fill({_symbol(fill.contract)} {e.side} {e.shares} @ {e.price} execId={e.execId!r} "
        f"orderId={e.orderId} permId={e.permId} orderRef={e.orderRef!r} "
        f"commission={r.commission} {r.currency} time={fill.time})"
    )


def install() -> None:
    """Use :func:`trade_text` and :func:`fill_text` as the reprs of ib_async's ``Trade``
    and ``Fill`` in this process (idempotent)."""
    Trade.__repr__ = _trade_repr  # type: ignore[method-assign,assignment]
    Fill.__repr__ = _fill_repr  # type: ignore[method-assign,assignment]


def _trade_repr(self: Any) -> str:
    return trade_text(self)


def _fill_repr(self: Any) -> str:
    return fill_text(self)


def _symbol(contract: Any) -> str:
    if contract is None:
        return "?"
    return contract.localSymbol or contract.symbol or f"conId={contract.conId}"
