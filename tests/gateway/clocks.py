"""Controllable clocks for the bar feed's close timer (see ``stratvector.gateway.sessions``).

- :class:`ManualClock`: time is whatever the test sets; due callbacks run on :meth:`fire`.
- :class:`SimTime`: ibsim's simulated time (``sim.ctx.clock.now()``); due callbacks run
  on :meth:`fire`, which tests call after the client has read what ibsim sent.

A callback asked for a time that has passed runs soon on the event loop, as
``loop.call_later`` with a negative delay does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False
    ran: bool = field(default=False)

    def cancel(self) -> None:
        self.cancelled = True

    def run(self) -> None:
        if not (self.cancelled or self.ran):
            self.ran = True
            self.callback()


class ManualClock:
    """POSIX seconds set by the test; callbacks fire on :meth:`fire`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.calls: list[Call] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Call:
        call = Call(when, callback)
        self.calls.append(call)
        if when <= self.time():
            asyncio.get_running_loop().call_soon(call.run)
        return call

    @property
    def pending(self) -> list[Call]:
        """Callbacks neither run nor cancelled."""
        return [c for c in self.calls if not (c.cancelled or c.ran)]

    def fire(self) -> int:
        """Run every pending callback that is due; returns how many ran."""
        now = self.time()
        due = sorted((c for c in self.pending if c.when <= now), key=lambda c: c.when)
        for c in due:
            c.run()
        self.calls = self.pending
        return len(due)

    def set(self, now: float) -> int:
        self.now = now
        return self.fire()


class SimTime(ManualClock):
    """ibsim's simulated time as the feed's clock."""

    def __init__(self, sim: Any) -> None:
        super().__init__()
        self.sim = sim

    def time(self) -> float:
        return self.sim.ctx.clock.now().value / 1e9
