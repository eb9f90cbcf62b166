"""The trader's status: one snapshot for the status line, the status file and tests.

Cheap enough to take many times a second: every percentile comes from a
:class:`~stratvector.gateway.latency.LatencyWindow` (microseconds), nothing is sorted.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratvector.gateway.trader import Trader

RUNNER_PHASES = ("wait", "start", "targets", "gather", "sizing")  # StrategyRunner.timing
EXECUTOR_PHASES = ("checks", "intent", "intent_cpu", "place", "write_wait")  # ExecStats


def phase_timing(trader: Trader, q: float) -> dict[str, float | None]:
    """The ``q``-th percentile of each phase of the decision path, in ms; for the
    runner's phases the slowest strategy's (one strategy in the common case)."""
    out: dict[str, float | None] = {}
    for k in RUNNER_PHASES:
        values = [v for r in trader.runners.values() if (v := r.timing[k].ms(q)) is not None]
        out[k] = max(values) if values else None
    st = trader.executor.stats
    for k in EXECUTOR_PHASES:
        out[k] = getattr(st, k).ms(q)
    return out


def snapshot(trader: Trader) -> dict[str, Any]:
    """State, account, activity counts, latencies, equity and positions per strategy."""
    st = trader.executor.stats
    feeds = trader.feeds.values()
    latest = max((f.latest() or 0) for f in feeds) if trader.feeds else 0
    runners = trader.runners
    return {
        "state": trader.state.state.value,
        "reason": trader.state.reason,
        "endpoint": str(trader.endpoint),
        "account": trader.account,
        "mode": trader.mode.mode,
        "last_bar": dt.datetime.fromtimestamp(latest / 1e9, tz=dt.UTC) if latest else None,
        "decisions": sum(r.decisions for r in runners.values()),
        "orders_sent": st.sent,
        "orders_refused": st.refused,
        "orders_rejected": st.rejected,
        "fills": st.fills,
        "reconnects": trader.supervisor.reconnects,
        "halted": trader.guard.any_halted(),
        "send_latency_p50_ms": st.send_latency.ms(50),
        "send_latency_p99_ms": st.send_latency.ms(99),
        "decision_latency_p50_ms": st.decision_latency.ms(50),
        "decision_latency_p99_ms": st.decision_latency.ms(99),
        "equity": {sid: r.ledger.equity for sid, r in runners.items()},
        "positions": {sid: r.ledger.positions() for sid, r in runners.items()},
        "bars_closed_by_timer": sum(f.timer_closes for f in feeds),
        "kernels_compiled": trader.compiles.compiled,
        "bar_revisions_after_decision": sum(f.revisions for f in feeds),
        "journal_failures": trader.jq.failures,
        "journal_inline_calls": trader.jq.inline_calls,
        "timing_p50_ms": phase_timing(trader, 50),
        "timing_p99_ms": phase_timing(trader, 99),
        "uptime_s": time.time() - trader.state.history[0][0],
    }
