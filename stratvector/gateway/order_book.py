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
  known, by parent ref.

Working quantities (what the pre-trade risk check adds to IB's positions) count what an
order still has to fill: IB's ``remaining`` once IB reports it, the order's own
quantity less its fills before that (``PendingSubmit``, or IB reports nothing left).
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
from stratvector.store import parse_order_ref

log = logging.getLogger("stratvector.gateway.order_book")

EXIT_LEGS = frozenset({"stop", "trail", "tp", "exit"})  # legs of protective orders
ACK_TIMEOUT = 10.0  # seconds a cancel/modify waits for IB's confirmation before it is dropped


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
    sent_at: float | None = None  # perf_counter when placeOrder returned (fill latency)
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
