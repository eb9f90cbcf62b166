"""Pre-trade risk limits: pure checks of one order, or of the account, against :class:`RiskLimits`.

The gateway asks :meth:`RiskChecker.check` before it journals and sends an order, calls
:meth:`RiskChecker.record_sent` once the order is out, and calls
:meth:`RiskChecker.check_account` on every bar and fill. Nothing here does I/O or reads
a clock: every instant comes from the caller (``OrderProposal.time``, ``now``), so the
same inputs always give the same decision.

Units and conventions:

- Quantities are signed shares (``+`` long/buy, ``-`` short/sell); prices are positive,
  in the account currency; values are ``|shares| * price``.
- Fractions are of equity: ``max_gross_exposure=1.5`` allows gross exposure of 1.5x
  equity; ``max_daily_loss=0.03`` is 3 % of the day's starting equity;
  ``max_drawdown=0.15`` is 15 % below the peak equity.
- A value *at* its threshold is allowed; only a value above it is a breach (with a
  relative tolerance of 1e-9 so float rounding never rejects an order at the limit).
- ``0`` (or ``None``) turns a limit off.

Risk-reducing orders: an order that moves a position toward zero without crossing it
is always allowed, whatever is breached (daily loss, drawdown, exposure, order size,
order rate), so a tripped kill switch can always flatten. An order that flips a
position is judged by the part past zero only -- as if it were sent as one closing
order (always allowed) and one opening order (checked). Every limit is checked and
every breach reported, not just the first.

Fail closed: when a limit cannot be evaluated (no usable price for a held symbol,
equity or reference equity not positive), the check reports a breach of that limit
with ``value`` ``nan`` or ``inf`` and says why, rather than letting the order through.

Hazard: :class:`RiskChecker` keeps the order-rate window in memory. It is meant for one
thread (the gateway's event loop) and starts empty, so after a restart the first minute
is judged without the orders sent before it.
"""

from __future__ import annotations

import bisect
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
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
"""Every limit, in the order :meth:`RiskChecker.check` evaluates and reports them."""

RATE_WINDOW = timedelta(seconds=60)
"""The rolling window of ``max_orders_per_minute``: orders sent in ``(t - 60 s, t]``."""

_REL_TOL = 1e-9
_QTY_TOL = 1e-9  # shares; a residue this small after a closing order is float noise, not a flip
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
      account-wide, counting every order recorded with :meth:`RiskChecker.record_sent`.
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

    def __post_init__(self) -> None:
        for name in ("equity", "peak_equity", "day_start_equity"):
            object.__setattr__(self, name, _finite(getattr(self, name), name))
        positions = {
            str(symbol): _finite(qty, f"position {symbol}")
            for symbol, qty in dict(self.positions).items()
        }
        object.__setattr__(self, "positions", MappingProxyType(positions))
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    def adding(self, symbol: str, quantity: float, price: float | None = None) -> AccountState:
        """This account with ``quantity`` more shares of ``symbol`` (an order of a batch,
        checked and about to be sent), and ``price`` for it if it had none.

        Only the change is validated: checking a batch of orders against one account
        costs one full validation, not one per order."""
        positions = dict(self.positions)
        positions[symbol] = positions.get(symbol, 0.0) + _finite(quantity, f"position {symbol}")
        prices = dict(self.prices)
        if price is not None and symbol not in prices:
            prices[symbol] = price
        state = object.__new__(AccountState)
        for name, value in (
            ("equity", self.equity),
            ("peak_equity", self.peak_equity),
            ("day_start_equity", self.day_start_equity),
            ("positions", MappingProxyType(positions)),
            ("prices", MappingProxyType(prices)),
        ):
            object.__setattr__(state, name, value)
        return state


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


# --------------------------------------------------------------------------- checker


