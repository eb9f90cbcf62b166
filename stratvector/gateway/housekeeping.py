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

And one thing that would make its decisions late: CPython's automatic garbage
collection runs whenever enough objects were allocated, which during a decision means
in the middle of it (a young-generation pass took up to 3 ms with the trader's
allocations). :class:`GcPause` holds automatic collection off from the first bar of a
bar time until its orders are sent; the collection then runs right after, between bars.
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
GC_PAUSE_LIMIT = 5.0  # seconds automatic collection stays off at most (a leaked pause)


class GcPause:
    """Counted pauses of CPython's automatic garbage collection (nested: one per bar
    time being decided). Automatic collection resumes when the last pause ends, or
    after :data:`GC_PAUSE_LIMIT` seconds whatever happens (a pause that is never ended
    must not leak memory): objects are only collected later, never lost."""

    def __init__(self, limit: float = GC_PAUSE_LIMIT) -> None:
        self.limit = limit
        self._count = 0
        self._expiry: asyncio.TimerHandle | None = None

    def pause(self) -> None:
        self._count += 1
        if self._count == 1 and gc.isenabled():
            gc.disable()
            with contextlib.suppress(RuntimeError):  # no loop: only resume() re-enables
                self._expiry = asyncio.get_running_loop().call_later(self.limit, self._expire)

    def resume(self) -> None:
        self._count = max(0, self._count - 1)
        if self._count == 0:
            self._enable()

    def close(self) -> None:
        """End every pause (the trader stops)."""
        self._count = 0
        self._enable()

    def _expire(self) -> None:
        self._expiry = None
        if self._count:
            log.warning("automatic garbage collection paused for %.0f s; resumed", self.limit)
            self._count = 0
            self._enable()

    def _enable(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        gc.enable()


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
