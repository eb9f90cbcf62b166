"""The bar a keepUpToDate update carries.

:func:`stream_bar` is the file bar, or for a coarser bar size the bucket grown from its
file bars so far. With forming bars, a file bar that has opened but not closed counts
with its open only -- open, high, low and close all equal the open, no volume -- since
ibsim has no intrabar data; its close then sends the whole file bar.
"""

from __future__ import annotations

import pandas as pd

from stratvector.ibsim.market import BarSize, Instrument, bucket_keys


def stream_bar(
    inst: Instrument, size: BarSize, same_size: bool, i: int, forming: bool = False
) -> tuple[pd.Timestamp, float, float, float, float, float]:
    """``(label, open, high, low, close, volume)`` of the stream bar holding file bar ``i``
    (``forming``: bar ``i`` has only opened)."""
    if same_size:
        j = i
        label = inst.time(i)
    else:
        # Grow the current bucket from the file bars it holds so far.
        index = pd.DatetimeIndex(inst.times[max(0, i - 5000) : i + 1], tz="UTC")
        keys = bucket_keys(index, size)
        first = len(keys) - 1
        while first > 0 and keys[first - 1] == keys[-1]:
            first -= 1
        j = i - (len(keys) - 1 - first)
        fixed = not size.months and size.seconds % (7 * 86400) != 0
        label = pd.Timestamp(int(keys[-1]), tz="UTC") if fixed else inst.time(j)
    k = i if forming else i + 1  # the closed file bars of the bucket: j .. k - 1
    o = float(inst.open[j])
    if k > j:
        h, lo = float(inst.high[j:k].max()), float(inst.low[j:k].min())
        c, v = float(inst.close[k - 1]), float(inst.volume[j:k].sum())
    else:
        h = lo = c = o
        v = 0.0
    if forming and k > j:
        opened = float(inst.open[i])
        h, lo, c = max(h, opened), min(lo, opened), opened
    return label, o, h, lo, c, v
