"""The TWS API text wire format: framing, the handshake, and field encoding/decoding.

A frame is a 4-byte big-endian length and a body of text fields, each ended by ``\\0``.
The client opens with the bytes ``API\\0`` and one frame holding ``v<min>..<max>`` (plus
optional connect options); the server answers with a frame of exactly two fields,
``<version>\\0<connection time>\\0``.

Encoding rules (what ib_async's decoder expects): booleans are ``0``/``1``, integers never
look like ``100.0``, ``None`` and IB's "unset" sentinels are the empty string, floats are
written so that ``float(text)`` gives back the same value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence

UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = 1.7976931348623157e308
#: How TWS writes the unset double when it sends it literally (commission reports).
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"

HANDSHAKE_PREFIX = b"API\0"
_LEN = struct.Struct(">I")

Field = str | int | float | bool | None
#: One message as the builders make it: its fields in order, the message id first.
Msg = list[Field]


class ProtocolError(Exception):
    """A client message is malformed; the text says which field and why."""


def format_field(value: Field) -> str:
    """One field as TWS writes it (see module docstring)."""
    if value is None:
        return ""
    item = getattr(value, "item", None)  # numpy scalars -> Python scalars
    if item is not None and not isinstance(value, str):
        value = item()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return "" if value == UNSET_INTEGER else str(value)
    if isinstance(value, float):
        if math.isnan(value) or value == UNSET_DOUBLE:
            return ""
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return float.__repr__(value)
    return str(value)


def encode_frame(fields: Sequence[Field]) -> bytes:
    """A complete frame (length prefix included) holding ``fields``."""
    body = "".join(format_field(f) + "\0" for f in fields).encode("utf-8")
    return _LEN.pack(len(body)) + body


def encode_raw_frame(body: bytes) -> bytes:
    """Length-prefix an already encoded body (used by the handshake and tests)."""
    return _LEN.pack(len(body)) + body


def frame_length(prefix: bytes) -> int:
    """The body length announced by a 4-byte prefix."""
    return int(_LEN.unpack(prefix)[0])


def split_fields(body: bytes) -> list[str]:
    """The text fields of a frame body.

    Raises :class:`ProtocolError` when the body is empty or its last field is not
    terminated, which is how a truncated or corrupted frame shows.
    """
    if not body:
        raise ProtocolError("empty message")
    if not body.endswith(b"\0"):
        raise ProtocolError("message does not end with a field terminator")
    text = body.decode("utf-8", errors="replace")
    return text.split("\0")[:-1]


def parse_version_range(body: bytes) -> tuple[int, int, str]:
    """Parse the client's ``v<min>..<max>[ options]`` handshake body."""
    text = body.decode("ascii", errors="replace").strip("\0")
    if not text.startswith("v"):
        raise ProtocolError(f"handshake {text[:40]!r} does not start with 'v'")
    head, _, options = text[1:].partition(" ")
    lo, sep, hi = head.partition("..")
    try:
        vmin = int(lo)
        vmax = int(hi) if sep else vmin
    except ValueError as exc:
        raise ProtocolError(f"handshake version range {head[:40]!r} is not numeric") from exc
    if vmin > vmax:
        raise ProtocolError(f"handshake version range {vmin}..{vmax} is empty")
    return vmin, vmax, options


class FieldReader:
    """Sequential, typed access to the fields of one incoming message.

    Every accessor raises :class:`ProtocolError` naming the message id and field position
    when the field is missing or does not parse, so a handler never sees a half-read
    message.
    """

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = list(fields)
        self.pos = 0

    @property
    def msg_id(self) -> str:
        return self.fields[0] if self.fields else "?"

    def remaining(self) -> int:
        return len(self.fields) - self.pos

    def _next(self, what: str) -> str:
        if self.pos >= len(self.fields):
            raise ProtocolError(
                f"message {self.msg_id}: missing field {self.pos} ({what}); "
                f"got {len(self.fields)} fields"
            )
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def str(self, what: str = "text") -> str:
        return self._next(what)

    def int(self, what: str = "integer", default: int = 0) -> int:
        raw = self._next(what)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise ProtocolError(
                f"message {self.msg_id}: field {self.pos - 1} ({what}) {raw[:30]!r} "
                "is not an integer"
            ) from exc

    def float(self, what: str = "number", default: float | None = None) -> float | None:
        """A float, or ``default`` for an empty field (IB's "unset")."""
        raw = self._next(what)
        if raw == "":
            return default
        if raw in ("Infinite", "Infinity"):
            return math.inf
        try:
            value = float(raw)
        except ValueError as exc:
            raise ProtocolError(
                f"message {self.msg_id}: field {self.pos - 1} ({what}) {raw[:30]!r} is not a number"
            ) from exc
        if math.isnan(value):
            raise ProtocolError(f"message {self.msg_id}: field {self.pos - 1} ({what}) is NaN")
        return None if value == UNSET_DOUBLE else value

    def bool(self, what: str = "flag") -> bool:
        raw = self._next(what)
        if raw in ("", "0", "false", "False"):
            return False
        if raw in ("1", "true", "True"):
            return True
        try:
            return int(raw) != 0
        except ValueError as exc:
            raise ProtocolError(
                f"message {self.msg_id}: field {self.pos - 1} ({what}) {raw[:30]!r} is not a flag"
            ) from exc

    def skip(self, n: int, what: str = "unused") -> None:
        for _ in range(n):
            self._next(what)


def join_accounts(accounts: Iterable[str]) -> str:
    """The managedAccounts list as TWS writes it (comma separated)."""
    return ",".join(accounts)
