"""The journal's tables (SQLAlchemy 2.0 typed declarative models).

Storage conventions, the same on SQLite and PostgreSQL:

- **Instants** are :class:`~stratvector.store._types.UTCDateTime`: tz-aware UTC in and
  out, naive datetimes refused.
- **Money, prices and quantities** are ``Double`` (IEEE 754 binary64: SQLite ``REAL``,
  PostgreSQL ``double precision``). Every number the journal stores was computed as a
  Python/numpy float (IB's API delivers prices, commissions and share counts as doubles,
  the backtester works in float64), so binary64 round-trips exactly what the rest of
  StratVector computed, and quantities may be fractional (fractional shares, FX, crypto).
  The journal does no decimal bookkeeping; compare quantities with a tolerance
  (:data:`QTY_EPS`).
- **Free-form payloads** (configs, metrics, details) are JSON (``JSONB`` on PostgreSQL),
  sanitized by :func:`~stratvector.store._types.jsonable` (NaN/inf stored as null).
- **Idempotency** is enforced by the database, not by the caller: ``order_intents.order_ref``
  and ``fills.exec_id`` are unique, ``orders.intent_id`` is unique (one IB order per
  intent), and ``order_status_history`` is append-only (triggers refuse UPDATE and
  DELETE on both backends; see the initial migration).

The schema is created and evolved only by the Alembic migrations in
``stratvector/store/migrations``; a test checks the migrated schema equals these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from stratvector.store._types import JSONType, UTCDateTime, utc_now

QTY_EPS = 1e-9
"""Tolerance when comparing quantities (fills summed against an intent's quantity)."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations can name constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        float: Double(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        Any: JSONType,
    }


# --------------------------------------------------------------------------- strategies


class Strategy(Base):
    """A strategy by the name the daemon and the configs use (``momentum_aapl``)."""

    __tablename__ = "strategies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    spec: Mapped[str | None] = mapped_column(String(512))  # built-in name or file.py:Class
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    configs: Mapped[list[StrategyConfig]] = relationship(
        back_populates="strategy", order_by="StrategyConfig.version"
    )


class StrategyConfig(Base):
    """One version of a strategy's configuration; identical configs share a row (hash)."""

    __tablename__ = "strategy_configs"
    __table_args__ = (
        UniqueConstraint("strategy_id", "config_hash"),
        UniqueConstraint("strategy_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id"))
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64))  # sha256 of canonical JSON
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    strategy: Mapped[Strategy] = relationship(back_populates="configs")


# --------------------------------------------------------------------------- runs


class Run(Base):
    """A backtest, parameter search or walk-forward run and its headline metrics."""

    __tablename__ = "runs"
    __table_args__ = (Index(None, "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # backtest | optimization | walk_forward | ...
    strategy: Mapped[str | None] = mapped_column(String(128), index=True)
    strategy_config_id: Mapped[int | None] = mapped_column(ForeignKey("strategy_configs.id"))
    config: Mapped[dict[str, Any]]
    symbols: Mapped[list[Any] | None]
    data_start: Mapped[datetime | None]
    data_end: Mapped[datetime | None]
    code_version: Mapped[str | None] = mapped_column(String(128))
    metrics: Mapped[dict[str, Any] | None]
    artefacts: Mapped[dict[str, Any] | None]  # name -> path or URL
    status: Mapped[str] = mapped_column(String(16), default="completed")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    results: Mapped[list[RunResult]] = relationship(
        back_populates="run", order_by="RunResult.seq", cascade="all, delete-orphan"
    )


class RunResult(Base):
    """One row of a run's result table: a parameter set (search) or a fold (walk-forward)."""

    __tablename__ = "run_results"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(128))
    params: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any] | None]

    run: Mapped[Run] = relationship(back_populates="results")


# --------------------------------------------------------------------------- orders


