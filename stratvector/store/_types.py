"""Column types and value helpers shared by the models and the repositories.

- :class:`UTCDateTime` stores instants as UTC. It refuses naive datetimes (a naive
  time is ambiguous and is always a bug upstream) and always returns tz-aware UTC,
  on SQLite (which has no time zone type) as on PostgreSQL (``timestamptz``).
- :data:`JSONType` is ``JSON`` on SQLite and ``JSONB`` on PostgreSQL.
- :func:`jsonable` turns numpy scalars, datetimes, paths, sets and non-finite floats
  into plain JSON values (NaN and +/-inf become ``null``; PostgreSQL's JSONB rejects
  them and SQLite's JSON functions do too).
- :func:`to_utc`, :func:`opt_utc`, :func:`opt_float` and :func:`normalize_side` check and
  normalize the values the repositories write.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")

SIDES = ("BUY", "SELL")
"""The sides an intent or a fill is stored with."""


def utc_now() -> datetime:
    """The current instant, tz-aware UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime, name: str = "time") -> datetime:
    """Return ``value`` as a tz-aware UTC ``datetime``.

    Accepts ``datetime`` and its subclasses (``pandas.Timestamp``). Raises ``ValueError``
    for naive values and ``TypeError`` for anything else.
    """
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp; keeps the import optional
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be tz-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def opt_utc(value: datetime | None, name: str = "time") -> datetime | None:
    """:func:`to_utc`, passing ``None`` through."""
    return None if value is None else to_utc(value, name)


def opt_float(value: float | None) -> float | None:
    """``value`` as a ``float``; ``None`` for ``None`` and for NaN and +/-inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def normalize_side(side: str) -> str:
    """``BUY`` or ``SELL`` from either, in any case, or from IB's execution sides
    ``BOT``/``SLD``; ``ValueError`` for anything else."""
    value = {"BOT": "BUY", "SLD": "SELL"}.get(side.strip().upper(), side.strip().upper())
    if value not in SIDES:
        raise ValueError(f"side must be BUY or SELL (or IB's BOT/SLD), not {side!r}")
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in tz-aware and comes out tz-aware UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = to_utc(value)
        if dialect.name == "sqlite":
            # SQLite stores text without an offset: store UTC wall time.
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the stored text in one step: what :meth:`process_bind_param` and
        SQLite's ``DATETIME`` (``YYYY-MM-DD HH:MM:SS.ffffff``) give, at a third of the
        cost (a bar's intents carry two times each). Elsewhere, SQLAlchemy's chain."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if type(value) is not datetime or value.tzinfo is not UTC:
                value = to_utc(value)  # checks it, and converts any other zone
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def jsonable(value: Any) -> Any:
    """A deep copy of ``value`` made of dict/list/str/int/float/bool/None only.

    Non-finite floats become ``None``; datetimes become ISO 8601 strings (UTC when
    tz-aware); numpy scalars and arrays become Python numbers and lists; dataclasses
    and mappings become dicts with string keys. Raises ``TypeError`` for other objects.
    """
    kind = type(value)
    if kind is float:  # the exact built-in types first: most values are these
        return value if math.isfinite(value) else None
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return jsonable(float(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if hasattr(value, "item"):
        return jsonable(value.item())
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def dumps(value: Any) -> str:
    """Strict JSON text for the engine (no NaN, keys sorted for stable hashes)."""
    return json.dumps(jsonable(value), allow_nan=False, sort_keys=True, separators=(",", ":"))
