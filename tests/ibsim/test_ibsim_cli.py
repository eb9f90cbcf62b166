"""The command line: options, the control port, signals, a clean stop."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from ib_async import IB, Stock

from stratvector.backtest.costs import BpsSlippage, IBKRTiered
from stratvector.ibsim.cli import add_arguments, config_from_args
from stratvector.ibsim.control import ControlServer, send_command

from ._support import client, running, sync, wait_until


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_options_map_to_the_config(tmp_path):
    cfg = config_from_args(
        _parse(
            "--bars",
            str(tmp_path),
            "--port",
            "4100",
            "--speed",
            "2.5",
            "--start",
            "300",
            "--account",
            "DU7654321",
            "--commission",
            "ibkr_tiered",
            "--slippage",
            "bps:bps=3",
            "--participation",
            "0.1",
            "--no-pacing",
            "--server-version",
            "176",
            "--expire-day-orders",
        )
    )
    assert (cfg.port, cfg.speed, cfg.start, cfg.account) == (4100, 2.5, 300, "DU7654321")
    assert cfg.commission == IBKRTiered() and cfg.slippage == BpsSlippage(bps=3.0)
    assert cfg.participation == 0.1 and cfg.pacing is None and cfg.server_version == 176
    assert cfg.expire_day_orders
    assert (
        config_from_args(_parse("--bars", str(tmp_path), "--start", "2020-01-02")).start
        == "2020-01-02"
    )


async def test_control_commands(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        control = ControlServer(sim, "127.0.0.1", 0)
        port = await control.start()
        try:
            status = await send_command("127.0.0.1", port, "status")
            assert status["ok"] and status["clients"] == [1] and status["position"] == 1
            assert (await send_command("127.0.0.1", port, "step 2"))["closed"] == 2
            assert sim.ctx.clock.pos == 3
            assert (await send_command("127.0.0.1", port, "jitter 0.01"))["ok"]
            assert sim.ctx.faults.jitter == (0.0, 0.01)
            assert (await send_command("127.0.0.1", port, "jitter 0"))["ok"]
            assert (await send_command("127.0.0.1", port, "reject risk check"))["ok"]
            assert list(sim.ctx.faults.reject_next) == ["risk check"]
            bad = await send_command("127.0.0.1", port, "explode")
            assert not bad["ok"] and "unknown command" in bad["error"]
            assert not (await send_command("127.0.0.1", port, "step x"))["ok"]
            gone = []
            ib.disconnectedEvent += lambda: gone.append(True)
            assert (await send_command("127.0.0.1", port, "drop"))["dropped"] == 1
            await wait_until(lambda: gone, what="drop via control")
        finally:
            await control.stop()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_process_signals_control_command_and_clean_stop(sample_dir):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratvector.ibsim",
            "--bars",
            str(sample_dir),
            "--port",
            "0",
            "--speed",
            "0",
            "--control-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+).*control on 127\.0\.0\.1:(\d+)", line)
        assert m, (
            f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() else ''}"
        )
        port, cport = int(m.group(1)), int(m.group(2))

        async def scenario() -> None:
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
            [c] = await ib.qualifyContractsAsync(Stock("NVDA", "SMART", "USD"))
            assert c.conId
            assert (await send_command("127.0.0.1", cport, "step 3"))["closed"] == 3
            gone = []
            ib.disconnectedEvent += lambda: gone.append(True)
            os.kill(proc.pid, signal.SIGUSR1)  # drop all connections
            await wait_until(lambda: gone, timeout=5, what="SIGUSR1 drop")
            ib2 = IB()
            await ib2.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
            errors = []
            ib2.errorEvent += lambda r, code, *_: errors.append(code)
            os.kill(proc.pid, signal.SIGUSR2)  # connectivity lost
            await wait_until(lambda: 1100 in errors, timeout=5, what="1100 via SIGUSR2")
            os.kill(proc.pid, signal.SIGUSR2)  # and restored
            await wait_until(lambda: 1102 in errors, timeout=5, what="1102 via SIGUSR2")
            await sync(ib2)
            ib2.disconnect()

        asyncio.run(asyncio.wait_for(scenario(), 20))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_ctl_flag_needs_a_control_port(capsys):
    from stratvector.ibsim.cli import main

    assert main(_parse("--ctl", "status", "--log-level", "ERROR")) == 2
    assert "--control-port" in capsys.readouterr().err


def test_ctl_flag_reports_an_unreachable_port(capsys):
    from stratvector.ibsim.cli import main

    assert main(_parse("--ctl", "status", "--control-port", "1", "--log-level", "ERROR")) == 2
    assert "control port" in capsys.readouterr().err


def test_speed_replay_from_the_cli_process_is_measurable(sample_dir):
    """A short real run: the replay closes bars on its own at --speed."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratvector.ibsim",
            "--bars",
            str(sample_dir),
            "--port",
            "0",
            "--speed",
            "50",
            "--control-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        cport = int(re.search(r"control on 127\.0\.0\.1:(\d+)", line).group(1))
        first = asyncio.run(send_command("127.0.0.1", cport, "status"))["position"]
        time.sleep(0.4)
        second = asyncio.run(send_command("127.0.0.1", cport, "status"))["position"]
        assert 5 <= second - first <= 40
        asyncio.run(send_command("127.0.0.1", cport, "pause"))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
