"""Live-path benchmark: bar close to order sent, per symbol, and the trader's memory.

A replay of ``--symbols`` synthetic daily series through ibsim (in this process) while
``stratvector trade`` (a separate process, as in production) trades one strategy over
all of them: one account, so every order's size depends on every symbol's close (the
backtest's sizing). A bar closes every ``--interval`` seconds (default 0.25 s, faster
than IB's 5-second real-time bars; ib_async's 45 requests/s throttle is not the thing
measured). For every order it measures:

- **decision latency** (the trader's clock): from the decision's last input arriving
  (the last of the 100 bar updates of that bar time; sizing on one account cannot start
  earlier) to the decision's orders being written to the socket (one write per
  decision; the instant it handed them over, see :class:`stratvector.gateway.wire.Sent`):
  the last symbol's ``Strategy.target``, sizing, the pre-trade checks, the journal's
  intent commit (one transaction per decision, ``synchronous=FULL``) and the sends.
  The time the trader then waits for a CPU inside that write, while the woken ibsim
  runs on its core, is reported apart (phase ``write_wait``);
- **send latency** (the trader's clock): from this symbol's own bar update reaching its
  handler to that same write -- adds the wait for the other 99 bar updates to arrive
  and be decoded, and ``Strategy.target`` on each of them;
ibsim pushes portfolio marks as IB does (every three minutes; changed positions at
once), not 100 re-marked lines after every bar.

- **end to end**: from ibsim closing the bar (just before ``sim.step``) to ibsim
  receiving the ``placeOrder``: adds ibsim encoding 100 updates (in the benchmark's
  process) and both loopback hops;

and the trading process's resident memory (``VmRSS``, the peak ``VmHWM``, and its two
parts: ``RssAnon``, the process's own memory, and ``RssFile``, the resident pages of
mapped library files, which the trader releases after start-up: see
:mod:`stratvector.memory`). The bar of the trader's first decision (every symbol enters at once, ~N orders behind the
throttle) is reported apart from the steady state.

It also reports how many numba kernels the trading process compiled itself
(``kernels_compiled_in_trader``: 0 when ``stratvector trade``'s child process compiled
what numba's cache lacked, see :mod:`stratvector.gateway.kernels`); run it on a fresh
checkout to see the first start's memory.

The benchmark watches the trader through its status file, kept on ``/dev/shm`` (see
:func:`probe_dir`; ``--status-on-disk`` keeps it beside the journal).

Usage::

    .venv/bin/python benchmarks/bench_gateway.py [--symbols 100] [--bars 250]
        [--interval 0.25] [--status-on-disk] [--out benchmarks/results/gateway.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stratvector.data import synthetic_bars  # noqa: E402
from stratvector.ibsim import IBSim, IBSimConfig, Limits  # noqa: E402
from stratvector.ibsim.config import cost_model  # noqa: E402

CONFIG = """
[strategy]
name = "sma_crossover"
[parameters]
fast = 5
slow = 20
allow_short = true
[risk]
position_size = {size}
[costs]
commission = "ibkr_fixed"
slippage = {{ model = "bps", bps = 2.0 }}
[data]
symbols = {symbols}
bar_size = "1d"
paths = ["bars"]
[backtest]
initial_capital = 1000000
[gateway]
bar_updates = "closed"
history_bars = 300
warmup_start = "2018-01-01"
history_requests_per_10min = 100000
restart_window = ""
cache_dir = "cache"
[limits]
# every pre-trade check on, none binding: the decisions pay for the checks a live
# account would run
max_position_value = 100000
max_gross_exposure = 2.0
max_order_notional = 100000
max_orders_per_minute = 100000
max_daily_loss = 0.5
max_drawdown = 0.9
[journal]
url = "journal.db"
"""


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak), RssAnon (the process's own memory) and RssFile (pages of
    mapped files: library code and constants) of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0])
    return fields


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB."""
    m = memory_kb(pid)
    return m.get("VmRSS", 0), m.get("VmHWM", 0)


async def wait_status(path: Path, proc: asyncio.subprocess.Process, pred, timeout: float = 600):
    end = time.monotonic() + timeout
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"trader exited with {proc.returncode}")
        try:
            s = json.loads(path.read_text())
            if pred(s):
                return s
        except (OSError, ValueError):
            pass
        if time.monotonic() > end:
            raise TimeoutError("trader status")
        await asyncio.sleep(0.002)


def pct(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    a = np.asarray(values) * 1e3
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
    }


def probe_dir(work: Path, on_disk: bool) -> Path:
    """Where the trader's status file goes: a tmpfs (``/dev/shm``) when there is one.

    The status file is how this benchmark watches the trader (polled every 2 ms); the
    trader replaces it 20 times a second. On the journal's disk those replacements made
    the intents' sync wait: in five interleaved pairs of 250-bar runs, decision p99 was
    3.8-4.8 ms with the file on tmpfs and 4.1-6.2 ms with it on disk. A probe should not
    load the disk it measures; ``--status-on-disk`` puts it back beside the journal."""
    shm = Path("/dev/shm")
    if on_disk or not (shm.is_dir() and os.access(shm, os.W_OK)):
        return work
    return Path(tempfile.mkdtemp(prefix="sv-bench-gw-", dir=shm))


async def run(
    n_symbols: int, n_bars: int, history: int, interval: float, status_on_disk: bool = False
) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sv-bench-gw-"))
    probes = probe_dir(work, status_on_disk)
    try:
        result = await _run(work, probes, n_symbols, n_bars, history, interval)
    finally:
        if probes != work:
            shutil.rmtree(probes, ignore_errors=True)
    result["status_file"] = "disk" if probes == work else "tmpfs"
    return result


