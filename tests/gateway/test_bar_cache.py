"""The Parquet bar cache: coverage, merging, atomic writes, and bad files."""

from __future__ import annotations

import logging
import os

import pandas as pd
import pytest

from stratvector.data import load_csv, sample_path, synthetic_bars
from stratvector.data.cache import (
    BarCache,
    canonical_bar_size,
    merge_ranges,
    missing_ranges,
)
from stratvector.errors import DataError

DAY = pd.Timedelta(days=1)


@pytest.fixture
def aapl() -> pd.DataFrame:
    return load_csv(sample_path("AAPL"))


def window(bars: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    t = bars.index
    return bars[(t >= pd.Timestamp(start, tz="UTC")) & (t <= pd.Timestamp(end, tz="UTC"))]


def test_constructor_does_no_io(tmp_path):
    cache = BarCache(tmp_path / "cache")
    assert cache.get("AAPL", "1d", "2014-01-01", "2014-12-31") is None
    assert not (tmp_path / "cache").exists()


def test_put_then_get_returns_the_same_bars(tmp_path, aapl):
    cache = BarCache(tmp_path)
    part = window(aapl, "2014-01-01", "2014-12-31")
    cache.put("AAPL", "1d", part, "2014-01-01", "2014-12-31")
    assert cache.path("AAPL", "1d") == tmp_path / "1d" / "AAPL.parquet"
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", "2014-01-01", "2014-12-31"), part)
    pd.testing.assert_frame_equal(
        cache.get("AAPL", "1d", "2014-03-03", "2014-03-31"),
        window(aapl, "2014-03-03", "2014-03-31"),
    )
    assert cache.get("AAPL", "1d", "2013-12-01", "2014-03-31") is None  # starts too early
    assert cache.get("AAPL", "1d", "2014-06-01", "2015-01-02") is None  # ends too late
    assert cache.get("MSFT", "1d", "2014-06-01", "2014-06-30") is None
    assert cache.get("AAPL", "1h", "2014-06-01", "2014-06-30") is None


def test_a_covered_range_without_bars_is_empty_not_missing(tmp_path, aapl):
    cache = BarCache(tmp_path)
    cache.put("AAPL", "1d", window(aapl, "2014-12-01", "2014-12-31"), "2014-12-01", "2014-12-31")
    holiday = cache.get("AAPL", "1d", "2014-12-25", "2014-12-25")
    assert holiday is not None and holiday.empty
    assert list(holiday.columns) == ["open", "high", "low", "close", "volume"]
    cache.put("AAPL", "1d", aapl.iloc[0:0], "2015-01-01", "2015-01-01 23:59")  # known empty
    assert cache.get("AAPL", "1d", "2015-01-01", "2015-01-01").empty
    # both ends are inclusive instants: [Dec 1, Dec 31] ends at Dec 31 00:00
    assert cache.get("AAPL", "1d", "2014-12-24", "2015-01-01") is None


def test_put_merges_coverage_and_new_bars_win(tmp_path, aapl):
    cache = BarCache(tmp_path)
    cache.put("AAPL", "1d", window(aapl, "2014-01-01", "2014-06-30"), "2014-01-01", "2014-06-30")
    cache.put("AAPL", "1d", window(aapl, "2014-10-01", "2014-12-31"), "2014-10-01", "2014-12-31")
    gaps = cache.missing("AAPL", "1d", "2014-01-01", "2014-12-31")
    assert gaps == [
        (
            pd.Timestamp("2014-06-30", tz="UTC") + pd.Timedelta(1, "ns"),
            pd.Timestamp("2014-09-30 23:59:59.999999999", tz="UTC"),
        )
    ]
    # a revised copy of the middle, overlapping both ends: the new values replace the old
    revised = window(aapl, "2014-06-01", "2014-10-31").copy()
    revised[["open", "high", "low", "close"]] *= 2
    cache.put("AAPL", "1d", revised, "2014-06-01", "2014-10-31")
    got = cache.get("AAPL", "1d", "2014-01-01", "2014-12-31")
    want = pd.concat(
        [
            window(aapl, "2014-01-01", "2014-05-31"),
            revised,
            window(aapl, "2014-11-01", "2014-12-31"),
        ]
    )
    pd.testing.assert_frame_equal(got, want)
    assert cache.coverage("AAPL", "1d") == [
        (pd.Timestamp("2014-01-01", tz="UTC"), pd.Timestamp("2014-12-31", tz="UTC"))
    ]


def test_new_coverage_replaces_bars_the_source_no_longer_has(tmp_path, aapl):
    cache = BarCache(tmp_path)
    cache.put("AAPL", "1d", window(aapl, "2014-01-01", "2014-01-31"), "2014-01-01", "2014-01-31")
    fewer = window(aapl, "2014-01-01", "2014-01-31").drop(pd.Timestamp("2014-01-15", tz="UTC"))
    cache.put("AAPL", "1d", fewer, "2014-01-01", "2014-01-31")
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", "2014-01-01", "2014-01-31"), fewer)


def test_bars_outside_the_covered_range_are_refused(tmp_path, aapl):
    cache = BarCache(tmp_path)
    with pytest.raises(DataError, match="not all inside the covered range"):
        cache.put(
            "AAPL", "1d", window(aapl, "2014-01-01", "2014-02-28"), "2014-01-01", "2014-01-31"
        )
    with pytest.raises(DataError, match="before its start"):
        cache.get("AAPL", "1d", "2014-02-01", "2014-01-01")
    assert not cache.path("AAPL", "1d").exists()


def test_invalid_bars_are_refused_naming_the_row(tmp_path, aapl):
    bad = window(aapl, "2014-01-01", "2014-01-31").copy()
    bad.iloc[3, bad.columns.get_loc("high")] = 1.0
    with pytest.raises(DataError, match="high below"):
        BarCache(tmp_path).put("AAPL", "1d", bad, "2014-01-01", "2014-01-31")


def test_bar_sizes_are_normalized_and_symbols_are_safe_file_names(tmp_path):
    assert canonical_bar_size("1 day") == canonical_bar_size("1d") == "1d"
    assert canonical_bar_size("5 mins") == "5min"
    assert canonical_bar_size("1 hour") == "1h"
    assert canonical_bar_size("30 secs") == "30s"
    cache = BarCache(tmp_path)
    assert cache.path("BRK B", "1 day") == tmp_path / "1d" / "BRK%20B.parquet"
    assert cache.path("../x", "1d").parent == tmp_path / "1d"
    with pytest.raises(DataError):
        cache.path("", "1d")


def test_intraday_bars_round_trip(tmp_path):
    bars = synthetic_bars(500, freq="5min", start="2024-01-02 14:30")
    cache = BarCache(tmp_path)
    cache.put("SYN", "5min", bars, bars.index[0], bars.index[-1])
    got = cache.get("SYN", "5 mins", bars.index[10], bars.index[20])
    assert got is not None and len(got) == 11
    assert got.index[0] == bars.index[10] and str(got.index.tz) == "UTC"


def test_a_corrupt_file_is_a_logged_miss_and_is_overwritten(tmp_path, aapl, caplog):
    cache = BarCache(tmp_path)
    p = cache.path("AAPL", "1d")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"garbage, not parquet")
    with caplog.at_level(logging.WARNING, logger="stratvector.data.cache"):
        assert cache.get("AAPL", "1d", "2014-01-01", "2014-01-31") is None
    assert "unreadable" in caplog.text and str(p) in caplog.text
    part = window(aapl, "2014-01-01", "2014-01-31")
    cache.put("AAPL", "1d", part, "2014-01-01", "2014-01-31")
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", "2014-01-01", "2014-01-31"), part)


