"""Handing a long-running process's idle resident pages back to the OS.

The trading process maps about 150 MB of shared libraries (LLVM for numba, Arrow for
pandas, ...) and touches most of those pages once -- library initializers, imports,
numba's first kernel, plus the kernel's fault-around, which maps 64 KB around every
touched page -- and never again: after warmup it runs the same few code paths bar after
bar. ``benchmarks/bench_gateway.py`` measures ~135 MB of such pages in a trader of
~320 MB; ~15 MB of them come back in steady trading.

:func:`release_file_pages` unmaps those pages from the process (``MADV_DONTNEED`` on
the read-only, unmodified mappings of shared libraries and of the Python executable).
Nothing the process can observe changes: the pages are clean copies of the files, the
kernel may drop them by itself under memory pressure at any time, and the next access
maps them again from the page cache (a minor fault, a microsecond or so). The page
cache keeps them: the saving is in the process's resident size (what
``process_resident_memory_bytes`` reports and alerts on), not in the machine's memory,
and a cgroup that charges page cache to the container is not relieved either.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys

__all__ = ["release_file_pages"]

_MADV_DONTNEED = 4  # <sys/mman.h> on Linux, every architecture

_HEADER = re.compile(
    r"^(?P<start>[0-9a-f]+)-(?P<end>[0-9a-f]+) (?P<perms>\S{4}) \S+ \S+ (?P<inode>\d+)\s*"
    r"(?P<path>.*)$"
)
_FIELD = re.compile(r"^(\w+):\s+(\d+) kB$")
_SHARED_OBJECT = re.compile(r"\.so(\.[\w.]+)?$")


def release_file_pages(smaps: str = "/proc/self/smaps") -> int:
    """Drop this process's resident pages of shared-library code and constants; returns
    the kB dropped (0 where this is not Linux or ``smaps`` cannot be read).

    Only private, non-writable mappings of shared objects (``*.so*``) and of the Python
    executable that hold no modified (copy-on-write) page are touched, so what is dropped
    is always identical to the file and comes back on access. Relocated data (RELRO),
    writable data, anonymous memory, shared mappings and other mapped files are left
    alone; libraries are never unmapped by CPython, so an address range read from
    ``smaps`` still holds the same library when it is dropped. Cost: one read of
    ``smaps`` and one ``madvise`` per mapping (~20 ms for the trader's ~1,500 mappings).
    """
    if not sys.platform.startswith("linux"):
        return 0
    try:
        with open(smaps, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return 0
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    dropped = 0
    for start, end, rss in _droppable(text, os.path.realpath(sys.executable)):
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            dropped += rss
    return dropped


def _droppable(text: str, executable: str = "") -> list[tuple[int, int, int]]:
    """``(start, end, rss_kb)`` of the mappings in an smaps text that are safe to drop."""
    out: list[tuple[int, int, int]] = []
    head: re.Match[str] | None = None
    fields: dict[str, int] = {}

    def keep() -> None:
        if head is None:
            return
        path = head["path"].strip()
        if (
            head["perms"] in ("r-xp", "r--p")
            and head["inode"] != "0"
            and path.startswith("/")
            and (_SHARED_OBJECT.search(path) is not None or path == executable)
            and fields.get("Anonymous") == 0
            and fields.get("Locked", 0) == 0
            and fields.get("KernelPageSize") == 4
            and fields.get("Rss", 0) > 0
        ):
            out.append((int(head["start"], 16), int(head["end"], 16), fields["Rss"]))

    for line in text.splitlines():
        if m := _HEADER.match(line):
            keep()
            head, fields = m, {}
        elif f := _FIELD.match(line):
            fields[f[1]] = int(f[2])
    keep()
    return out
