"""Bad input is refused at start with the place named; config errors say what is accepted."""

from __future__ import annotations

import argparse

import pytest

from stratvector.backtest.costs import BpsSlippage, IBKRTiered
from stratvector.errors import ConfigError, DataError
from stratvector.ibsim import IBSim, IBSimConfig, cost_model
from stratvector.ibsim.cli import add_arguments, main

from .conftest import write_syn


def _bad_dir(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    write_syn(d, "GOOD")
    path = write_syn(d, "BAD")
    lines = path.read_text().splitlines()
    cells = lines[4].split(",")  # file line 5 = the 4th bar
    cells[2] = "1.0"  # high below open and close
    lines[4] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return d, path


async def test_invalid_bar_file_is_refused_at_start_naming_file_and_row(tmp_path):
    d, path = _bad_dir(tmp_path)
    sim = IBSim(IBSimConfig(bars=d, port=0))  # the constructor reads nothing
    with pytest.raises(DataError) as err:
        await sim.start()
    assert f"{path}:5:" in str(err.value)
    assert "high below" in str(err.value)


def test_cli_exits_2_with_the_file_and_row(tmp_path, capsys):
    d, path = _bad_dir(tmp_path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    code = main(parser.parse_args(["--bars", str(d), "--port", "0", "--log-level", "ERROR"]))
    assert code == 2
    assert f"{path}:5:" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["missing", "empty"])
async def test_missing_or_empty_bar_directory(tmp_path, make):
    d = tmp_path / "nothing"
    if make == "empty":
        d.mkdir()
    with pytest.raises(DataError, match="bar"):
        await IBSim(IBSimConfig(bars=d, port=0)).start()


async def test_start_outside_the_data(syn_dir):
    with pytest.raises(DataError, match="outside the data"):
        await IBSim(IBSimConfig(bars=syn_dir, port=0, start=10_000)).start()


def test_config_refuses_non_loopback_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="loopback"):
        IBSimConfig(bars=tmp_path, host="0.0.0.0")
    IBSimConfig(bars=tmp_path, host="0.0.0.0", allow_remote=True)  # explicit opt-in
    IBSimConfig(bars=tmp_path, host="::1")
    with pytest.raises(ConfigError, match="account"):
        IBSimConfig(bars=tmp_path, account="not an account")
    with pytest.raises(ConfigError, match="participation"):
        IBSimConfig(bars=tmp_path, participation=1.5)
    with pytest.raises(ConfigError, match="server_version"):
        IBSimConfig(bars=tmp_path, server_version=200)


def test_cost_model_specs():
    assert cost_model("slippage", "bps:bps=2.5") == BpsSlippage(bps=2.5)
    assert cost_model("commission", "ibkr_tiered") == IBKRTiered()
    with pytest.raises(ConfigError, match="ibkr_fixed"):
        cost_model("commission", "ibkr")
    with pytest.raises(ConfigError, match="field=value"):
        cost_model("slippage", "bps:2")
    with pytest.raises(ConfigError, match="unexpected keyword"):
        cost_model("slippage", "bps:spread=2")
