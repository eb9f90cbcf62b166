"""What a backtest needs besides the strategy and the bars."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from stratvector.backtest.costs import (
    COMMISSION_MODELS,
    SLIPPAGE_MODELS,
    CostModel,
    IBKRFixed,
    NoSlippage,
)
from stratvector.errors import ConfigError
from stratvector.strategy.params import unknown_key_message


@dataclass(frozen=True)
class BacktestSettings:
    """Account, sizing, cost and risk settings of one backtest.

    ``position_size`` is the fraction of equity allotted to each symbol (the target
    scales it); ``lot_size`` the share lot (0 for fractional quantities, e.g. crypto/FX);
    ``size_on`` ``"close"`` decides quantities at the signal bar's close as live trading
    does, ``"fill"`` at the fill price (research mode, as vectorbt/backtesting.py).
    Stop, take-profit and trailing are fractions of the entry (or peak) price; 0 = off.
    ``max_drawdown`` halts and flattens the portfolio when equity falls that far from
    its peak; 0 = off. ``rebalance_band`` also rebalances when a position's weight drifts
    from its target by more than this; 0 = only on target changes.
    """

    init_cash: float = 100_000.0
    position_size: float = 1.0
    lot_size: float = 1.0
    size_on: Literal["close", "fill"] = "close"
    commission: CostModel = field(default_factory=IBKRFixed)
    slippage: CostModel = field(default_factory=NoSlippage)
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    max_drawdown: float = 0.0
    rebalance_band: float = 0.0
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        if self.init_cash <= 0:
            raise ConfigError(f"init_cash must be > 0, got {self.init_cash}")
        if not 0 < self.position_size <= 10:
            raise ConfigError(f"position_size must be in (0, 10], got {self.position_size}")
        if self.lot_size < 0:
            raise ConfigError(f"lot_size must be >= 0 (0 = fractional), got {self.lot_size}")
        if self.size_on not in ("close", "fill"):
            raise ConfigError(f"size_on must be 'close' or 'fill', got {self.size_on!r}")
        for name in ("stop_loss", "take_profit", "trailing_stop", "max_drawdown", "rebalance_band"):
            v = getattr(self, name)
            if not 0 <= v < 1 and not (name == "take_profit" and v >= 1):
                raise ConfigError(f"{name} must be a fraction in [0, 1), got {v}")

    def replace(self, **changes: Any) -> BacktestSettings:
        """A copy with ``changes``; cost models may be given by name (``"percent"``)."""
        allowed = [f.name for f in dataclasses.fields(self)]
        for key in changes:
            if key not in allowed:
                raise ConfigError(unknown_key_message(key, allowed, "backtest settings"))
        if isinstance(changes.get("commission"), str):
            changes["commission"] = cost_model(changes["commission"], "commission")
        if isinstance(changes.get("slippage"), str):
            changes["slippage"] = cost_model(changes["slippage"], "slippage")
        return dataclasses.replace(self, **changes)


def split_overrides(
    param_names: Iterable[str], overrides: dict[str, Any], owner: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``overrides`` into strategy parameters and settings; unknown names are an
    error that suggests the closest of both."""
    params = set(param_names)
    fields = {f.name for f in dataclasses.fields(BacktestSettings)}
    for key in overrides:
        if key not in params and key not in fields:
            allowed = sorted(params) + sorted(fields)
            raise ConfigError(unknown_key_message(key, allowed, f"{owner} or backtest settings"))
    return (
        {k: v for k, v in overrides.items() if k in params},
        {k: v for k, v in overrides.items() if k not in params},
    )


def cost_model(name: str, kind: Literal["commission", "slippage"], **params: Any) -> CostModel:
    """Build a commission or slippage model by its registered name."""
    table = COMMISSION_MODELS if kind == "commission" else SLIPPAGE_MODELS
    if name not in table:
        raise ConfigError(unknown_key_message(name, list(table), f"{kind} models"))
    cls = table[name]
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in allowed:
            raise ConfigError(unknown_key_message(key, allowed, f"{kind} model {name!r}"))
    return cls(**params)
