"""The pandas layer of the backtester: strategy targets in, :class:`BacktestResult` out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratvector.backtest.costs import SqrtImpactSlippage
from stratvector.backtest.nb import simulate_nb
from stratvector.backtest.result import BacktestResult
from stratvector.backtest.settings import BacktestSettings, split_overrides
from stratvector.data.schema import index_ns, validate_bars
from stratvector.errors import StrategyError
from stratvector.strategy.base import Strategy

DEFAULT_SYMBOL = "ASSET"


def run(
    strategy_or_config: Strategy | type[Strategy] | Any,
    bars: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    **overrides: Any,
) -> BacktestResult:
    """Backtest a strategy on bars and return the result.

    ``strategy_or_config`` is a :class:`Strategy` instance or class, a loaded
    :class:`~stratvector.config.StrategyConfig`, or the path of a TOML/YAML strategy
    file. ``bars`` is one DataFrame or a mapping symbol -> DataFrame; with a config it
    may be omitted and the config's ``[data]`` section is loaded. ``overrides`` are
    strategy parameters (``fast=10``) or :class:`BacktestSettings` fields
    (``init_cash=1e6``, ``commission="percent"``); unknown names are an error.
    """
    from stratvector.config import StrategyConfig, load_config

    if isinstance(strategy_or_config, str | Path):
        strategy_or_config = load_config(strategy_or_config)
    if isinstance(strategy_or_config, StrategyConfig):
        cfg = strategy_or_config
        strategy, settings = cfg.build(overrides)
        if bars is None:
            bars = cfg.load_bars()
    else:
        strategy, settings = _strategy_and_settings(strategy_or_config, overrides)
        if bars is None:
            raise StrategyError("run() needs bars when given a strategy instead of a config")
    return simulate(strategy, bars, settings)


def _strategy_and_settings(
    strategy: Strategy | type[Strategy], overrides: dict[str, Any]
) -> tuple[Strategy, BacktestSettings]:
    cls = strategy if isinstance(strategy, type) else type(strategy)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(f"expected a Strategy, a config or a config path, got {strategy!r}")
    param_over, setting_over = split_overrides(cls.params, overrides, cls.name or cls.__name__)
    if isinstance(strategy, type):
        strategy = strategy(**param_over)
    elif param_over:
        strategy = cls(**{**strategy.values, **param_over})
    return strategy, BacktestSettings().replace(**setting_over)


def simulate(
    strategy: Strategy,
    bars: pd.DataFrame | Mapping[str, pd.DataFrame],
    settings: BacktestSettings,
) -> BacktestResult:
    """Validate bars, compute targets, run the kernel, wrap the arrays in a result."""
    frames = validated_frames(bars)
    targets = {sym: strategy_target(strategy, df, sym) for sym, df in frames.items()}
    return simulate_targets(strategy, frames, targets, settings)


def validated_frames(bars: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One validated frame per symbol (a single frame is symbol ``ASSET``)."""
    frames = {DEFAULT_SYMBOL: bars} if isinstance(bars, pd.DataFrame) else dict(bars)
    if not frames:
        raise StrategyError("no bars given (empty mapping of symbols)")
    return {sym: validate_bars(df, source=f"bars[{sym}]") for sym, df in frames.items()}


def simulate_targets(
    strategy: Strategy,
    frames: Mapping[str, pd.DataFrame],
    targets: Mapping[str, np.ndarray],
    settings: BacktestSettings,
) -> BacktestResult:
    """Run the kernel on validated ``frames`` with precomputed, warmup-masked ``targets``
    (one array per symbol, aligned with its frame). Walk-forward uses this to trade a
    window with targets computed on the longer history before it."""
    symbols = list(frames)
    index, ohlc, target = _align(dict(frames), dict(targets), symbols)
    n_bars, n_sym = target.shape
    sigma, adv = impact_inputs(settings, ohlc, n_bars, n_sym)
    month_id = month_ids(index) if settings.commission.code == 2 else np.zeros(n_bars, np.int64)
    alloc = np.full(n_sym, settings.position_size)
    cash, equity, pos, orders, _, halt_bar = simulate_nb(
        ohlc[0],
        ohlc[1],
        ohlc[2],
        ohlc[3],
        target,
        alloc,
        sigma,
        adv,
        month_id,
        settings.init_cash,
        settings.lot_size,
        settings.size_on == "fill",
        settings.commission.code,
        settings.commission.params(),
        settings.slippage.code,
        settings.slippage.params(),
        settings.stop_loss,
        settings.take_profit,
        settings.trailing_stop,
        settings.max_drawdown,
        settings.rebalance_band,
    )
    return BacktestResult(
        strategy=strategy,
        settings=settings,
        symbols=symbols,
        index=index,
        close=ohlc[3],
        target=target,
        cash=cash,
        equity_values=equity,
        position_values=pos,
        order_records=orders,
        halt_bar=int(halt_bar),
        periods_per_year=settings.periods_per_year or infer_periods_per_year(index),
    )


