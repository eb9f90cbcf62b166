"""Regression: the live bar subscriptions share the warmup's pacing gate.

``reqHistoricalData(keepUpToDate=True)`` is a historical request at IB: it counts against
the same pacing rules as the warmup's history requests. The bug: ``BarFeed.subscribe``
sent its subscriptions without consulting the history scheduler's ``PacingGate``, so a
subscription sent right after a warmup broke IB's rule "six or more requests for the same
contract, exchange and tick type within two seconds", came back empty with error 162
("Historical Market Data Service error message: ... pacing violation") and had to be
retried. The fix: ``Trader._sync`` calls ``feed.subscribe(ib, self.history)``, whose
requests the scheduler admits through its own pacing gate.

The scenario, with IB's own limits on both sides (ibsim's ``PacingLimits()`` and the
trader's default ``PacingPolicy``): a daily warmup reaching back about 4.5 years. IB serves
at most one year of daily bars per request (``MAX_DURATION``), so ``HistoryScheduler``
splits each symbol's warmup into five requests, sent back to back within a fraction of a
second; five is exactly what the per-contract rule allows in two seconds. The
subscription of the same symbol is the sixth request for that contract and tick type:

- gated (the fix), it waits until the first warmup request is two seconds old, and is
  served at once;
- ungated (the bug, simulated below by dropping the gate), IB refuses it with error 162,
  the feed counts a refusal and retries it after its backoff.

The second test simulates the bug and checks that the scenario does reproduce it, so the
first cannot pass for a reason unrelated to the gate (e.g. a warmup that no longer needs
five requests per contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from stratvector.config import load_config
from stratvector.gateway import State
from stratvector.gateway.feed import BarFeed
from stratvector.gateway.history import MAX_DURATION
from stratvector.gateway.pacing import DEFAULT_POLICY
from stratvector.ibsim import PacingLimits
from tests.gateway.conftest import make_trader, running_sim, sim_costs, write_bars, write_config

SYMBOLS = {"AAA": 21, "BBB": 22}
FIRST_BAR = "2023-01-02"  # write_bars' first (business) day
N_BARS = 1_200
START = 1_180  # closed bars when the trader starts: ~4.5 years after FIRST_BAR
DAY_S = 86_400

# the premise of the scenario: the warmup takes exactly as many requests per contract as
# IB's per-contract rule allows in its window, so the subscription is one too many
WARMUP_REQUESTS = DEFAULT_POLICY.per_contract_max
assert PacingLimits().per_contract_max == WARMUP_REQUESTS
assert MAX_DURATION[DAY_S] == 365 * DAY_S


@dataclass
class Outcome:
    pacing_errors: list[tuple[str, str]] = field(default_factory=list)  # (symbol, text)
    history_requests: int = 0
    history_violations: int = 0
    refusals: int = 0
    subscribed: bool = False
    sub_bars: dict[str, int] = field(default_factory=dict)
    ready: bool = False
    first_decided: int | None = None
    first_bar: int | None = None
    next_decided: int | None = None
    next_bar: int | None = None
    next_held: dict[str, int | None] = field(default_factory=dict)


async def _warmup_then_subscribe(tmp_path: Path) -> Outcome:
    """Start a trader on a 4.5-year daily warmup against ibsim with IB's pacing limits,
    then close one bar; report what pacing errors reached it and what it decided."""
    write_bars(tmp_path / "bars", SYMBOLS, n=N_BARS)
    cfg = write_config(tmp_path, "sma", list(SYMBOLS), gateway=f'warmup_start = "{FIRST_BAR}"')
    out = Outcome()
    async with running_sim(
        tmp_path / "bars", start=START, pacing=PacingLimits(), **sim_costs(load_config(cfg))
    ) as sim:
        now = sim.ctx.clock.now()
        span_days = (now - pd.Timestamp(FIRST_BAR, tz="UTC")).days
        assert 4 * 365 < span_days < 5 * 365 - 2, span_days  # five one-year requests
        out.first_bar = sim.ctx.clock.last_closed_time()
        trader = make_trader(sim, [cfg])

        def on_error(req_id: int, code: int, text: str, contract: object) -> None:
            if code == 162 and "pacing" in text.lower():
                out.pacing_errors.append((getattr(contract, "symbol", "?"), text))

        trader.ib.errorEvent += on_error
        await trader.start()
        try:
            await trader.until(lambda: trader.state.state == State.READY and trader.quiet(), 30)
            out.ready = True
            feed = trader.feeds["1d"]
            runner = next(iter(trader.runners.values()))
            out.history_requests = trader.history.requests_sent
            out.history_violations = trader.history.pacing_violations
            out.refusals = feed.refusals
            out.subscribed = feed.subscribed
            out.sub_bars = {s: len(bars) for s, bars in feed._subs.items()}
            out.first_decided = runner.last_decided
            assert await sim.advance(1) == 1
            out.next_bar = sim.ctx.clock.last_closed_time()
            await trader.until(
                lambda: trader.seen(out.next_bar) and trader.quiet() and runner.last_decided,
                20,
            )
            out.next_decided = runner.last_decided
            out.next_held = {s: w.last_time for s, w in feed.windows.items()}
        finally:
            await trader.stop()
    return out


async def test_subscriptions_after_a_chunked_warmup_wait_in_the_history_pacing_gate(
    tmp_path: Path,
) -> None:
    out = await _warmup_then_subscribe(tmp_path)
    # the premise: five one-year requests per symbol, none refused
    assert out.history_requests == WARMUP_REQUESTS * len(SYMBOLS)
    assert out.history_violations == 0
    # the regression: the subscriptions did not break the per-contract rule
    assert out.pacing_errors == [], out.pacing_errors
    assert out.refusals == 0
    # every subscription delivered its initial bars, and then the live bar
    assert out.subscribed
    assert sorted(out.sub_bars) == sorted(SYMBOLS)
    assert all(n > 0 for n in out.sub_bars.values()), out.sub_bars
    assert out.next_held == {s: out.next_bar for s in SYMBOLS}
    # the trader became READY, decided the bar it started on, then the first live bar
    assert out.ready
    assert out.first_decided == out.first_bar
    assert out.next_decided == out.next_bar


async def test_scenario_reproduces_the_bug_when_subscriptions_bypass_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug, simulated: subscriptions ignore the gate. IB (ibsim) refuses each
    symbol's subscription with error 162; the feed retries after its backoff."""
    original = BarFeed.subscribe

    async def ungated(self: BarFeed, ib: object, pacing: object = None) -> None:
        await original(self, ib, None)  # type: ignore[arg-type]

    monkeypatch.setattr(BarFeed, "subscribe", ungated)
    out = await _warmup_then_subscribe(tmp_path)
    assert out.history_requests == WARMUP_REQUESTS * len(SYMBOLS)
    assert out.history_violations == 0  # the warmup itself stays within the gate
    assert sorted({s for s, _ in out.pacing_errors}) == sorted(SYMBOLS), out.pacing_errors
    assert all("pacing violation" in text for _, text in out.pacing_errors)
    assert out.refusals >= len(SYMBOLS)
    assert out.ready and out.subscribed  # recovered by the feed's retries, not the gate
