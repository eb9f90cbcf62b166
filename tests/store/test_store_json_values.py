"""What the journal stores for values: :func:`jsonable` and :func:`dumps` turn every value
a detail may hold into plain JSON, the exact built-in types (taken first, without the
general checks) exactly as their subclasses and look-alikes; :class:`UTCDateTime` writes
on SQLite the text SQLAlchemy's own ``DATETIME`` writes."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from stratvector.store._types import UTCDateTime, dumps, jsonable


class Side(enum.Enum):
    BUY = "BUY"


class Size(enum.IntEnum):
    LOT = 100


@dataclasses.dataclass
class Exit:
    stop: float
    legs: tuple[str, ...]


def test_plain_values_and_non_finite_floats() -> None:
    assert jsonable(None) is None
    assert jsonable(True) is True
    assert jsonable("x") == "x"
    assert jsonable(3) == 3
    assert jsonable(2.5) == 2.5
    for bad in (math.nan, math.inf, -math.inf):
        assert jsonable(bad) is None


def test_nested_dicts_lists_and_keys() -> None:
    value = {"a": {"b": [1.0, math.nan, {"c": math.inf}]}, 7: (1, 2), "s": {3, 1, 2}}
    assert jsonable(value) == {"a": {"b": [1.0, None, {"c": None}]}, "7": [1, 2], "s": [1, 2, 3]}


def test_subclasses_and_look_alikes_give_what_the_built_ins_give() -> None:
    ordered = OrderedDict([("x", np.float64(1.5)), ("y", np.float64("nan"))])
    assert jsonable(ordered) == {"x": 1.5, "y": None}
    assert jsonable(np.int64(4)) == 4 and type(jsonable(np.int64(4))) is int
    assert jsonable(np.array([1.0, np.inf])) == [1.0, None]
    assert jsonable(Size.LOT) == 100 and type(jsonable(Size.LOT)) is int
    assert jsonable(Side.BUY) == "BUY"
    assert jsonable(Decimal("0.1")) == 0.1
    assert jsonable(Decimal("NaN")) is None
    assert jsonable(Exit(math.nan, ("stop", "target"))) == {
        "stop": None,
        "legs": ["stop", "target"],
    }
    assert jsonable(PurePosixPath("/a/b")) == "/a/b"


def test_times_are_utc_iso_text() -> None:
    east = timezone(timedelta(hours=2))
    assert jsonable(datetime(2024, 1, 2, 12, 0, tzinfo=east)) == "2024-01-02T10:00:00+00:00"
    assert jsonable(datetime(2024, 1, 2, 12, 0, tzinfo=UTC)) == "2024-01-02T12:00:00+00:00"
    assert jsonable(date(2024, 1, 2)) == "2024-01-02"


def test_other_objects_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cannot store object"):
        jsonable({"x": object()})


def test_dumps_is_strict_sorted_and_compact() -> None:
    text = dumps({"b": math.nan, "a": [1.0, 2]})
    assert text == '{"a":[1.0,2],"b":null}'
    assert json.loads(text) == {"a": [1.0, 2], "b": None}
    assert "NaN" not in dumps(np.array([np.nan]))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), UTC]),
    )
)
def test_utc_times_are_stored_on_sqlite_as_sqlalchemy_stores_them(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    standard = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and standard is not None
    assert ours(value) == standard(value.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None


def test_naive_times_are_refused_on_the_fast_path_too() -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    with pytest.raises(ValueError, match="tz-aware"):
        ours(datetime(2024, 1, 2))
    assert ours(pd.Timestamp("2024-01-02 05:00", tz="America/New_York")) == (
        "2024-01-02 10:00:00.000000"
    )
