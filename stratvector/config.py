"""Validated strategy configuration from TOML or YAML files.

A strategy file has the sections ``[strategy]`` (``name``: a built-in or
``path/to/file.py:ClassName``; defaults to ``momentum``, whose parameters the original
seed files carry), ``[parameters]`` (checked against the strategy's declared bounds),
``[risk]``, ``[costs]``, ``[data]`` and ``[backtest]``. Unknown keys, wrong types and
out-of-bounds values are errors that name the file, the key and what is allowed.
Loading does no network I/O; data is read only by :meth:`StrategyConfig.load_bars`.

Live trading (``stratvector trade``) reads three optional sections more: ``[gateway]``
(the IB connection, paper/live mode, order type, reconciliation policy; see
:class:`GatewaySection`), ``[limits]`` (pre-trade risk limits, the fields of
:class:`stratvector.risk.limits.RiskLimits`) and ``[journal]`` (where orders and fills
are journaled). Secrets never go in these files: a journal URL with a password comes
from the environment (``$STRATVECTOR_JOURNAL`` or the variable named by ``url_env``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
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


_RESTART_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class GatewaySection(_Section):
    """How ``stratvector trade`` reaches IB Gateway/TWS and how it sends orders.

    ``port`` defaults to 4002 (IB Gateway paper) in paper mode and 4001 in live mode.
    ``mode = "live"`` also needs ``account`` (the live account id) and a confirmation on
    the command line; the gateway refuses to trade when the connected account does not
    match the mode (paper account ids start with ``DU``). Times are seconds.
    ``restart_window`` (``"HH:MM-HH:MM"`` in ``restart_timezone``) is IB's nightly
    restart: a disconnect inside it is waited out quietly instead of alarming.
    ``bar_updates`` says how IB's keepUpToDate bar stream marks a closed bar: ``"forming"``
    (IB: the last bar is still forming; it is closed when the next one starts or when
    its end plus a grace period has passed, whichever is first) or ``"closed"`` (every
    update is a closed bar: ibsim's default). The grace is ``close_grace`` seconds after
    an intraday bar's end (default 6: just over IB's ~5 s update interval) and
    ``session_close_grace`` seconds after a session's close, for daily bars and a
    session's last intraday bar (default 300: the closing auction prints and IB
    finalises the day's bar in the minutes after the close; an order sent then fills at
    the next open either way). ``history_bars`` is how many
    closed bars the runner keeps and passes to ``Strategy.target``; ``warmup_start``
    fixes where warmup history begins (default: enough for ``history_bars``).
    ``history_requests_per_10min`` is the client-side limit of IB's "60 historical
    requests in any 10 minutes" rule, which IB and the client apply only to requests for
    bars of 30 seconds or less; larger bars (minutes, hours, days) are paced only by IB's
    other two rules (no identical request within 15 s, at most 5 per contract and tick
    type in 2 s), so a daily warmup of many symbols needs no change here.
    ``strategy_id`` is the name orders and fills are journaled under (default: the
    strategy's name; needed when two configs trade the same strategy).
    """

    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)
    client_id: int = Field(1, ge=0, le=2_147_483_647)
    mode: Literal["paper", "live"] = "paper"
    account: str | None = None
    connect_timeout: float = Field(10.0, gt=0, le=600)
    request_timeout: float = Field(60.0, gt=0, le=3600)
    connect_attempts: int = Field(1, ge=1, le=1000)
    reconnect_delay: float = Field(1.0, gt=0, le=600)
    reconnect_max_delay: float = Field(60.0, gt=0, le=3600)
    lost_timeout: float = Field(300.0, gt=0, le=86400)
    restart_window: str | None = "23:45-00:45"
    restart_timezone: str = "America/New_York"
    order_type: Literal["market", "limit"] = "market"
    limit_offset_bps: float = Field(10.0, ge=0, le=10_000)
    time_in_force: Literal["DAY", "GTC"] = "DAY"
    on_unknown_position: Literal["adopt", "halt"] = "halt"
    bar_updates: Literal["forming", "closed"] = "forming"
    close_grace: float = Field(6.0, ge=0, le=3600)
    session_close_grace: float = Field(300.0, ge=0, le=6 * 3600)
    history_bars: int = Field(1000, ge=2, le=1_000_000)
    warmup_start: dt.date | None = None
    what_to_show: str = "TRADES"
    use_rth: bool = True
    exchange: str = "SMART"
    currency: str = "USD"
    batch_timeout: float = Field(2.0, gt=0, le=3600)
    history_requests_per_10min: int = Field(60, ge=1, le=1_000_000)
    cache_dir: str | None = None
    strategy_id: str | None = None

    @field_validator("restart_window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and v.strip() and not _RESTART_WINDOW.match(v):
            raise ValueError(f"restart_window {v!r} must look like '23:45-00:45' (HH:MM-HH:MM)")
        return v or None

    @field_validator("restart_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (e.g. 'America/New_York')") from exc
        return v

    @field_validator("account")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Z]{1,3}[0-9]{3,10}$", v.strip()):
            raise ValueError(f"account {v!r} is not an IB account id (e.g. U1234567, DU1234567)")
        return v.strip() if v else None

    @field_validator("strategy_id")
    @classmethod
    def _strategy_id(cls, v: str | None) -> str | None:
        if v is not None and not _NAME_RE.match(v):
            raise ValueError(
                f"strategy_id {v!r}: use 1-64 letters, digits, '_', '-', '.' or ':' (no '|')"
            )
        return v

    @property
    def resolved_port(self) -> int:
        """The configured port, or IB Gateway's default for the mode (4002 paper, 4001 live)."""
        if self.port is not None:
            return self.port
        return 4001 if self.mode == "live" else 4002


class JournalSection(_Section):
    """Where the live path journals intents, orders and fills. ``url`` is a SQLAlchemy URL
    or a SQLite path (relative paths are relative to the config file); ``url_env`` names an
    environment variable holding the URL (for URLs with a password). Neither: the
    ``$STRATVECTOR_JOURNAL`` variable, else the default state folder."""

    url: str | None = None
    url_env: str | None = None


class StrategyConfig(_Section):
    """A whole strategy file, validated. ``source`` is the file it came from."""

    strategy: StrategySection = Field(default_factory=StrategySection)
    parameters: dict[str, Any] = Field(default_factory=dict)
    risk: RiskSection = Field(default_factory=RiskSection)
    costs: CostsSection = Field(default_factory=CostsSection)
    data: DataSection
    backtest: BacktestSection = Field(default_factory=BacktestSection)
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    limits: dict[str, Any] = Field(default_factory=dict)
    journal: JournalSection = Field(default_factory=JournalSection)
    source: Path | None = None

    @field_validator("limits")
    @classmethod
    def _limits(cls, v: dict[str, Any]) -> dict[str, Any]:
        from stratvector.risk.limits import limits_from_mapping

        try:
            limits_from_mapping(v, "[limits]")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("[limits]: ")) from exc
        return v

    def risk_limits(self) -> Any:
        """The ``[limits]`` section as :class:`stratvector.risk.limits.RiskLimits`."""
        from stratvector.risk.limits import limits_from_mapping

        return limits_from_mapping(self.limits, f"{self._where()}[limits]")

    @property
    def strategy_id(self) -> str:
        """The name the live path journals this strategy's orders and fills under."""
        return self.gateway.strategy_id or self.strategy.name.rsplit(":", 1)[-1]

    def journal_url(self) -> str | None:
        """The journal URL from ``[journal]`` (``url``, else the ``url_env`` variable), or
        ``None`` for the default. A relative SQLite path is resolved against the config."""
        import os

        url = self.journal.url
        if url is None and self.journal.url_env:
            url = os.environ.get(self.journal.url_env)
            if not url:
                raise ConfigError(
                    f"{self._where()}[journal] url_env: environment variable "
                    f"{self.journal.url_env!r} is not set"
                )
        if url is not None and "://" not in url and not Path(url).is_absolute():
            url = str(self.base_dir / url)
        return url

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
