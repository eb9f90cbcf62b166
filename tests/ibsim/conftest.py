"""Fixtures for the ibsim tests, the async test runner, and the ib_async decode guard.

- ``async def`` tests run in a fresh event loop (``asyncio.run``) with a time limit, so
  pytest-asyncio is not needed.
- The autouse :func:`ib_protocol_guard` fails any test in which ib_async logs a decode or
  dispatch error (logger ``ib_async.Decoder``), a wrapper error that is not an API error
  message (``ib_async.wrapper``: "No order found", "Unknown reqId", ...) or a startup-sync
  timeout (``ib_async.ib``): a wrong field count or a missing sync answer cannot pass
  silently.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from stratvector.data import SAMPLE_DIR

ASYNC_TEST_TIMEOUT = 30.0
GUARDED_LOGGERS = ("ib_async.Decoder", "ib_async.wrapper", "ib_async.ib")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests of this folder in a new event loop, with a time limit."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), ASYNC_TEST_TIMEOUT))
    return True


class ProtocolErrorCatcher(logging.Handler):
    """Collects the ib_async log records that mean the stand-in spoke the protocol wrong."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if is_protocol_error(record):
            self.records.append(record)

    def clear(self) -> None:
        self.records.clear()


def is_protocol_error(record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    if record.name == "ib_async.Decoder":
        return True
    if record.name == "ib_async.wrapper":
        return not msg.startswith("Error ")  # "Error <code>, reqId ..." is an API error
    if record.name == "ib_async.ib":
        return "timed out" in msg
    return False


@pytest.fixture(autouse=True)
def ib_protocol_guard() -> ProtocolErrorCatcher:
    catcher = ProtocolErrorCatcher()
    loggers = [logging.getLogger(name) for name in GUARDED_LOGGERS]
    for lg in loggers:
        lg.addHandler(catcher)
    yield catcher
    for lg in loggers:
        lg.removeHandler(catcher)
    if catcher.records:
        lines = "\n".join(
            f"{r.name}: {r.getMessage()[:500]}" + (f" [{r.exc_info[1]!r}]" if r.exc_info else "")
            for r in catcher.records[:10]
        )
        pytest.fail(f"ib_async reported protocol errors from ibsim:\n{lines}", pytrace=False)


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """Two real symbols from the bundled sample data."""
    d = tmp_path / "bars"
    d.mkdir()
    for sym in ("AAPL", "NVDA"):
        shutil.copy(SAMPLE_DIR / f"{sym}_1d.csv", d)
    return d


# A hand-made daily series with known prices for exact fill checks (see test_orders).
SYN_ROWS = [
    # open, high, low, close
    (100.0, 101.0, 99.0, 100.0),  # 0  history
    (100.0, 102.0, 99.0, 101.0),  # 1
    (102.0, 104.0, 101.0, 103.0),  # 2
    (103.0, 103.5, 97.0, 98.0),  # 3  drop
    (96.0, 99.0, 95.0, 98.5),  # 4  gap down
    (99.0, 106.0, 98.5, 105.0),  # 5  rally
    (105.0, 108.0, 104.0, 107.0),  # 6
    (107.0, 107.5, 100.0, 101.0),  # 7  sell-off
    (101.0, 102.0, 100.0, 101.5),  # 8
    (101.5, 102.5, 100.5, 102.0),  # 9
    (102.0, 103.0, 101.0, 102.5),  # 10
    (102.5, 103.5, 101.5, 103.0),  # 11
]
SYN_VOLUME = 1000.0


def write_syn(d: Path, symbol: str = "SYN", rows: list[tuple[float, ...]] | None = None) -> Path:
    rows = rows or SYN_ROWS
    idx = pd.bdate_range("2024-01-02", periods=len(rows), tz="UTC", name="time")
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)
    df["volume"] = SYN_VOLUME
    path = d / f"{symbol}_1d.csv"
    df.to_csv(path)
    return path


@pytest.fixture
def syn_dir(tmp_path: Path) -> Path:
    """One synthetic symbol SYN with the prices of :data:`SYN_ROWS`, plus a second (SYN2)."""
    d = tmp_path / "syn"
    d.mkdir()
    write_syn(d)
    write_syn(d, "SYN2")
    return d
