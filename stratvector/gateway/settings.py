"""What a trading run needs, resolved from one or more strategy configs. No I/O.

Each config is one strategy (its symbols, bar size, capital, costs, risk). The
connection-level settings -- ``[gateway]`` fields other than the per-strategy ones,
``[limits]`` and ``[journal]`` -- are shared by the whole run: the first config's apply,
and a later config that sets them differently is an error naming both files.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from stratvector.backtest.settings import BacktestSettings
from stratvector.config import GatewaySection, StrategyConfig
from stratvector.data.resample import parse_bar_size
from stratvector.errors import ConfigError
from stratvector.risk.limits import RiskLimits
from stratvector.strategy.base import Strategy

PER_STRATEGY = frozenset({"strategy_id", "history_bars", "warmup_start", "batch_timeout"})


@dataclass(frozen=True)
class StrategySpec:
    """One strategy of the run, built from its config."""

    id: str
    config: StrategyConfig
    strategy: Strategy
    settings: BacktestSettings
    symbols: tuple[str, ...]
    bar_size: str
    history_bars: int
    warmup_start: dt.date | None

    @property
    def source(self) -> str:
        return str(self.config.source or "<config>")


@dataclass(frozen=True)
class RunSettings:
    """The run-wide settings: connection, order policy, limits, journal, bar cache."""

    gateway: GatewaySection
    limits: RiskLimits
    journal_url: str | None
    cache_dir: Path


def build_specs(configs: list[StrategyConfig]) -> tuple[list[StrategySpec], RunSettings]:
    """The strategies and run settings of ``configs``; raises :class:`ConfigError`."""
    if not configs:
        raise ConfigError("no strategy config given")
    specs: list[StrategySpec] = []
    seen: dict[str, str] = {}
    first = configs[0]
    for cfg in configs:
        strategy, settings = cfg.build()
        sid = cfg.strategy_id
        where = str(cfg.source or "<config>")
        if sid in seen:
            raise ConfigError(
                f"{where}: strategy id {sid!r} is also used by {seen[sid]}; give each "
                "config its own [gateway] strategy_id (orders are journaled under it)"
            )
        seen[sid] = where
        g = cfg.gateway
        warm = max(int(strategy.warmup), 1)
        if g.history_bars < warm:
            raise ConfigError(
                f"{where}: [gateway] history_bars = {g.history_bars} is below the strategy's "
                f"warmup of {warm} bars; raise it"
            )
        try:
            parse_bar_size(cfg.data.bar_size)
        except Exception as exc:
            raise ConfigError(f"{where}: [data] bar_size: {exc}") from exc
        if cfg is not first:
            _same_run_settings(first, cfg)
        specs.append(
            StrategySpec(
                sid,
                cfg,
                strategy,
                settings,
                tuple(cfg.data.symbols),
                cfg.data.bar_size,
                g.history_bars,
                g.warmup_start,
            )
        )
    g = first.gateway
    if g.cache_dir:
        cache = Path(g.cache_dir)
        cache = cache if cache.is_absolute() else first.base_dir / cache
    else:
        from stratvector.store import default_journal_path

        cache = default_journal_path().parent / "bars"
    run = RunSettings(g, first.risk_limits(), first.journal_url(), cache)
    return specs, run


def _same_run_settings(a: StrategyConfig, b: StrategyConfig) -> None:
    ga, gb = a.gateway.model_dump(), b.gateway.model_dump()
    fields_set = b.gateway.model_fields_set
    for key, value in gb.items():
        if key in PER_STRATEGY or key not in fields_set:
            continue
        if value != ga[key]:
            raise ConfigError(
                f"{b.source}: [gateway] {key} = {value!r} differs from {a.source} "
                f"({ga[key]!r}); connection settings are shared by the run, set them once"
            )
    if b.limits and b.limits != a.limits:
        raise ConfigError(f"{b.source}: [limits] differ from {a.source}; set limits once")
    if b.journal.model_fields_set and b.journal != a.journal:
        raise ConfigError(f"{b.source}: [journal] differs from {a.source}; set it once")


def warmup_span(bar_size: str, bars: int, use_rth: bool) -> dt.timedelta:
    """Calendar time that holds ``bars`` bars (weekends, holidays, closed hours included)."""
    step = parse_bar_size(bar_size).total_seconds()
    if step >= 86400:
        factor = 7.0 / 5.0 * 1.1
    else:
        hours = 6.5 if use_rth else 16.0
        factor = 24.0 / hours * 7.0 / 5.0 * 1.1
    return dt.timedelta(seconds=math.ceil(bars * step * factor) + 7 * 86400)
