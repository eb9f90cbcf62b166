"""What the order journal returns: :class:`OrderRecord`, :class:`StatusRecord`.

Records are detached, read-only values. Each is built by one function here from the form
the repository holds at that moment:

- :func:`order_record` from an ORM ``OrderIntent`` with its ``order`` loaded (reads);
- :func:`fresh_record` from the row of an intent just inserted (no read back);
- :func:`state_record` from the :class:`~stratvector.store._status.OrderState` a Core
  write has just saved;
- :func:`status_record` from an ``OrderStatusEntry``.

An intent with no ``orders`` row yet (neither submitted nor reported by IB) has status
:data:`~stratvector.store._status.INTENT` in its record, no ids, nothing filled and the
whole quantity remaining.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratvector.store._status import INTENT, ORDER_COLUMNS, TERMINAL_STATUSES, OrderState
from stratvector.store.intents import INTENT_FIELDS
from stratvector.store.models import OrderIntent, OrderStatusEntry

__all__ = [
    "OrderRecord",
    "StatusRecord",
    "fresh_record",
    "order_record",
    "state_record",
    "status_record",
]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An intent with what IB reported about it (a detached, read-only view).

    ``created`` is True only on the value returned by the
    :meth:`~stratvector.store.orders.Orders.record_intent` call that wrote the intent;
    False for replays and for reads.
    """

    order_ref: str
    strategy: str
    symbol: str
    bar_time: datetime
    side: str
    quantity: float
    order_type: str
    limit_price: float | None
    stop_price: float | None
    time_in_force: str
    account: str | None
    target: float | None
    detail: dict[str, Any] | None
    created_at: datetime
    status: str
    ib_order_id: int | None
    perm_id: int | None
    client_id: int | None
    submitted_at: datetime | None
    filled: float
    remaining: float | None
    avg_fill_price: float | None
    last_fill_price: float | None
    updated_at: datetime
    created: bool = False

    @property
    def terminal(self) -> bool:
        """True when IB will not fill this order any further."""
        return self.status in TERMINAL_STATUSES

    @property
    def submitted(self) -> bool:
        """True once IB acknowledged the order (an order id or a status was recorded)."""
        return self.status != INTENT

    @property
    def signed_quantity(self) -> float:
        """The quantity, positive for a BUY and negative for a SELL."""
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One entry of an order's status history."""

    status: str
    filled: float
    remaining: float | None
    avg_fill_price: float | None
    at: datetime
    recorded_at: datetime
    source: str
    message: str | None


_ORDER_FIELDS = tuple(name for name in ORDER_COLUMNS if name != "account")
"""The ``orders`` columns of a record: all but the keys and ``account`` (a record's
``account`` is the intent's)."""


def order_record(intent: OrderIntent, created: bool = False) -> OrderRecord:
    """The record of ``intent`` and its order (``intent.order`` must be loaded)."""
    order = intent.order
    return OrderRecord(
        **{name: getattr(intent, name) for name in INTENT_FIELDS},
        **(
            {name: getattr(order, name) for name in _ORDER_FIELDS}
            if order is not None
            else _not_submitted(intent.quantity, intent.created_at)
        ),
        created=created,
    )


def fresh_record(values: dict[str, Any]) -> OrderRecord:
    """The record of an intent just inserted from ``values`` (the row's columns, as
    :func:`~stratvector.store.intents.intent_values` gives them): no read back needed.
    ``created`` is True."""
    return OrderRecord(
        **values, **_not_submitted(values["quantity"], values["created_at"]), created=True
    )


def state_record(state: OrderState) -> OrderRecord:
    """The record of an order just written by a Core write (what a fresh read returns:
    the intent's row and the order's values as saved)."""
    return OrderRecord(
        **{name: state.intent[name] for name in INTENT_FIELDS},
        **{name: state.order[name] for name in _ORDER_FIELDS},
    )


def status_record(entry: OrderStatusEntry) -> StatusRecord:
    """The record of one ``order_status_history`` row."""
    return StatusRecord(
        entry.status,
        entry.filled,
        entry.remaining,
        entry.avg_fill_price,
        entry.at,
        entry.recorded_at,
        entry.source,
        entry.message,
    )


def _not_submitted(quantity: float, created_at: datetime) -> dict[str, Any]:
    """The order part of a record for an intent without an ``orders`` row."""
    return {
        "status": INTENT,
        "ib_order_id": None,
        "perm_id": None,
        "client_id": None,
        "submitted_at": None,
        "filled": 0.0,
        "remaining": quantity,
        "avg_fill_price": None,
        "last_fill_price": None,
        "updated_at": created_at,
    }
