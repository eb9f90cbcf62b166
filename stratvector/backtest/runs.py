"""Saved runs: a backtest, search or walk-forward run as a folder of JSON and Parquet.

Layout of a runs directory::

    runs/
      20240501T120000.123456Z-backtest-1a2b3c4d/
        run.json          kind, created_at, config, symbols, data range, metrics,
                          code version, the table index, extra, journal run id
        equity.parquet    one Parquet file per table (index kept)
        trades.parquet
      .tmp-...            a save in progress or abandoned by a crash (readers skip it)

The folder name is the UTC creation time (so names sort by age), the kind, and the first
8 hex digits of the SHA-256 of the config's canonical JSON (same config, same suffix).

Atomicity: a save writes and fsyncs everything into a hidden temporary sibling folder,
then renames it into place (``os.replace``), so a reader sees a whole run or none; a
failed save removes its temporary folder. When a journal is given the run is also
recorded there with the folder as its artefact (after the rename, so the path exists);
``run.json`` then gets the journal's run id, rewritten atomically.

JSON: NaN and infinities become ``null``; times are ISO 8601 in UTC (naive times are
taken as UTC). When loaded, a ``null`` metric is NaN again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pandas as pd

from stratvector.errors import StratVectorError
from stratvector.fsutil import atomic_write_text

if TYPE_CHECKING:
    from stratvector.backtest.result import BacktestResult
    from stratvector.store import Journal

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
FORMAT = 1
TMP_PREFIX = ".tmp-"
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TABLE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


class RunStoreError(StratVectorError):
    """A run cannot be saved or read (bad input, unreadable or corrupt folder)."""


@dataclass(frozen=True)
class RunInfo:
    """What ``run.json`` says about a saved run; ``id`` is its folder name."""

    id: str
    path: Path
    kind: str
    created_at: datetime
    config: dict[str, Any]
    symbols: tuple[str, ...]
    data_start: pd.Timestamp | None
    data_end: pd.Timestamp | None
    metrics: dict[str, float]
    code_version: str
    git_commit: str | None = None
    strategy: str | None = None
    tables: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    journal_run_id: int | None = None


class LoadedRun:
    """A saved run: its :class:`RunInfo` and its tables, each read on first use and cached."""

    def __init__(self, info: RunInfo) -> None:
        self.info = info
        self._cache: dict[str, pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"LoadedRun({self.info.id!r}, tables={list(self.info.tables)})"

    @property
    def tables(self) -> Mapping[str, pd.DataFrame]:
        """The tables by name, as a lazy mapping (reading one does not read the others)."""
        return _LazyTables(self)

    def table(self, name: str) -> pd.DataFrame:
        if name not in self.info.tables:
            raise RunStoreError(
                f"run {self.info.id} has no table {name!r}; it has {list(self.info.tables)}"
            )
        if name not in self._cache:
            file = self.info.path / f"{name}.parquet"
            try:
                self._cache[name] = pd.read_parquet(file)
            except (OSError, ValueError) as exc:
                raise RunStoreError(f"cannot read table {name!r} from {file}: {exc}") from exc
        return self._cache[name]


class _LazyTables(Mapping[str, pd.DataFrame]):
    def __init__(self, run: LoadedRun) -> None:
        self._run = run

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._run.info.tables:
            raise KeyError(name)
        return self._run.table(name)

    def __contains__(self, name: object) -> bool:
        return name in self._run.info.tables

    def __iter__(self) -> Iterator[str]:
        return iter(self._run.info.tables)

    def __len__(self) -> int:
        return len(self._run.info.tables)


def save_run(
    kind: str,
    *,
    config: Mapping[str, Any],
    symbols: Any = (),
    data_start: Any = None,
    data_end: Any = None,
    metrics: Mapping[str, Any] | None = None,
    tables: Mapping[str, pd.DataFrame | pd.Series] | None = None,
    runs_dir: str | os.PathLike[str] = Path("runs"),
    journal: Journal | None = None,
    code_version: str | None = None,
    extra: Mapping[str, Any] | None = None,
    strategy: str | None = None,
) -> RunInfo:
    """Save a run under ``runs_dir`` atomically (see the module docstring) and return it.

    ``kind`` is lowercase letters, digits and ``_`` (``backtest``, ``optimize``,
    ``walk_forward``...). ``tables`` maps names to DataFrames with string column names (a
    Series is saved as a one-column frame named after it, ``value`` if unnamed); an
    index's ``freq`` is not kept. ``code_version`` defaults to
    ``stratvector.__version__`` plus the git commit of the package's checkout, if any
    (``0.1.0+g1a2b3c4d5e6f``, ``.dirty`` appended when tracked files differ from it).
    ``journal`` (an open :class:`~stratvector.store.Journal`) also records the run there.
    """
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise RunStoreError(f"run kind must match {_KIND.pattern} (e.g. 'backtest'), not {kind!r}")
    frames = _check_tables(tables or {})
    symbol_list = (
        [symbols] if isinstance(symbols, str) else list(() if symbols is None else symbols)
    )
    commit = None
    if code_version is None:
        code_version, commit = code_version_info()
    created = datetime.now(UTC)
    doc = _plain(
        {
            "format": FORMAT,
            "kind": kind,
            "created_at": created,
            "strategy": strategy,
            "config": dict(config),
            "symbols": [str(s) for s in symbol_list],
            "data_start": _utc(data_start, "data_start"),
            "data_end": _utc(data_end, "data_end"),
            "metrics": dict(metrics or {}),
            "code_version": code_version,
            "git_commit": commit,
            "tables": {
                name: {"file": f"{name}.parquet", "rows": len(f), "columns": list(f.columns)}
                for name, f in frames.items()
            },
            "extra": dict(extra or {}),
            "journal_run_id": None,
        }
    )
    digest = hashlib.sha256(json.dumps(doc["config"], sort_keys=True).encode()).hexdigest()
    name = f"{created:%Y%m%dT%H%M%S.%f}Z-{kind}-{digest[:8]}"
    root = Path(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=root))
    except OSError as exc:
        raise RunStoreError(f"cannot create a run in {root}: {exc}") from exc
    try:
        for table, frame in frames.items():
            try:
                _write_parquet(frame, tmp / f"{table}.parquet")
            except (OSError, ValueError, TypeError, NotImplementedError) as exc:
                raise RunStoreError(f"cannot write table {table!r} of the run: {exc}") from exc
        _write_json(tmp / RUN_FILE, doc)
        _fsync_dir(tmp)
        final = _publish(tmp, root, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = _info(final, doc)
    return mirror_run(info, journal) if journal is not None else info


def mirror_run(run: RunInfo | str | os.PathLike[str], journal: Journal) -> RunInfo:
    """Record a saved run in the journal (artefact: its folder) and note the journal's
    run id in its ``run.json``. ``save_run(journal=...)`` calls this; call it yourself
    to record a run whose journal write failed."""
    info = run if isinstance(run, RunInfo) else load_run(run).info
    try:
        record = journal.runs.save_run(
            info.kind,
            info.config,
            strategy=info.strategy,
            data_start=_datetime(info.data_start),
            data_end=_datetime(info.data_end),
            symbols=list(info.symbols),
            code_version=info.code_version,
            metrics=info.metrics,
            artefacts={
                "path": str(info.path.resolve()),
                "run_id": info.id,
                "tables": {t: f"{t}.parquet" for t in info.tables},
            },
        )
    except Exception as exc:
        raise RunStoreError(
            f"run saved at {info.path} but not recorded in the journal ({exc}); "
            "record it later with mirror_run(path, journal)"
        ) from exc
    doc = json.loads((info.path / RUN_FILE).read_text(encoding="utf-8"))
    doc["journal_run_id"] = int(record.id)
    _write_json(info.path / RUN_FILE, doc)
    return replace(info, journal_run_id=int(record.id))


def load_run(path: str | os.PathLike[str]) -> LoadedRun:
    """The run saved in folder ``path`` (or its ``run.json``); tables load on first use."""
    folder = Path(path)
    if folder.name == RUN_FILE:
        folder = folder.parent
    try:
        doc = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunStoreError(f"no saved run in {folder}: {RUN_FILE} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunStoreError(f"corrupt run {folder}: cannot read {RUN_FILE} ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise RunStoreError(f"run {folder}: unknown {RUN_FILE} format {found!r}, need {FORMAT}")
    try:
        return LoadedRun(_info(folder, doc))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunStoreError(f"corrupt run {folder}: bad {RUN_FILE} ({exc!r})") from exc


def list_runs(
    runs_dir: str | os.PathLike[str] = Path("runs"), kind: str | None = None
) -> list[RunInfo]:
    """Saved runs in ``runs_dir``, newest first, optionally of one ``kind``.

    Temporary folders of saves in progress are skipped; a folder that cannot be read is
    skipped with a logged warning. A missing ``runs_dir`` has no runs.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            info = load_run(child).info
        except RunStoreError as exc:
            logger.warning("skipping run folder %s: %s", child, exc)
            continue
        if kind is None or info.kind == kind:
            found.append(info)
    return sorted(found, key=lambda i: (i.created_at, i.id), reverse=True)


