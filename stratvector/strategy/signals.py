"""Turn entry/exit conditions into a causal position state (+1, 0, -1).

:func:`latch_nb` is the hysteresis loop the built-in strategies share: a position is
entered when its entry condition holds and kept until its exit condition holds, so a
signal that hovers between two thresholds does not flip the position on every bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def latch_nb(
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray,
    short_exit: np.ndarray,
    valid: np.ndarray,
) -> np.ndarray:
    """Position per bar from boolean condition arrays of one length.

    Bars where ``valid`` is False get NaN (no view) and leave the state as it was; the
    state starts flat. On each valid bar, in this order: a long exits on ``long_exit``, a
    short on ``short_exit``; then a flat position goes long on ``long_entry``, else short
    on ``short_entry``. So one bar can close a long and open a short (a reversal). Pass an
    all-False ``short_entry`` for long-only. The value at ``t`` reads only index ``t`` and
    the state carried from earlier bars: the loop is causal.
    """
    size = valid.shape[0]
    out = np.full(size, np.nan)
    state = 0.0
    for i in range(size):
        if not valid[i]:
            continue
        if (state > 0.0 and long_exit[i]) or (state < 0.0 and short_exit[i]):
            state = 0.0
        if state == 0.0:
            if long_entry[i]:
                state = 1.0
            elif short_entry[i]:
                state = -1.0
        out[i] = state
    return out


__all__ = ["latch_nb"]
