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

This module is the repository (:class:`Orders`) and the public home of the order
journal's names; each is defined in one smaller module:

- :mod:`stratvector.store.order_refs`: the order ref format (:func:`make_order_ref`,
  :func:`parse_order_ref`);
- :mod:`stratvector.store.intents`: :class:`Intent` and the checks an intent passes
  before it is written;
- :mod:`stratvector.store.order_records`: :class:`OrderRecord`, :class:`StatusRecord`
  and how they are built from rows;
- :mod:`stratvector.store._status`: the statuses and the status rules (shared with
  fills).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from stratvector.store._sql import insert_ignore_many, sqlite_insert_ignore_many
from stratvector.store._status import (
    ABANDONED,
    FILLED,
    INTENT,
    ORDER_STATE,
    PENDING_SUBMIT,
    TERMINAL_STATUSES,
    apply_status,
    history_entry,
    load_for_update,
    save,
    set_ids,
)
from stratvector.store._types import SIDES as SIDES
from stratvector.store._types import opt_float, opt_utc, to_utc, utc_now
from stratvector.store.errors import (
    IntentConflictError,
    JournalError,
    OrderIdConflictError,
    UnknownOrderError,
)
from stratvector.store.intents import Intent, differences, intent_values
from stratvector.store.models import Order, OrderIntent, OrderStatusEntry
from stratvector.store.order_records import (
    OrderRecord,
    StatusRecord,
    fresh_record,
    order_record,
    state_record,
    status_record,
)
from stratvector.store.order_refs import ORDER_REF_PREFIX as ORDER_REF_PREFIX
from stratvector.store.order_refs import OrderRefParts, make_order_ref, parse_order_ref

__all__ = [  # the public home of the order journal's names (defined in the modules above)
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

INTENTS = OrderIntent.__table__
_NOT_FINISHED = or_(Order.id.is_(None), Order.status.not_in(TERMINAL_STATUSES))
"""Intents not known to be finished: never submitted, or not in a terminal status."""

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
        now = utc_now()  # one creation time for the batch: one transaction
        rows = [intent_values(i, now) for i in intents]
        if not rows:
            return []
        refs = [r["order_ref"] for r in rows]
        if len(set(refs)) != len(refs):
            raise ValueError("record_intents: an order ref appears twice in one batch")
        created = self._insert_intents(rows)
        if len(created) == len(rows):  # each row is exactly what was written
            return [fresh_record(values) for values in rows]
        with self._journal.read() as s:  # replays: read what the journal holds
            stmt = (
                select(OrderIntent)
                .where(OrderIntent.order_ref.in_([r for r in refs if r not in created]))
                .options(selectinload(OrderIntent.order))
            )
            found = {i.order_ref: i for i in s.scalars(stmt)}
            out: list[OrderRecord | IntentConflictError] = []
            for values in rows:
                ref = values["order_ref"]
                if ref in created:
                    out.append(fresh_record(values))
                    continue
                intent = found[ref]
                record = order_record(intent)
                diff = differences(intent, values)
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

    def _insert_intents(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert the intent rows not journaled yet, in one committed transaction; the
        refs written. On SQLite through the driver's connection: this commit stands
        between a bar's decision and its first order."""
        journal = self._journal
        if journal.backend == "sqlite":
            with journal.sqlite_write() as conn:
                return sqlite_insert_ignore_many(
                    conn, journal.dialect, INTENTS, rows, ["order_ref"], "order_ref"
                )
        with journal.write() as s:
            return insert_ignore_many(s, OrderIntent, rows, ["order_ref"], "order_ref")

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
            return self._submitted(
                s.connection(), order_ref, ib_order_id, perm_id, client_id, account, when
            )

    def mark_submitted_many(
        self,
        sent: Sequence[tuple[str, int]],
        *,
        client_id: int | None = None,
        account: str | None = None,
        at: datetime | None = None,
    ) -> list[OrderRecord | JournalError]:
        """:meth:`mark_submitted` for each ``(order_ref, ib_order_id)`` of one batch of
        sends, in ONE committed transaction (one disk sync, not one per order).

        Returns, in order, the record of each, or the error that one raised (an unknown
        ref, an id conflict: nothing of that one is written; the others are)."""
        when = opt_utc(at, "at") or utc_now()
        out: list[OrderRecord | JournalError] = []
        with self._journal.write() as s:
            conn = s.connection()
            for order_ref, ib_order_id in sent:
                try:
                    out.append(
                        self._submitted(
                            conn, order_ref, ib_order_id, None, client_id, account, when
                        )
                    )
                except (UnknownOrderError, OrderIdConflictError) as exc:  # before any write
                    out.append(exc)
        return out

    @staticmethod
    def _submitted(
        conn: Any,
        order_ref: str,
        ib_order_id: int,
        perm_id: int | None,
        client_id: int | None,
        account: str | None,
        when: datetime,
    ) -> OrderRecord:
        state = load_for_update(conn, ORDER_STATE, order_ref, perm_id=perm_id or None)
        if state is None:
            raise UnknownOrderError(_unknown(order_ref))
        intent, entry = state.intent, None
        if state.order_id is None:
            state.start_order(PENDING_SUBMIT, intent["quantity"])
            entry = history_entry(PENDING_SUBMIT, 0.0, intent["quantity"], None, when, "journal")
        order = state.order
        set_ids(order, order_ref, ib_order_id, perm_id, client_id, state.row["perm_owner"])
        order["account"] = order["account"] or account or intent["account"]
        order["submitted_at"] = order["submitted_at"] or when
        order["updated_at"] = utc_now()
        save(conn, state, entry)
        return state_record(state)

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
                opt_float(remaining),
                opt_float(avg_fill_price),
                when,
                source,
                message,
                opt_float(last_fill_price),
            )
            save(conn, state, entry)
            return state_record(state)

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
            return [status_record(r) for r in rows]

    def pending_intents(self, strategy: str | None = None) -> list[OrderRecord]:
        """Intents not known to be finished (never submitted, or not in a terminal
        status), oldest first: what reconciliation must match against IB."""
        with self._journal.read() as s:
            stmt = (
                select(OrderIntent)
                .outerjoin(Order)
                .where(_NOT_FINISHED)
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
                stmt = stmt.where(_NOT_FINISHED)
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
