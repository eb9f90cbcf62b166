"""Real daily returns from the bundled sample data, shared by the analytics tests."""

from __future__ import annotations

import pandas as pd
import pytest

from stratvector.data import load_csv, sample_path

SYMBOLS = ("AAPL", "NVDA", "SP500")


def _close_returns(symbol: str) -> pd.Series:
    """Daily simple returns of the close, with the leading NaN of pct_change kept."""
    return load_csv(sample_path(symbol))["close"].pct_change()


@pytest.fixture(scope="session")
def raw_returns() -> dict[str, pd.Series]:
    """symbol -> daily close-to-close simple returns (first value NaN)."""
    return {sym: _close_returns(sym) for sym in SYMBOLS}


@pytest.fixture(scope="session", params=SYMBOLS)
def real_returns(request: pytest.FixtureRequest, raw_returns: dict[str, pd.Series]) -> pd.Series:
    """Clean daily returns (NaN dropped) of each of AAPL, NVDA and the S&P 500 index."""
    return raw_returns[request.param].dropna()


@pytest.fixture(scope="session")
def aapl_vs_sp500(raw_returns: dict[str, pd.Series]) -> tuple[pd.Series, pd.Series]:
    """AAPL and S&P 500 daily returns on their common dates, both present."""
    both = pd.concat([raw_returns["AAPL"], raw_returns["SP500"]], axis=1, join="inner").dropna()
    return both.iloc[:, 0], both.iloc[:, 1]
