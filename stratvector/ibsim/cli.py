"""``stratvector ibsim``: run the IB Gateway stand-in, or send it a control command.

    stratvector ibsim --bars DIR [--port 4002] [--speed 1] [--start 2020-01-02]
                      [--account DU1234567] [--commission ibkr_fixed] [--slippage none]
                      [--control-port 4003] [--transcript run.jsonl]
                      [--market-rule 0:0.0001,1:0.01] [--min-tick 0.01]
                      [--forming-bars] [--session 09:30-16:00] [--time-zone US/Eastern]
    stratvector ibsim --control-port 4003 --ctl "restart 10"

The server prints ``ibsim listening on HOST:PORT`` once it accepts connections, and
stops cleanly on SIGINT/SIGTERM (exit code 0). Bad input (a bar file with an invalid
row, an unknown cost model, a non-loopback host) exits with code 2 and a one-line
message naming the file and row or the option.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys

from stratvector.errors import StratVectorError
from stratvector.ibsim.config import MAX_SERVER_VERSION, IBSimConfig, PacingLimits, cost_model
from stratvector.ibsim.control import ControlServer, install_signal_handlers, send_command
from stratvector.ibsim.server import IBSim
from stratvector.ibsim.ticks import US_STOCK_RULE, MarketRule


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ibsim options to ``parser`` (the lead wires it as ``stratvector ibsim``)."""
    parser.add_argument("--bars", help="directory of bar files, one per symbol (required to serve)")
    parser.add_argument(
        "--port", type=int, default=4002, help="API port (default 4002; 0 = any free port)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="listen address (loopback unless --allow-remote)"
    )
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="bars closed per second by the replay (default 1; 0 = only by control)",
    )
    parser.add_argument(
        "--start",
        default=None,
        help="first simulated time: a date (bars before it are history) or a bar count",
    )
    parser.add_argument("--account", default="DU1234567", help="managed account id")
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash")
    parser.add_argument(
        "--commission",
        default="ibkr_fixed",
        help="commission model: name[:field=value,...] (ibkr_fixed, ibkr_tiered, percent, per_order, none)",
    )
    parser.add_argument(
        "--slippage",
        default="none",
        help="slippage model: name[:field=value,...] (none, bps, half_spread, sqrt_impact)",
    )
    parser.add_argument(
        "--participation",
        type=float,
        default=None,
        help="partial fills: at most this fraction of a bar's volume per bar",
    )
    parser.add_argument(
        "--expire-day-orders",
        action="store_true",
        help="cancel DAY orders at the end of their trading day, as IB does",
    )
    parser.add_argument(
        "--transcript", default=None, help="write every message to this JSON-lines file"
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="loopback port for control commands (status, step, drop, restart, ...)",
    )
    parser.add_argument(
        "--restart-downtime",
        type=float,
        default=5.0,
        help="seconds a SIGHUP/'restart' refuses connections (default 5)",
    )
    parser.add_argument(
        "--server-version",
        type=int,
        default=MAX_SERVER_VERSION,
        help=f"highest API server version to offer (157..{MAX_SERVER_VERSION})",
    )
    parser.add_argument(
        "--master-client-id",
        type=int,
        default=None,
        help="client id that sees every client's orders and executions",
    )
    parser.add_argument(
        "--no-pacing", action="store_true", help="do not enforce historical-data pacing"
    )
    parser.add_argument(
        "--market-rule",
        default=US_STOCK_RULE.text(),
        help="valid prices per band as EDGE:INCREMENT,... (default the US stock rule "
        f"{US_STOCK_RULE.text()}; 'none' plays an old server without market rules)",
    )
    parser.add_argument(
        "--market-rule-id",
        type=int,
        default=US_STOCK_RULE.rule_id,
        help=f"the id contract details give the rule (default {US_STOCK_RULE.rule_id})",
    )
    parser.add_argument(
        "--min-tick", type=float, default=0.01, help="minTick of contract details (default 0.01)"
    )
    parser.add_argument(
        "--forming-bars",
        action="store_true",
        help="keepUpToDate streams end with the forming bar, as IB's do",
    )
    parser.add_argument(
        "--session",
        default=None,
        help="daily bars' session HH:MM-HH:MM in --time-zone (default the whole day)",
    )
    parser.add_argument(
        "--time-zone", default="UTC", help="time zone of the sessions (timeZoneId; default UTC)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the jitter random generator")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--ctl",
        metavar="COMMAND",
        default=None,
        help="send COMMAND to a running ibsim at --control-port and print the reply",
    )


def config_from_args(args: argparse.Namespace) -> IBSimConfig:
    """The :class:`IBSimConfig` the options describe (raises ConfigError on bad values)."""
    if not args.bars:
        from stratvector.errors import ConfigError

        raise ConfigError("ibsim needs --bars DIR (a directory with one bar file per symbol)")
    start: str | int | None = args.start
    if isinstance(start, str) and start.isdigit():
        start = int(start)
    return IBSimConfig(
        bars=args.bars,
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        start=start,
        speed=args.speed,
        account=args.account,
        cash=args.cash,
        commission=cost_model("commission", args.commission),
        slippage=cost_model("slippage", args.slippage),
        participation=args.participation,
        expire_day_orders=args.expire_day_orders,
        server_version=args.server_version,
        pacing=None if args.no_pacing else PacingLimits(),
        transcript=args.transcript,
        master_client_id=args.master_client_id,
        seed=args.seed,
        market_rule=_market_rule(args.market_rule, args.market_rule_id),
        min_tick=args.min_tick,
        forming_bars=args.forming_bars,
        session=args.session,
        time_zone=args.time_zone,
    )


def _market_rule(text: str, rule_id: int) -> MarketRule | None:
    if text.strip().lower() == "none":
        return None
    return MarketRule.parse(text, rule_id)


def main(args: argparse.Namespace) -> int:
    """Run the stand-in until SIGINT/SIGTERM (or send ``--ctl``); returns the exit code."""
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.ctl:
        if args.control_port is None:
            print("ibsim: error: --ctl needs --control-port", file=sys.stderr)
            return 2
        try:
            reply = asyncio.run(send_command("127.0.0.1", args.control_port, args.ctl))
        except (OSError, TimeoutError, ValueError) as exc:
            print(f"ibsim: error: cannot reach the control port: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(reply))
        return 0 if reply.get("ok") else 1
    try:
        config = config_from_args(args)
        return asyncio.run(_serve(config, args.control_port, args.restart_downtime))
    except StratVectorError as exc:
        print(f"ibsim: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ibsim: error: cannot listen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _serve(config: IBSimConfig, control_port: int | None, downtime: float) -> int:
    sim = IBSim(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    control: ControlServer | None = None
    async with sim:
        install_signal_handlers(sim, downtime)
        if control_port is not None:
            control = ControlServer(sim, "127.0.0.1", control_port, downtime)  # never remote
            await control.start()
        st = sim.status()
        extra = f", control on 127.0.0.1:{control.port}" if control else ""
        print(
            f"ibsim listening on {config.host}:{sim.port} ({len(sim.ctx.store.instruments)} "
            f"symbols, clock at {st['now']}, {st['position']}/{st['bars']} bars closed{extra})",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            if control is not None:
                await control.stop()
    return 0
