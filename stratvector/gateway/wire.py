"""A faster encoder for the messages ib_async sends, installed on the trader's client.

ib_async's ``Client.send`` turns a request's fields into TWS protocol text (each field
as text, each followed by a NUL). It builds its table of eight converters anew on every
call and looks each field's converter up in it; for a ``placeOrder`` (about 100 fields)
that is 20-25 us, most of the cost of sending an order, paid for each order of a batch
between the decision and the batch's last order.

:func:`encode` gives the same text with the conversions inline, taken by exact type in
the order of their frequency: text, whole numbers, floats, ``None``, booleans, contracts,
tag lists, anything else through ``str``. Exactly ib_async's rules:

- a ``Contract`` (or subclass) is its twelve identifying fields joined by NUL;
- a float is empty when it is ib_async's ``UNSET_DOUBLE`` (with ``makeEmpty``),
  ``Infinite`` when it is +inf, else ``str``; an int is empty when it is
  ``UNSET_INTEGER`` (with ``makeEmpty``), else ``str``;
- ``None`` is empty, a bool ``1`` or ``0``, a list of tag-values ``tag=value;`` each;
- any other type (numpy scalars, enums, subclasses of the built-ins) goes through ``str``,
  as ib_async's fallback does.

:func:`install` puts it on one ``Client`` instance (the trader's), not on the class, and
only after checking, on a sample that exercises every rule above, that it gives the
text ib_async's own ``send`` gives; if not (a later ib_async changed its wire format),
the client keeps ib_async's encoder and a warning says so. Throttling, the length
prefix and the socket write stay ib_async's (``Client.sendMsg``). A test compares both
encoders on the real request messages and on random fields.

:func:`one_write` sends the messages of a block (a decision's orders) in one socket
write at its end instead of one write each. Each write is a system call that hands the
data to the receiver (the Gateway, or ibsim in the benchmark) and wakes it; with one write
per order, some decisions had the trader off the CPU between its sends (placements of
~0.1 ms CPU took ~0.3 ms wall), most likely while the woken receiver ran on its core. The
messages are ib_async's own framed bytes, in order; only their grouping into writes
changes.

The block yields a :class:`Sent`: when its write handed the bytes over (``at``), and
how long the trader then waited inside that write for a CPU (``waited``). On loopback
the write delivers the bytes to the receiver's socket and wakes the receiver, which
Linux often runs on the writer's core at once: the writer gets its CPU back only when
the receiver yields it. In an instrumented benchmark run the nine slowest writes took
0.6-1.5 ms, all but ~0.05 ms of it waiting for the CPU, and returned after ibsim had
handled the batch's first order (0.2 ms after the write began) and its last (0.5-1.3
ms); a write that kept its CPU took 0.05 ms. That wait is the receiver's work, not the
orders': ``at`` counts the write's own CPU time, not the wait. Messages ib_async's
throttle holds back (more than 45 requests in a second) leave later than ``at``; the
benchmark's end-to-end times, taken by ibsim, would show such a delay.
"""

from __future__ import annotations

import logging
import math
import time
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ib_async
from ib_async import Client, Contract, Stock, TagValue
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

log = logging.getLogger("stratvector.gateway.wire")

_NONE = type(None)


def encode(fields: Iterable[Any], make_empty: bool = True) -> str:
    """The TWS protocol text of ``fields``: each field's text followed by a NUL."""
    parts: list[str] = []
    add = parts.append
    for f in fields:
        kind = type(f)
        if kind is str:
            add(f)
        elif kind is int:
            add("" if make_empty and f == UNSET_INTEGER else str(f))
        elif kind is float:
            add(
                ""
                if make_empty and f == UNSET_DOUBLE
                else ("Infinite" if f == math.inf else str(f))
            )
        elif kind is _NONE:
            add("")
        elif kind is bool:
            add("1" if f else "0")
        elif isinstance(f, Contract):
            add(_contract(f))
        elif kind is list:
            add("".join([f"{v.tag}={v.value};" for v in f]))
        else:
            add(str(f))
    parts.append("")
    return "\0".join(parts)


