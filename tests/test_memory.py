"""stratvector.memory: dropping clean file-backed pages from the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from stratvector.memory import _droppable, release_file_pages


def _vma(head: str, rss: int, anonymous: int = 0, locked: int = 0, page: int = 4) -> str:
    return textwrap.dedent(
        f"""\
        {head}
        Size:               1024 kB
        KernelPageSize:     {page} kB
        MMUPageSize:        4 kB
        Rss:                {rss} kB
        Pss:                {rss} kB
        Anonymous:          {anonymous} kB
        Locked:             {locked} kB
        VmFlags: rd ex mr mw me
        """
    )


def test_only_unmodified_read_only_private_library_mappings_are_dropped():
    text = "".join(
        [
            _vma("7f0000000000-7f0000100000 r-xp 00001000 08:01 42   /usr/lib/libx.so", 800),
            _vma("7f0000100000-7f0000200000 r--p 00101000 08:01 42   /usr/lib/libx.so", 100),
            # RELRO: relocated (copy-on-write) pages, not what is in the file
            _vma("7f0000200000-7f0000300000 r--p 00201000 08:01 42   /usr/lib/libx.so", 50, 50),
            _vma("7f0000300000-7f0000400000 rw-p 00301000 08:01 42   /usr/lib/libx.so", 60),
            _vma("7f0000400000-7f0000500000 rw-p 00000000 00:00 0 ", 900, 900),
            _vma("7f0000500000-7f0000600000 r--s 00000000 08:01 43   /tmp/shared.db-shm", 10),
            _vma("7f0000600000-7f0000700000 r-xp 00000000 08:01 44   /tmp/gone.so (deleted)", 10),
            _vma("7f0000700000-7f0000800000 r-xp 00000000 08:01 45   /lib/l.so", 10, locked=10),
            _vma("7f0000800000-7f0000a00000 r-xp 00000000 08:01 46   /huge/h.so", 2048, page=2048),
            _vma("7f0000a00000-7f0000b00000 r-xp 00000000 08:01 47   /usr/lib/cold.so", 0),
            _vma("7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0   [vdso]", 4),
            # a data file: could be unmapped and its range reused while releasing
            _vma("7f0000b00000-7f0000c00000 r--p 00000000 08:01 48   /usr/lib/locale/la", 30),
            _vma("7f0000c00000-7f0000d00000 r--p 00000000 08:01 49   /lib/libz.so.1.2.13", 20),
            _vma("5600000000-5600100000 r-xp 00001000 08:01 50   /usr/bin/python3.11", 40),
        ]
    )
    assert _droppable(text, "/usr/bin/python3.11") == [
        (0x7F0000000000, 0x7F0000100000, 800),
        (0x7F0000100000, 0x7F0000200000, 100),
        (0x7F0000C00000, 0x7F0000D00000, 20),
        (0x5600000000, 0x5600100000, 40),
    ]
    assert (0x5600000000, 0x5600100000, 40) not in _droppable(text)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc and madvise")
def test_release_lowers_rss_and_the_libraries_keep_working():
    code = textwrap.dedent(
        """
        import re
        import numpy as np
        import pandas as pd
        from stratvector.memory import release_file_pages

        def rss():
            status = open("/proc/self/status").read()
            return int(re.search(r"VmRSS:\\s+(\\d+)", status)[1])

        before = rss()
        dropped = release_file_pages()
        after = rss()
        frame = pd.DataFrame({"a": np.arange(1000.0)})
        assert frame["a"].rolling(10).mean().iloc[-1] == 994.5
        print(before, dropped, after)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    before, dropped, after = map(int, out.split())
    assert dropped > 10_000  # kB: numpy's and pandas' libraries alone are tens of MB
    assert after < before - 10_000


def test_unreadable_smaps_is_a_no_op(tmp_path):
    assert release_file_pages(str(tmp_path / "missing")) == 0