async def _run(
    work: Path, probes: Path, n_symbols: int, n_bars: int, history: int, interval: float
) -> dict:
    bars = work / "bars"
    bars.mkdir()
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    for i, sym in enumerate(symbols):
        df = synthetic_bars(history + n_bars, seed=1000 + i, freq="B", start="2019-01-01")
        df.round(4).to_csv(bars / f"{sym}_1d.csv")
    cfg = work / "bench.toml"
    cfg.write_text(CONFIG.format(size=round(1.0 / n_symbols, 6), symbols=json.dumps(symbols)))
    status = probes / "status.json"
    sim = IBSim(
        IBSimConfig(
            bars=bars,
            port=0,
            start=history,
            pacing=None,
            limits=Limits(max_subscriptions=10 * n_symbols + 10, max_messages_per_second=1000),
            commission=cost_model("commission", "ibkr_fixed"),
            slippage=cost_model("slippage", "bps:bps=2"),
            portfolio_interval=180.0,  # IB's account/portfolio push period
        )
    )
    arrivals: dict[str, float] = {}
    closes: dict[int, float] = {}
    async with sim:
        broker = sim.ctx.broker
        place = broker.place

        def timed_place(client_id, req):  # ibsim receives an order
            arrivals.setdefault(req.order_ref, time.perf_counter())
            return place(client_id, req)

        broker.place = timed_place
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from stratvector.cli import main; sys.exit(main(sys.argv[1:]))",
            "trade",
            str(cfg),
            "--port",
            str(sim.port),
            "--status-file",
            str(status),
            "--no-status",
            cwd=ROOT,
        )
        first_bar = sim.ctx.clock.last_closed_time()

        def done_with(t: int):
            return lambda s: (
                s["state"] == "ready"
                and s["quiet"]
                and all((v or 0) >= t for v in s["latest"].values())
            )

        await wait_status(status, proc, done_with(first_bar))
        startup = time.perf_counter() - started
        await asyncio.sleep(1.5)  # the entry burst leaves ib_async's 1-second throttle window
        rss_samples = []
        next_close = time.perf_counter()
        for _ in range(n_bars):
            await asyncio.sleep(max(next_close - time.perf_counter(), 0.0))
            t = int(sim.ctx.clock.timeline[sim.ctx.clock.pos])
            closes[t] = time.perf_counter()
            next_close = closes[t] + interval
            if not await sim.advance(1):
                break
            await wait_status(status, proc, done_with(t))
            rss_samples.append(rss_kb(proc.pid)[0])
        final = json.loads(status.read_text())
        rss, hwm = rss_kb(proc.pid)
        mem = memory_kb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = await proc.wait()
    by_bar: dict[int, list[float]] = {}
    from stratvector.store import parse_order_ref

    for ref, at in arrivals.items():
        parts = parse_order_ref(ref)
        if parts is None or parts.leg is not None:
            continue
        bar = int(parts.bar_time.timestamp()) * 1_000_000_000
        if bar in closes:
            by_bar.setdefault(bar, []).append(at - closes[bar])
    first = sorted(
        at
        for ref, at in arrivals.items()
        if (p := parse_order_ref(ref))
        and p.leg is None
        and int(p.bar_time.timestamp()) * 1_000_000_000 == first_bar
    )
    # steady state: after the bar in which the 100 entry orders fill (their 300-odd
    # execution, commission and status messages arrive with that bar's updates)
    replay = sorted(closes)
    steady = [x for bar, v in by_bar.items() if bar != replay[0] for x in v]
    return {
        "symbols": n_symbols,
        "bars": n_bars,
        "orders": len(arrivals),
        "startup_s": round(startup, 2),
        "end_to_end_steady": pct(steady),
        "end_to_end_entry_fill_bar": pct(by_bar.get(replay[0], [])),
        "first_decision": {
            "orders": len(first),
            "first_to_last_order_s": round(first[-1] - first[0], 3) if first else None,
            "note": "every symbol enters at once; ib_async sends 45 messages/s",
        },
        "interval_s": interval,
        "trader_decision_latency_all_orders": {
            "p50_ms": final.get("decision_latency_p50_ms"),
            "p99_ms": final.get("decision_latency_p99_ms"),
        },
        "trader_send_latency_all_orders": {
            "p50_ms": final.get("send_latency_p50_ms"),
            "p99_ms": final.get("send_latency_p99_ms"),
        },
        "trader_phases_p50_ms": final.get("timing_p50_ms"),
        "trader_phases_p99_ms": final.get("timing_p99_ms"),
        "rss_mb": round(rss / 1024, 1),
        "rss_peak_mb": round(hwm / 1024, 1),
        "rss_anon_mb": round(mem.get("RssAnon", 0) / 1024, 1),
        "rss_file_mb": round(mem.get("RssFile", 0) / 1024, 1),
        "rss_median_during_replay_mb": round(float(np.median(rss_samples)) / 1024, 1)
        if rss_samples
        else None,
        "kernels_compiled_in_trader": final.get("kernels_compiled"),
        "trader_exit_code": code,
        "decisions": final.get("decisions"),
        "intent_commits_inline": final.get("journal_inline_calls"),
        "fills": final.get("fills"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--bars", type=int, default=250)
    ap.add_argument("--history", type=int, default=260, help="closed bars before the replay")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between bar closes")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--status-on-disk",
        action="store_true",
        help="keep the trader's status file beside its journal instead of on /dev/shm",
    )
    args = ap.parse_args()
    result = asyncio.run(
        run(args.symbols, args.bars, args.history, args.interval, args.status_on_disk)
    )
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
