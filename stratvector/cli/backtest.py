"""``stratvector backtest`` and ``stratvector check-lookahead``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from stratvector.cli.common import (
    add_data_args,
    finite,
    load_config_and_bars,
    parse_sets,
    write_all,
)

HEADLINE_METRICS = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "var_95",
    "cvar_95",
    "alpha",
    "beta",
    "n_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "exposure",
    "turnover",
    "total_commission",
    "final_equity",
    "benchmark_return",
)


def register(sub: argparse._SubParsersAction) -> None:
    bt = sub.add_parser("backtest", help="backtest a strategy file and print its metrics")
    bt.add_argument("config", help="strategy file (.toml or .yaml)")
    add_data_args(bt)
    bt.add_argument("--json", metavar="OUT", help="write metrics, settings and trades as JSON")
    bt.add_argument("--report", metavar="OUT.html", help="write an HTML report (plotly)")
    bt.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="override a strategy parameter or backtest setting (repeatable)",
    )
    bt.add_argument(
        "--monte-carlo",
        type=int,
        metavar="N",
        default=0,
        help="resample the closed trades N times and print the distribution",
    )
    bt.add_argument("--save", action="store_true", help="save the run under --runs-dir")
    bt.add_argument("--runs-dir", default="runs", help="where --save puts the run (default: runs/)")
    bt.set_defaults(func=cmd_backtest)

    la = sub.add_parser(
        "check-lookahead", help="prove a strategy's targets never depend on later bars"
    )
    la.add_argument("config", help="strategy file (.toml or .yaml)")
    add_data_args(la)
    la.add_argument("--checks", type=int, default=50, help="truncation points on long data")
    la.set_defaults(func=cmd_check_lookahead)


def cmd_backtest(args: argparse.Namespace) -> int:
    from stratvector.backtest import simulate

    started = time.perf_counter()
    cfg, bars = load_config_and_bars(args)
    strategy, settings = cfg.build(parse_sets(args.set))
    result = simulate(strategy, bars, settings)
    metrics = result.metrics
    outputs: list[tuple[Path, str]] = []
    if args.json:
        outputs.append((Path(args.json), json.dumps(json_payload(cfg, result), indent=2)))
    if args.report:
        from stratvector.backtest.report import build_report

        title = f"{strategy.name or type(strategy).__name__}: {Path(args.config).name}"
        outputs.append((Path(args.report), build_report(result, bars, title)))
    write_all(outputs)
    print_metrics(result, metrics)
    if args.monte_carlo:
        _print_monte_carlo(result, args.monte_carlo)
    if args.save:
        from stratvector.backtest.runs import backtest_run_payload, save_run

        run_metrics, tables = backtest_run_payload(result)
        config = {
            "file": str(cfg.source),
            "strategy": cfg.model_dump(mode="json", exclude={"source"}),
            "parameters": result.strategy.values,
        }
        info = save_run(
            "backtest",
            config=config,
            symbols=result.symbols,
            data_start=result.index[0],
            data_end=result.index[-1],
            metrics=run_metrics,
            tables=tables,
            runs_dir=Path(args.runs_dir),
        )
        print(f"saved run {info.id} in {info.path}")
    for path, _ in outputs:
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def cmd_check_lookahead(args: argparse.Namespace) -> int:
    from stratvector.strategy.lookahead import check_lookahead

    cfg, bars = load_config_and_bars(args)
    strategy, _ = cfg.build()
    for sym, df in bars.items():
        report = check_lookahead(strategy, df, n_checks=args.checks)
        print(
            f"{sym}: no look-ahead ({report.n_checks} truncated histories compared with the full run)"
        )
    return 0


def json_payload(cfg: Any, result: Any) -> dict[str, Any]:
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
        "metrics": {k: finite(v) for k, v in result.metrics.items()},
        "trades": json.loads(trades.to_json(orient="records")),
    }


def print_metrics(result: Any, metrics: dict[str, float]) -> None:
    from stratvector.backtest.report import format_metric

    print(
        f"{result.strategy!r} on {', '.join(result.symbols)}: "
        f"{result.index[0]:%Y-%m-%d} .. {result.index[-1]:%Y-%m-%d}, {len(result.index)} bars"
    )
    width = max(len(k) for k in HEADLINE_METRICS)
    for key in HEADLINE_METRICS:
        if key in metrics:
            print(f"  {key:<{width}}  {format_metric(key, metrics[key]):>14}")


def _print_monte_carlo(result: Any, n_sims: int) -> None:
    from stratvector.backtest.montecarlo import trade_monte_carlo

    mc = trade_monte_carlo(result, n_sims=n_sims, method="bootstrap", seed=0)
    print(f"Monte Carlo of {n_sims} resampled trade sequences (bootstrap, seed 0):")
    print(mc.percentiles().to_string(float_format=lambda v: f"{v:,.4f}"))
    print(f"  probability of a loss: {mc.probability_of_loss:.2%}")
