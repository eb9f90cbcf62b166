"""When resting orders fill within a bar, and at what price (shared with ibsim).

Only the bar's open, high and low are used: which of high or low came first is unknown,
so callers check protective stops before take-profits (the conservative order).
A market order decided at bar t's close fills at bar t+1's open; see the kernel.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def stop_fill_nb(side: float, stop: float, open_: float, high: float, low: float) -> float:
    """Fill price of a stop order of ``side`` (+1 buy, -1 sell) in a bar, or NaN.

    A sell stop triggers when ``low <= stop`` and fills at the stop, or at the open when
    the bar gaps through it; a buy stop mirrors that on the high. Slippage is applied by
    the caller (a triggered stop is a market order).
    """
    if side < 0.0:
        if open_ <= stop:
            return open_
        if low <= stop:
            return stop
    else:
        if open_ >= stop:
            return open_
        if high >= stop:
            return stop
    return float("nan")


@njit(cache=True)
def limit_fill_nb(side: float, limit: float, open_: float, high: float, low: float) -> float:
    """Fill price of a limit order of ``side`` in a bar, or NaN.

    A buy limit fills when ``low <= limit`` at the limit, or at the open when it opens
    better; a sell limit mirrors that on the high. Limit fills get no slippage.
    """
    if side > 0.0:
        if open_ <= limit:
            return open_
        if low <= limit:
            return limit
    else:
        if open_ >= limit:
            return open_
        if high >= limit:
            return limit
    return float("nan")
