"""What ``stratvector positions | orders | halt | resume`` do, minus argument parsing.

Each function takes an open :class:`~stratvector.store.engine.Journal` and returns plain
data (rows as dicts with JSON-friendly values, for ``--json``) or the one line to print.
:func:`render_table` turns rows into aligned text. The CLI opens the journal with
``Journal(url, migrate=False)`` for the read commands if it must never change the
schema, and turns :class:`~stratvector.errors.StratVectorError` into exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stratvector.store.control import GLOBAL, default_actor
from stratvector.store.engine import Journal

POSITION_COLUMNS = (
    "strategy",
    "symbol",
    "quantity",
    "avg_cost",
    "cost_basis",
    "realized_pnl",
    "commission",
    "fills",
    "last_fill_time",
)
ORDER_COLUMNS = (
    "created_at",
    "strategy",
    "symbol",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "status",
    "filled",
    "avg_fill_price",
    "ib_order_id",
    "perm_id",
    "order_ref",
)


def positions_rows(
    journal: Journal, *, strategy: str | None = None, include_flat: bool = False
) -> list[dict[str, Any]]:
    """Net positions from the journal's fills, one row per (strategy, symbol)."""
    rows = []
    for p in journal.fills.positions(strategy, include_flat=include_flat):
        rows.append(
            {
                "strategy": p.strategy,
                "symbol": p.symbol,
                "quantity": p.quantity,
                "avg_cost": p.avg_cost,
                "cost_basis": p.cost_basis,
                "realized_pnl": p.realized_pnl,
                "commission": p.commission,
                "fills": p.fills,
                "last_fill_time": _iso(p.last_fill_time),
            }
        )
    return rows


def orders_rows(
    journal: Journal,
    *,
    open_only: bool = False,
    strategy: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    limit: int | None = 50,
) -> list[dict[str, Any]]:
    """Orders newest first (``open_only``: the ones not known to be finished)."""
    records = journal.orders.list_orders(
        open_only=open_only, strategy=strategy, symbol=symbol, since=since, limit=limit
    )
    return [
        {
            "created_at": _iso(o.created_at),
            "strategy": o.strategy,
            "symbol": o.symbol,
            "side": o.side,
            "quantity": o.quantity,
            "order_type": o.order_type,
            "limit_price": o.limit_price,
            "stop_price": o.stop_price,
            "status": o.status,
            "filled": o.filled,
            "avg_fill_price": o.avg_fill_price,
            "ib_order_id": o.ib_order_id,
            "perm_id": o.perm_id,
            "order_ref": o.order_ref,
        }
        for o in records
    ]


def halt(
    journal: Journal, reason: str, *, actor: str | None = None, strategy: str | None = None
) -> str:
    """Set the kill switch (everything, or one strategy); returns the line to print."""
    state = journal.control.halt(reason, actor=actor or default_actor(), scope=strategy or GLOBAL)
    what = "all trading" if state.scope == GLOBAL else f"strategy {state.scope}"
    return f"halted {what} ({state.reason}) by {state.actor} at {_iso(state.changed_at)}"


def resume(
    journal: Journal,
    *,
    actor: str | None = None,
    strategy: str | None = None,
    reason: str | None = None,
) -> str:
    """Clear the kill switch (everything, or one strategy); returns the line to print.

    Resuming everything does not clear halts set on single strategies; the message
    lists the ones still halted.
    """
    scope = strategy or GLOBAL
    before = journal.control.state(scope)
    state = journal.control.resume(actor=actor or default_actor(), reason=reason, scope=scope)
    what = "all trading" if scope == GLOBAL else f"strategy {scope}"
    line = (
        f"resumed {what} by {state.actor} at {_iso(state.changed_at)}"
        if before.halted
        else f"{what} was not halted; recorded a resume by {state.actor}"
    )
    still = [h.scope for h in journal.control.halted_scopes()]
    if still:
        line += f"; still halted: {', '.join(still)}"
    return line


def halt_status(journal: Journal) -> str:
    """One line: running, or what is halted, why and by whom."""
    halted = journal.control.halted_scopes()
    if not halted:
        return "trading enabled (no halt set)"
    parts = [
        f"{'all trading' if h.scope == GLOBAL else h.scope}: {h.reason} "
        f"(by {h.actor} at {_iso(h.changed_at)})"
        for h in halted
    ]
    return "halted - " + "; ".join(parts)


def render_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    empty: str = "(none)",
) -> str:
    """Rows as left/right-aligned plain text (numbers right-aligned, ``-`` for None)."""
    if not rows:
        return empty
    cols = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    numeric = [all(_is_number(r.get(c)) for r in rows) for c in cols]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths]), *map(line, cells)])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)
