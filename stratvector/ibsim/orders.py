"""The order book: order state, the bracket/OCA rules, and matching against revealed bars.

The book holds every order of every client and moves it through its states (staged
``PendingSubmit``, held ``PreSubmitted``, working ``Submitted``, then ``Filled``,
``Cancelled`` or ``Inactive``). Two neighbours decide for it:
:mod:`stratvector.ibsim.order_checks` which orders are refused (error 110 off the price
grid, 201 rejected, 105 bad modification), and :mod:`stratvector.ibsim.matching` which
working orders a revealed bar fills, at what price and in what order, following the
backtest's conventions; :meth:`OrderBook.on_bar` walks a bar's orders with it and books
each fill here.

Brackets and OCA groups are the book's own rules: bracket children are held
(``PreSubmitted``) until the parent is completely filled, then work as an implicit OCA
group that reduces the sibling's size by each fill; a bracket is transmitted when its
last order arrives with ``transmit=True``. Explicit OCA groups: type 1 cancels the others
on a fill, types 2 and 3 reduce them.

The book only changes state and returns events; commissions, the account and the wire
are the broker's business.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from stratvector.backtest.costs import CostModel
from stratvector.ibsim.market import Instrument
from stratvector.ibsim.matching import (
    day_order_expired,
    fill_price,
    initial_trail,
    priority,
    ratchet,
    utc_day,
    volume_cap,
)
from stratvector.ibsim.order_checks import (
    OFF_TICK,
    SUPPORTED_TYPES,
    modification_error,
    off_tick,
    request_problem,
)
from stratvector.ibsim.requests import OrderRequest

__all__ = [
    "DONE",
    "OFF_TICK",
    "SUPPORTED_TYPES",
    "WORKING",
    "Ack",
    "Cancelled",
    "Event",
    "Filled",
    "OrderBook",
    "OrderError",
    "Rejected",
    "SimOrder",
]

WORKING = frozenset({"PreSubmitted", "Submitted"})
DONE = frozenset({"Filled", "Cancelled", "Inactive"})


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
        # con id -> (timeline index, perm ids filled) of an open phase (on_open) whose
        # bar is not matched yet
        self._opened: dict[int, tuple[int | None, set[int]]] = {}
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
        if off_tick(req, inst):
            return [OrderError(client_id, req.order_id, 110, OFF_TICK)]
        problem = request_problem(req) or self._book_problem(client_id, req)
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

    def on_open(self, inst: Instrument, i: int, k: int) -> list[Event]:
        """Match ``inst``'s working orders against the open of its bar ``i`` only (the
        open phase of :meth:`on_bar`): market orders, and stops and limits the open is
        through, fill at the open. Bracket children their fills release are not matched
        here: they work from the rest of the bar (:meth:`on_bar`), after the clients had
        the fills and could fix the children's prices, as they can against IB, where the
        bar's later prices come long after the open's fills."""
        o = float(inst.open[i])
        return self._match(inst, i, k, (o, o, o), join_children=False)

    def on_bar(self, inst: Instrument, i: int, k: int) -> list[Event]:
        """Match ``inst``'s working orders against its bar ``i`` (timeline index ``k``),
        by the rules of :mod:`stratvector.ibsim.matching`.

        Bracket children activated by a parent filled at this bar's open join the work
        list in priority order, so a stop-loss can trigger in the bar of entry. After
        :meth:`on_open` of the same bar, the orders it filled are not matched again (one
        volume cap per order and bar) and the children it released work in this bar.
        """
        bar = (float(inst.open[i]), float(inst.high[i]), float(inst.low[i]))
        return self._match(inst, i, k, bar, join_children=True)

    def _match(
        self, inst: Instrument, i: int, k: int, bar: tuple[float, float, float], join_children: bool
    ) -> list[Event]:
        opened = self._opened.pop(inst.con_id, (None, set()))
        at_open = not join_children
        done_at_open = opened[1] if opened[0] == k else set()

        def key(order: SimOrder) -> tuple[int, float, int]:
            return priority(order, bar[0])

        queue = [
            o
            for o in self._live.values()
            if o.inst is inst
            and o.status == "Submitted"
            and o.active_from <= k
            and o.perm_id not in done_at_open
        ]
        queue.sort(key=key)
        events: list[Event] = []
        cap = volume_cap(self.participation, inst.volume[i])
        checked: list[SimOrder] = []
        day = utc_day(inst.times[i])
        pos = 0
        while pos < len(queue):
            order = queue[pos]
            pos += 1
            if order.status != "Submitted":  # cancelled or reduced away by an earlier fill
                continue
            if self.expire_day_orders and day_order_expired(order, day):
                events += self._cancel_one(order, "Order expired (DAY)")
                continue
            checked.append(order)
            qty = min(order.remaining, cap)
            price, ref = fill_price(order, inst, i, qty, bar, self.slippage)
            if math.isnan(price):
                continue
            events += self._fill(order, qty, price, i, k, at_open=ref == bar[0])
            if at_open:
                done_at_open.add(order.perm_id)
                continue
            joined = [
                o
                for o in self._children(order)
                if o.status == "Submitted" and o.active_from <= k and o not in queue
            ]
            if joined:
                queue[pos:] = sorted(queue[pos:] + joined, key=key)
        if at_open:  # the rest of this bar is matched by on_bar
            self._opened[inst.con_id] = (k, done_at_open)
            return events
        for order in checked:
            if order.status == "Submitted" and order.req.order_type == "TRAIL":
                ratchet(order, bar[1], bar[2])
        return events

    # --- internals -----------------------------------------------------------------------

    def _new_perm_id(self) -> int:
        self._next_perm += 1
        return self._next_perm - 1

    def _book_problem(self, client_id: int, req: OrderRequest) -> str:
        """Why the book cannot take a new ``req`` that passed the request checks: its
        parent is not working, or too many orders are open; "" if it can."""
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
            order.trail_stop = initial_trail(order, ref)

    def _modify(
        self, order: SimOrder, req: OrderRequest, pos: int, ref: float | None
    ) -> list[Event]:
        refused = modification_error(order, req)
        if refused is not None:
            return [OrderError(order.client_id, order.order_id, *refused)]
        old = order.req
        order.req = req.modified(parent_id=old.parent_id)
        if order.req.order_type == "TRAIL" and (
            req.trail_stop_price != old.trail_stop_price
            or req.aux_price != old.aux_price
            or req.trailing_percent != old.trailing_percent
            or order.trail_stop is None
        ):
            order.trail_stop = initial_trail(order, ref)
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

    def _fill(
        self, order: SimOrder, qty: float, price: float, i: int, k: int, at_open: bool
    ) -> list[Event]:
        """Book a fill of ``qty`` at ``price`` (bar ``i``, timeline index ``k``), then its
        OCA effects and, once the order is complete, the release of its bracket children."""
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
