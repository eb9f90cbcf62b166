"""Run parameter sweeps on a Dask cluster, with results identical to the in-process run.

Work is split into tasks of (a chunk of parameter sets) x (one symbol); each task calls the
same :func:`~stratvector.backtest.sweep.evaluate` a local run calls, so every number is
computed by the same code. Bars are scattered to the workers once. Dask is optional
(``pip install stratvector[dask]``); nothing here imports it until a cluster is asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from stratvector.backtest.settings import BacktestSettings
from stratvector.backtest.sweep import Progress, SweepResult, evaluate
from stratvector.errors import ConfigError, StratVectorError
from stratvector.strategy.base import Strategy

CONNECT_TIMEOUT_S = 10


@contextmanager
def dask_client(
    address: str, n_workers: int | None = None, timeout: float = CONNECT_TIMEOUT_S
) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``"local"`` starts a LocalCluster).

    An unreachable scheduler is a :class:`~stratvector.errors.StratVectorError` naming it.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise StratVectorError("Dask is not installed: pip install 'stratvector[dask]'") from exc
    if address == "local":
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise StratVectorError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def dask_evaluator(client: Any, sets_per_task: int = 64) -> Callable[..., SweepResult]:
    """An evaluator with :func:`evaluate`'s signature that runs on ``client``."""

    def run(
        strategy_cls: type[Strategy],
        bars: pd.DataFrame | Mapping[str, pd.DataFrame],
        param_sets: Sequence[Mapping[str, Any]],
        settings: BacktestSettings,
        *,
        metrics: Sequence[str] = (),
        keep_equity: bool = False,
        progress: Progress | None = None,
        set_ids: Sequence[int] | None = None,
        chunk_size: int = 256,
    ) -> SweepResult:
        if keep_equity:
            raise ConfigError("equity curves are not collected from a Dask cluster; run in-process")
        _pickle_user_strategy_by_value(strategy_cls)
        frames = {"ASSET": bars} if isinstance(bars, pd.DataFrame) else dict(bars)
        ids = list(range(len(param_sets))) if set_ids is None else list(set_ids)
        futures = []
        for sym, df in frames.items():
            remote = client.scatter({sym: df}, broadcast=True)
            for start in range(0, len(param_sets), sets_per_task):
                chunk = list(param_sets[start : start + sets_per_task])
                futures.append(
                    client.submit(
                        evaluate,
                        strategy_cls,
                        remote,
                        chunk,
                        settings,
                        metrics=tuple(metrics),
                        set_ids=ids[start : start + sets_per_task],
                        chunk_size=chunk_size,
                        pure=False,
                    )
                )
        from distributed import as_completed

        parts = []
        for fut in as_completed(futures):
            res = fut.result()
            parts.append(res)
            if progress is not None:
                progress(len(res.table))
        order = {s: i for i, s in enumerate(frames)}
        table = pd.concat([p.table for p in parts], ignore_index=True)
        table = table.sort_values(
            ["symbol", "set_id"],
            key=lambda c: c.map(order) if c.name == "symbol" else c,
            kind="stable",
        ).reset_index(drop=True)
        return SweepResult(table, parts[0].param_names, list(frames))

    return run


def _pickle_user_strategy_by_value(strategy_cls: type[Strategy]) -> None:
    """Strategies loaded from a user's file live in a module workers cannot import;
    ship that module by value."""
    mod = strategy_cls.__module__
    if mod.startswith("stratvector_user_") and mod in sys.modules:
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[mod])
