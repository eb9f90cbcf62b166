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

The values judged and returned (:class:`RiskLimits`, :class:`OrderProposal`,
:class:`AccountState`, :class:`Breach`, :class:`Decision`) and the configuration parser
(:func:`limits_from_mapping`) live in :mod:`stratvector.risk.values`; they are
re-exported here, so ``from stratvector.risk.limits import RiskLimits`` keeps working.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime, timedelta

from stratvector.risk.values import (
    LIMIT_NAMES,
    MAX_DAILY_LOSS,
    MAX_DRAWDOWN,
    MAX_GROSS_EXPOSURE,
    MAX_ORDER_NOTIONAL,
    MAX_ORDERS_PER_MINUTE,
    MAX_POSITION_VALUE,
    AccountState,
    Breach,
    Decision,
    OrderProposal,
    RiskLimits,
    _utc,
    limits_from_mapping,
)

RATE_WINDOW = timedelta(seconds=60)
"""The rolling window of ``max_orders_per_minute``: orders sent in ``(t - 60 s, t]``."""

_REL_TOL = 1e-9
_QTY_TOL = 1e-9  # shares; a residue this small after a closing order is float noise, not a flip


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

        if lim.max_position_value:
            value = abs(after) * order.price
            if _over(value, lim.max_position_value):
                v, t = _pair(value, lim.max_position_value)
                breaches.append(
                    self._breach(
                        MAX_POSITION_VALUE,
                        value,
                        lim.max_position_value,
                        f"{order.symbol} position {_qty(after)} after {_describe(order)} = "
                        f"{v} > {t}",
                    )
                )
        if lim.max_gross_exposure:
            breach = self._gross_exposure(order, account, after)
            if breach is not None:
                breaches.append(breach)
        if lim.max_order_notional:
            value = opened * order.price
            if _over(value, lim.max_order_notional):
                v, t = _pair(value, lim.max_order_notional)
                flipped = held != 0 and (after > 0) != (held > 0)
                part = f", {_qty(math.copysign(opened, after))} past flat" if flipped else ""
                breaches.append(
                    self._breach(
                        MAX_ORDER_NOTIONAL,
                        value,
                        lim.max_order_notional,
                        f"{_describe(order)}{part} = {v} > {t}",
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
                        f"{_describe(order)} would be order {count} in the 60 s to "
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
        self, order: OrderProposal, account: AccountState, after: float
    ) -> Breach | None:
        threshold = self._limits.max_gross_exposure
        # the account's held value once per batch, this order's symbol taken out
        held, unpriced = account.held_value()
        own = account.positions.get(order.symbol, 0.0)
        if order.symbol in unpriced:
            unpriced = unpriced - {order.symbol}
        elif own:
            held -= abs(own) * float(account.prices[order.symbol])
        gross = abs(after) * order.price + held
        if unpriced:
            return self._breach(
                MAX_GROSS_EXPOSURE,
                math.nan,
                threshold,
                f"no usable price for held {', '.join(sorted(unpriced))}; cannot value "
                f"exposure for {_describe(order)} (limit {threshold:g}x equity)",
            )
        if account.equity <= 0:
            return self._breach(
                MAX_GROSS_EXPOSURE,
                math.inf,
                threshold,
                f"equity is {account.equity:,.2f}; cannot measure exposure for {_describe(order)} "
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
            f"gross {gross:,.2f} / equity {account.equity:,.2f} = {r} > {t} "
            f"after {_describe(order)}",
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


# --------------------------------------------------------------------------- helpers


def _over(value: float, threshold: float) -> bool:
    return value > threshold and not math.isclose(value, threshold, rel_tol=_REL_TOL)


def _describe(order: OrderProposal) -> str:
    """The order as breach messages name it (built only when there is a breach)."""
    return f"order {order.symbol} {_qty(order.quantity)} @ {order.price:,.2f}"


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


__all__ = [
    "LIMIT_NAMES",
    "MAX_DAILY_LOSS",
    "MAX_DRAWDOWN",
    "MAX_GROSS_EXPOSURE",
    "MAX_ORDERS_PER_MINUTE",
    "MAX_ORDER_NOTIONAL",
    "MAX_POSITION_VALUE",
    "RATE_WINDOW",
    "AccountState",
    "Breach",
    "Decision",
    "OrderProposal",
    "RiskChecker",
    "RiskLimits",
    "limits_from_mapping",
    "opened_quantity",
]
