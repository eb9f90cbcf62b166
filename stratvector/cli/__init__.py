"""The ``stratvector`` command.

User errors (bad config, bad data, unknown strategy, ...) print one line and exit 2;
anything else is a bug and keeps its traceback. Output files are written atomically,
and only after every computation succeeded. Each command group lives in its own module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from stratvector.cli import backtest, journal, optimize, trade
from stratvector.cli.common import EXIT_USER_ERROR
from stratvector.errors import StratVectorError

__all__ = ["EXIT_USER_ERROR", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ibsim"]:  # its own parser: options like --bars must reach it untouched
        return _guarded(lambda: _run_ibsim(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    return _guarded(lambda: args.func(args))


def _guarded(run: Callable[[], int | None]) -> int:
    """Run a command: user errors become one line and exit code 2."""
    try:
        return int(run() or 0)
    except StratVectorError as exc:
        print(f"stratvector: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("stratvector: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stratvector",
        description="Backtest, optimize and trade one strategy interface.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    backtest.register(sub)
    optimize.register(sub)
    journal.register(sub)
    trade.register(sub)
    _register_ibsim(sub)
    return parser


def _register_ibsim(sub: argparse._SubParsersAction) -> None:
    # ibsim's own parser is built only when it runs: importing it costs start-up time
    sim = sub.add_parser(
        "ibsim",
        help="run the IB Gateway stand-in (TWS API on loopback); see `stratvector ibsim --help`",
        add_help=False,
    )
    sim.add_argument("rest", nargs=argparse.REMAINDER)
    sim.set_defaults(func=lambda a: _run_ibsim(a.rest))


def _run_ibsim(rest: list[str]) -> int:
    from stratvector.ibsim.cli import add_arguments
    from stratvector.ibsim.cli import main as ibsim_main

    parser = argparse.ArgumentParser(
        prog="stratvector ibsim", description="IB Gateway stand-in speaking the TWS API."
    )
    add_arguments(parser)
    return ibsim_main(parser.parse_args(rest))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
