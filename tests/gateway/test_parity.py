"""Parity: the journal's fills equal the backtest's trades on the same bars."""

from __future__ import annotations

from pathlib import Path

from stratvector.config import load_config
from tests.gateway.conftest import (
    assert_parity,
    backtest_reference,
    journal_fills,
    running_sim,
    sim_costs,
    step,
    trading,
    write_bars,
    write_config,
)


async def test_parity_one_strategy_two_symbols_long_only(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", {"AAA": 1, "BBB": 2}, n=140)
    cfg = write_config(
        tmp_path, "sma", ["AAA", "BBB"], parameters="fast = 5\nslow = 20\nallow_short = false"
    )
    async with running_sim(tmp_path / "bars", start=40, **sim_costs(load_config(cfg))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [cfg]) as trader:
            await step(sim, trader, 100)
            status = trader.status()
        bt = backtest_reference(cfg, sim, first)
    assert status["state"] == "ready", status
    # on SQLite the decisions' intents commit inline (no hand-off to the writer thread)
    assert 0 < status["journal_inline_calls"] <= status["decisions"]
    assert_parity(bt, journal_fills(cfg))


async def test_parity_several_strategies_long_and_short_sharing_a_symbol(tmp_path: Path) -> None:
    """Two strategies, four symbols (one traded by both), long and short, one of them
    with a trailing stop (IB bracket children): each strategy's fills are its backtest's."""
    write_bars(tmp_path / "bars", {"AAA": 11, "BBB": 12, "CCC": 13, "DDD": 14}, n=150)
    sma = write_config(tmp_path, "sma", ["AAA", "BBB", "CCC"], risk="position_size = 0.3")
    mom = write_config(
        tmp_path,
        "mom",
        ["BBB", "DDD"],
        strategy="momentum",
        parameters=(
            "lookback_period = 10\nentry_threshold = 0.01\nexit_threshold = 0.0\nallow_short = true"
        ),
        risk="position_size = 0.5\ntrailing_stop = 0.04",
        capital=50_000.0,
    )
    async with running_sim(tmp_path / "bars", start=30, **sim_costs(load_config(sma))) as sim:
        first = sim.ctx.clock.last_closed_time()
        async with trading(sim, [sma, mom]) as trader:
            await step(sim, trader, 119)
            positions = trader.status()["positions"]
        refs = {
            name: backtest_reference(cfg, sim, first) for name, cfg in (("sma", sma), ("mom", mom))
        }
    fills = journal_fills(sma)
    for name, sid in (("sma", "sma_crossover"), ("mom", "momentum")):
        mine = fills[fills["strategy"] == sid]
        assert (mine["quantity"] < 0).any() and (mine["quantity"] > 0).any()
        assert_parity(refs[name], mine, exact=name == "sma")
        final = refs[name].positions.iloc[-1]
        assert {s: q for s, q in final.items() if q} == positions[sid]
    shorts = refs["sma"].trades
    assert (shorts["direction"] == "short").any()
    assert (refs["mom"].orders["reason"] == "trailing_stop").any()


async def test_orders_committed_inline_are_placed_in_the_callback_that_decided_them(
    tmp_path: Path,
) -> None:
    """With the intents committed inline, a decision's orders go to IB before the
    decision's callback returns (not from a task that first waits for every other ready
    callback), all in one socket write; they are placed once, and the decision's
    delivery finishes the rest."""
    write_bars(tmp_path / "bars", {"AAA": 21, "BBB": 22}, n=120)
    cfg = write_config(tmp_path, "sma", ["AAA", "BBB"], parameters="fast = 3\nslow = 10")
    async with running_sim(tmp_path / "bars", start=30) as sim, trading(sim, [cfg]) as trader:
        runner = next(iter(trader.runners.values()))
        deciding = [False]
        placed: list[tuple[str, bool]] = []
        decide, place = runner._decide, trader.ib.placeOrder

        per_decision: list[tuple[list[str], list[int]]] = []  # (refs placed, writes)

        def timed_decide(*args, **kwargs):
            per_decision.append(([], []))
            deciding[0] = True
            try:
                return decide(*args, **kwargs)
            finally:
                deciding[0] = False

        def recorded_place(contract, order):
            placed.append((order.orderRef, deciding[0]))
            if deciding[0]:
                per_decision[-1][0].append(order.orderRef)
            return place(contract, order)

        # the socket writes made while deciding: how many messages each one carries
        transport = trader.ib.client.conn.transport
        write = transport.write

        def recorded_write(data):
            if deciding[0]:
                per_decision[-1][1].append(_frames(bytes(data)))
            return write(data)

        timed_before = trader.executor.stats.write_wait.total  # writes before these
        runner._decide = timed_decide
        trader.ib.placeOrder = recorded_place
        transport.write = recorded_write
        await step(sim, trader, 60)
        status = trader.status()
        shown = repr(trader.ib.trades()[-1])
        timed_writes = trader.executor.stats.write_wait.total - timed_before
    assert status["journal_inline_calls"] > 0
    # the trader installed the short order reprs ib_async's event logs are built with
    assert shown.startswith(("Trade(AAA ", "Trade(BBB ")), shown
    refs = [ref for ref, _ in placed]
    assert len(refs) == len(set(refs)) > 5  # each order placed once
    # every strategy order of this run was committed inline and placed while deciding
    assert all(inside for _, inside in placed), placed
    # each decision's orders left in one socket write, all of them in it
    for refs, writes in per_decision:
        assert writes == ([len(refs)] if refs else []), (refs, writes)
    assert any(len(refs) > 1 for refs, _ in per_decision)
    # and each of those writes gave its orders their send time
    assert timed_writes == sum(1 for refs, _ in per_decision if refs)


def _frames(data: bytes) -> int:
    """How many length-prefixed TWS messages ``data`` holds (exactly, or it fails)."""
    n = 0
    while data:
        size = int.from_bytes(data[:4], "big")
        assert len(data) >= 4 + size
        data = data[4 + size :]
        n += 1
    return n
