"""``stratvector trade``: bad input is one clear message, exit code 2, no order sent,
nothing written; the paper/live switches refuse every mix-up."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from stratvector.cli import main
from stratvector.config import load_config
from tests.gateway.conftest import running_sim, sim_orders_by_ref, write_bars, write_config


def _run_cli(argv: list[str]) -> int:
    return main(argv)


async def _cli(argv: list[str]) -> int:
    return await asyncio.to_thread(_run_cli, argv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(tmp_path: Path, symbols=("AAA", "BBB"), **kw) -> Path:
    write_bars(tmp_path / "bars", {"AAA": 61, "BBB": 62}, n=60)
    return write_config(tmp_path, "sma", list(symbols), gateway="connect_timeout = 1", **kw)


def _nothing_written(tmp_path: Path, cfg: Path) -> None:
    assert not Path(load_config(cfg).journal_url()).exists(), "a journal was created"


async def test_unknown_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path, symbols=("AAA", "ZZZZ"))
    async with running_sim(tmp_path / "bars", start=30) as sim:
        rc = await _cli(["trade", str(cfg), "--port", str(sim.port), "--no-status"])
        orders = sim_orders_by_ref(sim)
    err = capsys.readouterr().err
    assert rc == 2 and orders == {}
    assert "ZZZZ" in err and "unknown to IB" in err
    assert err.count("stratvector: error:") == 1
    _nothing_written(tmp_path, cfg)


async def test_unreachable_gateway(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path)
    rc = await _cli(["trade", str(cfg), "--port", str(_free_port()), "--no-status"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "connection refused" in err and "4002 (paper)" in err
    _nothing_written(tmp_path, cfg)


async def test_wrong_port_that_does_not_speak_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _setup(tmp_path)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100_000)  # swallow the handshake, never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        rc = await _cli(["trade", str(cfg), "--port", str(port), "--no-status"])
    finally:
        server.close()
    err = capsys.readouterr().err
    assert rc == 2 and "API port" in err
    _nothing_written(tmp_path, cfg)


@pytest.mark.parametrize(
    ("journal", "expected"),
    [
        ("sqlite:////nonexistent-folder/sub/j.db", "does not exist"),
        ("oracle://scott:tiger@db/x", "not supported"),
        ("postgresql://trader:s3cr3t-pw@127.0.0.1:1/journal", "cannot open journal"),
    ],
)
async def test_journal_that_cannot_be_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], journal: str, expected: str
) -> None:
    cfg = _setup(tmp_path)
    async with running_sim(tmp_path / "bars", start=30) as sim:
        rc = await _cli(
            ["trade", str(cfg), "--port", str(sim.port), "--journal", journal, "--no-status"]
        )
        orders = sim_orders_by_ref(sim)
    err = capsys.readouterr().err
    assert rc == 2 and orders == {}
    assert expected in err
    assert "s3cr3t" not in err and "tiger" not in err  # secrets never reach the output


async def test_paper_mode_refuses_a_live_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _setup(tmp_path)
    async with running_sim(tmp_path / "bars", start=30, account="U7654321") as sim:
        rc = await _cli(["trade", str(cfg), "--port", str(sim.port), "--no-status"])
        orders = sim_orders_by_ref(sim)
    err = capsys.readouterr().err
    assert rc == 2 and orders == {}
    assert "paper mode" in err and "live account U7654321" in err
    _nothing_written(tmp_path, cfg)


async def test_live_mode_refuses_a_paper_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _setup(tmp_path)
    text = cfg.read_text().replace("[gateway]", '[gateway]\nmode = "live"\naccount = "U1234567"')
    cfg.write_text(text)
    async with running_sim(tmp_path / "bars", start=30) as sim:  # DU1234567: paper
        argv = ["trade", str(cfg), "--port", str(sim.port), "--no-status", "--live"]
        rc = await _cli([*argv, "--confirm-account", "U1234567"])
        orders = sim_orders_by_ref(sim)
    err = capsys.readouterr().err
    assert rc == 2 and orders == {}
    assert "DU1234567" in err and "U1234567" in err and "refusing to trade" in err
    _nothing_written(tmp_path, cfg)


async def test_live_needs_config_account_and_confirmation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _setup(tmp_path)
    base = cfg.read_text()
    port = str(_free_port())  # never reached: refused before connecting
    cases = [
        ("", ["--live"], 'says mode = "paper"'),
        ('mode = "live"\n', [], "names no account"),
        ('mode = "live"\naccount = "DU1234567"\n', ["--live"], "is a paper account"),
        ('mode = "live"\naccount = "U1234567"\n', [], "confirm on the command line with --live"),
        ('mode = "live"\naccount = "U1234567"\n', ["--live"], "was not confirmed"),
        (
            'mode = "live"\naccount = "U1234567"\n',
            ["--live", "--confirm-account", "U999"],
            "was not confirmed",
        ),
    ]
    for extra, flags, expected in cases:
        cfg.write_text(base.replace("[gateway]", "[gateway]\n" + extra))
        rc = await _cli(["trade", str(cfg), "--port", port, "--no-status", *flags])
        err = capsys.readouterr().err
        assert rc == 2 and expected in err, (extra, flags, err)
    _nothing_written(tmp_path, cfg)


async def test_bad_config_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("[gateway]", '[gateway]\norder_typ = "limit"'))
    rc = await _cli(["trade", str(cfg), "--no-status"])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean 'order_type'" in err
