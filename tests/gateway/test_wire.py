"""The fast message encoder (:mod:`stratvector.gateway.wire`) writes exactly the text
ib_async's own ``Client.send`` writes: on the requests the trader sends, on random
fields of every kind, and it refuses to install when the two disagree."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import logging
import math
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import (
    IB,
    Client,
    Contract,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopOrder,
    TagValue,
)
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from stratvector.gateway import wire


class _Kind(enum.IntEnum):
    ONE = 1


def _recording_client() -> tuple[Client, list[tuple[tuple[Any, ...], bool]]]:
    """A client that records the fields of every request instead of sending them."""
    client = IB().client
    client.connState = Client.CONNECTED
    client._serverVersion = 178  # what ibsim and a current Gateway announce
    calls: list[tuple[tuple[Any, ...], bool]] = []

    def record(*fields: Any, makeEmpty: bool = True) -> None:
        calls.append((fields, makeEmpty))

    client.send = record  # type: ignore[method-assign]
    return client, calls


def _requests() -> list[tuple[tuple[Any, ...], bool]]:
    client, calls = _recording_client()
    aapl = Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")
    aapl.conId = 265598
    ref = "sv1|sma|AAPL|20240102T000000Z"
    orders: list[Order] = [
        MarketOrder("BUY", 100, orderRef=ref, account="DU123", tif="DAY"),
        LimitOrder("SELL", 37, 185.25, orderRef=ref + "|take_profit", parentId=11, transmit=False),
        StopOrder("SELL", 37, 170.5, orderRef=ref + "|stop_loss", parentId=11, tif="GTC"),
        Order(action="SELL", totalQuantity=5, orderType="TRAIL", trailingPercent=4.0),
        Order(
            action="BUY",
            totalQuantity=1,
            orderType="LMT",
            lmtPrice=1.0,
            algoStrategy="Adaptive",
            algoParams=[TagValue("adaptivePriority", "Normal")],
            smartComboRoutingParams=[],
        ),
    ]
    for i, order in enumerate(orders):
        client.placeOrder(11 + i, aapl, order)
    client.cancelOrder(12)
    client.reqExecutions(3, ExecutionFilter(clientId=7, time="20240102 00:00:00 UTC"))
    client.reqContractDetails(4, Stock("MSFT", "SMART", "USD"))
    client.reqHistoricalData(5, aapl, "", "2 D", "1 day", "TRADES", 1, 2, True, [])
    client.reqPositions()
    client.reqAccountUpdates(True, "DU123")
    client.reqMarketRule(26)
    client.connState = Client.DISCONNECTED  # nothing to disconnect when it is collected
    return calls


@pytest.mark.parametrize("index", range(len(_requests())))
def test_the_trader_requests_encode_as_ib_async_encodes_them(index: int) -> None:
    fields, make_empty = _requests()[index]
    assert wire.encode(fields, make_empty) == wire.library_text(fields, make_empty)


_field = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([UNSET_INTEGER, UNSET_DOUBLE, math.inf, -math.inf, math.nan, -0.0, 0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.builds(np.float64, st.floats(allow_nan=False, width=32)),
    st.builds(np.int64, st.integers(min_value=-(2**62), max_value=2**62)),
    st.just(_Kind.ONE),
    st.builds(decimal.Decimal, st.integers(min_value=-999, max_value=999)),
    st.just(dt.date(2024, 1, 2)),
    st.builds(Stock, st.sampled_from(["AAPL", "BRK B", ""]), st.just("SMART"), st.just("USD")),
    st.just(Contract(conId=8314, strike=1.5)),
    st.lists(
        st.builds(TagValue, st.text(max_size=4), st.text(max_size=4)),
        max_size=3,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_field, max_size=12), st.booleans())
def test_random_fields_encode_as_ib_async_encodes_them(fields: list[Any], make_empty: bool) -> None:
    assert wire.encode(fields, make_empty) == wire.library_text(tuple(fields), make_empty)


def test_install_puts_the_encoder_on_one_client_only() -> None:
    client, other = IB().client, IB().client
    assert wire.install(client)
    assert client.send.__func__ is wire._send  # type: ignore[attr-defined]
    assert other.send.__func__ is Client.send  # type: ignore[attr-defined]
    sent: list[str] = []
    client.connState = Client.CONNECTED
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.send(3, 1.5, None, UNSET_DOUBLE, makeEmpty=False)
    assert sent == [f"3\x001.5\x00\x00{UNSET_DOUBLE}\x00"]
    client.connState = Client.DISCONNECTED
    with pytest.raises(ConnectionError, match="Not connected"):
        client.send(1)


def test_a_library_that_encodes_differently_keeps_its_own_encoder(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = wire.library_text
    monkeypatch.setattr(
        wire, "library_text", lambda fields, make_empty=True: real(fields, make_empty) + "x"
    )
    client = IB().client
    with caplog.at_level(logging.WARNING, logger="stratvector.gateway.wire"):
        assert not wire.install(client)
    assert client.send.__func__ is Client.send  # type: ignore[attr-defined]
    assert "keeping ib_async's own" in caplog.text


class _Transport:
    """Records the socket writes of a connection; ``during`` runs inside each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.during: Callable[[], None] = lambda: None

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.during()


