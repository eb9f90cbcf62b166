"""Fixtures for the live-path tests: bar files, strategy configs, ibsim, a trader, the
backtest reference, and stepping simulated time deterministically.

- ``async def`` tests run in a fresh event loop with a time limit (as in tests/ibsim).
- The ib_async protocol guard of tests/ibsim applies here too: a decode error, a wrapper
  error that is not an API error, or a startup-sync timeout fails the test.
- Time only moves when a test calls :func:`step`: it closes one bar in ibsim, then waits
  (on the trader's own change events, no fixed sleeps) until the trader has seen the bar,
  decided, journaled and sent its orders, and IB acknowledged them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratvector.backtest.engine import simulate_targets, strategy_target
from stratvector.backtest.result import BacktestResult
from stratvector.config import StrategyConfig, load_config
from stratvector.data import load_bars, synthetic_bars
from stratvector.gateway import Trader
from stratvector.ibsim import IBSim, IBSimConfig
from stratvector.store import Journal
from tests.ibsim.conftest import ib_protocol_guard  # noqa: F401  (autouse fixture)

ASYNC_TEST_TIMEOUT = 90.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), ASYNC_TEST_TIMEOUT))
    return True


# ---------------------------------------------------------------------- data and configs


def write_bars(folder: Path, symbols: dict[str, int], n: int = 160, **kw: Any) -> Path:
    """Seeded synthetic daily (business-day) bars, one CSV per symbol."""
    folder.mkdir(parents=True, exist_ok=True)
    for sym, seed in symbols.items():
        df = synthetic_bars(n, seed=seed, freq="B", start="2023-01-02", **kw)
        df.round(4).to_csv(folder / f"{sym}_1d.csv")
    return folder


def write_config(
    folder: Path,
    name: str,
    symbols: list[str],
    *,
    strategy: str = "sma_crossover",
    parameters: str = "fast = 5\nslow = 20\nallow_short = true",
    risk: str = "position_size = 0.4",
    costs: str = 'commission = "ibkr_fixed"\nslippage = { model = "bps", bps = 5.0 }',
    capital: float = 100_000.0,
    gateway: str = "",
    limits: str = "",
    journal: str = "journal.db",
    bars: str = "bars",
) -> Path:
    text = f"""
[strategy]
name = "{strategy}"

[parameters]
{parameters}

[risk]
{risk}

[costs]
{costs}

[data]
symbols = {symbols!r}
bar_size = "1d"
paths = ["{bars}"]

[backtest]
initial_capital = {capital}

[gateway]
{_gateway_section(gateway)}

[limits]
{limits}

[journal]
url = "{journal}"
""".replace("symbols = [", "symbols = [")
    path = folder / f"{name}.toml"
    path.write_text(text.replace("'", '"'))
    return path


GATEWAY_DEFAULTS = {
    "bar_updates": '"closed"',
    "history_bars": "5000",
    "warmup_start": '"2022-12-01"',
    "connect_timeout": "5",
    "request_timeout": "10",
    "reconnect_delay": "0.05",
    "reconnect_max_delay": "0.2",
    "restart_window": '""',
    "cache_dir": '"cache"',
}


def _gateway_section(extra: str) -> str:
    """The test defaults of ``[gateway]``, overridden by ``key = value`` lines of ``extra``."""
    values = dict(GATEWAY_DEFAULTS)
    for line in extra.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return "\n".join(f"{k} = {v}" for k, v in values.items())


def sim_costs(cfg: StrategyConfig) -> dict[str, Any]:
    """ibsim cost options equal to a strategy config's cost models."""
    _, settings = cfg.build()
    return {"commission": settings.commission, "slippage": settings.slippage}


@contextlib.asynccontextmanager
async def running_sim(bars: Path, **options: Any) -> AsyncIterator[IBSim]:
    options.setdefault("port", 0)
    sim = IBSim(IBSimConfig(bars=bars, **options))
    async with sim:
        yield sim


@contextlib.asynccontextmanager
async def trading(sim: IBSim, configs: list[Path], **options: Any) -> AsyncIterator[Trader]:
    trader = make_trader(sim, configs, **options)
    await trader.start()
    try:
        await trader.until(trader.quiet, 20)
        yield trader
    finally:
        await trader.stop()


def make_trader(sim: IBSim, configs: list[Path], **options: Any) -> Trader:
    options.setdefault("halt_poll", 0.05)
    return Trader([load_config(c) for c in configs], port=sim.port, **options)