class RiskChecker:
    """Checks orders and the account against one :class:`RiskLimits`. No I/O."""

    def __init__(self, limits: RiskLimits) -> None:
        if not isinstance(limits, RiskLimits):
            raise TypeError(f"limits must be RiskLimits, not {type(limits).__name__}")
        self._limits = limits
        self._sent: list[datetime] = []  # sorted send times within the rate window

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    def check(self, order: OrderProposal, account: AccountState) -> Decision:
        """Decide whether ``order`` may be sent, given ``account`` before the order.

        A risk-reducing order is always allowed with no breaches. Otherwise every limit
        that is on is evaluated and every breach reported; the order is allowed only
        if there is none. Daily loss and drawdown are judged on ``account`` as it is
        (see :meth:`check_account`). Does not record the order: call
        :meth:`record_sent` after it was sent.
        """
        held = account.positions.get(order.symbol, 0.0)
        opened = opened_quantity(held, order.quantity)
        if opened == 0:
            return Decision(True, ())
        after = held + order.quantity
        lim = self._limits
        breaches: list[Breach] = []
        desc = f"order {order.symbol} {_qty(order.quantity)} @ {order.price:,.2f}"
        flipped = held != 0 and (after > 0) != (held > 0)
        part = f", {_qty(math.copysign(opened, after))} past flat" if flipped else ""

        if lim.max_position_value:
            value = abs(after) * order.price
            if _over(value, lim.max_position_value):
                v, t = _pair(value, lim.max_position_value)
                breaches.append(
                    self._breach(
                        MAX_POSITION_VALUE,
                        value,
                        lim.max_position_value,
                        f"{order.symbol} position {_qty(after)} after {desc} = {v} > {t}",
                    )
                )
        if lim.max_gross_exposure:
            breach = self._gross_exposure(order, account, after, desc)
            if breach is not None:
                breaches.append(breach)
        if lim.max_order_notional:
            value = opened * order.price
            if _over(value, lim.max_order_notional):
                v, t = _pair(value, lim.max_order_notional)
                breaches.append(
                    self._breach(
                        MAX_ORDER_NOTIONAL,
                        value,
                        lim.max_order_notional,
                        f"{desc}{part} = {v} > {t}",
                    )
                )
        if lim.max_orders_per_minute:
            count = self._count_in_window(order.time) + 1
            if count > lim.max_orders_per_minute:
                breaches.append(
                    self._breach(
                        MAX_ORDERS_PER_MINUTE,
                        float(count),
                        float(lim.max_orders_per_minute),
                        f"{desc} would be order {count} in the 60 s to "
                        f"{_iso(order.time)} > {lim.max_orders_per_minute}",
                    )
                )
        breaches.extend(self._account_breaches(account))
        return Decision(not breaches, tuple(breaches))

    def record_sent(self, order: OrderProposal) -> None:
        """Count ``order`` (sent at ``order.time``) in the orders-per-minute window.

        Record every order that went out, risk-reducing ones included; only
        risk-increasing orders are held back by the limit.
        """
        if not self._limits.max_orders_per_minute:
            return
        bisect.insort(self._sent, order.time)
        self._prune(self._sent[-1])

    def check_account(self, account: AccountState, now: datetime) -> tuple[Breach, ...]:
        """Daily-loss and drawdown breaches of ``account`` at ``now``, independent of orders.

        The daemon calls this on every bar and fill and trips the kill switch when a
        returned breach has ``trips_kill``. ``now`` (tz-aware) also ages the order-rate
        window.
        """
        now = _utc(now, "now")
        if self._sent:
            self._prune(now)
        return self._account_breaches(account)

    # ------------------------------------------------------------------ internals

    def _breach(self, limit: str, value: float, threshold: float, text: str) -> Breach:
        return Breach(limit, value, threshold, f"{limit}: {text}", limit in self._limits.kill_on)

    def _gross_exposure(
        self, order: OrderProposal, account: AccountState, after: float, desc: str
    ) -> Breach | None:
        threshold = self._limits.max_gross_exposure
        gross = abs(after) * order.price
        unpriced: list[str] = []
        for symbol, qty in account.positions.items():
            if symbol == order.symbol or qty == 0:
                continue
            price = account.prices.get(symbol)
            if not _usable_price(price):
                unpriced.append(symbol)
                continue
            gross += abs(qty) * float(price)  # type: ignore[arg-type]
        if unpriced:
            return self._breach(
                MAX_GROSS_EXPOSURE,
                math.nan,
                threshold,
                f"no usable price for held {', '.join(sorted(unpriced))}; cannot value "
                f"exposure for {desc} (limit {threshold:g}x equity)",
            )
        if account.equity <= 0:
            return self._breach(
                MAX_GROSS_EXPOSURE,
                math.inf,
                threshold,
                f"equity is {account.equity:,.2f}; cannot measure exposure for {desc} "
                f"(limit {threshold:g}x equity)",
            )
        ratio = gross / account.equity
        if not _over(ratio, threshold):
            return None
        r, t = _pair(ratio, threshold, suffix="x")
        return self._breach(
            MAX_GROSS_EXPOSURE,
            ratio,
            threshold,
            f"gross {gross:,.2f} / equity {account.equity:,.2f} = {r} > {t} after {desc}",
        )

    def _account_breaches(self, account: AccountState) -> tuple[Breach, ...]:
        lim = self._limits
        out: list[Breach] = []
        if lim.max_daily_loss:
            out.extend(
                self._loss(MAX_DAILY_LOSS, account.equity, account.day_start_equity, "day-start")
            )
        if lim.max_drawdown:
            out.extend(self._loss(MAX_DRAWDOWN, account.equity, account.peak_equity, "peak"))
        return tuple(out)

    def _loss(
        self, limit: str, equity: float, reference: float, ref_name: str
    ) -> tuple[Breach, ...]:
        threshold: float = getattr(self._limits, limit)
        if reference <= 0:
            return (
                self._breach(
                    limit,
                    math.inf,
                    threshold,
                    f"{ref_name} equity is {reference:,.2f}; cannot measure the loss "
                    f"(limit {threshold:.2%})",
                ),
            )
        loss = (reference - equity) / reference
        if not _over(loss, threshold):
            return ()
        v, t = _pair(loss * 100, threshold * 100, suffix="%")
        return (
            self._breach(
                limit,
                loss,
                threshold,
                f"equity {equity:,.2f} is {v} below {ref_name} equity {reference:,.2f} > {t}",
            ),
        )

    def _count_in_window(self, t: datetime) -> int:
        # orders sent in (t - 60 s, ...]; a send time after t (clock skew) still counts
        return len(self._sent) - bisect.bisect_right(self._sent, t - RATE_WINDOW)

    def _prune(self, latest: datetime) -> None:
        cut = bisect.bisect_right(self._sent, latest - RATE_WINDOW)
        if cut:
            del self._sent[:cut]


