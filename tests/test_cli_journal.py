"""positions / orders / halt / resume against a real SQLite journal file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from stratvector.cli import main
from stratvector.store import Journal


def test_journal_commands_round_trip(tmp_path, capsys):
    url = str(tmp_path / "journal.db")
    t = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
    with Journal(url) as j:
        j.orders.record_intent("sv1|m|AAPL|20240102T150000Z", "m", "AAPL", t, "BUY", 10, "MKT")
        j.orders.mark_submitted("sv1|m|AAPL|20240102T150000Z", 7, 1007)
        j.fills.record_fill(
            "e1",
            "sv1|m|AAPL|20240102T150000Z",
            t,
            10,
            100.0,
            "BOT",
            symbol="AAPL",
            strategy="m",
            commission=1.0,
        )

    assert main(["positions", "--journal", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["symbol"], r["quantity"], r["avg_cost"]) for r in rows] == [("AAPL", 10.0, 100.0)]
    assert main(["orders", "--journal", url]) == 0
    out = capsys.readouterr().out
    assert "AAPL" in out and "Filled" in out

    assert main(["halt", "--journal", url, "operator check"]) == 0
    assert "halted all trading (operator check)" in capsys.readouterr().out
    with Journal(url) as j:
        assert j.control.is_halted()
    assert main(["resume", "--journal", url]) == 0
    assert "resumed all trading" in capsys.readouterr().out
    with Journal(url) as j:
        assert not j.control.is_halted()


def test_unopenable_journal_is_one_line_exit_2(tmp_path, capsys):
    assert main(["positions", "--journal", str(tmp_path / "no" / "such" / "dir" / "j.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stratvector: error:") and err.count("\n") == 1
    assert not (tmp_path / "no").exists()
    assert main(["orders", "--journal", "postgresql+psycopg://u:secret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert "secret" not in err and err.count("\n") == 1
