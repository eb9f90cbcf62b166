"""The order book: order state, the bracket/OCA rules, and matching against revealed bars.

Matching follows the backtest's conventions and calls its code, never a copy:

- An order becomes checkable from the next bar revealed after it is accepted
  (``active_from`` is the clock position at acceptance). A market order accepted while bar
  t is the last closed bar therefore fills at bar t+1's open, plus slippage
  (:func:`stratvector.backtest.costs.slipped_price`).
- Stops and trailing stops trigger on the bar's range and fill at the stop or the gap open
  (:func:`stratvector.backtest.fills.stop_fill_nb`), plus slippage: a triggered stop is a
  market order. Limits fill at the limit or a better open
  (:func:`~stratvector.backtest.fills.limit_fill_nb`), without slippage.
- Within one bar, orders are checked market first, then stops, then limits: when a
  bracket's stop-loss and take-profit both could fill in one bar, the stop wins (the
  conservative order the backtest uses). Stops are checked in the order a price moving
  away from the open reaches them: the nearest to the open first, those the open is
  already through at once (in placement order). So of two sell stops protecting one
  long (a stop-loss and a trailing stop), the higher one fills when both trigger in a
  bar, as in a real market and in the backtest, whichever was placed first.
- Bracket children of a parent filled at the bar's open (a market parent, or a limit or
  stop parent the open went through) work in that same bar, stop-loss before
  take-profit, as the backtest checks protective exits in the bar of entry. Children of
  a parent filled inside the bar start with the next bar (the order of prices within a
  bar is unknown). A trailing stop ratchets on a bar only after that bar failed to
  trigger it.
- Bracket children are held (``PreSubmitted``) until the parent is completely filled,
  then work as an implicit OCA group that reduces the sibling's size by each fill.
  Explicit OCA groups: type 1 cancels the others on a fill, types 2 and 3 reduce them.
- Like IB, an order whose limit price, stop price (``auxPrice`` of STP and STP LMT) or
  trailing stop price is not on the grid of the contract's market rule at that price
  (the increment of the band the price lies in, :mod:`stratvector.ibsim.ticks`; the
  ``min_tick`` without a rule) is refused with error 110 ("The price does not conform
  to the minimum price variation for this contract."): a new order is not accepted, a
  modification leaves the order as it was. A TRAIL order's trailing amount and
  percentage are not checked.
- With ``participation`` set, an order fills at most that fraction of the bar's volume
  (at least one share) per bar; the rest keeps working.
- With ``expire_day_orders`` set, an order with tif DAY (or empty, IB's default) is
  cancelled ("Order expired (DAY)") before it would work in a bar of a later UTC date
  than the first bar it worked in. Off by default: orders then work until done (GTC).

The book only changes state and returns events; commissions, the account and the wire
are the broker's business.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from stratvector.backtest.costs import SLIP_SQRT_IMPACT, CostModel, slipped_price
from stratvector.backtest.fills import limit_fill_nb, stop_fill_nb
from stratvector.ibsim.market import Instrument
from stratvector.ibsim.requests import OrderRequest

SUPPORTED_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
OFF_TICK = "The price does not conform to the minimum price variation for this contract."
WORKING = frozenset({"PreSubmitted", "Submitted"})
DONE = frozenset({"Filled", "Cancelled", "Inactive"})
_PRIORITY = {"MKT": 0, "STP": 1, "TRAIL": 1, "STP LMT": 1, "LMT": 2}


@dataclass(eq=False)
class SimOrder:
    """One order as the stand-in holds it. ``status`` ``PendingSubmit`` means staged: sent
    with ``transmit=False`` and not yet transmitted."""

    client_id: int
    perm_id: int
    req: OrderRequest
    inst: Instrument
    account: str
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    why_held: str = ""
    trail_stop: float | None = None
    active_from: int = 0
    triggered: bool = False
    parent_perm_id: int = 0
    completed_time: str = ""
    completed_status: str = ""
    session_day: int | None = None  # UTC day of the first bar a DAY order worked in

    @property
    def order_id(self) -> int:
        return self.req.order_id

    @property
    def key(self) -> tuple[int, int]:
        return (self.client_id, self.req.order_id)

    @property
    def remaining(self) -> float:
        return max(self.req.total_quantity - self.filled, 0.0)

    @property
    def side(self) -> float:
        return 1.0 if self.req.action == "BUY" else -1.0

    @property
    def is_done(self) -> bool:
        return self.status in DONE

    def snapshot(self) -> SimOrder:
        return replace(self)


# --- events (what happened, in order; the broker turns them into messages) -------------


@dataclass(frozen=True)
class Ack:
    """The order is new or changed: openOrder then orderStatus."""

    order: SimOrder


@dataclass(frozen=True)
class Filled:
    """An execution of ``qty`` at ``price`` in bar ``bar_index`` of the order's symbol."""

    order: SimOrder
    qty: float
    price: float
    bar_index: int