@pytest.fixture
def connected() -> Iterator[Callable[[], tuple[Client, _Transport]]]:
    """Makes clients that look connected and write to a recording transport; they are
    marked disconnected again at the end (so ib_async's ``IB.__del__`` finds nothing to
    close)."""
    made: list[tuple[IB, Client]] = []

    def make() -> tuple[Client, _Transport]:
        ib = IB()
        client = ib.client
        client.connState = Client.CONNECTED
        client.MaxRequests = 0  # no throttle: every message goes to the connection at once
        transport = _Transport()
        client.conn.transport = transport
        made.append((ib, client))
        return client, transport

    yield make
    for _, client in made:
        client.connState = Client.DISCONNECTED
        client.conn.transport = None


def _requests_sent(client: Client) -> None:
    for k in range(4):
        client.send(3, k, f"sv1|s|S{k}|20240102T000000Z", 1.5 * k, None)


def test_one_write_sends_the_block_as_one_write_of_the_same_bytes(connected) -> None:
    separate, each = connected()
    _requests_sent(separate)
    assert len(each.writes) == 4

    client, one = connected()
    with wire.one_write(client):
        _requests_sent(client)
        with wire.one_write(client):  # an inner block joins the outer write
            client.send(4, "inner")
        assert one.writes == []  # nothing leaves before the block ends
    separate.send(4, "inner")
    assert one.writes == [b"".join(each.writes)]
    assert (client.conn.numMsgSent, client.conn.numBytesSent) == (
        separate.conn.numMsgSent,
        separate.conn.numBytesSent,
    )
    assert "sendMsg" not in vars(client.conn)  # the connection's own write is back
    client.send(5)
    assert len(one.writes) == 2


def test_one_write_sends_what_was_placed_before_an_error_and_nothing_when_gone(
    connected,
) -> None:
    client, transport = connected()
    with pytest.raises(RuntimeError), wire.one_write(client):
        client.send(1, "placed")
        raise RuntimeError("a later order failed")
    assert transport.writes == [struct.pack(">I", len(b"1\x00placed\x00")) + b"1\x00placed\x00"]
    with wire.one_write(client):
        client.send(2, "lost")
        client.conn.transport = None  # the socket closed meanwhile
    assert len(transport.writes) == 1 and client.conn.numMsgSent == 1


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_write_is_sent_after_its_own_work_not_after_a_wait_for_the_cpu(connected) -> None:
    # a receiver woken by the write and run on the writer's core takes the CPU until
    # it yields: the writer waits inside its write, off the CPU, as in a sleep here
    client, transport = connected()
    transport.during = lambda: time.sleep(0.2)
    before = time.perf_counter()
    with wire.one_write(client) as sent:
        client.send(1, "order")
    after = time.perf_counter()
    assert len(transport.writes) == 1 and sent.at is not None
    assert before <= sent.at < before + 0.1 and sent.waited >= 0.15
    assert after - before >= 0.2  # the block did last the whole write

    transport.during = lambda: _busy(0.1)  # the write's own work counts
    before = time.perf_counter()
    with wire.one_write(client) as sent:
        client.send(2, "order")
    assert sent.at is not None and before + 0.1 <= sent.at <= time.perf_counter()


def test_a_block_that_wrote_nothing_has_no_send_time(connected) -> None:
    client, transport = connected()
    with wire.one_write(client) as sent:
        pass  # nothing to send
    assert sent.at is None
    with wire.one_write(client) as outer, wire.one_write(client) as inner:
        client.send(1, "order")
    assert inner.at is None and outer.at is not None  # the outer block made the write
    with wire.one_write(client) as sent:
        client.send(2, "lost")
        client.conn.transport = None  # the socket closed meanwhile
    assert sent.at is None and len(transport.writes) == 1
