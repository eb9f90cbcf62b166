"""The order ref: the deterministic IB ``orderRef`` that names an order intent.

Format ``sv1|<strategy>|<symbol>|<bar start, UTC, YYYYmmddTHHMMSSZ>[|<leg>]``. No I/O:
the gateway makes a ref before it journals the intent (see :mod:`stratvector.store.orders`
for the write-ahead protocol) and parses the refs IB reports back to tell its own orders
from those placed by hand.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from stratvector.store._types import to_utc

__all__ = ["ORDER_REF_PREFIX", "OrderRefParts", "make_order_ref", "parse_order_ref"]

ORDER_REF_PREFIX = "sv1"
_SEP = "|"


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
    parts = [ORDER_REF_PREFIX, strategy, symbol, _stamp(bar_time)]
    if leg is not None:
        parts.append(leg)
    for name, value in (("strategy", strategy), ("symbol", symbol), ("leg", leg)):
        if value is not None and (not value or _SEP in value or value != value.strip()):
            raise ValueError(f"{name} {value!r} cannot go in an order ref (empty, '|' or spaces)")
    ref = _SEP.join(parts)
    if len(ref) > 255:
        raise ValueError(f"order ref longer than 255 characters: {ref!r}")
    return ref


@functools.lru_cache(maxsize=256)
def _stamp(bar_time: datetime) -> str:
    """A bar time as refs write it (every order of a decision shares its bar time: the
    conversion and formatting run once per bar, not once per order)."""
    return to_utc(bar_time, "bar_time").strftime("%Y%m%dT%H%M%SZ")


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
