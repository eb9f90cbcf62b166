"""Trading a contract whose market rule is tiered, end to end: real ib_async, ibsim with
the rule 0.001 below 10, 0.005 from 10 to 50 and 0.01 from 50, minTick 0.001.

Three symbols sit around 10 (both sides of the first edge), around 25 (inside the 0.005
band) and around 50 (both sides of the second edge). The strategy sends limit entries and
stop-loss/take-profit children at fill-relative (off-grid) levels; IB, and the stand-in,
refuse a price off the grid of its band with error 110. With the increment at each price
no order is refused; the control run rounds to minTick only, as the gateway did before
it read market rules, and is refused -- the proof that the first run can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stratvector.config import load_config
from stratvector.gateway.contracts import Instrument
from stratvector.ibsim import MarketRule
from stratvector.store import Journal
from tests.gateway.conftest import (
    assert_books_agree,
    running_sim,
    sim_costs,
    step,
    trading,
    write_bars,
    write_config,
)

TIERED = MarketRule(239, ((0.0, 0.001), (10.0, 0.005), (50.0, 0.01)))
SYMBOLS = {"LOW": (9, 10.0), "MID": (7, 25.0), "HIGH": (8, 50.0)}  # seed, first price


def refusals(transcript: Path) -> list[list[str]]:
    """The error 110 messages ibsim sent (``4, 2, reqId, code, text, ...``)."""
    out = []
    for line in transcript.read_text().splitlines():
        msg = json.loads(line)
        f = msg["fields"]
        if msg["dir"] == "out" and f[:1] == ["4"] and len(f) > 3 and f[3] == "110":
            out.append(f)
    return out


def setup(tmp_path: Path) -> tuple[Path, Path, dict]:
    """Bars, the strategy config and the ibsim options of both runs."""
    bars = tmp_path / "bars"
    for sym, (seed, price) in SYMBOLS.items():
        write_bars(bars, {sym: seed}, price=price, volatility=0.02)
    cfg = write_config(
        tmp_path,
        "tiered",
        list(SYMBOLS),
        risk="position_size = 0.3\nstop_loss = 0.02\ntake_profit = 0.04",
        gateway='order_type = "limit"\nlimit_offset_bps = 30',
    )
    options = {
        "start": 30,
        "market_rule": TIERED,
        "min_tick": 0.001,
        "transcript": tmp_path / "ibsim.jsonl",
        **sim_costs(load_config(cfg)),
    }
    return bars, cfg, options


async def test_a_tiered_rule_trades_without_error_110(tmp_path: Path) -> None:
    bars, cfg, options = setup(tmp_path)
    async with running_sim(bars, **options) as sim:
        async with trading(sim, [cfg]) as trader:
            mid = trader.contracts.get("MID")
            assert (mid.market_rule, mid.min_tick, mid.tick_at(25.0)) == (239, 0.001, 0.005)
            await step(sim, trader, 129)
            rejected = trader.executor.stats.rejected
        orders = list(sim.ctx.book._orders.values())
    assert refusals(options["transcript"]) == [] and rejected == 0
    assert_books_agree(sim, cfg)
    with Journal(load_config(cfg).journal_url()) as j:
        fills = j.fills.list_fills()
    legs = [f.order_ref.rpartition("|")[2] for f in fills]
    assert legs.count("stop") >= 3 and legs.count("tp") >= 3, legs
    # every price sent is on the grid of its band; most lie in bands coarser than
    # minTick, where a price rounded to minTick alone is refused
    prices = [
        p
        for o in orders
        for p in (o.req.lmt_price, o.req.aux_price, o.req.trail_stop_price)
        if p is not None and o.req.order_type in ("LMT", "STP")
    ]
    entries = [o for o in orders if o.req.order_type == "LMT" and not o.req.parent_id]
    assert sum(o.status == "Filled" for o in entries) >= 5
    assert all(TIERED.conforms(p) for p in prices)
    coarse = [p for p in prices if TIERED.increment_at(p) > 0.001]
    assert len(prices) >= 20 and len(coarse) >= len(prices) // 2, (len(coarse), len(prices))
    assert any(p < 10.0 for p in prices) and any(p >= 50.0 for p in prices)


async def test_the_same_run_rounded_to_min_tick_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: ``tick_at`` answering minTick, as before market rules were read.
    A bracket IB refuses part of is cancelled rather than left staged (see
    tests/gateway/test_bracket_refused.py), so the trader goes quiet after every bar."""
    monkeypatch.setattr(Instrument, "tick_at", lambda self, price: self.min_tick)
    bars, cfg, options = setup(tmp_path)
    transcript = options["transcript"]
    async with running_sim(bars, **options) as sim, trading(sim, [cfg]) as trader:
        for _ in range(60):
            if len(refusals(transcript)) >= 3 or not await step(sim, trader):
                break
        assert trader.executor.stats.rejected >= 1 and trader.executor.in_flight() == 0
        staged = [o for o in sim.ctx.book._live.values() if o.status == "PendingSubmit"]
    assert len(refusals(transcript)) >= 3 and staged == []
