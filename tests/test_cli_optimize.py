"""stratvector optimize: outputs, saved runs, and bad input as one line with exit 2."""

from __future__ import annotations

import json

import pytest

from stratvector.backtest.runs import list_runs
from stratvector.cli import main


def _cfg(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        "[strategy]\nname = 'sma_crossover'\n[data]\nsymbols = ['AAPL', 'NVDA']\n"
        "start_date = '2016-01-01'\nend_date = '2021-12-31'\n"
    )
    return p


def test_grid_with_report_json_and_saved_run(tmp_path, capsys):
    out, rep, runs = tmp_path / "o.json", tmp_path / "o.html", tmp_path / "runs"
    rc = main(
        [
            "optimize",
            str(_cfg(tmp_path)),
            "--param",
            "fast=5:30:5",
            "--param",
            "slow=40:120:40",
            "--json",
            str(out),
            "--report",
            str(rep),
            "--runs-dir",
            str(runs),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert (
        "grid search, objective sharpe (mean over 2 symbols): 18 parameter sets" in printed
        and "best:" in printed
    )
    payload = json.loads(out.read_text())
    assert len(payload["results"]) == 6 * 3
    assert payload["best_params"] == {
        k: payload["results"][0][k] for k in ("fast", "slow", "allow_short")
    }
    html = rep.read_text()
    assert "id='heatmap'" in html and "id='scatter'" in html
    [info] = list_runs(runs)
    assert info.kind == "optimize" and info.metrics["best_score"] == pytest.approx(
        payload["best_score"]
    )


def test_walk_forward_genetic_saves_the_out_of_sample_sharpe(tmp_path, capsys):
    runs = tmp_path / "runs"
    rc = main(
        [
            "optimize",
            str(_cfg(tmp_path)),
            "--method",
            "genetic",
            "--population",
            "8",
            "--generations",
            "3",
            "--param",
            "fast=5:30:5",
            "--param",
            "slow=40:160:40",
            "--walk-forward",
            "train=400,test=200",
            "--runs-dir",
            str(runs),
        ]
    )
    assert rc == 0
    assert "walk-forward efficiency" in capsys.readouterr().out
    [info] = list_runs(runs)
    assert info.kind == "walk_forward" and "oos_sharpe" in info.metrics
    assert "oos_equity" in info.tables


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "fast=30:5:5"], "inverted range"),
        (["--param", "fast=5:30:0"], "step must be > 0"),
        (["--param", "fats=5:30:5"], "did you mean 'fast'"),
        (["--metric", "sharp"], "did you mean 'sharpe'"),
        (["--walk-forward", "train=5000,test=100"], "longer than the data"),
        (["--walk-forward", "train=abc,test=1"], "whole number of bars"),
        (["--heatmap", "fast,nope"], "--heatmap"),
        (["--dask", "tcp://127.0.0.1:9", "--dask-timeout", "1"], "cannot reach the Dask scheduler"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, extra, message):
    runs = tmp_path / "runs"
    argv = [
        "optimize",
        str(_cfg(tmp_path)),
        "--param",
        "fast=5:20:5",
        "--param",
        "slow=40:80:40",
        "--json",
        str(tmp_path / "o.json"),
        "--runs-dir",
        str(runs),
    ]
    # a later --param for the same name replaces the earlier one
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stratvector: error:") and message in err and "\n" not in err
    assert not (tmp_path / "o.json").exists() and not runs.exists()
