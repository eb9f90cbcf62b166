"""Helpers for the history-scheduler tests: a stand-in on a fake pacing clock, fake time.

Not a conftest (the gateway folder's conftest belongs to the gateway tests); the test
modules import these names. Tests are plain functions that call :func:`run`, so they do
not depend on an async pytest plugin or another folder's hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pandas as pd
from ib_async import IB

from stratvector.data import SAMPLE_DIR, load_csv
from stratvector.ibsim import IBSim, IBSimConfig, PacingLimits
from stratvector.ibsim.faults import PacingGuard

RUN_TIMEOUT = 20.0


def run(coro: Coroutine[Any, Any, Any], timeout: float = RUN_TIMEOUT) -> Any:
    """Run ``coro`` in a fresh event loop with a time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def copy_samples(dest: Path, symbols: tuple[str, ...] = ("AAPL",)) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for sym in symbols:
        shutil.copy(SAMPLE_DIR / f"{sym}_1d.csv", dest)
    return dest


def expected(path: Path, start: str, end: str | None = None) -> pd.DataFrame:
    """The bars of a CSV file starting in ``[start, end]`` (both inclusive), via the loader."""
    bars = load_csv(path)
    t = bars.index
    mask = t >= pd.Timestamp(start, tz="UTC")
    if end is not None:
        mask &= t <= pd.Timestamp(end, tz="UTC")
    return bars[mask]


class FakeTime:
    """A manual monotonic clock and a ``sleep`` that moves it instead of waiting.

    The stand-in's pacing guard reads the same clock. A sleep waits (in real time) until
    no history request is in flight before it moves the clock, so the stand-in stamps
    every request with the time the scheduler recorded it at, as a real gateway would
    within milliseconds. ``sleeps`` lists every requested sleep.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []
        self.scheduler: Any = None

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.t + max(0.0, seconds)
        while self.scheduler is not None and self.scheduler.in_flight:
            await asyncio.sleep(0.001)
        self.t = max(self.t, target)
        await asyncio.sleep(0)


class DecodeErrors(logging.Handler):
    """Collects ib_async decoder errors: the stand-in must never send a malformed message."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def session(
    bars: Path,
    *,
    fake: FakeTime | None = None,
    pacing: PacingLimits | None = None,
    transcript: Path | None = None,
    start: str | int | None = "2020-01-02",
) -> AsyncIterator[tuple[IBSim, IB]]:
    """A started stand-in (manual clock at ``start``, pacing on ``fake``'s clock when given)
    and a connected client."""
    limits = pacing or PacingLimits()
    cfg = IBSimConfig(
        bars=bars, port=0, start=start, speed=None, pacing=limits, transcript=transcript
    )
    decode = DecodeErrors()
    logging.getLogger("ib_async.Decoder").addHandler(decode)
    try:
        async with IBSim(cfg) as sim:
            if fake is not None:
                sim.ctx.pacing = PacingGuard(limits, clock=fake.now)
            ib = IB()
            await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
            try:
                yield sim, ib
            finally:
                ib.disconnect()
                await asyncio.sleep(0)
    finally:
        logging.getLogger("ib_async.Decoder").removeHandler(decode)
    assert not decode.records, [r.getMessage()[:300] for r in decode.records]


class ErrorLog:
    """``ib.errorEvent`` as ``(reqId, code, text)`` tuples."""

    def __init__(self, ib: IB) -> None:
        self.items: list[tuple[int, int, str]] = []
        ib.errorEvent += self._on_error

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        self.items.append((req_id, code, text))

    def codes(self) -> list[int]:
        return [c for _, c, _ in self.items]


def history_requests(transcript: Path) -> list[list[str]]:
    """The reqHistoricalData messages (id 20) the stand-in received, in order."""
    if not transcript.exists():
        return []
    out = []
    for line in transcript.read_text().splitlines():
        rec = json.loads(line)
        if rec["dir"] == "in" and rec["fields"] and rec["fields"][0] == "20":
            out.append(rec["fields"])
    return out


def sent_errors(transcript: Path, code: int) -> int:
    """How many error messages with ``code`` the stand-in sent."""
    n = 0
    for line in transcript.read_text().splitlines():
        rec = json.loads(line)
        f = rec["fields"]
        if rec["dir"] == "out" and f and f[0] == "4" and len(f) > 3 and f[3] == str(code):
            n += 1
    return n
