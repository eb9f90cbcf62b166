"""Strategies with versioned configs, and backtest / search / walk-forward runs.

A strategy config is stored once per distinct content (SHA-256 of its canonical JSON);
registering the same config again returns the existing version. A run keeps everything
needed to reproduce and compare it: kind, config, data range, symbols, code version,
headline metrics, artefact paths, and an optional result table (one row per parameter
set or fold).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from stratvector.store._sql import for_update, insert_ignore
from stratvector.store._types import dumps, jsonable, opt_utc, to_utc, utc_now
from stratvector.store.errors import NotFoundError
from stratvector.store.models import Run, RunResult, Strategy, StrategyConfig

RUN_KINDS = ("backtest", "optimization", "walk_forward", "monte_carlo", "stress")
"""The usual run kinds; others are accepted (``kind`` is free text up to 32 characters)."""


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the config's canonical JSON (sorted keys, no NaN)."""
    return hashlib.sha256(dumps(config).encode()).hexdigest()


# ---------------------------------------------------------------------- strategies


@dataclass(frozen=True, slots=True)
class StrategyConfigRecord:
    """One stored config version of a strategy."""

    id: int
    strategy: str
    spec: str | None
    version: int
    config: dict[str, Any]
    config_hash: str
    created_at: datetime
    created: bool = False


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    name: str
    spec: str | None
    description: str | None
    created_at: datetime
    latest_version: int | None


def _config_record(c: StrategyConfig, created: bool = False) -> StrategyConfigRecord:
    return StrategyConfigRecord(
        c.id, c.strategy.name, c.strategy.spec, c.version, c.config, c.config_hash, c.created_at,
        created,
    )  # fmt: skip


class Strategies:
    """Strategy names and their config versions. Get it as ``journal.strategies``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def register(
        self,
        name: str,
        config: Mapping[str, Any],
        *,
        spec: str | None = None,
        description: str | None = None,
    ) -> StrategyConfigRecord:
        """Store ``config`` as the newest version of strategy ``name`` unless identical
        content is already stored (then that version is returned, ``created=False``).

        ``spec`` is the strategy class as configs name it (``momentum`` or
        ``path/to/file.py:ClassName``); it is kept from the first registration and updated
        when a new non-None value is given.
        """
        if not name or len(name) > 128:
            raise ValueError(f"strategy name must be 1-128 characters, not {name!r}")
        clean = jsonable(dict(config))
        digest = config_hash(clean)
        with self._journal.write() as s:
            insert_ignore(
                s,
                Strategy,
                {"name": name, "spec": spec, "description": description, "created_at": utc_now()},
                ["name"],
            )
            strategy = s.scalars(for_update(s, select(Strategy).where(Strategy.name == name))).one()
            if spec is not None:
                strategy.spec = spec
            if description is not None:
                strategy.description = description
            existing = s.scalars(
                select(StrategyConfig).where(
                    StrategyConfig.strategy_id == strategy.id,
                    StrategyConfig.config_hash == digest,
                )
            ).one_or_none()
            if existing is not None:
                return _config_record(existing)
            version = (
                s.execute(
                    select(func.max(StrategyConfig.version)).where(
                        StrategyConfig.strategy_id == strategy.id
                    )
                ).scalar()
                or 0
            ) + 1
            row = StrategyConfig(
                strategy=strategy, version=version, config=clean, config_hash=digest
            )
            s.add(row)
            s.flush()
            return _config_record(row, created=True)

    def list_strategies(self) -> list[StrategyRecord]:
        with self._journal.read() as s:
            latest = (
                select(StrategyConfig.strategy_id, func.max(StrategyConfig.version).label("v"))
                .group_by(StrategyConfig.strategy_id)
                .subquery()
            )
            stmt = (
                select(Strategy, latest.c.v)
                .outerjoin(latest, latest.c.strategy_id == Strategy.id)
                .order_by(Strategy.name)
            )
            return [
                StrategyRecord(st.name, st.spec, st.description, st.created_at, v)
                for st, v in s.execute(stmt)
            ]

    def configs(self, name: str) -> list[StrategyConfigRecord]:
        """All config versions of ``name``, oldest first (empty if unknown)."""
        with self._journal.read() as s:
            stmt = (
                select(StrategyConfig)
                .join(Strategy)
                .where(Strategy.name == name)
                .options(selectinload(StrategyConfig.strategy))
                .order_by(StrategyConfig.version)
            )
            return [_config_record(c) for c in s.scalars(stmt)]

    def latest_config(self, name: str) -> StrategyConfigRecord | None:
        found = self.configs(name)
        return found[-1] if found else None


# ---------------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class RunResultRecord:
    seq: int
    label: str | None
    params: dict[str, Any] | None
    metrics: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A stored run. ``results`` is empty from :meth:`Runs.list_runs` (load it with
    :meth:`Runs.load_run`)."""

    id: int
    kind: str
    strategy: str | None
    strategy_config_id: int | None
    config: dict[str, Any]
    symbols: list[Any] | None
    data_start: datetime | None
    data_end: datetime | None
    code_version: str | None
    metrics: dict[str, Any] | None
    artefacts: dict[str, Any] | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    notes: str | None
    created_at: datetime
    results: tuple[RunResultRecord, ...] = ()


