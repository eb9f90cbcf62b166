"""``python -m stratvector.ibsim``: the same as ``stratvector ibsim``."""

from __future__ import annotations

import argparse
import sys

from stratvector.ibsim.cli import add_arguments, main


def run() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stratvector.ibsim",
        description="A stand-in for IB Gateway that speaks the TWS API on loopback.",
    )
    add_arguments(parser)
    return main(parser.parse_args())


if __name__ == "__main__":
    sys.exit(run())
