"""How one working order meets one revealed bar: fill prices, check order, trailing stops.

The rules follow the backtest's conventions and call its code, never a copy. The order
book (:mod:`stratvector.ibsim.orders`) walks a bar's working orders with these functions
and books what they decide:

- An order becomes checkable from the next bar revealed after it is accepted
  (``active_from`` is the clock position at acceptance). A market order accepted while bar
  t is the last closed bar therefore fills at bar t+1's open, plus slippage
  (:func:`stratvector.backtest.costs.slipped_price`).
- Stops and trailing stops trigger on the bar's range and fill at the stop or the gap open
  (:func:`stratvector.backtest.fills.stop_fill_nb`), plus slippage: a triggered stop is a
  market order. Limits fill at the limit or a better open
  (:func:`~stratvector.backtest.fills.limit_fill_nb`), without slippage. A stop-limit
  becomes a limit order once its stop triggers.
- Within one bar, orders are checked market first, then stops, then limits
  (:func:`priority`): when a bracket's stop-loss and take-profit both could fill in one
  bar, the stop wins (the conservative order the backtest uses). Stops are checked in
  the order a price moving away from the open reaches them: the nearest to the open
  first, those the open is already through at once (in placement order). So of two sell
  stops protecting one long (a stop-loss and a trailing stop), the higher one fills when
  both trigger in a bar, as in a real market and in the backtest, whichever was placed
  first.
- Bracket children of a parent filled at the bar's open (a market parent, or a limit or
  stop parent the open went through) work in that same bar, stop-loss before
  take-profit, as the backtest checks protective exits in the bar of entry. Children of
  a parent filled inside the bar start with the next bar (the order of prices within a
  bar is unknown). A bar can be matched in two phases, its open first
  (:meth:`~stratvector.ibsim.orders.OrderBook.on_open`: what the open fills, reported
  before the rest) and then the rest of its range: the children released at the open
  then work with whatever prices the client gave them in between. A trailing stop ratchets (:func:`ratchet`) on a bar only after that
  bar failed to trigger it.
- With ``participation`` set, an order fills at most that fraction of the bar's volume
  (at least one share) per bar (:func:`volume_cap`); the rest keeps working.
- With ``expire_day_orders`` set, an order with tif DAY (or empty, IB's default) is
  cancelled ("Order expired (DAY)") before it would work in a bar of a later UTC date
  than the first bar it worked in (:func:`day_order_expired`). Off by default: orders
  then work until done (GTC).

Functions of one order and one bar: they update only the order's own matching state
(``trail_stop``, ``triggered``, ``session_day``), never the book.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from stratvector.backtest.costs import SLIP_SQRT_IMPACT, CostModel, slipped_price
from stratvector.backtest.fills import limit_fill_nb, stop_fill_nb

if TYPE_CHECKING:
    from stratvector.ibsim.market import Instrument
    from stratvector.ibsim.orders import SimOrder

#: One bar as matching sees it: (open, high, low).
Bar = tuple[float, float, float]

_PRIORITY = {"MKT": 0, "STP": 1, "TRAIL": 1, "STP LMT": 1, "LMT": 2}
_DAY_NS = 86_400_000_000_000


def priority(order: SimOrder, open_: float) -> tuple[int, float, int]:
    """Sort key within a bar: market first, then stops, then limits. Stops by how far the
    price must move from the bar's ``open_`` to trigger them (0 when the open is through
    the stop); then placement order."""
    kind = order.req.order_type
    reach = 0.0
    if kind in ("STP", "STP LMT") and order.req.aux_price is not None and not order.triggered:
        reach = max(0.0, (float(order.req.aux_price) - open_) * order.side)
    elif kind == "TRAIL":
        stop = order.trail_stop
        if stop is None:
            stop = open_ + order.side * trail_amount(order, open_)
        reach = max(0.0, (stop - open_) * order.side)
    return (_PRIORITY.get(kind, 3), reach, order.perm_id)


def volume_cap(participation: float | None, volume: float) -> float:
    """Most shares one order may fill in a bar of ``volume``: ``participation`` of it, at
    least one share; unbounded without participation or without volume."""
    if participation is not None and volume > 0:
        return max(1.0, math.floor(participation * float(volume)))
    return math.inf


def utc_day(time_ns: int) -> int:
    """Days since the epoch (UTC) of a bar start given in nanoseconds."""
    return int(time_ns // _DAY_NS)


def day_order_expired(order: SimOrder, day: int) -> bool:
    """True if ``order`` is a DAY order (tif DAY or empty) that first worked on an earlier
    UTC ``day``; the first call for a DAY order records its day."""
    if order.req.tif not in ("", "DAY"):
        return False
    if order.session_day is None:
        order.session_day = day
        return False
    return day > order.session_day


def fill_price(
    order: SimOrder, inst: Instrument, i: int, qty: float, bar: Bar, slippage: CostModel
) -> tuple[float, float]:
    """``(fill price, reference price before slippage)`` of ``qty`` of ``order`` in
    ``inst``'s bar ``i`` given as (open, high, low); NaNs when it does not fill.

    Starts a trailing stop that has none yet at the open, and marks a stop-limit whose
    stop triggered (from then on it is a limit order).
    """
    o_, h, lo = bar
    req, side = order.req, order.side
    kind = req.order_type
    if kind == "MKT":
        return slipped(order, inst, i, qty, o_, slippage), o_
    if kind == "LMT":
        p = float(limit_fill_nb(side, float(req.lmt_price), o_, h, lo))
        return p, p
    if kind in ("STP", "TRAIL"):
        if kind == "TRAIL" and order.trail_stop is None:
            order.trail_stop = o_ + side * trail_amount(order, o_)
        stop = float(req.aux_price) if kind == "STP" else float(order.trail_stop)
        p = float(stop_fill_nb(side, stop, o_, h, lo))
        return (p if math.isnan(p) else slipped(order, inst, i, qty, p, slippage)), p
    # STP LMT: the stop turns it into a limit order
    limit = float(req.lmt_price)
    if not order.triggered:
        s = float(stop_fill_nb(side, float(req.aux_price), o_, h, lo))
        if math.isnan(s):
            return math.nan, math.nan
        order.triggered = True
        if (side > 0 and s <= limit) or (side < 0 and s >= limit):
            return s, s
        touched = lo <= limit if side > 0 else h >= limit
        return (limit, limit) if touched else (math.nan, math.nan)
    p = float(limit_fill_nb(side, limit, o_, h, lo))
    return p, p


def slipped(
    order: SimOrder, inst: Instrument, i: int, qty: float, price: float, slippage: CostModel
) -> float:
    """``price`` moved against ``order`` by the slippage model for ``qty`` in bar ``i``."""
    sigma = adv = 0.0
    if slippage.code == SLIP_SQRT_IMPACT:
        sigma, adv = sigma_adv(inst, i, int(getattr(slippage, "window", 20)))
    return slipped_price(slippage, price, qty, order.side, sigma, adv)


def ratchet(order: SimOrder, h: float, lo: float) -> None:
    """Move a trailing stop after a bar (``h``, ``lo``) that did not trigger it: up behind
    a sell's high, down behind a buy's low, never back."""
    if order.trail_stop is None:
        return
    if order.side < 0:
        order.trail_stop = max(order.trail_stop, h - trail_amount(order, h))
    else:
        order.trail_stop = min(order.trail_stop, lo + trail_amount(order, lo))


def initial_trail(order: SimOrder, ref: float | None) -> float | None:
    """A trailing stop's starting stop: the order's trailStopPrice, else ``ref`` (the last
    close) plus the trail on the stop's side; None with neither (it then starts at the
    open of the first bar it works in)."""
    if order.req.trail_stop_price is not None:
        return order.req.trail_stop_price
    if ref is None:
        return None
    return ref + order.side * trail_amount(order, ref)


def trail_amount(order: SimOrder, ref: float) -> float:
    """The trail in price units at price ``ref``: trailingPercent of it, else auxPrice."""
    if order.req.trailing_percent is not None:
        return ref * order.req.trailing_percent / 100.0
    return float(order.req.aux_price or 0.0)


def sigma_adv(inst: Instrument, i: int, window: int) -> tuple[float, float]:
    """Rolling return volatility (ddof=1) and mean volume over the ``window`` bars before
    bar ``i`` (causal: the fill bar itself is not used)."""
    lo = max(0, i - window)
    close = inst.close[max(0, lo - 1) : i]
    vol = inst.volume[lo:i]
    if len(close) < 3 or len(vol) == 0:
        return 0.0, 0.0
    rets = close[1:] / close[:-1] - 1.0
    rets = rets[-window:]
    return float(np.std(rets, ddof=1)), float(np.mean(vol))
