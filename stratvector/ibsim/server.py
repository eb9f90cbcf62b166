"""The asyncio server: listening socket, sessions, the simulated clock, and the control API.

Use it as an async context manager (or ``await start()`` / ``await stop()``)::

    async with IBSim(IBSimConfig(bars=dir, port=0)) as sim:
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1)
        await sim.advance(1)          # close one bar: fills, bar updates, account pushes

The constructor does no I/O; :meth:`start` loads and validates the bars (a bad file raises
:class:`~stratvector.errors.DataError` naming file and row), then listens. Everything runs
on the caller's event loop; no method blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from typing import Self

from stratvector.ibsim.account import Account
from stratvector.ibsim.broker import Broker
from stratvector.ibsim.config import IBSimConfig
from stratvector.ibsim.context import SimContext
from stratvector.ibsim.faults import FaultState, PacingGuard
from stratvector.ibsim.hub import Hub
from stratvector.ibsim.market import BarStore, SimClock
from stratvector.ibsim.orders import OrderBook
from stratvector.ibsim.session import LOST_TEXT, Session
from stratvector.ibsim.sessions import build_sessions
from stratvector.ibsim.transcript import Transcript

log = logging.getLogger("stratvector.ibsim")

RESTORED_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."
RESTORED_KEPT = (
    "Connectivity between IB and Trader Workstation has been restored - data maintained."
)


class IBSim:
    """An IB Gateway stand-in serving the TWS API on loopback. See the package docstring
    for the time model; the methods below are the Python control API."""

    def __init__(self, config: IBSimConfig) -> None:
        self.config = config
        self._ctx: SimContext | None = None
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._replay: asyncio.Task[None] | None = None
        self._conn_seq = 0
        self._accepting = False
        self._restarting = False
        self.steps = 0
        self._portfolio_pushed = float("-inf")  # monotonic time of the last full push

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the bars, build the state, listen; optionally start the replay."""
        if self._ctx is not None:
            return
        cfg = self.config
        store = await asyncio.to_thread(
            BarStore.load,
            cfg.bars,
            cfg.primary_exchange,
            cfg.currency,
            min_tick=cfg.min_tick,
            market_rule=cfg.market_rule,
        )
        sessions = build_sessions(store.timeline, store.bar_duration, cfg.session, cfg.time_zone)
        clock = SimClock(store, cfg.start, sessions=sessions, forming=cfg.forming_bars)
        hub = Hub(cfg.master_client_id)
        faults = FaultState(rng=random.Random(cfg.seed))
        book = OrderBook(
            cfg.slippage,
            cfg.participation,
            max_open=cfg.limits.max_open_orders,
            max_done=cfg.limits.max_open_orders,
            expire_day_orders=cfg.expire_day_orders,
        )
        account = Account(cfg.account, cfg.cash, cfg.currency, cfg.limits.max_executions)
        broker = Broker(
            store, clock, book, account, cfg.commission, faults, hub, cfg.primary_exchange
        )
        transcript = Transcript(cfg.transcript)
        transcript.open()
        pacing = PacingGuard(cfg.pacing) if cfg.pacing is not None else None
        self._ctx = SimContext(
            cfg, store, clock, book, account, broker, faults, pacing, hub, transcript
        )
        for inst in store.instruments.values():
            n = clock.closed_count(inst)
            if n:
                account.mark(inst, float(inst.close[n - 1]))
        self._open_if_due()  # forming bars: the next bar may be forming already
        await self._listen(cfg.port)
        if cfg.speed:
            self.start_replay(cfg.speed)

    async def stop(self) -> None:
        """Stop the replay, close every connection and the listener. Idempotent."""
        self.stop_replay()
        await self._close_listener()
        self.drop_connections()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._ctx is not None:
            self._ctx.transcript.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until cancelled (the CLI's main loop)."""
        await asyncio.Event().wait()

    @property
    def ctx(self) -> SimContext:
        if self._ctx is None:
            raise RuntimeError("IBSim is not started; use 'async with IBSim(...)' or await start()")
        return self._ctx

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if self._port is None:
            raise RuntimeError("IBSim is not listening")
        return self._port

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._on_connect,
            host=self.config.host,
            port=port,
            reuse_address=True,
            family=socket.AF_INET6 if ":" in self.config.host else socket.AF_INET,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._accepting = True
        log.info("ibsim listening on %s:%d", self.config.host, self._port)

    async def _close_listener(self) -> None:
        self._accepting = False
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ctx = self.ctx
        if len(ctx.hub.sessions) >= self.config.limits.max_connections:
            log.warning(
                "ibsim: connection limit %d reached; refusing", self.config.limits.max_connections
            )
            writer.transport.abort()
            return
        self._conn_seq += 1
        session = Session(self._conn_seq, reader, writer, ctx)
        ctx.hub.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await session.serve()
        except asyncio.CancelledError:
            pass  # server stopping: this connection task ends quietly
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    # --- the clock -----------------------------------------------------------------------

    def step(self) -> bool:
        """Close the next timeline bar: fills first (at this bar's prices), then bar and
        tick updates, then position and account pushes. False at the end of the data.

        With forming bars the bar opens first if it has not (time jumps to its open, then
        to its close), and the following bar opens at once when it starts at this close.
        """
        ctx = self.ctx
        if ctx.clock.forming and not ctx.clock.opened:
            self._open()
        k = ctx.clock.advance()
        if k is None:
            return False
        self.steps += 1
        revealed = []
        for inst in ctx.store.instruments.values():
            i = ctx.clock.bar_at(inst, k)
            if i is not None:
                revealed.append((inst, i))
        changed = []
        held = {inst.con_id: ctx.account.position(inst).qty for inst, _ in revealed}
        for inst, i in revealed:
            changed += ctx.broker.on_bar(inst, i, k)
        ctx.hub.bars_closed(revealed)
        interval = self.config.portfolio_interval
        now = time.monotonic()
        if interval <= 0 or now - self._portfolio_pushed >= interval:
            self._portfolio_pushed = now
            ctx.hub.account_changed(changed)
        else:  # between IB's periodic pushes only positions whose quantity changed
            moved = [v for v in changed if v.qty != held.get(v.inst.con_id, 0.0)]
            if moved:
                ctx.hub.account_changed(moved)
        self._open_if_due()
        return True

    def step_open(self) -> bool:
        """The open of the next timeline bar, without closing it: the orders its open
        fills (market orders, stops and limits the open is through) are filled and
        reported; :meth:`step` then closes the bar and matches the rest of it. In
        between the clients can react to those fills (a bracket child's price fixed
        after its parent filled), as they can against IB, where the bar's later prices
        come long after the open. False at the end of the data. Closed-bar replays only
        (with forming bars the bar's open is its own event)."""
        ctx = self.ctx
        if ctx.clock.forming:
            raise ValueError("step_open needs bar_updates closed (forming bars open on their own)")
        if ctx.clock.at_end:
            return False
        k = ctx.clock.pos  # the entry the next step() closes
        changed = []
        for inst in ctx.store.instruments.values():
            i = ctx.clock.bar_at(inst, k)
            if i is not None:
                changed += ctx.broker.on_open(inst, i, k)
        if changed:
            ctx.hub.account_changed(changed)
        return True

    async def advance_open(self) -> bool:
        """:meth:`step_open`, then flush every session's output."""
        opened = self.step_open()
        await self.flush()
        return opened

    def _open(self) -> None:
        """Forming bars: open the next timeline entry and send its bars to subscribers."""
        ctx = self.ctx
        k = ctx.clock.open_next()
        if k is None:
            return
        opened = []
        for inst in ctx.store.instruments.values():
            i = ctx.clock.bar_at(inst, k)
            if i is not None:
                opened.append((inst, i))
        ctx.hub.bars_opened(opened)

    def _open_if_due(self) -> None:
        clock = self.ctx.clock
        if clock.forming and not clock.opened:
            due = clock.next_event()
            if due is not None and due <= clock.time_ns:
                self._open()

    def step_time(self, seconds: float) -> int:
        """Let ``seconds`` of simulated time pass: every bar whose close comes by then
        closes (as :meth:`step`), with forming bars every bar whose open comes opens.
        Returns how many bars closed. Without forming bars the clock's time stays the
        close of the last closed bar."""
        clock = self.ctx.clock
        target = int(clock.now().value) + round(max(0.0, seconds) * 1e9)
        closed = 0
        while (due := clock.next_event()) is not None and due <= target:
            if clock.forming and not clock.opened:
                self._open()
            elif self.step():
                closed += 1
        clock.move_to(target)
        return closed

    async def advance_time(self, seconds: float) -> int:
        """:meth:`step_time`, then flush every session's output. Returns bars closed."""
        closed = self.step_time(seconds)
        await self.flush()
        return closed

    def revise_last_bar(self, symbol: str, **changes: float) -> int:
        """Send ``symbol``'s last closed bar again with ``changes`` (``open``, ``high``,
        ``low``, ``close``, ``volume``) to its keepUpToDate subscribers, as IB revises a
        bar after its close. The stored bars are not changed. Returns how many
        subscriptions got it."""
        ctx = self.ctx
        inst = ctx.store.by_symbol(symbol)
        if inst is None:
            raise ValueError(f"ibsim has no symbol {symbol!r}")
        unknown = set(changes) - {"open", "high", "low", "close", "volume"}
        if unknown:
            raise ValueError(f"cannot revise {', '.join(sorted(unknown))} of a bar")
        n = ctx.clock.closed_count(inst)
        if not n:
            raise ValueError(f"{symbol} has no closed bar yet")
        return ctx.hub.revise(inst, n - 1, {k: float(v) for k, v in changes.items()})

    async def advance(self, n: int = 1) -> int:
        """Close ``n`` bars (fewer at the end of the data), then flush every session's
        output to its socket. Returns how many bars closed."""
        done = 0
        for _ in range(max(0, n)):
            if not self.step():
                break
            done += 1
        await self.flush()
        return done

    async def flush(self) -> None:
        """Wait until every live session's queued messages are on the socket."""
        await asyncio.gather(*(s.flush() for s in list(self.ctx.hub.sessions)))

    def start_replay(self, speed: float) -> None:
        """Close ``speed`` bars per second until the data ends or :meth:`stop_replay`.

        The replay pauses while connectivity is "lost" (between 1100 and 1101/1102).
        """
        self.stop_replay()
        if speed <= 0:
            return
        self._replay = asyncio.create_task(self._replay_loop(1.0 / speed))

    def stop_replay(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            self._replay = None

    async def _replay_loop(self, period: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + period
        while not self.ctx.clock.at_end:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += period
            if self.ctx.faults.connectivity_lost:
                continue
            try:
                self.step()
            except Exception:  # a bug must not stop the server silently
                log.exception("ibsim: error while closing a bar; replay stopped")
                return
        log.info("ibsim: end of data after %d steps", self.steps)

    # --- faults (the control API) --------------------------------------------------------

    def drop_connections(self) -> int:
        """Close every client socket at once (state is kept). Returns how many."""
        sessions = list(self._ctx.hub.sessions) if self._ctx else []
        for s in sessions:
            s.close()
        return len(sessions)

    async def restart(self, downtime: float = 5.0) -> None:
        """A Gateway restart: drop everyone, refuse connections for ``downtime`` seconds,
        then listen again on the same port. Account, orders and executions are kept (as IB
        keeps them); subscriptions are not."""
        if self._restarting:
            log.warning("ibsim: a restart is already in progress; ignored")
            return
        downtime = min(max(0.0, downtime), self.config.limits.max_restart_downtime)
        self._restarting = True
        try:
            await self._close_listener()
            self.drop_connections()
            await asyncio.sleep(downtime)
            await self._listen(self.port)
        finally:
            self._restarting = False

    def begin_restart(self, downtime: float = 5.0) -> asyncio.Task[None]:
        """Start :meth:`restart` in the background (for signals and control commands)."""
        task = asyncio.create_task(self.restart(downtime))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def connectivity_lost(self) -> None:
        """Send 1100 to every client (sockets stay open) and pause the replay."""
        self.ctx.faults.connectivity_lost = True
        self.ctx.hub.notice(1100, LOST_TEXT)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Send 1101 (data lost: clients must resubscribe) or 1102 (data maintained)."""
        self.ctx.faults.connectivity_lost = False
        if data_lost:
            for s in self.ctx.hub.live():
                s.subs.mkt_data.clear()
                s.subs.hist.clear()
                s.subs.rt_bars.clear()
            self.ctx.hub.notice(1101, RESTORED_LOST)
        else:
            self.ctx.hub.notice(1102, RESTORED_KEPT)

    def reject_next_order(self, reason: str = "ibsim: rejected by request", count: int = 1) -> None:
        """Reject the next ``count`` new orders with error 201 and status Inactive."""
        for _ in range(max(1, count)):
            self.ctx.faults.reject_next.append(reason)

    def set_jitter(self, max_delay: float, min_delay: float = 0.0) -> None:
        """Delay each outgoing message by a random time in ``[min_delay, max_delay]``
        seconds (per-connection order is kept); ``max_delay=0`` turns it off."""
        self.ctx.faults.jitter = (max(0.0, min_delay), max(0.0, max_delay))

    def status(self) -> dict[str, object]:
        """A snapshot for the control command and logs."""
        ctx = self.ctx
        return {
            "port": self._port,
            "accepting": self._accepting,
            "clients": sorted(s.client_id for s in ctx.hub.live() if s.client_id is not None),
            "now": ctx.clock.now().isoformat(),
            "position": ctx.clock.pos,
            "forming": ctx.clock.opened,
            "bars": len(ctx.clock.timeline),
            "replaying": self._replay is not None and not self._replay.done(),
            "connectivity_lost": ctx.faults.connectivity_lost,
            "open_orders": len(ctx.book.working()),
            "executions": len(ctx.account.executions),
        }


__all__ = ["IBSim"]