class OrderIntent(Base):
    """An order the daemon decided to send, written (and committed) before ``placeOrder``.

    Immutable once written. ``order_ref`` is deterministic in (strategy, symbol, bar time)
    and is sent to IB as the order's ``orderRef``, so after a crash the intent can be
    matched to IB's open orders and executions before anything new is sent.
    """

    __tablename__ = "order_intents"
    __table_args__ = (
        CheckConstraint("side IN ('BUY', 'SELL')", name="side"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # newest first (``stratvector orders``, the dashboard, reconciliation's oldest
        # first): a decision's intents share one creation time, so its rows land at this
        # index's right edge, one page, where an index led by (strategy, symbol) took
        # one page per order in the commit between a decision and its orders
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_ref: Mapped[str] = mapped_column(String(255), unique=True)
    strategy: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    bar_time: Mapped[datetime]  # start of the closed bar whose target produced the order
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float]
    order_type: Mapped[str] = mapped_column(String(16))  # MKT, LMT, STP, STP LMT, ...
    limit_price: Mapped[float | None]
    stop_price: Mapped[float | None]
    time_in_force: Mapped[str] = mapped_column(String(8), default="DAY")
    account: Mapped[str | None] = mapped_column(String(32))
    target: Mapped[float | None]  # the strategy's target in [-1, 1] behind the order
    detail: Mapped[dict[str, Any] | None]  # reference price, risk check, sizing inputs
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    order: Mapped[Order | None] = relationship(back_populates="intent")


class Order(Base):
    """What IB knows about an intent: its ids and latest status (one row per intent)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("order_intents.id"), unique=True)
    ib_order_id: Mapped[int | None] = mapped_column(BigInteger)
    perm_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    client_id: Mapped[int | None] = mapped_column(Integer)
    account: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(32), index=True)
    filled: Mapped[float] = mapped_column(default=0.0)
    remaining: Mapped[float | None]
    avg_fill_price: Mapped[float | None]
    last_fill_price: Mapped[float | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)

    intent: Mapped[OrderIntent] = relationship(back_populates="order")
    history: Mapped[list[OrderStatusEntry]] = relationship(
        back_populates="order", order_by="OrderStatusEntry.id"
    )


class OrderStatusEntry(Base):
    """One status report for an order, in arrival order. Append-only (DB triggers)."""

    __tablename__ = "order_status_history"
    __table_args__ = (Index(None, "order_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(32))
    filled: Mapped[float]
    remaining: Mapped[float | None]
    avg_fill_price: Mapped[float | None]
    at: Mapped[datetime]  # when the status was observed (IB event time when known)
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)
    source: Mapped[str] = mapped_column(String(16), default="ib")  # ib | fills | journal
    message: Mapped[str | None] = mapped_column(Text)

    order: Mapped[Order] = relationship(back_populates="history")


class Fill(Base):
    """One IB execution. ``exec_id`` is unique: a replayed execution is never counted twice.

    ``commission`` is null until IB's commission report arrives; it is then filled in.
    """

    __tablename__ = "fills"
    __table_args__ = (
        CheckConstraint("side IN ('BUY', 'SELL')", name="side"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index(None, "strategy", "symbol", "time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exec_id: Mapped[str] = mapped_column(String(64), unique=True)
    intent_id: Mapped[int | None] = mapped_column(ForeignKey("order_intents.id"), index=True)
    order_ref: Mapped[str | None] = mapped_column(String(255))
    ib_order_id: Mapped[int | None] = mapped_column(BigInteger)
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    strategy: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float]
    price: Mapped[float]
    time: Mapped[datetime] = mapped_column(index=True)
    exchange: Mapped[str | None] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str | None] = mapped_column(String(8))
    commission: Mapped[float | None]
    commission_currency: Mapped[str | None] = mapped_column(String(8))
    realized_pnl: Mapped[float | None]  # as reported by IB's commission report
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)


# --------------------------------------------------------------------------- snapshots


class PositionSnapshot(Base):
    """A set of positions at one instant (an empty set means flat everywhere)."""

    __tablename__ = "position_snapshots"
    __table_args__ = (Index(None, "source", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))  # ib | journal
    account: Mapped[str | None] = mapped_column(String(32))

    lines: Mapped[list[PositionSnapshotLine]] = relationship(
        back_populates="snapshot", order_by="PositionSnapshotLine.id", cascade="all, delete-orphan"
    )


class PositionSnapshotLine(Base):
    """One position of a snapshot."""

    __tablename__ = "position_snapshot_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("position_snapshots.id", ondelete="CASCADE"), index=True
    )
    account: Mapped[str | None] = mapped_column(String(32))
    strategy: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[float]
    avg_cost: Mapped[float | None]
    market_price: Mapped[float | None]
    market_value: Mapped[float | None]
    unrealized_pnl: Mapped[float | None]
    realized_pnl: Mapped[float | None]
    currency: Mapped[str | None] = mapped_column(String(8))

    snapshot: Mapped[PositionSnapshot] = relationship(back_populates="lines")


class AccountSnapshot(Base):
    """Account values at one instant; ``tags`` keeps every IB account value received."""

    __tablename__ = "account_snapshots"
    __table_args__ = (Index(None, "account", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime]
    account: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str | None] = mapped_column(String(8))
    net_liquidation: Mapped[float | None]
    total_cash: Mapped[float | None]
    buying_power: Mapped[float | None]
    gross_position_value: Mapped[float | None]
    maintenance_margin: Mapped[float | None]
    unrealized_pnl: Mapped[float | None]
    realized_pnl: Mapped[float | None]
    tags: Mapped[dict[str, Any] | None]


# --------------------------------------------------------------------------- reports


class RiskReport(Base):
    """A VaR/CVaR estimate or a stress-test result for the portfolio or one strategy.

    ``var`` and ``cvar`` are positive losses as a fraction of equity; the ``*_amount``
    columns are the same in account currency.
    """

    __tablename__ = "risk_reports"
    __table_args__ = (Index(None, "kind", "as_of"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))  # var | stress
    method: Mapped[str] = mapped_column(
        String(64)
    )  # historical | parametric | monte_carlo | scenario name
    strategy: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None]
    horizon_days: Mapped[float | None]
    var: Mapped[float | None]
    cvar: Mapped[float | None]
    var_amount: Mapped[float | None]
    cvar_amount: Mapped[float | None]
    portfolio_value: Mapped[float | None]
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class DriftReport(Base):
    """A strategy's combined drift score in [0, 1] and its per-detector parts."""

    __tablename__ = "drift_reports"
    __table_args__ = (Index(None, "strategy", "as_of"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    strategy: Mapped[str] = mapped_column(String(128))
    score: Mapped[float]
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    detectors: Mapped[dict[str, Any] | None]
    details: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


# --------------------------------------------------------------------------- events, control


class Event(Base):
    """Something that happened: connect, disconnect, limit breach, kill switch, halt, ..."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "kind", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8), default="info")  # info | warning | error
    strategy: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]


class HaltState(Base):
    """The persisted kill switch: one row per scope (``*`` = everything, or a strategy)."""

    __tablename__ = "halt_state"

    scope: Mapped[str] = mapped_column(String(128), primary_key=True)
    halted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(128))
    changed_at: Mapped[datetime]