def strategy_target(
    strategy: Strategy, bars: pd.DataFrame, symbol: str = DEFAULT_SYMBOL
) -> np.ndarray:
    """Run ``strategy.target`` and check the contract: aligned, in [-1, 1] or NaN.

    Values before position ``warmup - 1`` are masked to NaN: no trade before warmup.
    """
    name = type(strategy).__name__
    out = strategy.target(bars)
    if not isinstance(out, pd.Series):
        raise StrategyError(f"{name}.target must return a pandas Series, got {type(out).__name__}")
    if len(out) != len(bars) or not out.index.equals(bars.index):
        raise StrategyError(f"{name}.target for {symbol}: the Series must be on bars.index")
    values = out.to_numpy(dtype=np.float64, copy=True)
    bad = np.flatnonzero(np.abs(values) > 1.0 + 1e-12)
    if bad.size:
        i = int(bad[0])
        raise StrategyError(
            f"{name}.target for {symbol} at bar {bars.index[i]} (position {i}): "
            f"{values[i]!r} is outside [-1, 1]"
        )
    warm = max(int(strategy.warmup), 1)
    values[: warm - 1] = np.nan
    return values


def _align(
    frames: dict[str, pd.DataFrame], targets: dict[str, np.ndarray], symbols: list[str]
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Stack per-symbol arrays on the union of their timestamps (NaN where no bar)."""
    if len(symbols) == 1:
        df = frames[symbols[0]]
        ohlc = np.stack([df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")])
        return df.index, ohlc[:, :, None].copy(), targets[symbols[0]][:, None].copy()
    index = frames[symbols[0]].index
    for sym in symbols[1:]:
        index = index.union(frames[sym].index)
    ohlc = np.full((5, len(index), len(symbols)), np.nan)
    target = np.full((len(index), len(symbols)), np.nan)
    for j, sym in enumerate(symbols):
        pos = index.get_indexer(frames[sym].index)
        df = frames[sym]
        for k, c in enumerate(("open", "high", "low", "close", "volume")):
            ohlc[k, pos, j] = df[c].to_numpy()
        target[pos, j] = targets[sym]
    return index, ohlc, target


def impact_inputs(
    settings: BacktestSettings, ohlc: np.ndarray, n_bars: int, n_sym: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling return volatility and mean volume known before each bar opens."""
    model = settings.slippage
    if not isinstance(model, SqrtImpactSlippage):
        zeros = np.zeros((n_bars, n_sym))
        return zeros, zeros
    close = pd.DataFrame(ohlc[3])
    vol = pd.DataFrame(ohlc[4])
    w = int(model.window)
    sigma = close.pct_change(fill_method=None).rolling(w, min_periods=2).std().shift(1)
    adv = vol.rolling(w, min_periods=1).mean().shift(1)
    return sigma.to_numpy(), adv.to_numpy()


def month_ids(index: pd.DatetimeIndex) -> np.ndarray:
    months = index_ns(index).view("datetime64[ns]").astype("datetime64[M]")
    return months.astype(np.int64)


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year from the median bar spacing: 252 for daily bars (weekends skipped),
    52 weekly, 12 monthly; intraday bars use a 6.5-hour, 252-day year."""
    if len(index) < 2:
        return 252.0
    step = float(np.median(np.diff(index_ns(index)))) / 1e9
    day = 86400.0
    if step >= 25 * day:
        return 12.0
    if step >= 5 * day:
        return 52.0
    if step >= 0.9 * day:
        return 252.0
    return 252.0 * 6.5 * 3600.0 / step
