"""An order's current state and status history, written with SQL Core: the hot path.

``Orders.mark_submitted``, ``Orders.record_status`` and ``Fills.record_fill`` run on the
gateway's journal thread for every IB event. Through the ORM's unit of work each cost
2-4 ms of CPU, holding the GIL the event loop needs for order decisions. Here a write is
a few cached Core statements over the mapped tables:

1. on PostgreSQL, lock the intent's row (``SELECT ... FOR UPDATE``). Every writer of an
   order's state locks its intent first, so writers in several processes take turns;
   on SQLite, the writer's ``BEGIN IMMEDIATE`` already holds the database's write lock.
2. read the intent, its order and the newest history entry in ONE select (plus what the
   caller needs besides), after the lock, so it sees the latest committed state.
3. decide in Python (:func:`set_ids`, :func:`apply_status`: no I/O), then :func:`save`
   with at most one INSERT or UPDATE of the order and one INSERT into the history.

The rules are the journal's (see :mod:`stratvector.store.orders`): a report identical to
the newest history entry is not appended again; once terminal, a late non-terminal
report is kept in the history but does not change the current status; ``filled`` never
decreases; an order id, client id or perm id never changes once known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Label,
    RowMapping,
    Select,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update

from stratvector.store._sql import needs_row_locks
from stratvector.store._types import utc_now
from stratvector.store.errors import OrderIdConflictError
from stratvector.store.models import Fill, Order, OrderIntent, OrderStatusEntry

INTENT = "Intent"
"""Journal-only status: the intent is written; IB has not acknowledged an order yet."""
ABANDONED = "Abandoned"
"""Journal-only terminal status: the intent never reached IB and never will."""
PENDING_SUBMIT = "PendingSubmit"
FILLED = "Filled"
TERMINAL_STATUSES = frozenset({FILLED, "Cancelled", "ApiCancelled", ABANDONED})
"""Statuses after which IB will not fill the order any further (as ib_async's DoneStates,
plus :data:`ABANDONED`). ``Inactive`` is not terminal: IB uses it for orders that may still
become active, so such intents stay pending until reconciled."""

_intents: Table = OrderIntent.__table__  # type: ignore[assignment]
_orders: Table = Order.__table__  # type: ignore[assignment]
_history: Table = OrderStatusEntry.__table__  # type: ignore[assignment]
_fills: Table = Fill.__table__  # type: ignore[assignment]

ORDER_COLUMNS = (
    "ib_order_id",
    "perm_id",
    "client_id",
    "account",
    "submitted_at",
    "status",
    "filled",
    "remaining",
    "avg_fill_price",
    "last_fill_price",
    "updated_at",
)
"""The ``orders`` columns a write may change (all but the keys)."""
_REPEAT_KEY = ("status", "filled", "remaining", "avg_fill_price")
"""A report equal to the newest history entry on these is a repeat (not appended)."""


# ---------------------------------------------------------------------- statements
# Built once: SQLAlchemy compiles each statement once per engine and reuses it.


def _state_select(*extra: Label[Any]) -> Select[Any]:
    """Intent, order (``o_*``) and newest history entry (``h_*``) for ``:ref``, plus
    ``extra`` columns; the order and entry columns are NULL when there is none."""
    newest_id = (
        select(func.max(_history.c.id))
        .where(_history.c.order_id == _orders.c.id)
        .correlate(_orders)
        .scalar_subquery()
    )
    newest = _history.alias("newest_entry")
    return (
        select(
            *_intents.c,
            _orders.c.id.label("o_id"),
            *(_orders.c[name].label(f"o_{name}") for name in ORDER_COLUMNS),
            *(newest.c[name].label(f"h_{name}") for name in _REPEAT_KEY),
            *extra,
        )
        .select_from(
            _intents.outerjoin(_orders, _orders.c.intent_id == _intents.c.id).outerjoin(
                newest, newest.c.id == newest_id
            )
        )
        .where(_intents.c.order_ref == bindparam("ref"))
    )


def _perm_owner() -> Label[Any]:
    """The ref of ANOTHER intent whose order has perm id ``:perm_id`` (NULL if none)."""
    other_order, other_intent = _orders.alias("other_order"), _intents.alias("other_intent")
    return (
        select(other_intent.c.order_ref)
        .select_from(other_order.join(other_intent, other_intent.c.id == other_order.c.intent_id))
        .where(
            other_order.c.perm_id == bindparam("perm_id", type_=BigInteger),
            other_order.c.intent_id != _intents.c.id,
        )
        .correlate(_intents)
        .limit(1)
        .scalar_subquery()
        .label("perm_owner")
    )


def _fill_sum(expr: Any, name: str) -> Label[Any]:
    """``sum(expr)`` over the intent's fills (NULL when it has none)."""
    return (
        select(func.sum(expr))
        .where(_fills.c.intent_id == _intents.c.id)
        .correlate(_intents)
        .scalar_subquery()
        .label(name)
    )


