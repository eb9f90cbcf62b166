"""Stand-ins shared by the gateway's unit tests (no IB, no database)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class FakeQueue:
    """A journal queue that records the calls the receiver hands to the writer thread;
    each journal method is named by a string, so a test can tell which was called."""

    def __init__(self) -> None:
        self.journal = SimpleNamespace(
            fills=SimpleNamespace(record_fill="record_fill", record_commission="commission"),
            orders=SimpleNamespace(record_status="record_status"),
            events=SimpleNamespace(record_event="record_event"),
        )
        self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append((fn, args, kwargs))
