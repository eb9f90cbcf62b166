"""``stratvector trade CONFIG [CONFIG ...] [--paper|--live]``: trade live in the foreground.

Runs each strategy config against IB Gateway/TWS (or ``stratvector ibsim``) until Ctrl-C
or SIGTERM, with a one-line status on stderr. Paper by default; live needs ``mode =
"live"`` and ``account`` in the config, ``--live`` here, and the account id typed back
(or ``--confirm-account``). Any problem before trading starts -- a bad config, an
unknown symbol, an unreachable Gateway, a wrong port, a journal that cannot be opened,
an account that does not fit the mode -- is one message and exit code 2, with no order
sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from typing import Any

GIL_SWITCH_INTERVAL = 0.0005  # seconds (CPython's default is 0.005)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trade",
        help="run strategies against IB Gateway/TWS (or ibsim) in the foreground",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument(
        "config", nargs="+", help="strategy config files (TOML or YAML), one per strategy"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--paper", action="store_true", help="paper trading (the default)")
    mode.add_argument(
        "--live", action="store_true", help="live trading (see the config's [gateway])"
    )
    p.add_argument("--confirm-account", metavar="ACCOUNT", help="confirm live trading on ACCOUNT")
    p.add_argument("--host", help="Gateway host (overrides [gateway] host)")
    p.add_argument("--port", type=int, help="Gateway API port (overrides [gateway] port)")
    p.add_argument("--client-id", type=int, help="API client id (overrides [gateway] client_id)")
    p.add_argument(
        "--journal", metavar="URL", help="journal URL or SQLite path (overrides [journal])"
    )
    p.add_argument(
        "--status-file",
        metavar="PATH",
        help=(
            "keep a JSON status snapshot in PATH, replaced up to 20 times a second; put it "
            "on a tmpfs (/run, /dev/shm), not on the journal's disk, whose syncs would "
            "wait behind those writes"
        ),
    )
    p.add_argument("--no-status", action="store_true", help="no status line on stderr")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=cmd_trade)


def cmd_trade(args: argparse.Namespace) -> int:
    from stratvector.config import load_config
    from stratvector.gateway import Trader, resolve_mode
    from stratvector.memory import release_file_pages

    release_file_pages()  # the imports' start-up code: the trader's peak stays lower

    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    configs = [load_config(c) for c in args.config]
    g = configs[0].gateway
    cli_mode = "live" if args.live else ("paper" if args.paper else None)
    confirmed = args.confirm_account
    if cli_mode == "live" and confirmed is None and g.mode == "live" and g.account:
        confirmed = _ask_confirmation(g.account)
    decision = resolve_mode(g.mode, g.account, cli_mode, confirmed)
    journal_url = args.journal or configs[0].journal_url() or os.environ.get("STRATVECTOR_JOURNAL")
    trader = Trader(
        configs,
        mode=decision,
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        journal_url=journal_url,
        compile_in_child=True,
    )
    show = not args.no_status and sys.stderr.isatty()
    # The journal threads run Python (SQLAlchemy) while the event loop reads IB's socket:
    # with CPython's default 5 ms GIL switch interval a bar update can wait 5 ms for the
    # GIL behind a fill being journaled. 0.5 ms keeps the loop responsive (this is the
    # trading process's own entry point: the setting is process-wide).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return asyncio.run(_run(trader, show, args.status_file))


def _ask_confirmation(account: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    print(
        f"LIVE trading on account {account}. Type the account id to confirm: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    return sys.stdin.readline().strip()


async def _run(trader: Any, show: bool, status_file: str | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    reporter = asyncio.ensure_future(_report(trader, show, status_file))
    try:
        await trader.start()
        runner = asyncio.ensure_future(trader.run())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if runner in done:
            runner.result()  # raises the failure (a StratVectorError: one line, exit 2)
        else:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
    finally:
        await trader.stop()
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reporter
        _write_status(trader, status_file)
        if show:
            print(file=sys.stderr)
    return 0


async def _report(trader: Any, show: bool, status_file: str | None) -> None:
    """Refresh the status file (20 times a second) and the status line (10 times), not
    while a decision is being made (the write would delay its orders) unless that has
    kept the status stale for a second."""
    last_write = last_show = 0.0
    while True:
        now = time.monotonic()
        if not trader.deciding() or now - max(last_write, last_show) >= 1.0:
            if status_file and now - last_write >= 0.05:
                _write_status(trader, status_file)
                last_write = now
            if show and now - last_show >= 0.1:
                print("\r" + status_line(trader.status()), end="", file=sys.stderr, flush=True)
                last_show = now
        with contextlib.suppress(TimeoutError):
            await trader.until(lambda: False, 0.05 if status_file else 0.1)


def status_line(s: dict[str, Any]) -> str:
    """One line: state, account, last bar, activity, latency."""
    bar = s["last_bar"].strftime("%Y-%m-%d %H:%M") if s.get("last_bar") else "-"
    p99 = s.get("send_latency_p99_ms")
    lat = f"{p99:.1f} ms" if p99 is not None else "-"
    halted = " HALTED" if s.get("halted") else ""
    return (
        f"{s['state'].upper()}{halted} {s.get('account') or '-'} ({s['mode']}) | bar {bar} | "
        f"decisions {s['decisions']} | orders {s['orders_sent']} "
        f"(refused {s['orders_refused']}, rejected {s['orders_rejected']}) | fills {s['fills']} | "
        f"p99 bar->order {lat} | reconnects {s['reconnects']}   "
    )


def _write_status(trader: Any, path: str | None) -> None:
    if not path:
        return
    from stratvector.fsutil import atomic_write_text

    status = trader.status()
    status["quiet"] = trader.quiet()
    status["last_decided"] = {sid: r.last_decided for sid, r in trader.runners.items()}
    status["latest"] = {size: f.latest() for size, f in trader.feeds.items()}
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps(status, default=str), durable=False)
