"""``stratvector positions | orders | halt | resume``: the journal from the shell."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    def journal_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--journal",
            metavar="URL",
            default=None,
            help="journal URL or SQLite path (default: $STRATVECTOR_JOURNAL or the state folder)",
        )

    pos = sub.add_parser("positions", help="net positions from the journal's fills")
    journal_arg(pos)
    pos.add_argument("--strategy")
    pos.add_argument("--all", action="store_true", help="include flat positions")
    pos.add_argument("--json", action="store_true", help="print JSON rows")
    pos.set_defaults(func=cmd_positions)

    ords = sub.add_parser("orders", help="orders in the journal, newest first")
    journal_arg(ords)
    ords.add_argument("--open", action="store_true", help="only orders not known to be finished")
    ords.add_argument("--strategy")
    ords.add_argument("--symbol")
    ords.add_argument("--limit", type=int, default=50)
    ords.add_argument("--json", action="store_true", help="print JSON rows")
    ords.set_defaults(func=cmd_orders)

    h = sub.add_parser("halt", help="set the kill switch: the daemon sends no new orders")
    journal_arg(h)
    h.add_argument("reason", help="why (kept in the journal)")
    h.add_argument("--strategy", help="halt one strategy only")
    h.set_defaults(func=cmd_halt)

    r = sub.add_parser("resume", help="clear the kill switch")
    journal_arg(r)
    r.add_argument("--strategy", help="resume one strategy only")
    r.add_argument("--reason")
    r.set_defaults(func=cmd_resume)


def _journal(args: argparse.Namespace, migrate: bool = True):
    import os

    from stratvector.store import Journal

    url = args.journal or os.environ.get("STRATVECTOR_JOURNAL")
    return Journal(url, migrate=migrate)


def cmd_positions(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        rows = commands.positions_rows(journal, strategy=args.strategy, include_flat=args.all)
    _print_rows(rows, commands.POSITION_COLUMNS, args.json, "no positions")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        rows = commands.orders_rows(
            journal,
            open_only=args.open,
            strategy=args.strategy,
            symbol=args.symbol,
            limit=args.limit,
        )
    _print_rows(rows, commands.ORDER_COLUMNS, args.json, "no orders")
    return 0


def cmd_halt(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        print(commands.halt(journal, args.reason, strategy=args.strategy))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        print(commands.resume(journal, strategy=args.strategy, reason=args.reason))
    return 0


def _print_rows(
    rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool, empty: str
) -> None:
    from stratvector.store import commands

    if as_json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(commands.render_table(rows, columns))
    else:
        print(empty)
