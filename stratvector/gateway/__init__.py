"""The live path: one ib_async connection to IB Gateway/TWS (or ibsim), live bars, the
strategies' targets, the backtest's sizing, orders through the journal, reconciliation.

Modules, each small, I/O at the edges:

- :mod:`~stratvector.gateway.connection` / :mod:`~stratvector.gateway.supervisor`: the
  connection with timeouts, reconnects with backoff, the nightly restart window, 1100s.
- :mod:`~stratvector.gateway.safety`: paper/live mode and the account check.
- :mod:`~stratvector.gateway.contracts`: symbols to qualified contracts.
- :mod:`~stratvector.gateway.feed` (+ :mod:`~stratvector.gateway.window`): warmup, live
  closed bars, gap backfill; history comes from :mod:`~stratvector.gateway.history`.
- :mod:`~stratvector.gateway.history_plan`: history spans split into IB-sized requests.
- :mod:`~stratvector.gateway.runner` and :mod:`~stratvector.gateway.sizing`:
  ``Strategy.target`` on closed bars and the kernel's sizing rule.
- :mod:`~stratvector.gateway.acting`: each decision to orders; what a halt does to them.
- :mod:`~stratvector.gateway.execution`: the write-ahead send (intents journaled, then
  ``placeOrder``), built by :mod:`~stratvector.gateway.outgoing`, tracked in
  :mod:`~stratvector.gateway.order_book`; :mod:`~stratvector.gateway.receiver` books
  what IB reports (fills, commissions, statuses), :mod:`~stratvector.gateway.refusals`
  decides what IB's refusals mean (brackets never transmitted, protective exits
  refused); the journal's writer thread is :mod:`~stratvector.gateway.journal_queue`;
  latencies :mod:`~stratvector.gateway.latency`.
- :mod:`~stratvector.gateway.guard`: pre-trade risk and the kill switch.
- :mod:`~stratvector.gateway.reconcile`: IB vs the journal after every (re)connect.
- :mod:`~stratvector.gateway.trader`: the wiring, with an observable state
  (:mod:`~stratvector.gateway.status`: its snapshot); the journal checked and read back
  at start-up in :mod:`~stratvector.gateway.restore`, settled orders forgotten and
  memory released in :mod:`~stratvector.gateway.housekeeping`.
"""

from stratvector.gateway.errors import (
    AccountMismatchError,
    ConnectError,
    ContractError,
    DuplicateClientIdError,
    GatewayError,
    LiveTradingNotConfirmed,
    NotConnectedError,
    ReconcileError,
    WarmupError,
)
from stratvector.gateway.safety import ModeDecision, check_account, is_paper_account, resolve_mode
from stratvector.gateway.state import State
from stratvector.gateway.trader import Trader

__all__ = [
    "AccountMismatchError",
    "ConnectError",
    "ContractError",
    "DuplicateClientIdError",
    "GatewayError",
    "LiveTradingNotConfirmed",
    "ModeDecision",
    "NotConnectedError",
    "ReconcileError",
    "State",
    "Trader",
    "WarmupError",
    "check_account",
    "is_paper_account",
    "resolve_mode",
]
