"""The supervisor: connect, keep connected, and re-sync after every reconnect.

It is the one place that decides retry or stop:

- The first connect of a process tries ``connect_attempts`` times and then raises (a
  wrong port or an unreachable Gateway is one clear error, not a silent retry loop).
- After that, a dropped socket, a Gateway restart or a duplicate client id (a stale
  session of a crashed trader) is retried forever with capped exponential backoff and
  jitter. Inside IB's nightly restart window the state is ``waiting`` and the log says
  so at info level; outside it a disconnect is a warning.
- IB's 1100 (IB <-> Gateway connectivity lost; the socket stays open) makes the state
  ``degraded`` (no orders); 1101/1102 (restored) run the sync again (1101: data lost,
  subscriptions are renewed). If connectivity stays lost longer than ``lost_timeout``
  the supervisor drops the socket and reconnects.
- After every (re)connect it awaits ``sync(reason)`` (the trader's: account check,
  contracts, executions, orders, bars, positions). A retryable :class:`GatewayError`,
  ``ConnectionError`` or timeout during sync means "reconnect and try again"; any other
  :class:`GatewayError` (e.g. the account does not fit the mode) stops trading with state
  ``failed`` and is re-raised from :meth:`Supervisor.wait_failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from stratvector.gateway.connection import (
    CONNECTIVITY_LOST,
    RESTORED_DATA_KEPT,
    RESTORED_DATA_LOST,
    Backoff,
    Clock,
    Connection,
    RestartWindow,
    wall_clock,
)
from stratvector.gateway.errors import ConnectError, DuplicateClientIdError, GatewayError
from stratvector.gateway.state import State, StateMachine

log = logging.getLogger("stratvector.gateway.supervisor")

SyncFn = Callable[[str], Awaitable[None]]


class Supervisor:
    """Keeps :class:`Connection` up and synced. Constructor does no I/O."""

    def __init__(
        self,
        conn: Connection,
        state: StateMachine,
        sync: SyncFn,
        *,
        backoff: Backoff,
        window: RestartWindow,
        connect_attempts: int = 1,
        lost_timeout: float = 300.0,
        clock: Clock = wall_clock,
        on_down: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.state = state
        self.sync = sync
        self.backoff = backoff
        self.window = window
        self.connect_attempts = connect_attempts
        self.lost_timeout = lost_timeout
        self.clock = clock
        self.on_down = on_down
        self.reconnects = 0
        self.failure: BaseException | None = None
        self._kick = asyncio.Event()
        self._stopping = False
        self._up = False  # connected and synced at least once since the last drop
        self._task: asyncio.Task[None] | None = None
        self._lost_timer: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        self._failed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """First connect (fail fast) and sync; then supervise in the background."""
        ib = self.conn.ib
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        for attempt in range(self.connect_attempts):
            self.state.set(State.CONNECTING, str(self.conn.endpoint))
            try:
                await self.conn.open()
                break
            except ConnectError as exc:
                if attempt + 1 >= self.connect_attempts:
                    raise
                delay = self.backoff.next()
                log.warning("connect failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        self.backoff.reset()
        self.state.set(State.SYNCING, "connected")
        await self.sync("connect")
        self._up = True
        self._task = asyncio.create_task(self._run(), name="sv-supervisor")

    async def stop(self) -> None:
        self._stopping = True
        self._kick.set()
        for task in (self._task, self._lost_timer, self._resync):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        ib = self.conn.ib
        ib.disconnectedEvent -= self._on_disconnected
        ib.errorEvent -= self._on_error

    async def wait_failed(self) -> None:
        """Return when supervision failed for good; raises the cause."""
        await self._failed.wait()
        if self.failure is not None:
            raise self.failure

    # ------------------------------------------------------------------ events

    def _on_disconnected(self) -> None:
        if self._stopping or not self._up:
            return
        self._up = False
        self._cancel_lost_timer()
        inside = self.window.contains(self.clock())
        self.state.set(
            State.WAITING if inside else State.DISCONNECTED,
            "nightly restart window" if inside else "connection lost",
        )
        if inside:
            log.info("disconnected inside IB's nightly restart window; waiting to reconnect")
        else:
            log.warning("disconnected from IB Gateway at %s; reconnecting", self.conn.endpoint)
        if self.on_down is not None:
            self.on_down("disconnected")
        self._kick.set()

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        if self._stopping or not self._up:
            return
        if code == CONNECTIVITY_LOST:
            log.warning("IB connectivity lost (1100): %s", text)
            self.state.set(State.DEGRADED, "IB connectivity lost (1100)")
            if self.on_down is not None:
                self.on_down("1100")
            self._cancel_lost_timer()
            self._lost_timer = asyncio.ensure_future(self._lost_watchdog())
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            log.info("IB connectivity restored (%d): %s", code, text)
            self._cancel_lost_timer()
            if self._resync is None or self._resync.done():
                self._resync = asyncio.ensure_future(self._restored(code))

    async def _lost_watchdog(self) -> None:
        await asyncio.sleep(self.lost_timeout)
        log.warning("IB connectivity lost for %.0f s; reconnecting", self.lost_timeout)
        self.conn.close()  # fires disconnectedEvent -> reconnect

    def _cancel_lost_timer(self) -> None:
        if self._lost_timer is not None and not self._lost_timer.done():
            self._lost_timer.cancel()
        self._lost_timer = None

    async def _restored(self, code: int) -> None:
        self.state.set(State.SYNCING, f"connectivity restored ({code})")
        try:
            await self.sync("restored-data-lost" if code == RESTORED_DATA_LOST else "restored")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # decide: reconnect or fail
            if self._fatal(exc):
                return
            log.warning("re-sync after %d failed (%s); reconnecting", code, exc)
            self.conn.close()

    # ------------------------------------------------------------------ reconnect loop

    async def _run(self) -> None:
        while not self._stopping:
            await self._kick.wait()
            self._kick.clear()
            if self._stopping:
                return
            if self._up and self.conn.connected:
                continue
            await self._reconnect()

    async def _reconnect(self) -> None:
        while not self._stopping:
            inside = self.window.contains(self.clock())
            delay = self.backoff.next()
            if inside:
                delay = min(delay, max(1.0, self.window.remaining(self.clock())))
            await asyncio.sleep(delay)
            if self._stopping:
                return
            self.state.set(State.CONNECTING, f"reconnect to {self.conn.endpoint}")
            try:
                await self.conn.open()
            except DuplicateClientIdError as exc:
                log.warning("%s; retrying", exc)
                self._set_down(inside, "client id in use")
                continue
            except ConnectError as exc:
                (log.info if inside else log.warning)("reconnect failed: %s", exc)
                self._set_down(inside, "reconnect failed")
                continue
            self.state.set(State.SYNCING, "reconnected")
            try:
                await self.sync("reconnect")
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                if self._fatal(exc):
                    return
                log.warning("sync after reconnect failed (%s); reconnecting", exc)
                self.conn.close()
                self._set_down(inside, "sync failed")
                continue
            self.reconnects += 1
            self.backoff.reset()
            self._kick.clear()
            self._up = True
            return

    def _set_down(self, inside: bool, reason: str) -> None:
        self.state.set(State.WAITING if inside else State.DISCONNECTED, reason)

    def _fatal(self, exc: BaseException) -> bool:
        """Record and stop on an error a reconnect cannot fix; False if retryable."""
        retryable = isinstance(exc, ConnectionError | TimeoutError) or (
            isinstance(exc, GatewayError) and exc.retryable
        )
        if retryable:
            return False
        log.error("gateway stopped: %s", exc)
        self.failure = exc
        self._stopping = True
        self.conn.close()
        self.state.set(State.FAILED, str(exc))
        self._failed.set()
        return True
