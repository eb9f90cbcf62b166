"""order_intents: index the creation time instead of (strategy, symbol, bar time).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

The intents of one decision are committed between the decision and its orders. An
index led by (strategy, symbol) puts each of them on a different page of that index, so
the commit wrote about one more page per order: 17 WAL pages per commit on average for
decisions of 3 to 12 orders, against 11 with this index. Every query of the table either
looks an intent up by its ``order_ref`` (its unique index) or lists intents by creation
time, filtered or not (``stratvector orders``, the dashboard, reconciliation); SQLite
plans those as a scan of the time index. One decision's intents share one creation
time, so they land together at the index's right edge.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "ix_order_intents_strategy_symbol_bar_time"
_NEW = "ix_order_intents_created_at"


def upgrade() -> None:
    op.drop_index(_OLD, table_name="order_intents")
    op.create_index(_NEW, "order_intents", ["created_at"])


def downgrade() -> None:
    op.drop_index(_NEW, table_name="order_intents")
    op.create_index(_OLD, "order_intents", ["strategy", "symbol", "bar_time"])
