"""One ib_async ``IB`` per daemon: opening it with timeouts, and the pieces reconnects use.

- :class:`Connection` opens the TWS API session (``connectAsync`` with a deadline) and
  translates failures at the boundary: refused or unreachable -> :class:`ConnectError`
  with the host, port and what to check; no TWS API answering in time (a wrong port) ->
  :class:`ConnectError`; IB's error 326 -> :class:`DuplicateClientIdError` at once
  (ib_async alone would only time out).
- :class:`Backoff`: capped exponential delays with full jitter.
- :class:`RestartWindow`: IB's nightly restart (e.g. ``23:45-00:45`` New York time), so a
  disconnect inside it is waited out as expected instead of alarming.

The reconnect loop itself is in :mod:`stratvector.gateway.supervisor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ib_async import IB

from stratvector.gateway.errors import ConnectError, DuplicateClientIdError

log = logging.getLogger("stratvector.gateway.connection")

DUPLICATE_CLIENT_ID = 326
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102
PORT_HINT = "IB Gateway's API ports are 4002 (paper) and 4001 (live); TWS uses 7497/7496"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    client_id: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Connection:
    """Owns the one ``IB`` object. ``IB()`` is inert; :meth:`open` does the I/O."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.ib = IB()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    async def open(self) -> None:
        """Connect and sync (positions, open and completed orders, account, executions).

        Raises :class:`DuplicateClientIdError` as soon as IB answers 326, and
        :class:`ConnectError` for everything else, each naming the endpoint.
        """
        ep = self.endpoint
        loop = asyncio.get_running_loop()
        duplicate: asyncio.Future[str] = loop.create_future()

        def on_error(req_id: int, code: int, text: str, contract: object) -> None:
            if code == DUPLICATE_CLIENT_ID and not duplicate.done():
                duplicate.set_result(text)

        self.ib.errorEvent += on_error
        task = asyncio.ensure_future(
            self.ib.connectAsync(
                ep.host,
                ep.port,
                clientId=ep.client_id,
                timeout=self.timeout,
                raiseSyncErrors=True,
            )
        )
        try:
            done, _ = await asyncio.wait(
                {task, duplicate},
                timeout=self.timeout * 3 + 1,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if duplicate in done:
                raise DuplicateClientIdError(
                    f"IB Gateway at {ep} refused client id {ep.client_id}: it is in use by "
                    "another session (a second trader, or a stale session of a crashed "
                    "one); stop the other client or set [gateway] client_id"
                )
            if task not in done:
                raise ConnectError(
                    f"no TWS API session with {ep} within {self.timeout * 3 + 1:.0f} s; {PORT_HINT}"
                )
            task.result()
        except (DuplicateClientIdError, ConnectError):
            self._abandon(task)
            raise
        except ConnectionRefusedError as exc:
            self._abandon(task)
            raise ConnectError(
                f"cannot connect to IB Gateway at {ep}: connection refused; is IB Gateway or "
                f"TWS running with the API enabled on that port? ({PORT_HINT})"
            ) from exc
        except TimeoutError as exc:
            self._abandon(task)
            raise ConnectError(
                f"no answer from a TWS API at {ep} within {self.timeout:g} s: is this the "
                f"Gateway's API port? ({PORT_HINT})"
            ) from exc
        except (ConnectionError, OSError) as exc:
            self._abandon(task)
            raise ConnectError(
                f"cannot connect to IB Gateway at {ep}: {exc or type(exc).__name__}"
            ) from exc
        finally:
            self.ib.errorEvent -= on_error

    def _abandon(self, task: asyncio.Future[object]) -> None:
        if not task.done():
            task.cancel()
        with contextlib.suppress(Exception):
            self.ib.disconnect()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ib.disconnect()


class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits a uniform time in
    ``[initial * 2**n / 2, min(cap, initial * 2**n)]``. ``reset`` after a success."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = max(cap, initial)
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * (2.0**self.attempt))
        self.attempt = min(self.attempt + 1, 60)
        return self.rng.uniform(ceiling / 2.0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class RestartWindow:
    """A daily window ``"HH:MM-HH:MM"`` in a time zone (it may wrap past midnight)."""

    def __init__(self, spec: str | None, tz: str = "America/New_York") -> None:
        self.spec = spec
        self.tz = ZoneInfo(tz)
        self._bounds: tuple[dt.time, dt.time] | None = None
        if spec:
            a, b = (part.strip() for part in spec.split("-"))
            self._bounds = (_hhmm(a), _hhmm(b))

    def contains(self, when: dt.datetime) -> bool:
        if self._bounds is None:
            return False
        t = when.astimezone(self.tz).time()
        start, end = self._bounds
        if start <= end:
            return start <= t < end
        return t >= start or t < end

    def remaining(self, when: dt.datetime) -> float:
        """Seconds until the window ends (0 outside it)."""
        if self._bounds is None or not self.contains(when):
            return 0.0
        local = when.astimezone(self.tz)
        end = local.replace(
            hour=self._bounds[1].hour, minute=self._bounds[1].minute, second=0, microsecond=0
        )
        if end <= local:
            end += dt.timedelta(days=1)
        return (end - local).total_seconds()


def _hhmm(text: str) -> dt.time:
    h, m = text.split(":")
    return dt.time(int(h), int(m))


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


Clock = Callable[[], dt.datetime]
