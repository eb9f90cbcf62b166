"""The trader: wires config -> connection -> feeds -> runners -> sizing -> execution.

:class:`Trader` runs one or more strategies against IB Gateway/TWS (or ibsim) over one
ib_async connection::

    trader = Trader(configs, mode=resolve_mode(...))
    await trader.start()      # journal, connect, account check, contracts, sync: READY
    await trader.run()        # until stop() or a non-retryable failure
    await trader.stop()       # clean: subscriptions cancelled, journal drained

States are explicit (:class:`~stratvector.gateway.state.State`, ``trader.state``) and
every change of interest (state, bar decided, order sent or acknowledged, fill) pulses
:meth:`Trader.until`, which tests and the status line await instead of sleeping.

Start-up order (each step can fail with one clear error, before any order is sent):
config validation (constructor), the journal URL's check, connect, paper/live account
check, contract qualification, journal open and read back (ledgers, booked execIds,
last targets: :mod:`~stratvector.gateway.restore`), then the sync below. After every
(re)connect the supervisor runs the same sync: executions since the last journaled
fill, pending intents against IB's orders, history warmup or gap backfill and fresh bar
subscriptions, positions against the journal, intents that never left, the halt flag;
then each strategy decides once on the newest bar it has not decided yet. While it
runs, settled orders are forgotten now and then
(:mod:`~stratvector.gateway.housekeeping`). Before connecting, the trader's ib_async
client gets the faster message encoder of :mod:`~stratvector.gateway.wire` (the same
bytes, checked when it is installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from stratvector.config import StrategyConfig
from stratvector.data.cache import BarCache
from stratvector.gateway import ib_repr, safety, wire
from stratvector.gateway.acting import Acting
from stratvector.gateway.connection import (
    Backoff,
    Clock,
    Connection,
    Endpoint,
    RestartWindow,
    wall_clock,
)
from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.errors import ConnectError
from stratvector.gateway.execution import Executor
from stratvector.gateway.feed import BarFeed, ClosedBar
from stratvector.gateway.guard import AccountView, Guard
from stratvector.gateway.history import HistoryScheduler
from stratvector.gateway.housekeeping import GcPause, forget_settled_orders, release_memory
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.kernels import CompileCount, compile_in_child
from stratvector.gateway.pacing import DEFAULT_POLICY, PacingPolicy
from stratvector.gateway.reconcile import Reconciler, ReconcileReport
from stratvector.gateway.restore import load_journal, preflight_journal
from stratvector.gateway.runner import OrderPlan, StrategyRunner
from stratvector.gateway.settings import StrategySpec, build_specs, warmup_span
from stratvector.gateway.sizing import Decision
from stratvector.gateway.state import FINAL, State, StateMachine
from stratvector.gateway.status import snapshot
from stratvector.gateway.supervisor import Supervisor
from stratvector.memory import release_file_pages
from stratvector.store import Journal
from stratvector.store.events import CONNECTED, DISCONNECTED

log = logging.getLogger("stratvector.gateway.trader")

CHECKPOINT_EVERY = 1.0  # seconds between the journal writer's WAL checkpoints, at most


class Trader:
    """Runs strategies live. The constructor validates and builds; it does no I/O.

    ``mode`` comes from :func:`~stratvector.gateway.safety.resolve_mode` (default: the
    config's mode without a command-line confirmation, so live is refused); ``host``,
    ``port``, ``client_id`` and ``journal_url`` override the config. ``on_order_latency``
    receives each order's seconds from ``placeOrder`` to IB's ``Filled`` (the
    ``order_latency_seconds`` metric). ``clock`` (wall time) and ``rng`` make the
    restart window and the backoff jitter testable. ``compile_in_child`` has numba
    compile what its cache lacks in a child process while it connects
    (:mod:`stratvector.gateway.kernels`), so this process only loads kernels and keeps
    compilation's memory out of its peak (the CLI's choice; tests leave it off).
    """

    def __init__(
        self,
        configs: list[StrategyConfig],
        *,
        mode: safety.ModeDecision | None = None,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        journal_url: str | None = None,
        journal: Journal | None = None,
        pacing: PacingPolicy | None = None,
        clock: Clock = wall_clock,
        rng: random.Random | None = None,
        halt_poll: float = 1.0,
        on_order_latency: Callable[[float], None] | None = None,
        compile_in_child: bool = False,
    ) -> None:
        self._configs = list(configs)
        self._compile_in_child = compile_in_child
        self.specs, self.run_settings = build_specs(self._configs)
        g = self.run_settings.gateway
        self.mode = mode or safety.resolve_mode(g.mode, g.account, None, None)
        self.endpoint = Endpoint(
            host or g.host,
            port
            or (g.port if g.port is not None else (4001 if self.mode.mode == "live" else 4002)),
            g.client_id if client_id is None else client_id,
        )
        self._journal_url = journal_url or self.run_settings.journal_url
        # its own journal checkpoints its WAL on the writer, between decisions
        self.journal = journal or Journal(self._journal_url, autocheckpoint=False)
        self._own_journal = journal is None
        self.jq = JournalQueue(self.journal, checkpoint_every=CHECKPOINT_EVERY)
        self.gc_pause = GcPause()
        self.state = StateMachine()
        self.conn = Connection(self.endpoint, g.connect_timeout)
        self.ib = self.conn.ib
        symbols = [s for spec in self.specs for s in spec.symbols]
        self.contracts = ContractBook(symbols, g.exchange, g.currency)
        if pacing is None:
            pacing = replace(DEFAULT_POLICY, max_requests=g.history_requests_per_10min)
        self.history = HistoryScheduler(
            self.ib, BarCache(self.run_settings.cache_dir), pacing, timeout=g.request_timeout
        )
        self._pulse = asyncio.Event() if _has_loop() else None
        by_size: dict[str, list[str]] = {}
        capacity: dict[str, int] = {}
        for spec in self.specs:
            by_size.setdefault(spec.bar_size, []).extend(spec.symbols)
            capacity[spec.bar_size] = max(capacity.get(spec.bar_size, 0), spec.history_bars)
        self.feeds: dict[str, BarFeed] = {
            size: BarFeed(
                self.contracts,
                syms,
                size,
                self._on_bar,
                capacity=capacity[size],
                updates=g.bar_updates,
                what_to_show=g.what_to_show,
                use_rth=g.use_rth,
                request_timeout=g.request_timeout,
                close_grace=g.close_grace,
                session_close_grace=g.session_close_grace,
            )
            for size, syms in by_size.items()
        }
        self.view = AccountView(self.ib, self.contracts, self._last_close)
        self.guard = Guard(
            self.run_settings.limits,
            self.jq,
            self.view,
            [s.id for s in self.specs],
            self._on_halt,
            poll=halt_poll,
            on_resume=self._on_resume,
        )
        self.runners: dict[str, StrategyRunner] = {}
        for spec in self.specs:
            self.runners[spec.id] = StrategyRunner(
                spec.id,
                spec.strategy,
                spec.settings,
                list(spec.symbols),
                self.feeds[spec.bar_size],
                self._sink,
                batch_timeout=spec.config.gateway.batch_timeout,
                may_decide=self._may_decide,
                working=lambda sid, t: self.executor.working(sid, t),
                hold=self._hold_journal,
            )
        self.ledgers = {sid: r.ledger for sid, r in self.runners.items()}
        self.executor = Executor(
            self.ib,
            self.jq,
            self.contracts,
            self.ledgers,
            self.guard,
            client_id=self.endpoint.client_id,
            order_type=g.order_type,
            limit_offset_bps=g.limit_offset_bps,
            time_in_force=g.time_in_force,
            on_change=self._changed,
            on_latency=on_order_latency,
        )
        self.acting = Acting(
            self.guard,
            self.executor,
            self.runners,
            flatten_on_kill=self.run_settings.limits.flatten_on_kill,
            on_global_halt=self._halted_all,
            changed=self._changed,
        )
        owners: dict[str, list[str]] = {}
        for spec in self.specs:
            for sym in spec.symbols:
                owners.setdefault(sym, []).append(spec.id)
        self.reconciler = Reconciler(
            self.ib,
            self.jq,
            self.executor,
            self.contracts,
            self.ledgers,
            self.guard,
            owners=owners,
            policy=g.on_unknown_position,
            timeout=g.request_timeout,
        )
        self.supervisor = Supervisor(
            self.conn,
            self.state,
            self._sync,
            backoff=Backoff(g.reconnect_delay, g.reconnect_max_delay, rng),
            window=RestartWindow(g.restart_window, g.restart_timezone),
            connect_attempts=g.connect_attempts,
            lost_timeout=g.lost_timeout,
            clock=clock,
            on_down=self._on_down,
        )
        self.state.add_listener(lambda old, new, why: self._changed())
        self.account = ""
        self.syncs = 0
        self.last_report: ReconcileReport | None = None
        self._loaded = False
        self._warm = False
        self._stopping = False
        self._housekeeper: asyncio.Task[None] | None = None
        # kernels compiled in this process (not loaded from numba's cache) while trading
        self.compiles = CompileCount()
        self._kernels: asyncio.Future[int | None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the journal, connect, check the account, sync. Raises on any failure
        (with everything opened so far closed again)."""
        self._pulse = asyncio.Event()
        try:
            preflight_journal(self.journal, self._journal_url)
            ib_repr.install()  # ib_async's order-event logs: a line each, not a full repr
            wire.install(self.ib.client)  # its messages encoded in half the time, same bytes
            self.compiles.start()
            if self._compile_in_child:  # while connecting and qualifying the contracts
                self._kernels = asyncio.ensure_future(compile_in_child(self._configs))
            self.jq.start()
            try:
                await self.supervisor.start()
            except (TimeoutError, ConnectionError) as exc:
                raise ConnectError(
                    f"lost or timed out talking to IB Gateway at {self.endpoint} while "
                    f"starting ({exc or type(exc).__name__}); check the Gateway and retry"
                ) from exc
            self.guard.start()
            self._housekeeper = asyncio.ensure_future(
                forget_settled_orders(self.executor.receiver, self.deciding)
            )
        except BaseException:
            await self._teardown(State.FAILED)
            raise

    async def run(self) -> None:
        """Trade until :meth:`stop` is called or supervision fails (then raise)."""
        if self.state.state == State.STARTING:
            await self.start()
        stopped = asyncio.ensure_future(self.state.wait_for(State.STOPPED, State.FAILED))
        failed = asyncio.ensure_future(self.supervisor.wait_failed())
        try:
            done, _ = await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
            if failed in done:
                failed.result()
        finally:
            for t in (stopped, failed):
                t.cancel()

    async def stop(self) -> None:
        """Stop cleanly: no new decisions, subscriptions cancelled, journal flushed."""
        if self.state.state in FINAL:
            return
        await self._teardown(State.STOPPED)

    async def _teardown(self, final: State) -> None:
        self._stopping = True
        if self.state.state not in FINAL:
            self.state.set(State.STOPPING, "stop requested")
        for runner in self.runners.values():
            runner.cancel()
        self.gc_pause.close()
        self.compiles.stop()
        if self._kernels is not None:
            self._kernels.cancel()  # kills the child
            with contextlib.suppress(asyncio.CancelledError):
                await self._kernels
            self._kernels = None
        await self.supervisor.stop()
        await self.guard.stop()
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
            self._housekeeper = None
        for feed in self.feeds.values():
            feed.live = False
            feed.unsubscribe(self.ib)
        self.executor.flush_fills()
        self.executor.unbind()
        if self.state.state not in FINAL and self.conn.connected and self._loaded:
            with contextlib.suppress(Exception):
                await self.jq.call(
                    self.journal.events.record_event,
                    DISCONNECTED,
                    {"endpoint": str(self.endpoint), "reason": "stopped"},
                    message="trader stopped",
                )
        self.conn.close()
        await self.jq.drain()
        self.jq.close()
        if self._own_journal and self.journal.is_open:
            self.journal.close()
        self.state.set(final, "stopped" if final == State.STOPPED else self.state.reason)

    # ------------------------------------------------------------------ the sync

    async def _sync(self, reason: str) -> None:
        """Everything that must agree before trading resumes (see the module docstring)."""
        self.state.set(State.SYNCING, reason)
        for feed in self.feeds.values():
            feed.live = False
        g = self.run_settings.gateway
        ib = self.ib
        self.account = safety.check_account(self.mode, ib.managedAccounts(), str(self.endpoint))
        self.executor.account = self.reconciler.account = self.view.account = self.account
        await self.contracts.qualify(ib, g.request_timeout)
        if not self._loaded:
            if self._kernels is not None:
                # before the journal's fills reach the ledgers (their first kernels)
                if not self._kernels.done():
                    self.state.set(State.SYNCING, "compiling kernels")
                await asyncio.shield(self._kernels)  # a sync cut short waits again
                self._kernels = None
                self.state.set(State.SYNCING, reason)
            # numba's start-up now (its first kernels), then the start-up's code pages out,
            # before the history's frames add to the peak
            for ledger in self.ledgers.values():
                ledger.prime()
            release_file_pages()
            # opened only now: a run that cannot trade (unknown symbol, wrong account,
            # unreachable Gateway) leaves no journal behind
            await asyncio.to_thread(self.journal.open)
            self.executor.bind()
            await load_journal(self.jq, self.ledgers, self.executor.receiver.seen)
            self._loaded = True
        report = ReconcileReport()
        await self.reconciler.executions(report)
        await self.reconciler.orders(report)
        now = await asyncio.wait_for(ib.reqCurrentTimeAsync(), g.request_timeout)
        now_ns = int(now.timestamp() * 1_000_000) * 1000
        for spec_size, feed in self.feeds.items():
            if not feed.needs_backfill(now_ns):
                continue  # a short gap: the subscription's initial bars fill it
            specs = [s for s in self.specs if s.bar_size == spec_size]
            start = min(self._warmup_start(s, now) for s in specs)
            await feed.load_history(self.history, start)
        self._warm = True
        for feed in self.feeds.values():
            if reason != "restored" or not feed.subscribed:
                await feed.subscribe(ib, self.history)
        await self.reconciler.positions(report, now)
        await self.reconciler.resolve_unsent(report, self._latest_bar)
        await self.guard.refresh()
        self.last_report = report
        self.syncs += 1
        self.jq.submit(
            self.journal.events.record_event,
            CONNECTED,
            {
                "endpoint": str(self.endpoint),
                "account": self.account,
                "mode": self.mode.mode,
                "reason": reason,
                "fills_recovered": report.fills_recovered,
                "orders_matched": report.orders_matched,
                "orders_closed": report.orders_closed,
                "resent": report.resent,
                "abandoned": report.abandoned,
                "unknown_positions": report.unknown_positions,
            },
            message=f"synced with {self.endpoint} ({reason})",
        )
        for runner in self.runners.values():
            runner.prime()  # the strategies' kernels, before the release
        release_memory()  # warmup's temporary frames and bar objects, start-up's code
        self.state.set(State.HALTED if self.guard.halted() else State.READY, reason)
        for feed in self.feeds.values():
            feed.live = True
        for runner in self.runners.values():
            runner.catch_up()

    def _warmup_start(self, spec: StrategySpec, now: dt.datetime) -> dt.datetime:
        if spec.warmup_start is not None:
            d = spec.warmup_start
            return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        g = self.run_settings.gateway
        return now - warmup_span(spec.bar_size, spec.history_bars, g.use_rth)

    def _latest_bar(self, strategy: str, symbol: str) -> int | None:
        runner = self.runners.get(strategy)
        if runner is None:
            return None
        return runner.feed.windows[symbol].last_time

    # ------------------------------------------------------------------ events

    def _on_bar(self, bar: ClosedBar) -> None:
        for runner in self.runners.values():
            if runner.feed.bar_size == bar.bar_size:
                runner.on_bar(bar)
        self._changed()

    def _hold_journal(self, on: bool) -> None:
        """A bar time starts arriving (``on``) or its orders are sent: the journal's
        bookkeeping lane and automatic garbage collection wait meanwhile."""
        if on:
            self.jq.hold()
            self.gc_pause.pause()
        else:
            self.jq.release()
            self.gc_pause.resume()

    def _may_decide(self, strategy: str) -> bool:
        return self.state.state in (State.READY, State.HALTED) and not self.guard.halted(strategy)

    def _sink(
        self, runner: StrategyRunner, decision: Decision, plans: list[OrderPlan]
    ) -> Awaitable[None]:
        return self.acting.sink(runner, decision, plans)

    async def _on_halt(self, scope: str, reason: str) -> None:
        await self.acting.on_halt(scope, reason)

    def _halted_all(self, reason: str) -> None:
        self.state.set(State.HALTED, reason)

    def _on_resume(self, scope: str) -> None:
        if self.state.state == State.HALTED and not self.guard.halted():
            self.state.set(State.READY, f"resumed ({scope})")
        self._changed()

    def flatten_plans(self, strategy: str | None = None) -> list[OrderPlan]:
        """Closing orders for every position of ``strategy`` (None: all strategies)."""
        return self.acting.flatten_plans(strategy)

    def _on_down(self, why: str) -> None:
        for feed in self.feeds.values():
            feed.live = False
            if why == "disconnected":
                feed.forget()
        if self._loaded:
            self.jq.submit(
                self.journal.events.record_event,
                DISCONNECTED,
                {"endpoint": str(self.endpoint), "reason": why},
                message=f"lost {self.endpoint}: {why}",
                severity="warning",
            )

    def _last_close(self, symbol: str) -> float:
        for feed in self.feeds.values():
            w = feed.windows.get(symbol)
            if w is not None and len(w):
                return w.last_close
        return float("nan")

    # ------------------------------------------------------------------ observing

    def _changed(self) -> None:
        if self._pulse is not None:
            self._pulse.set()

    async def until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is true, re-checking on every change; raises
        ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            if self.state.state == State.FAILED and self.supervisor.failure is not None:
                raise self.supervisor.failure
            left = end - loop.time()
            if left <= 0:
                raise TimeoutError(f"timed out waiting for {predicate} (state {self.state.state})")
            if self._pulse is None:
                self._pulse = asyncio.Event()
            self._pulse.clear()
            # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation
            waiter = asyncio.ensure_future(self._pulse.wait())
            try:
                await asyncio.wait({waiter}, timeout=min(left, 0.05))
            finally:
                waiter.cancel()

    def quiet(self) -> bool:
        """No decision running, no order unacknowledged, no kill switch being tripped,
        no journal write queued."""
        return (
            all(r.idle.is_set() for r in self.runners.values())
            and self.executor.in_flight() == 0
            and self.executor.pending_acks() == 0
            and not self.acting.trips
            and self.jq.backlog == 0
        )

    def deciding(self) -> bool:
        """A bar time is arriving or being decided (its orders not all sent yet)."""
        return any(r.deciding for r in self.runners.values())

    def seen(self, t_ns: int) -> bool:
        """Every feed holds a bar at or after ``t_ns``."""
        return all((f.latest() or 0) >= t_ns for f in self.feeds.values())

    def status(self) -> dict[str, Any]:
        """A snapshot for the status line, health checks and tests (:mod:`.status`)."""
        return snapshot(self)


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
