"""Fills: never lost, never doubled; commissions later; positions incl. shorts and flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stratvector.store import NotFoundError, make_order_ref, net_positions
from stratvector.store.positions import FillLike

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _order(journal, symbol="AAPL", qty=100.0, side="BUY", day=0):
    bar = T0 + timedelta(days=day)
    ref = make_order_ref("momentum", symbol, bar)
    order = journal.orders.record_intent(ref, "momentum", symbol, bar, side, qty)
    n = len(journal.orders.list_orders())
    journal.orders.mark_submitted(ref, 100 + n, 9000 + n)
    return order.order_ref


def test_record_fill_is_idempotent_on_exec_id(journal):
    ref = _order(journal)
    first = journal.fills.record_fill("0001.01", ref, T0, 40, 185.0, "BOT")
    assert first.created and first.side == "BUY" and first.strategy == "momentum"
    assert first.symbol == "AAPL" and first.commission is None
    again = journal.fills.record_fill("0001.01", ref, T0, 40, 185.0, "BOT")
    assert not again.created
    assert len(journal.fills.for_order(ref)) == 1
    assert journal.fills.positions()[0].quantity == 40


def test_commission_arrives_later(journal):
    ref = _order(journal)
    journal.fills.record_fill("e1", ref, T0, 100, 10.0, "BUY")
    updated = journal.fills.record_commission("e1", 1.0, "USD", realized_pnl=1.7976931348623157e308)
    assert updated.commission == 1.0 and updated.commission_currency == "USD"
    assert updated.realized_pnl is None  # IB's UNSET_DOUBLE is not a number
    assert journal.fills.get("e1").commission == 1.0
    with pytest.raises(NotFoundError, match="e2"):
        journal.fills.record_commission("e2", 1.0)


def test_replayed_fill_fills_in_a_missing_commission(journal):
    ref = _order(journal)
    journal.fills.record_fill("e1", ref, T0, 100, 10.0, "BUY")
    replay = journal.fills.record_fill("e1", ref, T0, 100, 10.0, "BUY", commission=0.5)
    assert not replay.created and replay.commission == 0.5


def test_fills_covering_the_intent_mark_it_filled(journal):
    ref = _order(journal, qty=100)
    journal.fills.record_fill("e1", ref, T0, 60, 10.0, "BUY")
    assert journal.orders.get(ref).status == "PendingSubmit"
    journal.fills.record_fill("e2", ref, T0 + timedelta(seconds=1), 40, 11.0, "BUY")
    order = journal.orders.get(ref)
    assert order.status == "Filled" and order.filled == 100
    assert order.avg_fill_price == pytest.approx(10.4)
    assert journal.orders.history(ref)[-1].source == "fills"
    assert journal.orders.pending_intents() == []


def test_unattributed_fill_needs_a_symbol(journal):
    with pytest.raises(ValueError, match="symbol"):
        journal.fills.record_fill("m1", "typed in TWS", T0, 1, 1.0, "BUY")
    manual = journal.fills.record_fill("m1", None, T0, 1, 1.0, "SLD", symbol="SPY")
    assert manual.strategy is None and manual.side == "SELL"
    (pos,) = journal.fills.positions()
    assert (pos.strategy, pos.symbol, pos.quantity) == (None, "SPY", -1)


def test_fill_validation(journal):
    with pytest.raises(ValueError, match="quantity"):
        journal.fills.record_fill("x", None, T0, 0, 1.0, "BUY", symbol="A")
    with pytest.raises(ValueError, match="tz-aware"):
        journal.fills.record_fill("x", None, datetime(2024, 1, 1), 1, 1.0, "BUY", symbol="A")
    assert journal.fills.get("x") is None


def test_last_fill_time(journal):
    assert journal.fills.last_fill_time() is None
    ref = _order(journal)
    journal.fills.record_fill("e1", ref, T0 + timedelta(minutes=5), 10, 1.0, "BUY", account="DU1")
    journal.fills.record_fill("e2", ref, T0, 10, 1.0, "BUY", account="DU2")
    assert journal.fills.last_fill_time() == T0 + timedelta(minutes=5)
    assert journal.fills.last_fill_time().tzinfo is not None
    assert journal.fills.last_fill_time(account="DU2") == T0


def test_positions_long_short_flip_and_fractional(journal):
    aapl_buy = _order(journal, "AAPL", 100, "BUY", day=0)
    aapl_sell = _order(journal, "AAPL", 250, "SELL", day=1)
    msft = _order(journal, "MSFT", 10.5, "SELL", day=0)
    t = T0
    journal.fills.record_fill("a1", aapl_buy, t, 60, 100.0, "BUY", commission=1.0)
    journal.fills.record_fill("a2", aapl_buy, t + timedelta(seconds=1), 40, 110.0, "BUY")
    # Sell 250: closes 100 long at avg 104 (realizes 100 * (120 - 104)), opens 150 short.
    journal.fills.record_fill("a3", aapl_sell, t + timedelta(days=1), 250, 120.0, "SELL")
    journal.fills.record_fill("m1", msft, t, 10.5, 400.0, "SELL", commission=0.25)
    aapl, ms = journal.fills.positions()
    assert (aapl.symbol, aapl.quantity, aapl.avg_cost) == ("AAPL", -150, 120.0)
    assert aapl.realized_pnl == pytest.approx(1600.0)
    assert aapl.commission == 1.0 and aapl.fills == 3
    assert (ms.symbol, ms.quantity, ms.avg_cost, ms.commission) == ("MSFT", -10.5, 400.0, 0.25)
    assert ms.cost_basis == pytest.approx(-4200.0)
    assert [p.symbol for p in journal.fills.positions(strategy="momentum")] == ["AAPL", "MSFT"]
    assert journal.fills.positions(strategy="other") == []


def test_net_positions_rules():
    def f(side, qty, price, symbol="X", strategy="s"):
        return FillLike(strategy, symbol, side, qty, price, T0)

    # Short, add to the short, partly cover, cover past flat (flip long), close flat.
    fills = [
        f("SELL", 10, 50.0),
        f("SELL", 10, 40.0),  # short 20 @ 45
        f("BUY", 5, 30.0),  # realize 5 * (45 - 30) = 75, still short 15 @ 45
        f("BUY", 25, 35.0),  # realize 15 * (45 - 35) = 150, flip to long 10 @ 35
    ]
    (pos,) = net_positions(fills)
    assert (pos.quantity, pos.avg_cost, pos.realized_pnl) == (10, 35.0, 225.0)
    closed = [*fills, f("SELL", 10, 36.0)]  # realize 10 * (36 - 35) = 10
    assert net_positions(closed) == []
    (flat,) = net_positions(closed, include_flat=True)
    assert flat.flat and flat.avg_cost is None and flat.realized_pnl == 235.0
    # Strategies and symbols are kept apart; unattributed (None) sorts first.
    many = net_positions(
        [f("BUY", 1, 1.0, "B", "s2"), f("BUY", 1, 1.0, "A", "s1"), f("BUY", 1, 1.0, "A", None)]
    )
    assert [(p.strategy, p.symbol) for p in many] == [(None, "A"), ("s1", "A"), ("s2", "B")]
    # Fractional quantities close to flat within the tolerance.
    frac = net_positions([f("BUY", 0.1, 1.0), f("BUY", 0.2, 1.0), f("SELL", 0.3, 1.0)])
    assert frac == []
