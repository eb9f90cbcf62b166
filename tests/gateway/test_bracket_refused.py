"""A bracket IB refuses part of, end to end: real ib_async, ibsim, a trader.

The gateway sends a strategy order with protective exits as a bracket: the parent and all
children but the last staged (``transmit=False``), the last child transmitting the group.
Here a price is moved off ibsim's grid (US stocks: 0.01) so IB refuses it with error 110:
the take-profit (the transmitting child) behind a market entry, or a limit entry (the
parent) with its children staged behind it. Nothing of such a bracket may stay staged at
IB: the trader goes quiet, the parent ends ``Cancelled`` (at ibsim and in the journal,
with the reason) without a fill, and the symbol is decided again on later bars (its next
orders go out), as after a rejected plain order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stratvector.config import load_config
from stratvector.gateway import outgoing
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

CASES = {
    # market entry, one child: the transmitting take-profit, refused
    "take_profit": ("take_profit = 0.04", ""),
    # market entry; a staged stop-loss (TRAIL) child, then the take-profit, refused
    "stop_and_take_profit": ("stop_loss = 0.02\ntake_profit = 0.04", ""),
    # a limit entry refused at placement, its two children staged behind it
    "limit_parent": ("stop_loss = 0.02\ntake_profit = 0.04", 'order_type = "limit"'),
}


def refuse(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Move the take-profit's (or the limit entry's) price off the grid."""
    if case == "limit_parent":
        real_limit = outgoing.limit_price
        monkeypatch.setattr(outgoing, "limit_price", lambda *a, **k: real_limit(*a, **k) + OFF_GRID)
        return
    real_order = ExitSpec.order

    def order(self: ExitSpec, leg: str, *args: Any, **kwargs: Any) -> Any:
        o, lmt, stp = real_order(self, leg, *args, **kwargs)
        if leg == "tp":
            o.lmtPrice = lmt = o.lmtPrice + OFF_GRID
        return o, lmt, stp

    monkeypatch.setattr(ExitSpec, "order", order)


@pytest.mark.parametrize("case", list(CASES))
async def test_a_refused_bracket_leaves_nothing_staged_and_trading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    refuse(monkeypatch, case)
    risk, gateway = CASES[case]
    write_bars(tmp_path / "bars", SYMBOLS)
    cfg = write_config(
        tmp_path, "brackets", list(SYMBOLS), risk=f"position_size = 0.4\n{risk}", gateway=gateway
    )
    transcript = tmp_path / "ibsim.jsonl"
    async with running_sim(
        tmp_path / "bars",
        start=30,
        transcript=transcript,
        **sim_costs(load_config(cfg)),
    ) as sim:
        async with trading(sim, [cfg]) as trader:
            # each bar: the trader goes quiet (nothing left PendingSubmit) or this times out
            await step(sim, trader, 100, timeout=10)
            assert trader.executor.in_flight() == 0 and trader.quiet()
            strategy = next(iter(trader.ledgers))
            far = max(t.bar_time for t in trader.executor.orders.values())
            assert trader.executor.working(strategy, far.replace(year=far.year + 1)) == set()
            client_id = trader.executor.client_id
        staged = [
            o.req.order_ref for o in sim.ctx.book._live.values() if o.status == "PendingSubmit"
        ]
        sim_orders = {o.req.order_ref: o for o in sim.ctx.book._orders.values()}
        executed = {e.order_ref for e in sim.ctx.account.executions}
    assert staged == []
    assert executed == set()  # no bracket was ever transmitted: nothing filled
    assert_books_agree(sim, cfg)
    refused = ib_errors(transcript, 110)
    # no cancel of an order ibsim did not have, or had already finished
    assert ib_errors(transcript, 10147) == set() and ib_errors(transcript, 10148) == set()

    with Journal(load_config(cfg).journal_url()) as j:
        orders = {o.order_ref: o for o in j.orders.list_orders(limit=None)}
        rejected = {e.detail["order_ref"]: e for e in j.events.list_events(kind="order_rejected")}
        history = {ref: j.orders.history(ref) for ref in orders}
    parents = sorted(
        (r for r in orders if parse_order_ref(r).leg is None), key=lambda r: orders[r].bar_time
    )
    assert len(parents) >= 3 * len(SYMBOLS), len(parents)
    for p in parents:
        children = [r for r in orders if r.startswith(p + "|")]
        assert children, p
        # what IB refused is journaled as a rejection, as before
        first = p if case == "limit_parent" else p + "|tp"
        assert orders[first].ib_order_id in refused and first in rejected
        assert rejected[first].detail["code"] == 110
        # the parent: cancelled, never filled; closed with the reason when it was staged
        assert orders[p].status == "Cancelled" and orders[p].filled == 0, orders[p]
        if case != "limit_parent":
            assert sim_orders[p].status == "Cancelled" and sim_orders[p].client_id == client_id
            assert any("never transmitted" in (h.message or "") for h in history[p]), history[p]
        for r in children:
            assert orders[r].status == "Cancelled", (r, orders[r].status)
            o = sim_orders.get(r)
            assert o is None or o.status in ("Cancelled", "Inactive"), (r, o.status)
    # every symbol kept being decided: orders went out after its first refused bracket
    for sym in SYMBOLS:
        assert sum(orders[p].symbol == sym for p in parents) >= 3, sym
