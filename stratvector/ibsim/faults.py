"""Faults a user or a test can inject, and IB's historical-data pacing rules.

:class:`PacingGuard` enforces :class:`~stratvector.ibsim.config.PacingLimits` on
historical requests (error 162 on a violation). :class:`FaultState` holds the switches
the server consults: reject the next orders, delay outgoing messages by a random jitter,
and whether IB's connectivity is currently "lost" (notice 1100 sent, replay paused).
Connection-level faults (drop all, Gateway restart) live on the server, which owns the
sockets. Time comes from an injectable ``clock`` (seconds, monotonic) so tests can run
the 10-minute pacing window without waiting.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from stratvector.ibsim.config import PacingLimits

PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)


class PacingGuard:
    """Sliding-window counters for IB's three historical-data pacing rules.

    :meth:`check` records an accepted request and returns ``""``, or returns the reason a
    request breaks a rule (the request is then not counted, as IB does not serve it).
    ``bar_seconds`` (the request's bar size) decides whether the ``max_requests`` per
    ``window`` rule applies: only up to ``limits.window_max_bar``; None (unknown) counts.
    Memory is bounded: entries older than the longest window are dropped on each call.
    """

    def __init__(self, limits: PacingLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self.clock = clock
        self._all: deque[float] = deque()
        self._per_contract: dict[Hashable, deque[float]] = {}
        self._identical: dict[Hashable, float] = {}

    def check(
        self, contract_key: Hashable, request_key: Hashable, bar_seconds: float | None = None
    ) -> str:
        lim = self.limits
        counted = bar_seconds is None or bar_seconds <= lim.window_max_bar
        now = self.clock()
        self._expire(now)
        last = self._identical.get(request_key)
        if last is not None and now - last < lim.identical_window:
            return f"identical request within {lim.identical_window:g} seconds"
        per = self._per_contract.setdefault(contract_key, deque())
        if len(per) >= lim.per_contract_max:
            return (
                f"{lim.per_contract_max + 1} or more requests for one contract and tick type "
                f"within {lim.per_contract_window:g} seconds"
            )
        if counted and len(self._all) >= lim.max_requests:
            return f"more than {lim.max_requests} requests within {lim.window:g} seconds"
        if counted:
            self._all.append(now)
        per.append(now)
        self._identical[request_key] = now
        return ""

    def _expire(self, now: float) -> None:
        lim = self.limits
        while self._all and now - self._all[0] >= lim.window:
            self._all.popleft()
        for key in list(self._per_contract):
            q = self._per_contract[key]
            while q and now - q[0] >= lim.per_contract_window:
                q.popleft()
            if not q:
                del self._per_contract[key]
        for key in [k for k, t in self._identical.items() if now - t >= lim.identical_window]:
            del self._identical[key]


@dataclass
class FaultState:
    """Switches the server reads while it runs; change them through the server's API.

    - ``reject_next``: reasons for the next orders to reject (error 201), oldest first.
    - ``jitter``: ``(min, max)`` seconds each outgoing message is delayed by (order kept).
    - ``connectivity_lost``: True between a 1100 notice and its 1101/1102.
    """

    reject_next: deque[str] = field(default_factory=deque)
    jitter: tuple[float, float] = (0.0, 0.0)
    connectivity_lost: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def take_rejection(self) -> str | None:
        return self.reject_next.popleft() if self.reject_next else None

    def delay(self) -> float:
        lo, hi = self.jitter
        if hi <= 0:
            return 0.0
        return self.rng.uniform(lo, hi)
