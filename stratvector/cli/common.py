"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stratvector.errors import StratVectorError

EXIT_USER_ERROR = 2


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="PATH",
        action="append",
        help="folder or file with bars (repeatable; default: the config's [data] paths)",
    )
    p.add_argument("--start", help="first date (YYYY-MM-DD), overrides [data] start_date")
    p.add_argument("--end", help="last date, inclusive, overrides [data] end_date")


def load_config_and_bars(args: argparse.Namespace):
    from stratvector.config import load_config

    cfg = load_config(args.config)
    bars = cfg.load_bars(paths=args.data, start=args.start, end=args.end)
    return cfg, bars


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise StratVectorError(f"--set {item!r}: expected NAME=VALUE")
        out[name.strip()] = parse_value(raw.strip())
    return out


def parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def write_all(outputs: list[tuple[Path, str]]) -> None:
    """Write every output atomically, after checking all their folders exist."""
    from stratvector.fsutil import atomic_write_text

    for path, _ in outputs:
        if not path.parent.exists():
            raise StratVectorError(f"{path}: folder {path.parent} does not exist")
    for path, text in outputs:
        atomic_write_text(path, text)


def finite(v: float) -> float | None:
    """JSON-safe float: NaN and infinities become null."""
    return None if v != v or v in (float("inf"), float("-inf")) else float(v)
