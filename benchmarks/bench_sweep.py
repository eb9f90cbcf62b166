"""Parameter sweep: StratVector's optimize API against vectorbt's broadcast run.

SMA crossover, fast 5..100 step 5, slow 20..300 step 10, fast < slow (499 pairs), on 20
seeded symbols x 2,520 daily bars: 9,980 backtests. Same conventions in both (long-only,
all-in, 0.1 % commission, next-open fills, fractional shares); every total return must
agree to 1e-9. Each engine runs in its own process so its peak RSS is its own. Also
times a genetic search and a walk-forward run (StratVector only: vectorbt has neither).

    .venv-bench/bin/python benchmarks/bench_sweep.py [--repeat 3]

Writes ``benchmarks/results/sweep.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

N_SYMBOLS, N_BARS, FEE, CASH = 20, 2520, 0.001, 100_000.0
FAST = range(5, 101, 5)
SLOW = range(20, 301, 10)


def pairs() -> list[tuple[int, int]]:
    return [(f, s) for f in FAST for s in SLOW if f < s]


def make_bars() -> dict[str, pd.DataFrame]:
    from stratvector.data import synthetic_bars

    return {
        f"S{i:02d}": synthetic_bars(N_BARS, seed=100 + i, volatility=0.02, drift=0.0003)
        for i in range(N_SYMBOLS)
    }


def settings():
    from stratvector.backtest import BacktestSettings, PercentCommission

    return BacktestSettings(
        init_cash=CASH,
        position_size=1.0,
        lot_size=0.0,
        size_on="fill",
        commission=PercentCommission(FEE),
    )


def run_stratvector(bars: dict[str, pd.DataFrame]) -> np.ndarray:
    """Total return per (pair, symbol), pairs major, through the public optimize API."""
    from stratvector.backtest import ParamSpace, optimize
    from stratvector.strategy.builtins.sma_crossover import SmaCrossover

    space = ParamSpace(SmaCrossover, {"fast": "5:100:5", "slow": "20:300:10"})
    res = optimize(SmaCrossover, bars, space, settings(), method="grid", objective="sharpe")
    t = res.sweep.table
    wide = t.pivot(index="set_id", columns="symbol", values="total_return")
    return wide[list(bars)].to_numpy()


def run_vectorbt(bars: dict[str, pd.DataFrame]) -> np.ndarray:
    import vectorbt as vbt

    close = pd.DataFrame({s: b["close"] for s, b in bars.items()})
    open_ = pd.DataFrame({s: b["open"] for s, b in bars.items()})
    p = pairs()
    fast = vbt.MA.run(close, [f for f, _ in p], short_name="fast").ma
    slow = vbt.MA.run(close, [s for _, s in p], short_name="slow").ma
    state = pd.DataFrame(fast.to_numpy() > slow.to_numpy(), index=close.index, columns=fast.columns)
    entries = state.shift(1, fill_value=False)
    exits = (~state).shift(1, fill_value=False)
    reps = len(p)
    close_b = pd.DataFrame(np.tile(close.to_numpy(), reps), index=close.index, columns=fast.columns)
    open_b = pd.DataFrame(np.tile(open_.to_numpy(), reps), index=close.index, columns=fast.columns)
    pf = vbt.Portfolio.from_signals(
        close_b, entries, exits, price=open_b, fees=FEE, init_cash=CASH, freq="1D"
    )
    return pf.total_return().to_numpy().reshape(reps, len(bars))


def _child(engine: str, repeat: int, out: str, q: mp.Queue) -> None:
    warnings.filterwarnings("ignore")
    bars = make_bars()
    fn = run_stratvector if engine == "stratvector" else run_vectorbt
    fn(bars)  # warm-up: numba compilation and caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(bars)
        times.append(time.perf_counter() - t0)
    np.save(out, result)
    q.put(
        {
            "median_s": statistics.median(times),
            "times_s": times,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def measure(engine: str, repeat: int) -> tuple[dict, np.ndarray]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.npy")
        p = ctx.Process(target=_child, args=(engine, repeat, out, q))
        p.start()
        stats = q.get()
        p.join()
        return stats, np.load(out)


def time_genetic_and_walk_forward() -> dict:
    from stratvector.backtest import GeneticSettings, ParamSpace, optimize, walk_forward
    from stratvector.strategy.builtins.sma_crossover import SmaCrossover

    bars = make_bars()
    space = ParamSpace(SmaCrossover, {"fast": "5:100:5", "slow": "20:300:10"})
    ga = GeneticSettings(population=40, generations=15)
    optimize(SmaCrossover, bars, space, settings(), method="genetic", genetic=ga, seed=0)
    t0 = time.perf_counter()
    g = optimize(SmaCrossover, bars, space, settings(), method="genetic", genetic=ga, seed=0)
    t_ga = time.perf_counter() - t0
    t0 = time.perf_counter()
    wf = walk_forward(SmaCrossover, bars, space, settings(), train=504, test=126)
    t_wf = time.perf_counter() - t0
    return {
        "genetic": {
            "seconds": t_ga,
            "population": 40,
            "generations": 15,
            "sets_evaluated": g.n_evaluated,
            "backtests": g.n_evaluated * N_SYMBOLS,
            "best": g.best_params,
            "best_score": g.best_score,
        },
        "walk_forward": {
            "seconds": t_wf,
            "windows": len(wf.windows),
            "train": 504,
            "test": 126,
            "backtests": len(wf.windows) * len(pairs()) * N_SYMBOLS,
            "oos_sharpe": wf.oos_sharpe,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_bt = len(pairs()) * N_SYMBOLS
    sv, r_sv = measure("stratvector", args.repeat)
    vb, r_vb = measure("vectorbt", args.repeat)
    diff = float(np.max(np.abs(r_sv - r_vb)))
    assert r_sv.shape == r_vb.shape == (len(pairs()), N_SYMBOLS)
    assert diff <= 1e-9 * max(1.0, float(np.max(np.abs(r_vb)))), diff
    extra = time_genetic_and_walk_forward()
    row = {
        "backtests": n_bt,
        "bars": N_BARS,
        "symbols": N_SYMBOLS,
        "pairs": len(pairs()),
        "stratvector": {**sv, "backtests_per_s": n_bt / sv["median_s"]},
        "vectorbt": {**vb, "backtests_per_s": n_bt / vb["median_s"]},
        "speedup": vb["median_s"] / sv["median_s"],
        "max_abs_total_return_diff": diff,
        **extra,
    }
    print(f"{n_bt:,} backtests ({len(pairs())} pairs x {N_SYMBOLS} symbols x {N_BARS:,} bars)")
    for name in ("stratvector", "vectorbt"):
        r = row[name]
        print(
            f"  {name:<12} {r['median_s']:8.3f} s  {r['backtests_per_s']:>10,.0f} backtests/s  "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
    print(f"  speedup {row['speedup']:.1f}x, max |total return diff| {diff:.2e}")
    g, w = extra["genetic"], extra["walk_forward"]
    print(
        f"  genetic search: {g['seconds']:.2f} s for {g['sets_evaluated']} sets x {N_SYMBOLS} symbols"
    )
    print(
        f"  walk-forward: {w['seconds']:.2f} s for {w['windows']} windows x {len(pairs())} sets x {N_SYMBOLS} symbols"
    )
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({"meta": meta, **row}, indent=2, default=str))


if __name__ == "__main__":
    main()
