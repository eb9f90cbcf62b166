"""Walk-forward analysis: optimize in-sample, trade the chosen set out-of-sample, repeat.

Windows are counted in bars of the union calendar of the symbols. Rolling windows move
the in-sample window forward by ``test`` bars; anchored windows keep its start at the
first bar. In each window the search runs on the in-sample bars only; the chosen set's
targets are then computed on all bars up to the end of the out-of-sample window (they
are causal, so bar t's target only uses bars up to t, and indicators are warm) and the
portfolio trades the out-of-sample bars alone, starting flat. The out-of-sample equity
is stitched by compounding each window's returns.

In-sample and out-of-sample metrics of the chosen set are both portfolio backtests of
the same kind, so their ratio (walk-forward efficiency) compares like with like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stratvector.backtest.engine import (
    infer_periods_per_year,
    simulate_targets,
    strategy_target,
    validated_frames,
)
from stratvector.backtest.search import Method, SearchResult, optimize
from stratvector.backtest.settings import BacktestSettings
from stratvector.backtest.space import ParamSpace
from stratvector.backtest.sweep import Objective, Progress
from stratvector.errors import ConfigError
from stratvector.strategy.base import Strategy


@dataclass(frozen=True)
class Window:
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # inclusive
    test_start: pd.Timestamp
    test_end: pd.Timestamp  # inclusive


def make_windows(
    index: pd.DatetimeIndex, train: int, test: int, anchored: bool = False
) -> list[Window]:
    """In-sample/out-of-sample windows over ``index`` (``train`` and ``test`` in bars)."""
    if train < 2 or test < 1:
        raise ConfigError(
            f"walk-forward needs train >= 2 and test >= 1 bars (got train={train}, test={test})"
        )
    n = len(index)
    if train + test > n:
        raise ConfigError(
            f"walk-forward window train={train} + test={test} bars is longer than the data ({n} bars)"
        )
    out = []
    start = 0
    while True:
        tr_end = start + train
        tr_begin = 0 if anchored else start
        te_end = min(tr_end + test, n)
        if tr_end >= n:
            break
        out.append(Window(index[tr_begin], index[tr_end - 1], index[tr_end], index[te_end - 1]))
        if te_end >= n:
            break
        start += test
    return out


@dataclass
class WalkForwardResult:
    """Per-window choices and metrics, the stitched out-of-sample equity and summary."""

    windows: pd.DataFrame
    oos_equity: pd.Series
    oos_returns: pd.Series
    metrics: dict[str, float]
    stability: pd.DataFrame
    searches: list[SearchResult]

    @property
    def oos_sharpe(self) -> float:
        return self.metrics["oos_sharpe"]


def walk_forward(
    strategy_cls: type[Strategy],
    bars: pd.DataFrame | Mapping[str, pd.DataFrame],
    space: ParamSpace,
    settings: BacktestSettings,
    *,
    train: int,
    test: int,
    anchored: bool = False,
    method: Method = "grid",
    objective: Objective | str = "sharpe",
    n_iter: int = 200,
    seed: int = 0,
    evaluator: Any = None,
    progress: Progress | None = None,
) -> WalkForwardResult:
    """Run the walk-forward; see the module docstring for the protocol."""
    from stratvector.analytics import summary

    frames = validated_frames(bars)
    index = frames[next(iter(frames))].index
    for df in list(frames.values())[1:]:
        index = index.union(df.index)
    windows = make_windows(index, train, test, anchored)
    obj = objective if isinstance(objective, Objective) else Objective.parse(objective)
    extra = {} if evaluator is None else {"evaluator": evaluator}
    rows, searches, oos_parts = [], [], []
    for k, w in enumerate(windows):
        train_bars = {
            s: df[(df.index >= w.train_start) & (df.index <= w.train_end)]
            for s, df in frames.items()
        }
        train_bars = {s: df for s, df in train_bars.items() if len(df)}
        search = optimize(
            strategy_cls,
            train_bars,
            space,
            settings,
            method=method,
            objective=obj,
            n_iter=n_iter,
            seed=seed + k,
            progress=progress,
            **extra,
        )
        searches.append(search)
        chosen = strategy_cls(**search.best_params)
        is_res = _trade_window(chosen, frames, w.train_start, w.train_end, settings)
        oos_res = _trade_window(chosen, frames, w.test_start, w.test_end, settings)
        is_m = summary(is_res.returns, periods_per_year=is_res.periods_per_year)
        oos_m = summary(oos_res.returns, periods_per_year=oos_res.periods_per_year)
        rows.append(
            {
                "window": k,
                "train_start": w.train_start,
                "train_end": w.train_end,
                "test_start": w.test_start,
                "test_end": w.test_end,
                **search.best_params,
                "is_score": search.best_score,
                "is_sharpe": is_m["sharpe"],
                "oos_sharpe": oos_m["sharpe"],
                "is_return": is_res.total_return,
                "oos_return": oos_res.total_return,
                "oos_max_drawdown": oos_m["max_drawdown"],
                "oos_trades": oos_res.n_trades,
            }
        )
        oos_parts.append(oos_res.returns)
    oos_returns = pd.concat(oos_parts).rename("oos_returns")
    oos_equity = (settings.init_cash * (1.0 + oos_returns).cumprod()).rename("oos_equity")
    table = pd.DataFrame(rows)
    ppy = settings.periods_per_year or infer_periods_per_year(oos_returns.index)
    stitched = summary(oos_returns, periods_per_year=ppy)
    metrics = {f"oos_{k}": v for k, v in stitched.items()}
    mean_is = float(table["is_sharpe"].mean())
    metrics.update(
        {
            "windows": float(len(table)),
            "mean_is_sharpe": mean_is,
            "mean_oos_sharpe": float(table["oos_sharpe"].mean()),
            "walk_forward_efficiency": metrics["oos_sharpe"] / mean_is
            if mean_is and np.isfinite(mean_is)
            else np.nan,
            "oos_final_equity": float(oos_equity.iloc[-1]),
        }
    )
    return WalkForwardResult(
        table, oos_equity, oos_returns, metrics, _stability(table, space), searches
    )


def _trade_window(
    strategy: Strategy,
    frames: dict[str, pd.DataFrame],
    start: pd.Timestamp,
    end: pd.Timestamp,
    settings: BacktestSettings,
):
    """Targets on all bars up to ``end``; trade only ``start..end``, starting flat."""
    window_frames, window_targets = {}, {}
    for sym, df in frames.items():
        upto = df[df.index <= end]
        mask = upto.index >= start
        if not mask.any():
            continue
        targets = strategy_target(strategy, upto, sym)
        window_frames[sym] = upto[mask]
        window_targets[sym] = targets[mask]
    if not window_frames:
        raise ConfigError(f"no bars between {start} and {end}")
    return simulate_targets(strategy, window_frames, window_targets, settings)


def _stability(table: pd.DataFrame, space: ParamSpace) -> pd.DataFrame:
    """Per searched parameter: mean, std and coefficient of variation of the chosen values
    across windows, and the share of windows that chose the most common value."""
    rows = []
    for name in space.names:
        vals = table[name].astype(float)
        mode_share = float(table[name].value_counts(normalize=True).iloc[0])
        mean = float(vals.mean())
        std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        rows.append(
            {
                "parameter": name,
                "mean": mean,
                "std": std,
                "cv": std / abs(mean) if mean else np.nan,
                "mode": table[name].mode().iloc[0],
                "mode_share": mode_share,
            }
        )
    return pd.DataFrame(rows)
