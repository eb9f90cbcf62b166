"""Journal calls off the event loop, on one writer thread, in order.

Every journal call is a committed database transaction (a SQLite commit with
``synchronous=FULL`` syncs the disk). The gateway runs them on ONE thread so the event
loop keeps reading IB's socket, and so the process never contends with itself for the
database's write lock (SQLite's busy handler backs off in sleeps of 1, 2, 5, 10 ms...:
two writer threads made an intent wait ~8 ms behind a fill).

Two lanes feed the thread, each FIFO:

- **urgent** (``call(..., urgent=True)``): the intents of a decision, which must commit
  before ``placeOrder``. Taken before anything in the main lane.
- **main**: fills, statuses and events, in submission order (a fill before its
  commission, a status before the next one). While a decision is being made
  (:meth:`hold`) the main lane waits (at most :data:`HOLD_LIMIT`), so a bar's intents
  never queue behind the previous bar's bookkeeping. Ordering between the lanes is never
  needed: a status of an order is only queued after its intent committed.

:meth:`JournalQueue.call` awaits the result; :meth:`JournalQueue.submit` is
fire-and-forget for facts IB can replay (fills, statuses, events): a failed write is
logged and counted, and reconciliation recovers it from IB after the next (re)connect.

WAL checkpoints (SQLite): SQLite copies its write-ahead log into the database file
inside whichever commit pushes the log past 1,000 pages, several milliseconds of disk
work; when that commit was a decision's intents, its orders waited for it (the slowest
decisions of the gateway benchmark). The trader opens its journal with automatic
checkpoints off (``Journal(autocheckpoint=False)``) and gives the queue
``checkpoint_every``: the writer then checkpoints, at most that often, after a job and
only while no decision is on (:meth:`JournalQueue._checkpoint_if_due`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from stratvector.store import Journal

log = logging.getLogger("stratvector.gateway.journal")

T = TypeVar("T")
HOLD_LIMIT = 1.0  # seconds the main lane waits at most for a decision to finish

_Job = tuple[Callable[[], Any], Future]


class JournalQueue:
    """One writer thread running journal calls, urgent lane first. No I/O at init."""

    def __init__(self, journal: Journal, checkpoint_every: float | None = None) -> None:
        self.journal = journal
        self.checkpoint_every = checkpoint_every
        self._checkpointed = time.monotonic()
        self.checkpoints = 0  # WAL checkpoints run by the writer
        self._cv = threading.Condition()
        self._urgent: deque[_Job] = deque()
        self._main: deque[_Job] = deque()
        self._holds = 0
        self._held_since: float | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._pending: set[Future[Any]] = set()
        self._running = threading.Lock()  # held while a call runs, on the writer or inline
        self.failures = 0
        self.inline_calls = 0  # calls run on the caller's thread (``begin(inline=True)``)
        self.last_error: str | None = None

    def start(self) -> None:
        with self._cv:
            if self._thread is not None:
                return
            self._closing = False
            self._thread = threading.Thread(target=self._work, name="sv-journal", daemon=True)
            self._thread.start()

    async def call(
        self, fn: Callable[..., T], *args: Any, urgent: bool = False, **kwargs: Any
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the writer after everything queued before it in
        its lane (``urgent``: ahead of the main lane)."""
        fut = self._submit(fn, args, kwargs, urgent)
        return await asyncio.wrap_future(fut)

    def begin(
        self,
        fn: Callable[..., T],
        *args: Any,
        urgent: bool = False,
        inline: bool = False,
        **kwargs: Any,
    ) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` like :meth:`call` and return its future at once
        (await it with ``asyncio.wrap_future``): the caller goes on while it runs.

        ``inline``: if the writer is idle (no call running, nothing urgent queued), run
        ``fn`` on the calling thread now and return its finished future. A decision's
        intents take this path: handing a ~1 ms SQLite commit to the writer thread cost
        as much again in the hand-off and in the two threads taking turns at the GIL.
        Only for calls that cannot block for long (a local SQLite file, not a server)."""
        if inline and self._idle_for_inline() and self._running.acquire(blocking=False):
            self.inline_calls += 1
            fut: Future[T] = Future()
            fut.set_running_or_notify_cancel()
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller through the future
                fut.set_exception(exc)
            finally:
                self._running.release()
            return fut
        return self._submit(fn, args, kwargs, urgent)

    def _idle_for_inline(self) -> bool:
        with self._cv:
            return not self._urgent

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn`` in the main lane; its failure is logged, never raised (IB can
        replay the fact)."""
        fut = self._submit(fn, args, kwargs, False)
        fut.add_done_callback(self._report)
        return fut

    def _submit(
        self, fn: Callable[..., Any], args: tuple, kwargs: dict, urgent: bool
    ) -> Future[Any]:
        if self._thread is None:
            self.start()
        fut: Future[Any] = Future()
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        job = (functools.partial(fn, *args, **kwargs), fut)
        with self._cv:
            lane = self._urgent if urgent else self._main
            # while the main lane is held the writer only needs waking for its first job
            # (to start timing the hold limit): a wake per status or fill would make it
            # contend for the GIL with the decision the hold is for
            wake = urgent or self._holds == 0 or not self._main
            lane.append(job)
            if wake:
                self._cv.notify()
        return fut

    def _next(self) -> _Job | None:
        """The next job (urgent first; the main lane unless held), or None at close."""
        with self._cv:
            while True:
                if self._urgent:
                    return self._urgent.popleft()
                if self._main:
                    held_for = (
                        time.monotonic() - self._held_since if self._held_since is not None else 0
                    )
                    if self._holds == 0 or self._closing or held_for >= HOLD_LIMIT:
                        return self._main.popleft()
                    self._cv.wait(HOLD_LIMIT - held_for)
                    continue
                if self._closing:
                    return None
                self._cv.wait()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            with self._running:
                try:
                    result = fn()
                except BaseException as exc:  # handed to the caller through the future
                    fut.set_exception(exc)
                    self._checkpoint_if_due()
                    continue
            fut.set_result(result)
            self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        """Every ``checkpoint_every`` seconds, between decisions (no hold, nothing urgent),
        copy the WAL into the database (:meth:`Journal.checkpoint`). Outside ``_running``:
        a decision starting meanwhile still commits its intents inline, as SQLite lets a
        writer commit while a passive checkpoint runs."""
        if self.checkpoint_every is None:
            return
        now = time.monotonic()
        if now - self._checkpointed < self.checkpoint_every:
            return
        with self._cv:
            if self._holds or self._urgent:
                return  # a decision is on: after it
        self._checkpointed = now
        try:
            self.journal.checkpoint()
        except Exception as exc:  # the next one retries; SQLite's own on close in any case
            log.warning("journal checkpoint failed: %s", exc)
            return
        self.checkpoints += 1

    def hold(self) -> None:
        """Pause the main lane (after its current call): a decision is being made, and its
        intents should not wait for the database or the GIL behind bookkeeping."""
        with self._cv:
            self._holds += 1
            if self._held_since is None:
                self._held_since = time.monotonic()

    def release(self) -> None:
        with self._cv:
            self._holds = max(0, self._holds - 1)
            if self._holds == 0:
                self._held_since = None
                self._cv.notify()

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
        """Finish queued calls and stop the writer."""
        with self._cv:
            thread = self._thread
            self._closing = True
            self._cv.notify()
        if thread is not None:
            thread.join()
        with self._cv:
            self._thread = None
