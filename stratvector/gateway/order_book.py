"""Our orders as the executor knows them: pure state and queries, no I/O.

The :class:`OrderBook` is shared by the sending side
(:class:`~stratvector.gateway.execution.Executor`) and the receiving side
(:class:`~stratvector.gateway.receiver.Receiver`). On the per-order path they read and
write its containers directly (one attribute hop, no extra calls); cancels and
modifications are registered with :meth:`OrderBook.expect_ack`; everyone else asks the
queries. The containers:

- ``orders``: every order of ours, by ref (:class:`Tracked`), sent in this process or
  adopted from IB after a (re)connect; done ones are pruned past 10,000;
- ``live``: the refs of orders that may still be working -- a superset, trimmed lazily
  by :meth:`OrderBook.live_orders`, so the queries scan working orders, not history;
- ``acks``: cancels and modifications IB has not confirmed yet (the trader is not idle
  while any is pending; one unconfirmed for :data:`ACK_TIMEOUT` seconds is dropped);
- ``fix``: bracket children whose prices are fixed once their parent's fill price is
  known, by parent ref;
- ``closing``: the reason of a cancel being made right now (set only for the duration of
  an ``ib.cancelOrder`` call, see :meth:`OrderBook.untransmitted`), which the receiver
  journals with the ``Cancelled`` status ib_async reports during that call;
- ``abandoned``: the parents of brackets whose entry is abandoned because IB refused one
  of their protective children (:class:`Abandoned`, see "A protective exit refused"
  below), by parent ref. Empty but for such rare brackets: the receiver looks a ref up
  in it only when it is not empty.

Working quantities (what the pre-trade risk check adds to IB's positions) count what an
order still has to fill: IB's ``remaining`` once IB reports it, the order's own
quantity less its fills before that (``PendingSubmit``, or IB reports nothing left).

Brackets that can never be transmitted
--------------------------------------
A strategy order with protective exits goes to IB as a bracket: the parent and every
child but the last are placed with ``transmit=False`` (staged: TWS/IB Gateway receives
them but does not send them to IB's servers), and the last child, placed with
``transmit=True``, is the signal to transmit the parent and all its children (IB's TWS
API guide, "Bracket Orders"). What happens when IB refuses one of them, and what
:meth:`OrderBook.untransmitted` returns to cancel:

- the transmitting child is refused (e.g. error 110 on its price, or any other
  rejection): the signal never arrived, so nothing of the bracket was transmitted and
  the parent and the other children stay staged (nothing else transmits them; ib_async
  keeps them ``PendingSubmit``). They are cancelled: the staged children, then the
  parent;
- the parent is refused (a staged order is validated when it is placed: error 110 comes
  at once): its children can never work. IB answers our orders in the order they were
  placed, so the children's answers are still to come, the transmitting child's last.
  IB refuses a child whose parent it does not have (ibsim does, with error 201; assumed
  of IB, which documents nothing for it), so nothing is cancelled yet: the refusal of the
  transmitting child (the first case) cancels whatever of the bracket is still staged
  then. Only when the bracket has no transmitting child waiting for IB's answer are the
  staged children cancelled at once;
- a staged child other than the last is refused: nothing is cancelled for
  transmission. Whether the bracket is transmitted (without that child) is decided by
  the transmitting child, whose answer comes after this one; if it is refused too, the
  first case applies. That the bracket would then protect its position without that
  exit is answered below ("A protective exit refused").

"Staged" (never transmitted), as ib_async shows it: an order placed with
``transmit=False``, without a fill, that is still ``PendingSubmit`` -- IB answers
nothing (no ``orderStatus``, no permId) for an order it holds untransmitted, so ib_async
keeps the status it set at ``placeOrder`` (ib_insync issues #346 and #625: such orders
stay ``PendingSubmit``, "a limitation of the API with regards to orders that have never
been transmitted"; ibsim answers nothing either) -- or ``Inactive`` with no other status
or error before (TWS has been reported to show held, untransmitted orders as
``Inactive``, ib_insync #559; an assumption, ibsim never does). ib_async's
``cancelOrder`` closes such an order at once (``Cancelled``, set locally and emitted as
a status, without waiting for IB) and sends the cancel; whatever IB answers (ibsim:
``Cancelled`` and error 202; an error, had IB never known the order) changes nothing
more. An order IB has answered
(``PreSubmitted``, ``Submitted``, ``Filled``, ...) was transmitted and is never
cancelled here. The bracket is found by IB's ids (the child's ``parentId`` is the
parent's ``orderId``, same client), among the refs the bracket's orders can have
(:meth:`OrderBook.bracket`, :meth:`OrderBook.children`).

A protective exit refused
-------------------------
The cases above are about transmission. Whether the *position* is left without a
configured exit is decided by the refusal policy
(:meth:`~stratvector.gateway.refusals.Refusals._exit_refused`); the book keeps its state:
a bracket whose entry is abandoned (a protective child refused while nothing of the
position exists) is recorded in ``abandoned`` until its parent is done. Its orders are
cancelled at once when IB has the parent; when the parent is still staged (IB answers
a bracket's orders in order, the transmitting child last, so a staged child's refusal
comes before IB transmits the rest without it), the cancel waits for IB's first answer
about the parent: cancelling a staged order only closes it in ib_async, while IB goes
on to transmit it on the transmitting child. ``Abandoned.cancelled`` keeps the bracket
from being cancelled twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ib_async import Trade
from ib_async.order import OrderStatus

from stratvector.gateway.exits import ExitSpec
from stratvector.store import make_order_ref, parse_order_ref

log = logging.getLogger("stratvector.gateway.order_book")

EXIT_LEGS = frozenset({"stop", "trail", "tp", "exit"})  # legs of protective orders
ACK_TIMEOUT = 10.0  # seconds a cancel/modify waits for IB's confirmation before it is dropped


@dataclass
class Abandoned:
    """A bracket whose entry is abandoned (see the module docstring)."""

    reason: str  # journaled with the cancels: "protective exit <leg> refused: <IB message>"
    cancelled: bool = False  # its cancels are sent


@dataclass
class Tracked:
    """An order of ours: sent in this process or found at IB by reconciliation."""

    ref: str
    strategy: str
    symbol: str
    bar_time: datetime
    leg: str | None
    quantity: float  # signed
    trade: Trade | None = None
    sent_at: float | None = None  # perf_counter when it was written to IB (fill latency)
    filled_at: float | None = None
    closed: bool = False  # not at IB after a reconnect: finished while we were away

    @property
    def done(self) -> bool:
        """Finished: IB reports a done state, or it was gone from IB after a reconnect."""
        if self.closed:
            return True
        return self.trade is not None and self.trade.orderStatus.status in OrderStatus.DoneStates


class OrderBook:
    """Our orders, the working ones, unconfirmed cancels/modifies and pending child fixes.

    ``clock`` (monotonic seconds) times the unconfirmed cancels and modifications."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.orders: dict[str, Tracked] = {}
        self.live: set[str] = set()  # refs of orders that may still be working
        # refs with a cancel or modify IB has not confirmed: (since, expected order fields)
        self.acks: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.fix: dict[str, list[tuple[str, str, ExitSpec]]] = {}  # parent ref -> children
        self.closing: dict[str, str] = {}  # ref -> reason, during a cancel of ours only
        self.abandoned: dict[str, Abandoned] = {}  # parent ref -> entry abandoned (rare)

    # ------------------------------------------------------------------ updates

    def expect_ack(self, ref: str, expected: dict[str, Any] | None = None) -> None:
        """A cancel (``expected`` None) or a modification to ``expected`` order fields was
        sent for ``ref``: pending until IB confirms it (or :data:`ACK_TIMEOUT`)."""
        self.acks[ref] = (self.clock(), expected)

    def track(self, trade: Trade) -> Tracked | None:
        """Adopt an order IB knows (after a reconnect) under its ref; None if not ours."""
        ref = trade.order.orderRef
        parts = parse_order_ref(ref)
        if parts is None:
            return None
        t = self.orders.get(ref)
        signed = float(trade.order.totalQuantity) * (1 if trade.order.action == "BUY" else -1)
        if t is None:
            t = Tracked(ref, parts.strategy, parts.symbol, parts.bar_time, parts.leg, signed)
            self.orders[ref] = t
        t.trade = trade
        if not t.done:
            self.live.add(ref)
        return t

    def resync(self, trades: list[Trade]) -> None:
        """After a (re)connect: bind our orders to IB's current ``Trade`` objects; an order
        IB no longer lists finished while we were away (its fills are recovered)."""
        by_ref = {t.order.orderRef: t for t in trades if parse_order_ref(t.order.orderRef)}
        for ref, tracked in list(self.orders.items()):
            trade = by_ref.pop(ref, None)
            if trade is not None:
                tracked.trade, tracked.closed = trade, False
                self.live.add(ref)
            elif not tracked.done:
                tracked.closed = True
        for trade in by_ref.values():
            self.track(trade)
        self.prune()

    def prune(self, keep: int = 10_000) -> None:
        """Forget the oldest done orders beyond ``keep`` orders in all."""
        if len(self.orders) <= keep:
            return
        done = [ref for ref, t in self.orders.items() if t.done]
        for ref in done[: len(self.orders) - keep]:
            del self.orders[ref]

    # ------------------------------------------------------------------ queries

    def live_orders(self) -> list[Tracked]:
        """Orders that may still be working (done ones are dropped from the set)."""
        out = []
        for ref in list(self.live):
            t = self.orders.get(ref)
            if t is None or t.done:
                self.live.discard(ref)
            else:
                out.append(t)
        return out

    def working_quantities(self) -> dict[str, float]:
        """Signed quantities still to fill of our working orders, by symbol."""
        out: dict[str, float] = {}
        for t in self.live_orders():
            if t.trade is None:
                continue
            rem = float(t.trade.orderStatus.remaining or 0.0)
            if t.trade.orderStatus.status == OrderStatus.PendingSubmit or rem <= 0:
                rem = abs(t.quantity) - float(t.trade.orderStatus.filled or 0.0)
            out[t.symbol] = out.get(t.symbol, 0.0) + math.copysign(max(rem, 0.0), t.quantity)
        return out

    def working(self, strategy: str, before: datetime) -> set[str]:
        """The symbols in which a strategy order of ``strategy`` decided before ``before``
        is still working at IB (so they are not decided again yet)."""
        return {
            t.symbol
            for t in self.live_orders()
            if t.strategy == strategy
            and t.leg not in EXIT_LEGS
            and t.bar_time < before
            and t.trade is not None
        }

    def in_flight(self) -> int:
        """Orders sent and not yet acknowledged by IB (still PendingSubmit)."""
        return sum(
            1
            for t in self.live_orders()
            if t.trade is not None and t.trade.orderStatus.status == OrderStatus.PendingSubmit
        )

    def untransmitted(self, refused: Trade) -> tuple[str, list[Tracked]] | None:
        """IB refused ``refused``, an order of ours: the parent's ref of its bracket and
        the bracket's orders to cancel now, as still staged at IB (children first, then
        the parent; none when nothing is staged, or when the bracket's transmitting child
        is still to be answered). None when ``refused`` is in no bracket, or is a staged
        child (the transmitting child decides). See the module docstring. For the
        rejection path only: it looks up the bracket's possible refs."""
        order = refused.order
        parts = parse_order_ref(order.orderRef)
        if parts is None:
            return None
        if order.parentId:
            if not order.transmit:
                return None  # a staged child: the transmitting child decides
            parent_id = order.parentId
            parent_ref = make_order_ref(parts.strategy, parts.symbol, parts.bar_time)
        elif parts.leg is None:  # only strategy orders carry protective children
            parent_id = order.orderId
            parent_ref = order.orderRef
        else:
            return None
        client = order.clientId
        members = [
            t
            for t in self._children(parts.strategy, parts.symbol, parts.bar_time, parent_id, client)
            if t.trade is not refused
        ]
        if not order.parentId:
            if not members:
                return None  # a plain order: no bracket
            if any(_transmitting(t) for t in members):
                return parent_ref, []  # its refusal, still to come, decides
        parent = self._parent(parent_ref, parent_id, client)
        if parent is not None and parent.trade is not refused:
            members.append(parent)
        return parent_ref, [t for t in members if staged(t)]

    def bracket(self, child: Trade) -> tuple[str, Tracked | None] | None:
        """The bracket of ``child``, a protective child of ours: its parent's ref and the
        parent (None when not tracked). None when ``child`` has no parent. For the
        rejection path only."""
        order = child.order
        parts = parse_order_ref(order.orderRef)
        if parts is None or not order.parentId:
            return None
        parent_ref = make_order_ref(parts.strategy, parts.symbol, parts.bar_time)
        return parent_ref, self._parent(parent_ref, order.parentId, order.clientId)

    def children(self, parent_ref: str) -> list[Tracked]:
        """The protective children of the tracked parent ``parent_ref`` (none if it is not
        tracked). For the rejection path only."""
        parent = self.orders.get(parent_ref)
        parts = parse_order_ref(parent_ref)
        if parent is None or parent.trade is None or parts is None:
            return []
        o = parent.trade.order
        return self._children(parts.strategy, parts.symbol, parts.bar_time, o.orderId, o.clientId)

    def _children(
        self, strategy: str, symbol: str, bar_time: datetime, parent_id: int, client: int
    ) -> list[Tracked]:
        """The tracked orders under the refs of a bracket's children whose IB parent is
        ``parent_id`` of ``client``, in leg order."""
        out = []
        for leg in sorted(EXIT_LEGS):
            t = self.orders.get(make_order_ref(strategy, symbol, bar_time, leg))
            if (
                t is not None
                and t.trade is not None
                and t.trade.order.parentId == parent_id
                and t.trade.order.clientId == client
            ):
                out.append(t)
        return out

    def _parent(self, parent_ref: str, parent_id: int, client: int) -> Tracked | None:
        """The tracked order ``parent_ref`` if it is IB's order ``parent_id`` of ``client``."""
        parent = self.orders.get(parent_ref)
        if (
            parent is not None
            and parent.trade is not None
            and parent.trade.order.orderId == parent_id
            and parent.trade.order.clientId == client
        ):
            return parent
        return None

    def pending_acks(self) -> int:
        """Cancels and modifications IB has not confirmed yet (stale ones are dropped)."""
        now = self.clock()
        for ref, (at, _) in list(self.acks.items()):
            if now - at > ACK_TIMEOUT:
                log.warning(
                    "%s: no confirmation of a cancel/modify from IB in %.0f s", ref, ACK_TIMEOUT
                )
                del self.acks[ref]
        return len(self.acks)


def staged(t: Tracked) -> bool:
    """``t`` is held at IB untransmitted: placed with ``transmit=False``, no fill, and no
    answer from IB (``PendingSubmit``), or ``Inactive`` with nothing else before it (no
    error, no cancel: see the module docstring)."""
    trade = t.trade
    if trade is None or t.closed or trade.order.transmit or trade.fills:
        return False
    status = trade.orderStatus.status
    if status == OrderStatus.PendingSubmit:
        return True
    return status == OrderStatus.Inactive and all(
        e.status in _HELD and not e.errorCode for e in trade.log
    )


_HELD = frozenset({OrderStatus.PendingSubmit, OrderStatus.Inactive})


def _transmitting(t: Tracked) -> bool:
    """``t`` was placed with ``transmit=True`` and IB has not answered it yet."""
    trade = t.trade
    return (
        trade is not None
        and not t.closed
        and trade.order.transmit
        and trade.orderStatus.status == OrderStatus.PendingSubmit
    )
