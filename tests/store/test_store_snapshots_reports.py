"""Position/account snapshots, risk and drift reports, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stratvector.store import PositionLine, make_order_ref

T0 = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)


def test_position_snapshots(journal):
    first = journal.snapshots.record_position_snapshot(
        [
            {"symbol": "AAPL", "quantity": 100, "avg_cost": 185.1, "con_id": 265598},
            PositionLine(symbol="MSFT", quantity=-10.5, market_value=-4200.0),
        ],
        taken_at=T0,
        account="DU123",
    )
    assert [line.symbol for line in first.lines] == ["AAPL", "MSFT"]
    empty = journal.snapshots.record_position_snapshot([], taken_at=T0 + timedelta(hours=1))
    latest = journal.snapshots.latest_position_snapshot()
    assert latest.id == empty.id and latest.lines == ()  # flat is a snapshot too
    assert journal.snapshots.latest_position_snapshot(account="DU123").id == first.id
    assert [s.id for s in journal.snapshots.position_snapshots()] == [empty.id, first.id]
    assert journal.snapshots.latest_position_snapshot(source="journal") is None
    with pytest.raises(ValueError, match="unknown fields"):
        journal.snapshots.record_position_snapshot([{"symbol": "X", "qty": 1}])


def test_snapshot_of_journal_positions(journal):
    ref = make_order_ref("mom", "AAPL", T0)
    journal.orders.record_intent(ref, "mom", "AAPL", T0, "BUY", 10)
    journal.fills.record_fill("e1", ref, T0, 10, 100.0, "BUY")
    snap = journal.snapshots.snapshot_journal_positions(taken_at=T0)
    assert snap.source == "journal"
    assert [(x.strategy, x.symbol, x.quantity, x.avg_cost) for x in snap.lines] == [
        ("mom", "AAPL", 10, 100.0)
    ]


def test_account_snapshots(journal):
    for i, nlv in enumerate((100_000.0, 101_500.0, 99_250.5)):
        journal.snapshots.record_account_snapshot(
            "DU123",
            net_liquidation=nlv,
            total_cash=50_000.0,
            currency="USD",
            tags={"NetLiquidation": str(nlv), "Cushion": 0.9},
            taken_at=T0 + timedelta(days=i),
        )
    journal.snapshots.record_account_snapshot("DU999", net_liquidation=1.0, taken_at=T0)
    latest = journal.snapshots.latest_account_snapshot("DU123")
    assert latest.net_liquidation == 99_250.5 and latest.tags["Cushion"] == 0.9
    curve = journal.snapshots.account_history("DU123", since=T0 + timedelta(days=1))
    assert [a.net_liquidation for a in curve] == [101_500.0, 99_250.5]
    assert len(journal.snapshots.account_history()) == 4


def test_risk_reports(journal):
    var = journal.reports.record_risk_report(
        "monte_carlo",
        var=0.021,
        cvar=0.034,
        confidence=0.99,
        horizon_days=1,
        var_amount=2100.0,
        cvar_amount=3400.0,
        portfolio_value=100_000.0,
        details={"paths": 10_000, "seed": 7},
        as_of=T0,
    )
    stress = journal.reports.record_risk_report(
        "covid_2020", kind="stress", var=0.18, breached=True, as_of=T0 + timedelta(minutes=1)
    )
    assert [r.id for r in journal.reports.list_risk_reports()] == [stress.id, var.id]
    (only_var,) = journal.reports.list_risk_reports(kind="var")
    assert only_var.details == {"paths": 10_000, "seed": 7} and only_var.confidence == 0.99
    assert journal.reports.list_risk_reports(kind="stress")[0].breached
    with pytest.raises(ValueError, match="confidence"):
        journal.reports.record_risk_report("historical", confidence=99)
    with pytest.raises(ValueError, match="kind"):
        journal.reports.record_risk_report("historical", kind="other")


def test_drift_reports(journal):
    for i, score in enumerate((0.1, 0.85)):
        journal.reports.record_drift_report(
            "momentum",
            score,
            alert=score > 0.8,
            detectors={"ks_returns": {"p": 0.01}, "psi_signals": 0.3},
            window_start=T0 - timedelta(days=30),
            window_end=T0 + timedelta(hours=6 * i),
            as_of=T0 + timedelta(hours=6 * i),
        )
    journal.reports.record_drift_report("meanrev", 0.2, as_of=T0)
    latest = journal.reports.latest_drift_scores()
    assert {k: v.score for k, v in latest.items()} == {"momentum": 0.85, "meanrev": 0.2}
    assert latest["momentum"].alert and latest["momentum"].detectors["psi_signals"] == 0.3
    assert len(journal.reports.list_drift_reports(strategy="momentum")) == 2
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        journal.reports.record_drift_report("momentum", 1.5)


def test_events(journal):
    journal.events.record_event("connect", {"host": "127.0.0.1", "port": 4002}, at=T0)
    journal.events.record_event(
        "disconnect", message="IB Gateway restart", severity="warning", at=T0 + timedelta(minutes=1)
    )
    journal.events.record_event(
        "limit_breach",
        {"limit": "max_position", "value": 1.2},
        severity="error",
        strategy="momentum",
        symbol="AAPL",
        at=T0 + timedelta(minutes=2),
    )
    events = journal.events.list_events()
    assert [e.kind for e in events] == ["limit_breach", "disconnect", "connect"]
    assert events[0].detail == {"limit": "max_position", "value": 1.2}
    assert [e.kind for e in journal.events.list_events(severity="warning")] == ["disconnect"]
    assert [e.kind for e in journal.events.list_events(since=T0 + timedelta(minutes=1))] == [
        "limit_breach",
        "disconnect",
    ]
    with pytest.raises(ValueError, match="severity"):
        journal.events.record_event("connect", severity="fatal")
