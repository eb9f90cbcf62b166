"""Where the trader's decision latency starts: when the bar completing a bar time was
received, before that bar's own strategy call (which is part of the decision's wait)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pandas as pd

from stratvector.backtest.settings import BacktestSettings
from stratvector.data import synthetic_bars
from stratvector.data.schema import index_ns
from stratvector.gateway.feed import ClosedBar
from stratvector.gateway.runner import OrderPlan, StrategyRunner
from stratvector.gateway.window import BarWindow
from stratvector.strategy.base import Strategy

SYMBOLS = ["AAA", "BBB"]


class SlowLong(Strategy):
    """Always fully long; each call takes ``pause`` seconds (a strategy's own work)."""

    name = "slow_long"
    pause = 0.02

    def target(self, bars: pd.DataFrame) -> pd.Series:
        time.sleep(self.pause)
        return pd.Series(1.0, index=bars.index)


def _runner(plans: list[OrderPlan]) -> tuple[StrategyRunner, int]:
    bars = synthetic_bars(30, seed=3)
    windows = {}
    for s in SYMBOLS:
        w = BarWindow(50)
        w.extend(bars.iloc[:-1])
        windows[s] = w
    last = bars.iloc[-1]
    t = int(index_ns(bars.index[-1:])[0])
    for w in windows.values():
        w.append(t, last.open, last.high, last.low, last.close, last.volume)

    def sink(runner: StrategyRunner, decision: object, decided: list[OrderPlan]) -> None:
        plans.extend(decided)

    runner = StrategyRunner(
        "slow_long",
        SlowLong(),
        BacktestSettings(init_cash=100_000.0, position_size=0.4),
        SYMBOLS,
        SimpleNamespace(windows=windows),  # type: ignore[arg-type]
        sink,
    )
    return runner, t


def test_the_clock_starts_when_the_completing_bar_arrived() -> None:
    plans: list[OrderPlan] = []

    async def run() -> tuple[float, float]:
        runner, t = _runner(plans)
        runner.on_bar(ClosedBar("AAA", "1d", t, time.perf_counter()))
        last_received = time.perf_counter()
        runner.on_bar(ClosedBar("BBB", "1d", t, last_received))
        return last_received, runner.timing["start"].max

    last_received, start_phase = asyncio.run(run())
    assert [p.symbol for p in plans] == SYMBOLS
    for p in plans:
        assert p.complete == last_received
    # the last bar's own strategy call is inside the measured time
    assert start_phase >= SlowLong.pause
