"""A separate process that writes to a journal (used by test_store_processes.py).

usage: python _journal_worker.py URL MODE NAME [COUNT]

- ``open``: open (and migrate) the journal, print the schema revision.
- ``intent-then-hang``: record one intent, print its ref, then sleep (to be SIGKILLed).
- ``write-many``: record COUNT intents, submissions, statuses and fills; print "done".
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from stratvector.store import make_order_ref, open_journal

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def main() -> None:
    url, mode, name = sys.argv[1:4]
    journal = open_journal(url)
    if mode == "open":
        print(journal.schema_revision(), flush=True)
        journal.close()
    elif mode == "intent-then-hang":
        ref = make_order_ref(name, "AAPL", T0)
        journal.orders.record_intent(ref, name, "AAPL", T0, "BUY", 100)
        print(ref, flush=True)
        time.sleep(120)
    elif mode == "write-many":
        count = int(sys.argv[4])
        base = abs(hash(name)) % 1_000_000 * 1000
        for i in range(count):
            bar = T0 + timedelta(minutes=i)
            ref = make_order_ref(name, "AAPL", bar)
            journal.orders.record_intent(ref, name, "AAPL", bar, "BUY", 1)
            journal.orders.mark_submitted(ref, base + i, base + i)
            journal.orders.record_status(ref, "Submitted", 0, 1)
            journal.fills.record_fill(f"{name}-{i}", ref, bar, 1, 10.0 + i, "BUY")
            journal.events.record_event("heartbeat", {"i": i}, strategy=name)
        journal.close()
        print("done", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
