"""Settings of the IB Gateway stand-in: one frozen, validated value passed to :class:`IBSim`.

Nothing here does I/O. Cost models are the dataclasses of
:mod:`stratvector.backtest.costs`, so the stand-in charges exactly what the backtest charges.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stratvector.backtest.costs import (
    COMMISSION_MODELS,
    SLIPPAGE_MODELS,
    CostModel,
    IBKRFixed,
    NoSlippage,
)
from stratvector.errors import ConfigError
from stratvector.ibsim.sessions import parse_session
from stratvector.ibsim.ticks import US_STOCK_RULE, MarketRule

#: Server versions this stand-in can speak (ib_async 2.1 asks for 157..178).
MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178

_ACCOUNT_RE = re.compile(r"^[A-Z]{1,3}[0-9]{3,10}$")


@dataclass(frozen=True)
class PacingLimits:
    """IB's historical-data pacing rules; a request breaking one gets error 162.

    IB documents three violations: "making identical historical data requests within 15
    seconds; making six or more historical data requests for the same Contract, Exchange
    and Tick Type within two seconds; making more than 60 requests within any ten minute
    period". So by default at most ``max_requests`` (60) are served in ``window`` (600 s),
    at most ``per_contract_max`` (5) per contract and whatToShow in
    ``per_contract_window`` (2 s), and none identical within ``identical_window`` (15 s).
    IB's limitations page applies the first rule only to bars of 30 seconds or less:
    it counts requests whose bar size is at most ``window_max_bar`` seconds
    (``math.inf``: every request). Refused requests do not count.
    """

    max_requests: int = 60
    window: float = 600.0
    window_max_bar: float = 30.0
    per_contract_max: int = 5
    per_contract_window: float = 2.0
    identical_window: float = 15.0


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one misbehaving client from hurting the server or others.

    Times are seconds. ``max_message_bytes`` bounds one incoming frame; a larger length
    prefix closes that connection (the stream cannot be resynchronized).
    """

    max_connections: int = 32
    handshake_timeout: float = 10.0
    max_message_bytes: int = 1 << 20
    max_queued_messages: int = 200_000
    max_messages_per_second: int = 50
    max_subscriptions: int = 100
    max_open_orders: int = 10_000
    max_executions: int = 100_000
    max_restart_downtime: float = 600.0