@dataclass(frozen=True)
class Cancelled:
    """orderStatus Cancelled, then error 202 with ``reason``."""

    order: SimOrder
    reason: str


@dataclass(frozen=True)
class Rejected:
    """Error 201 with ``reason``, then openOrder and orderStatus Inactive."""

    order: SimOrder
    reason: str


@dataclass(frozen=True)
class OrderError:
    """An error about an order id with no state change (e.g. 103, 10147, 10148)."""

    client_id: int
    order_id: int
    code: int
    text: str


Event = Ack | Filled | Cancelled | Rejected | OrderError


class OrderBook:
    """All orders of all clients, keyed by ``(client_id, order_id)``.

    ``max_open`` bounds working plus staged orders; ``max_done`` bounds the completed
    orders kept for reqCompletedOrders (the oldest are forgotten).
    """

    def __init__(
        self,
        slippage: CostModel,
        participation: float | None = None,
        max_open: int = 10_000,
        max_done: int = 10_000,
        expire_day_orders: bool = False,
    ) -> None:
        self.slippage = slippage
        self.participation = participation
        self.expire_day_orders = expire_day_orders
        self.max_open = max_open
        self._orders: dict[tuple[int, int], SimOrder] = {}  # every order still remembered
        self._live: dict[tuple[int, int], SimOrder] = {}  # staged or working ones only
        self._done: deque[SimOrder] = deque()
        self._max_done = max_done
        self._next_perm = 1_000_001

    # --- queries -------------------------------------------------------------------------

    def get(self, client_id: int, order_id: int) -> SimOrder | None:
        return self._orders.get((client_id, order_id))

    def working(self, client_id: int | None = None) -> list[SimOrder]:
        """Transmitted, not yet done orders (of one client, or all), in placement order."""
        return [
            o
            for o in self._live.values()
            if o.status in WORKING and (client_id is None or o.client_id == client_id)
        ]

    def completed(self) -> list[SimOrder]:
        return list(self._done)

    def max_order_id(self, client_id: int) -> int:
        ids = [oid for (cid, oid) in self._orders if cid == client_id]
        return max(ids, default=0)

    # --- commands ------------------------------------------------------------------------

    def place(
        self,
        client_id: int,
        req: OrderRequest,
        inst: Instrument,
        account: str,
        pos: int,
        ref_price: float | None,
    ) -> list[Event]:
        """Accept a new order or modify a working one (same client and order id).

        ``pos`` is the clock position (the next bar to be revealed has timeline index
        ``pos``); ``ref_price`` is the last close, used to start a trailing stop.
        """
        existing = self._orders.get((client_id, req.order_id))
        if existing is not None:
            if existing.is_done:
                return [OrderError(client_id, req.order_id, 103, "Duplicate order id")]
            return self._modify(existing, req, pos, ref_price)
        if _off_tick(req, inst):
            return [OrderError(client_id, req.order_id, 110, OFF_TICK)]
        problem = self._validate(client_id, req)
        order = SimOrder(client_id, self._new_perm_id(), req, inst, account or "")
        if problem:
            return self.reject(order, problem)
        if req.parent_id:
            parent = self._orders.get((client_id, req.parent_id))
            order.parent_perm_id = parent.perm_id if parent else 0
        self._orders[order.key] = order
        self._live[order.key] = order
        if not req.transmit:
            return []
        return self._transmit_family(order, pos, ref_price)

    def reject(self, order: SimOrder, reason: str) -> list[Event]:
        """Reject ``order`` (new, never working): error 201, then Inactive."""
        order.status = "Inactive"
        order.completed_status = "Rejected"
        self._remember_done(order)
        return [Rejected(order.snapshot(), reason)]

    def new_perm_id(self) -> int:
        return self._new_perm_id()

    def cancel(self, client_id: int, order_id: int, reason: str = "") -> list[Event]:
        """Cancel one order (and, for a bracket parent, its children)."""
        order = self._orders.get((client_id, order_id))
        if order is None:
            return [
                OrderError(
                    client_id,
                    order_id,
                    10147,
                    f"OrderId {order_id} that needs to be cancelled is not found.",
                )
            ]
        if order.is_done:
            return [
                OrderError(
                    client_id,
                    order_id,
                    10148,
                    f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                    f"state: {order.status}.",
                )
            ]
        events = self._cancel_one(order, reason)
        for child in self._children(order):
            if not child.is_done:
                events += self._cancel_one(child, reason)
        return events

    def cancel_all(self) -> list[Event]:
        """reqGlobalCancel: every staged or working order of every client."""
        events: list[Event] = []
        for order in list(self._live.values()):
            if not order.is_done:
                events += self._cancel_one(order, "Global Cancel")
        return events

    # --- matching ------------------------------------------------------------------------

    def on_bar(self, inst: Instrument, i: int, k: int) -> list[Event]:
        """Match ``inst``'s working orders against its bar ``i`` (timeline index ``k``).

        Bracket children activated by a parent filled at this bar's open join the work
        list in priority order, so a stop-loss can trigger in the bar of entry.
        """
        bar = (float(inst.open[i]), float(inst.high[i]), float(inst.low[i]))

        def priority(order: SimOrder) -> tuple[int, float, int]:
            return _priority(order, bar[0])

        queue = [
            o
            for o in self._live.values()
            if o.inst is inst and o.status == "Submitted" and o.active_from <= k
        ]
        queue.sort(key=priority)
        events: list[Event] = []
        cap = math.inf
        if self.participation is not None and inst.volume[i] > 0:
            cap = max(1.0, math.floor(self.participation * float(inst.volume[i])))
        checked: list[SimOrder] = []
        day = int(inst.times[i] // 86_400_000_000_000)
        pos = 0
        while pos < len(queue):
            order = queue[pos]
            pos += 1
            if order.status != "Submitted":  # cancelled or reduced away by an earlier fill
                continue
            if self.expire_day_orders and order.req.tif in ("", "DAY"):
                if order.session_day is None:
                    order.session_day = day
                elif day > order.session_day:
                    events += self._cancel_one(order, "Order expired (DAY)")
                    continue
            checked.append(order)
            qty = min(order.remaining, cap)
            price, ref = self._fill_price(order, inst, i, qty, bar)
            if math.isnan(price):
                continue
            events += self._fill(order, qty, price, i, k, at_open=ref == bar[0])
            joined = [
                o
                for o in self._children(order)
                if o.status == "Submitted" and o.active_from <= k and o not in queue
            ]
            if joined:
                queue[pos:] = sorted(queue[pos:] + joined, key=priority)
        for order in checked:
            if order.status == "Submitted" and order.req.order_type == "TRAIL":
                self._ratchet(order, bar[1], bar[2])
        return events

    # --- internals -----------------------------------------------------------------------

    def _new_perm_id(self) -> int:
        self._next_perm += 1
        return self._next_perm - 1

    def _validate(self, client_id: int, req: OrderRequest) -> str:
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
        if req.parent_id:
            parent = self._orders.get((client_id, req.parent_id))
            if parent is None or parent.is_done:
                return f"parent order {req.parent_id} is not working"
        if len(self._live) >= self.max_open:
            return f"too many open orders (ibsim limit {self.max_open})"
        return ""

    def _transmit_family(self, order: SimOrder, pos: int, ref: float | None) -> list[Event]:
        """Transmit ``order``'s bracket (its parent, itself, staged siblings): IB sends a
        bracket when its last order arrives with ``transmit=True``."""
        root = order
        if order.req.parent_id:
            root = self._orders.get((order.client_id, order.req.parent_id)) or order
        events: list[Event] = []
        for member in [root, *self._children(root)]:
            if member.status == "PendingSubmit":
                self._activate(member, pos, ref, held=bool(member.req.parent_id))
                events.append(Ack(member.snapshot()))
        return events

    def _activate(self, order: SimOrder, pos: int, ref: float | None, held: bool) -> None:
        parent = self._orders.get((order.client_id, order.req.parent_id)) if held else None
        if parent is not None and parent.status != "Filled":
            order.status = "PreSubmitted"
            order.why_held = "child"
            return
        order.status = "Submitted"
        order.why_held = ""
        order.active_from = pos
        if order.req.order_type == "TRAIL":
            order.trail_stop = self._initial_trail(order, ref)

    def _initial_trail(self, order: SimOrder, ref: float | None) -> float | None:
        if order.req.trail_stop_price is not None:
            return order.req.trail_stop_price
        if ref is None:
            return None
        return ref + order.side * _trail_amount(order, ref)

    def _modify(
        self, order: SimOrder, req: OrderRequest, pos: int, ref: float | None
    ) -> list[Event]:
        if req.action != order.req.action or (
            req.contract.symbol and req.contract.symbol != order.inst.symbol
        ):
            return [
                OrderError(
                    order.client_id,
                    order.order_id,
                    105,
                    "Order being modified does not match original order.",
                )
            ]
        if _off_tick(req, order.inst):
            return [OrderError(order.client_id, order.order_id, 110, OFF_TICK)]
        problem = self._validate(order.client_id, req.modified(parent_id=0))
        if problem and not problem.startswith("too many"):
            return [
                OrderError(
                    order.client_id, order.order_id, 201, f"Order rejected - reason:{problem}"
                )
            ]
        if req.total_quantity < order.filled:
            return [
                OrderError(
                    order.client_id,
                    order.order_id,
                    201,
                    f"Order rejected - reason:new size {req.total_quantity} is below the "
                    f"filled {order.filled}",
                )
            ]
        old = order.req
        order.req = req.modified(parent_id=old.parent_id)
        if order.req.order_type == "TRAIL" and (
            req.trail_stop_price != old.trail_stop_price
            or req.aux_price != old.aux_price
            or req.trailing_percent != old.trailing_percent
            or order.trail_stop is None
        ):
            order.trail_stop = self._initial_trail(order, ref)
        if order.status == "PendingSubmit":
            return self._transmit_family(order, pos, ref) if req.transmit else []
        return [Ack(order.snapshot())]

    def _children(self, parent: SimOrder) -> list[SimOrder]:
        return [
            o
            for o in self._live.values()
            if o.client_id == parent.client_id
            and o.req.parent_id == parent.order_id
            and o is not parent
        ]

    def _siblings(self, order: SimOrder) -> list[SimOrder]:
        """Orders sharing an OCA group with ``order`` (explicit group or bracket parent)."""
        out: list[SimOrder] = []
        for o in self._live.values():
            if o is order or o.is_done:
                continue
            same_oca = bool(order.req.oca_group) and o.req.oca_group == order.req.oca_group
            same_oca = same_oca and o.account == order.account
            same_parent = bool(order.req.parent_id) and (
                o.client_id == order.client_id and o.req.parent_id == order.req.parent_id
            )
            if same_oca or same_parent:
                out.append(o)
        return out

    def _cancel_one(self, order: SimOrder, reason: str) -> list[Event]:
        order.status = "Cancelled"
        order.completed_status = reason or "Cancelled by Trader"
        self._remember_done(order)
        return [Cancelled(order.snapshot(), reason)]

    def _remember_done(self, order: SimOrder) -> None:
        if self._live.get(order.key) is order:
            del self._live[order.key]
        self._done.append(order)
        while len(self._done) > self._max_done:
            old = self._done.popleft()
            if self._orders.get(old.key) is old:
                del self._orders[old.key]
        self._orders.setdefault(order.key, order)

    def _fill_price(
        self, order: SimOrder, inst: Instrument, i: int, qty: float, bar: tuple[float, ...]
    ) -> tuple[float, float]:
        """``(fill price, reference price before slippage)`` of ``qty`` of ``order`` in
        bar ``i`` given as (open, high, low); NaNs when it does not fill."""
        o_, h, lo = bar
        req, side = order.req, order.side
        kind = req.order_type
        if kind == "MKT":
            return self._slip(order, inst, i, qty, o_), o_
        if kind == "LMT":
            p = float(limit_fill_nb(side, float(req.lmt_price), o_, h, lo))
            return p, p
        if kind in ("STP", "TRAIL"):
            if kind == "TRAIL" and order.trail_stop is None:
                order.trail_stop = o_ + side * _trail_amount(order, o_)
            stop = float(req.aux_price) if kind == "STP" else float(order.trail_stop)
            p = float(stop_fill_nb(side, stop, o_, h, lo))
            return (p if math.isnan(p) else self._slip(order, inst, i, qty, p)), p
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

    def _slip(self, order: SimOrder, inst: Instrument, i: int, qty: float, price: float) -> float:
        sigma = adv = 0.0
        if self.slippage.code == SLIP_SQRT_IMPACT:
            sigma, adv = _sigma_adv(inst, i, int(getattr(self.slippage, "window", 20)))
        return slipped_price(self.slippage, price, qty, order.side, sigma, adv)

    def _ratchet(self, order: SimOrder, h: float, lo: float) -> None:
        if order.trail_stop is None:
            return
        if order.side < 0:
            order.trail_stop = max(order.trail_stop, h - _trail_amount(order, h))
        else:
            order.trail_stop = min(order.trail_stop, lo + _trail_amount(order, lo))

    def _fill(
        self, order: SimOrder, qty: float, price: float, i: int, k: int, at_open: bool
    ) -> list[Event]:
        total = order.filled + qty
        order.avg_fill_price = (order.avg_fill_price * order.filled + price * qty) / total
        order.filled = total
        order.last_fill_price = price
        if order.remaining <= 1e-9:
            order.status = "Filled"
            order.completed_status = "Filled"
            self._remember_done(order)
        events: list[Event] = [Filled(order.snapshot(), qty, price, i)]
        for other in self._siblings(order):
            events += self._oca_effect(order, other, qty)
        if order.status == "Filled":
            for child in self._children(order):
                if child.status == "PreSubmitted":
                    # filled at the open: the children work in this same bar (as the
                    # backtest checks exits in the bar of entry); inside the bar the
                    # order of prices is unknown, so they start with the next bar
                    self._activate(child, k if at_open else k + 1, price, held=True)
                    events.append(Ack(child.snapshot()))
        return events

    def _oca_effect(self, filled: SimOrder, other: SimOrder, qty: float) -> list[Event]:
        explicit = bool(filled.req.oca_group) and other.req.oca_group == filled.req.oca_group
        if explicit and filled.req.oca_type not in (2, 3):
            return self._cancel_one(other, "OCA group canceled")
        new_total = other.req.total_quantity - qty
        if new_total - other.filled <= 1e-9:
            return self._cancel_one(other, "OCA group canceled")
        other.req = other.req.modified(total_quantity=new_total)
        return [Ack(other.snapshot())]


def _priority(order: SimOrder, open_: float) -> tuple[int, float, int]:
    """Market first, then stops, then limits. Stops by how far the price must move from
    the bar's ``open_`` to trigger them (0 when the open is through the stop); then
    placement order."""
    kind = order.req.order_type
    reach = 0.0
    if kind in ("STP", "STP LMT") and order.req.aux_price is not None and not order.triggered:
        reach = max(0.0, (float(order.req.aux_price) - open_) * order.side)
    elif kind == "TRAIL":
        stop = order.trail_stop
        if stop is None:
            stop = open_ + order.side * _trail_amount(order, open_)
        reach = max(0.0, (stop - open_) * order.side)
    return (_PRIORITY.get(kind, 3), reach, order.perm_id)


def _off_tick(req: OrderRequest, inst: Instrument) -> bool:
    """True if a price of ``req`` that IB checks is off the grid valid at that price."""
    prices = [req.trail_stop_price]
    if req.order_type in ("LMT", "STP LMT"):
        prices.append(req.lmt_price)
    if req.order_type in ("STP", "STP LMT"):
        prices.append(req.aux_price)
    return any(p is not None and not inst.conforms(p) for p in prices)


def _trail_amount(order: SimOrder, ref: float) -> float:
    if order.req.trailing_percent is not None:
        return ref * order.req.trailing_percent / 100.0
    return float(order.req.aux_price or 0.0)


def _sigma_adv(inst: Instrument, i: int, window: int) -> tuple[float, float]:
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
