"""Driving a running stand-in from outside: a small line-based control port and signals.

Control port (loopback only): one command per line, one JSON line back, e.g.::

    status | step [n] | time SECONDS | drop | restart [seconds] | lost | restored [lost|kept]
    reject [reason...] | jitter MAX [MIN] | replay SPEED | pause
    revise SYMBOL field=value... (e.g. ``revise AAPL close=101.5``)

Signals (POSIX): SIGUSR1 drops every connection, SIGUSR2 toggles connectivity
(1100, then 1102), SIGHUP simulates a Gateway restart.

Each control connection is bounded: a line of at most 1 KiB, 10 seconds per command, and
at most 16 commands per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stratvector.ibsim.server import IBSim

log = logging.getLogger("stratvector.ibsim.control")

COMMANDS = (
    "status",
    "step",
    "time",
    "revise",
    "drop",
    "restart",
    "lost",
    "restored",
    "reject",
    "jitter",
    "replay",
    "pause",
)


async def execute(sim: IBSim, line: str, restart_downtime: float = 5.0) -> dict[str, object]:
    """Run one control command; returns ``{"ok": True, ...}`` or ``{"ok": False, "error"}``."""
    words = line.strip().split()
    if not words:
        return {"ok": False, "error": f"empty command; use one of {', '.join(COMMANDS)}"}
    cmd, args = words[0].lower(), words[1:]
    try:
        if cmd == "status":
            return {"ok": True, **sim.status()}
        if cmd == "step":
            n = int(args[0]) if args else 1
            return {"ok": True, "closed": await sim.advance(min(max(n, 0), 100_000))}
        if cmd == "time":
            return {"ok": True, "closed": await sim.advance_time(min(float(args[0]), 1e9))}
        if cmd == "revise":
            changes = dict(a.split("=", 1) for a in args[1:])
            n = sim.revise_last_bar(args[0], **{k: float(v) for k, v in changes.items()})
            return {"ok": True, "subscriptions": n}
        if cmd == "drop":
            return {"ok": True, "dropped": sim.drop_connections()}
        if cmd == "restart":
            seconds = float(args[0]) if args else restart_downtime
            sim.begin_restart(seconds)
            return {"ok": True, "downtime": seconds}
        if cmd == "lost":
            sim.connectivity_lost()
            return {"ok": True}
        if cmd == "restored":
            sim.connectivity_restored(data_lost=bool(args) and args[0].lower() == "lost")
            return {"ok": True}
        if cmd == "reject":
            sim.reject_next_order(" ".join(args) or "ibsim: rejected by request")
            return {"ok": True}
        if cmd == "jitter":
            hi = float(args[0])
            lo = float(args[1]) if len(args) > 1 else 0.0
            sim.set_jitter(hi, lo)
            return {"ok": True, "jitter": [lo, hi]}
        if cmd == "replay":
            sim.start_replay(float(args[0]))
            return {"ok": True}
        if cmd == "pause":
            sim.stop_replay()
            return {"ok": True}
    except (ValueError, IndexError) as exc:
        return {"ok": False, "error": f"{cmd}: bad argument ({exc})"}
    return {"ok": False, "error": f"unknown command {cmd!r}; use one of {', '.join(COMMANDS)}"}


class ControlServer:
    """The control port; ``start`` listens, ``stop`` closes. Constructor does no I/O."""

    def __init__(self, sim: IBSim, host: str, port: int, restart_downtime: float = 5.0):
        self.sim = sim
        self.host = host
        self.port = port
        self.restart_downtime = restart_downtime
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(16):
                line = await asyncio.wait_for(reader.readline(), 10.0)
                if not line:
                    break
                if len(line) > 1024:
                    reply: dict[str, object] = {"ok": False, "error": "command too long"}
                else:
                    reply = await asyncio.wait_for(
                        execute(self.sim, line.decode("utf-8", "replace"), self.restart_downtime),
                        10.0,
                    )
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("ibsim control: error")
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def send_command(host: str, port: int, command: str, timeout: float = 10.0) -> dict:
    """Send one control command to a running stand-in and return its JSON reply."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(command.strip().encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        return json.loads(line or b'{"ok": false, "error": "no reply"}')
    finally:
        writer.close()


def install_signal_handlers(sim: IBSim, restart_downtime: float = 5.0) -> list[int]:
    """Bind SIGUSR1/SIGUSR2/SIGHUP to faults (POSIX only); returns the signals bound."""
    loop = asyncio.get_running_loop()
    bound: list[int] = []

    def toggle_connectivity() -> None:
        if sim.ctx.faults.connectivity_lost:
            sim.connectivity_restored(data_lost=False)
        else:
            sim.connectivity_lost()

    actions = {
        "SIGUSR1": sim.drop_connections,
        "SIGUSR2": toggle_connectivity,
        "SIGHUP": lambda: sim.begin_restart(restart_downtime),
    }
    for name, action in actions.items():
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, action)
            bound.append(int(sig))
    return bound
