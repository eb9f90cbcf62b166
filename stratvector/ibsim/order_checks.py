"""The checks that refuse an order before the book takes it: price grid and request shape.

- Like IB, an order whose limit price, stop price (``auxPrice`` of STP and STP LMT) or
  trailing stop price is not on the grid of the contract's market rule at that price
  (the increment of the band the price lies in, :mod:`stratvector.ibsim.ticks`; the
  ``min_tick`` without a rule) is refused with error 110 (:data:`OFF_TICK`): a new order
  is not accepted, a modification leaves the order as it was. A TRAIL order's trailing
  amount and percentage are not checked.
- A new order that fails :func:`request_problem` (or the book's own limits: a working
  parent, the open-order cap) is rejected with error 201 and goes Inactive; a
  modification that fails it, or changes the action or symbol (error 105), or shrinks
  the size below the filled quantity, gets the error and leaves the order as it was
  (:func:`modification_error`).

Pure functions of the request (and, for a modification, the order): the book
(:mod:`stratvector.ibsim.orders`) turns their answers into events.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stratvector.ibsim.market import Instrument
    from stratvector.ibsim.orders import SimOrder
    from stratvector.ibsim.requests import OrderRequest

SUPPORTED_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
OFF_TICK = "The price does not conform to the minimum price variation for this contract."


def off_tick(req: OrderRequest, inst: Instrument) -> bool:
    """True if a price of ``req`` that IB checks is off the grid valid at that price."""
    prices = [req.trail_stop_price]
    if req.order_type in ("LMT", "STP LMT"):
        prices.append(req.lmt_price)
    if req.order_type in ("STP", "STP LMT"):
        prices.append(req.aux_price)
    return any(p is not None and not inst.conforms(p) for p in prices)


def request_problem(req: OrderRequest) -> str:
    """Why ibsim cannot take ``req`` whatever the book holds (the reason of error 201),
    or "" if it can: action, size, prices, a supported order type with the prices it
    needs, no conditions, algos or delta-neutral legs."""
    if req.action not in ("BUY", "SELL"):
        return f"action {req.action!r} must be BUY or SELL"
    if not 0 < req.total_quantity < 1e9:
        return f"order size {req.total_quantity} must be > 0 and below 1e9"
    prices = (req.lmt_price, req.aux_price, req.trail_stop_price, req.trailing_percent)
    if any(p is not None and not (math.isfinite(p) and p >= 0) for p in prices):
        return "prices must be finite and non-negative"
    if req.order_type not in SUPPORTED_TYPES:
        return (
            f"ibsim does not support order type {req.order_type!r}; "
            f"use one of {', '.join(SUPPORTED_TYPES)}"
        )
    if req.order_type in ("LMT", "STP LMT") and req.lmt_price is None:
        return f"{req.order_type} order needs a limit price"
    if req.order_type in ("STP", "STP LMT") and req.aux_price is None:
        return f"{req.order_type} order needs a stop price (auxPrice)"
    if req.order_type == "TRAIL" and req.aux_price is None and req.trailing_percent is None:
        return "TRAIL order needs a trailing amount (auxPrice) or trailingPercent"
    if req.conditions or req.algo_strategy or req.delta_neutral:
        return "ibsim does not support conditional, algo or delta-neutral orders"
    return ""


def modification_error(order: SimOrder, req: OrderRequest) -> tuple[int, str] | None:
    """``(code, text)`` of the error refusing ``req`` as a modification of the working
    ``order`` (105, 110 or 201), or None if the book may apply it."""
    if req.action != order.req.action or (
        req.contract.symbol and req.contract.symbol != order.inst.symbol
    ):
        return 105, "Order being modified does not match original order."
    if off_tick(req, order.inst):
        return 110, OFF_TICK
    problem = request_problem(req)
    if problem:
        return 201, f"Order rejected - reason:{problem}"
    if req.total_quantity < order.filled:
        return (
            201,
            f"Order rejected - reason:new size {req.total_quantity} is below the "
            f"filled {order.filled}",
        )
    return None
