"""The live ledger decides exactly what the backtest kernel decided, bar by bar, when it is
fed the kernel's own fills: same quantities, bit for bit, across cost models, lots,
rebalance bands, the drawdown halt and protective exits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratvector.backtest.engine import simulate_targets, strategy_target
from stratvector.backtest.settings import BacktestSettings
from stratvector.data import synthetic_bars
from stratvector.gateway.sizing import StrategyLedger
from stratvector.strategy.builtins import SmaCrossover

SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"rebalance_band": 0.02},
        {"commission": "ibkr_tiered"},
        {"lot_size": 0.0, "commission": "percent"},
        {"lot_size": 10.0, "slippage": "half_spread"},
        {"max_drawdown": 0.04},
        {"stop_loss": 0.03, "take_profit": 0.05},
        {"trailing_stop": 0.04},
    ],
    ids=str,
)
def test_ledger_reproduces_the_kernel(changes: dict) -> None:
    frames = {
        s: synthetic_bars(300, seed=100 + i, freq="B", volatility=0.02)
        for i, s in enumerate(SYMBOLS)
    }
    strategy = SmaCrossover(fast=3, slow=12, allow_short=True)
    settings = BacktestSettings(init_cash=50_000.0, position_size=0.3).replace(
        **{"slippage": "bps", **changes}
    )
    targets = {s: strategy_target(strategy, df, s) for s, df in frames.items()}
    bt = simulate_targets(strategy, frames, targets, settings)
    rec = bt.order_records
    index = bt.index
    close = np.stack([frames[s]["close"].to_numpy() for s in SYMBOLS], axis=1)
    target = np.stack([targets[s] for s in SYMBOLS], axis=1)
    ledger = StrategyLedger(SYMBOLS, settings)
    n = len(index)
    live_orders: dict[tuple[int, int], float] = {}
    for t in range(n):
        for k in np.flatnonzero(rec[:, 1] == t):
            j = int(rec[k, 2])
            ledger.add_fill(
                f"x{k}",
                SYMBOLS[j],
                float(rec[k, 3]),
                float(rec[k, 4]),
                float(rec[k, 5]),
                int(index[t].value),
                exit_leg=int(rec[k, 7]) in (1, 2, 3),
            )
        ledger.settle(2**62)
        decision = ledger.decide(int(index[t].value), close[t], close[t], target[t])
        assert decision.equity == bt.equity_values[t]
        np.testing.assert_array_equal(ledger.pos, bt.position_values[t])
        for j, q in decision.orders.items():
            live_orders[(t, j)] = q
    kernel = {
        (int(r[0]), int(r[2])): float(r[3])
        for r in rec
        if int(r[7]) in (0, 4) and int(r[0]) < n - 1
    }
    decided_last = {k: v for k, v in live_orders.items() if k[0] < n - 1}
    assert decided_last == kernel
    assert ledger.cash == pytest.approx(bt.cash[-1], rel=0, abs=0)
    if changes.get("max_drawdown"):
        assert ledger.halted == (bt.halt_bar >= 0)
    assert len(kernel) > 10
    pd.testing.assert_index_equal(index, bt.index)
