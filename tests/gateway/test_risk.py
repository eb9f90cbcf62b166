"""Pre-trade risk and the kill switch, through ibsim: each limit refuses the order that
would breach it (journaled, never sent), and a halt cancels, flattens and stops trading."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from stratvector.config import load_config
from stratvector.gateway import State
from stratvector.gateway.guard import Guard
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.risk.limits import AccountState, RiskLimits
from stratvector.store import Journal
from tests.gateway.conftest import (
    assert_books_agree,
    running_sim,
    sim_costs,
    sim_orders_by_ref,
    step,
    step_until_orders,
    trading,
    write_bars,
    write_config,
)

HOLD = {"strategy": "buy_and_hold", "parameters": "", "risk": "position_size = 0.4"}


def _refusals(cfg: Path) -> tuple[list, list]:
    with Journal(load_config(cfg).journal_url()) as j:
        refused = [o for o in j.orders.list_orders(limit=None) if o.status == "Abandoned"]
        events = j.events.list_events(kind="limit_breach")
    return refused, events


@pytest.mark.parametrize(
    ("limit", "value", "allowed"),
    [
        ("max_order_notional", 20_000, 0),
        ("max_position_value", 20_000, 0),
        ("max_gross_exposure", 0.05, 1),
        ("max_orders_per_minute", 1, 1),
    ],
)
async def test_each_limit_refuses_the_order_that_would_breach_it(
    tmp_path: Path, limit: str, value: float, allowed: int
) -> None:
    write_bars(tmp_path / "bars", {"AAA": 31, "BBB": 32}, n=60)
    cfg = write_config(tmp_path, "hold", ["AAA", "BBB"], limits=f"{limit} = {value}", **HOLD)
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 2)
        assert trader.state.state == State.READY
        refused_count = trader.executor.stats.refused
    refused, events = _refusals(cfg)
    assert refused_count == 2 - allowed == len(refused) == len(events)
    for o in refused:
        history = []
        with Journal(load_config(cfg).journal_url()) as j:
            history = j.orders.history(o.order_ref)
        assert any(limit in (h.message or "") for h in history)
        assert o.order_ref not in sim_orders_by_ref(sim)
    assert len(sim_orders_by_ref(sim)) == allowed
    assert_books_agree(sim, cfg)


async def test_a_breach_that_trips_the_kill_switch_stops_its_whole_batch(tmp_path: Path) -> None:
    # the same batch as the gross-exposure case above: AAA's order fits, BBB's breaches;
    # with the limit in kill_on, AAA's order must not go out after the halt either
    write_bars(tmp_path / "bars", {"AAA": 31, "BBB": 32}, n=60)
    limits = 'max_gross_exposure = 0.05\nkill_on = ["max_gross_exposure"]'
    cfg = write_config(tmp_path, "hold", ["AAA", "BBB"], limits=limits, **HOLD)
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 2)
        assert trader.state.state == State.HALTED
        assert trader.executor.stats.refused == 1
        assert sim_orders_by_ref(sim) == {}  # nothing of the batch reached IB
    refused, events = _refusals(cfg)
    assert [o.symbol for o in refused] == ["BBB"]
    assert events and all("BBB" in (e.message or "") for e in events)  # refusal and trip


async def test_daily_loss_and_drawdown_refuse_risk_increasing_orders(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}").open()
    jq = JournalQueue(journal)
    jq.start()

    class View:
        equity, peak, day_start = 100_000.0, 100_000.0, 100_000.0

        def state(self, now, extra=None):
            return AccountState(
                self.equity, self.peak, self.day_start, {"AAA": 100.0}, {"AAA": 10.0}
            )

        def equity_state(self, now):
            return AccountState(self.equity, self.peak, self.day_start)

    halts: list[str] = []

    async def on_halt(scope: str, reason: str) -> None:
        halts.append(scope)

    now = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    for limit in ("max_daily_loss", "max_drawdown"):
        halts.clear()
        view = View()
        guard = Guard(RiskLimits(**{limit: 0.03}, kill_on=()), jq, view, ["s"], on_halt)
        view.equity = 96_000.0  # 4 % down from the day start and from the peak
        _, buy = guard.check("s", "AAA", 10, 10.0, now, {})
        assert not buy.allowed and [b.limit for b in buy.breaches] == [limit]
        _, sell = guard.check("s", "AAA", -50, 10.0, now, {})
        assert sell.allowed  # reducing risk is always allowed
        await guard.check_account(now)
        assert halts == []  # not in kill_on: refuses orders, does not trip
        tripping = Guard(RiskLimits(**{limit: 0.03}, kill_on=(limit,)), jq, view, ["s"], on_halt)
        await tripping.check_account(now)
        assert tripping.halted() and halts[-1] == "*"
        journal.control.resume()
    jq.close()
    journal.close()


async def test_drawdown_trips_kill_switch_cancels_flattens_and_halts(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", {"AAA": 41, "BBB": 42}, n=60)
    cfg = write_config(
        tmp_path,
        "hold",
        ["AAA", "BBB"],
        limits="max_drawdown = 0.05\nflatten_on_kill = true",
        **HOLD,
    )
    async with (
        running_sim(
            tmp_path / "bars", start=30, cash=100_000.0, **sim_costs(load_config(cfg))
        ) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step(sim, trader, 3)
        assert {p.inst.symbol for p in sim.ctx.account.positions()} == {"AAA", "BBB"}
        sim.ctx.account.cash -= 12_000.0  # a loss the account reports at the next bar
        await step(sim, trader, 2)
        assert trader.state.state == State.HALTED
        await step(sim, trader, 1)  # the closing orders fill
        assert sim.ctx.account.positions() == []
        sent = trader.executor.stats.sent
        await step(sim, trader, 5)
        assert trader.executor.stats.sent == sent
    with Journal(load_config(cfg).journal_url()) as j:
        assert j.control.is_halted()
        assert j.events.list_events(kind="kill_switch")
        flat = [o for o in j.orders.list_orders(limit=None) if o.order_ref.endswith("|flatten")]
    assert len(flat) == 2 and all(o.status == "Filled" for o in flat)
    assert_books_agree(sim, cfg)


async def test_operator_halt_cancels_open_orders_then_resume(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", {"AAA": 51, "BBB": 52}, n=120)
    cfg = write_config(tmp_path, "sma", ["AAA", "BBB"])
    async with (
        running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(cfg))) as sim,
        trading(sim, [cfg]) as trader,
    ):
        await step_until_orders(sim, trader)
        working = sim.ctx.book.working()
        assert working
        with Journal(load_config(cfg).journal_url()) as other:  # "stratvector halt"
            other.control.halt("operator: stop now", actor="ops")
        await trader.until(
            lambda: trader.state.state == State.HALTED and not sim.ctx.book.working(), 5
        )
        assert all(o.status == "Cancelled" for o in working)
        sent = trader.executor.stats.sent
        await step(sim, trader, 10)
        assert trader.executor.stats.sent == sent
        with Journal(load_config(cfg).journal_url()) as other:
            other.control.resume(actor="ops")
        await trader.until(lambda: trader.state.state == State.READY, 5)
        await step_until_orders(sim, trader, 80)
    assert_books_agree(sim, cfg)
