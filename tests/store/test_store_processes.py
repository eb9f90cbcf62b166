"""Durability and concurrency across processes: SIGKILL after an intent, parallel writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import stratvector
from stratvector.store import INTENT, Journal
from stratvector.store.migrate import head_revision

WORKER = Path(__file__).with_name("_journal_worker.py")
REPO = Path(stratvector.__file__).resolve().parents[1]


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _readline(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"worker printed nothing; stderr:\n{err}")
    return result[0].strip()


@pytest.mark.integration
def test_intent_survives_sigkill_right_after_record_intent(journal_url):
    with Journal(journal_url):
        pass  # migrate first, so the worker only writes the intent
    proc = _spawn(journal_url, "intent-then-hang", "crashy")
    ref = _readline(proc)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no close, no checkpoint
    proc.communicate(timeout=30)  # reap it and close its pipes
    assert proc.returncode == -signal.SIGKILL
    with Journal(journal_url) as journal:
        order = journal.orders.get(ref)
        assert order is not None and order.status == INTENT and order.quantity == 100
        assert [p.order_ref for p in journal.orders.pending_intents()] == [ref]


@pytest.mark.integration
@pytest.mark.slow
def test_two_writer_processes_and_a_reader(journal_url):
    count = 25
    with Journal(journal_url) as reader:
        workers = [_spawn(journal_url, "write-many", name, str(count)) for name in ("w1", "w2")]
        seen = 0
        deadline = time.monotonic() + 120
        while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
            seen = max(seen, len(reader.fills.list_fills()))  # reads while others write
            time.sleep(0.01)
        for w in workers:
            out, err = w.communicate(timeout=60)
            assert w.returncode == 0, err
            assert out.strip() == "done"
        fills = reader.fills.list_fills()
        assert len(fills) == 2 * count
        assert len({f.exec_id for f in fills}) == 2 * count
        assert reader.orders.pending_intents() == []  # every intent filled
        positions = {p.strategy: p.quantity for p in reader.fills.positions()}
        assert positions == {"w1": count, "w2": count}
        assert len(reader.events.list_events(kind="heartbeat", limit=None)) == 2 * count


@pytest.mark.integration
def test_concurrent_first_opens_migrate_once(journal_url):
    workers = [_spawn(journal_url, "open", f"o{i}") for i in range(4)]
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        assert out.strip() == head_revision()
