"""Compiling the trader's numba kernels in a child process, while the trader connects.

Every numba kernel is ``cache=True``: a process that finds a kernel in numba's on-disk
cache loads it, one that does not compiles it -- and compiling loads LLVM's optimizer
and holds its working memory, which the process keeps (a trader started on a fresh
checkout peaked at 265-267 MB, against 212-213 MB on a warm cache; see
``benchmarks/README.md``). :func:`compile_in_child` runs :func:`compile_kernels` in a
short-lived child first (the trader does, while it connects, when asked to:
``stratvector trade`` asks), so the compiling happens there and the trader only ever loads.

:func:`compile_kernels` builds the real :class:`~stratvector.gateway.trader.Trader` of
the configs (its constructor opens nothing: no journal, no connection) and primes its
ledgers and strategies the way its start-up does, on synthetic bars, so it asks numba
for exactly the specializations the trader will. :class:`CompileCount` counts the
compilations a process makes; the trader reports its own (status ``kernels_compiled``,
0 when the child did its work).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from types import TracebackType

from numba.core import event

from stratvector.config import StrategyConfig

log = logging.getLogger(__name__)

CHILD_TIMEOUT = 120.0  # seconds; a built-in strategy's 18 kernels compile in ~3 s, 2 cores


class CompileCount:
    """Counts numba compilations (not loads from its cache) while registered.

    Use as a context manager or with :meth:`start`/:meth:`stop`; numba's event hooks are
    process-wide, so this counts every thread's compilations.
    """

    def __init__(self) -> None:
        self.compiled = 0
        self._listener = _Listener(self)
        self._on = False

    def start(self) -> None:
        if not self._on:
            event.register("numba:compile", self._listener)
            self._on = True

    def stop(self) -> None:
        if self._on:
            event.unregister("numba:compile", self._listener)
            self._on = False

    def __enter__(self) -> CompileCount:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Listener(event.Listener):
    def __init__(self, count: CompileCount) -> None:
        self._count = count

    def on_start(self, ev: event.Event) -> None:
        self._count.compiled += 1

    def on_end(self, ev: event.Event) -> None:
        return None  # counted at the start: a kernel that calls another compiles both


def compile_kernels(configs: list[StrategyConfig]) -> int:
    """Load or compile every kernel the trader of ``configs`` decides with; returns how
    many had to be compiled (0: all were in numba's cache)."""
    from stratvector.data.synthetic import synthetic_bars
    from stratvector.gateway.trader import Trader

    with CompileCount() as count:
        trader = Trader(configs)
        for ledger in trader.ledgers.values():
            ledger.prime()
        for runner in trader.runners.values():
            window = runner.feed.windows[runner.symbols[0]]
            if window.last_time is None:
                window.extend(synthetic_bars(window.capacity))
            runner.prime()
    return count.compiled


async def compile_in_child(
    configs: list[StrategyConfig], timeout: float = CHILD_TIMEOUT
) -> int | None:
    """Run :func:`compile_kernels` on ``configs`` in a child Python; how many kernels it
    compiled, or None if it failed. A failure is logged and is not fatal: the trader
    then compiles what it lacks itself, with the higher memory peak. The child is
    killed if this is cancelled or times out."""
    started = time.monotonic()
    payload = json.dumps([c.model_dump(mode="json") for c in configs]).encode()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        log.warning("could not start a child process to compile the kernels (%s)", exc)
        return None
    try:
        out, err = await asyncio.wait_for(proc.communicate(payload), timeout)
    except TimeoutError:
        log.warning("compiling the kernels in a child process took over %.0f s", timeout)
        return None
    except OSError as exc:
        log.warning("lost the child process compiling the kernels (%s)", exc)
        return None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    compiled = _compiled_of(out)
    if proc.returncode != 0 or compiled is None:
        last = (err.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        log.warning(
            "compiling the kernels in a child process failed (exit %s: %s)",
            proc.returncode,
            last,
        )
        return None
    log.info(
        "kernels ready: %d compiled in a child process in %.1f s",
        compiled,
        time.monotonic() - started,
    )
    return compiled


def _compiled_of(stdout: bytes) -> int | None:
    try:
        return int(json.loads(stdout.decode().strip().splitlines()[-1])["compiled"])
    except (IndexError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def main() -> int:
    """``python -m stratvector.gateway.kernels`` with the configs as a JSON list on
    stdin: compile, print ``{"compiled": N}``."""
    configs = [StrategyConfig.model_validate(c) for c in json.load(sys.stdin)]
    print(json.dumps({"compiled": compile_kernels(configs)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
