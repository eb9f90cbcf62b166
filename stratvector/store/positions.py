"""Net positions from a sequence of fills (pure functions, no database).

Average-cost method, per (strategy, symbol):

- A fill that adds to the position (or opens it) moves the average cost to the
  quantity-weighted mean of the old average and the fill price.
- A fill that reduces the position realizes ``closed_qty * (price - avg_cost)`` for a long
  (the negative of that for a short) and leaves the average cost unchanged.
- A fill larger than the position closes it and opens the remainder on the other side at
  the fill price (a flip).

``avg_cost`` and ``realized_pnl`` exclude commissions (which are summed apart in
``commission``), so they compare with the backtester's trade prices; IB's own
``avgCost`` includes commissions. Prices are per share, no contract multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stratvector.store.models import QTY_EPS


@dataclass(frozen=True, slots=True)
class FillLike:
    """The part of a fill that positions depend on (fills must come in time order)."""

    strategy: str | None
    symbol: str
    side: str  # BUY | SELL
    quantity: float  # > 0
    price: float
    time: datetime
    commission: float | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """A net position. ``strategy`` is ``None`` for fills not attributed to a strategy
    (orders placed by hand). ``avg_cost`` is ``None`` when flat."""

    strategy: str | None
    symbol: str
    quantity: float
    avg_cost: float | None
    realized_pnl: float
    commission: float
    fills: int
    last_fill_time: datetime | None

    @property
    def flat(self) -> bool:
        return abs(self.quantity) <= QTY_EPS

    @property
    def cost_basis(self) -> float:
        """``quantity * avg_cost`` (negative for shorts); 0 when flat."""
        return 0.0 if self.avg_cost is None else self.quantity * self.avg_cost


class _Book:
    __slots__ = ("avg", "commission", "fills", "last", "qty", "realized")

    def __init__(self) -> None:
        self.qty = 0.0
        self.avg = 0.0
        self.realized = 0.0
        self.commission = 0.0
        self.fills = 0
        self.last: datetime | None = None

    def apply(self, fill: FillLike) -> None:
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        self.fills += 1
        self.last = fill.time
        if fill.commission is not None and math.isfinite(fill.commission):
            self.commission += fill.commission
        if abs(self.qty) <= QTY_EPS or (self.qty > 0) == (signed > 0):
            new_qty = self.qty + signed
            self.avg = (abs(self.qty) * self.avg + abs(signed) * fill.price) / abs(new_qty)
            self.qty = new_qty
            return
        closed = min(abs(self.qty), abs(signed))
        direction = 1.0 if self.qty > 0 else -1.0
        self.realized += closed * (fill.price - self.avg) * direction
        self.qty += signed
        if abs(self.qty) <= QTY_EPS:
            self.qty, self.avg = 0.0, 0.0
        elif (self.qty > 0) != (direction > 0):
            self.avg = fill.price  # flipped: the remainder opened at this fill's price


def net_positions(fills: Iterable[FillLike], include_flat: bool = False) -> list[Position]:
    """Positions per (strategy, symbol), sorted by strategy then symbol."""
    books: dict[tuple[str | None, str], _Book] = {}
    for fill in fills:
        books.setdefault((fill.strategy, fill.symbol), _Book()).apply(fill)
    out = []
    for (strategy, symbol), b in sorted(books.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        flat = abs(b.qty) <= QTY_EPS
        if flat and not include_flat:
            continue
        out.append(
            Position(
                strategy=strategy,
                symbol=symbol,
                quantity=0.0 if flat else b.qty,
                avg_cost=None if flat else b.avg,
                realized_pnl=b.realized,
                commission=b.commission,
                fills=b.fills,
                last_fill_time=b.last,
            )
        )
    return out