ORDER_STATE = _state_select(_perm_owner())
"""State for a submission or a status report (params ``ref``, ``perm_id``)."""
FILL_STATE = _state_select(
    _fill_sum(_fills.c.quantity, "fill_total"),
    _fill_sum(_fills.c.quantity * _fills.c.price, "fill_notional"),
)
"""State plus the sum of the intent's fills and of their notional (param ``ref``)."""

_LOCK_INTENT = (
    select(_intents.c.id).where(_intents.c.order_ref == bindparam("ref")).with_for_update()
)
_INSERT_ORDER = sql_insert(_orders).returning(_orders.c.id)
_UPDATE_ORDER = sql_update(_orders).where(_orders.c.id == bindparam("order_pk"))
_INSERT_ENTRY = sql_insert(_history)


# ---------------------------------------------------------------------- state


@dataclass(slots=True)
class OrderState:
    """An intent and its order as read for a write; :attr:`order` is changed in place
    by the helpers below and written by :func:`save`."""

    intent: dict[str, Any]
    """The ``order_intents`` row (read-only: intents are immutable)."""
    order_id: int | None
    """``orders.id``; ``None`` while the order has no row (IB acknowledged nothing)."""
    order: dict[str, Any]
    """The order's :data:`ORDER_COLUMNS`, as they will be written."""
    newest: tuple[Any, ...] | None
    """The newest history entry's (status, filled, remaining, avg_fill_price)."""
    row: RowMapping
    """The selected row, for the statement's extra columns (``perm_owner``, ...)."""
    loaded: dict[str, Any] = field(default_factory=dict)
    """:attr:`order` as read, to update only what changed."""

    def start_order(self, status: str, remaining: float | None) -> None:
        """Begin an order row for an intent that has none (the models' defaults)."""
        self.order = {name: None for name in ORDER_COLUMNS}
        self.order.update(status=status, filled=0.0, remaining=remaining, updated_at=utc_now())


def load_for_update(
    conn: Connection, stmt: Select[Any], order_ref: str, **params: Any
) -> OrderState | None:
    """Lock the intent ``order_ref`` (PostgreSQL) and read its state with ``stmt``;
    ``None`` if no such intent is journaled.

    Two statements on purpose: a joined ``SELECT ... FOR UPDATE OF order_intents`` that
    waited for another writer would return that writer's locked row fresh but the
    joined order and history rows as they were before it committed (READ COMMITTED).
    """
    if needs_row_locks(conn) and conn.execute(_LOCK_INTENT, {"ref": order_ref}).first() is None:
        return None
    return read_state(conn, stmt, order_ref, **params)


def read_state(
    conn: Connection, stmt: Select[Any], order_ref: str, **params: Any
) -> OrderState | None:
    """The state of intent ``order_ref`` by ``stmt`` (one of :data:`ORDER_STATE`,
    :data:`FILL_STATE`), without locking: the caller holds the intent's lock."""
    row = conn.execute(stmt, {"ref": order_ref, **params}).first()
    if row is None:
        return None
    m = row._mapping
    intent = {c.name: m[c.name] for c in _intents.c}
    order = {name: m[f"o_{name}"] for name in ORDER_COLUMNS}
    has_entry = m["h_status"] is not None  # status is NOT NULL: NULL means no entry
    return OrderState(
        intent=intent,
        order_id=m["o_id"],
        order=order,
        newest=tuple(m[f"h_{n}"] for n in _REPEAT_KEY) if has_entry else None,
        row=m,
        loaded=dict(order),
    )