def backtest_run_payload(
    result: BacktestResult,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """``(metrics, tables)`` to save a backtest: its metrics; tables ``equity`` (equity,
    returns and cash per bar), ``trades`` and ``orders``."""
    equity = pd.DataFrame(
        {"equity": result.equity, "returns": result.returns, "cash": result.cash},
        index=result.index,
    )
    tables = {"equity": equity, "trades": result.trades, "orders": result.orders}
    return dict(result.metrics), tables


def code_version_info(package_dir: Path | None = None) -> tuple[str, str | None]:
    """``(code version, git commit or None)`` of the installed StratVector.

    The commit is found with ``git rev-parse HEAD`` in the package folder when that
    folder is tracked in a git checkout; no git, no checkout or a failure gives None.
    """
    from stratvector import __version__

    folder = package_dir or Path(__file__).resolve().parent.parent
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        return __version__, None
    if _git(folder, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return __version__, None  # e.g. installed inside some other repository's tree
    dirty = _git(folder, "--no-optional-locks", "diff", "--quiet", "HEAD", "--") is None
    return f"{__version__}+g{commit[:12]}{'.dirty' if dirty else ''}", commit


# ---------------------------------------------------------------------- helpers


def _git(folder: Path, *args: str) -> str | None:
    """Stripped stdout of a read-only git command in ``folder``, None on any failure."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _check_tables(tables: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    frames = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not _TABLE.match(name):
            raise RunStoreError(f"table name {name!r}: use letters, digits, '_', '-', '.'")
        if isinstance(table, pd.Series):
            table = table.to_frame("value" if table.name is None else str(table.name))
        frame = table
        if not isinstance(frame, pd.DataFrame):
            raise RunStoreError(f"table {name!r} must be a DataFrame, not {type(table).__name__}")
        bad = [c for c in frame.columns if not isinstance(c, str)]
        if bad:
            raise RunStoreError(
                f"table {name!r}: Parquet needs string column names, got {bad[:5]}; rename them"
            )
        frames[name] = frame
    return frames


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, engine="pyarrow", index=True)
    _fsync_file(path)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name == "posix":  # directories cannot be opened for fsync on Windows
        _fsync_file(path)


def _publish(tmp: Path, root: Path, name: str) -> Path:
    """Rename ``tmp`` to ``root/name`` (``name-2``... if taken); fsync ``root``."""
    for n in range(1, 100):
        final = root / (name if n == 1 else f"{name}-{n}")
        if final.exists():
            continue
        try:
            os.replace(tmp, final)
        except OSError:
            if final.exists():  # another writer took the name meanwhile
                continue
            raise
        _fsync_dir(root)
        return final
    raise RunStoreError(f"cannot find a free run folder name for {name} in {root}")


def _info(folder: Path, doc: dict[str, Any]) -> RunInfo:
    metrics = {str(k): math.nan if v is None else v for k, v in (doc.get("metrics") or {}).items()}
    journal_id = doc.get("journal_run_id")
    return RunInfo(
        id=folder.name,
        path=folder,
        kind=str(doc["kind"]),
        created_at=datetime.fromisoformat(doc["created_at"]).astimezone(UTC),
        config=dict(doc.get("config") or {}),
        symbols=tuple(doc.get("symbols") or ()),
        data_start=_utc(doc.get("data_start"), "data_start"),
        data_end=_utc(doc.get("data_end"), "data_end"),
        metrics=metrics,
        code_version=str(doc.get("code_version") or ""),
        git_commit=doc.get("git_commit"),
        strategy=doc.get("strategy"),
        tables=tuple(doc.get("tables") or ()),
        extra=dict(doc.get("extra") or {}),
        journal_run_id=None if journal_id is None else int(journal_id),
    )


def _utc(value: Any, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise RunStoreError(f"{name} must be a time, got {value!r}") from exc
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _datetime(ts: pd.Timestamp | None) -> datetime | None:
    return None if ts is None else ts.to_pydatetime()


def _plain(value: Any) -> Any:
    """``value`` as JSON values: NaN/inf -> None, times -> ISO 8601, numpy -> Python."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [
            _plain(v)
            for v in (sorted(value, key=repr) if isinstance(value, set | frozenset) else value)
        ]
    if hasattr(value, "model_dump"):  # pydantic models (configs)
        return _plain(value.model_dump(mode="json"))
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _plain(value.tolist())
    raise RunStoreError(f"cannot save {type(value).__name__} as JSON: {value!r}")
