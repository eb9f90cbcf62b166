"""Protective exits (``[risk]`` stop_loss, trailing_stop, take_profit) as IB orders.

The backtest's exits are relative to the entry *fill* price and work from the entry bar
(see :mod:`stratvector.backtest.nb`). IB has no "percent of the fill" stop, so each
strategy order that leaves a position carries bracket children (held by IB until the
parent fills) built so the first bar matches as closely as IB allows, then fixed:

==================  =======================================  ==========================
exit                child sent with the parent               after the parent filled
==================  =======================================  ==========================
stop_loss           TRAIL ``stop_loss`` % (IB anchors it at  modified to STP at
                    the fill price: exact in the entry bar)   ``entry x (1 - stop_loss)``
trailing_stop       TRAIL ``trailing_stop`` % (anchored at    unchanged (it trails the
                    the fill, ratchets on highs as the        way the backtest's does)
                    backtest's peak does)
take_profit         LMT at the *estimated* entry (the close   modified to LMT at
                    plus slippage) ``x (1 + take_profit)``    ``entry x (1 + take_profit)``
==================  =======================================  ==========================

(for shorts mirrored). An order that only reduces a position keeps its entry price, so
its children are sent with exact prices (STP at the entry's stop, TRAIL from the
current peak, LMT at the entry's target). Children of one parent form IB's bracket OCA
group: whichever fills first reduces the others.

stop_loss together with trailing_stop
-------------------------------------
The backtest exits at the tighter of the two levels (for a long the higher). When the
trailing stop can never be looser than the stop-loss while the children work -- an
opening order with ``trailing_stop <= stop_loss`` (both start at the fill and the trail
only tightens), or a reducing order whose current trail level is already at least as
tight -- only the trailing stop is sent: the stop-loss child would be redundant, and a
gap through both would trigger two market orders at once. Otherwise both are sent;
when both trigger in one bar, the price reaches the tighter one first, so IB fills that
one and cancels the other, as the backtest does (ibsim checks stops in that order too).
An add keeps both (its entry is known only after the fill).

Tick rounding
-------------
IB refuses (error 110) a price that is not on the grid of the contract's market rule:
a multiple of the increment of the price band the price lies in (the increment can
depend on the price; ``minTick`` is only one of them, see
:mod:`stratvector.gateway.contracts`). Every absolute price sent -- the STP price, a
TRAIL's initial ``trailStopPrice``, the take-profit LMT price, and their fixed prices --
is rounded with the increment at that price *in the position's favour*: a sell exit
(closing a long) up, a buy exit (covering a short) down. So a protective stop is never
looser than the backtest's level (it triggers at that level or up to one increment
earlier) and a take-profit never fills at a worse price than the backtest's target (it
may need up to one increment more to trigger). A price already on its grid, up to float
noise (1e-9 of an increment), is kept. Rounding may cross a band edge (0.9999 up to
1.00): the result is then checked against the increment where it landed and rounded
again, in the same direction, until it is on that band's grid (:func:`round_price`), so
it is always valid and still on the favourable side. Trailing percentages are sent as
they are: IB computes those stops itself.

``tick`` is either a constant increment (a float; :data:`DEFAULT_TICK`, 0.01, US stocks,
when a caller passes none) or anything with ``tick_at(price) -> float``, as the
contract book's :class:`~stratvector.gateway.contracts.Instrument` has; callers pass the
instrument. The backtest does not round: fills at a stop or take-profit level differ
from it by less than one increment (before slippage) unless the level is on the grid,
and a bar that reaches the rounded level but not the backtest's (or the reverse) exits
in one and not the other.

Known differences from the backtest (named in the parity tests):

- take_profit in the entry bar uses the estimated entry (the signal bar's close plus
  slippage) until the fix reaches IB: when it triggers before that, it fills at the
  estimated target, not the fill-relative one, and a price between the two exits in one
  and not the other. Against IB the window is the time from the parent's fill to IB
  accepting the modification (the fix is sent on the ``Filled`` status: milliseconds
  plus the round trip), so it needs the market to reach the estimated target within
  milliseconds of the open. ibsim shows the same: stepped with the bar's open first
  (``IBSim.advance_open``, then ``advance``), the fix arrives before the rest of the
  entry bar and the parity test matches the backtest exactly, take-profits in their
  entry bar included; stepped a whole bar at once (``advance``), the estimated target
  holds for the entire entry bar and a parity test pins the difference;
- adding to a position: in the entry bar the stop is anchored at the add's fill, not at
  the volume-weighted entry (fixed from the next bar);
- tick rounding (above): a stop-loss or take-profit level that is not on the grid
  fills up to one increment away from the backtest's, and may trigger in a bar the
  backtest's does not (or the reverse);
- stop_loss together with trailing_stop: when a bar gaps through both, both trigger at
  the open and the first placed fills there (the backtest also fills at the open; only
  the exit reason may differ);
- IB computes TRAIL stops as ``price - price x pct / 100``: equal to the backtest's
  ``price x (1 - pct)`` within a few units in the last place (1e-15 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from ib_async import Order
from ib_async.util import UNSET_DOUBLE

STOP, TRAIL, TAKE = "stop", "trail", "tp"
EXIT_LEGS = frozenset({STOP, TRAIL, TAKE})

#: The tick used when a caller does not pass the contract's (US stocks: one cent).
DEFAULT_TICK = 0.01

#: At most this many re-roundings when a rounded price lands in another band (each one
#: moves the price the same way, so it ends; real rules need at most one).
_MAX_REROUNDS = 8


class TickTable(Protocol):
    """A price-dependent minimum increment (the contract book's ``Instrument``)."""

    def tick_at(self, price: float) -> float: ...


#: A constant increment, or one that depends on the price.
Tick = float | TickTable


@dataclass(frozen=True)
class ExitSpec:
    """The exits one strategy order must leave behind it.

    ``quantity`` is the signed size of the exit orders (opposite to the resulting
    position); ``entry``/``peak`` are known only when the order reduces a position (the
    entry then does not change); ``estimate`` is the expected fill (close plus slippage).
    """

    quantity: float
    stop_loss: float
    trailing_stop: float
    take_profit: float
    estimate: float
    entry: float | None = None
    peak: float | None = None
    old_entry: float | None = None  # when adding: the entry before the add
    old_quantity: float = 0.0

    @property
    def side(self) -> float:
        """The exit orders' side: +1 buy (covering a short), -1 sell (closing a long)."""
        return 1.0 if self.quantity > 0 else -1.0

    def legs(self) -> list[str]:
        """The exits to send as children, in placement order."""
        out = []
        if self.stop_loss > 0 and not self.trail_covers_stop():
            out.append(STOP)
        if self.trailing_stop > 0:
            out.append(TRAIL)
        if self.take_profit > 0:
            out.append(TAKE)
        return out

    def trail_covers_stop(self) -> bool:
        """True if the trailing stop is never looser than the stop-loss while these
        exits work, so the stop-loss child is not needed (see the module docstring)."""
        if not (self.stop_loss > 0 and self.trailing_stop > 0) or self.old_entry is not None:
            return False
        if self.entry is None:  # opening: both levels start from the same fill price
            return self.trailing_stop <= self.stop_loss
        if self.peak is None:
            return False
        s = self.side
        trail = stop_price(self.peak, s, self.trailing_stop)
        stop = stop_price(self.entry, s, self.stop_loss)
        return trail >= stop if s < 0 else trail <= stop

    def order(
        self, leg: str, ref: str, tif: str, account: str, tick: Tick = DEFAULT_TICK
    ) -> tuple[Order, float | None, float | None]:
        """The child order of ``leg`` and the (limit, stop) prices journaled with its intent.

        Absolute prices are rounded with ``tick`` (the contract's increment at each price)
        in the position's favour; see the module docstring."""
        action = "BUY" if self.side > 0 else "SELL"
        qty = abs(self.quantity)
        o = Order(action=action, totalQuantity=qty, tif=tif, orderRef=ref, account=account)
        s = self.side
        if leg == STOP:
            if self.entry is not None:
                o.orderType = "STP"
                o.auxPrice = exit_price(stop_price(self.entry, s, self.stop_loss), s, tick)
                return o, None, o.auxPrice
            o.orderType = "TRAIL"
            o.trailingPercent = self.stop_loss * 100.0
            return o, None, stop_price(self.estimate, s, self.stop_loss)
        if leg == TRAIL:
            o.orderType = "TRAIL"
            o.trailingPercent = self.trailing_stop * 100.0
            if self.peak is not None:
                level = stop_price(self.peak, s, self.trailing_stop)
                o.trailStopPrice = exit_price(level, s, tick)
                return o, None, o.trailStopPrice
            return o, None, stop_price(self.estimate, s, self.trailing_stop)
        o.orderType = "LMT"
        base = self.entry if self.entry is not None else self.estimate
        o.lmtPrice = exit_price(target_price(base, s, self.take_profit), s, tick)
        return o, o.lmtPrice, None

    def needs_fixing(self, leg: str) -> bool:
        """True if the child must be modified once the parent's fill price is known."""
        return self.entry is None and leg in (STOP, TAKE)

    def fixed(self, leg: str, order: Order, fill_price: float, tick: Tick = DEFAULT_TICK) -> Order:
        """``order`` modified to its exact price, given the parent's average fill price,
        rounded with ``tick`` in the position's favour."""
        entry = fill_price
        if self.old_entry is not None and self.old_quantity:
            old = abs(self.old_quantity)
            new = abs(self.quantity)
            entry = (self.old_entry * old + fill_price * (new - old)) / new
        s = self.side
        if leg == STOP:
            order.orderType = "STP"
            order.auxPrice = exit_price(stop_price(entry, s, self.stop_loss), s, tick)
            order.trailingPercent = UNSET_DOUBLE
            order.trailStopPrice = UNSET_DOUBLE
        elif leg == TAKE:
            order.lmtPrice = exit_price(target_price(entry, s, self.take_profit), s, tick)
        return order


def stop_price(entry: float, exit_side: float, fraction: float) -> float:
    """The backtest's stop: ``entry x (1 + side x fraction)`` (side of the exit order)."""
    return entry * (1.0 + exit_side * fraction)


def target_price(entry: float, exit_side: float, fraction: float) -> float:
    """The backtest's take-profit limit: ``entry x (1 - side x fraction)``."""
    return entry * (1.0 - exit_side * fraction)


def to_tick(price: float, tick: float, up: bool) -> float:
    """``price`` rounded up or down to a multiple of ``tick``; a price within 1e-9 of a
    tick of a multiple is taken as that multiple. ``tick <= 0`` leaves it unchanged."""
    if not tick > 0 or not math.isfinite(price):
        return price
    n = price / tick
    k = math.ceil(n - 1e-9) if up else math.floor(n + 1e-9)
    return round(k * tick, 10)


def round_price(price: float, tick: Tick, up: bool) -> float:
    """``price`` rounded up or down onto the grid valid where it lands.

    ``tick`` is a constant increment (:func:`to_tick`) or a :class:`TickTable`: then the
    price is rounded with the increment at ``price``, and if the result lies in a band
    with another increment (a band edge crossed), rounded again the same way with that
    one, until the increment where it lands is the one it was rounded with. Non-finite
    prices are returned unchanged."""
    if isinstance(tick, float | int):
        return to_tick(price, tick, up)
    if not math.isfinite(price):
        return price
    step = tick.tick_at(price)
    for _ in range(_MAX_REROUNDS):
        price = to_tick(price, step, up)
        landed = tick.tick_at(price)
        if landed == step:
            break
        step = landed
    return price


def exit_price(price: float, exit_side: float, tick: Tick) -> float:
    """An exit price on the grid, rounded in the position's favour: up for a sell exit
    (``exit_side`` -1, closing a long), down for a buy exit (covering a short)."""
    return round_price(price, tick, up=exit_side < 0)


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x != UNSET_DOUBLE
