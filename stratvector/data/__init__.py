"""Bars: the schema, loaders for CSV and Parquet, validation, resampling, sample data."""

from stratvector.data.loaders import (
    find_symbol_file,
    load_bars,
    load_csv,
    load_parquet,
    load_symbols,
    slice_bars,
    symbols_in,
)
from stratvector.data.resample import parse_bar_size, periods_per_year, resample_bars
from stratvector.data.sample import SAMPLE_DIR, SAMPLE_SYMBOLS, sample_path
from stratvector.data.schema import BAR_COLUMNS, validate_bars
from stratvector.data.synthetic import synthetic_bars

__all__ = [
    "BAR_COLUMNS",
    "SAMPLE_DIR",
    "SAMPLE_SYMBOLS",
    "find_symbol_file",
    "load_bars",
    "load_csv",
    "load_parquet",
    "load_symbols",
    "parse_bar_size",
    "periods_per_year",
    "resample_bars",
    "sample_path",
    "slice_bars",
    "symbols_in",
    "synthetic_bars",
    "validate_bars",
]
