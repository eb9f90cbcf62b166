"""One SMA-crossover backtest: StratVector's public API against vectorbt and backtesting.py.

Same seeded data, same run, same conventions: long-only, all-in, 0.1 % commission,
fills at the next bar's open, equity marked at the close. StratVector runs in its
research sizing mode (``size_on="fill"``, fractional shares), which is what vectorbt
does, so total returns and trade counts must agree to 1e-9. backtesting.py buys whole
shares only, so its return differs slightly; its trade count must agree.

    .venv-bench/bin/python benchmarks/bench_backtest.py [--repeat 7] [--skip-backtesting-1m]

Prints a table and writes ``benchmarks/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratvector.backtest import PercentCommission, run
from stratvector.data import synthetic_bars
from stratvector.strategy.builtins.sma_crossover import SmaCrossover

FEE = 0.001
CASH = 100_000.0
# (bars, frequency, fast, slow). On minute bars 10/50 trades ~13,000 round trips, which
# at 0.1 % a side grinds equity to 1e-6 of the start: a degenerate comparison where
# vectorbt's near-zero checks skip orders. 100/400 (~1,560 round trips) keeps equity
# in a range where both engines' arithmetic is meaningful.
CASES = {
    "2,520 daily bars": (2520, "1D", 10, 50),
    "1,000,000 one-minute bars": (1_000_000, "1min", 100, 400),
}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls after one warm-up call (compiles, caches)."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def stratvector_run(bars: pd.DataFrame, fast: int, slow: int) -> tuple[float, int]:
    result = run(
        SmaCrossover(fast=fast, slow=slow),
        bars,
        init_cash=CASH,
        position_size=1.0,
        lot_size=0.0,
        size_on="fill",
        commission=PercentCommission(FEE),
    )
    return result.total_return, result.n_trades


def vectorbt_run(bars: pd.DataFrame, fast_n: int, slow_n: int) -> tuple[float, int]:
    import vectorbt as vbt

    close = bars["close"]
    fast = vbt.MA.run(close, fast_n).ma
    slow = vbt.MA.run(close, slow_n).ma
    state = fast > slow
    entries = state.shift(1, fill_value=False)
    exits = (~state).shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=bars["open"], fees=FEE, init_cash=CASH, freq="1D"
    )
    return float(pf.total_return()), int(pf.trades.count())


def backtesting_run(bars: pd.DataFrame, fast_n: int, slow_n: int) -> tuple[float, int]:
    from backtesting import Backtest, Strategy

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class Cross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, fast_n)
            self.slow = self.I(sma, self.data.Close, slow_n)

        def next(self) -> None:
            up = self.fast[-1] > self.slow[-1]
            if up and not self.position:
                self.buy()
            elif not up and self.position:
                self.position.close()

    data = bars.rename(columns=str.capitalize)
    data.index = data.index.tz_localize(None)
    bt = Backtest(data, Cross, cash=CASH, commission=FEE, finalize_trades=False)
    stats = bt.run()
    return float(stats["Return [%]"]) / 100.0, int(stats["# Trades"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--skip-backtesting-1m", action="store_true", help="backtesting.py takes minutes on 1M bars"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    rows = []
    for label, (n, freq, fast, slow) in CASES.items():
        # daily: ~20 % a year of drift; minutes: no drift, so prices stay in a realistic range
        daily = freq == "1D"
        bars = synthetic_bars(
            n,
            seed=42,
            freq=freq,
            drift=0.0003 if daily else 0.0,
            volatility=0.02 if daily else 0.001,
        )
        t_sv, (ret_sv, n_sv) = timed(partial(stratvector_run, bars, fast, slow), args.repeat)
        t_vbt, (ret_vbt, n_vbt) = timed(partial(vectorbt_run, bars, fast, slow), args.repeat)
        row = {
            "case": label,
            "bars": n,
            "sma": [fast, slow],
            "stratvector_s": t_sv,
            "vectorbt_s": t_vbt,
            "speedup_vs_vectorbt": t_vbt / t_sv,
            "total_return": {"stratvector": ret_sv, "vectorbt": ret_vbt},
            "trades": {"stratvector": n_sv, "vectorbt": n_vbt},
            "return_abs_diff_vs_vectorbt": abs(ret_sv - ret_vbt),
        }
        if not (args.skip_backtesting_1m and n > 100_000):
            reps = args.repeat if n <= 100_000 else 1
            t_bt, (ret_bt, n_bt) = timed(partial(backtesting_run, bars, fast, slow), reps)
            row["backtesting_s"] = t_bt
            row["speedup_vs_backtesting"] = t_bt / t_sv
            row["total_return"]["backtesting.py"] = ret_bt
            row["trades"]["backtesting.py"] = n_bt
        rows.append(row)
        assert ret_sv > -0.99, f"degenerate case: equity fell to {1 + ret_sv:.2e} of the start"
        assert n_sv == n_vbt, f"trade counts differ: {n_sv} vs {n_vbt}"
        assert abs(ret_sv - ret_vbt) <= 1e-9 * max(1.0, abs(ret_vbt)), (ret_sv, ret_vbt)

    print(
        f"{'case':<28}{'stratvector':>14}{'vectorbt':>12}{'x vbt':>8}{'backtesting.py':>16}{'x bt':>9}"
    )
    for r in rows:
        bt = (
            f"{r['backtesting_s'] * 1e3:>13.1f}ms{r['speedup_vs_backtesting']:>8.0f}x"
            if "backtesting_s" in r
            else f"{'skipped':>16}{'':>9}"
        )
        print(
            f"{r['case']:<28}{r['stratvector_s'] * 1e3:>12.2f}ms{r['vectorbt_s'] * 1e3:>10.1f}ms{r['speedup_vs_vectorbt']:>7.1f}x{bt}"
        )
        print(f"{'':<28}return {r['total_return']}  trades {r['trades']}")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
    }
    (out / "backtest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
