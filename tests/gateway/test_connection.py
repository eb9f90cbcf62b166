"""The connection: a duplicate client id, the nightly restart window, backoff."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

import pytest
from ib_async import IB

from stratvector.config import load_config
from stratvector.gateway import DuplicateClientIdError, State
from stratvector.gateway.connection import Backoff, RestartWindow
from tests.gateway.conftest import (
    assert_books_agree,
    make_trader,
    running_sim,
    sim_costs,
    step,
    trading,
    wait_reconnected,
    write_bars,
    write_config,
)


def _setup(tmp_path: Path, gateway: str = "") -> Path:
    write_bars(tmp_path / "bars", {"AAA": 91, "BBB": 92}, n=80)
    return write_config(tmp_path, "sma", ["AAA", "BBB"], gateway=gateway)


async def test_duplicate_client_id_fails_fast_at_start(tmp_path: Path) -> None:
    cfg = _setup(tmp_path, "connect_timeout = 5")
    async with running_sim(tmp_path / "bars", start=30) as sim:
        other = IB()
        await other.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
        try:
            trader = make_trader(sim, [cfg])
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(DuplicateClientIdError, match="client id 1"):
                await trader.start()
            assert loop.time() - started < 2.0  # not the 5 s connect timeout
            assert trader.state.state == State.FAILED
        finally:
            other.disconnect()
    assert not Path(load_config(cfg).journal_url()).exists()


async def test_duplicate_client_id_during_reconnect_is_retried(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 5)
        sim.drop_connections()
        thief = IB()  # a stale session grabs the id before the trader is back
        await thief.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
        await asyncio.sleep(0.5)
        assert trader.state.state in (State.DISCONNECTED, State.CONNECTING)
        assert trader.supervisor.reconnects == 0
        thief.disconnect()
        await wait_reconnected(trader)
        await step(sim, trader, 10)
    assert_books_agree(sim, cfg)


async def test_disconnect_inside_the_nightly_restart_window_waits(tmp_path: Path) -> None:
    cfg = _setup(tmp_path, 'restart_window = "23:45-00:45"\nrestart_timezone = "America/New_York"')
    night = dt.datetime(2024, 3, 5, 4, 50, tzinfo=dt.UTC)  # 23:50 in New York
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg], clock=lambda: night) as trader,
    ):
        states: list[State] = []
        trader.state.add_listener(lambda old, new, why: states.append(new))
        restart = sim.begin_restart(0.5)
        await trader.until(lambda: State.WAITING in states, 5)
        await restart
        await wait_reconnected(trader)
        assert State.DISCONNECTED not in states
        await step(sim, trader, 3)


def test_restart_window_wraps_midnight_and_knows_time_left() -> None:
    w = RestartWindow("23:45-00:45", "America/New_York")
    ny = dt.timezone(dt.timedelta(hours=-5))
    assert w.contains(dt.datetime(2024, 1, 10, 23, 50, tzinfo=ny))
    assert w.contains(dt.datetime(2024, 1, 11, 0, 30, tzinfo=ny))
    assert not w.contains(dt.datetime(2024, 1, 11, 0, 45, tzinfo=ny))
    assert not w.contains(dt.datetime(2024, 1, 10, 12, 0, tzinfo=ny))
    assert w.remaining(dt.datetime(2024, 1, 10, 23, 50, tzinfo=ny)) == 55 * 60
    assert RestartWindow(None).contains(dt.datetime.now(dt.UTC)) is False


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(1.0, 8.0, random.Random(1))
    delays = [b.next() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert 0.5 <= b.next() <= 1.0
