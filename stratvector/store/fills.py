"""Executions (fills), their commissions, and positions derived from them.

A fill is keyed by IB's ``execId``: :meth:`Fills.record_fill` is idempotent, so the same
execution delivered live, again by ``reqExecutions`` after a reconnect, and again after a
restart is stored once. Commission reports arrive separately (``commissionReport``) and
are attached with :meth:`Fills.record_commission` (or passed to ``record_fill`` when
known). When the fills of an intent add up to its quantity the order is marked
``Filled`` (source ``fills``) even if IB's final ``orderStatus`` was missed while the
daemon was down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from stratvector.store._sql import for_update, insert_ignore
from stratvector.store._types import to_utc, utc_now
from stratvector.store.errors import NotFoundError
from stratvector.store.models import QTY_EPS, Fill, Order, OrderIntent
from stratvector.store.orders import FILLED, TERMINAL_STATUSES, _apply_status, _side
from stratvector.store.positions import FillLike, Position, net_positions


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution as journaled. ``created`` is True only from the call that wrote it."""

    exec_id: str
    order_ref: str | None
    strategy: str | None
    symbol: str
    side: str
    quantity: float
    price: float
    time: datetime
    commission: float | None
    commission_currency: str | None
    realized_pnl: float | None
    ib_order_id: int | None
    perm_id: int | None
    exchange: str | None
    account: str | None
    currency: str | None
    recorded_at: datetime
    created: bool = False

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "BUY" else -self.quantity


def _record(f: Fill, created: bool = False) -> FillRecord:
    return FillRecord(
        exec_id=f.exec_id,
        order_ref=f.order_ref,
        strategy=f.strategy,
        symbol=f.symbol,
        side=f.side,
        quantity=f.quantity,
        price=f.price,
        time=f.time,
        commission=f.commission,
        commission_currency=f.commission_currency,
        realized_pnl=f.realized_pnl,
        ib_order_id=f.ib_order_id,
        perm_id=f.perm_id,
        exchange=f.exchange,
        account=f.account,
        currency=f.currency,
        recorded_at=f.recorded_at,
        created=created,
    )


