"""The ``stratvector`` command.

User errors (bad config, bad data, unknown strategy, ...) print one line and exit 2;
anything else is a bug and keeps its traceback. Output files are written atomically,
and only after every computation succeeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stratvector.errors import StratVectorError

EXIT_USER_ERROR = 2

HEADLINE_METRICS = (
    "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar",
    "max_drawdown", "max_drawdown_duration", "var_95", "cvar_95", "alpha", "beta",
    "n_trades", "win_rate", "profit_factor", "expectancy", "exposure", "turnover",
    "total_commission", "final_equity", "benchmark_return",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
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

    bt = sub.add_parser("backtest", help="backtest a strategy file and print its metrics")
    bt.add_argument("config", help="strategy file (.toml or .yaml)")
    _add_data_args(bt)
    bt.add_argument("--json", metavar="OUT", help="write metrics, settings and trades as JSON")
    bt.add_argument("--report", metavar="OUT.html", help="write an HTML report (plotly)")
    bt.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="override a strategy parameter or backtest setting (repeatable)",
    )
    bt.set_defaults(func=cmd_backtest)

    la = sub.add_parser(
        "check-lookahead", help="prove a strategy's targets never depend on later bars"
    )
    la.add_argument("config", help="strategy file (.toml or .yaml)")
    _add_data_args(la)
    la.add_argument("--checks", type=int, default=50, help="truncation points on long data")
    la.set_defaults(func=cmd_check_lookahead)

    _add_journal_commands(sub)

    sim = sub.add_parser("ibsim", help="run the IB Gateway stand-in (TWS API on loopback)")
    try:
        from stratvector.ibsim.cli import add_arguments as add_ibsim_arguments
        from stratvector.ibsim.cli import main as ibsim_main
    except ImportError:  # pragma: no cover - the package ships it; guards a partial install
        sim.set_defaults(func=lambda _a: _missing("ibsim"))
    else:
        add_ibsim_arguments(sim)
        sim.set_defaults(func=ibsim_main)
    return parser


def _add_journal_commands(sub: argparse._SubParsersAction) -> None:
    def journal_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--journal",
            metavar="URL",
            default=None,
            help="journal URL or SQLite path (default: $STRATVECTOR_JOURNAL or the state folder)",
        )

    pos = sub.add_parser("positions", help="net positions from the journal's fills")
    journal_arg(pos)
    pos.add_argument("--strategy")
    pos.add_argument("--all", action="store_true", help="include flat positions")
    pos.add_argument("--json", action="store_true", help="print JSON rows")
    pos.set_defaults(func=cmd_positions)

    ords = sub.add_parser("orders", help="orders in the journal, newest first")
    journal_arg(ords)
    ords.add_argument("--open", action="store_true", help="only orders not known to be finished")
    ords.add_argument("--strategy")
    ords.add_argument("--symbol")
    ords.add_argument("--limit", type=int, default=50)
    ords.add_argument("--json", action="store_true", help="print JSON rows")
    ords.set_defaults(func=cmd_orders)

    h = sub.add_parser("halt", help="set the kill switch: the daemon sends no new orders")
    journal_arg(h)
    h.add_argument("reason", help="why (kept in the journal)")
    h.add_argument("--strategy", help="halt one strategy only")
    h.set_defaults(func=cmd_halt)

    r = sub.add_parser("resume", help="clear the kill switch")
    journal_arg(r)
    r.add_argument("--strategy", help="resume one strategy only")
    r.add_argument("--reason")
    r.set_defaults(func=cmd_resume)


def _journal(args: argparse.Namespace, migrate: bool = True):
    import os

    from stratvector.store import Journal

    url = args.journal or os.environ.get("STRATVECTOR_JOURNAL")
    return Journal(url, migrate=migrate)


def cmd_positions(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        rows = commands.positions_rows(journal, strategy=args.strategy, include_flat=args.all)
    _print_rows(rows, commands.POSITION_COLUMNS, args.json, "no positions")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        rows = commands.orders_rows(
            journal,
            open_only=args.open,
            strategy=args.strategy,
            symbol=args.symbol,
            limit=args.limit,
        )
    _print_rows(rows, commands.ORDER_COLUMNS, args.json, "no orders")
    return 0


def cmd_halt(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        print(commands.halt(journal, args.reason, strategy=args.strategy))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from stratvector.store import commands

    with _journal(args) as journal:
        print(commands.resume(journal, strategy=args.strategy, reason=args.reason))
    return 0


def _print_rows(
    rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool, empty: str
) -> None:
    from stratvector.store import commands

    if as_json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(commands.render_table(rows, columns))
    else:
        print(empty)


def _missing(what: str) -> int:
    raise StratVectorError(f"the {what} component is not installed in this build")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="PATH",
        action="append",
        help="folder or file with bars (repeatable; default: the config's [data] paths)",
    )
    p.add_argument("--start", help="first date (YYYY-MM-DD), overrides [data] start_date")
    p.add_argument("--end", help="last date, inclusive, overrides [data] end_date")


def _load(args: argparse.Namespace):
    from stratvector.config import load_config

    cfg = load_config(args.config)
    bars = cfg.load_bars(paths=args.data, start=args.start, end=args.end)
    return cfg, bars


def cmd_backtest(args: argparse.Namespace) -> int:
    from stratvector.backtest import simulate

    started = time.perf_counter()
    cfg, bars = _load(args)
    strategy, settings = cfg.build(_parse_sets(args.set))
    result = simulate(strategy, bars, settings)
    metrics = result.metrics
    outputs: list[tuple[Path, str]] = []
    if args.json:
        outputs.append((Path(args.json), json.dumps(_json_payload(cfg, result), indent=2)))
    if args.report:
        from stratvector.backtest.report import build_report

        title = f"{strategy.name or type(strategy).__name__}: {Path(args.config).name}"
        outputs.append((Path(args.report), build_report(result, bars, title)))
    _write_all(outputs)
    _print_metrics(result, metrics)
    for path, _ in outputs:
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def cmd_check_lookahead(args: argparse.Namespace) -> int:
    from stratvector.strategy.lookahead import check_lookahead

    cfg, bars = _load(args)
    strategy, _ = cfg.build()
    for sym, df in bars.items():
        report = check_lookahead(strategy, df, n_checks=args.checks)
        print(f"{sym}: no look-ahead ({_describe(report)})")
    return 0


def _describe(report: Any) -> str:
    cuts = getattr(report, "cut_points", None) or getattr(report, "checked", None)
    n = len(cuts) if cuts is not None else "?"
    return f"{n} truncated histories compared with the full run"


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise StratVectorError(f"--set {item!r}: expected NAME=VALUE")
        out[name.strip()] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def _write_all(outputs: list[tuple[Path, str]]) -> None:
    from stratvector.fsutil import atomic_write_text

    for path, _ in outputs:
        if not path.parent.exists():
            raise StratVectorError(f"{path}: folder {path.parent} does not exist")
    for path, text in outputs:
        atomic_write_text(path, text)


def _json_payload(cfg: Any, result: Any) -> dict[str, Any]:
    trades = result.trades.copy()
    for col in ("entry_time", "exit_time"):
        trades[col] = trades[col].map(lambda t: None if t is None or t != t else t.isoformat())
    return {
        "config": str(cfg.source) if cfg.source else None,
        "strategy": {"name": cfg.strategy.name, "parameters": result.strategy.values},
        "symbols": result.symbols,
        "start": result.index[0].isoformat(),
        "end": result.index[-1].isoformat(),
        "bars": len(result.index),
        "metrics": {k: _finite(v) for k, v in result.metrics.items()},
        "trades": json.loads(trades.to_json(orient="records")),
    }


def _finite(v: float) -> float | None:
    return None if v != v or v in (float("inf"), float("-inf")) else float(v)


def _print_metrics(result: Any, metrics: dict[str, float]) -> None:
    from stratvector.backtest.report import format_metric

    print(
        f"{result.strategy!r} on {', '.join(result.symbols)}: "
        f"{result.index[0]:%Y-%m-%d} .. {result.index[-1]:%Y-%m-%d}, {len(result.index)} bars"
    )
    width = max(len(k) for k in HEADLINE_METRICS)
    for key in HEADLINE_METRICS:
        if key in metrics:
            print(f"  {key:<{width}}  {format_metric(key, metrics[key]):>14}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
