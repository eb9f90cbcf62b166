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

Known differences from the backtest (named in the parity tests):

- take_profit in the entry bar uses the estimated entry (the signal bar's close plus
  slippage): when it triggers in the entry bar it fills at the estimated target, not the
  fill-relative one, and a bar whose high (low for shorts) lies between the two exits in
  one and not the other. From the bar after the entry on, it matches exactly;
- adding to a position: in the entry bar the stop is anchored at the add's fill, not at
  the volume-weighted entry (fixed from the next bar);
- stop_loss together with trailing_stop are two child stops; when both trigger inside
  the same bar IB fills the first placed, the backtest the tighter one;
- IB computes TRAIL stops as ``price - price x pct / 100``: equal to the backtest's
  ``price x (1 - pct)`` within a few units in the last place (1e-15 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ib_async import Order
from ib_async.util import UNSET_DOUBLE

STOP, TRAIL, TAKE = "stop", "trail", "tp"
EXIT_LEGS = frozenset({STOP, TRAIL, TAKE})


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
        out = []
        if self.stop_loss > 0:
            out.append(STOP)
        if self.trailing_stop > 0:
            out.append(TRAIL)
        if self.take_profit > 0:
            out.append(TAKE)
        return out

    def order(
        self, leg: str, ref: str, tif: str, account: str
    ) -> tuple[Order, float | None, float | None]:
        """The child order of ``leg`` and the (limit, stop) prices journaled with its intent."""
        action = "BUY" if self.side > 0 else "SELL"
        qty = abs(self.quantity)
        o = Order(action=action, totalQuantity=qty, tif=tif, orderRef=ref, account=account)
        s = self.side
        if leg == STOP:
            if self.entry is not None:
                o.orderType = "STP"
                o.auxPrice = stop_price(self.entry, s, self.stop_loss)
                return o, None, o.auxPrice
            o.orderType = "TRAIL"
            o.trailingPercent = self.stop_loss * 100.0
            return o, None, stop_price(self.estimate, s, self.stop_loss)
        if leg == TRAIL:
            o.orderType = "TRAIL"
            o.trailingPercent = self.trailing_stop * 100.0
            if self.peak is not None:
                o.trailStopPrice = stop_price(self.peak, s, self.trailing_stop)
                return o, None, o.trailStopPrice
            return o, None, stop_price(self.estimate, s, self.trailing_stop)
        o.orderType = "LMT"
        o.lmtPrice = target_price(
            self.entry if self.entry is not None else self.estimate, s, self.take_profit
        )
        return o, o.lmtPrice, None

    def needs_fixing(self, leg: str) -> bool:
        """True if the child must be modified once the parent's fill price is known."""
        return self.entry is None and leg in (STOP, TAKE)

    def fixed(self, leg: str, order: Order, fill_price: float) -> Order:
        """``order`` modified to its exact price, given the parent's average fill price."""
        entry = fill_price
        if self.old_entry is not None and self.old_quantity:
            old = abs(self.old_quantity)
            new = abs(self.quantity)
            entry = (self.old_entry * old + fill_price * (new - old)) / new
        s = self.side
        if leg == STOP:
            order.orderType = "STP"
            order.auxPrice = stop_price(entry, s, self.stop_loss)
            order.trailingPercent = UNSET_DOUBLE
            order.trailStopPrice = UNSET_DOUBLE
        elif leg == TAKE:
            order.lmtPrice = target_price(entry, s, self.take_profit)
        return order


def stop_price(entry: float, exit_side: float, fraction: float) -> float:
    """The backtest's stop: ``entry x (1 + side x fraction)`` (side of the exit order)."""
    return entry * (1.0 + exit_side * fraction)


def target_price(entry: float, exit_side: float, fraction: float) -> float:
    """The backtest's take-profit limit: ``entry x (1 - side x fraction)``."""
    return entry * (1.0 - exit_side * fraction)


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x != UNSET_DOUBLE
