"""What IB's refusal of an order of ours means: the receiver's rejection path.

:class:`Refusals` belongs to the :class:`~stratvector.gateway.receiver.Receiver`, which
hands it the refusals IB reports and nothing else:

- a ``Cancelled``/``Inactive`` status with an IB error code is a rejection
  (:meth:`Refusals.rejected`): counted and recorded as an ``order_rejected`` event. A
  rejection that leaves a bracket unable to ever be transmitted (its transmitting child,
  or its parent, refused: see
  :meth:`~stratvector.gateway.order_book.OrderBook.untransmitted`) also cancels the
  bracket's orders still staged at IB, journaled ``Cancelled`` with the reason, with a
  warning naming the parent's ref: the parent no longer counts as working, so its
  symbol is decided again on the next bar, as after any rejected order;
- a modification IB refuses is settled by the refusal: ib_async reports error 110 (and
  IB's other warnings that refuse a modification, :data:`MODIFY_REFUSED`) as a
  ``ValidationError`` status, the order staying as it was
  (:meth:`Refusals.modification_warned`); any other error closes the order in ib_async
  (``Cancelled``, which IB may still work: a cancel is sent for it). Either way the
  confirmation is no longer waited for, and the refusal is counted and recorded as an
  ``order_rejected`` event.

A protective exit IB refuses
----------------------------
A strategy's ``[risk]`` exits are sent as the bracket children of its orders
(:mod:`~stratvector.gateway.exits`). IB transmits a bracket without a staged child it
refused, and keeps an exit whose price fix
(:meth:`Receiver.fix_children <stratvector.gateway.receiver.Receiver.fix_children>`) it
refused at the old, estimated level; nothing else tells the trader that the position
lacks the exit its strategy configured. So every refusal of a protective exit -- a new
child (``Cancelled`` or ``Inactive`` with an IB error other than 202, and no cancel of
ours sent for it) or a modification of one -- is decided by
:meth:`Refusals._exit_refused`, by whether the position it protects exists:

- nothing of it exists (the strategy holds nothing in the symbol and the bracket's parent
  has no fill): the entry is abandoned. The parent and the bracket's other children are
  cancelled, journaled with the reason ``protective exit <leg> refused: <IB message>``,
  with a warning; the symbol is decided again on later bars, as after any rejected
  order. A parent still staged is cancelled at IB's first answer about it (after IB
  transmitted the bracket without the refused child; see
  :mod:`~stratvector.gateway.order_book`). Should the parent fill before the cancel
  reaches IB, its fill trips the kill switch, as below;
- it exists (the parent filled or partly filled, or the order changes a position the
  strategy holds, whose previous exits were cancelled when it was sent): the position
  is unprotected. The strategy's kill switch is tripped (``on_unprotected``, wired to
  :meth:`Guard.trip <stratvector.gateway.guard.Guard.trip>` by
  :class:`~stratvector.gateway.acting.Acting`) with a reason naming the order's ref,
  the leg and IB's message. That is the risk framework's answer to a breach of a limit
  the trader cannot enforce: the strategy's open orders are cancelled, with
  ``flatten_on_kill`` its positions closed, and it stays halted until an operator
  resumes it. Re-sending the exit is not an answer: a price IB refused once is refused
  again, and what IB refuses otherwise (margin, permissions, a closed contract) needs a
  person. Leaving the position without the exit the strategy's configuration promises is
  the one outcome never allowed. A halt that was not needed costs a resume; an
  unprotected position can cost anything.

All of it runs only on a refusal: the receiver's per-status and per-fill paths only
check that the (nearly always empty) set of abandoned brackets is empty, and call in
here for an order in it (:meth:`Refusals.abandoned_status`,
:meth:`Refusals.abandoned_filled`). No I/O of its own: journal writes go through the
journal queue, cancels through ib_async.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ib_async import IB, Trade
from ib_async.order import OrderStatus

from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.order_book import EXIT_LEGS, Abandoned, OrderBook, Tracked, staged
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import parse_order_ref

if TYPE_CHECKING:
    from stratvector.gateway.execution import ExecStats

log = logging.getLogger("stratvector.gateway.refusals")

ORDER_REJECTED = "order_rejected"  # the journal event of every refusal
CANCELLED_CODE = 202  # IB's "Order Canceled": a cancellation, not a refusal
#: Codes ib_async reports as warnings (``ValidationError``) that refuse a modification
#: (the order stays as it was): 105 the modified order does not match, 110 a price off
#: the grid, 321 a request IB could not validate, 329 the order type cannot change, 434
#: a zero size. Other warnings (399, 404, 2100-2199, ...) do not refuse it.
MODIFY_REFUSED = frozenset({105, 110, 321, 329, 434})


class Refusals:
    """Decides what a refusal by IB means for the order, its bracket and the position.

    Shares the receiver's order book, ledgers, journal queue and stats; ``on_unprotected``
    ``(strategy, reason)`` is told when a position lost a protective exit (it trips the
    strategy's kill switch), ``on_change`` when a pending confirmation is settled."""

    def __init__(
        self,
        ib: IB,
        jq: JournalQueue,
        ledgers: dict[str, StrategyLedger],
        book: OrderBook,
        stats: ExecStats,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_unprotected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ib = ib
        self.jq = jq
        self.journal = jq.journal
        self.ledgers = ledgers
        self.book = book
        self.stats = stats
        self.on_change = on_change
        self.on_unprotected = on_unprotected

    # ------------------------------------------------------------------ entry points

    def rejected(
        self, trade: Trade, t: Tracked | None, code: int, message: str | None, modifying: bool
    ) -> None:
        """IB closed ``trade`` (``Cancelled``/``Inactive``) with error ``code``, after the
        receiver journaled the status; ``modifying``: a modification of ours was waiting
        for IB's confirmation (the receiver has stopped waiting for it). Records the
        rejection, cancels what of its bracket can never be transmitted, and answers a
        refused protective exit."""
        self._record(trade, code, message, modifying)
        why = message or f"error {code}"
        self._close_untransmitted(trade, why)
        if (
            t is not None
            and t.leg in EXIT_LEGS
            and code != CANCELLED_CODE
            and (modifying or not _cancel_asked(trade))  # refused, not cancelled
        ):
            if modifying:
                # ib_async closed it, but IB refused the change, not the order: cancel
                # it (the kill switch's cancel only sees the orders open in ib_async)
                self.ib.cancelOrder(trade.order)
            self._exit_refused(trade, why, modifying)

    def modification_warned(self, trade: Trade) -> None:
        """A warning about an order with a cancel or modification of ours pending
        (ib_async's ``ValidationError``): if it refuses the modification, the order stays
        as it was, and the confirmation is no longer waited for."""
        ref = trade.order.orderRef
        pending = self.book.acks.get(ref)
        last = trade.log[-1] if trade.log else None
        if (
            pending is None
            or pending[1] is None  # a cancel: IB's answer to it settles it
            or last is None
            or last.errorCode not in MODIFY_REFUSED
        ):
            return
        del self.book.acks[ref]
        why = last.message or f"error {last.errorCode}"
        log.warning("%s: IB refused a modification (%s); the order stays as it was", ref, why)
        self._record(trade, last.errorCode, last.message, modification=True)
        parts = parse_order_ref(ref)
        if parts is not None and parts.leg in EXIT_LEGS:
            self._exit_refused(trade, why, True)
        self.on_change()

    def abandoned_status(self, parent_ref: str, t: Tracked | None) -> None:
        """A status of an abandoned bracket's parent: IB has it now (cancel the bracket),
        or it is done without a fill (forget it). A fill trips the kill switch when it is
        booked (:meth:`abandoned_filled`)."""
        book = self.book
        if t is None or t.trade is None or staged(t):
            return
        st = t.trade.orderStatus
        if st.filled or t.trade.fills:
            return
        if st.status in OrderStatus.DoneStates:
            del book.abandoned[parent_ref]
        elif not book.abandoned[parent_ref].cancelled:
            self._cancel_abandoned(parent_ref)

    def abandoned_filled(self, parent_ref: str) -> None:
        """An abandoned bracket's parent filled before its cancel reached IB: the position
        exists without the refused exit."""
        ab = self.book.abandoned.pop(parent_ref)
        parts = parse_order_ref(parent_ref)
        if parts is not None:
            self._unprotected(
                parts.strategy,
                f"{parent_ref} filled after its entry was abandoned ({ab.reason}): the "
                f"position in {parts.symbol} is not protected as configured",
            )

    # ------------------------------------------------------------------ the policy

    def _record(
        self, trade: Trade, code: int, message: str | None, modification: bool = False
    ) -> None:
        """Count IB's refusal of an order of ours (or of a modification of it) and record
        it as an ``order_rejected`` event."""
        ref = trade.order.orderRef
        self.stats.rejected += 1
        parts = parse_order_ref(ref)
        detail: dict[str, Any] = {"order_ref": ref, "code": code}
        if modification:
            detail["modification"] = True
        self.jq.submit(
            self.journal.events.record_event,
            ORDER_REJECTED,
            detail,
            message=f"{ref}: {'modification refused: ' if modification else ''}{message}",
            severity="error",
            strategy=parts.strategy if parts else None,
            symbol=parts.symbol if parts else None,
        )

    def _exit_refused(self, refused: Trade, why: str, modification: bool = False) -> None:
        """IB refused the protective exit ``refused`` (a new child, or a ``modification``
        of one: the parent has filled): abandon the entry if nothing of the position
        exists, else trip the strategy's kill switch. See the module docstring."""
        book = self.book
        ref = refused.order.orderRef
        parts = parse_order_ref(ref)
        if parts is None:
            return
        leg = parts.leg
        found = book.bracket(refused)
        parent_ref, parent = found if found is not None else (None, None)
        if parent_ref is not None:
            book.fix.pop(parent_ref, None)  # its children are cancelled, not fixed
        if modification or self._holding(parts.strategy, parts.symbol, parent):
            if parent_ref is not None:
                book.abandoned.pop(parent_ref, None)
            what = "a modification of protective exit" if modification else "protective exit"
            self._unprotected(
                parts.strategy,
                f"{ref}: {what} {leg} refused by IB ({why}) while the position in "
                f"{parts.symbol} is open: it is not protected as configured",
            )
            return
        if parent is None or parent_ref is None or parent.done or parent_ref in book.abandoned:
            return  # nothing to abandon, or done already (see _close_untransmitted)
        reason = f"protective exit {leg} refused: {why}"
        book.abandoned[parent_ref] = Abandoned(reason)
        held = staged(parent)
        log.warning(
            "%s: protective exit %s refused by IB (%s); entry abandoned, its bracket cancelled%s",
            parent_ref,
            leg,
            why,
            " once IB transmits it" if held else "",
        )
        if not held:
            self._cancel_abandoned(parent_ref)

    def _holding(self, strategy: str, symbol: str, parent: Tracked | None) -> bool:
        """The position a bracket's exits protect exists: its parent has a fill, or the
        strategy holds ``symbol`` (the parent changes a position)."""
        if (
            parent is not None
            and parent.trade is not None
            and (parent.trade.fills or parent.trade.orderStatus.filled)
        ):
            return True
        ledger = self.ledgers.get(strategy)
        return ledger is not None and symbol in ledger.index and ledger.position(symbol) != 0.0

    def _cancel_abandoned(self, parent_ref: str) -> None:
        """Cancel an abandoned bracket's working orders, children first, journaled with
        the reason; the cancels IB confirms are waited for."""
        book = self.book
        ab = book.abandoned.get(parent_ref)
        parent = book.orders.get(parent_ref)
        if ab is None or ab.cancelled or parent is None:
            return
        ab.cancelled = True  # before the cancels: ib_async reports them synchronously
        for t in [*book.children(parent_ref), parent]:
            if t.trade is None or t.done:
                continue
            book.closing[t.ref] = ab.reason
            try:
                self.ib.cancelOrder(t.trade.order)
            finally:
                del book.closing[t.ref]
            if not t.done:
                book.expect_ack(t.ref)

    def _unprotected(self, strategy: str, reason: str) -> None:
        """A position of ``strategy`` lacks a configured protective exit: trip its kill
        switch (``on_unprotected``)."""
        if self.on_unprotected is None:
            log.error("%s; no kill switch is wired to halt %s", reason, strategy)
            return
        log.error("%s; halting %s", reason, strategy)
        self.on_unprotected(strategy, reason)

    def _close_untransmitted(self, refused: Trade, why: str) -> None:
        """IB refused ``refused``: cancel what of its bracket can now never be transmitted
        (:meth:`OrderBook.untransmitted`). ib_async closes a staged order at once when it
        is cancelled, emitting ``Cancelled``, which the receiver journals with the
        reason."""
        book = self.book
        found = book.untransmitted(refused)
        if found is None:
            return
        parent_ref, pending = found
        ref = refused.order.orderRef
        if ref == parent_ref or any(t.ref == parent_ref for t in pending):
            book.fix.pop(parent_ref, None)  # the parent will never fill
        if not pending:
            return
        reason = f"bracket {parent_ref} never transmitted: {ref} refused by IB ({why})"
        log.warning(
            "%s: bracket never transmitted, %s refused by IB (%s); cancelling %s",
            parent_ref,
            ref,
            why,
            ", ".join(t.ref for t in pending),
        )
        for t in pending:
            assert t.trade is not None
            book.closing[t.ref] = reason
            try:
                self.ib.cancelOrder(t.trade.order)
            finally:
                del book.closing[t.ref]


def _cancel_asked(trade: Trade) -> bool:
    """A cancel of ``trade`` was sent (ib_async logs ``PendingCancel`` when it sends one
    for an order IB has): an error now answers the cancel, it does not refuse the order."""
    return any(e.status == OrderStatus.PendingCancel for e in trade.log)