async def step(sim: IBSim, trader: Trader, n: int = 1, timeout: float = 20.0) -> int:
    """Close ``n`` bars one at a time, each time waiting until the trader is done with it."""
    done = 0
    for _ in range(n):
        if not await sim.advance(1):
            break
        done += 1
        t = sim.ctx.clock.last_closed_time()
        await trader.until(lambda t=t: trader.seen(t) and trader.quiet(), timeout)
    return done


async def step_opening(sim: IBSim, trader: Trader, n: int = 1, timeout: float = 20.0) -> int:
    """:func:`step` with each bar's open first (``IBSim.advance_open``): the trader gets
    the open's fills, and fixes its bracket children, before the rest of the bar is
    matched -- the order of events against IB, where a bar's later prices come long
    after its open."""
    done = 0
    for _ in range(n):
        sim_fills, fills = len(sim.ctx.account.executions), trader.status()["fills"]
        if not await sim.advance_open():
            break
        new = len(sim.ctx.account.executions) - sim_fills
        await trader.until(
            lambda fills=fills, new=new: trader.status()["fills"] - fills >= new and trader.quiet(),
            timeout,
        )
        done += await step(sim, trader, 1, timeout)
    return done


async def settle(trader: Trader, timeout: float = 20.0) -> None:
    await trader.until(trader.quiet, timeout)


# ---------------------------------------------------------------------- the reference


def backtest_reference(cfg_path: Path, sim: IBSim, first_ns: int) -> BacktestResult:
    """The backtest of a strategy config on the bars ibsim revealed, trading from the
    first bar the live trader decided on (``first_ns``: the last closed bar when it
    started)."""
    cfg = load_config(cfg_path)
    strategy, settings = cfg.build()
    last = sim.ctx.clock.last_closed_time()
    frames = {}
    for sym in cfg.data.symbols:
        df = load_bars(Path(cfg.base_dir / cfg.data.paths[0]) / f"{sym}_1d.csv")
        frames[sym] = df[df.index.as_unit("ns").asi8 <= last]
    first = pd.Timestamp(first_ns, tz="UTC")
    targets = {}
    for sym, df in frames.items():
        tgt = strategy_target(strategy, df, sym)
        tgt[df.index < first] = np.nan
        targets[sym] = tgt
    return simulate_targets(strategy, frames, targets, settings)


def journal_fills(cfg_path: Path, strategy: str | None = None) -> pd.DataFrame:
    cfg = load_config(cfg_path)
    with Journal(cfg.journal_url()) as j:
        rows = j.fills.list_fills(strategy=strategy)
    return pd.DataFrame(
        {
            "time": [pd.Timestamp(f.time).tz_convert("UTC") for f in rows],
            "symbol": [f.symbol for f in rows],
            "quantity": [f.signed_quantity for f in rows],
            "price": [f.price for f in rows],
            "commission": [f.commission for f in rows],
            "strategy": [f.strategy for f in rows],
            "exec_id": pd.Series([f.exec_id for f in rows], dtype=object),
            "order_ref": pd.Series([f.order_ref for f in rows], dtype=object),
        }
    )


def assert_parity(bt: BacktestResult, fills: pd.DataFrame, exact: bool = True) -> None:
    """The journal's fills equal the backtest's: same times, quantities, prices, fees."""
    orders = bt.orders.sort_values(["time", "symbol"]).reset_index(drop=True)
    fills = fills.sort_values(["time", "symbol"]).reset_index(drop=True)
    assert len(orders) > 0, "the reference backtest traded nothing; the test proves nothing"
    assert len(fills) == len(orders), (
        f"{len(fills)} journaled fills vs {len(orders)} backtest fills\n"
        f"journal:\n{fills[['time', 'symbol', 'quantity', 'price']]}\n"
        f"backtest:\n{orders[['time', 'symbol', 'quantity', 'price']]}"
    )
    assert list(fills["symbol"]) == list(orders["symbol"])
    assert [pd.Timestamp(t) for t in fills["time"]] == [
        pd.Timestamp(t).tz_convert("UTC") for t in orders["time"]
    ]
    np.testing.assert_array_equal(fills["quantity"].to_numpy(), orders["quantity"].to_numpy())
    if exact:
        np.testing.assert_array_equal(fills["price"].to_numpy(), orders["price"].to_numpy())
        np.testing.assert_array_equal(
            fills["commission"].to_numpy(dtype=float), orders["commission"].to_numpy()
        )
    else:
        np.testing.assert_allclose(
            fills["price"].to_numpy(), orders["price"].to_numpy(), rtol=1e-12
        )
        np.testing.assert_allclose(
            fills["commission"].to_numpy(dtype=float), orders["commission"].to_numpy(), rtol=1e-12
        )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


