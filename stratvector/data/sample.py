"""The real daily bars bundled with the package (see ``sample/DATA.md`` for attribution)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR: Path = Path(__file__).with_name("sample")
SAMPLE_SYMBOLS: tuple[str, ...] = ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA")
SP500_INDEX_FILE: Path = SAMPLE_DIR / "SP500_index_1d.csv"


def sample_path(symbol: str) -> Path:
    """Path of the bundled daily bar file for ``symbol`` (``SP500`` for the index)."""
    if symbol.upper() in ("SP500", "SPX", "SP500_INDEX"):
        return SP500_INDEX_FILE
    return SAMPLE_DIR / f"{symbol.upper()}_1d.csv"
