"""Validated strategy configuration from TOML or YAML files.

A strategy file has the sections ``[strategy]`` (``name``: a built-in or
``path/to/file.py:ClassName``; defaults to ``momentum``, whose parameters the original
seed files carry), ``[parameters]`` (checked against the strategy's declared bounds),
``[risk]``, ``[costs]``, ``[data]`` and ``[backtest]``. Unknown keys, wrong types and
out-of-bounds values are errors that name the file, the key and what is allowed.
Loading does no network I/O; data is read only by :meth:`StrategyConfig.load_bars`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratvector.backtest.costs import COMMISSION_MODELS, SLIPPAGE_MODELS, CostModel
from stratvector.backtest.settings import BacktestSettings, cost_model, split_overrides
from stratvector.errors import ConfigError, StratVectorError
from stratvector.strategy.base import Strategy
from stratvector.strategy.registry import resolve_strategy


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategySection(_Section):
    name: str = "momentum"


class RiskSection(_Section):
    """Sizing and protective exits. Fractions are of equity (sizing, drawdown) or of the
    entry/peak price (stops)."""

    position_size: float = Field(0.1, gt=0, le=10)
    stop_loss: float = Field(0.0, ge=0, lt=1)
    take_profit: float = Field(0.0, ge=0)
    trailing_stop: float = Field(0.0, ge=0, lt=1)
    max_drawdown: float = Field(0.0, ge=0, lt=1)
    monte_carlo_sims: int = Field(1000, ge=1, le=10_000_000)
    var_confidence: float = Field(0.95, gt=0.5, lt=1)


class CostModelSpec(BaseModel):
    """``model`` plus that model's parameters (e.g. ``{model = "bps", bps = 2}``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    model: str


class CostsSection(_Section):
    commission: str | CostModelSpec = "ibkr_fixed"
    slippage: str | CostModelSpec = "none"

    @field_validator("commission")
    @classmethod
    def _known_commission(cls, v: str | CostModelSpec) -> str | CostModelSpec:
        return _check_model(v, COMMISSION_MODELS, "commission")

    @field_validator("slippage")
    @classmethod
    def _known_slippage(cls, v: str | CostModelSpec) -> str | CostModelSpec:
        return _check_model(v, SLIPPAGE_MODELS, "slippage")


def _check_model(v: str | CostModelSpec, table: dict, kind: str) -> str | CostModelSpec:
    name = v if isinstance(v, str) else v.model
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {kind} model {name!r}{hint} allowed: {', '.join(table)}")
    return v


class DataSection(_Section):
    """Symbols and where their bars are. ``end_date`` is inclusive; ``paths`` are folders
    or files relative to the config file (empty: the bundled sample data)."""

    symbols: list[str] = Field(min_length=1)
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    bar_size: str = "1d"
    paths: list[str] = Field(default_factory=list)
    adjust: Literal["split", "total"] = "split"

    @field_validator("symbols")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({s for s in v if v.count(s) > 1})
        if dupes:
            raise ValueError(f"duplicate symbols: {', '.join(dupes)}")
        if any(not s.strip() for s in v):
            raise ValueError("empty symbol name")
        return v


class BacktestSection(_Section):
    initial_capital: float = Field(100_000.0, gt=0)
    lot_size: float = Field(1.0, gt=0)
    fractional: bool = False
    size_on: Literal["close", "fill"] = "close"
    rebalance_band: float = Field(0.0, ge=0, lt=1)


class StrategyConfig(_Section):
    """A whole strategy file, validated. ``source`` is the file it came from."""

    strategy: StrategySection = Field(default_factory=StrategySection)
    parameters: dict[str, Any] = Field(default_factory=dict)
    risk: RiskSection = Field(default_factory=RiskSection)
    costs: CostsSection = Field(default_factory=CostsSection)
    data: DataSection
    backtest: BacktestSection = Field(default_factory=BacktestSection)
    source: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def strategy_class(self) -> type[Strategy]:
        return resolve_strategy(self.strategy.name, self.base_dir)

    def build(self, overrides: dict[str, Any] | None = None) -> tuple[Strategy, BacktestSettings]:
        """The strategy instance and backtest settings; ``overrides`` may name either."""
        overrides = dict(overrides or {})
        cls = self.strategy_class()
        param_over, rest = split_overrides(cls.params, overrides, cls.name or cls.__name__)
        params = {**self.parameters, **param_over}
        try:
            strategy = cls(**params)
        except StratVectorError as exc:
            raise ConfigError(f"{self._where()}[parameters]: {exc}") from exc
        try:
            commission = _build_model(self.costs.commission, "commission")
            slippage = _build_model(self.costs.slippage, "slippage")
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self._where()}[costs]: {exc}") from exc
        settings = BacktestSettings(
            init_cash=self.backtest.initial_capital,
            position_size=self.risk.position_size,
            lot_size=0.0 if self.backtest.fractional else self.backtest.lot_size,
            size_on=self.backtest.size_on,
            commission=commission,
            slippage=slippage,
            stop_loss=self.risk.stop_loss,
            take_profit=self.risk.take_profit,
            trailing_stop=self.risk.trailing_stop,
            max_drawdown=self.risk.max_drawdown,
            rebalance_band=self.backtest.rebalance_band,
        )
        return strategy, settings.replace(**rest)

    def load_bars(
        self,
        paths: list[str | Path] | None = None,
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
    ) -> dict[str, pd.DataFrame]:
        """Load every symbol's bars for the configured range (``end`` inclusive)."""
        from stratvector.data.loaders import load_symbols
        from stratvector.data.sample import SAMPLE_DIR

        if paths is None:
            paths = [self.base_dir / p for p in self.data.paths] or [SAMPLE_DIR]
        start = start or self.data.start_date
        end = end or self.data.end_date
        end_excl = pd.Timestamp(end) + pd.Timedelta(days=1) if end is not None else None
        return load_symbols(
            self.data.symbols, paths, self.data.bar_size, start, end_excl, self.data.adjust
        )

    def _where(self) -> str:
        return f"{self.source}: " if self.source else ""


def _build_model(spec: str | CostModelSpec, kind: Literal["commission", "slippage"]) -> CostModel:
    if isinstance(spec, str):
        return cost_model(spec, kind)
    return cost_model(spec.model, kind, **(spec.model_extra or {}))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML or YAML file into a dict, with parse errors naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{p}: unknown config type {suffix!r}; use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot parse: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a table of sections")
    return data


def load_config(path: str | Path) -> StrategyConfig:
    """Read and validate a strategy file; parameters are checked against the strategy."""
    p = Path(path)
    raw = read_config_file(p)
    try:
        cfg = StrategyConfig.model_validate({**raw, "source": p})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, p, StrategyConfig)) from exc
    try:
        cfg.build()
    except ConfigError:
        raise
    except StratVectorError as exc:
        raise ConfigError(f"{p}: [strategy] name: {exc}") from exc
    return cfg


def format_validation_error(exc: ValidationError, path: Path, model: type[BaseModel]) -> str:
    """One line per problem: ``file: [section] key: what is wrong (allowed: ...)``."""
    lines = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"] if not isinstance(x, int)]
        loc = [x for x in loc if x not in ("str", "CostModelSpec")] or ["(top level)"]
        where = f"[{loc[0]}]" + (f" {'.'.join(loc[1:])}" if len(loc) > 1 else "")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"unknown key{hint} allowed: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error",):
                msg += f" (got {err['input']!r})"
        lines.append(f"{path}: {where}: {msg}")
    return "; ".join(dict.fromkeys(lines))


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    for part in loc:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return [k for k in model.model_fields if k != "source"]