class Fills:
    """Executions and positions. Get it as ``journal.fills``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def record_fill(
        self,
        exec_id: str,
        order_ref: str | None,
        time: datetime,
        quantity: float,
        price: float,
        side: str,
        *,
        symbol: str | None = None,
        strategy: str | None = None,
        commission: float | None = None,
        commission_currency: str | None = None,
        realized_pnl: float | None = None,
        ib_order_id: int | None = None,
        perm_id: int | None = None,
        exchange: str | None = None,
        account: str | None = None,
        currency: str | None = None,
    ) -> FillRecord:
        """Store an execution and commit before returning; idempotent on ``exec_id``.

        ``side`` is BUY/SELL or IB's BOT/SLD; ``quantity`` > 0. When ``order_ref`` names a
        journaled intent, the fill is attributed to its strategy and symbol; otherwise
        (an order placed by hand) ``symbol`` is required and ``strategy`` optional.
        A replayed ``exec_id`` returns the stored fill (``created=False``), filling in the
        commission if the stored one had none; other fields keep their first values.
        """
        if not exec_id:
            raise ValueError("exec_id must be a non-empty string")
        side = _side(side)
        if not (math.isfinite(quantity) and quantity > 0):
            raise ValueError(f"fill quantity must be a finite number > 0, not {quantity!r}")
        if not math.isfinite(price):
            raise ValueError(f"fill price must be finite, not {price!r}")
        time = to_utc(time, "time")
        with self._journal.write() as s:
            intent = None
            if order_ref:
                intent = s.scalars(
                    for_update(s, select(OrderIntent).where(OrderIntent.order_ref == order_ref))
                ).one_or_none()
            if intent is not None:
                strategy, symbol = intent.strategy, symbol or intent.symbol
            if not symbol:
                raise ValueError(
                    f"fill {exec_id}: symbol is required when the order ref {order_ref!r} "
                    "is not a journaled intent"
                )
            values = {
                "exec_id": exec_id,
                "intent_id": intent.id if intent else None,
                "order_ref": order_ref or None,
                "ib_order_id": ib_order_id,
                "perm_id": perm_id or None,
                "strategy": strategy,
                "symbol": symbol,
                "side": side,
                "quantity": float(quantity),
                "price": float(price),
                "time": time,
                "exchange": exchange,
                "account": account,
                "currency": currency,
                "commission": _finite(commission),
                "commission_currency": commission_currency,
                "realized_pnl": _finite(realized_pnl),
                "recorded_at": utc_now(),
            }
            created = insert_ignore(s, Fill, values, ["exec_id"])
            fill = s.scalars(select(Fill).where(Fill.exec_id == exec_id)).one()
            if not created and fill.commission is None and values["commission"] is not None:
                _set_commission(fill, values["commission"], commission_currency, realized_pnl)
            if created and intent is not None:
                _mark_filled_if_complete(s, intent, time)
            s.flush()
            return _record(fill, created)

    def record_commission(
        self,
        exec_id: str,
        commission: float,
        currency: str | None = None,
        realized_pnl: float | None = None,
    ) -> FillRecord:
        """Attach IB's commission report to a stored fill (last report wins).

        Raises :class:`NotFoundError` if the fill is not journaled yet: record the fill
        first (ib_async delivers ``execDetails`` before ``commissionReport``).
        """
        with self._journal.write() as s:
            fill = s.scalars(
                for_update(s, select(Fill).where(Fill.exec_id == exec_id))
            ).one_or_none()
            if fill is None:
                raise NotFoundError(f"no fill with exec id {exec_id!r} in the journal")
            _set_commission(fill, _finite(commission), currency, realized_pnl)
            s.flush()
            return _record(fill)

    # -------------------------------------------------------------- reads

    def get(self, exec_id: str) -> FillRecord | None:
        with self._journal.read() as s:
            fill = s.scalars(select(Fill).where(Fill.exec_id == exec_id)).one_or_none()
            return _record(fill) if fill else None

    def for_order(self, order_ref: str) -> list[FillRecord]:
        """The fills of one order, in time order."""
        with self._journal.read() as s:
            stmt = select(Fill).where(Fill.order_ref == order_ref).order_by(Fill.time, Fill.id)
            return [_record(f) for f in s.scalars(stmt)]

    def list_fills(
        self,
        *,
        strategy: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[FillRecord]:
        """Fills in time order (oldest first), optionally filtered; ``limit`` keeps the
        newest ``limit``."""
        with self._journal.read() as s:
            stmt = select(Fill)
            if strategy is not None:
                stmt = stmt.where(Fill.strategy == strategy)
            if symbol is not None:
                stmt = stmt.where(Fill.symbol == symbol)
            if since is not None:
                stmt = stmt.where(Fill.time >= to_utc(since, "since"))
            if until is not None:
                stmt = stmt.where(Fill.time < to_utc(until, "until"))
            if limit is not None:
                stmt = stmt.order_by(Fill.time.desc(), Fill.id.desc()).limit(limit)
                return [_record(f) for f in reversed(list(s.scalars(stmt)))]
            return [_record(f) for f in s.scalars(stmt.order_by(Fill.time, Fill.id))]

    def last_fill_time(self, account: str | None = None) -> datetime | None:
        """The newest execution time journaled (the ``time`` filter for
        ``reqExecutions`` after a restart), or ``None``."""
        with self._journal.read() as s:
            stmt = select(func.max(Fill.time))
            if account is not None:
                stmt = stmt.where(Fill.account == account)
            return s.execute(stmt).scalar()  # max() keeps the column type: tz-aware UTC

    def positions(
        self, strategy: str | None = None, *, include_flat: bool = False
    ) -> list[Position]:
        """Net positions per (strategy, symbol) from all journaled fills.

        See :mod:`stratvector.store.positions` for the average-cost rules (shorts and
        flips included). Fills not attributed to a strategy form their own positions with
        ``strategy=None``.
        """
        with self._journal.read() as s:
            stmt = select(
                Fill.strategy,
                Fill.symbol,
                Fill.side,
                Fill.quantity,
                Fill.price,
                Fill.time,
                Fill.commission,
            ).order_by(Fill.time, Fill.id)
            if strategy is not None:
                stmt = stmt.where(Fill.strategy == strategy)
            rows = [FillLike(*row) for row in s.execute(stmt)]
        return net_positions(rows, include_flat=include_flat)


# ---------------------------------------------------------------------- helpers


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    # IB sends 1.7976931348623157e308 (UNSET_DOUBLE) for "no value".
    return value if math.isfinite(value) and abs(value) < 1e300 else None


def _set_commission(
    fill: Fill, commission: float | None, currency: str | None, realized_pnl: float | None
) -> None:
    fill.commission = commission
    if currency is not None:
        fill.commission_currency = currency
    pnl = _finite(realized_pnl)
    if pnl is not None:
        fill.realized_pnl = pnl


def _mark_filled_if_complete(s: Session, intent: OrderIntent, at: datetime) -> None:
    """Mark the order Filled once its fills cover the intent's quantity."""
    total, notional = s.execute(
        select(func.sum(Fill.quantity), func.sum(Fill.quantity * Fill.price)).where(
            Fill.intent_id == intent.id
        )
    ).one()
    if total is None or total < intent.quantity - QTY_EPS:
        return
    order = s.scalars(
        select(Order).where(Order.intent_id == intent.id).options(selectinload(Order.intent))
    ).one_or_none()
    if order is not None and order.status in TERMINAL_STATUSES:
        return
    if order is None:
        order = Order(intent_id=intent.id, status=FILLED, filled=0.0)
        s.add(order)
        s.flush()
    _apply_status(
        s,
        order,
        FILLED,
        float(total),
        max(0.0, intent.quantity - float(total)),
        float(notional) / float(total),
        at,
        "fills",
        "fills cover the intent's quantity",
    )
