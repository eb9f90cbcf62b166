"""Pre-trade risk and the kill switch, wired to the live account.

:class:`Guard` is the gateway's side of :mod:`stratvector.risk`:

- :meth:`Guard.check` runs :meth:`RiskChecker.check` on every order before its intent is
  journaled, against an :class:`~stratvector.risk.limits.AccountState` built from IB
  (net liquidation, positions) plus the orders already working or decided in the same
  batch, priced at the last closes the feeds hold.
- :meth:`Guard.check_account` runs the daily-loss and drawdown checks on every bar.
- The halt flag lives in the journal (``stratvector halt`` from another process works).
  The guard caches it and refreshes the cache every ``poll`` seconds on the journal
  thread, so checking it costs nothing on the order path; a trip by this process updates
  the cache at once. A halt appearing (a trip or an operator halt) calls ``on_halt``:
  the trader cancels the scope's open orders and, with ``flatten_on_kill``, closes its
  positions.

The peak and day-start equity are kept in memory from the first value seen (after a
restart, the peak starts again from the current equity; the day starts with the first
equity seen on each UTC date of the bars).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime

from ib_async import IB

from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.risk.killswitch import KillSwitch
from stratvector.risk.limits import (
    AccountState,
    Breach,
    Decision,
    OrderProposal,
    RiskChecker,
    RiskLimits,
)
from stratvector.store.control import GLOBAL

log = logging.getLogger("stratvector.gateway.guard")

HaltHandler = Callable[[str, str], Awaitable[None]]  # (scope, reason)


class AccountView:
    """The account as the risk checks see it: IB's net liquidation and positions."""

    def __init__(
        self,
        ib: IB,
        contracts: ContractBook,
        price_of: Callable[[str], float],
        account: str = "",
    ) -> None:
        self.ib = ib
        self.contracts = contracts
        self.price_of = price_of
        self.account = account
        self.peak = 0.0
        self._day: date | None = None
        self.day_start = 0.0

    def equity(self) -> float:
        for v in self.ib.accountValues(self.account):
            if v.tag == "NetLiquidation" and v.currency not in ("", "BASE"):
                with contextlib.suppress(ValueError):
                    return float(v.value)
        return 0.0

    def positions(self) -> dict[str, float]:
        out: dict[str, float] = {}
        symbol_for = self.contracts.symbol_for
        for _, contract, qty, _ in self.ib.positions(self.account):
            if qty:
                sym = symbol_for(contract) or contract.symbol
                out[sym] = out.get(sym, 0.0) + float(qty)
        return out

    def state(self, now: datetime, extra: Mapping[str, float] | None = None) -> AccountState:
        """The account now, with ``extra`` (signed quantities of orders still working or
        about to be sent) added to IB's positions, and a price for every symbol held (one
        account read serves every order of a decision)."""
        base = self.equity_state(now)
        positions = self.positions()
        for sym, qty in (extra or {}).items():
            positions[sym] = positions.get(sym, 0.0) + qty
        prices = {sym: self.price(sym) for sym in positions}
        return AccountState(base.equity, base.peak_equity, base.day_start_equity, positions, prices)

    def equity_state(self, now: datetime) -> AccountState:
        """The account's equity now, its peak and the day's start, without positions: all
        the daily-loss and drawdown checks read (checked on every bar)."""
        equity = self.equity()
        if equity > self.peak:
            self.peak = equity
        day = now.date()
        if day != self._day and equity > 0:
            self._day, self.day_start = day, equity
        return AccountState(equity, self.peak, self.day_start)

    def price(self, symbol: str) -> float:
        """The newest bar close of ``symbol``, else IB's portfolio mark (NaN: none)."""
        px = self.price_of(symbol)
        if not (px == px and px > 0):
            px = self._portfolio_price(symbol)
        return px

    def _portfolio_price(self, symbol: str) -> float:
        for item in self.ib.portfolio(self.account):
            if item.contract.symbol == symbol and math.isfinite(item.marketPrice):
                return float(item.marketPrice)
        return math.nan


