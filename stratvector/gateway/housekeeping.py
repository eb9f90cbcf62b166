"""Keeping a long-running trader's memory flat.

A trader runs for weeks; two things would otherwise make its resident size grow or stay
at its start-up peak:

- ib_async keeps every order's ``Trade`` and ``Fill`` for the life of the connection:
  :func:`forget_settled_orders` runs for as long as the trader does and, every
  :data:`HOUSEKEEPING_INTERVAL` seconds and between decisions, drops the orders settled
  :data:`~stratvector.gateway.receiver.SETTLED_AGE` seconds ago
  (:meth:`Receiver.forget_settled <stratvector.gateway.receiver.Receiver.forget_settled>`);
- the warmup leaves temporary frames, bar objects and start-up code pages behind:
  :func:`release_memory` hands them back after every sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import gc
import logging
import sys
from collections.abc import Callable

from stratvector.gateway.receiver import SETTLED_AGE, Receiver
from stratvector.memory import release_file_pages

log = logging.getLogger("stratvector.gateway.housekeeping")

HOUSEKEEPING_INTERVAL = 60.0  # seconds between sweeps of settled orders


async def forget_settled_orders(
    receiver: Receiver, deciding: Callable[[], bool], every: float = HOUSEKEEPING_INTERVAL
) -> None:
    """Forever: every ``every`` seconds, once ``deciding()`` is false (a sweep never
    delays a decision), forget the orders settled at least
    :data:`~stratvector.gateway.receiver.SETTLED_AGE` seconds ago. Run as a task;
    cancel it to stop."""
    while True:
        await asyncio.sleep(every)
        while deciding():
            await asyncio.sleep(0.05)
        now = dt.datetime.now(dt.UTC)
        cutoff = now - dt.timedelta(seconds=SETTLED_AGE)
        dropped = receiver.forget_settled(cutoff)
        if dropped:
            log.debug("forgot %d settled order(s)", dropped)


def release_memory() -> None:
    """Collect garbage, freeze what survives, and hand freed heap pages back to the OS
    (glibc only; a no-op elsewhere), so the resident size after a warmup reflects what
    trading keeps.

    ``gc.freeze`` moves the million-odd objects of the imported libraries and the warmup
    into the permanent generation: without it every full collection walks them all
    (tens to hundreds of ms in the middle of a decision). Library code pages touched
    only during start-up are dropped from the resident set
    (:func:`~stratvector.memory.release_file_pages`)."""
    gc.collect()
    gc.freeze()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    release_file_pages()
