"""An order intent's values, checked before they are journaled.

No I/O. :class:`Intent` is what a strategy's decision asks to journal;
:func:`intent_values` validates and normalizes it into the ``order_intents`` row;
:func:`differences` says how a journaled intent differs from a new one with the same
order ref (the conflict :class:`~stratvector.store.errors.IntentConflictError` reports).
The write itself is :meth:`stratvector.store.orders.Orders.record_intents`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratvector.store._types import jsonable, normalize_side, opt_float, opt_utc, to_utc, utc_now
from stratvector.store.models import OrderIntent

__all__ = ["INTENT_FIELDS", "INTENT_IDENTITY", "Intent", "differences", "intent_values"]

INTENT_IDENTITY = (
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
"""The values that define the order an order ref names: an intent journaled again under
the same ref must match on all of them (``target``, ``detail`` and ``created_at`` may
differ)."""
INTENT_FIELDS = ("order_ref", *INTENT_IDENTITY, "target", "detail", "created_at")
"""The ``order_intents`` columns an intent is written with (all but ``id``): the keys of
:func:`intent_values` and the intent's part of an
:class:`~stratvector.store.order_records.OrderRecord`."""


@dataclass(frozen=True, slots=True)
class Intent:
    """One order intent to journal (the arguments of
    :meth:`~stratvector.store.orders.Orders.record_intent`)."""

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


def intent_values(i: Intent, now: datetime | None = None) -> dict[str, Any]:
    """The row of an intent (keyed by :data:`INTENT_FIELDS`), validated and normalized:
    side BUY/SELL (IB's BOT/SLD accepted), order type and time in force upper case,
    times UTC, non-finite prices and target ``None``, ``created_at`` ``now`` (a UTC
    time; default: the current time) if not given.

    Raises ``ValueError`` naming the bad value: a side other than BUY/SELL, a quantity
    that is not a finite number > 0, a limit order without ``limit_price``, a stop or
    trailing order without ``stop_price``, a naive time.
    """
    side = normalize_side(i.side)
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
        "limit_price": opt_float(i.limit_price),
        "stop_price": opt_float(i.stop_price),
        "time_in_force": i.time_in_force.strip().upper(),
        "account": i.account,
        "target": opt_float(i.target),
        "detail": jsonable(i.detail),
        "created_at": opt_utc(i.created_at, "created_at") or now or utc_now(),
    }


def differences(intent: OrderIntent, values: dict[str, Any]) -> list[str]:
    """How the journaled ``intent`` differs from ``values`` (a row from
    :func:`intent_values`) on :data:`INTENT_IDENTITY`, one ``"name: journaled ..., now
    ..."`` per value; empty when they name the same order."""
    out = []
    for name in INTENT_IDENTITY:
        old, new = getattr(intent, name), values[name]
        if old != new:
            out.append(f"{name}: journaled {old!r}, now {new!r}")
    return out


def _positive(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