class Guard:
    """Risk checks before orders, account checks on bars, and the cached halt flag."""

    def __init__(
        self,
        limits: RiskLimits,
        jq: JournalQueue,
        view: AccountView,
        strategies: list[str],
        on_halt: HaltHandler,
        poll: float = 1.0,
        on_resume: Callable[[str], None] = lambda scope: None,
    ) -> None:
        self.limits = limits
        self.checker = RiskChecker(limits)
        self.jq = jq
        self.view = view
        self.strategies = list(strategies)
        self.on_halt = on_halt
        self.on_resume = on_resume
        self.poll = poll
        self._switch = {GLOBAL: KillSwitch(jq.journal)}
        for s in self.strategies:
            self._switch[s] = KillSwitch(jq.journal, strategy=s)
        self._halted: dict[str, bool] = {}
        self._reasons: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.breaches = 0

    # ------------------------------------------------------------------ the halt flag

    def halted(self, strategy: str | None = None) -> bool:
        if self._halted.get(GLOBAL):
            return True
        return bool(strategy and self._halted.get(strategy))

    def any_halted(self) -> bool:
        return any(self._halted.values())

    def reason(self, scope: str = GLOBAL) -> str:
        return self._reasons.get(scope, "")

    async def refresh(self) -> None:
        """Read every scope's halt flag from the journal; act on new halts."""
        states = await self.jq.call(self._read_flags)
        for scope, (halted, reason) in states.items():
            was = self._halted.get(scope, False)
            self._halted[scope] = halted
            self._reasons[scope] = reason or ""
            if halted and not was:
                await self.on_halt(scope, reason or "halted")
            elif was and not halted:
                log.info("%s resumed", scope)
                self.on_resume(scope)

    def _read_flags(self) -> dict[str, tuple[bool, str | None]]:
        control = self.jq.journal.control
        out = {}
        for scope in self._switch:
            st = control.state(scope)
            out[scope] = (st.halted, st.reason)
        return out

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.refresh()
            except Exception as exc:  # fail closed: treat an unreadable journal as halted
                log.error("cannot read the halt flag (%s); treating as halted", exc)
                self._halted[GLOBAL] = True

    async def trip(
        self, strategy: str | None, reason: str, breaches: tuple[Breach, ...] = ()
    ) -> None:
        """Trip the kill switch of ``strategy`` (None: everything) and act on it."""
        scope = strategy or GLOBAL
        switch = self._switch.get(scope) or KillSwitch(self.jq.journal, strategy=strategy)
        already = self._halted.get(scope, False)
        self._halted[scope] = True
        self._reasons[scope] = reason
        if not already:
            try:
                await self.jq.call(switch.trip, reason, breaches, urgent=True)
            except Exception as exc:  # latched in the switch; the halt holds in memory
                log.error("kill switch %s: journal write failed: %s", scope, exc)
            await self.on_halt(scope, reason)

    # ------------------------------------------------------------------ checks

    def check(
        self,
        strategy: str,
        symbol: str,
        quantity: float,
        price: float,
        when: datetime,
        account: Mapping[str, float] | AccountState,
    ) -> tuple[OrderProposal, Decision]:
        """Check one order against the limits. ``account`` is the account the order
        would join (from :meth:`account`, with the batch's earlier orders added by
        :meth:`after`), or the signed quantities of orders still working, added to the
        account read now."""
        proposal = OrderProposal(strategy, symbol, quantity, price, when)
        state = account if isinstance(account, AccountState) else self.view.state(when, account)
        decision = self.checker.check(proposal, state)
        if not decision.allowed:
            self.breaches += 1
        return proposal, decision

    def account(self, when: datetime, extra: Mapping[str, float] | None = None) -> AccountState:
        """The account as the checks see it at ``when``, with ``extra`` (signed quantities
        of orders still working) added to IB's positions."""
        return self.view.state(when, extra)

    def after(self, account: AccountState, symbol: str, quantity: float) -> AccountState:
        """``account`` once an order of ``quantity`` ``symbol`` is sent."""
        return account.adding(symbol, quantity, self.view.price(symbol))

    def record_sent(self, proposal: OrderProposal) -> None:
        self.checker.record_sent(proposal)

    def account_kill(self, now: datetime) -> tuple[Breach, ...]:
        """The daily-loss and drawdown breaches at ``now`` that should trip the global
        switch (none when it is already tripped, or the limits are off)."""
        if not (self.limits.max_daily_loss or self.limits.max_drawdown):
            return ()
        breaches = self.checker.check_account(self.view.equity_state(now), now)
        kill = tuple(b for b in breaches if b.trips_kill)
        return kill if kill and not self.halted() else ()

    async def check_account(self, now: datetime) -> None:
        """Daily loss and drawdown on a bar; trips the global switch when configured."""
        kill = self.account_kill(now)
        if kill:
            await self.trip(None, "; ".join(b.message for b in kill), kill)
