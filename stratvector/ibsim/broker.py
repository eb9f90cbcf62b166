"""The broker: turns client order requests and revealed bars into order-book events, books
fills in the account with the configured commission model, and publishes everything
through the hub in the order TWS sends it.

Commission of each execution is
:func:`stratvector.backtest.costs.commission` of the configured model (IBKR fixed by
default), with the account's month-to-date share volume for tiered pricing: the same
function the backtest charges with.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stratvector.backtest.costs import CostModel, commission
from stratvector.ibsim import messages
from stratvector.ibsim.account import Account, ExecutionRecord, PositionView
from stratvector.ibsim.faults import FaultState
from stratvector.ibsim.hub import Hub
from stratvector.ibsim.market import BarStore, Instrument, SimClock
from stratvector.ibsim.orders import Event, Filled, OrderBook, OrderError, SimOrder
from stratvector.ibsim.requests import OrderRequest

NO_SECURITY = "No security definition has been found for the request"


@dataclass(frozen=True)
class WhatIf:
    """A what-if answer: the order as it would stand and its order-state block."""

    order: SimOrder
    state: messages.Msg


class Broker:
    """Order entry and execution for all clients of one account."""

    def __init__(
        self,
        store: BarStore,
        clock: SimClock,
        book: OrderBook,
        account: Account,
        commission_model: CostModel,
        faults: FaultState,
        hub: Hub,
        exec_exchange: str = "NASDAQ",
    ) -> None:
        self.store = store
        self.clock = clock
        self.book = book
        self.account = account
        self.commission_model = commission_model
        self.faults = faults
        self.hub = hub
        self.exec_exchange = exec_exchange

    # --- order entry ---------------------------------------------------------------------

    def place(self, client_id: int, req: OrderRequest) -> None:
        """placeOrder: new order, modification, or rejection; publishes the result."""
        inst = self.store.lookup(req.contract)
        if inst is None:
            self._publish([OrderError(client_id, req.order_id, 200, NO_SECURITY)])
            return
        if req.account and req.account != self.account.account_id:
            order = SimOrder(client_id, self.book.new_perm_id(), req, inst, req.account)
            self._publish(self.book.reject(order, f"account {req.account} is not managed here"))
            return
        existing = self.book.get(client_id, req.order_id)
        if existing is None:
            reason = self.faults.take_rejection()
            if reason is not None:
                order = SimOrder(
                    client_id, self.book.new_perm_id(), req, inst, self.account.account_id
                )
                self._publish(self.book.reject(order, reason))
                return
        events = self.book.place(
            client_id,
            req,
            inst,
            self.account.account_id,
            self.clock.pos,
            self._last_close(inst),
        )
        self._publish(events)

    def what_if(self, client_id: int, req: OrderRequest) -> WhatIf | OrderError:
        """A what-if answer with the commission the order would pay at the last close."""
        inst = self.store.lookup(req.contract)
        if inst is None:
            return OrderError(client_id, req.order_id, 200, NO_SECURITY)
        price = self._last_close(inst) or 0.0
        order = SimOrder(client_id, 0, req, inst, self.account.account_id, status="PreSubmitted")
        qty = req.total_quantity
        when = self.clock.now()
        comm = commission(
            self.commission_model, qty, price, self.account.month_volume(when), req.action == "SELL"
        )
        net_liq = float(dict((k, v) for k, v, _ in self.account.values())["NetLiquidation"])
        margin = 0.25 * qty * price
        return WhatIf(order, messages.what_if_state("PreSubmitted", comm, margin, net_liq))

    def cancel(self, client_id: int, order_id: int) -> None:
        self._publish(self.book.cancel(client_id, order_id))

    def global_cancel(self) -> None:
        self._publish(self.book.cancel_all())

    # --- execution -----------------------------------------------------------------------

    def on_open(self, inst: Instrument, i: int, k: int) -> list[PositionView]:
        """Match orders against the open of ``inst``'s bar ``i`` only (see
        :meth:`~stratvector.ibsim.orders.OrderBook.on_open`); the position views that
        changed."""
        if self._publish(self.book.on_open(inst, i, k)):
            return [self.account.position(inst)]
        return []

    def on_bar(self, inst: Instrument, i: int, k: int) -> list[PositionView]:
        """Match orders against ``inst``'s bar ``i``; mark the position at its close.

        Returns the position views that changed (filled or re-marked) for account pushes.
        """
        filled = self._publish(self.book.on_bar(inst, i, k))
        self.account.mark(inst, float(inst.close[i]))
        if filled or self.account.position(inst).qty != 0:
            return [self.account.position(inst)]
        return []

    def _publish(self, events: list[Event]) -> bool:
        touched: dict[int, Instrument] = {}
        for ev in events:
            record = None
            if isinstance(ev, Filled):
                record = self._book_fill(ev)
                touched[ev.order.inst.con_id] = ev.order.inst
            client_id = ev.client_id if isinstance(ev, OrderError) else ev.order.client_id
            self.hub.order_event(client_id, ev, record)
        if touched:
            self.hub.positions_changed([self.account.position(i) for i in touched.values()])
        return bool(touched)

    def _book_fill(self, ev: Filled) -> ExecutionRecord:
        o = ev.order
        when: pd.Timestamp = o.inst.time(ev.bar_index)
        is_sell = o.side < 0
        comm = commission(
            self.commission_model, ev.qty, ev.price, self.account.month_volume(when), is_sell
        )
        realized = self.account.apply_fill(o.inst, o.side, ev.qty, ev.price, comm, when)
        record = ExecutionRecord(
            exec_id=self.account.next_exec_id(o.perm_id),
            order_id=o.order_id,
            client_id=o.client_id,
            perm_id=o.perm_id,
            inst=o.inst,
            time=when,
            account=o.account,
            exchange=self.exec_exchange,
            side="SLD" if is_sell else "BOT",
            shares=ev.qty,
            price=ev.price,
            cum_qty=o.filled,
            avg_price=o.avg_fill_price,
            order_ref=o.req.order_ref,
            commission=comm,
            realized_pnl=realized,
            currency=self.account.currency,
        )
        self.account.record(record)
        return record

    def _last_close(self, inst: Instrument) -> float | None:
        n = self.clock.closed_count(inst)
        return float(inst.close[n - 1]) if n else None