def test_a_parquet_file_without_a_coverage_record_is_a_miss(tmp_path, aapl):
    cache = BarCache(tmp_path)
    p = cache.path("AAPL", "1d")
    p.parent.mkdir(parents=True)
    window(aapl, "2014-01-01", "2014-01-31").to_parquet(p)  # bars, but no coverage record
    assert cache.get("AAPL", "1d", "2014-01-02", "2014-01-03") is None


def test_writes_are_atomic(tmp_path, aapl, monkeypatch):
    cache = BarCache(tmp_path)
    first = window(aapl, "2014-01-01", "2014-01-31")
    cache.put("AAPL", "1d", first, "2014-01-01", "2014-01-31")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(DataError, match="disk full"):
        cache.put(
            "AAPL", "1d", window(aapl, "2014-02-01", "2014-02-28"), "2014-02-01", "2014-02-28"
        )
    monkeypatch.undo()
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", "2014-01-01", "2014-01-31"), first)
    assert cache.get("AAPL", "1d", "2014-02-03", "2014-02-28") is None
    assert [f.name for f in cache.path("AAPL", "1d").parent.iterdir()] == ["AAPL.parquet"]


def test_range_helpers():
    assert merge_ranges([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]) == [(1, 4), (5, 9)]
    covered = [(1, 4), (5, 9)]
    assert missing_ranges(covered, 0, 12) == [(0, 1), (4, 5), (9, 12)]
    assert missing_ranges(covered, 2, 4) == []
    assert missing_ranges(covered, 3, 6) == [(4, 5)]
    assert missing_ranges([], 3, 6) == [(3, 6)]
