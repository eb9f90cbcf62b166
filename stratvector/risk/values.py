"""The values of the pre-trade risk checks: the limits, what is judged, and the verdicts.

- :class:`RiskLimits` -- the limits of one account, validated on construction;
  :func:`limits_from_mapping` builds one from a ``[limits]`` configuration table.
- :class:`OrderProposal` and :class:`AccountState` -- what
  :class:`~stratvector.risk.limits.RiskChecker` judges.
- :class:`Breach` and :class:`Decision` -- what it returns.

All are frozen dataclasses; the inputs are validated when built (``TypeError`` for a
wrong type, ``ValueError`` for a bad value, each naming the field), so the checker only
ever sees finite numbers and tz-aware UTC times. Units and the semantics of each limit
are described in :mod:`stratvector.risk.limits`. Pure: no I/O, no clock.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from stratvector.errors import ConfigError

MAX_POSITION_VALUE = "max_position_value"
MAX_GROSS_EXPOSURE = "max_gross_exposure"
MAX_ORDER_NOTIONAL = "max_order_notional"
MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"
MAX_DAILY_LOSS = "max_daily_loss"
MAX_DRAWDOWN = "max_drawdown"

LIMIT_NAMES: tuple[str, ...] = (
    MAX_POSITION_VALUE,
    MAX_GROSS_EXPOSURE,
    MAX_ORDER_NOTIONAL,
    MAX_ORDERS_PER_MINUTE,
    MAX_DAILY_LOSS,
    MAX_DRAWDOWN,
)
"""Every limit, in the order :meth:`~stratvector.risk.limits.RiskChecker.check` evaluates
and reports them."""

_FRACTION_LIMITS = (MAX_DAILY_LOSS, MAX_DRAWDOWN)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RiskLimits:
    """The limits of one account (or one strategy's slice of it). ``0``/``None`` = off.

    - ``max_position_value``: per symbol, ``|shares after the order| * price`` (currency).
    - ``max_gross_exposure``: ``sum(|position value|)`` over all symbols after the order,
      divided by equity (a multiple, e.g. ``1.5``).
    - ``max_order_notional``: ``|shares| * price`` of one order (currency).
    - ``max_orders_per_minute``: risk-increasing orders in any rolling 60 s window,
      account-wide, counting every order recorded with
      :meth:`~stratvector.risk.limits.RiskChecker.record_sent`.
    - ``max_daily_loss``: fraction of the day's starting equity (``0.03`` = 3 %).
    - ``max_drawdown``: fraction below the peak equity (``0.15`` = 15 %).
    - ``kill_on``: the limits whose breach trips the kill switch
      (:attr:`Breach.trips_kill`); any of :data:`LIMIT_NAMES`.
    - ``flatten_on_kill``: when the kill switch trips, the gateway closes all positions
      after cancelling open orders (otherwise it only cancels).

    Raises ``ValueError`` (``TypeError`` for wrong types) naming the field; use
    :func:`limits_from_mapping` for configuration files, which reports
    :class:`~stratvector.errors.ConfigError` with the file.
    """

    max_position_value: float = 0.0
    max_gross_exposure: float = 0.0
    max_order_notional: float = 0.0
    max_orders_per_minute: int = 0
    max_daily_loss: float = 0.0
    max_drawdown: float = 0.0
    kill_on: tuple[str, ...] = (MAX_DAILY_LOSS, MAX_DRAWDOWN)
    flatten_on_kill: bool = False

    def __post_init__(self) -> None:
        for name in (MAX_POSITION_VALUE, MAX_GROSS_EXPOSURE, MAX_ORDER_NOTIONAL, *_FRACTION_LIMITS):
            value = getattr(self, name)
            if value is None:
                value = 0.0
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns the limit off), got {value!r}")
            if name in _FRACTION_LIMITS and value > 1:
                raise ValueError(
                    f"{name} is a fraction of equity (0.03 means 3%) and must be <= 1, "
                    f"got {value!r}"
                )
            object.__setattr__(self, name, value)

        rate = self.max_orders_per_minute
        if rate is None:
            rate = 0
        if isinstance(rate, float) and rate.is_integer():
            rate = int(rate)
        if isinstance(rate, bool) or not isinstance(rate, int):
            raise TypeError(
                f"{MAX_ORDERS_PER_MINUTE} must be a whole number, not {type(rate).__name__} "
                f"{rate!r}"
            )
        if rate < 0:
            raise ValueError(f"{MAX_ORDERS_PER_MINUTE} must be >= 0 (0 turns it off), got {rate}")
        object.__setattr__(self, MAX_ORDERS_PER_MINUTE, rate)

        object.__setattr__(self, "kill_on", _limit_names(self.kill_on))
        if not isinstance(self.flatten_on_kill, bool):
            raise TypeError(
                f"flatten_on_kill must be true or false, not {type(self.flatten_on_kill).__name__}"
            )

    @property
    def enabled(self) -> tuple[str, ...]:
        """The names of the limits that are on, in :data:`LIMIT_NAMES` order."""
        return tuple(name for name in LIMIT_NAMES if getattr(self, name))


def _limit_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            f"kill_on must be a list of limit names (e.g. [{MAX_DAILY_LOSS!r}]), not {value!r}"
        )
    names: list[str] = []
    for name in value:
        if name not in LIMIT_NAMES:
            raise ValueError(f"kill_on: {_unknown(name, LIMIT_NAMES, 'limit')}")
        if name not in names:
            names.append(name)
    return tuple(names)


def _unknown(name: object, allowed: Iterable[str], what: str) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(name), allowed, n=1) if isinstance(name, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} allowed: {', '.join(allowed)}"


@dataclass(frozen=True)
class OrderProposal:
    """An order the gateway wants to send, before it is journaled.

    ``quantity`` is signed shares (non-zero); ``price`` the reference price used to
    value it (last trade or the bar close the order was computed on; positive);
    ``time`` the instant of the decision, tz-aware (stored as UTC).
    """

    strategy: str
    symbol: str
    quantity: float
    price: float
    time: datetime

    def __post_init__(self) -> None:
        for name in ("strategy", "symbol"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"order {name} must be a non-empty string, got {value!r}")
        quantity = _finite(self.quantity, "order quantity")
        if quantity == 0:
            raise ValueError(f"order quantity must be non-zero ({self.symbol})")
        price = _finite(self.price, "order price")
        if price <= 0:
            raise ValueError(f"order price must be > 0, got {price!r} ({self.symbol})")
        object.__setattr__(self, "quantity", quantity)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "time", _utc(self.time, "order time"))


@dataclass(frozen=True)
class AccountState:
    """A snapshot of the account the checks run against.

    ``equity`` is net liquidation value now; ``peak_equity`` the highest equity seen (the
    drawdown reference); ``day_start_equity`` the equity at the start of the trading day
    (the daily-loss reference). ``positions`` maps symbol to signed shares; ``prices``
    symbol to its current price (a symbol held without a positive, finite price makes
    the gross-exposure limit fail closed). Both mappings are copied and read-only.
    """

    equity: float
    peak_equity: float
    day_start_equity: float
    positions: Mapping[str, float] = field(default_factory=dict)
    prices: Mapping[str, float] = field(default_factory=dict)
    _held: tuple[float, frozenset[str]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("equity", "peak_equity", "day_start_equity"):
            object.__setattr__(self, name, _finite(getattr(self, name), name))
        positions = {}
        for symbol, qty in dict(self.positions).items():
            # a float already finite needs no conversion (the common case, ~100 per batch)
            ok = type(qty) is float and qty - qty == 0.0
            positions[str(symbol)] = qty if ok else _finite(qty, f"position {symbol}")
        object.__setattr__(self, "positions", MappingProxyType(positions))
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    def adding(self, symbol: str, quantity: float, price: float | None = None) -> AccountState:
        """This account with ``quantity`` more shares of ``symbol`` (an order of a batch,
        checked and about to be sent), and ``price`` for it if it had none.

        Only the change is validated: checking a batch of orders against one account
        costs one full validation, not one per order; the held value, once computed,
        is carried over by the change alone."""
        positions = self.positions.copy()  # the proxied dicts' own copy: no re-validation
        before = positions.get(symbol, 0.0)
        positions[symbol] = before + _finite(quantity, f"position {symbol}")
        prices = self.prices
        if price is not None and symbol not in prices:
            prices = prices.copy()
            prices[symbol] = price
        held = None
        if self._held is not None:
            total, unpriced = self._held
            old = _value(before, self.prices.get(symbol))
            new = _value(positions[symbol], prices.get(symbol))
            total += (new or 0.0) - (old or 0.0)
            if new is None:
                unpriced = unpriced | {symbol}
            elif symbol in unpriced:
                unpriced = unpriced - {symbol}
            held = (total, unpriced)
        state = object.__new__(AccountState)
        # frozen: set once here, as __init__ would, without validating what is unchanged
        state.__dict__.update(
            equity=self.equity,
            peak_equity=self.peak_equity,
            day_start_equity=self.day_start_equity,
            positions=MappingProxyType(positions),
            prices=prices if isinstance(prices, MappingProxyType) else MappingProxyType(prices),
            _held=held,
        )
        return state

    def held_value(self) -> tuple[float, frozenset[str]]:
        """``sum(|shares| * price)`` over the positions held, and the symbols held without
        a usable (positive, finite) price. Computed once per state: every order of a
        batch is checked against it (:meth:`adding` carries it over)."""
        if self._held is None:
            total, unpriced = 0.0, set()
            for symbol, qty in self.positions.items():
                value = _value(qty, self.prices.get(symbol))
                if value is None:
                    unpriced.add(symbol)
                else:
                    total += value
            object.__setattr__(self, "_held", (total, frozenset(unpriced)))
        assert self._held is not None
        return self._held


@dataclass(frozen=True)
class Breach:
    """One limit exceeded. ``value`` and ``threshold`` are in the limit's unit (currency,
    multiple of equity, fraction, or order count); ``message`` is one line naming both."""

    limit: str
    value: float
    threshold: float
    message: str
    trips_kill: bool


@dataclass(frozen=True)
class Decision:
    """The verdict on one order: allowed exactly when there is no breach."""

    allowed: bool
    breaches: tuple[Breach, ...] = ()

    @property
    def trips_kill(self) -> bool:
        """True if any breach is of a limit in :attr:`RiskLimits.kill_on`."""
        return any(b.trips_kill for b in self.breaches)

    @property
    def message(self) -> str:
        """The breach messages joined with ``"; "`` (``"allowed"`` when there are none)."""
        return "; ".join(b.message for b in self.breaches) or "allowed"


# --------------------------------------------------------------------------- config


def limits_from_mapping(data: Mapping[str, Any], source: str) -> RiskLimits:
    """Validated :class:`RiskLimits` from a configuration mapping (a ``[limits]`` table).

    ``source`` names where the mapping came from (``"strategies/momentum.toml [limits]"``)
    and starts every error message. Unknown keys are refused with the closest match
    suggested; negative, non-finite or mistyped values are refused naming the key.
    Raises :class:`~stratvector.errors.ConfigError`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: risk limits must be a table, not {type(data).__name__}")
    allowed = [f.name for f in fields(RiskLimits)]
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{source}: {_unknown(key, allowed, 'risk limit key')}")
    kwargs = dict(data)
    if isinstance(kwargs.get("kill_on"), list):
        kwargs["kill_on"] = tuple(kwargs["kill_on"])
    try:
        return RiskLimits(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


# --------------------------------------------------------------------------- helpers


def _usable_price(price: Any) -> bool:
    """A price the exposure can be valued at: a positive, finite number."""
    try:
        p = float(price)
    except (TypeError, ValueError):
        return False
    return math.isfinite(p) and p > 0


def _value(qty: float, price: Any) -> float | None:
    """``|qty| * price`` of one position (0 when flat); ``None``: held without a usable
    price."""
    if qty == 0:
        return 0.0
    if type(price) is float:  # the common case, without the conversions
        return abs(qty) * price if price > 0 and price - price == 0.0 else None
    return abs(qty) * float(price) if _usable_price(price) else None


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool | str):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)  # int, float, numpy scalars, Decimal
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def _utc(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be tz-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)
