"""The journal's writer thread: one thread, urgent lane first, main lane held by decisions."""

from __future__ import annotations

import asyncio
import threading
import time

from stratvector.gateway import journal_queue
from stratvector.gateway.journal_queue import JournalQueue


def test_urgent_jobs_overtake_the_queued_main_lane_and_lanes_stay_fifo():
    async def go():
        jq = JournalQueue(journal=None)  # the queue never touches the journal itself
        order: list[str] = []
        gate = threading.Event()
        busy = threading.Event()
        threads: set[str] = set()

        def job(name: str) -> str:
            threads.add(threading.current_thread().name)
            if name == "m0":
                busy.set()
                gate.wait(5)  # the writer is busy while the others queue up
            order.append(name)
            return name

        jq.submit(job, "m0")
        assert await asyncio.to_thread(busy.wait, 5)
        for i in (1, 2):
            jq.submit(job, f"m{i}")
        urgent = [asyncio.ensure_future(jq.call(job, f"u{i}", urgent=True)) for i in range(2)]
        await asyncio.sleep(0.05)
        gate.set()
        assert await asyncio.gather(*urgent) == ["u0", "u1"]
        await jq.drain()
        jq.close()
        return order, threads

    order, threads = asyncio.run(go())
    assert order == ["m0", "u0", "u1", "m1", "m2"]
    assert threads == {"sv-journal"}  # one writer: no write-lock contention in-process


def test_a_hold_pauses_the_main_lane_until_release_but_not_urgent_calls():
    async def go():
        jq = JournalQueue(journal=None)
        done: list[str] = []
        jq.hold()
        jq.submit(done.append, "fill")
        assert await jq.call(lambda: "intent", urgent=True) == "intent"
        await asyncio.sleep(0.05)
        assert done == []  # held
        jq.release()
        await jq.drain()
        jq.close()
        return done

    assert asyncio.run(go()) == ["fill"]


def test_a_hold_never_blocks_the_main_lane_longer_than_the_limit(monkeypatch):
    monkeypatch.setattr(journal_queue, "HOLD_LIMIT", 0.1)

    async def go():
        jq = JournalQueue(journal=None)
        jq.hold()  # a release that never comes (a bug elsewhere) must not stall the journal
        started = time.monotonic()
        await asyncio.wrap_future(jq.submit(lambda: None))
        waited = time.monotonic() - started
        jq.close()
        return waited

    assert 0.05 < asyncio.run(go()) < 2.0


def test_a_held_writer_is_woken_once_and_still_honours_the_limit(monkeypatch):
    monkeypatch.setattr(journal_queue, "HOLD_LIMIT", 0.1)

    async def go():
        jq = JournalQueue(journal=None)
        await asyncio.wrap_future(jq.submit(lambda: None))  # the writer is up and idle
        wakes = 0
        notify = jq._cv.notify

        def counted(n: int = 1) -> None:
            nonlocal wakes
            wakes += 1
            notify(n)

        monkeypatch.setattr(jq._cv, "notify", counted)
        jq.hold()
        started = time.monotonic()
        futs = [jq.submit(lambda: None) for _ in range(20)]  # a bar's statuses and fills
        held_wakes = wakes
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futs))
        waited = time.monotonic() - started
        jq.close()
        return held_wakes, waited

    held_wakes, waited = asyncio.run(go())
    # the decision the hold is for is not interrupted 20 times by the writer waking up
    assert held_wakes == 1
    assert 0.05 < waited < 2.0  # and the jobs still ran once the hold limit passed


def test_failures_of_fire_and_forget_writes_are_counted_and_calls_raise():
    async def go():
        jq = JournalQueue(journal=None)

        def boom() -> None:
            raise RuntimeError("disk full")

        jq.submit(boom)
        await jq.drain()
        try:
            await jq.call(boom, urgent=True)
        except RuntimeError as exc:
            raised = str(exc)
        jq.close()
        return jq.failures, jq.last_error, raised

    assert asyncio.run(go()) == (1, "disk full", "disk full")


