"""Shared fixtures: the real bundled AAPL daily bars and a small synthetic frame."""

from __future__ import annotations

import pandas as pd
import pytest

from stratvector.data import load_csv, sample_path, synthetic_bars


@pytest.fixture(scope="session")
def aapl() -> pd.DataFrame:
    return load_csv(sample_path("AAPL"))


@pytest.fixture(scope="session")
def small_bars() -> pd.DataFrame:
    return synthetic_bars(240, seed=7)
