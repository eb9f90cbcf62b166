"""Calendar tables of returns (pandas in, pandas out: these are for reports)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratvector.errors import StratVectorError

MONTH_COLUMNS: tuple[int, ...] = tuple(range(1, 13))


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded returns by calendar month: one row per year, columns ``1..12`` and ``year``.

    Cell ``(y, m)`` is ``prod(1 + r) - 1`` over the periods of month ``m`` of year ``y``
    (a fraction, e.g. 0.021 = +2.1 %); ``year`` is the same over the whole calendar
    year, i.e. the months compounded, not summed. Months are those of the index in its
    own timezone (UTC for project data). A month with no (non-NaN) return is NaN, and
    so is a year with none. Empty input gives an empty table with the same columns.

    ``returns`` must be a pandas Series of simple returns with a DatetimeIndex. The
    table's index holds the years as integers; its columns are named ``month``.
    """
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        raise StratVectorError(
            "monthly_returns needs a pandas Series of returns with a DatetimeIndex "
            f"(got {type(returns).__name__}"
            + (f" with a {type(returns.index).__name__}" if hasattr(returns, "index") else "")
            + ")"
        )
    growth = 1.0 + returns.astype(np.float64)
    years = returns.index.year
    by_month = growth.groupby([years, returns.index.month]).prod(min_count=1) - 1.0
    table = by_month.unstack()
    table = table.reindex(columns=list(MONTH_COLUMNS))
    table["year"] = growth.groupby(years).prod(min_count=1) - 1.0
    table.index = table.index.astype(np.int64)
    table.index.name = None
    table.columns.name = "month"
    return table