def opened_quantity(held: float, quantity: float) -> float:
    """The shares of an order of ``quantity`` that add risk to a position of ``held``.

    ``|quantity|`` when opening or adding; ``0`` when reducing toward zero (closing
    included); for a flip, only the part past zero. Residues below 1e-9 shares count as
    zero, so a float-noisy closing order is never taken for a flip.
    """
    if held == 0 or (held > 0) == (quantity > 0):
        return abs(quantity)
    past = abs(quantity) - abs(held)
    return past if past > _QTY_TOL else 0.0


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


def _usable_price(price: Any) -> bool:
    try:
        p = float(price)
    except (TypeError, ValueError):
        return False
    return math.isfinite(p) and p > 0


def _over(value: float, threshold: float) -> bool:
    return value > threshold and not math.isclose(value, threshold, rel_tol=_REL_TOL)


def _qty(q: float) -> str:
    if float(q).is_integer():
        return f"{q:+,.0f}"
    return f"{q:+,.6f}".rstrip("0")


def _pair(value: float, threshold: float, suffix: str = "") -> tuple[str, str]:
    """``value`` and ``threshold`` as text with 2 decimals, or more until they differ."""
    for decimals in range(2, 10):
        v, t = f"{value:,.{decimals}f}", f"{threshold:,.{decimals}f}"
        if v != t:
            break
    return v + suffix, t + suffix


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
