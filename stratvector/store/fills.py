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

from sqlalchemy import Connection, Double, Row, String, Table, bindparam, func, select, update

from stratvector.store._sql import insert_ignore_statements, needs_row_locks
from stratvector.store._status import (
    FILL_STATE,
    FILLED,
    TERMINAL_STATUSES,
    apply_status,
    read_state,
    save,
)
from stratvector.store._types import normalize_side, to_utc, utc_now
from stratvector.store.errors import NotFoundError
from stratvector.store.models import QTY_EPS, Fill, OrderIntent
from stratvector.store.positions import FillLike, Position, net_positions

# ---------------------------------------------------------------------- statements
# The write path is Core (see stratvector.store._status for why); built once so
# SQLAlchemy reuses their compiled form.

_fills: Table = Fill.__table__  # type: ignore[assignment]
_intents: Table = OrderIntent.__table__  # type: ignore[assignment]

_INTENT_OF_FILL = select(_intents.c.id, _intents.c.strategy, _intents.c.symbol).where(
    _intents.c.order_ref == bindparam("ref")
)
_INTENT_OF_FILL_LOCKED = _INTENT_OF_FILL.with_for_update()
_INSERT_FILL = insert_ignore_statements(_fills, ["exec_id"], list(_fills.c))
_FILL_BY_EXEC_ID = select(*_fills.c).where(_fills.c.exec_id == bindparam("exec_id"))
_SET_COMMISSION = (
    update(_fills)
    .where(_fills.c.exec_id == bindparam("of_exec_id"))
    .values(
        commission=bindparam("new_commission", type_=Double),
        # currency and realized P&L only when reported (NULL keeps the stored value)
        commission_currency=func.coalesce(
            bindparam("new_currency", type_=String), _fills.c.commission_currency
        ),
        realized_pnl=func.coalesce(bindparam("new_pnl", type_=Double), _fills.c.realized_pnl),
    )
    .returning(*_fills.c)
)
"""Attach a commission report to a fill (an UPDATE: on PostgreSQL it locks the row)."""
_FILL_IN_COMMISSION = _SET_COMMISSION.where(_fills.c.commission.is_(None))
"""The same, only if the fill has no commission yet (a replayed fill fills it in)."""


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


def _record(f: Fill | Row[Any], created: bool = False) -> FillRecord:
    """The record of an ORM fill or of a row of all the ``fills`` columns."""
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
        side = normalize_side(side)
        if not (math.isfinite(quantity) and quantity > 0):
            raise ValueError(f"fill quantity must be a finite number > 0, not {quantity!r}")
        if not math.isfinite(price):
            raise ValueError(f"fill price must be finite, not {price!r}")
        time = to_utc(time, "time")
        with self._journal.write() as s:
            conn = s.connection()
            intent = None
            if order_ref:
                lock = needs_row_locks(conn)  # the intent's row, as every order writer does
                stmt = _INTENT_OF_FILL_LOCKED if lock else _INTENT_OF_FILL
                intent = conn.execute(stmt, {"ref": order_ref}).first()
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
            row = conn.execute(_INSERT_FILL[conn.dialect.name], values).first()
            if row is not None:  # written now (RETURNING gives the stored row)
                if intent is not None:
                    _mark_filled_if_complete(conn, order_ref, time)
                return _record(row, True)
            if values["commission"] is not None:  # a replay: fill in a missing commission
                row = conn.execute(
                    _FILL_IN_COMMISSION,
                    _commission_params(exec_id, commission, commission_currency, realized_pnl),
                ).first()
            if row is None:
                row = conn.execute(_FILL_BY_EXEC_ID, {"exec_id": exec_id}).one()
            return _record(row)

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
        params = _commission_params(exec_id, commission, currency, realized_pnl)
        with self._journal.write() as s:
            # one UPDATE ... RETURNING: on PostgreSQL it locks the fill's row until commit,
            # so concurrent reports for one fill still take turns (the last one wins)
            row = s.connection().execute(_SET_COMMISSION, params).first()
            if row is None:
                raise NotFoundError(f"no fill with exec id {exec_id!r} in the journal")
            return _record(row)

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


def _commission_params(
    exec_id: str, commission: float | None, currency: str | None, realized_pnl: float | None
) -> dict[str, Any]:
    """Parameters of :data:`_SET_COMMISSION`: the commission as given (a non-number
    clears it: last report wins), currency and P&L only when reported."""
    return {
        "of_exec_id": exec_id,
        "new_commission": _finite(commission),
        "new_currency": currency,
        "new_pnl": _finite(realized_pnl),
    }


def _mark_filled_if_complete(conn: Connection, order_ref: str, at: datetime) -> None:
    """Mark the order Filled once its fills cover the intent's quantity (the caller
    holds the intent's lock and has just written one of its fills)."""
    state = read_state(conn, FILL_STATE, order_ref)
    if state is None:
        return
    total, notional = state.row["fill_total"], state.row["fill_notional"]
    quantity = state.intent["quantity"]
    if total is None or total < quantity - QTY_EPS:
        return
    if state.order_id is not None and state.order["status"] in TERMINAL_STATUSES:
        return
    if state.order_id is None:
        state.start_order(FILLED, None)
    entry = apply_status(
        state,
        FILLED,
        float(total),
        max(0.0, quantity - float(total)),
        float(notional) / float(total),
        at,
        "fills",
        "fills cover the intent's quantity",
    )
    save(conn, state, entry)
