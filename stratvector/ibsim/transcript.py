"""An optional JSON-lines log of every message in and out of the stand-in.

One line per message: ``{"t": wall-clock seconds, "conn": connection number,
"client": client id or null, "dir": "in" | "out", "fields": [...]}``; the handshake is
logged with ``"dir": "hs-in"`` / ``"hs-out"``. Lines are flushed as written so a crashed
run still leaves its transcript. Opened by :meth:`Transcript.open`, never by the
constructor.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from stratvector.ibsim.protocol import Field, format_field


class Transcript:
    """Writes transcript lines; a closed or never-opened transcript ignores writes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def open(self) -> None:
        if self.path is not None and self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8", buffering=1)

    def write(
        self, conn: int, client_id: int | None, direction: str, fields: list[Field] | list[str]
    ) -> None:
        if self._fh is None:
            return
        line = {
            "t": round(time.time(), 6),
            "conn": conn,
            "client": client_id,
            "dir": direction,
            "fields": [f if isinstance(f, str) else format_field(f) for f in fields],
        }
        self._fh.write(json.dumps(line) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
