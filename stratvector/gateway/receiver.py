"""Fills, commissions, order statuses and order echoes: what IB reports about our orders.

:class:`Receiver` listens to ib_async's ``execDetailsEvent``, ``commissionReportEvent``,
``orderStatusEvent`` and ``openOrderEvent`` (:meth:`Receiver.bind`) and keeps the
journal, the strategies' ledgers and the :class:`~stratvector.gateway.order_book.OrderBook`
in step with them:

- every execution (live ``execDetails`` or recovered by ``reqExecutions``) goes through
  :meth:`Receiver.ingest_fill`: journaled idempotently by ``execId`` and booked into its
  strategy's ledger once. IB sends the commission report right after the execution, so
  a fill without one waits up to :data:`FILL_WAIT` seconds and both are journaled in
  one write (:meth:`Receiver.flush_fills` writes the waiting ones at once: on stop, and
  before reconciliation compares positions with the journal); a later report updates
  the journaled fill;
- every ``orderStatus`` but ``Filled`` is journaled in order (the journal closes an
  order itself once its fills cover the quantity); a ``Cancelled``/``Inactive`` status
  with an IB error code is a rejection: counted and recorded as an
  ``order_rejected`` event. A rejection that leaves a bracket unable to ever be
  transmitted (its transmitting child, or its parent, refused: see
  :meth:`~stratvector.gateway.order_book.OrderBook.untransmitted`) also cancels the
  bracket's orders still staged at IB, journaled ``Cancelled`` with the reason, with a
  warning naming the parent's ref: the parent no longer counts as working, so its
  symbol is decided again on the next bar, as after any rejected order. ``Filled``
  measures ``placeOrder`` -> IB's ``Filled`` (``fill_latency``, the
  ``order_latency_seconds`` metric) and, for a parent with bracket children to fix,
  re-prices the children at the fill price (:meth:`Receiver.fix_children`, after the
  messages already received);
- a cancel or modification is confirmed when IB reports the order done or echoes it
  (``openOrder``) with the expected fields. A modification IB refuses is settled by the
  refusal: ib_async reports error 110 (and IB's other warnings that refuse a
  modification, :data:`MODIFY_REFUSED`) as a ``ValidationError`` status, the order
  staying as it was; any other error closes the order in ib_async (``Cancelled``, which
  IB may still work: a cancel is sent for it). Either way the confirmation is no longer
  waited for, and the refusal is counted and recorded as an ``order_rejected`` event.

A protective exit IB refuses
----------------------------
A strategy's ``[risk]`` exits are sent as the bracket children of its orders
(:mod:`~stratvector.gateway.exits`). IB transmits a bracket without a staged child it
refused, and keeps an exit whose price fix (:meth:`Receiver.fix_children`) it refused
at the old, estimated level; nothing else tells the trader that the position lacks the
exit its strategy configured. So every refusal of a protective exit -- a new child
(``Cancelled`` or ``Inactive`` with an IB error other than 202, and no cancel of ours
sent for it) or a modification of one -- is decided by :meth:`Receiver._exit_refused`,
by whether the position it protects exists:

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

All of it runs only on a refusal: the per-status path only checks that the (nearly
always empty) set of abandoned brackets is empty.

ib_async keeps every order's ``Trade`` and every ``Fill`` for the life of the
connection (~15 KB per order: some 65 MB a day at 5,000 orders). Once an order is done,
its fills are journaled with their commissions and nothing of ours still refers to it,
:meth:`Receiver.forget_settled` drops it from ib_async and from the order book, after
:data:`SETTLED_AGE` seconds (late duplicates of its messages come within seconds). A
re-sent execution of a forgotten order is still recognised by its ``execId``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ib_async import IB, Fill, Trade
from ib_async.order import OrderStatus

from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.order_book import EXIT_LEGS, Abandoned, OrderBook, Tracked, staged
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import parse_order_ref

if TYPE_CHECKING:
    from stratvector.gateway.execution import ExecStats

log = logging.getLogger("stratvector.gateway.receiver")

FILL_WAIT = 2.0  # seconds a fill waits for its commission report before it is journaled
UNSET = 1.7976931348623157e308  # IB's "no value" (sys.float_info.max)
ORDER_REJECTED = "order_rejected"
CANCELLED_CODE = 202  # IB's "Order Canceled": a cancellation, not a refusal
#: Codes ib_async reports as warnings (``ValidationError``) that refuse a modification
#: (the order stays as it was): 105 the modified order does not match, 110 a price off
#: the grid, 321 a request IB could not validate, 329 the order type cannot change, 434
#: a zero size. Other warnings (399, 404, 2100-2199, ...) do not refuse it.
MODIFY_REFUSED = frozenset({105, 110, 321, 329, 434})
_NOT_JOURNALED = frozenset({OrderStatus.ValidationError, OrderStatus.PendingSubmit, ""})
SETTLED_AGE = 300.0  # seconds after its last status a settled order is forgotten


class Receiver:
    """Books what IB reports about our orders into the journal, ledgers and order book."""

    def __init__(
        self,
        ib: IB,
        jq: JournalQueue,
        contracts: ContractBook,
        ledgers: dict[str, StrategyLedger],
        book: OrderBook,
        stats: ExecStats,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_latency: Callable[[float], None] | None = None,
        on_unprotected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ib = ib
        self.jq = jq
        self.journal = jq.journal
        self.contracts = contracts
        self.ledgers = ledgers
        self.book = book
        self.stats = stats
        self.on_change = on_change
        self.on_latency = on_latency
        # (strategy, reason): a position lost a protective exit; trips its kill switch
        self.on_unprotected = on_unprotected
        self.seen: set[str] = set()  # execIds journaled and booked (or loaded from the journal)
        self._unjournaled: dict[str, dict[str, Any]] = {}  # fills waiting for commission
        self._bound = False

    # ------------------------------------------------------------------ wiring

    def bind(self) -> None:
        """Listen to IB's execution, commission, status and open-order events (once)."""
        if self._bound:
            return
        self.ib.execDetailsEvent += self._on_exec
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_status
        self.ib.openOrderEvent += self._on_open_order
        self._bound = True

    def unbind(self) -> None:
        """Stop listening (the trader's stop)."""
        if not self._bound:
            return
        self.ib.execDetailsEvent -= self._on_exec
        self.ib.commissionReportEvent -= self._on_commission
        self.ib.orderStatusEvent -= self._on_status
        self.ib.openOrderEvent -= self._on_open_order
        self._bound = False

    # ------------------------------------------------------------------ fills

    def ingest_fill(self, fill: Fill) -> bool:
        """Journal and book one execution (live or recovered); False if already known."""
        ex = fill.execution
        exec_id = ex.execId
        if not exec_id or exec_id in self.seen:
            report = fill.commissionReport
            if exec_id and report is not None and report.execId == exec_id:
                self._commission(exec_id, report)
            return False
        self.seen.add(exec_id)
        ref = ex.orderRef or None
        parts = parse_order_ref(ref)
        symbol = self.contracts.symbol_for(fill.contract) or fill.contract.symbol
        side = "BUY" if ex.side in ("BOT", "BUY") else "SELL"
        qty = float(ex.shares)
        price = float(ex.price)
        when = ex.time
        report = fill.commissionReport
        commission = None
        if report is not None and report.execId == exec_id and report.commission < UNSET:
            commission = float(report.commission)
        record = {
            "args": (exec_id, ref, when, qty, price, side),
            "symbol": symbol,
            "strategy": parts.strategy if parts else None,
            "commission": commission,
            "commission_currency": (report.currency or None) if commission is not None else None,
            "realized_pnl": _finite(report.realizedPNL) if commission is not None else None,
            "ib_order_id": ex.orderId or None,
            "perm_id": ex.permId or None,
            "exchange": ex.exchange or None,
            "account": ex.acctNumber or None,
        }
        if commission is None:
            # IB sends the commission report right after: journal both in one write
            self._unjournaled[exec_id] = record
            asyncio.get_running_loop().call_later(FILL_WAIT, self._journal_fill, exec_id)
        else:
            self._write_fill(record)
        if parts is not None:
            ledger = self.ledgers.get(parts.strategy)
            if ledger is not None:
                signed = qty if side == "BUY" else -qty
                ledger.add_fill(
                    exec_id,
                    symbol,
                    signed,
                    price,
                    commission,
                    _ns(when),
                    exit_leg=parts.leg in EXIT_LEGS,
                )
        if self.book.abandoned and ref in self.book.abandoned:
            self._abandoned_filled(ref)
        self.stats.fills += 1
        self.on_change()
        return True

    def flush_fills(self) -> None:
        """Journal the fills still waiting for their commission report."""
        for exec_id in list(self._unjournaled):
            self._journal_fill(exec_id)

    def _on_exec(self, trade: Trade, fill: Fill) -> None:
        self.ingest_fill(fill)

    def _on_commission(self, trade: Trade, fill: Fill, report: Any) -> None:
        self._commission(fill.execution.execId, report)

    def forget_settled(self, before: datetime) -> int:
        """Drop the orders settled before ``before`` (UTC) from ib_async's books and ours:
        done at IB, every fill journaled with its commission, no fix or confirmation of
        ours pending. Returns how many were dropped."""
        w = self.ib.wrapper
        dropped = []
        for key, trade in w.trades.items():
            if trade.orderStatus.status not in OrderStatus.DoneStates or not trade.log:
                continue
            if trade.log[-1].time >= before:
                continue
            ref = trade.order.orderRef
            if ref in self.book.fix or ref in self.book.acks:
                continue
            if any(
                not f.commissionReport.execId or f.execution.execId in self._unjournaled
                for f in trade.fills
            ):
                continue
            dropped.append((key, trade))
        for key, trade in dropped:
            del w.trades[key]
            if w.permId2Trade.get(trade.order.permId) is trade:
                del w.permId2Trade[trade.order.permId]
            for f in trade.fills:
                w.fills.pop(f.execution.execId, None)
            ref = trade.order.orderRef
            tracked = self.book.orders.get(ref)
            if tracked is not None and tracked.trade is trade:
                del self.book.orders[ref]
                self.book.live.discard(ref)
        return len(dropped)

    def _write_fill(self, record: dict[str, Any]) -> None:
        kwargs = {k: v for k, v in record.items() if k != "args"}
        self.jq.submit(self.journal.fills.record_fill, *record["args"], **kwargs)

    def _journal_fill(self, exec_id: str) -> None:
        record = self._unjournaled.pop(exec_id, None)
        if record is not None:
            self._write_fill(record)

    def _commission(self, exec_id: str, report: Any) -> None:
        """A commission report: into the ledger, and into the journal with its fill if the
        fill still waits for it, else as an update of the journaled fill."""
        if report.commission >= UNSET:
            return
        parts = parse_order_ref(self._ref_of(exec_id))
        if parts is not None and parts.strategy in self.ledgers:
            self.ledgers[parts.strategy].set_commission(exec_id, float(report.commission))
        record = self._unjournaled.pop(exec_id, None)
        if record is not None:
            record["commission"] = float(report.commission)
            record["commission_currency"] = report.currency or None
            record["realized_pnl"] = _finite(report.realizedPNL)
            self._write_fill(record)
            self.on_change()
            return
        self.jq.submit(
            self.journal.fills.record_commission,
            exec_id,
            float(report.commission),
            report.currency or None,
            _finite(report.realizedPNL),
        )
        self.on_change()

    def _ref_of(self, exec_id: str) -> str | None:
        f = self.ib.wrapper.fills.get(exec_id)
        return f.execution.orderRef if f is not None else None

    # ------------------------------------------------------------------ orders

    def _on_status(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if parse_order_ref(ref) is None:
            return
        st = trade.orderStatus
        if st.status in _NOT_JOURNALED:
            if st.status == OrderStatus.ValidationError and ref in self.book.acks:
                self._modification_warned(trade)
            return
        book = self.book
        t = book.orders.get(ref)
        if t is None:
            t = book.track(trade)
        message = None
        code = 0
        if trade.log:
            last = trade.log[-1]
            message, code = (last.message or None), last.errorCode
        modifying = False  # a modification of ours was waiting for IB's confirmation
        if ref in book.acks and st.status in OrderStatus.DoneStates:
            modifying = book.acks.pop(ref)[1] is not None
        if book.closing and ref in book.closing:  # our own cancel of a staged order
            message = book.closing[ref]
        if st.status == OrderStatus.Filled and ref in book.fix:
            # after the messages already received (a child may have filled in the same bar)
            book.expect_ack(ref + "#fix")
            asyncio.get_running_loop().call_soon(self.fix_children, ref, float(st.avgFillPrice))
        if st.status == OrderStatus.Filled and t is not None and t.filled_at is None:
            t.filled_at = time.perf_counter()
            if t.sent_at is not None:
                latency = t.filled_at - t.sent_at
                self.stats.fill_latency.add(latency)
                if self.on_latency is not None:
                    self.on_latency(latency)
        if st.status == OrderStatus.Filled:
            # the journal closes the order itself when its fills cover the quantity
            self.on_change()
            return
        self.jq.submit(
            self.journal.orders.record_status,
            ref,
            st.status,
            float(st.filled or 0.0),
            float(st.remaining) if st.remaining is not None else None,
            float(st.avgFillPrice) if st.avgFillPrice else None,
            last_fill_price=float(st.lastFillPrice) if st.lastFillPrice else None,
            ib_order_id=trade.order.orderId or None,
            perm_id=trade.order.permId or st.permId or None,
            message=message,
        )
        if code and st.status in (OrderStatus.Cancelled, OrderStatus.Inactive):
            self._record_rejection(trade, code, message, modifying)
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
        if book.abandoned and ref in book.abandoned:
            self._abandoned_status(ref, t)
        self.on_change()

    def _record_rejection(
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

    def _modification_warned(self, trade: Trade) -> None:
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
        self._record_rejection(trade, last.errorCode, last.message, modification=True)
        parts = parse_order_ref(ref)
        if parts is not None and parts.leg in EXIT_LEGS:
            self._exit_refused(trade, why, True)
        self.on_change()

    # ------------------------------------------------------------------ refused exits

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

    def _abandoned_status(self, parent_ref: str, t: Tracked | None) -> None:
        """A status of an abandoned bracket's parent: IB has it now (cancel the bracket),
        or it is done without a fill (forget it). A fill trips the kill switch when it is
        booked (:meth:`_abandoned_filled`)."""
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

    def _abandoned_filled(self, parent_ref: str) -> None:
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
        is cancelled, emitting ``Cancelled``, which :meth:`_on_status` journals with the
        reason."""
        book = self.book
        found = book.untransmitted(refused)
        if found is None:
            return
        parent_ref, staged = found
        ref = refused.order.orderRef
        if ref == parent_ref or any(t.ref == parent_ref for t in staged):
            book.fix.pop(parent_ref, None)  # the parent will never fill
        if not staged:
            return
        reason = f"bracket {parent_ref} never transmitted: {ref} refused by IB ({why})"
        log.warning(
            "%s: bracket never transmitted, %s refused by IB (%s); cancelling %s",
            parent_ref,
            ref,
            why,
            ", ".join(t.ref for t in staged),
        )
        for t in staged:
            assert t.trade is not None
            book.closing[t.ref] = reason
            try:
                self.ib.cancelOrder(t.trade.order)
            finally:
                del book.closing[t.ref]

    def _on_open_order(self, trade: Trade) -> None:
        """IB echoes an order: a modification is confirmed when the echo carries it."""
        ref = trade.order.orderRef
        acks = self.book.acks
        pending = acks.get(ref)
        if pending is None or pending[1] is None:
            return
        o = trade.order
        if all(getattr(o, k) == v for k, v in pending[1].items()):
            del acks[ref]
            self.on_change()

    def fix_children(self, parent_ref: str, fill_price: float) -> None:
        """The parent filled: move its children to their exact (fill-relative) prices."""
        book = self.book
        book.acks.pop(parent_ref + "#fix", None)
        self.on_change()
        for cref, leg, spec in book.fix.pop(parent_ref, []):
            t = book.orders.get(cref)
            if t is None or t.trade is None or t.done or t.trade.orderStatus.filled:
                continue
            order = spec.fixed(leg, t.trade.order, fill_price, self.contracts.get(t.symbol))
            # the child was placed staged (transmit=False) unless it was the bracket's
            # last: a modification sent that way would be held by TWS, never reaching IB
            order.transmit = True
            expected = {
                "orderType": order.orderType,
                "auxPrice": order.auxPrice,
                "lmtPrice": order.lmtPrice,
            }
            self.ib.placeOrder(t.trade.contract, order)
            book.expect_ack(cref, expected)
            price = order.auxPrice if leg == "stop" else order.lmtPrice
            log.info(
                "%s fixed at %s %.6f after the entry filled at %.6f",
                cref,
                order.orderType,
                price,
                fill_price,
            )


def _cancel_asked(trade: Trade) -> bool:
    """A cancel of ``trade`` was sent (ib_async logs ``PendingCancel`` when it sends one
    for an order IB has): an error now answers the cancel, it does not refuse the order."""
    return any(e.status == OrderStatus.PendingCancel for e in trade.log)


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) and abs(v) < 1e300 else None


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000) * 1000
