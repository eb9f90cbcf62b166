"""Saved runs: round trip, listing, atomic saves, journal mirroring, NaN metrics."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratvector import __version__
from stratvector.backtest import run
from stratvector.backtest import runs as runs_mod
from stratvector.backtest.runs import (
    RunStoreError,
    backtest_run_payload,
    code_version_info,
    list_runs,
    load_run,
    mirror_run,
    save_run,
)
from stratvector.data import synthetic_bars
from stratvector.errors import StratVectorError
from stratvector.store import Journal
from stratvector.strategy.registry import builtin_strategies

CONFIG = {"strategy": {"name": "momentum"}, "parameters": {"lookback": 20}}


@pytest.fixture(scope="module")
def backtest():
    return run(builtin_strategies()["momentum"], synthetic_bars(600, seed=4))


def _results_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"lookback": [10, 20, 40], "sharpe": [0.5, np.nan, 1.1], "label": ["a", "b", "c"]}
    )


def _save(runs_dir: Path, kind: str = "backtest", **kw):
    kw.setdefault("config", CONFIG)
    kw.setdefault("code_version", "test")
    return save_run(kind, runs_dir=runs_dir, **kw)


def test_backtest_round_trip(tmp_path, backtest):
    metrics, tables = backtest_run_payload(backtest)
    assert set(tables) == {"equity", "trades", "orders"}
    info = save_run(
        "backtest",
        config=CONFIG,
        symbols=backtest.symbols,
        data_start=backtest.index[0],
        data_end=backtest.index[-1],
        metrics=metrics,
        tables=tables,
        runs_dir=tmp_path / "runs",
        extra={"note": "round trip"},
    )
    assert info.path.parent == tmp_path / "runs" and info.path.is_dir()
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-backtest-[0-9a-f]{8}", info.id)
    loaded = load_run(info.path)
    assert loaded.info == info
    assert loaded.info.symbols == ("ASSET",)
    assert loaded.info.data_start == backtest.index[0]
    assert loaded.info.data_end == backtest.index[-1]
    assert loaded.info.config == CONFIG and loaded.info.extra == {"note": "round trip"}
    assert loaded.info.metrics["sharpe"] == pytest.approx(metrics["sharpe"])
    assert loaded.info.code_version.startswith(__version__)
    assert set(loaded.tables) == {"equity", "trades", "orders"} and len(loaded.tables) == 3
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(loaded.tables[name], frame, check_freq=False)
    assert loaded.table("equity") is loaded.tables["equity"]  # cached after the first read
    assert loaded.tables.get("nope") is None and "nope" not in loaded.tables
    with pytest.raises(RunStoreError, match="no table 'nope'"):
        loaded.table("nope")
    assert load_run(info.path / "run.json").info == info


def test_tables_load_lazily(tmp_path, monkeypatch):
    info = _save(tmp_path, tables={"results": _results_table(), "equity": pd.Series([1.0, 2.0])})
    loaded = load_run(info.path)
    read = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda p, *a, **k: read.append(Path(p).name) or real(p))
    assert loaded.info.tables == ("results", "equity")
    assert read == []
    pd.testing.assert_frame_equal(loaded.tables["results"], _results_table())
    assert read == ["results.parquet"]
    assert list(loaded.tables["equity"].columns) == ["value"]


def test_nan_metrics_are_null_in_json_and_nan_when_loaded(tmp_path):
    metrics = {"sharpe": float("nan"), "sortino": float("inf"), "n": np.int64(3), "x": 0.5}
    info = _save(tmp_path, metrics=metrics, config={"lookback": np.float64(2.5), "w": np.nan})
    doc = json.loads((info.path / "run.json").read_text())
    assert doc["metrics"] == {"sharpe": None, "sortino": None, "n": 3, "x": 0.5}
    assert doc["config"] == {"lookback": 2.5, "w": None}
    loaded = load_run(info.path).info
    assert math.isnan(loaded.metrics["sharpe"]) and math.isnan(loaded.metrics["sortino"])
    assert loaded.metrics["n"] == 3 and loaded.metrics["x"] == 0.5


def test_list_runs_newest_first_by_kind_skipping_temp_and_corrupt(tmp_path, caplog):
    first = _save(tmp_path, "backtest")
    second = _save(tmp_path, "optimize", config={"grid": [1, 2]})
    third = _save(tmp_path, "backtest")
    assert [r.id for r in list_runs(tmp_path)] == [third.id, second.id, first.id]
    assert [r.id for r in list_runs(tmp_path, kind="backtest")] == [third.id, first.id]
    assert list_runs(tmp_path, kind="walk_forward") == []
    # a save in progress, a corrupt run, a folder without run.json, a stray file
    (tmp_path / ".tmp-20990101T000000.000000Z-backtest-00000000-x").mkdir()
    broken = tmp_path / "20990101T000000.000000Z-backtest-deadbeef"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    (tmp_path / "20990101T000001.000000Z-backtest-cafecafe").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with caplog.at_level(logging.WARNING, logger="stratvector.backtest.runs"):
        listed = list_runs(tmp_path)
    assert [r.id for r in listed] == [third.id, second.id, first.id]
    assert "deadbeef" in caplog.text and "cafecafe" in caplog.text
    assert list_runs(tmp_path / "missing") == []


def test_same_config_same_hash_suffix_and_distinct_folders(tmp_path):
    a = _save(tmp_path)
    b = _save(tmp_path)
    c = _save(tmp_path, config={"other": 1})
    assert a.id != b.id
    assert a.id.rsplit("-", 1)[1] == b.id.rsplit("-", 1)[1] != c.id.rsplit("-", 1)[1]


def test_failed_write_leaves_no_run_and_no_temp_folder(tmp_path, monkeypatch):
    calls = []
    real = pd.DataFrame.to_parquet

    def fail_second(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"PAR1 half a file")
            raise OSError("No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail_second)
    tables = {"results": _results_table(), "equity": _results_table(), "trades": _results_table()}
    with pytest.raises(RunStoreError, match="No space left"):
        _save(tmp_path / "runs", tables=tables)
    assert len(calls) == 2
    assert list((tmp_path / "runs").iterdir()) == []
    assert list_runs(tmp_path / "runs") == []

    def crash(self, path, *args, **kwargs):
        raise KeyboardInterrupt  # not an error, still cleaned up

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path / "runs", tables=tables)
    assert list((tmp_path / "runs").iterdir()) == []


def test_journal_mirroring_with_a_real_sqlite_journal(tmp_path, backtest):
    metrics, tables = backtest_run_payload(backtest)
    metrics["weird"] = float("nan")
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
        info = save_run(
            "backtest",
            config=CONFIG,
            symbols=["ASSET"],
            data_start="2015-01-02",
            data_end=backtest.index[-1],
            metrics=metrics,
            tables=tables,
            runs_dir=tmp_path / "runs",
            journal=journal,
            strategy="momentum",
        )
        assert info.journal_run_id is not None
        record = journal.runs.load_run(info.journal_run_id)
    assert record.kind == "backtest" and record.strategy == "momentum"
    assert record.config == CONFIG and record.symbols == ["ASSET"]
    assert record.artefacts["path"] == str(info.path.resolve())
    assert set(record.artefacts["tables"]) == {"equity", "trades", "orders"}
    assert record.metrics["weird"] is None
    assert record.metrics["sharpe"] == pytest.approx(metrics["sharpe"])
    assert record.data_start == pd.Timestamp("2015-01-02", tz="UTC")
    assert record.code_version == info.code_version
    assert load_run(info.path).info.journal_run_id == info.journal_run_id


def test_journal_failure_keeps_the_run_and_says_how_to_record_it(tmp_path):
    class Down:
        class runs:
            @staticmethod
            def save_run(*args, **kwargs):
                raise ConnectionError("journal unreachable")

    with pytest.raises(RunStoreError, match="mirror_run") as err:
        _save(tmp_path, journal=Down())
    (saved,) = list_runs(tmp_path)
    assert str(saved.path) in str(err.value) and saved.journal_run_id is None
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
        info = mirror_run(saved.path, journal)
        assert journal.runs.load_run(info.journal_run_id).config == CONFIG


def test_code_version_with_and_without_git(tmp_path):
    version, commit = code_version_info()
    assert version.startswith(__version__)
    if commit is not None:
        assert len(commit) >= 40 and commit[:12] in version
    assert code_version_info(tmp_path) == (__version__, None)  # not a checkout
    info = save_run("backtest", config={}, runs_dir=tmp_path / "runs")
    assert info.code_version.removesuffix(".dirty") == version.removesuffix(".dirty")
    assert info.git_commit == commit


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "Back Test"}, "run kind"),
        ({"kind": ""}, "run kind"),
        ({"tables": {"a/b": pd.DataFrame()}}, "table name"),
        ({"tables": {"x": [1, 2]}}, "must be a DataFrame"),
        ({"tables": {"x": pd.DataFrame({0: [1.0]})}}, "string column names"),
        ({"data_start": "not a date"}, "data_start"),
        ({"config": {"f": object()}}, "JSON"),
    ],
)
def test_bad_input_is_a_clear_error_and_leaves_nothing(tmp_path, kwargs, message):
    kind = kwargs.pop("kind", "backtest")
    with pytest.raises(StratVectorError, match=message):
        _save(tmp_path / "runs", kind, **kwargs)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(RunStoreError, match="missing"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": 99, "kind": "backtest"}))
    with pytest.raises(RunStoreError, match="format"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(RunStoreError, match="corrupt"):
        load_run(tmp_path)
    info = _save(tmp_path / "runs", tables={"results": _results_table()})
    (info.path / "results.parquet").write_bytes(b"garbage")
    with pytest.raises(RunStoreError, match="cannot read table 'results'"):
        load_run(info.path).tables["results"]
    assert runs_mod.RUN_FILE == "run.json"
