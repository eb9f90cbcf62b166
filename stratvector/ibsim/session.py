"""One client connection: handshake, framing, dispatch, subscriptions, and outgoing order.

Contract with the server:

- :meth:`Session.serve` runs until the client goes away or the session is closed; it never
  raises. A malformed or unknown message is logged and answered with an error (320/321),
  the connection stays up. Only an unreadable stream (bad handshake, a length prefix over
  ``limits.max_message_bytes``) closes the connection.
- Outgoing messages keep their order. With jitter set, each is held for a random delay
  but never overtakes an earlier one. :meth:`flush` waits until everything queued is
  handed to the socket.
- Bounded: handshake within ``limits.handshake_timeout``; at most
  ``limits.max_messages_per_second`` requests per second (error 100 for the excess);
  at most ``limits.max_subscriptions`` live subscriptions; at most
  ``limits.max_queued_messages`` waiting messages (beyond that the client is too slow
  and is disconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stratvector.ibsim import messages as m
from stratvector.ibsim.config import MIN_SERVER_VERSION
from stratvector.ibsim.market import BarSize, Instrument, format_bar_time
from stratvector.ibsim.orders import Ack, Cancelled, Filled, OrderError, Rejected, SimOrder
from stratvector.ibsim.protocol import (
    HANDSHAKE_PREFIX,
    Field,
    FieldReader,
    ProtocolError,
    encode_frame,
    frame_length,
    parse_version_range,
    split_fields,
)
from stratvector.ibsim.stream import stream_bar

if TYPE_CHECKING:
    from stratvector.ibsim.account import ExecutionRecord, PositionView
    from stratvector.ibsim.context import SimContext
    from stratvector.ibsim.orders import Event

log = logging.getLogger("stratvector.ibsim.session")

FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)
LOST_TEXT = "Connectivity between IB and Trader Workstation has been lost."


@dataclass
class HistSub:
    """A keepUpToDate historical subscription."""

    inst: Instrument
    size: BarSize
    same_size: bool
    format_date: int


@dataclass
class Subscriptions:
    """What one session asked to be kept informed about."""

    mkt_data: dict[int, Instrument] = field(default_factory=dict)
    hist: dict[int, HistSub] = field(default_factory=dict)
    rt_bars: dict[int, Instrument] = field(default_factory=dict)
    account_multi: set[int] = field(default_factory=set)
    summary: set[int] = field(default_factory=set)
    positions: bool = False
    account: bool = False

    def count(self) -> int:
        return (
            len(self.mkt_data)
            + len(self.hist)
            + len(self.rt_bars)
            + len(self.account_multi)
            + len(self.summary)
        )


class Session:
    """A client connection; constructed by the server per accepted socket (no I/O here)."""

    def __init__(
        self,
        conn_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ctx: SimContext,
    ) -> None:
        self.conn_id = conn_id
        self.reader = reader
        self.writer = writer
        self.ctx = ctx
        self.version = 0
        self.client_id: int | None = None
        self.ready = False
        self.closed = False
        self.subs = Subscriptions()
        self._queue: deque[tuple[float, bytes]] = deque()
        self._wake = asyncio.Event()
        self._last_due = 0.0
        self._drained = asyncio.Event()
        self._drained.set()
        self._writer_task: asyncio.Task[None] | None = None
        self._recent: deque[float] = deque()
        self._closing: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the connection to its end; never raises (errors are logged)."""
        from stratvector.ibsim.handlers import dispatch  # late: handlers import this module

        self._writer_task = asyncio.create_task(self._write_loop())
        try:
            if not await self._handshake():
                return
            limit = self.ctx.config.limits.max_message_bytes
            deadline = self.ctx.config.limits.handshake_timeout
            while not self.closed:
                prefix = self.reader.readexactly(4)
                # a client must send startApi promptly; after that, reads may idle forever
                n = frame_length(
                    await (prefix if self.ready else asyncio.wait_for(prefix, deadline))
                )
                if n > limit:
                    log.warning(
                        "conn %d: message of %d bytes over %d; closing", self.conn_id, n, limit
                    )
                    self.send_error(-1, 320, f"Message of {n} bytes exceeds the {limit} byte limit")
                    break
                body = await self.reader.readexactly(n)
                self._handle(body, dispatch)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: log it, drop this connection, keep the server
            log.exception("conn %d: unexpected error; closing the connection", self.conn_id)
        finally:
            await self._finish()

    def _handle(self, body: bytes, dispatch: object) -> None:
        try:
            fields = split_fields(body)
        except ProtocolError as exc:
            self._transcript("in", [repr(body[:200])])
            log.warning("conn %d: malformed message: %s", self.conn_id, exc)
            self.send_error(-1, 320, f"Server error when reading an API client request: {exc}")
            return
        self._transcript("in", fields)
        if not self._within_rate():
            limit = self.ctx.config.limits.max_messages_per_second
            self.send_error(
                -1, 100, f"Max rate of messages per second has been exceeded:max={limit}"
            )
            return
        try:
            dispatch(self, FieldReader(fields))  # type: ignore[operator]
        except ProtocolError as exc:
            log.warning("conn %d: bad message %s: %s", self.conn_id, fields[:3], exc)
            self.send_error(-1, 320, f"Server error when reading an API client request: {exc}")
        except Exception as exc:  # a handler bug must not take the server down
            log.exception("conn %d: error handling %s", self.conn_id, fields[:3])
            self.send_error(-1, 321, f"Server error when validating an API client request: {exc}")

    def _within_rate(self) -> bool:
        now = time.monotonic()
        q = self._recent
        while q and now - q[0] >= 1.0:
            q.popleft()
        if len(q) >= self.ctx.config.limits.max_messages_per_second:
            return False
        q.append(now)
        return True

    async def _handshake(self) -> bool:
        cfg = self.ctx.config
        timeout = cfg.limits.handshake_timeout
        prefix = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        if prefix != HANDSHAKE_PREFIX:
            log.warning("conn %d: not a TWS API client (opened with %r)", self.conn_id, prefix)
            return False
        n = frame_length(await asyncio.wait_for(self.reader.readexactly(4), timeout))
        if n > 1024:
            log.warning("conn %d: handshake of %d bytes; closing", self.conn_id, n)
            return False
        body = await asyncio.wait_for(self.reader.readexactly(n), timeout)
        try:
            vmin, vmax, _options = parse_version_range(body)
        except ProtocolError as exc:
            log.warning("conn %d: %s", self.conn_id, exc)
            return False
        version = min(vmax, cfg.server_version)
        if version < max(vmin, MIN_SERVER_VERSION):
            log.warning(
                "conn %d: client versions %d..%d and server %d..%d do not overlap",
                self.conn_id,
                vmin,
                vmax,
                MIN_SERVER_VERSION,
                cfg.server_version,
            )
            return False
        self.version = version
        self._transcript("hs-in", [body.decode("ascii", errors="replace")])
        now = self.ctx.clock.now()
        self.send_raw([str(version), now.strftime("%Y%m%d %H:%M:%S") + " UTC"], "hs-out")
        return True

    def start_api(self, client_id: int) -> None:
        """startApi: claim the client id (326 and close if taken), then greet."""
        if self.ready:
            return
        self.client_id = client_id
        if not self.ctx.hub.claim(self, client_id):
            self.client_id = None
            self.send_error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            self.close(graceful=True)
            return
        self.ready = True
        self.send(m.managed_accounts(self.ctx.account.account_id))
        self.send(m.next_valid_id(self.ctx.next_valid_id(client_id)))
        if self.ctx.faults.connectivity_lost:
            self.send_error(-1, 1100, LOST_TEXT)
        else:
            for code, text in FARM_NOTICES:
                self.send_error(-1, code, text)

    def close(self, graceful: bool = False) -> None:
        """Close the connection. Abruptly by default (a dropped connection: queued
        messages are lost); ``graceful`` first delivers what is queued (e.g. error 326)."""
        if self.closed:
            return
        self.ready = False
        if graceful:
            self._closing = asyncio.create_task(self._close_after_flush())
            return
        self.closed = True
        self._wake.set()
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    async def _close_after_flush(self) -> None:
        await self.flush(timeout=2.0)
        self.closed = True
        self._wake.set()
        with contextlib.suppress(Exception):
            self.writer.close()

    async def _finish(self) -> None:
        self.closed = True
        self.ready = False
        self.ctx.hub.remove(self)
        self._wake.set()
        if self._writer_task is not None:
            self._writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer_task
        with contextlib.suppress(Exception):
            self.writer.close()
        self._drained.set()

    # --- output --------------------------------------------------------------------------

    def send(self, msg: list[Field]) -> None:
        """Queue one message; order is kept, jitter (if set) delays it."""
        if self.closed:
            return
        self._transcript("out", msg)
        self._enqueue(encode_frame(msg))

    def send_raw(self, fields: list[str], direction: str) -> None:
        self._transcript(direction, fields)
        self._enqueue(encode_frame(fields))

    def send_error(self, req_id: int, code: int, text: str) -> None:
        self.send(m.error(self.version, req_id, code, text))

    def _enqueue(self, frame: bytes) -> None:
        loop = asyncio.get_running_loop()
        delay = self.ctx.faults.delay()
        if delay <= 0 and not self._queue:
            self._write_now(frame)
            return
        if len(self._queue) >= self.ctx.config.limits.max_queued_messages:
            log.warning(
                "conn %d: client too slow (%d messages queued); closing",
                self.conn_id,
                len(self._queue),
            )
            self.close()
            return
        due = max(self._last_due, loop.time() + delay)
        self._last_due = due
        self._queue.append((due, frame))
        self._drained.clear()
        self._wake.set()

    def _write_now(self, frame: bytes) -> None:
        try:
            self.writer.write(frame)
        except (ConnectionError, RuntimeError):
            self.close()
            return
        if (
            self.writer.transport.get_write_buffer_size()
            > 64 * self.ctx.config.limits.max_message_bytes
        ):
            log.warning("conn %d: client does not read; closing", self.conn_id)
            self.close()

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            if not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            due, frame = self._queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._queue.popleft()
            self._write_now(frame)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued messages are written and the socket buffer has drained."""
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(self._drained.wait(), timeout)
            if not self.closed:
                await asyncio.wait_for(self.writer.drain(), timeout)

    def _transcript(self, direction: str, fields: list[Field] | list[str]) -> None:
        self.ctx.transcript.write(self.conn_id, self.client_id, direction, fields)

    # --- pushes from the server ----------------------------------------------------------

    def on_order_event(self, ev: Event, record: ExecutionRecord | None) -> None:
        """Order messages in TWS's order for each kind of event."""
        v = self.version
        if isinstance(ev, Ack):
            self.send(m.open_order(v, ev.order))
            self.send(m.order_status(ev.order))
        elif isinstance(ev, Filled) and record is not None:
            self.send(m.exec_details(v, -1, record))
            if ev.order.status == "Filled":
                self.send(m.open_order(v, ev.order))
            self.send(m.order_status(ev.order))
            self.send(m.commission_report(record))
        elif isinstance(ev, Cancelled):
            self.send(m.order_status(ev.order))
            self.send_error(ev.order.order_id, 202, f"Order Canceled - reason:{ev.reason}")
        elif isinstance(ev, Rejected):
            self.send_error(ev.order.order_id, 201, f"Order rejected - reason:{ev.reason}")
            self.send(m.open_order(v, ev.order))
            self.send(m.order_status(ev.order))
        elif isinstance(ev, OrderError):
            self.send_error(ev.order_id, ev.code, ev.text)

    def send_order_state(self, order: SimOrder) -> None:
        self.send(m.open_order(self.version, order))
        self.send(m.order_status(order))

    def on_positions(self, views: list[PositionView]) -> None:
        if self.subs.positions:
            acct = self.ctx.account.account_id
            for p in views:
                self.send(m.position(acct, p))

    def on_account(self, changed: list[PositionView]) -> None:
        acct = self.ctx.account
        if self.subs.account:
            for p in changed:
                self.send(m.portfolio_value(acct.account_id, p))
            for tag, value, cur in acct.values():
                self.send(m.account_value(tag, value, cur, acct.account_id))
            self.send(m.account_time(self.ctx.clock.now()))
        for req_id in sorted(self.subs.account_multi):
            for tag, value, cur in acct.values():
                self.send(m.account_update_multi(req_id, acct.account_id, "", tag, value, cur))

    def send_account_snapshot(self) -> None:
        """reqAccountUpdates' first answer: values, portfolio, time, download end."""
        acct = self.ctx.account
        for tag, value, cur in acct.values():
            self.send(m.account_value(tag, value, cur, acct.account_id))
        for p in acct.positions():
            self.send(m.portfolio_value(acct.account_id, p))
        self.send(m.account_time(self.ctx.clock.now()))
        self.send(m.account_download_end(acct.account_id))

    def on_bars(self, revealed: list[tuple[Instrument, int]]) -> None:
        """Deliver newly closed bars to this session's bar and tick subscriptions."""
        closed = {inst.con_id: i for inst, i in revealed}
        for req_id, sub in list(self.subs.hist.items()):
            i = closed.get(sub.inst.con_id)
            if i is not None:
                self._send_hist_update(req_id, sub, i)
        for req_id, inst in list(self.subs.rt_bars.items()):
            i = closed.get(inst.con_id)
            if i is not None:
                self.send(
                    m.real_time_bar(
                        req_id,
                        int(inst.times[i] // 1_000_000_000),
                        float(inst.open[i]),
                        float(inst.high[i]),
                        float(inst.low[i]),
                        float(inst.close[i]),
                        float(inst.volume[i]),
                    )
                )
        for req_id, inst in list(self.subs.mkt_data.items()):
            i = closed.get(inst.con_id)
            if i is not None:
                self.send_ticks(req_id, inst, i)

    def on_bars_opened(self, opened: list[tuple[Instrument, int]]) -> None:
        """Forming bars: a new bar has opened; keepUpToDate subscribers get it (its open)."""
        fresh = {inst.con_id: i for inst, i in opened}
        for req_id, sub in list(self.subs.hist.items()):
            i = fresh.get(sub.inst.con_id)
            if i is not None:
                self._send_hist_update(req_id, sub, i, forming=True)

    def revise(self, inst: Instrument, i: int, changes: dict[str, float]) -> int:
        """Send bar ``i`` of ``inst`` again with ``changes`` to its keepUpToDate
        subscribers (a late revision by IB); returns how many got it."""
        subs = [(r, sub) for r, sub in self.subs.hist.items() if sub.inst.con_id == inst.con_id]
        for req_id, sub in subs:
            self._send_hist_update(req_id, sub, i, changes=changes)
        return len(subs)

    def _send_hist_update(
        self,
        req_id: int,
        sub: HistSub,
        i: int,
        forming: bool = False,
        changes: dict[str, float] | None = None,
    ) -> None:
        label, *values = stream_bar(sub.inst, sub.size, sub.same_size, i, forming)
        if changes:
            names = ("open", "high", "low", "close", "volume")
            values = [changes.get(n, v) for n, v in zip(names, values, strict=True)]
        o, h, lo, c, vol = values
        date = format_bar_time(label, sub.size, sub.format_date)
        self.send(m.historical_data_update(req_id, date, o, h, lo, c, vol))

    def send_ticks(self, req_id: int, inst: Instrument, i: int) -> None:
        """Top-of-book and last-trade ticks from bar ``i`` (bid = ask = last = close)."""
        c = float(inst.close[i])
        self.send(m.tick_price(req_id, 1, c, 100.0))
        self.send(m.tick_price(req_id, 2, c, 100.0))
        self.send(m.tick_price(req_id, 4, c, 100.0))
        self.send(m.tick_price(req_id, 6, float(inst.high[i]), 0.0))
        self.send(m.tick_price(req_id, 7, float(inst.low[i]), 0.0))
        self.send(m.tick_price(req_id, 14, float(inst.open[i]), 0.0))
        if i > 0:
            self.send(m.tick_price(req_id, 9, float(inst.close[i - 1]), 0.0))
        self.send(m.tick_size(req_id, 8, float(inst.volume[i])))
