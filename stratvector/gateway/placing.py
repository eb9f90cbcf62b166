"""Placing a committed batch: the orders whose intents the journal just wrote, in order.

:class:`Placer` belongs to the :class:`~stratvector.gateway.execution.Executor`, which
checks and journals a decision's orders (:meth:`Executor.stage
<stratvector.gateway.execution.Executor.stage>`) and hands the commit's records here:

- an intent the commit did not write (a replay: a restart or reconnect re-deciding the
  same bar) is never sent again; nor is one whose protective children were not all
  written, nor anything while disconnected (reconciliation resends it later);
- a strategy order first cancels the working protective exits of the position it
  changes, then goes out with its bracket children (the last child transmits them all);
- each order is booked in the :class:`~stratvector.gateway.order_book.OrderBook`, and
  the batch is journaled as submitted in one writer call once the last order is placed
  (even when a later send raised: what reached IB is on record);
- the batch's messages (cancels, orders, children, in order) leave in one socket write
  at its end (:func:`~stratvector.gateway.wire.one_write`).

The send and decision latencies are taken here, at the instant that write handed the
bytes over (:class:`~stratvector.gateway.wire.Sent`; not counting the time the trader
then waited for a CPU while the woken receiver ran): every order of a batch is sent
when its last one is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ib_async import IB, Order, Trade

from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.order_book import EXIT_LEGS, OrderBook, Tracked
from stratvector.gateway.outgoing import Child
from stratvector.gateway.runner import OrderPlan
from stratvector.gateway.wire import one_write
from stratvector.store import Journal

if TYPE_CHECKING:
    from stratvector.gateway.execution import ExecStats, Staged

log = logging.getLogger("stratvector.gateway.placing")


class Placer:
    """Places committed orders through ib_async and books them. ``account`` (set once IB
    names it) is journaled with each send."""

    def __init__(
        self,
        ib: IB,
        jq: JournalQueue,
        contracts: ContractBook,
        book: OrderBook,
        stats: ExecStats,
        *,
        client_id: int,
        on_change: Callable[[], None],
    ) -> None:
        self.ib = ib
        self.jq = jq
        self.journal = jq.journal
        self.contracts = contracts
        self.book = book
        self.stats = stats
        self.client_id = client_id
        self.on_change = on_change
        self.account = ""

    def place_written(self, staged: Staged, records: list[Any]) -> list[str]:
        """Place the orders of ``staged`` whose intents (``records``) this commit wrote."""
        self.stats.intent.add(time.perf_counter() - staged.asked)
        written: dict[str, Any] = {}
        for rec in records:
            if isinstance(rec, Exception):
                log.error("not sent: %s", rec)
            else:
                written[rec.order_ref] = rec
        sent: list[str] = []
        plans: list[OrderPlan] = []
        submitted: list[tuple[str, int]] = []  # journaled as sent once all are placed
        try:
            # the batch's messages leave in one socket write when the block ends
            with one_write(self.ib.client) as write:
                for item in staged.batch:
                    ref = item.ref
                    rec = written.get(ref)
                    if rec is None or any(i.order_ref not in written for i in item.intents):
                        continue
                    if not rec.created:
                        self.stats.replayed += 1
                        log.info("%s is already journaled (%s); not sent again", ref, rec.status)
                        continue
                    if not self.ib.isConnected():
                        log.warning(
                            "%s journaled but not sent: disconnected (reconciled later)", ref
                        )
                        continue
                    self.place_with_children(item.plan, ref, item.order, item.children, submitted)
                    plans.append(item.plan)
                    sent.append(ref)
        finally:  # what reached IB is journaled as sent even if a later send raised
            if write.at is None:  # nothing written (or an outer block writes it)
                now = time.perf_counter()
            else:  # the instant the write handed the orders over
                now = write.at
                self.stats.write_wait.add(write.waited)
            orders = self.book.orders
            for ref, _ in submitted:  # the fill latency starts at that write too
                orders[ref].sent_at = now
            self.journal_sent(submitted)
            for plan in plans:
                self.stats.send_latency.add(now - plan.received)
                if plan.complete is not None and not plan.catch_up:
                    self.stats.decision_latency.add(now - plan.complete)
        return sent

    def place_with_children(
        self,
        plan: OrderPlan,
        ref: str,
        order: Order,
        children: list[Child],
        submitted: list[tuple[str, int]] | None = None,
    ) -> None:
        """Place a strategy order and its bracket children (the last one transmits all),
        after cancelling the exits of the position it changes. With ``submitted``, the
        sends are added to it for the caller to journal (:meth:`journal_sent`) once the
        whole batch is placed, instead of one journal call each."""
        self.cancel_exits(plan.strategy, plan.symbol)
        if children:
            order.transmit = False
        placing = time.perf_counter()
        trade = self.place(ref, plan, order, submitted)
        self.stats.place.add(time.perf_counter() - placing)
        for i, (cref, leg, child, spec) in enumerate(children):
            child.parentId = trade.order.orderId
            child.transmit = i == len(children) - 1
            cplan = OrderPlan(
                plan.strategy, plan.symbol, plan.bar_time, spec.quantity, plan.ref_price, None, leg
            )
            self.place(cref, cplan, child, submitted)
            if spec.needs_fixing(leg):
                self.book.fix.setdefault(ref, []).append((cref, leg, spec))

    def cancel_exits(self, strategy: str, symbol: str) -> None:
        """Cancel the working protective orders of a position about to change."""
        book = self.book
        for t in book.live_orders():
            if (
                t.strategy == strategy
                and t.symbol == symbol
                and t.leg in EXIT_LEGS
                and t.trade is not None
                and not t.done
            ):
                self.ib.cancelOrder(t.trade.order)
                book.expect_ack(t.ref)

    def place(
        self,
        ref: str,
        plan: OrderPlan,
        order: Order,
        submitted: list[tuple[str, int]] | None = None,
    ) -> Trade:
        inst = self.contracts.get(plan.symbol)
        trade = self.ib.placeOrder(inst.contract, order)
        book = self.book
        book.orders[ref] = Tracked(
            ref,
            plan.strategy,
            plan.symbol,
            plan.bar_time,
            plan.leg,
            plan.quantity,
            trade,
            sent_at=time.perf_counter(),
        )
        book.live.add(ref)
        self.stats.sent += 1
        if submitted is not None:
            submitted.append((ref, trade.order.orderId))
            return trade
        self.jq.submit(
            self.journal.orders.mark_submitted,
            ref,
            trade.order.orderId,
            None,
            client_id=self.client_id,
            account=self.account or None,
        )
        self.on_change()
        return trade

    def journal_sent(self, submitted: list[tuple[str, int]]) -> None:
        """Journal a placed batch as submitted: one writer call, one commit."""
        if not submitted:
            return
        self.jq.submit(
            _mark_submitted,
            self.journal,
            submitted,
            client_id=self.client_id,
            account=self.account or None,
        )
        self.on_change()


def _mark_submitted(
    journal: Journal, sent: list[tuple[str, int]], client_id: int, account: str | None
) -> None:
    """Journal a batch of sends (on the writer); an order the journal refuses is logged
    (the next sync recovers it from IB), the others are written."""
    results = journal.orders.mark_submitted_many(sent, client_id=client_id, account=account)
    for (ref, order_id), result in zip(sent, results, strict=True):
        if isinstance(result, Exception):
            log.error("journal: %s sent as order %s not recorded: %s", ref, order_id, result)
