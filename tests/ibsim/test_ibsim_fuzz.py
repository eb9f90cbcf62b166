"""Nothing a client sends can crash the server: fuzzed frames over a real socket.

The corpus is the real client messages of a short ib_async session (from the
transcript); each fuzzed frame mutates one of them (drops, duplicates, truncates or
replaces fields, changes the message id, or sends raw bytes). Frames stay length-prefixed,
so the stream stays in sync and the connection must survive every one of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct

from ib_async import LimitOrder, Stock

from stratvector.ibsim import Limits
from stratvector.ibsim.protocol import encode_raw_frame

from ._support import client, running, sync

TOKENS = [
    "",
    "-1",
    "0",
    "1",
    "2",
    "2147483647",
    "9" * 40,
    "1e309",
    "nan",
    "inf",
    "Infinite",
    "-0",
    "abc",
    "é",
    "\x01",
    "1.5",
    " 1",
    "BUY",
    "SELL",
    "MKT",
    "TRAIL",
    "STK",
    "SYN",
    "1 day",
    "1 D",
    "20240105 00:00:00 UTC",
    "20240105 00:00:00 Mars/Base",
    "100 Y",
    "99999999 S",
    "0 D",
    "1 month",
]


def frame(fields: list[str]) -> bytes:
    return encode_raw_frame("".join(f + "\0" for f in fields).encode("utf-8", "surrogatepass"))


def mutate(rng: random.Random, corpus: list[list[str]]) -> bytes:
    fields = list(rng.choice(corpus))
    kind = rng.randrange(9)
    if kind == 0 and fields:
        del fields[rng.randrange(len(fields))]
    elif kind == 1:
        fields = fields[: rng.randrange(len(fields) + 1)]
    elif kind == 2 and fields:
        for _ in range(rng.randint(1, 4)):
            fields[rng.randrange(len(fields))] = rng.choice(TOKENS)
    elif kind == 3:
        fields += [rng.choice(TOKENS) for _ in range(rng.randint(1, 30))]
    elif kind == 4 and fields:
        fields[0] = str(rng.randrange(-5, 130))
    elif kind == 5:
        return encode_raw_frame(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))))
    elif kind == 6:
        body = "".join(f + "\0" for f in fields).encode()
        return encode_raw_frame(body[:-1] if body else b"x")  # unterminated last field
    elif kind == 7:
        fields = [str(rng.randrange(0, 130))] + [
            rng.choice(TOKENS) for _ in range(rng.randrange(40))
        ]
    elif fields:
        i = rng.randrange(len(fields))
        fields.insert(i, fields[i])
    return frame(fields)


async def raw_session(
    port: int, client_id: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + encode_raw_frame(b"v157..178"))
    writer.write(frame(["71", "2", str(client_id), ""]))
    await writer.drain()
    return reader, writer


async def read_frames(reader: asyncio.StreamReader, out: list[list[str]]) -> None:
    try:
        while True:
            (n,) = struct.unpack(">I", await reader.readexactly(4))
            out.append((await reader.readexactly(n)).decode(errors="replace").split("\0")[:-1])
    except (asyncio.IncompleteReadError, ConnectionError):
        return


async def test_fuzzed_frames_do_not_crash_the_server(syn_dir, tmp_path, caplog):
    transcript = tmp_path / "corpus.jsonl"
    limits = Limits(max_messages_per_second=1_000_000)
    async with running(syn_dir, start=1, transcript=transcript, limits=limits) as sim:
        async with client(sim, 1) as ib:
            [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
            t = ib.placeOrder(c, LimitOrder("BUY", 10, 90.0))
            await sync(ib)
            ib.cancelOrder(t.order)
            await ib.reqHistoricalDataAsync(c, "", "5 D", "1 day", "TRADES", True)
            await ib.reqTickersAsync(c)
            ib.reqRealTimeBars(c, 5, "TRADES", False)
            ib.reqMktData(c)
            await ib.reqExecutionsAsync()
            await ib.reqHeadTimeStampAsync(c, "TRADES", True, 1)
            await sync(ib)
        corpus = [
            x["fields"]
            for x in map(json.loads, transcript.read_text().splitlines())
            if x["dir"] == "in"
        ]
        assert len({f[0] for f in corpus}) >= 12
        rng = random.Random(20240105)
        reader, writer = await raw_session(sim.port, client_id=9)
        received: list[list[str]] = []
        drain = asyncio.create_task(read_frames(reader, received))
        caplog.set_level(logging.WARNING, logger="stratvector.ibsim")
        for i in range(2000):
            writer.write(mutate(rng, corpus))
            if i % 100 == 0:
                await writer.drain()
                await asyncio.sleep(0)
        # still alive: this very connection answers a current-time request
        writer.write(frame(["49", "1"]))
        await writer.drain()
        for _ in range(400):
            if any(f and f[0] == "49" for f in received):
                break
            await asyncio.sleep(0.01)
        assert any(f and f[0] == "49" for f in received), "the fuzzed connection stopped answering"
        codes = {
            int(f[3])
            for f in received
            if f and f[0] == "4" and len(f) > 3 and f[3].lstrip("-").isdigit()
        }
        assert {320, 321} <= codes  # malformed and unsupported messages were answered
        bugs = [
            r
            for r in caplog.records
            if r.name.startswith("stratvector.ibsim") and r.levelno >= logging.ERROR
        ]
        assert not bugs, f"handler raised unexpectedly: {bugs[0].getMessage()}"
        writer.close()
        drain.cancel()
        # and the server still serves a real client end to end
        async with client(sim, 2) as ib:
            [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
            await sync(ib)
            assert await sim.advance(1) == 1
            bars = await ib.reqHistoricalDataAsync(c, "", "3 D", "1 day", "TRADES", True)
            assert len(bars) > 0


async def _closed_by_server(port: int, payload: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 3.0)
            if not chunk:
                return True
    except ConnectionError:
        return True
    finally:
        writer.close()


async def test_bad_handshakes_and_oversized_frames_close_only_that_connection(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim, 1) as ib:
        port = sim.port
        assert await _closed_by_server(port, b"GET / HTTP/1.1\r\n\r\n")
        assert await _closed_by_server(port, b"API\0" + encode_raw_frame(b"vabc"))
        assert await _closed_by_server(port, b"API\0" + encode_raw_frame(b"v100..120"))
        assert await _closed_by_server(port, b"API\0" + struct.pack(">I", 1 << 30))
        big = b"API\0" + encode_raw_frame(b"v157..178") + frame(["71", "2", "3", ""])
        assert await _closed_by_server(port, big + struct.pack(">I", 1 << 30) + b"xx")
        await sync(ib)  # the established client never noticed
        assert ib.isConnected()


async def test_request_rate_limit_answers_error_100(syn_dir):
    limits = Limits(max_messages_per_second=20)
    async with running(syn_dir, start=1, limits=limits) as sim:
        reader, writer = await raw_session(sim.port, client_id=4)
        received: list[list[str]] = []
        drain = asyncio.create_task(read_frames(reader, received))
        for _ in range(40):
            writer.write(frame(["49", "1"]))
        await writer.drain()
        await asyncio.sleep(0.2)
        times = sum(1 for f in received if f and f[0] == "49")
        errors = sum(1 for f in received if f and f[0] == "4" and f[3] == "100")
        assert times + errors == 40 and 10 <= times <= 20
        writer.close()
        drain.cancel()


async def test_requests_before_start_api_and_unknown_ids_get_errors(syn_dir):
    async with running(syn_dir, start=1) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(b"API\0" + encode_raw_frame(b"v157..178"))
        writer.write(frame(["49", "1"]))  # before startApi
        writer.write(frame(["71", "2", "6", ""]))
        writer.write(frame(["123", "1"]))  # unknown id
        await writer.drain()
        received: list[list[str]] = []
        drain = asyncio.create_task(read_frames(reader, received))
        await asyncio.sleep(0.2)
        errs = [(f[2], f[3]) for f in received if f and f[0] == "4"]
        assert ("-1", "321") in errs
        assert sum(1 for e in errs if e[1] == "321") == 2
        assert any(f[0] == "9" for f in received) and any(f[0] == "15" for f in received)
        writer.close()
        drain.cancel()
