"""``stratvector optimize``: grid, random or genetic search, optionally walk-forward, on
this machine or a Dask cluster, with a progress bar, a report and a saved run."""

from __future__ import annotations

import argparse
import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from stratvector.cli.common import add_data_args, finite, load_config_and_bars, write_all
from stratvector.errors import ConfigError

SHOWN = ("score", "sharpe", "cagr", "max_drawdown", "total_return", "n_trades")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="search a strategy's parameters (grid, random, genetic)")
    p.add_argument("config", help="strategy file (.toml or .yaml)")
    add_data_args(p)
    p.add_argument("--method", choices=("grid", "random", "genetic"), default="grid")
    p.add_argument(
        "--param",
        metavar="NAME=START:STOP:STEP",
        action="append",
        default=[],
        help="range of a parameter (stop inclusive) or NAME=a,b,c; default: declared bounds",
    )
    p.add_argument(
        "--metric", default="sharpe", help="metric to maximize, or NAME=W,NAME=W weights"
    )
    p.add_argument(
        "--aggregate",
        choices=("mean", "median", "min"),
        default="mean",
        help="how per-symbol scores combine per set",
    )
    p.add_argument("--n-iter", type=int, default=200, help="sets to try (random search)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--population", type=int, default=40, help="genetic: population size")
    p.add_argument("--generations", type=int, default=15, help="genetic: generations")
    p.add_argument("--mutation", type=float, default=0.2, help="genetic: mutation rate per gene")
    p.add_argument("--crossover", type=float, default=0.8, help="genetic: crossover rate")
    p.add_argument("--elitism", type=int, default=2, help="genetic: best sets kept each generation")
    p.add_argument(
        "--walk-forward",
        metavar="train=N,test=M[,anchored]",
        help="walk-forward analysis with windows in bars",
    )
    p.add_argument(
        "--dask", metavar="ADDR", help="run on a Dask scheduler (tcp://host:8786) or 'local'"
    )
    p.add_argument(
        "--dask-timeout", type=float, default=10.0, help="seconds to reach the scheduler"
    )
    p.add_argument("--heatmap", metavar="X,Y", help="the two parameters of the report's heatmap")
    p.add_argument("--top", type=int, default=10, help="how many sets to print")
    p.add_argument("--json", metavar="OUT", help="write every evaluated set and the best as JSON")
    p.add_argument("--report", metavar="OUT.html", help="write an HTML report")
    p.add_argument("--runs-dir", default="runs", help="where the run is saved (default: runs/)")
    p.add_argument("--no-save", action="store_true", help="do not save the run")
    p.set_defaults(func=cmd_optimize)


def parse_walk_forward(spec: str) -> dict[str, Any]:
    """``train=504,test=126[,anchored]`` -> dict(train=504, test=126, anchored=False)."""
    out: dict[str, Any] = {"anchored": False}
    for part in spec.split(","):
        key, sep, value = part.strip().partition("=")
        if key == "anchored" and not sep:
            out["anchored"] = True
        elif key in ("train", "test") and sep:
            try:
                out[key] = int(value)
            except ValueError as exc:
                raise ConfigError(
                    f"--walk-forward {spec}: {key} must be a whole number of bars"
                ) from exc
        else:
            raise ConfigError(f"--walk-forward {spec}: expected train=N,test=M[,anchored]")
    if "train" not in out or "test" not in out:
        raise ConfigError(f"--walk-forward {spec}: give both train=N and test=M")
    return out


