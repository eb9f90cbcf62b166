"""Journal calls off the event loop, in order.

Every journal call is a committed database transaction (about a millisecond or more). The
gateway runs them on one worker thread so the event loop keeps reading IB's socket, and
in submission order, so an intent is written before its submission, a fill before its
commission, a status before the next one.

- :meth:`JournalQueue.call` awaits the result (used where the protocol needs it: an
  intent must be committed before ``placeOrder``). ``urgent=True`` runs it on a second
  worker, so an intent does not wait behind the fills and statuses of the previous bar
  (SQLite serializes the two writers; ordering between them is never needed: a status
  of an order is only queued after its intent committed).
- :meth:`JournalQueue.submit` is fire-and-forget for facts that IB can replay (fills,
  statuses, events): a failed write is logged and counted, and reconciliation recovers
  it from IB after the next (re)connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from stratvector.store import Journal

log = logging.getLogger("stratvector.gateway.journal")

T = TypeVar("T")
HOLD_LIMIT = 1.0  # seconds the main lane waits at most for a decision to finish


class JournalQueue:
    """One worker thread that runs journal calls FIFO. Constructor does no I/O."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._pool: ThreadPoolExecutor | None = None
        self._urgent: ThreadPoolExecutor | None = None
        self._open = threading.Event()  # the main lane may run (not held by a decision)
        self._open.set()
        self._holds = 0
        self._pending: set[Future[Any]] = set()
        self.failures = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sv-journal")
            self._urgent = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sv-journal-urgent")

    async def call(
        self, fn: Callable[..., T], *args: Any, urgent: bool = False, **kwargs: Any
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the worker after everything submitted before it
        (``urgent``: on the second worker, after the urgent calls before it)."""
        fut = self._submit(fn, args, kwargs, urgent)
        return await asyncio.wrap_future(fut)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn``; its failure is logged, never raised (IB can replay the fact)."""
        fut = self._submit(fn, args, kwargs)
        fut.add_done_callback(self._report)
        return fut

    def _submit(
        self, fn: Callable[..., Any], args: tuple, kwargs: dict, urgent: bool = False
    ) -> Future[Any]:
        if self._pool is None:
            self.start()
        pool = self._urgent if urgent else self._pool
        assert pool is not None
        job = functools.partial(fn, *args, **kwargs)
        if not urgent:
            job = functools.partial(self._when_open, job)
        fut = pool.submit(job)
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    def _when_open(self, job: Callable[[], T]) -> T:
        self._open.wait(HOLD_LIMIT)  # never blocked for long, even if a release is missed
        return job()

    def hold(self) -> None:
        """Pause the main lane (after its current call): a decision is being made, and its
        intents should not wait for the database lock or the GIL behind bookkeeping."""
        self._holds += 1
        self._open.clear()

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds == 0:
            self._open.set()

    def _report(self, fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            self.failures += 1
            self.last_error = str(exc)
            log.error("journal write failed (recovered from IB at the next sync): %s", exc)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def drain(self) -> None:
        """Wait until everything queued so far has run."""
        pending = list(self._pending)
        if pending:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)

    def close(self) -> None:
        """Finish queued calls and stop the worker."""
        self._open.set()
        for pool in (self._urgent, self._pool):
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.shutdown(wait=True)
        self._pool = self._urgent = None
