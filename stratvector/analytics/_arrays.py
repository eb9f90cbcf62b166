"""Input handling shared by every metric: one place decides shapes, dtypes and NaN.

Conventions (the same for every scalar metric in :mod:`stratvector.analytics`):

- Input is one-dimensional: a numpy array, a pandas Series, a one-column DataFrame or
  a sequence of floats. It is converted to a float64 numpy array; pandas stays at the
  edge.
- NaN values are dropped before a scalar metric is computed. That removes the leading
  NaN of ``pct_change`` or :func:`~stratvector.analytics.returns_from_equity` and the
  warm-up of a strategy; an interior NaN (a missing observation) is dropped too, so the
  metric is computed over the observed periods only.
- Too little data never raises: a metric that is undefined for the input (empty,
  all-NaN, one value where a deviation is needed, zero dispersion) returns NaN.
- Wrong shapes and out-of-range parameters raise
  :class:`~stratvector.errors.StratVectorError` with a message that says what would be
  accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from stratvector.errors import StratVectorError

ArrayLike: TypeAlias = np.ndarray | pd.Series | pd.DataFrame | Sequence[float]
"""Anything a metric accepts as a 1-D series of numbers."""

FloatArray: TypeAlias = np.ndarray
"""A 1-D float64 numpy array."""


def to_1d(values: ArrayLike, name: str = "returns") -> FloatArray:
    """``values`` as a 1-D float64 array (NaN kept); a one-column DataFrame is squeezed."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise StratVectorError(
                f"{name}: expected one column of values, got a DataFrame with "
                f"{values.shape[1]} columns ({', '.join(map(str, values.columns[:5]))}); "
                "pass one column, e.g. frame['close']"
            )
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise StratVectorError(f"{name}: values are not numeric: {exc}") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise StratVectorError(
            f"{name}: expected a 1-D series of values, got an array of shape {arr.shape}"
        )
    return arr


def clean(values: ArrayLike, name: str = "returns") -> FloatArray:
    """``values`` as a 1-D float64 array with every NaN removed (no copy when none)."""
    arr = to_1d(values, name)
    nan = np.isnan(arr)
    if nan.any():
        return arr[~nan]
    return arr


def check_periods_per_year(periods_per_year: float) -> float:
    """Return ``periods_per_year`` as a float, or raise if it is not a positive number."""
    ppy = float(periods_per_year)
    if not np.isfinite(ppy) or ppy <= 0:
        raise StratVectorError(
            f"periods_per_year must be a positive number (252 for daily bars), "
            f"got {periods_per_year!r}"
        )
    return ppy


def tail_probability(level: float) -> float:
    """The tail probability ``1 - level`` of a confidence level in (0, 1).

    It is rounded to 12 decimals so that ``level=0.95`` gives exactly the float ``0.05``
    (``1 - 0.95`` is ``0.050000000000000044``); the historical CVaR takes an integer
    number of tail observations from it, and an error in the last bit could change it.
    """
    lvl = float(level)
    if not 0.0 < lvl < 1.0:
        raise StratVectorError(
            f"confidence level must be strictly between 0 and 1 (e.g. 0.95), got {level!r}"
        )
    return round(1.0 - lvl, 12)


def is_constant(arr: FloatArray) -> bool:
    """True when a non-empty array holds one repeated value (exact comparison).

    Used instead of ``std == 0``: the mean of identical floats can differ from them in
    the last bit, leaving a standard deviation of about 1e-18 instead of 0.
    """
    return arr.size > 0 and bool(arr.max() == arr.min())