def _run_record(r: Run, with_results: bool) -> RunRecord:
    results = (
        tuple(RunResultRecord(x.seq, x.label, x.params, x.metrics) for x in r.results)
        if with_results
        else ()
    )
    return RunRecord(
        r.id, r.kind, r.strategy, r.strategy_config_id, r.config, r.symbols, r.data_start,
        r.data_end, r.code_version, r.metrics, r.artefacts, r.status, r.started_at,
        r.finished_at, r.notes, r.created_at, results,
    )  # fmt: skip


class Runs:
    """Backtest and research runs. Get it as ``journal.runs``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def save_run(
        self,
        kind: str,
        config: Mapping[str, Any],
        *,
        strategy: str | None = None,
        strategy_config_id: int | None = None,
        data_start: datetime | None = None,
        data_end: datetime | None = None,
        symbols: Iterable[str] | None = None,
        code_version: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        artefacts: Mapping[str, Any] | None = None,
        results: Iterable[Mapping[str, Any]] | None = None,
        status: str = "completed",
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        notes: str | None = None,
    ) -> RunRecord:
        """Store a run with its result rows in one transaction; returns it with its id.

        ``results`` rows are mappings with optional keys ``label``, ``params`` and
        ``metrics`` (e.g. one per parameter set of a search, one per walk-forward fold),
        kept in the given order. ``code_version`` defaults to the installed StratVector
        version. Metrics are JSON: NaN and infinities are stored as null.
        """
        if not kind or len(kind) > 32:
            raise ValueError(f"run kind must be 1-32 characters, not {kind!r}")
        if code_version is None:
            from stratvector import __version__

            code_version = __version__
        rows = []
        for seq, item in enumerate(results or ()):
            unknown = set(item) - {"label", "params", "metrics"}
            if unknown:
                raise ValueError(f"result row {seq}: unknown keys {sorted(unknown)}")
            rows.append(
                RunResult(
                    seq=seq,
                    label=item.get("label"),
                    params=jsonable(item.get("params")),
                    metrics=jsonable(item.get("metrics")),
                )
            )
        run = Run(
            kind=kind,
            strategy=strategy,
            strategy_config_id=strategy_config_id,
            config=jsonable(dict(config)),
            symbols=jsonable(list(symbols)) if symbols is not None else None,
            data_start=opt_utc(data_start, "data_start"),
            data_end=opt_utc(data_end, "data_end"),
            code_version=code_version,
            metrics=jsonable(metrics),
            artefacts=jsonable(artefacts),
            status=status,
            started_at=opt_utc(started_at, "started_at"),
            finished_at=opt_utc(finished_at, "finished_at"),
            notes=notes,
            created_at=utc_now(),
            results=rows,
        )
        with self._journal.write() as s:
            s.add(run)
            s.flush()
            return _run_record(run, with_results=True)

    def load_run(self, run_id: int) -> RunRecord:
        """The run with its result table; :class:`NotFoundError` if there is none."""
        with self._journal.read() as s:
            run = s.scalars(
                select(Run).where(Run.id == run_id).options(selectinload(Run.results))
            ).one_or_none()
            if run is None:
                raise NotFoundError(f"no run with id {run_id} in the journal")
            return _run_record(run, with_results=True)

    def list_runs(
        self,
        *,
        kind: str | None = None,
        strategy: str | None = None,
        since: datetime | None = None,
        limit: int | None = 50,
    ) -> list[RunRecord]:
        """Runs newest first, without their result tables."""
        with self._journal.read() as s:
            stmt = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
            if kind is not None:
                stmt = stmt.where(Run.kind == kind)
            if strategy is not None:
                stmt = stmt.where(Run.strategy == strategy)
            if since is not None:
                stmt = stmt.where(Run.created_at >= to_utc(since, "since"))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_run_record(r, with_results=False) for r in s.scalars(stmt)]