def _contract(c: Contract) -> str:
    return "\0".join(
        [
            str(f)
            for f in (
                c.conId,
                c.symbol,
                c.secType,
                c.lastTradeDateOrContractMonth,
                c.strike,
                c.right,
                c.multiplier,
                c.exchange,
                c.primaryExchange,
                c.currency,
                c.localSymbol,
                c.tradingClass,
            )
        ]
    )


def _send(self: Client, *fields: Any, makeEmpty: bool = True) -> None:
    """``Client.send`` with :func:`encode`."""
    if not self.isConnected():
        raise ConnectionError("Not connected")
    self.sendMsg(encode(fields, makeEmpty))


def sample_fields() -> list[tuple[Any, ...]]:
    """Field lists that exercise every encoding rule (the install-time check)."""
    contract = Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")
    contract.conId = 265598
    tags = [TagValue("a", "1"), TagValue("b", "x y")]
    return [
        (3, 17, contract, "", None, "BUY", 100.0, "MKT", UNSET_DOUBLE, UNSET_INTEGER, True),
        (False, 0, -1, 0.1, 1e-7, 1e21, math.inf, -math.inf, math.nan, 2**40, "a\tb"),
        (tags, [], 1.5, "sv1|s|AAPL|20200101T000000Z", Contract(), 7),
    ]


def install(client: Client) -> bool:
    """Use :func:`encode` for ``client``'s messages if it encodes :func:`sample_fields`
    exactly as ib_async's own ``send`` does; True if installed."""
    for fields in sample_fields():
        for make_empty in (True, False):
            if encode(fields, make_empty) != library_text(fields, make_empty):
                log.warning(
                    "ib_async %s encodes messages differently from this version's fast "
                    "encoder; keeping ib_async's own",
                    ib_async.__version__,
                )
                return False
    client.send = types.MethodType(_send, client)  # type: ignore[method-assign]
    return True


def library_text(fields: tuple[Any, ...], make_empty: bool = True) -> str:
    """The text ib_async's own ``Client.send`` gives for ``fields`` (its encoder run on a
    stand-in client that keeps the message instead of sending it)."""
    sent: list[str] = []
    stand_in = types.SimpleNamespace(isConnected=lambda: True, sendMsg=sent.append)
    Client.send(stand_in, *fields, makeEmpty=make_empty)  # type: ignore[arg-type]
    return sent[0]


@dataclass
class Sent:
    """A :func:`one_write` block's write, once made: ``at`` (``time.perf_counter``) is
    when it handed the bytes over, the write's start plus its own CPU time (the copy and,
    on loopback, the delivery to the receiver's socket), and ``waited`` the rest of the
    write, the seconds this thread then waited for a CPU. ``at`` stays None when the
    block wrote nothing (no message, no socket) or joined an outer block's write."""

    at: float | None = None
    waited: float = 0.0


@contextmanager
def one_write(client: Client) -> Iterator[Sent]:
    """Hold the messages ``client`` sends inside the block and write them to its socket
    in one write when the block ends, normally or not (what ib_async believes it sent
    is sent); the :class:`Sent` yielded says when. Re-entrant: an inner block adds to
    the outer one's write. Messages ib_async's throttle defers are sent by its timer
    after the block, in their order. With no socket at the end (a disconnect), nothing
    is written, as ib_async's own write would do. asyncio writes to the socket at once
    when it has room (a decision's orders are a few kB); what it cannot take it sends
    later from the event loop, after ``at``."""
    sent = Sent()
    conn = client.conn
    if "sendMsg" in vars(conn):  # inside an outer block already
        yield sent
        return
    held: list[bytes] = []
    conn.sendMsg = held.append
    try:
        yield sent
    finally:
        del conn.sendMsg
        if held and conn.transport is not None:
            data = b"".join(held)
            cpu = time.thread_time()
            start = time.perf_counter()
            type(conn).sendMsg(conn, data)
            wall = time.perf_counter() - start
            used = min(time.thread_time() - cpu, wall)
            sent.at, sent.waited = start + used, wall - used
            conn.numMsgSent += len(held) - 1  # ib_async counts messages, not writes