# ---------------------------------------------------------------------- rules


def set_ids(
    order: dict[str, Any],
    order_ref: str,
    ib_order_id: int | None,
    perm_id: int | None,
    client_id: int | None,
    perm_owner: str | None,
) -> None:
    """Record IB's ids on ``order``; raise :class:`OrderIdConflictError` if one differs
    from the one known (the intent may have been sent twice) or if ``perm_owner``, the
    intent already holding ``perm_id``, is another one."""
    for name, value in (("ib_order_id", ib_order_id), ("client_id", client_id)):
        current = order[name]
        if value is None:
            continue
        if current is not None and current != value:
            raise OrderIdConflictError(
                f"order ref {order_ref!r} was submitted with {name} {current} and is now "
                f"reported with {name} {value}: the intent may have been sent twice; "
                "stop and reconcile with IB"
            )
        order[name] = int(value)
    # perm_id 0 means "not assigned yet" in IB's API.
    if perm_id:
        if order["perm_id"] not in (None, perm_id):
            raise OrderIdConflictError(
                f"order ref {order_ref!r} has perm id {order['perm_id']} and is now reported "
                f"with perm id {perm_id}: the intent may have been sent twice; "
                "stop and reconcile with IB"
            )
        if perm_owner is not None:
            raise OrderIdConflictError(
                f"perm id {perm_id} reported for order ref {order_ref!r} already belongs to "
                f"order ref {perm_owner!r}; stop and reconcile with IB"
            )
        order["perm_id"] = int(perm_id)


def history_entry(
    status: str,
    filled: float,
    remaining: float | None,
    avg_fill_price: float | None,
    at: datetime,
    source: str,
    message: str | None = None,
) -> dict[str, Any]:
    """A row for ``order_status_history`` (``order_id`` is added by :func:`save`)."""
    return {
        "status": status,
        "filled": filled,
        "remaining": remaining,
        "avg_fill_price": avg_fill_price,
        "at": at,
        "recorded_at": utc_now(),
        "source": source,
        "message": message,
    }


def apply_status(
    state: OrderState,
    status: str,
    filled: float,
    remaining: float | None,
    avg_fill_price: float | None,
    at: datetime,
    source: str,
    message: str | None,
    last_fill_price: float | None = None,
) -> dict[str, Any] | None:
    """Advance ``state.order`` by one report; return the history entry to append, or
    ``None`` for a repeat of the newest entry."""
    repeat = state.newest == (status, filled, remaining, avg_fill_price)
    entry = (
        None
        if repeat
        else history_entry(status, filled, remaining, avg_fill_price, at, source, message)
    )
    order = state.order
    if order["status"] in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
        return entry  # a late report; history has it, the current state stays final
    order["status"] = status
    if filled >= (order["filled"] or 0.0):
        order["filled"] = filled
        if remaining is not None:
            order["remaining"] = remaining
        if avg_fill_price is not None:
            order["avg_fill_price"] = avg_fill_price
    if last_fill_price is not None:
        order["last_fill_price"] = last_fill_price
    order["updated_at"] = utc_now()
    return entry


def save(conn: Connection, state: OrderState, entry: dict[str, Any] | None) -> None:
    """Write ``state.order`` (INSERT if new, else UPDATE of the changed columns, if any)
    and append ``entry`` to the history."""
    if state.order_id is None:
        params = {"intent_id": state.intent["id"], **state.order}
        state.order_id = conn.execute(_INSERT_ORDER, params).scalar_one()
    else:
        changes = {k: v for k, v in state.order.items() if state.loaded[k] != v}
        if changes:
            conn.execute(_UPDATE_ORDER, {"order_pk": state.order_id, **changes})
    state.loaded = dict(state.order)
    if entry is not None:
        conn.execute(_INSERT_ENTRY, {"order_id": state.order_id, **entry})
