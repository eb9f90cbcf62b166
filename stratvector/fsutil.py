"""Small filesystem helpers: atomic writes so a crash never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stratvector.errors import StratVectorError


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename.

    ``durable`` syncs the file to disk before the rename (a report, a run); a file that
    is rewritten many times a second (the trader's status) skips the sync: readers never
    see it half-written either way, and the sync would stall the caller."""
    path = Path(path)
    if not path.parent.exists():
        raise StratVectorError(f"{path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a report or payload is an ordinary file:
        # keep the mode of the file it replaces, else 0644
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
