"""Order intents, their IB submission, and their status history.

The write-ahead protocol the gateway follows (each step one committed transaction):

1. ``ref = make_order_ref(strategy, symbol, bar_time)``;
   ``order = journal.orders.record_intent(ref, ...)``. If ``order.created`` is False
   the intent was journaled before (a replay after a restart or reconnect): do **not**
   send it; reconcile it with IB's open orders and executions instead.
2. ``placeOrder`` with ``orderRef=ref``.
3. ``journal.orders.mark_submitted(ref, ib_order_id, perm_id)`` once the order id is
   known, and ``record_status`` for every ``orderStatus`` IB sends.

At start and after a reconnect, :meth:`Orders.pending_intents` lists every intent not
known to be finished; each is matched by ``orderRef``/``permId`` to IB's open orders and
executions before anything new is sent. An intent that never reached IB and is no longer
wanted is closed with :meth:`Orders.abandon`.

Statuses are IB's strings (``PendingSubmit``, ``PreSubmitted``, ``Submitted``,
``Filled``, ``Cancelled``, ``ApiCancelled``, ``Inactive``, ...) plus two of the
journal's own: :data:`INTENT` (written, not yet submitted) and :data:`ABANDONED`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from stratvector.store._sql import insert_ignore_many
from stratvector.store._status import (
    ABANDONED,
    FILLED,
    INTENT,
    ORDER_STATE,
    PENDING_SUBMIT,
    TERMINAL_STATUSES,
    OrderState,
    apply_status,
    history_entry,
    load_for_update,
    save,
    set_ids,
)
from stratvector.store._types import jsonable, opt_utc, to_utc, utc_now
from stratvector.store.errors import (
    IntentConflictError,
    UnknownOrderError,
)
from stratvector.store.models import Order, OrderIntent, OrderStatusEntry

__all__ = [  # the statuses live in _status (shared with fills); this is their public home
    "ABANDONED",
    "FILLED",
    "INTENT",
    "PENDING_SUBMIT",
    "TERMINAL_STATUSES",
    "Intent",
    "OrderRecord",
    "OrderRefParts",
    "Orders",
    "StatusRecord",
    "make_order_ref",
    "order_record",
    "parse_order_ref",
]

ORDER_REF_PREFIX = "sv1"
_SEP = "|"
SIDES = ("BUY", "SELL")


# ---------------------------------------------------------------------- order refs


@dataclass(frozen=True, slots=True)
class OrderRefParts:
    """The pieces of an order ref made by :func:`make_order_ref`."""

    strategy: str
    symbol: str
    bar_time: datetime
    leg: str | None = None


def make_order_ref(strategy: str, symbol: str, bar_time: datetime, leg: str | None = None) -> str:
    """The deterministic IB ``orderRef`` for the order a strategy sends after a bar.

    Format ``sv1|<strategy>|<symbol>|<bar start, UTC, YYYYmmddTHHMMSSZ>[|<leg>]``. The same
    inputs always give the same ref, so a decision replayed after a crash maps to the same
    journal row and the same IB order. ``leg`` tells apart several orders for one bar
    (e.g. ``"stop"`` for a protective stop). ``bar_time`` must be tz-aware.
    """
    when = to_utc(bar_time, "bar_time")
    parts = [ORDER_REF_PREFIX, strategy, symbol, when.strftime("%Y%m%dT%H%M%SZ")]
    if leg is not None:
        parts.append(leg)
    for name, value in (("strategy", strategy), ("symbol", symbol), ("leg", leg)):
        if value is not None and (not value or _SEP in value or value != value.strip()):
            raise ValueError(f"{name} {value!r} cannot go in an order ref (empty, '|' or spaces)")
    ref = _SEP.join(parts)
    if len(ref) > 255:
        raise ValueError(f"order ref longer than 255 characters: {ref!r}")
    return ref


def parse_order_ref(ref: str | None) -> OrderRefParts | None:
    """The parts of a ref made by :func:`make_order_ref`; ``None`` for any other text
    (orders placed by hand in TWS or by other software)."""
    if not ref:
        return None
    parts = ref.split(_SEP)
    if parts[0] != ORDER_REF_PREFIX or len(parts) not in (4, 5):
        return None
    try:
        when = datetime.strptime(parts[3], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return OrderRefParts(parts[1], parts[2], when, parts[4] if len(parts) == 5 else None)


# ---------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An intent with what IB reported about it (a detached, read-only view).

    ``created`` is True only on the value returned by the :meth:`Orders.record_intent`
    call that wrote the intent; False for replays and for reads.
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


def _fresh_record(values: dict[str, Any]) -> OrderRecord:
    """The record of an intent just inserted from ``values`` (the row's columns, as
    :func:`_intent_values` gives them): no read back needed."""
    return OrderRecord(
        **values,
        status=INTENT,
        ib_order_id=None,
        perm_id=None,
        client_id=None,
        submitted_at=None,
        filled=0.0,
        remaining=values["quantity"],
        avg_fill_price=None,
        last_fill_price=None,
        updated_at=values["created_at"],
        created=True,
    )


def order_record(intent: OrderIntent, created: bool = False) -> OrderRecord:
    order = intent.order
    return OrderRecord(
        order_ref=intent.order_ref,
        strategy=intent.strategy,
        symbol=intent.symbol,
        bar_time=intent.bar_time,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
        time_in_force=intent.time_in_force,
        account=intent.account,
        target=intent.target,
        detail=intent.detail,
        created_at=intent.created_at,
        status=order.status if order else INTENT,
        ib_order_id=order.ib_order_id if order else None,
        perm_id=order.perm_id if order else None,
        client_id=order.client_id if order else None,
        submitted_at=order.submitted_at if order else None,
        filled=order.filled if order else 0.0,
        remaining=order.remaining if order else intent.quantity,
        avg_fill_price=order.avg_fill_price if order else None,
        last_fill_price=order.last_fill_price if order else None,
        updated_at=order.updated_at if order else intent.created_at,
        created=created,
    )


_INTENT_FIELDS = (
    "order_ref",
    "strategy",
    "symbol",
    "bar_time",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "time_in_force",
    "account",
    "target",
    "detail",
    "created_at",
)
_ORDER_FIELDS = (
    "status",
    "ib_order_id",
    "perm_id",
    "client_id",
    "submitted_at",
    "filled",
    "remaining",
    "avg_fill_price",
    "last_fill_price",
    "updated_at",
)


def _state_record(state: OrderState) -> OrderRecord:
    """The record of an order just written by a Core write (what a fresh read returns:
    the intent's row and the order's values as saved)."""
    return OrderRecord(
        **{name: state.intent[name] for name in _INTENT_FIELDS},
        **{name: state.order[name] for name in _ORDER_FIELDS},
    )


@dataclass(frozen=True, slots=True)
class Intent:
    """One order intent to journal (the arguments of :meth:`Orders.record_intent`)."""

    order_ref: str
    strategy: str
    symbol: str
    bar_time: datetime
    side: str
    quantity: float
    order_type: str = "MKT"
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: str = "DAY"
    account: str | None = None
    target: float | None = None
    detail: dict[str, Any] | None = None
    created_at: datetime | None = None


def _intent_values(i: Intent) -> dict[str, Any]:
    """The row of an intent, validated (``ValueError`` names the bad value)."""
    side = _side(i.side)
    order_type = i.order_type.strip().upper()
    _positive(i.quantity, "quantity")
    if "LMT" in order_type and i.limit_price is None:
        raise ValueError(f"order type {order_type} needs a limit_price")
    if order_type.startswith(("STP", "TRAIL")) and i.stop_price is None:
        raise ValueError(f"order type {order_type} needs a stop_price")
    return {
        "order_ref": i.order_ref,
        "strategy": i.strategy,
        "symbol": i.symbol,
        "bar_time": to_utc(i.bar_time, "bar_time"),
        "side": side,
        "quantity": float(i.quantity),
        "order_type": order_type,
        "limit_price": _opt_float(i.limit_price),
        "stop_price": _opt_float(i.stop_price),
        "time_in_force": i.time_in_force.strip().upper(),
        "account": i.account,
        "target": _opt_float(i.target),
        "detail": jsonable(i.detail),
        "created_at": opt_utc(i.created_at, "created_at") or utc_now(),
    }


# ---------------------------------------------------------------------- repository


class Orders:
    """Order intents and their life at IB. Get it as ``journal.orders``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    # -------------------------------------------------------------- writes

    def record_intent(
        self,
        order_ref: str,
        strategy: str,
        symbol: str,
        bar_time: datetime,
        side: str,
        quantity: float,
        order_type: str = "MKT",
        *,
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: str = "DAY",
        account: str | None = None,
        target: float | None = None,
        detail: dict[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> OrderRecord:
        """Write the intent and commit before returning; idempotent on ``order_ref``.

        Returns the journaled order. A second call with the same ref and the same order
        (strategy, symbol, bar time, side, quantity, type, prices, time in force, account)
        returns the existing row with ``created=False`` and writes nothing. The same ref
        with a different order raises :class:`IntentConflictError` (with ``existing``).
        """
        spec = Intent(
            order_ref,
            strategy,
            symbol,
            bar_time,
            side,
            quantity,
            order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            account=account,
            target=target,
            detail=detail,
            created_at=created_at,
        )
        (out,) = self.record_intents([spec])
        if isinstance(out, IntentConflictError):
            raise out
        return out

    def record_intents(self, intents: Sequence[Intent]) -> list[OrderRecord | IntentConflictError]:
        """Write several intents in ONE committed transaction (one disk sync): the intents
        of one bar's decision. Each is idempotent as in :meth:`record_intent`.

        Returns, in order, the journaled order for each (``created`` True for the ones
        this call wrote) or, for a ref already journaled for a different order, the
        :class:`IntentConflictError` (returned, not raised: the other intents of the
        batch are still written and may be sent). Invalid values raise ``ValueError``
        before anything is written.
        """
        rows = [_intent_values(i) for i in intents]
        if not rows:
            return []
        refs = [r["order_ref"] for r in rows]
        if len(set(refs)) != len(refs):
            raise ValueError("record_intents: an order ref appears twice in one batch")
        with self._journal.write() as s:
            created = insert_ignore_many(s, OrderIntent, rows, ["order_ref"], "order_ref")
            found: dict[str, OrderIntent] = {}
            if len(created) < len(rows):  # replays: read what the journal holds
                stmt = (
                    select(OrderIntent)
                    .where(OrderIntent.order_ref.in_([r for r in refs if r not in created]))
                    .options(selectinload(OrderIntent.order))
                )
                found = {i.order_ref: i for i in s.scalars(stmt)}
            out: list[OrderRecord | IntentConflictError] = []
            for values in rows:
                ref = values["order_ref"]
                if ref in created:  # the row is exactly what was written
                    out.append(_fresh_record(values))
                    continue
                intent = found[ref]
                record = order_record(intent)
                diff = _differences(intent, values)
                if diff:
                    out.append(
                        IntentConflictError(
                            f"order ref {ref!r} is already journaled for a different order "
                            f"({'; '.join(diff)}); an order ref must identify one order",
                            existing=record,
                        )
                    )
                else:
                    out.append(record)
            return out

    def mark_submitted(
        self,
        order_ref: str,
        ib_order_id: int,
        perm_id: int | None = None,
        *,
        client_id: int | None = None,
        account: str | None = None,
        at: datetime | None = None,
    ) -> OrderRecord:
        """Record that ``placeOrder`` sent the intent as IB order ``ib_order_id``.

        Idempotent. ``perm_id`` may be given later (IB assigns it with the first status).
        Raises :class:`OrderIdConflictError` if the intent was already submitted under a
        different order id (or client id, or perm id): it would have been sent twice.
        """
        when = opt_utc(at, "at") or utc_now()
        with self._journal.write() as s:
            conn = s.connection()
            state = load_for_update(conn, ORDER_STATE, order_ref, perm_id=perm_id or None)
            if state is None:
                raise UnknownOrderError(_unknown(order_ref))
            intent, entry = state.intent, None
            if state.order_id is None:
                state.start_order(PENDING_SUBMIT, intent["quantity"])
                entry = history_entry(
                    PENDING_SUBMIT, 0.0, intent["quantity"], None, when, "journal"
                )
            order = state.order
            set_ids(order, order_ref, ib_order_id, perm_id, client_id, state.row["perm_owner"])
            order["account"] = order["account"] or account or intent["account"]
            order["submitted_at"] = order["submitted_at"] or when
            order["updated_at"] = utc_now()
            save(conn, state, entry)
            return _state_record(state)

    def record_status(
        self,
        order_ref: str,
        status: str,
        filled: float = 0.0,
        remaining: float | None = None,
        avg_fill_price: float | None = None,
        at: datetime | None = None,
        *,
        last_fill_price: float | None = None,
        ib_order_id: int | None = None,
        perm_id: int | None = None,
        message: str | None = None,
        source: str = "ib",
    ) -> OrderRecord:
        """Append a status report to the order's history and update its current state.

        A report identical to the previous one (status, filled, remaining, average price)
        is not appended again (IB repeats ``orderStatus``). Once the order is terminal a
        late non-terminal report is kept in the history but does not change the current
        status; ``filled`` never decreases. Works before :meth:`mark_submitted` (e.g. when
        reconciliation finds the order at IB first).
        """
        if not status or not status.strip():
            raise ValueError("status must be a non-empty string")
        if status == INTENT:
            raise ValueError(f"{INTENT!r} is not a status that can be recorded")
        filled = float(filled or 0.0)
        when = opt_utc(at, "at") or utc_now()
        with self._journal.write() as s:
            conn = s.connection()
            state = load_for_update(conn, ORDER_STATE, order_ref, perm_id=perm_id or None)
            if state is None:
                raise UnknownOrderError(_unknown(order_ref))
            if state.order_id is None:
                state.start_order(status, None)
            if ib_order_id is not None or perm_id is not None:
                set_ids(state.order, order_ref, ib_order_id, perm_id, None, state.row["perm_owner"])
            entry = apply_status(
                state,
                status,
                filled,
                _opt_float(remaining),
                _opt_float(avg_fill_price),
                when,
                source,
                message,
                _opt_float(last_fill_price),
            )
            save(conn, state, entry)
            return _state_record(state)

    def abandon(self, order_ref: str, reason: str, at: datetime | None = None) -> OrderRecord:
        """Close an intent that never reached IB (reconciliation found no trace of it)."""
        return self.record_status(
            order_ref, ABANDONED, 0.0, 0.0, None, at, message=reason, source="journal"
        )

    # -------------------------------------------------------------- reads

    def get(self, order_ref: str) -> OrderRecord | None:
        """The order journaled under ``order_ref``, or ``None``."""
        with self._journal.read() as s:
            intent = _load_intent(s, order_ref)
            return order_record(intent) if intent else None

    def by_perm_id(self, perm_id: int) -> OrderRecord | None:
        """The order IB knows by ``perm_id``, or ``None``."""
        with self._journal.read() as s:
            stmt = (
                select(OrderIntent)
                .join(Order)
                .where(Order.perm_id == perm_id)
                .options(selectinload(OrderIntent.order))
            )
            intent = s.scalars(stmt).one_or_none()
            return order_record(intent) if intent else None

    def history(self, order_ref: str) -> list[StatusRecord]:
        """The order's status reports in the order they were recorded."""
        with self._journal.read() as s:
            intent = _load_intent(s, order_ref)
            if intent is None:
                raise UnknownOrderError(_unknown(order_ref))
            if intent.order is None:
                return []
            rows = s.scalars(
                select(OrderStatusEntry)
                .where(OrderStatusEntry.order_id == intent.order.id)
                .order_by(OrderStatusEntry.id)
            )
            return [
                StatusRecord(
                    r.status,
                    r.filled,
                    r.remaining,
                    r.avg_fill_price,
                    r.at,
                    r.recorded_at,
                    r.source,
                    r.message,
                )
                for r in rows
            ]

    def pending_intents(self, strategy: str | None = None) -> list[OrderRecord]:
        """Intents not known to be finished (never submitted, or not in a terminal
        status), oldest first: what reconciliation must match against IB."""
        with self._journal.read() as s:
            stmt = (
                select(OrderIntent)
                .outerjoin(Order)
                .where(or_(Order.id.is_(None), Order.status.not_in(TERMINAL_STATUSES)))
                .options(selectinload(OrderIntent.order))
                .order_by(OrderIntent.created_at, OrderIntent.id)
            )
            if strategy is not None:
                stmt = stmt.where(OrderIntent.strategy == strategy)
            return [order_record(i) for i in s.scalars(stmt)]

    def list_orders(
        self,
        *,
        open_only: bool = False,
        strategy: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[OrderRecord]:
        """Orders newest first (for ``stratvector orders`` and the dashboard).

        ``open_only`` keeps the ones :meth:`pending_intents` would return; ``since``
        filters on the intent's creation time.
        """
        with self._journal.read() as s:
            stmt = (
                select(OrderIntent)
                .outerjoin(Order)
                .options(selectinload(OrderIntent.order))
                .order_by(OrderIntent.created_at.desc(), OrderIntent.id.desc())
            )
            if open_only:
                stmt = stmt.where(or_(Order.id.is_(None), Order.status.not_in(TERMINAL_STATUSES)))
            if strategy is not None:
                stmt = stmt.where(OrderIntent.strategy == strategy)
            if symbol is not None:
                stmt = stmt.where(OrderIntent.symbol == symbol)
            if since is not None:
                stmt = stmt.where(OrderIntent.created_at >= to_utc(since, "since"))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [order_record(i) for i in s.scalars(stmt)]


# ---------------------------------------------------------------------- helpers


def _load_intent(s: Session, order_ref: str) -> OrderIntent | None:
    stmt = (
        select(OrderIntent)
        .where(OrderIntent.order_ref == order_ref)
        .options(selectinload(OrderIntent.order))
    )
    return s.scalars(stmt).one_or_none()


def _unknown(order_ref: str) -> str:
    return f"no order intent with order ref {order_ref!r} in the journal"


def _side(side: str) -> str:
    value = {"BOT": "BUY", "SLD": "SELL"}.get(side.strip().upper(), side.strip().upper())
    if value not in SIDES:
        raise ValueError(f"side must be BUY or SELL (or IB's BOT/SLD), not {side!r}")
    return value


def _positive(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, not {value!r}")


def _opt_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


_IDENTITY = (
    "strategy",
    "symbol",
    "bar_time",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "time_in_force",
    "account",
)


def _differences(intent: OrderIntent, values: dict[str, Any]) -> list[str]:
    out = []
    for name in _IDENTITY:
        old, new = getattr(intent, name), values[name]
        if old != new:
            out.append(f"{name}: journaled {old!r}, now {new!r}")
    return out
