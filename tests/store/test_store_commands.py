"""The functions behind `stratvector positions | orders | halt | resume`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from stratvector.store import commands, make_order_ref

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def test_positions_and_orders_rows(journal):
    ref = make_order_ref("momentum", "AAPL", T0)
    journal.orders.record_intent(ref, "momentum", "AAPL", T0, "BUY", 100)
    journal.orders.mark_submitted(ref, 7, 70)
    journal.fills.record_fill("e1", ref, T0, 100, 185.25, "BUY", commission=1.0)
    ref2 = make_order_ref("momentum", "MSFT", T0)
    journal.orders.record_intent(ref2, "momentum", "MSFT", T0, "SELL", 5, "LMT", limit_price=400)

    (pos,) = commands.positions_rows(journal)
    assert pos["symbol"] == "AAPL" and pos["quantity"] == 100 and pos["avg_cost"] == 185.25
    assert pos["last_fill_time"] == "2024-01-02T14:30:00+00:00"
    json.dumps(pos)  # JSON-friendly for --json

    rows = commands.orders_rows(journal)
    assert [r["symbol"] for r in rows] == ["MSFT", "AAPL"]
    assert [r["status"] for r in rows] == ["Intent", "Filled"]
    assert [r["symbol"] for r in commands.orders_rows(journal, open_only=True)] == ["MSFT"]
    json.dumps(rows)

    text = commands.render_table(rows, commands.ORDER_COLUMNS)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["created_at", "strategy", "symbol"]
    assert "LMT" in lines[2] and "400" in lines[2] and lines[2].count(" - ") >= 1
    assert commands.render_table([], empty="no positions") == "no positions"


def test_halt_resume_status_lines(journal):
    assert commands.halt_status(journal) == "trading enabled (no halt set)"
    line = commands.halt(journal, "manual stop", actor="ops")
    assert line.startswith("halted all trading (manual stop) by ops at ")
    commands.halt(journal, "drift", actor="ops", strategy="momentum")
    status = commands.halt_status(journal)
    assert status.startswith("halted - all trading: manual stop") and "momentum: drift" in status
    line = commands.resume(journal, actor="ops")
    assert line.startswith("resumed all trading by ops") and "still halted: momentum" in line
    assert "was not halted" in commands.resume(journal, actor="ops")
    commands.resume(journal, actor="ops", strategy="momentum")
    assert not journal.control.is_halted("momentum")
