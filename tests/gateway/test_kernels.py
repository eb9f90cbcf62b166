"""numba's kernels are compiled in a child process, never in the trading process: a
trader started on an empty numba cache trades having compiled nothing itself (the
memory compiling takes stays out of its peak); the child's failures are not fatal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from stratvector.config import load_config
from stratvector.gateway.kernels import CompileCount, compile_in_child
from tests.gateway.conftest import (
    done_with,
    running_sim,
    sim_costs,
    spawn_trader,
    step_process,
    wait_status,
    write_bars,
    write_config,
)

RISK = "position_size = 0.4\nstop_loss = 0.03\ntake_profit = 0.05"


def test_compile_count_counts_compilations_not_calls() -> None:
    @njit
    def twice(x):  # not cached: every process compiles it
        return 2 * x

    with CompileCount() as count:
        twice(1.0)
        twice(2.0)  # the same specialization: no compilation
        assert count.compiled == 1
        twice(np.int64(3))  # another specialization
        assert count.compiled == 2
    twice(np.float32(1.0))  # after stop: not counted
    assert count.compiled == 2


async def test_a_trader_on_an_empty_cache_compiles_nothing_itself(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", {"AAA": 91, "BBB": 92}, n=80)
    cfg = write_config(tmp_path, "sma", ["AAA", "BBB"], risk=RISK)
    cache = tmp_path / "numba-cache"  # empty: every kernel must be compiled somewhere
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    status = tmp_path / "status.json"
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim:
        proc = await spawn_trader(cfg, sim.port, status, env=env)
        await wait_status(status, proc, done_with(sim.ctx.clock.last_closed_time()), 60)
        for _ in range(30):
            await step_process(sim, status, proc)
        s = await wait_status(status, proc, lambda s: True)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert s["decisions"] >= 30 and s["orders_sent"] > 0 and s["fills"] > 0
    assert s["kernels_compiled"] == 0
    assert list(cache.rglob("*.nbi")), "the child compiled nothing into the cache"


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Make ``sys.executable`` a shell script with the given body (its pid in a file)."""

    def install(body: str) -> Path:
        pid_file = tmp_path / "child.pid"
        script = tmp_path / "python"
        script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\n{body}\n")
        script.chmod(0o755)
        monkeypatch.setattr(sys, "executable", str(script))
        return pid_file

    return install


def _gone(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_failing_child_is_logged_not_fatal(
    tmp_path: Path, fake_python, caplog: pytest.LogCaptureFixture
) -> None:
    fake_python("echo 'numba broke' >&2\nexit 3")
    cfg = load_config(write_config(tmp_path, "sma", ["AAA"]))
    with caplog.at_level(logging.WARNING, logger="stratvector.gateway.kernels"):
        assert await compile_in_child([cfg]) is None
    assert "exit 3: numba broke" in caplog.text


async def test_a_child_that_answers_nonsense_is_a_failure(tmp_path: Path, fake_python) -> None:
    fake_python("echo 'not json'")
    cfg = load_config(write_config(tmp_path, "sma", ["AAA"]))
    assert await compile_in_child([cfg]) is None


async def test_a_child_that_hangs_is_killed_at_the_timeout(
    tmp_path: Path, fake_python, caplog: pytest.LogCaptureFixture
) -> None:
    pid_file = fake_python("exec sleep 60")
    cfg = load_config(write_config(tmp_path, "sma", ["AAA"]))
    with caplog.at_level(logging.WARNING, logger="stratvector.gateway.kernels"):
        assert await compile_in_child([cfg], timeout=0.5) is None
    assert "took over" in caplog.text
    assert _gone(pid_file)


async def test_cancelling_kills_the_child(tmp_path: Path, fake_python) -> None:
    pid_file = fake_python("exec sleep 60")
    cfg = load_config(write_config(tmp_path, "sma", ["AAA"]))
    task = asyncio.ensure_future(compile_in_child([cfg]))
    while not pid_file.exists():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone(pid_file)