# ---------------------------------------------------------------------- fault helpers


async def step_until_orders(sim: IBSim, trader: Trader, limit: int = 60) -> int:
    """Step until a bar makes the trader send at least one order; returns bars stepped."""
    before = trader.executor.stats.sent
    for n in range(1, limit + 1):
        if not await step(sim, trader):
            break
        if trader.executor.stats.sent > before:
            return n
    raise AssertionError(f"no order in {limit} bars")


async def wait_reconnected(trader: Trader, count: int = 1, timeout: float = 20.0) -> None:
    from stratvector.gateway import State

    await trader.until(
        lambda: (
            trader.supervisor.reconnects >= count
            and trader.state.state in (State.READY, State.HALTED)
            and trader.quiet()
        ),
        timeout,
    )


def sim_orders_by_ref(sim: IBSim) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in list(sim.ctx.book._orders.values()):
        ref = o.req.order_ref
        if ref.startswith("sv1|"):
            counts[ref] = counts.get(ref, 0) + 1
    return counts


def assert_books_agree(sim: IBSim, cfg_path: Path) -> pd.DataFrame:
    """Zero duplicate orders at IB, zero lost or invented fills in the journal."""
    counts = sim_orders_by_ref(sim)
    dups = {r: n for r, n in counts.items() if n > 1}
    assert not dups, f"orders sent twice: {dups}"
    execs = {e.exec_id: e for e in sim.ctx.account.executions}
    fills = journal_fills(cfg_path)
    fills = fills[~fills["exec_id"].astype(str).str.startswith("adopt:")]
    assert sorted(fills["exec_id"]) == sorted(execs), "journal fills != IB executions"
    for row in fills.itertuples():
        e = execs[row.exec_id]
        signed = e.shares if e.side == "BOT" else -e.shares
        assert (row.quantity, row.price, row.commission, row.order_ref) == (
            signed,
            e.price,
            e.commission,
            e.order_ref,
        )
    return fills


OFF_GRID = 0.004  # added to a price on the 0.01 grid: refused with error 110


def ib_errors(transcript: Path, code: int) -> set[int]:
    """The order ids ibsim sent error ``code`` about, from its transcript
    (``4, 2, orderId, code, text, ...``)."""
    out = set()
    for line in transcript.read_text().splitlines():
        msg = json.loads(line)
        f = msg["fields"]
        if msg["dir"] == "out" and f[:1] == ["4"] and len(f) > 3 and f[3] == str(code):
            out.add(int(f[2]))
    return out


# ---------------------------------------------------------------------- a trading process

ROOT = Path(__file__).resolve().parents[2]


async def spawn_trader(
    cfg: Path, port: int, status: Path, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """``stratvector trade CFG`` in its own process, keeping its status in ``status``."""
    code = "import sys; from stratvector.cli import main; sys.exit(main(sys.argv[1:]))"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "trade",
        str(cfg),
        "--port",
        str(port),
        "--status-file",
        str(status),
        "--no-status",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_status(
    status: Path,
    proc: asyncio.subprocess.Process,
    pred: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The trading process's first status for which ``pred`` holds (fails if it exits)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if proc.returncode is not None:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"trader exited {proc.returncode}: {err.decode()[-2000:]}")
        try:
            s = json.loads(status.read_text())
            if pred(s):
                return s
        except (OSError, ValueError):
            pass
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for the trader's status ({status})")
        await asyncio.sleep(0.02)


def done_with(t: int) -> Callable[[dict[str, Any]], bool]:
    """A status that has seen bar time ``t`` on every symbol and has nothing in flight."""
    return lambda s: (
        s["state"] in ("ready", "halted")
        and s["quiet"]
        and all((v or 0) >= t for v in s["latest"].values())
    )


async def step_process(sim: IBSim, status: Path, proc: asyncio.subprocess.Process) -> None:
    """Close one bar in ibsim and wait until the trading process is done with it."""
    assert await sim.advance(1) == 1
    await wait_status(status, proc, done_with(sim.ctx.clock.last_closed_time()))