def test_close_runs_what_was_queued_and_the_queue_can_start_again():
    jq = JournalQueue(journal=None)
    done: list[int] = []
    jq.hold()
    for i in range(5):
        jq.submit(done.append, i)
    jq.close()  # held jobs still run at close
    assert done == [0, 1, 2, 3, 4]
    jq.submit(done.append, 5).result(timeout=5)
    jq.close()
    assert done[-1] == 5


async def _occupy_writer(jq: JournalQueue) -> threading.Event:
    """Start a call that keeps the writer busy until the returned event is set."""
    gate, busy = threading.Event(), threading.Event()

    def slow() -> None:
        busy.set()
        gate.wait(5)

    jq.submit(slow)
    assert await asyncio.to_thread(busy.wait, 5)
    return gate


def test_inline_calls_run_on_the_caller_when_the_writer_is_idle_else_queue():
    async def go():
        jq = JournalQueue(journal=None)
        await asyncio.wrap_future(jq.submit(lambda: None))  # the writer is up and idle
        here = jq.begin(threading.current_thread, inline=True, urgent=True)
        assert here.done() and here.result() is threading.main_thread()

        failed = jq.begin(lambda: 1 / 0, inline=True, urgent=True)
        assert failed.done() and isinstance(failed.exception(), ZeroDivisionError)

        gate = await _occupy_writer(jq)
        # the writer is mid-call (holding the database): never two writers at once, so
        # the call goes to the urgent lane and runs on the writer after the current call
        queued = jq.begin(threading.current_thread, inline=True, urgent=True)
        assert not queued.done()
        gate.set()
        writer = await asyncio.wrap_future(queued)
        jq.close()
        return writer.name

    assert asyncio.run(go()) == "sv-journal"


def test_an_inline_call_behind_a_busy_writer_queues_after_the_urgent_calls_waiting():
    async def go():
        jq = JournalQueue(journal=None)
        order: list[str] = []
        gate = await _occupy_writer(jq)
        first = jq.begin(order.append, "urgent", urgent=True)
        # the writer is busy, so the urgent call waits; the inline one must queue behind it
        second = jq.begin(order.append, "inline", urgent=True, inline=True)
        gate.set()
        await asyncio.wrap_future(first)
        await asyncio.wrap_future(second)
        jq.close()
        return order

    assert asyncio.run(go()) == ["urgent", "inline"]


class _CheckpointJournal:
    """Counts checkpoints; one may be made to block until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.gate: threading.Event | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        return (0, 0, 0)


async def _until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.005)
    return True


def test_the_writer_checkpoints_between_decisions_at_most_every_interval():
    async def go():
        journal = _CheckpointJournal()
        jq = JournalQueue(journal, checkpoint_every=0.0)
        await asyncio.wrap_future(jq.submit(lambda: None))
        assert await _until(lambda: jq.checkpoints == 1)  # after a job, nothing on
        jq.hold()  # a decision is on: its bars arriving, its intents to commit
        await jq.call(lambda: None, urgent=True)
        await asyncio.sleep(0.05)
        assert journal.calls == 1  # not while a decision is on
        jq.release()
        await asyncio.wrap_future(jq.submit(lambda: None))
        assert await _until(lambda: jq.checkpoints == 2)
        jq.checkpoint_every = 3600.0
        await asyncio.wrap_future(jq.submit(lambda: None))
        await asyncio.sleep(0.05)
        assert journal.calls == 2  # not again within the interval
        jq.close()

    asyncio.run(go())


def test_without_an_interval_the_writer_never_checkpoints():
    async def go():
        journal = _CheckpointJournal()
        jq = JournalQueue(journal)
        for _ in range(3):
            await asyncio.wrap_future(jq.submit(lambda: None))
        jq.close()  # joins the writer: every check after a job has run
        return journal.calls

    assert asyncio.run(go()) == 0


def test_intents_commit_inline_while_the_writer_checkpoints():
    async def go():
        journal = _CheckpointJournal()
        journal.gate = threading.Event()
        jq = JournalQueue(journal, checkpoint_every=0.0)
        jq.submit(lambda: None)
        assert await asyncio.to_thread(journal.entered.wait, 5)  # checkpointing now
        here = jq.begin(threading.current_thread, inline=True, urgent=True)
        done = here.done() and here.result() is threading.main_thread()
        journal.gate.set()
        await jq.drain()
        jq.close()
        return done

    assert asyncio.run(go())