def _ranges(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ConfigError(f"--param {item!r}: expected NAME=START:STOP:STEP or NAME=a,b,c")
        out[name.strip()] = spec.strip()
    return out


def cmd_optimize(args: argparse.Namespace) -> int:
    from stratvector.backtest.search import GeneticSettings, optimize
    from stratvector.backtest.space import ParamSpace
    from stratvector.backtest.sweep import Objective

    started = time.perf_counter()
    cfg, bars = load_config_and_bars(args)
    strategy, settings = cfg.build()
    cls = type(strategy)
    space = ParamSpace(cls, _ranges(args.param), fixed=strategy.values)
    objective = Objective.parse(args.metric, args.aggregate)
    genetic = GeneticSettings(
        args.population, args.generations, args.mutation, args.crossover, args.elitism
    )
    wf = parse_walk_forward(args.walk_forward) if args.walk_forward else None
    heat = _heatmap_axes(args.heatmap, space.names)
    total = _expected_backtests(args.method, space, len(bars), args.n_iter, genetic)
    with ExitStack() as stack:
        evaluator = None
        if args.dask:
            from stratvector.backtest.distributed import dask_client, dask_evaluator

            evaluator = dask_evaluator(
                stack.enter_context(dask_client(args.dask, timeout=args.dask_timeout))
            )
        bar = stack.enter_context(_progress(total, wf is not None))
        common = {
            "method": args.method,
            "objective": objective,
            "n_iter": args.n_iter,
            "seed": args.seed,
            "progress": bar.update,
        }
        if wf is None:
            extra = {"evaluator": evaluator} if evaluator else {}
            result = optimize(cls, bars, space, settings, genetic=genetic, **common, **extra)
            walk = None
        else:
            from stratvector.backtest.walkforward import walk_forward

            walk = walk_forward(
                cls,
                bars,
                space,
                settings,
                train=wf["train"],
                test=wf["test"],
                anchored=wf["anchored"],
                evaluator=evaluator,
                **common,
            )
            result = walk.searches[-1]
    _print_result(result, walk, args.top)
    payload = _payload(cfg, args, result, walk, bars)
    outputs: list[tuple[Path, str]] = []
    if args.json:
        outputs.append((Path(args.json), json.dumps(payload, indent=2, default=str)))
    if args.report:
        from stratvector.backtest.optimize_report import build_optimize_report

        title = f"Optimization of {cls.name or cls.__name__}: {Path(args.config).name}"
        outputs.append((Path(args.report), build_optimize_report(result, walk, title, heat)))
    write_all(outputs)
    if not args.no_save:
        info = _save(cfg, args, result, walk, bars, payload)
        print(f"saved run {info.id} in {info.path}")
    for path, _ in outputs:
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def _heatmap_axes(spec: str | None, names: tuple[str, ...]) -> tuple[str, str] | None:
    if spec is None:
        return (names[0], names[1]) if len(names) >= 2 else None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or any(p not in names for p in parts):
        raise ConfigError(f"--heatmap {spec}: name two searched parameters ({', '.join(names)})")
    return parts[0], parts[1]


def _expected_backtests(
    method: str, space: Any, n_symbols: int, n_iter: int, ga: Any
) -> int | None:
    if method == "grid":
        return space.grid_size() * n_symbols  # an upper bound when constraints filter
    if method == "random":
        return min(n_iter, space.grid_size()) * n_symbols
    return ga.population * ga.generations * n_symbols  # upper bound: repeats are cached


def _progress(total: int | None, unknown: bool):
    """A progress bar on stderr, off when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=None if unknown else total,
        unit="backtest",
        dynamic_ncols=True,
        leave=False,
        mininterval=0.2,
        disable=None,
    )


def _print_result(result: Any, walk: Any, top: int) -> None:
    ranking = result.ranking
    cols = [*result.sweep.param_names, *[c for c in SHOWN if c in ranking.columns]]
    n_sym = len(result.sweep.symbols)
    print(
        f"{result.method} search, objective {result.objective.label()} ({result.objective.aggregate} over "
        f"{n_sym} symbol{'' if n_sym == 1 else 's'}): {result.n_evaluated} parameter sets"
    )
    print(ranking[cols].head(top).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"best: {result.best_params}")
    if walk is not None:
        w = walk.windows
        print(f"walk-forward: {len(w)} windows")
        show = [
            "window",
            "test_start",
            *result.sweep.param_names,
            "is_sharpe",
            "oos_sharpe",
            "oos_return",
        ]
        print(w[show].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        m = walk.metrics
        print(
            f"out-of-sample sharpe {m['oos_sharpe']:.4f}, cagr {m['oos_cagr']:.2%}, max drawdown "
            f"{m['oos_max_drawdown']:.2%}; mean in-sample sharpe {m['mean_is_sharpe']:.4f}; "
            f"walk-forward efficiency {m['walk_forward_efficiency']:.3f}"
        )


def _payload(
    cfg: Any, args: argparse.Namespace, result: Any, walk: Any, bars: dict
) -> dict[str, Any]:
    ranking = result.ranking.reset_index()
    out: dict[str, Any] = {
        "config": str(cfg.source),
        "method": result.method,
        "objective": result.objective.label(),
        "symbols": list(bars),
        "best_params": result.best_params,
        "best_score": finite(result.best_score),
        "results": json.loads(ranking.to_json(orient="records")),
    }
    if not result.history.empty:
        out["history"] = json.loads(result.history.to_json(orient="records"))
    if walk is not None:
        out["walk_forward"] = {
            "metrics": {k: finite(v) for k, v in walk.metrics.items()},
            "windows": json.loads(walk.windows.to_json(orient="records", date_format="iso")),
            "stability": json.loads(walk.stability.to_json(orient="records")),
        }
    return out


def _save(
    cfg: Any, args: argparse.Namespace, result: Any, walk: Any, bars: dict, payload: dict
) -> Any:
    from stratvector.backtest.runs import save_run

    starts = [df.index[0] for df in bars.values()]
    ends = [df.index[-1] for df in bars.values()]
    tables = {"results": result.ranking.reset_index()}
    metrics: dict[str, Any] = {"best_score": result.best_score}
    if not result.history.empty:
        tables["history"] = result.history
    if walk is not None:
        tables["windows"] = walk.windows
        tables["oos_equity"] = walk.oos_equity.to_frame()
        tables["stability"] = walk.stability
        metrics.update(walk.metrics)  # oos_sharpe: what the drift job compares live results against
    config = {
        "file": str(cfg.source),
        "strategy": cfg.model_dump(mode="json", exclude={"source"}),
        "method": result.method,
        "objective": result.objective.label(),
        "best_params": result.best_params,
        "walk_forward": args.walk_forward,
    }
    kind = "walk_forward" if walk is not None else "optimize"
    return save_run(
        kind,
        config=config,
        symbols=list(bars),
        data_start=min(starts),
        data_end=max(ends),
        metrics=metrics,
        tables=tables,
        runs_dir=Path(args.runs_dir),
    )
