"""Helpers shared by the ibsim tests: a running stand-in, connected clients, waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ib_async import IB

from stratvector.ibsim import IBSim, IBSimConfig


@contextlib.asynccontextmanager
async def running(bars: Path, **options: Any) -> AsyncIterator[IBSim]:
    """A started stand-in on a free loopback port (manual clock unless ``speed``)."""
    options.setdefault("port", 0)
    sim = IBSim(IBSimConfig(bars=bars, **options))
    async with sim:
        yield sim


@contextlib.asynccontextmanager
async def client(sim: IBSim, client_id: int = 1, **options: Any) -> AsyncIterator[IB]:
    """An ib_async ``IB`` connected (and synced) to ``sim``; disconnected afterwards."""
    ib = IB()
    options.setdefault("timeout", 5)
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, **options)
    try:
        yield ib
    finally:
        ib.disconnect()
        await asyncio.sleep(0)


async def wait_until(pred: Callable[[], object], timeout: float = 3.0, what: str = "") -> None:
    """Poll ``pred`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.005)


async def sync(*ibs: IB) -> None:
    """A round trip per client: the server answers in order, so when the current-time
    reply arrives, the server has handled everything the client sent before it and the
    client has handled everything the server sent before it."""
    for ib in ibs:
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5.0)


async def settle(seconds: float = 0.05) -> None:
    """Let in-flight messages be read and handled by the client."""
    await asyncio.sleep(seconds)


class ErrorLog:
    """Records ``ib.errorEvent`` as ``(reqId, code, text)``, in arrival order."""

    def __init__(self, ib: IB) -> None:
        self.items: list[tuple[int, int, str]] = []
        ib.errorEvent += self._on_error

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        self.items.append((req_id, code, text))

    def codes(self) -> list[int]:
        return [c for _, c, _ in self.items]
