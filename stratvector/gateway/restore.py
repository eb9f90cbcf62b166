"""The journal at start-up: checked before connecting, read back once it is open.

Two steps of :meth:`Trader.start <stratvector.gateway.trader.Trader.start>`, apart from
the wiring because each is about the journal's content, not the trader's:

- :func:`preflight_journal`, before anything connects: a journal URL that cannot work
  fails the start at once, with a message saying what to fix, instead of after the
  connection, the account check and contract qualification;
- :func:`load_journal`, on the first sync (the journal is opened only once the
  Gateway, account and contracts check out): a restart carries on where the last run
  stopped -- each strategy's ledger rebuilt from its journaled fills, the execIds
  already booked marked seen (a re-sent execution is not booked twice) and each
  strategy's last target per symbol restored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.order_book import EXIT_LEGS
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import Journal, parse_order_ref
from stratvector.store.engine import resolve_url
from stratvector.store.errors import JournalError


def preflight_journal(journal: Journal, url: str | None) -> None:
    """Refuse a journal URL that cannot work, before connecting (no I/O beyond a folder
    check): unparsable, unsupported backend (both raised by ``resolve_url``), or a SQLite
    file whose folder is missing. Nothing to check for a journal already open.

    Raises :class:`~stratvector.store.errors.JournalError`."""
    if journal.is_open:
        return
    resolved = resolve_url(url)
    if resolved.get_backend_name() == "sqlite" and resolved.database not in (None, "", ":memory:"):
        folder = Path(resolved.database).parent
        if not folder.is_dir():
            raise JournalError(
                f"cannot open journal {journal.url}: folder {folder} does not exist; "
                "create it or point [journal] url at an existing folder"
            )


async def load_journal(
    jq: JournalQueue, ledgers: Mapping[str, StrategyLedger], seen: set[str]
) -> None:
    """Rebuild each strategy's ledger and last targets from the journal (a restart) and
    add every journaled execId to ``seen`` (the receiver's booked execIds).

    The journal is read on its writer thread (after the writes queued before); the
    ledgers are filled here, on the event loop. Fills of strategies not in ``ledgers``
    only mark their execIds seen; a fill without an order ref, or of a protective leg,
    is booked in the exit phase. The last target of a symbol is its newest decision's
    or flatten's order."""
    journal = jq.journal

    def read() -> tuple[list[Any], list[Any]]:
        return journal.fills.list_fills(), journal.orders.list_orders(limit=None)

    fills, orders = await jq.call(read)
    for f in fills:
        seen.add(f.exec_id)  # booked before this run
        if f.strategy not in ledgers:
            continue
        parts = parse_order_ref(f.order_ref)
        exit_leg = f.order_ref is None or (parts is not None and parts.leg in EXIT_LEGS)
        ledgers[f.strategy].add_fill(
            f.exec_id,
            f.symbol,
            f.signed_quantity,
            f.price,
            f.commission,
            int(f.time.timestamp() * 1_000_000) * 1000,
            exit_leg=exit_leg,
        )
    latest: dict[tuple[str, str], Any] = {}
    for o in orders:  # newest first
        parts = parse_order_ref(o.order_ref)
        if parts is None or parts.leg not in (None, "flatten"):
            continue
        latest.setdefault((o.strategy, o.symbol), o)
    for (sid, sym), o in latest.items():
        if sid in ledgers and o.target is not None:
            ledgers[sid].restore_targets({sym: o.target})
