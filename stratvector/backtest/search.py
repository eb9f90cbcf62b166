"""Parameter search: grid, random and a seeded genetic algorithm over a ParamSpace.

All three evaluate parameter sets in batches through :func:`~stratvector.backtest.sweep.evaluate`
(or a distributed evaluator with the same signature) and return every evaluated set with
its metrics, so a user sees the robust region, not only the single best point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from stratvector.backtest.settings import BacktestSettings
from stratvector.backtest.space import ParamSpace
from stratvector.backtest.sweep import Objective, Progress, SweepResult, evaluate
from stratvector.errors import ConfigError
from stratvector.strategy.base import Strategy

Method = Literal["grid", "random", "genetic"]
Evaluator = Callable[..., SweepResult]


@dataclass(frozen=True)
class GeneticSettings:
    """A generational GA on the grid: tournament selection, uniform crossover, a random
    step mutation per gene, and elitism. Seeded: the same seed gives the same search."""

    population: int = 40
    generations: int = 15
    mutation_rate: float = 0.2
    crossover_rate: float = 0.8
    elitism: int = 2
    tournament: int = 3

    def __post_init__(self) -> None:
        if self.population < 2 or self.generations < 1:
            raise ConfigError("genetic search needs population >= 2 and generations >= 1")
        if not (0 <= self.mutation_rate <= 1 and 0 <= self.crossover_rate <= 1):
            raise ConfigError("mutation_rate and crossover_rate must be in [0, 1]")
        if not 0 <= self.elitism < self.population:
            raise ConfigError("elitism must be in [0, population)")


@dataclass
class SearchResult:
    """Every evaluated set (``table``: one row per set x symbol), the ranking per set, the
    best set, and for a genetic search the best/mean score per generation."""

    method: str
    objective: Objective
    sweep: SweepResult
    ranking: pd.DataFrame
    best_params: dict[str, Any]
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def best_score(self) -> float:
        return float(self.ranking["score"].iloc[0])

    @property
    def n_evaluated(self) -> int:
        return len(self.ranking)


def optimize(
    strategy_cls: type[Strategy],
    bars: pd.DataFrame | Mapping[str, pd.DataFrame],
    space: ParamSpace,
    settings: BacktestSettings,
    *,
    method: Method = "grid",
    objective: Objective | str = "sharpe",
    n_iter: int = 200,
    seed: int = 0,
    genetic: GeneticSettings | None = None,
    metrics: Sequence[str] = (),
    evaluator: Evaluator = evaluate,
    progress: Progress | None = None,
) -> SearchResult:
    """Search ``space`` for the parameter set that maximizes ``objective``.

    ``n_iter`` is the number of random sets (random search). ``evaluator`` defaults to
    the in-process sweep; :func:`stratvector.backtest.distributed.dask_evaluator` gives
    one that runs on a Dask cluster with identical results.
    """
    obj = objective if isinstance(objective, Objective) else Objective.parse(objective)
    wanted = tuple(dict.fromkeys([*obj.metrics, *metrics]))
    kwargs = {"metrics": wanted, "progress": progress}
    history = pd.DataFrame()
    if method == "grid":
        sets = space.grid()
        sweep = evaluator(strategy_cls, bars, sets, settings, **kwargs)
    elif method == "random":
        if n_iter < 1:
            raise ConfigError("random search needs n_iter >= 1")
        rng = np.random.default_rng(seed)
        size = space.grid_size()
        sets = _unique(space.sample(rng, min(n_iter, size) * 3))[: min(n_iter, size)]
        sweep = evaluator(strategy_cls, bars, sets, settings, **kwargs)
    elif method == "genetic":
        sweep, history = _genetic(
            strategy_cls,
            bars,
            space,
            settings,
            obj,
            genetic or GeneticSettings(),
            seed,
            evaluator,
            kwargs,
        )
    else:
        raise ConfigError(f"unknown search method {method!r}; use grid, random or genetic")
    ranking = sweep.by_set(obj)
    return SearchResult(method, obj, sweep, ranking, sweep.best(obj), history)


def _unique(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple] = set()
    out = []
    for s in sets:
        key = tuple(sorted(s.items()))
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _genetic(
    strategy_cls: type[Strategy],
    bars: Any,
    space: ParamSpace,
    settings: BacktestSettings,
    obj: Objective,
    ga: GeneticSettings,
    seed: int,
    evaluator: Evaluator,
    kwargs: dict[str, Any],
) -> tuple[SweepResult, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dims = space.dimensions
    sizes = np.array([len(d.values) for d in dims])
    scores: dict[tuple[int, ...], float] = {}
    tables: list[pd.DataFrame] = []
    param_names: list[str] = []
    symbols: list[str] = []

    def score_all(pop: list[tuple[int, ...]]) -> None:
        nonlocal param_names, symbols
        new = list(dict.fromkeys(p for p in pop if p not in scores))
        if not new:
            return
        start = len(scores)
        sets = [space.at(p) for p in new]
        res = evaluator(
            strategy_cls, bars, sets, settings, set_ids=range(start, start + len(new)), **kwargs
        )
        ranked = res.by_set(obj)
        for sid, p in zip(range(start, start + len(new)), new, strict=True):
            value = ranked.loc[sid, "score"]
            scores[p] = float(value) if value == value else -np.inf
        tables.append(res.table)
        param_names, symbols = res.param_names, res.symbols

    def random_individual() -> tuple[int, ...]:
        return space.index_of(space.sample(rng, 1)[0])

    def repair(ind: tuple[int, ...]) -> tuple[int, ...]:
        return ind if space.satisfies(space.at(ind)) else random_individual()

    population = [random_individual() for _ in range(ga.population)]
    rows = []
    for gen in range(ga.generations):
        score_all(population)
        fitness = np.array([scores[p] for p in population])
        finite = fitness[np.isfinite(fitness)]
        rows.append(
            {
                "generation": gen,
                "best": float(fitness.max()),
                "mean": float(finite.mean()) if finite.size else float("nan"),
                "evaluated": len(scores),
            }
        )
        if gen == ga.generations - 1:
            break
        order = np.argsort(-fitness, kind="stable")
        nxt = [population[i] for i in order[: ga.elitism]]
        while len(nxt) < ga.population:
            a = _tournament(population, fitness, ga.tournament, rng)
            b = _tournament(population, fitness, ga.tournament, rng)
            if rng.random() < ga.crossover_rate:
                mask = rng.random(len(dims)) < 0.5
                child = tuple(int(x) for x in np.where(mask, a, b))
            else:
                child = a
            genes = np.array(child)
            for g in range(len(dims)):
                if rng.random() < ga.mutation_rate:
                    jump = max(1, round(abs(rng.normal(0, max(1.0, sizes[g] / 6)))))
                    genes[g] = np.clip(
                        genes[g] + (jump if rng.random() < 0.5 else -jump), 0, sizes[g] - 1
                    )
            nxt.append(repair(tuple(int(x) for x in genes)))
        population = nxt
    table = pd.concat(tables, ignore_index=True)
    return SweepResult(table, param_names, symbols), pd.DataFrame(rows)


def _tournament(
    pop: list[tuple[int, ...]], fitness: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[int, ...]:
    picks = rng.integers(0, len(pop), size=max(1, min(k, len(pop))))
    best = picks[int(np.argmax(fitness[picks]))]
    return pop[int(best)]