@dataclass(frozen=True)
class IBSimConfig:
    """Everything :class:`~stratvector.ibsim.server.IBSim` needs.

    - ``bars``: directory of bar files (one per symbol, see :func:`stratvector.data.symbols_in`).
    - ``host``/``port``: where to listen; port 0 picks a free port. Only loopback addresses
      are accepted unless ``allow_remote`` is set.
    - ``start``: where the simulated clock starts: an ISO date/time (bars starting before it
      are history) or an int number of closed bars; ``None`` closes ``min(252, n - 1)`` bars.
    - ``speed``: bars per second for the automatic replay; ``None`` or 0 means the clock only
      moves when driven (``await sim.advance(n)``), which tests use.
    - ``account``: the managed account id (paper accounts start with ``DU``).
    - ``cash``: starting cash in ``currency``.
    - ``commission`` / ``slippage``: cost models from :mod:`stratvector.backtest.costs`.
    - ``participation``: if set, an order fills at most this fraction of a bar's volume per
      bar (partial fills); ``None`` fills in full.
    - ``expire_day_orders``: cancel DAY orders (tif DAY or empty) at the end of their UTC
      trading day, as IB does; off by default (every order works until done).
    - ``transcript``: path of a JSON-lines log of every message in and out, or ``None``.
    - ``master_client_id``: a client id that sees all clients' executions and orders.
    - ``portfolio_interval``: wall-clock seconds between pushes of re-marked portfolio
      lines and account values to account-update subscribers, as IB sends them (every
      three minutes; a position whose quantity changed is pushed at once). ``0`` (the
      default) pushes every held position at every bar.
    - ``market_rule``: the price bands of every contract
      (:class:`~stratvector.ibsim.ticks.MarketRule`; default the US stock rule, 0.0001
      below 1 and 0.01 from 1). Contract details name it in ``marketRuleIds``,
      ``reqMarketRule`` answers it, and a limit, stop or trailing-stop price off the grid
      of its band is refused with error 110. ``None`` plays an old server: no
      ``marketRuleIds``, ``reqMarketRule`` gets error 321, prices checked against
      ``min_tick``.
    - ``min_tick``: the ``minTick`` contract details report (IB's is one number, not the
      rule: 0.01 for US stocks, usually the smallest increment on tiered exchanges).
    - ``forming_bars``: keepUpToDate streams end with the bar that is forming, as IB's
      do: a bar opens (sent with its open as every price) and later closes (sent again,
      whole); ``reqCurrentTime`` is the simulated time between. Off by default: every
      update is a closed bar.
    - ``session`` / ``time_zone``: trading sessions (:mod:`stratvector.ibsim.sessions`):
      daily bars trade ``session`` (``"09:30-16:00"``; ``None``: the whole day) of their
      date in ``time_zone`` (an IANA name, reported as ``timeZoneId``); intraday bars'
      sessions are their runs of back-to-back bars. Contract details report them as
      ``liquidHours`` and ``tradingHours``; with forming bars, bars open and close by them.
    """

    bars: Path
    host: str = "127.0.0.1"
    port: int = 4002
    allow_remote: bool = False
    start: str | int | None = None
    speed: float | None = None
    account: str = "DU1234567"
    cash: float = 1_000_000.0
    currency: str = "USD"
    commission: CostModel = field(default_factory=IBKRFixed)
    slippage: CostModel = field(default_factory=NoSlippage)
    participation: float | None = None
    expire_day_orders: bool = False
    primary_exchange: str = "NASDAQ"
    server_version: int = MAX_SERVER_VERSION
    pacing: PacingLimits | None = field(default_factory=PacingLimits)
    limits: Limits = field(default_factory=Limits)
    transcript: Path | None = None
    master_client_id: int | None = None
    seed: int = 0
    portfolio_interval: float = 0.0
    market_rule: MarketRule | None = US_STOCK_RULE
    min_tick: float = 0.01
    forming_bars: bool = False
    session: str | None = None
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bars", Path(self.bars))
        if self.transcript is not None:
            object.__setattr__(self, "transcript", Path(self.transcript))
        if not self.allow_remote and not _is_loopback(self.host):
            raise ConfigError(
                f"ibsim host {self.host!r} is not a loopback address; the stand-in binds "
                "127.0.0.1 by default, pass allow_remote=True (--allow-remote) to expose it"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"ibsim port {self.port} out of range 0..65535")
        if not _ACCOUNT_RE.match(self.account):
            raise ConfigError(
                f"ibsim account {self.account!r} is not an IB account id (e.g. DU1234567)"
            )
        if self.speed is not None and self.speed < 0:
            raise ConfigError(f"ibsim speed must be >= 0 bars per second, not {self.speed}")
        if self.cash < 0:
            raise ConfigError(f"ibsim cash must be >= 0, not {self.cash}")
        if self.participation is not None and not 0 < self.participation <= 1:
            raise ConfigError(f"ibsim participation must be in (0, 1], not {self.participation}")
        if not MIN_SERVER_VERSION <= self.server_version <= MAX_SERVER_VERSION:
            raise ConfigError(
                f"ibsim server_version {self.server_version} outside "
                f"{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}"
            )
        if not (math.isfinite(self.min_tick) and self.min_tick > 0):
            raise ConfigError(f"ibsim min_tick must be finite and > 0, not {self.min_tick}")
        if self.market_rule is not None and not isinstance(self.market_rule, MarketRule):
            raise ConfigError("ibsim market_rule must be a MarketRule (or None)")
        if not isinstance(self.commission, CostModel) or not isinstance(self.slippage, CostModel):
            raise ConfigError("ibsim commission and slippage must be cost model dataclasses")
        if self.session is not None:
            try:
                parse_session(self.session)
            except ValueError as exc:
                raise ConfigError(f"ibsim {exc}") from exc
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"ibsim time_zone {self.time_zone!r} is not a known zone (e.g. US/Eastern)"
            ) from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cost_model(kind: str, spec: str) -> CostModel:
    """Build a cost model from ``name`` or ``name:field=value,...`` (e.g. ``bps:bps=2``).

    ``kind`` is ``"commission"`` or ``"slippage"``; unknown names or fields raise
    :class:`ConfigError` listing what is accepted.
    """
    registry = COMMISSION_MODELS if kind == "commission" else SLIPPAGE_MODELS
    name, _, args = spec.partition(":")
    cls = registry.get(name.strip())
    if cls is None:
        raise ConfigError(f"unknown {kind} model {name!r}; choose one of {', '.join(registry)}")
    kwargs: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in args.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"{kind} option {part!r} must look like field=value")
        try:
            kwargs[key.strip()] = float(value)
        except ValueError as exc:
            raise ConfigError(f"{kind} option {part!r}: {value!r} is not a number") from exc
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{kind} model {name!r}: {exc}") from exc
