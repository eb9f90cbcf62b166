"""A protective exit IB refuses, end to end: real ib_async, ibsim, a trader.

A strategy order with ``[risk]`` exits goes to IB as a bracket: the parent, a stop-loss
child (staged) and a take-profit child (the last: it transmits the group). Here a price
of one exit is moved off ibsim's grid (US stocks: 0.01), so IB refuses it with error 110
while it accepts the rest:

- the stop-loss of a new bracket, while nothing of the position exists: IB would
  transmit the bracket without it. The entry is abandoned instead: nothing of the
  bracket stays working, the parent is cancelled with the reason, nothing fills, and the
  symbol is decided again on later bars;
- the stop-loss of a bracket that changes a position the strategy holds, or the price
  fix of an exit once the entry filled (a modification: ib_async reports its refusal as
  a ``ValidationError`` warning): the position is unprotected, so the strategy's kill
  switch trips: its orders are cancelled, with ``flatten_on_kill`` its positions closed,
  and it stays halted;
- a refused modification settles its pending confirmation at once (the trader goes
  quiet without waiting out the 10 s confirmation timeout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ib_async import Trade

from stratvector.config import load_config
from stratvector.gateway import Trader
from stratvector.gateway.exits import ExitSpec
from stratvector.store import Journal, parse_order_ref
from tests.gateway.conftest import (
    OFF_GRID,
    assert_books_agree,
    ib_errors,
    running_sim,
    sim_costs,
    step,
    trading,
    write_bars,
    write_config,
)

SYMBOLS = {"AAA": 21, "BBB": 22}
RISK = "position_size = 0.4\nstop_loss = 0.02\ntake_profit = 0.04"
STEP_TIMEOUT = 5.0  # well below the 10 s an unconfirmed modification used to hold


def refuse_new_stop(monkeypatch: pytest.MonkeyPatch, when: Any = lambda ref: True) -> None:
    """Move the stop-loss child's price off the grid (its ``trailStopPrice`` while it is
    a TRAIL, its stop price when it is sent as a STP) for the orders ``when(ref)``."""
    real = ExitSpec.order

    def order(self: ExitSpec, leg: str, ref: str, *args: Any, **kwargs: Any) -> Any:
        o, lmt, stp = real(self, leg, ref, *args, **kwargs)
        if leg == "stop" and when(ref):
            if o.orderType == "STP":
                o.auxPrice += OFF_GRID
            else:
                o.trailStopPrice = round(stp, 2) + OFF_GRID
        return o, lmt, stp

    monkeypatch.setattr(ExitSpec, "order", order)


def refuse_fix(monkeypatch: pytest.MonkeyPatch, leg: str, error: bool = False) -> None:
    """Move the fixed price of ``leg`` (once the entry filled) off the grid (error 110, a
    warning to ib_async); with ``error``, make the fixed stop a STP LMT without a limit
    price instead (error 201: ib_async closes the order, which IB still works)."""
    real = ExitSpec.fixed

    def fixed(self: ExitSpec, which: str, *args: Any, **kwargs: Any) -> Any:
        o = real(self, which, *args, **kwargs)
        if which == leg == "stop" and error:
            o.orderType = "STP LMT"
        elif which == leg == "stop":
            o.auxPrice += OFF_GRID
        elif which == leg == "tp":
            o.lmtPrice += OFF_GRID
        return o

    monkeypatch.setattr(ExitSpec, "fixed", fixed)


def holding(box: dict[str, Trader]) -> Any:
    """``when`` for :func:`refuse_new_stop`: the strategy already holds the symbol."""

    def when(ref: str) -> bool:
        parts = parse_order_ref(ref)
        trader = box.get("trader")  # None in the catch-up decision at the start: flat
        return trader is not None and trader.ledgers[parts.strategy].position(parts.symbol) != 0

    return when


def setup(tmp_path: Path, limits: str = "") -> tuple[Path, Path, dict[str, Any]]:
    write_bars(tmp_path / "bars", SYMBOLS)
    cfg = write_config(tmp_path, "exits", list(SYMBOLS), risk=RISK, limits=limits)
    options = {
        "start": 30,
        "transcript": tmp_path / "ibsim.jsonl",
        **sim_costs(load_config(cfg)),
    }
    return tmp_path / "bars", cfg, options


async def test_a_stop_refused_before_the_fill_abandons_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_new_stop(monkeypatch)
    bars, cfg, options = setup(tmp_path)
    async with running_sim(bars, **options) as sim:
        async with trading(sim, [cfg]) as trader:
            await step(sim, trader, 100, timeout=STEP_TIMEOUT)
            strategy = next(iter(trader.ledgers))
            assert trader.quiet() and not trader.guard.halted(strategy)
            assert trader.executor.book.abandoned == {}
            assert trader.executor.stats.rejected >= 3
        working = [(o.req.order_ref, o.status) for o in sim.ctx.book._live.values()]
        sim_orders = {o.req.order_ref: o for o in sim.ctx.book._orders.values()}
        executed = {e.order_ref for e in sim.ctx.account.executions}
    assert working == []  # nothing of any bracket is left working at IB
    assert executed == set()  # no entry was ever filled without its stop
    assert_books_agree(sim, cfg)
    transcript = options["transcript"]
    refused = ib_errors(transcript, 110)
    assert ib_errors(transcript, 10147) == set() and ib_errors(transcript, 10148) == set()

    with Journal(load_config(cfg).journal_url()) as j:
        orders = {o.order_ref: o for o in j.orders.list_orders(limit=None)}
        rejected = {e.detail["order_ref"]: e for e in j.events.list_events(kind="order_rejected")}
        history = {ref: j.orders.history(ref) for ref in orders}
        assert not j.control.is_halted(strategy)
    parents = sorted(
        (r for r in orders if parse_order_ref(r).leg is None), key=lambda r: orders[r].bar_time
    )
    assert len(parents) >= 3 * len(SYMBOLS), len(parents)
    for p in parents:
        stop, tp = p + "|stop", p + "|tp"
        assert orders[stop].ib_order_id in refused and rejected[stop].detail["code"] == 110
        assert stop not in sim_orders  # IB never had it
        # IB transmitted the parent and the take-profit without the stop: both cancelled
        assert sim_orders[p].status == "Cancelled" and sim_orders[tp].status == "Cancelled"
        assert orders[p].status == "Cancelled" and orders[p].filled == 0, orders[p]
        assert orders[tp].status == "Cancelled", orders[tp]
        assert any(
            (h.message or "").startswith("protective exit stop refused: ") for h in history[p]
        ), [(h.status, h.message) for h in history[p]]
    # every symbol kept being decided: orders went out after its first abandoned entry
    for sym in SYMBOLS:
        assert sum(orders[p].symbol == sym for p in parents) >= 3, sym


@pytest.mark.parametrize("case", ["new_stop", "stop_fix", "stop_fix_error"])
async def test_an_exit_refused_with_the_position_open_trips_the_kill_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    box: dict[str, Trader] = {}
    if case == "new_stop":  # an order changing a held position: its stop is refused
        refuse_new_stop(monkeypatch, holding(box))
    else:  # the entry filled: the stop's fix to its exact level is refused
        refuse_fix(monkeypatch, "stop", error=case == "stop_fix_error")
    bars, cfg, options = setup(tmp_path, limits="flatten_on_kill = true")
    async with running_sim(bars, **options) as sim:
        async with trading(sim, [cfg]) as trader:
            box["trader"] = trader
            strategy = next(iter(trader.ledgers))
            for _ in range(120):
                if trader.guard.halted(strategy):
                    break
                assert await step(sim, trader, timeout=STEP_TIMEOUT)
            assert trader.guard.halted(strategy)
            await trader.until(lambda: not trader.acting.trips and trader.quiet(), 10)
            await step(sim, trader, 1, timeout=STEP_TIMEOUT)  # the closing orders fill
            sent = trader.executor.stats.sent
            await step(sim, trader, 5, timeout=STEP_TIMEOUT)
            assert trader.executor.stats.sent == sent  # halted: nothing more sent
            assert trader.guard.halted(strategy)
        assert sim.ctx.account.positions() == []
        # nothing left working at IB (with error 201, ib_async closed the stop IB works)
        assert [(o.req.order_ref, o.status) for o in sim.ctx.book._live.values()] == []
    assert_books_agree(sim, cfg)

    with Journal(load_config(cfg).journal_url()) as j:
        assert j.control.is_halted(strategy) and not j.control.is_halted()
        kills = j.events.list_events(kind="kill_switch")
        rejected = [
            e
            for e in j.events.list_events(kind="order_rejected")
            if e.detail["order_ref"].endswith("|stop")
        ]
        orders = j.orders.list_orders(limit=None)
    code = 201 if case == "stop_fix_error" else 110
    assert rejected and all(e.detail["code"] == code for e in rejected), rejected
    assert all(e.detail.get("modification", False) == (case != "new_stop") for e in rejected)
    refs = {e.detail["order_ref"] for e in rejected}
    assert len(kills) == 1, [k.message for k in kills]
    reason = kills[0].message or ""
    assert any(r in reason for r in refs) and " stop refused by IB (" in reason, reason
    assert str(code) in reason and "not protected" in reason, reason
    flat = [o for o in orders if o.order_ref.endswith("|flatten")]
    assert flat and all(o.status == "Filled" for o in flat), [(o.order_ref, o.status) for o in flat]


async def test_a_refused_modification_settles_its_confirmation_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_fix(monkeypatch, "tp")
    bars, cfg, options = setup(tmp_path)
    async with running_sim(bars, **options) as sim, trading(sim, [cfg]) as trader:
        book = trader.executor.book
        seen: list[tuple[str, bool]] = []

        def on_status(trade: Trade) -> None:  # after the receiver's own handler
            if trade.orderStatus.status == "ValidationError":
                seen.append((trade.order.orderRef, trade.order.orderRef in book.acks))

        trader.ib.orderStatusEvent += on_status
        strategy = next(iter(trader.ledgers))
        for _ in range(60):
            if seen:
                break
            # without waiting out the 10 s confirmation timeout
            assert await step(sim, trader, timeout=STEP_TIMEOUT)
        assert seen and all(ref.endswith("|tp") for ref, _ in seen), seen
        assert not any(pending for _, pending in seen), seen  # settled by the refusal
        await trader.until(lambda: not trader.acting.trips and trader.quiet(), 2)
        assert trader.guard.halted(strategy)
        assert not any(ref in book.acks for ref, _ in seen)
    with Journal(load_config(cfg).journal_url()) as j:
        rejected = {e.detail["order_ref"]: e for e in j.events.list_events(kind="order_rejected")}
    for ref, _ in seen:
        assert rejected[ref].detail == {"order_ref": ref, "code": 110, "modification": True}
