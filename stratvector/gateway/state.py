"""The gateway's observable state: one value, why it is there, since when, and waiters.

States (see :class:`State`)::

    starting -> connecting -> syncing -> ready <-> halted
                    ^            |         |
                    |            v         v
                    +------ disconnected / waiting (nightly restart) / degraded (1100)
    any -> stopping -> stopped;  any -> failed (a non-retryable error)

Only ``ready`` sends orders driven by strategies; ``halted`` is ready with the kill switch
on (closing orders only). Listeners are plain callables; :meth:`StateMachine.wait_for`
awaits a state without polling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger("stratvector.gateway.state")


class State(StrEnum):
    STARTING = "starting"
    CONNECTING = "connecting"
    SYNCING = "syncing"
    READY = "ready"
    HALTED = "halted"
    DEGRADED = "degraded"  # socket up, IB connectivity lost (1100)
    DISCONNECTED = "disconnected"
    WAITING = "waiting"  # disconnected inside the nightly restart window
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


TRADING = frozenset({State.READY, State.HALTED})
FINAL = frozenset({State.STOPPED, State.FAILED})


class StateMachine:
    """Holds the current :class:`State`; notifies listeners and waiters on every change."""

    def __init__(self) -> None:
        self.state = State.STARTING
        self.reason = ""
        self.since = time.time()
        self.history: list[tuple[float, State, str]] = [(self.since, self.state, "")]
        self._listeners: list[Callable[[State, State, str], None]] = []
        self._changed: asyncio.Event | None = None

    def add_listener(self, fn: Callable[[State, State, str], None]) -> None:
        self._listeners.append(fn)

    def set(self, state: State, reason: str = "") -> None:
        if state == self.state and reason == self.reason:
            return
        old = self.state
        if old in FINAL and state not in FINAL:
            return  # a stopped or failed gateway stays so
        self.state, self.reason, self.since = state, reason, time.time()
        self.history.append((self.since, state, reason))
        del self.history[:-200]
        log.info(
            "gateway state %s -> %s%s", old.value, state.value, f" ({reason})" if reason else ""
        )
        for fn in list(self._listeners):
            try:
                fn(old, state, reason)
            except Exception:  # a listener must not break the state machine
                log.exception("state listener failed")
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for(self, *states: State, timeout: float | None = None) -> State:
        """Wait until the state is one of ``states`` (or final); return it."""

        async def _wait() -> State:
            while self.state not in states and self.state not in FINAL:
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
            return self.state

        return await asyncio.wait_for(_wait(), timeout)
