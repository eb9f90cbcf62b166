"""Evaluate many parameter sets on many symbols fast: the sweep behind every search.

Per symbol, bars are validated once; targets come from ``Strategy.target_batch`` (which
shares indicators between sets) in chunks of parameter sets, and each chunk runs through
:func:`~stratvector.backtest.sweep_nb.sweep_nb` in one parallel numba call that keeps only
metrics (equity curves only when asked for). Memory is bounded by the chunk size.

Every (set, symbol) backtest is the same single-symbol backtest :func:`run` would do
with those parameters; tests check the two paths agree to 1e-9.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stratvector.backtest.engine import impact_inputs, infer_periods_per_year, month_ids
from stratvector.backtest.settings import BacktestSettings
from stratvector.backtest.sweep_nb import FAST_METRICS, sweep_nb
from stratvector.data.schema import validate_bars
from stratvector.errors import ConfigError
from stratvector.strategy.base import Strategy

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Objective:
    """What a search maximizes: one metric, or a weighted sum of metrics.

    ``Objective.parse("sharpe")`` or ``"sharpe=1,max_drawdown=0.5"`` (max drawdown is
    negative, so a positive weight penalizes it). A single metric that is better when
    lower (``annual_volatility``) is minimized. Per-symbol values are combined per
    parameter set with ``aggregate`` (mean, median or min).
    """

    weights: tuple[tuple[str, float], ...]
    aggregate: str = "mean"

    @classmethod
    def parse(cls, spec: str | Mapping[str, float], aggregate: str = "mean") -> Objective:
        if aggregate not in ("mean", "median", "min"):
            raise ConfigError(f"aggregate must be mean, median or min, not {aggregate!r}")
        if isinstance(spec, Mapping):
            pairs = [(str(k), float(v)) for k, v in spec.items()]
        else:
            pairs = []
            for part in spec.split(","):
                name, sep, w = part.partition("=")
                try:
                    pairs.append((name.strip(), float(w) if sep else float("nan")))
                except ValueError as exc:
                    raise ConfigError(f"objective {spec!r}: weight {w!r} is not a number") from exc
        if not pairs or any(not n for n, _ in pairs):
            raise ConfigError(f"objective {spec!r}: name at least one metric")
        out = []
        for name, w in pairs:
            check_metric_name(name)
            if np.isnan(w):
                w = 1.0 if higher_is_better(name) or len(pairs) > 1 else -1.0
            out.append((name, w))
        return cls(tuple(out), aggregate)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.weights)

    def score_rows(self, table: pd.DataFrame) -> pd.Series:
        """The objective of each (set, symbol) row."""
        total = pd.Series(0.0, index=table.index)
        for name, w in self.weights:
            total = total + w * table[name]
        return total

    def label(self) -> str:
        if len(self.weights) == 1 and self.weights[0][1] in (1.0, -1.0):
            return self.weights[0][0]
        return " + ".join(f"{w:g}*{n}" for n, w in self.weights)


def _library_metrics() -> dict[str, Any]:
    from stratvector.analytics import METRICS

    return dict(METRICS)


def check_metric_name(name: str) -> None:
    """Accept a fast sweep metric or any metric of the metrics library."""
    known = set(FAST_METRICS) | set(_library_metrics())
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown metric {name!r};{hint} available: {', '.join(sorted(known))}")


def higher_is_better(name: str) -> bool:
    lib = _library_metrics()
    if name in lib:
        return bool(getattr(lib[name], "higher_is_better", True))
    return name not in ("annual_volatility", "n_orders", "total_commission")


@dataclass
class SweepResult:
    """Metrics of every (parameter set, symbol) backtest of a sweep."""

    table: pd.DataFrame
    param_names: list[str]
    symbols: list[str]
    equity: dict[tuple[int, str], pd.Series] = field(default_factory=dict)

    def by_set(self, objective: Objective | None = None) -> pd.DataFrame:
        """One row per parameter set: parameters, metrics averaged over symbols, and the
        objective (``score``) aggregated as the objective says, best first."""
        t = self.table
        metrics = [c for c in t.columns if c not in (*self.param_names, "set_id", "symbol")]
        g = t.groupby("set_id", sort=True)
        out = g[self.param_names].first().join(g[metrics].mean())
        if objective is not None:
            scores = objective.score_rows(t).groupby(t["set_id"])
            out["score"] = getattr(scores, objective.aggregate)()
            out = out.sort_values("score", ascending=False, kind="stable", na_position="last")
        return out

    def best(self, objective: Objective) -> dict[str, Any]:
        ranked = self.by_set(objective)
        if ranked["score"].isna().all():
            raise ConfigError(
                f"objective {objective.label()} is undefined (NaN) for every parameter set"
            )
        row = ranked.iloc[0]
        return {k: _py(row[k]) for k in self.param_names}


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def evaluate(
    strategy_cls: type[Strategy],
    bars: pd.DataFrame | Mapping[str, pd.DataFrame],
    param_sets: Sequence[Mapping[str, Any]],
    settings: BacktestSettings,
    *,
    metrics: Sequence[str] = (),
    keep_equity: bool = False,
    chunk_size: int = 256,
    progress: Progress | None = None,
    set_ids: Sequence[int] | None = None,
) -> SweepResult:
    """Backtest each parameter set on each symbol; one result row per pair.

    ``metrics`` may name library metrics beyond :data:`FAST_METRICS`; those need the
    equity curves, which are then computed chunk by chunk and dropped unless
    ``keep_equity``. ``progress`` is called with the number of backtests finished.
    """
    frames = {"ASSET": bars} if isinstance(bars, pd.DataFrame) else dict(bars)
    if not param_sets:
        raise ConfigError("no parameter sets to evaluate")
    owner = strategy_cls.name or strategy_cls.__name__
    resolved = [strategy_cls.params.resolve(p, owner) for p in param_sets]
    warmups = np.array([max(int(strategy_cls(**p).warmup), 1) for p in resolved], dtype=np.int64)
    ids = np.arange(len(resolved)) if set_ids is None else np.asarray(set_ids)
    extra = [m for m in metrics if m not in FAST_METRICS]
    for m in extra:
        check_metric_name(m)
    need_equity = keep_equity or bool(extra)
    lib = _library_metrics()
    param_names = list(resolved[0])
    param_cols = {name: np.array([p[name] for p in resolved]) for name in param_names}
    metric_parts: list[np.ndarray] = []
    extra_parts: dict[str, list[np.ndarray]] = {name: [] for name in extra}
    row_sets: list[np.ndarray] = []
    row_syms: list[np.ndarray] = []
    equity: dict[tuple[int, str], pd.Series] = {}
    for sym, raw in frames.items():
        df = validate_bars(raw, source=f"bars[{sym}]")
        o, h, lo, c, v = (df[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
        n = len(df)
        ohlcv = np.stack([o, h, lo, c, v])[:, :, None]
        sigma, adv = impact_inputs(settings, ohlcv, n, 1)
        months = month_ids(df.index) if settings.commission.code == 2 else np.zeros(n, np.int64)
        ppy = settings.periods_per_year or infer_periods_per_year(df.index)
        for start in range(0, len(resolved), chunk_size):
            chunk = resolved[start : start + chunk_size]
            rows = np.arange(start, start + len(chunk))
            targets = np.ascontiguousarray(strategy_cls.target_batch(df, chunk), dtype=np.float64)
            if targets.shape != (len(chunk), n):
                raise ConfigError(
                    f"{owner}.target_batch returned shape {targets.shape}, expected {(len(chunk), n)}"
                )
            m, eq, bad = sweep_nb(
                o, h, lo, c, targets, warmups[rows],
                settings.position_size, settings.init_cash, settings.lot_size,
                settings.size_on == "fill", settings.commission.code, settings.commission.params(),
                settings.slippage.code, settings.slippage.params(), settings.stop_loss,
                settings.take_profit, settings.trailing_stop, settings.max_drawdown,
                settings.rebalance_band, sigma, adv, months, float(ppy), need_equity,
            )  # fmt: skip
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ConfigError(f"{owner} with {chunk[i]} gives targets outside [-1, 1] on {sym}")
            metric_parts.append(m)
            row_sets.append(rows)
            row_syms.append(np.full(len(chunk), sym, dtype=object))
            if extra:
                prev = np.concatenate(
                    [np.full((eq.shape[0], 1), settings.init_cash), eq[:, :-1]], axis=1
                )
                rets = eq / prev - 1.0
                for name in extra:
                    fn = lib[name]
                    extra_parts[name].append(np.array([fn(r, ppy) for r in rets]))
            if keep_equity:
                for k, row in enumerate(rows):
                    equity[(int(ids[row]), sym)] = pd.Series(eq[k], index=df.index, name="equity")
            if progress is not None:
                progress(len(chunk))
    rows = np.concatenate(row_sets)
    columns: dict[str, Any] = {"set_id": ids[rows], "symbol": np.concatenate(row_syms)}
    columns.update({name: values[rows] for name, values in param_cols.items()})
    metric_values = np.concatenate(metric_parts)
    columns.update({name: metric_values[:, k] for k, name in enumerate(FAST_METRICS)})
    columns.update({name: np.concatenate(parts) for name, parts in extra_parts.items()})
    table = pd.DataFrame(columns)
    return SweepResult(table=table, param_names=param_names, symbols=list(frames), equity=equity)
