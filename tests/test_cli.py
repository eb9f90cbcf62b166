"""The command line: outputs, and user errors as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stratvector.cli import main

ROOT = Path(__file__).resolve().parents[1]
MOMENTUM = ROOT / "strategies" / "momentum.toml"


def _small(tmp_path: Path, extra: str = "", params: str = "") -> Path:
    p = tmp_path / "s.toml"
    p.write_text(
        f"[strategy]\nname = 'sma_crossover'\n[parameters]\nfast = 10\nslow = 40\n{params}"
        f"[data]\nsymbols = ['AAPL', 'NVDA']\nstart_date = '2019-01-01'\nend_date = '2021-12-31'\n{extra}"
    )
    return p


def test_backtest_prints_metrics_and_writes_json_and_report(tmp_path, capsys):
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    rc = main(
        ["backtest", str(_small(tmp_path)), "--json", str(out_json), "--report", str(out_html)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "sharpe" in printed and "max_drawdown" in printed
    payload = json.loads(out_json.read_text())
    assert payload["symbols"] == ["AAPL", "NVDA"]
    assert payload["metrics"]["n_trades"] == len(payload["trades"]) > 0
    assert payload["start"].startswith("2019-01-02") and payload["end"].startswith("2021-12-31")
    html = out_html.read_text()
    for section in ("price-AAPL", "price-NVDA", "equity", "monthly", "Trades ("):
        assert section in html
    assert html.count("plotly.js v") <= 2  # plotly.js embedded once, offline


def test_overrides_and_date_range(tmp_path, capsys):
    p = _small(tmp_path)
    out = tmp_path / "a.json"
    assert (
        main(
            [
                "backtest",
                str(p),
                "--set",
                "fast=5",
                "--set",
                "init_cash=1e6",
                "--start",
                "2020-01-01",
                "--end",
                "2020-12-31",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    payload = json.loads(out.read_text())
    assert payload["strategy"]["parameters"]["fast"] == 5
    assert payload["metrics"]["final_equity"] > 100_000  # started from 1e6
    assert payload["start"].startswith("2020-01-02") and payload["end"].startswith("2020-12-31")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "nope.toml"], "config file not found"),
        (["backtest", "{cfg}", "--data", "/nonexistent"], "no data for symbol 'AAPL'"),
        (["backtest", "{cfg}", "--set", "fsat=3"], "did you mean 'fast'"),
        (["backtest", "{cfg}", "--set", "fast=50"], "constraint fast < slow violated"),
        (["backtest", "{cfg}", "--set", "nonsense"], "expected NAME=VALUE"),
        (["backtest", "{cfg}", "--start", "2030-01-01"], "no bars for AAPL"),
        (["backtest", "{cfg}", "--json", "/nonexistent/dir/x.json"], "does not exist"),
        (["check-lookahead", "nope.yaml"], "config file not found"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    cfg = _small(tmp_path)
    report = tmp_path / "r.html"
    argv = [a.replace("{cfg}", str(cfg)) for a in args]
    if argv[0] == "backtest" and "--json" not in argv:
        argv += ["--report", str(report)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stratvector: error:") and message in err
    assert "\n" not in err and "Traceback" not in err
    assert not report.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_bad_bar_file_is_named_and_nothing_written(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "AAPL_1d.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,0.9,0.5,1,10\n"
    )
    (data / "NVDA_1d.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n"
    )
    out = tmp_path / "r.json"
    assert main(["backtest", str(_small(tmp_path)), "--data", str(data), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{data / 'AAPL_1d.csv'}:3: high below max(open, close)" in err
    assert not out.exists()


def test_check_lookahead_passes_for_a_builtin(tmp_path, capsys):
    assert main(["check-lookahead", str(_small(tmp_path)), "--checks", "10"]) == 0
    assert "AAPL: no look-ahead" in capsys.readouterr().out


def test_check_lookahead_catches_a_peeking_user_strategy(tmp_path, capsys):
    (tmp_path / "peek.py").write_text(
        "from stratvector.strategy import Strategy, as_target_series\n"
        "class Peek(Strategy):\n"
        "    name = 'peek'\n"
        "    def target(self, bars):\n"
        "        up = (bars['close'].shift(-1) > bars['close']).astype(float)\n"
        "        return as_target_series(up.to_numpy(), bars)\n"
    )
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        "[strategy]\nname = 'peek.py:Peek'\n[data]\nsymbols = ['AAPL']\nstart_date = '2020-01-01'\nend_date = '2020-03-01'\n"
    )
    assert main(["check-lookahead", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "stratvector: error:" in err and "2020-" in err


def test_installed_entry_point_runs_the_readme_job(tmp_path):
    exe = Path(sys.executable).with_name("stratvector")
    out = tmp_path / "m.json"
    proc = subprocess.run(
        [str(exe), "backtest", str(MOMENTUM), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cagr" in proc.stdout
    assert json.loads(out.read_text())["symbols"] == [
        "AAPL",
        "AMZN",
        "GOOG",
        "META",
        "NFLX",
        "NVDA",
    ]
    bad = subprocess.run(
        [str(exe), "backtest", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_stratvector_ibsim_entry_point_serves_the_real_client(tmp_path):
    """`stratvector ibsim --bars ...` (options after the subcommand reach ibsim's parser)."""
    import asyncio
    import signal

    from ib_async import IB

    exe = Path(sys.executable).with_name("stratvector")
    proc = subprocess.Popen(
        [str(exe), "ibsim", "--bars", str(ROOT / "stratvector" / "data" / "sample"), "--port", "0",
         "--speed", "0", "--start", "2020-01-02"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        port = None
        for _ in range(50):
            line = proc.stdout.readline()
            if "ibsim listening on" in line:
                port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
                break
        assert port, "ibsim did not start"

        async def probe() -> list[str]:
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=3, timeout=10)
            try:
                return ib.managedAccounts()
            finally:
                ib.disconnect()

        assert asyncio.run(probe())[0].startswith("DU")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    bad = subprocess.run([str(exe), "ibsim", "--bars", str(tmp_path / "none")], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2 and "stratvector" in bad.stderr


def test_outputs_are_ordinary_readable_files(tmp_path):
    out = tmp_path / "r.json"
    assert main(["backtest", str(_small(tmp_path)), "--json", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o644
