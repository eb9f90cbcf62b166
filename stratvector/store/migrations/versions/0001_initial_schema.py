"""Initial journal schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-20

Self-contained on purpose (no imports from ``stratvector.store.models``): a migration
must describe the schema as it was at this revision, whatever the models become later.
Instants are ``timestamptz`` on PostgreSQL and UTC text on SQLite (the models' UTCDateTime
converts); JSON payloads are ``JSONB`` on PostgreSQL.

``order_status_history`` is append-only: triggers refuse UPDATE and DELETE on both
backends, so an order's history can only grow.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = True) -> sa.Column:
    kind = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    return sa.Column(name, kind, nullable=nullable)


def _num(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _str(name: str, length: int, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=True)


def _pk(table: str, *cols: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(cols or ("id",)), name=f"pk_{table}")


def _side_checks(table: str) -> list[sa.CheckConstraint]:
    return [
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name=f"ck_{table}_side"),
        sa.CheckConstraint("quantity > 0", name=f"ck_{table}_quantity_positive"),
    ]


def _index(table: str, *cols: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(cols)}", table, list(cols))


def upgrade() -> None:
    # ----------------------------------------------------------- strategies and runs
    op.create_table(
        "strategies",
        _id(),
        _str("name", 128, nullable=False),
        _str("spec", 512),
        _text("description"),
        _utc("created_at"),
        _pk("strategies"),
        sa.UniqueConstraint("name", name="uq_strategies_name"),
    )
    op.create_table(
        "strategy_configs",
        _id(),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _json("config", nullable=False),
        _str("config_hash", 64, nullable=False),
        _utc("created_at"),
        _pk("strategy_configs"),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name="fk_strategy_configs_strategy_id_strategies"
        ),
        sa.UniqueConstraint(
            "strategy_id", "config_hash", name="uq_strategy_configs_strategy_id_config_hash"
        ),
        sa.UniqueConstraint(
            "strategy_id", "version", name="uq_strategy_configs_strategy_id_version"
        ),
    )
    op.create_table(
        "runs",
        _id(),
        _str("kind", 32, nullable=False),
        _str("strategy", 128),
        sa.Column("strategy_config_id", sa.Integer(), nullable=True),
        _json("config", nullable=False),
        _json("symbols"),
        _utc("data_start", nullable=True),
        _utc("data_end", nullable=True),
        _str("code_version", 128),
        _json("metrics"),
        _json("artefacts"),
        _str("status", 16, nullable=False),
        _utc("started_at", nullable=True),
        _utc("finished_at", nullable=True),
        _text("notes"),
        _utc("created_at"),
        _pk("runs"),
        sa.ForeignKeyConstraint(
            ["strategy_config_id"],
            ["strategy_configs.id"],
            name="fk_runs_strategy_config_id_strategy_configs",
        ),
    )
    _index("runs", "kind", "created_at")
    _index("runs", "strategy")
    op.create_table(
        "run_results",
        _id(),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _str("label", 128),
        _json("params"),
        _json("metrics"),
        _pk("run_results"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_results_run_id_runs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "seq", name="uq_run_results_run_id_seq"),
    )

    # ----------------------------------------------------------- orders and fills
    op.create_table(
        "order_intents",
        _id(),
        _str("order_ref", 255, nullable=False),
        _str("strategy", 128, nullable=False),
        _str("symbol", 64, nullable=False),
        _utc("bar_time"),
        _str("side", 4, nullable=False),
        _num("quantity", nullable=False),
        _str("order_type", 16, nullable=False),
        _num("limit_price"),
        _num("stop_price"),
        _str("time_in_force", 8, nullable=False),
        _str("account", 32),
        _num("target"),
        _json("detail"),
        _utc("created_at"),
        *_side_checks("order_intents"),
        _pk("order_intents"),
        sa.UniqueConstraint("order_ref", name="uq_order_intents_order_ref"),
    )
    _index("order_intents", "strategy", "symbol", "bar_time")
    op.create_table(
        "orders",
        _id(),
        sa.Column("intent_id", sa.Integer(), nullable=False),
        sa.Column("ib_order_id", sa.BigInteger(), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        _str("account", 32),
        _utc("submitted_at", nullable=True),
        _str("status", 32, nullable=False),
        _num("filled", nullable=False),
        _num("remaining"),
        _num("avg_fill_price"),
        _num("last_fill_price"),
        _utc("updated_at"),
        _pk("orders"),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["order_intents.id"], name="fk_orders_intent_id_order_intents"
        ),
        sa.UniqueConstraint("intent_id", name="uq_orders_intent_id"),
        sa.UniqueConstraint("perm_id", name="uq_orders_perm_id"),
    )
    _index("orders", "status")
    op.create_table(
        "order_status_history",
        _id(),
        sa.Column("order_id", sa.Integer(), nullable=False),
        _str("status", 32, nullable=False),
        _num("filled", nullable=False),
        _num("remaining"),
        _num("avg_fill_price"),
        _utc("at"),
        _utc("recorded_at"),
        _str("source", 16, nullable=False),
        _text("message"),
        _pk("order_status_history"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_status_history_order_id_orders"
        ),
    )
    _index("order_status_history", "order_id", "id")
    _append_only("order_status_history")
    op.create_table(
        "fills",
        _id(),
        _str("exec_id", 64, nullable=False),
        sa.Column("intent_id", sa.Integer(), nullable=True),
        _str("order_ref", 255),
        sa.Column("ib_order_id", sa.BigInteger(), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        _str("strategy", 128),
        _str("symbol", 64, nullable=False),
        _str("side", 4, nullable=False),
        _num("quantity", nullable=False),
        _num("price", nullable=False),
        _utc("time"),
        _str("exchange", 32),
        _str("account", 32),
        _str("currency", 8),
        _num("commission"),
        _str("commission_currency", 8),
        _num("realized_pnl"),
        _utc("recorded_at"),
        *_side_checks("fills"),
        _pk("fills"),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["order_intents.id"], name="fk_fills_intent_id_order_intents"
        ),
        sa.UniqueConstraint("exec_id", name="uq_fills_exec_id"),
    )
    _index("fills", "intent_id")
    _index("fills", "strategy", "symbol", "time")
    _index("fills", "time")

    # ----------------------------------------------------------- snapshots
    op.create_table(
        "position_snapshots",
        _id(),
        _utc("taken_at"),
        _str("source", 16, nullable=False),
        _str("account", 32),
        _pk("position_snapshots"),
    )
    _index("position_snapshots", "source", "taken_at")
    op.create_table(
        "position_snapshot_lines",
        _id(),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        _str("account", 32),
        _str("strategy", 128),
        _str("symbol", 64, nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=True),
        _num("quantity", nullable=False),
        _num("avg_cost"),
        _num("market_price"),
        _num("market_value"),
        _num("unrealized_pnl"),
        _num("realized_pnl"),
        _str("currency", 8),
        _pk("position_snapshot_lines"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["position_snapshots.id"],
            name="fk_position_snapshot_lines_snapshot_id_position_snapshots",
            ondelete="CASCADE",
        ),
    )
    _index("position_snapshot_lines", "snapshot_id")
    op.create_table(
        "account_snapshots",
        _id(),
        _utc("taken_at"),
        _str("account", 32, nullable=False),
        _str("currency", 8),
        _num("net_liquidation"),
        _num("total_cash"),
        _num("buying_power"),
        _num("gross_position_value"),
        _num("maintenance_margin"),
        _num("unrealized_pnl"),
        _num("realized_pnl"),
        _json("tags"),
        _pk("account_snapshots"),
    )
    _index("account_snapshots", "account", "taken_at")

    # ----------------------------------------------------------- reports
    op.create_table(
        "risk_reports",
        _id(),
        _utc("as_of"),
        _str("kind", 16, nullable=False),
        _str("method", 64, nullable=False),
        _str("strategy", 128),
        _num("confidence"),
        _num("horizon_days"),
        _num("var"),
        _num("cvar"),
        _num("var_amount"),
        _num("cvar_amount"),
        _num("portfolio_value"),
        sa.Column("breached", sa.Boolean(), nullable=False),
        _json("details"),
        _utc("created_at"),
        _pk("risk_reports"),
    )
    _index("risk_reports", "kind", "as_of")
    op.create_table(
        "drift_reports",
        _id(),
        _utc("as_of"),
        _str("strategy", 128, nullable=False),
        _num("score", nullable=False),
        sa.Column("alert", sa.Boolean(), nullable=False),
        _utc("window_start", nullable=True),
        _utc("window_end", nullable=True),
        _json("detectors"),
        _json("details"),
        _utc("created_at"),
        _pk("drift_reports"),
    )
    _index("drift_reports", "strategy", "as_of")

    # ----------------------------------------------------------- events and control
    op.create_table(
        "events",
        _id(),
        _utc("at"),
        _str("kind", 64, nullable=False),
        _str("severity", 8, nullable=False),
        _str("strategy", 128),
        _str("symbol", 64),
        _text("message"),
        _json("detail"),
        _pk("events"),
    )
    _index("events", "at")
    _index("events", "kind", "at")
    op.create_table(
        "halt_state",
        _str("scope", 128, nullable=False),
        sa.Column("halted", sa.Boolean(), nullable=False),
        _text("reason"),
        _str("actor", 128),
        _utc("changed_at"),
        _pk("halt_state", "scope"),
    )


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` at the database level."""
    message = f"{table} is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{message}'; END; $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TRIGGER IF EXISTS order_status_history_append_only ON order_status_history"
        )
        op.execute("DROP FUNCTION IF EXISTS order_status_history_append_only()")
    for table in (
        "halt_state",
        "events",
        "drift_reports",
        "risk_reports",
        "account_snapshots",
        "position_snapshot_lines",
        "position_snapshots",
        "fills",
        "order_status_history",
        "orders",
        "order_intents",
        "run_results",
        "runs",
        "strategy_configs",
        "strategies",
    ):
        op.drop_table(table)  # SQLite drops a table's triggers and indexes with it
