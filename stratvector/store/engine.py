"""Opening the journal: URL handling, engine set-up, migrations, transactions.

``Journal(url)`` does no I/O. :meth:`Journal.open` (or ``with Journal(url) as j:``)
connects, configures SQLite, upgrades the schema to the newest migration, and makes the
repositories usable::

    with open_journal("sqlite:////var/lib/stratvector/journal.db") as journal:
        order = journal.orders.record_intent(...)

Backends: SQLite by default (one file, WAL mode, ``synchronous=FULL``, foreign keys on,
a busy timeout) and PostgreSQL by URL (``postgresql://`` and ``postgres://`` URLs use
the psycopg 3 driver). Any other backend is refused.

Concurrency contract: one writer process plus any number of readers (dashboard, CLI)
on SQLite WAL; several writers are safe too (SQLite serializes them with
``BEGIN IMMEDIATE`` and the busy timeout, PostgreSQL with row locks). Every repository
call is one transaction, committed before the call returns; a call that raises has
committed nothing.

Calls block for as long as the database takes (a SQLite commit with ``synchronous=FULL``
is one fsync, about a millisecond on SSDs); from an asyncio loop, run them with
``asyncio.to_thread`` if that matters. A :class:`Journal` may be shared by threads.

A journal that cannot be opened raises :class:`~stratvector.store.errors.JournalError`
with one message naming the URL (password masked) and the cause, and leaves nothing
behind: no SQLite file is created in a missing folder, and a failed migration rolls back
as a whole.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from stratvector.store import migrate
from stratvector.store._types import dumps
from stratvector.store.control import Control
from stratvector.store.errors import JournalError, JournalUnavailableError
from stratvector.store.events import Events
from stratvector.store.fills import Fills
from stratvector.store.migrate import MigrationError
from stratvector.store.orders import Orders
from stratvector.store.reports import Reports
from stratvector.store.runs import Runs, Strategies
from stratvector.store.snapshots import Snapshots

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
DEFAULT_BUSY_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0

_WRITE = "stratvector_write"  # execution option: this transaction will write


def default_journal_path() -> Path:
    """``$XDG_STATE_HOME/stratvector/journal.db`` (``~/.local/state/...`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "stratvector" / "journal.db"


def mask_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***`` (also for unparsable text)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def resolve_url(url: str | None = None, path: str | os.PathLike[str] | None = None) -> URL:
    """The SQLAlchemy URL for a journal given as ``url``, ``path``, or neither (default file).

    No I/O. A ``url`` without ``://`` is taken as a file path. ``postgresql://`` and
    ``postgres://`` select the psycopg 3 driver. Raises :class:`JournalError` for an
    unparsable URL or an unsupported backend.
    """
    if url is not None and path is not None:
        raise JournalError("give the journal as a URL or as a path, not both")
    if url is None or "://" not in url:
        file = Path(path if path is not None else url) if (path or url) else None
        if file is None:
            file = default_journal_path()
        return URL.create("sqlite", database=str(file.expanduser().absolute()))
    text = url
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise JournalError(
            f"cannot open journal {mask_url(url)}: not a database URL ({exc}); "
            "expected sqlite:///path/to/journal.db or postgresql://user:password@host/db"
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise JournalError(
            f"cannot open journal {mask_url(parsed)}: backend {backend!r} is not supported; "
            "use sqlite:///path/to/journal.db or postgresql://user:password@host/db"
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Journal:
    """The journal database. Inert until :meth:`open`; then a factory of transactions.

    Repositories (all methods are one committed transaction each):

    - :attr:`orders` -- intents, submissions, status history, pending intents
    - :attr:`fills` -- executions, commissions, positions from fills
    - :attr:`strategies` and :attr:`runs` -- strategy configs, backtest/search runs
    - :attr:`events` -- connects, disconnects, limit breaches, kill switch
    - :attr:`control` -- the persisted halt (kill switch) flag
    - :attr:`snapshots` -- position and account snapshots
    - :attr:`reports` -- risk and drift reports

    ``busy_timeout`` (seconds) is how long a SQLite writer waits for another writer;
    ``connect_timeout`` bounds a PostgreSQL connection attempt. ``migrate=False`` opens
    without upgrading and fails if the schema is not at the newest revision (for
    read-only users that must not change the schema under a running daemon).
    ``autocheckpoint=False`` (SQLite) turns off SQLite's automatic WAL checkpoint on this
    journal's connections: the owner runs :meth:`checkpoint` when it suits it (the
    trader: between decisions, never inside a decision's commit).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        echo: bool = False,
        autocheckpoint: bool = True,
    ) -> None:
        self._raw_url, self._raw_path = url, path
        self._autocheckpoint = autocheckpoint
        self._url: URL | None = None
        self._migrate = migrate
        self._busy_timeout = busy_timeout
        self._connect_timeout = connect_timeout
        self._echo = echo
        self._engine: Engine | None = None
        self._read: sessionmaker[Session] | None = None
        self._write: sessionmaker[Session] | None = None
        # SQLite: one pooled connection kept checked out for sqlite_write (see there)
        self._kept: Any = None
        self._kept_lock = threading.Lock()

        self.orders = Orders(self)
        self.fills = Fills(self)
        self.strategies = Strategies(self)
        self.runs = Runs(self)
        self.events = Events(self)
        self.control = Control(self)
        self.snapshots = Snapshots(self)
        self.reports = Reports(self)

    # ------------------------------------------------------------------ identity

    @property
    def url(self) -> str:
        """The journal URL with the password masked (safe to log and show)."""
        if self._url is not None:
            return mask_url(self._url)
        if self._raw_url is not None:
            return mask_url(self._raw_url)
        return f"sqlite:///{self._raw_path}" if self._raw_path else "(default journal)"

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql`` (resolves the URL; no I/O)."""
        return self._resolved().get_backend_name()

    @property
    def dialect(self) -> Dialect:
        """The SQLAlchemy dialect of the open journal."""
        return self._engine_or_raise().dialect

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"Journal({self.url!r}, {state})"

    def _resolved(self) -> URL:
        if self._url is None:
            self._url = resolve_url(self._raw_url, self._raw_path)
        return self._url

    # ------------------------------------------------------------------ open / close

    def open(self) -> Self:
        """Connect, configure and migrate. Idempotent; raises :class:`JournalError`."""
        if self._engine is not None:
            return self
        url = self._resolved()
        if self._raw_url is None and self._raw_path is None:
            default_journal_path().parent.mkdir(parents=True, exist_ok=True)  # our own folder
        if url.get_backend_name() == "sqlite":
            _check_sqlite_target(url)
        engine = self._create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    self._prepare_schema(conn)
        except JournalError:
            engine.dispose()
            raise
        except (SQLAlchemyError, MigrationError, OSError) as exc:
            engine.dispose()
            raise JournalError(
                f"cannot open journal {mask_url(url)}: {_describe(exc, url)}"
            ) from exc
        self._engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(
            bind=engine.execution_options(**{_WRITE: True}), expire_on_commit=False
        )
        return self

    def close(self) -> None:
        """Release all connections. The journal may be opened again."""
        with self._kept_lock:
            if self._kept is not None:
                self._kept.close()  # back to the pool, which the dispose below closes
                self._kept = None
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._read = self._write = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        with self._engine_or_raise().connect() as conn:
            return migrate.current_revision(conn)

    def sqlite_journal_mode(self) -> str | None:
        """SQLite's ``journal_mode`` (``wal`` for file journals); ``None`` on PostgreSQL."""
        if self.backend != "sqlite":
            return None
        with self._engine_or_raise().connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a write transaction, committed when the block exits normally."""
        if self._write is None:
            raise JournalError(f"journal {self.url} is not open; call open() first")
        with self._translate(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def sqlite_write(self) -> Iterator[Any]:
        """SQLite's own connection (``sqlite3``) in a ``BEGIN IMMEDIATE`` transaction,
        committed when the block exits normally, rolled back if it raises.

        For the one write whose SQLAlchemy overhead costs more than the write itself and
        which sits between a decision and its orders: a bar's intents (see
        :func:`~stratvector.store._sql.sqlite_insert_ignore_many`). The connection comes
        from the engine's pool, so it has the journal's pragmas (WAL, ``synchronous=FULL``,
        foreign keys, busy timeout). Driver errors are raised as SQLAlchemy's, translated
        as :meth:`write` translates them. SQLite journals only.

        The connection is kept checked out between calls (a pool checkout and its reset on
        return cost a tenth of a decision's commit); a call made while another thread is
        inside this one takes a connection from the pool instead. A transaction that
        could not be ended (a failed ``COMMIT`` and ``ROLLBACK``) discards the kept
        connection."""
        engine = self._engine_or_raise()
        if engine.dialect.name != "sqlite":
            raise JournalError(f"journal {self.url} is not SQLite")
        kept = self._kept_lock.acquire(blocking=False)
        pooled = None
        try:
            if kept:
                if self._kept is None:
                    self._kept = engine.raw_connection()
                pooled = self._kept
            else:
                pooled = engine.raw_connection()
            conn = pooled.driver_connection
            with self._translate(), _wrap_driver_errors(engine):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        _rollback(conn)
                    if kept and conn.in_transaction:  # not ended: never reuse it
                        self._kept = None
                        pooled.invalidate()
                    raise
        finally:
            if kept:
                self._kept_lock.release()
            elif pooled is not None:
                pooled.close()  # back to the pool, which rolls back anything left open

    def checkpoint(self) -> tuple[int, int, int] | None:
        """Copy the SQLite WAL's committed pages into the database file (a ``PASSIVE``
        checkpoint: it waits for no reader or writer, and writers may commit while it
        runs); ``(busy, frames in the WAL, frames checkpointed)``, as SQLite reports them.
        None on other backends (nothing to do)."""
        engine = self._engine_or_raise()
        if engine.dialect.name != "sqlite":
            return None
        pooled = engine.raw_connection()
        try:
            with self._translate(), _wrap_driver_errors(engine):
                row = pooled.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            pooled.close()
        return int(row[0]), int(row[1]), int(row[2])

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (one consistent snapshot on SQLite WAL)."""
        if self._read is None:
            raise JournalError(f"journal {self.url} is not open; call open() first")
        with self._translate(), self._read() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ internals

    def _engine_or_raise(self) -> Engine:
        if self._engine is None:
            raise JournalError(f"journal {self.url} is not open; call open() first")
        return self._engine

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_unavailable(exc):
                raise JournalUnavailableError(
                    f"journal {self.url} unavailable: {_describe(exc, self._resolved())}; "
                    "nothing was written by this call"
                ) from exc
            raise

    def _create_engine(self, url: URL) -> Engine:
        kwargs: dict[str, Any] = {"echo": self._echo, "json_serializer": dumps}
        if url.get_backend_name() == "sqlite":
            memory = url.database in (None, "", ":memory:")
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": self._busy_timeout}
            if memory:
                kwargs["poolclass"] = StaticPool
        else:
            args: dict[str, Any] = {}
            if "connect_timeout" not in url.query:
                args["connect_timeout"] = max(1, round(self._connect_timeout))
            if "application_name" not in url.query:
                args["application_name"] = "stratvector"
            kwargs["connect_args"] = args
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(url, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise JournalError(f"cannot open journal {mask_url(url)}: {exc}") from exc
        if url.get_backend_name() == "sqlite":
            _configure_sqlite(engine, self._busy_timeout, self._autocheckpoint)
        return engine

    def _prepare_schema(self, conn: Connection) -> None:
        migrate.lock_schema(conn)  # concurrent first opens: one migrates, the others wait
        current = migrate.current_revision(conn)
        head = migrate.HEAD
        if current == head:
            return
        if current is not None and not migrate.is_known_revision(current):
            raise JournalError(
                f"journal {mask_url(self._resolved())} is at schema revision {current}, "
                f"which this StratVector version does not know (newest known: {head}); "
                "it was written by a newer StratVector: upgrade StratVector"
            )
        if not self._migrate:
            raise JournalError(
                f"journal {mask_url(self._resolved())} is at schema revision "
                f"{current or '(empty)'}, this StratVector needs {head}; open it once "
                "with migrations enabled (the daemon does) to upgrade it"
            )
        migrate.upgrade_to_head(conn)


def open_journal(
    url: str | None = None,
    path: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Journal:
    """Open (connect, configure, migrate) and return a :class:`Journal`.

    ``url`` is a SQLAlchemy URL (``sqlite:///...`` or ``postgresql://...``) or a file
    path; ``path`` a SQLite file; neither means :func:`default_journal_path`. ``options``
    go to :class:`Journal`. Close it with :meth:`Journal.close` or use it as a context
    manager.
    """
    return Journal(url, path=path, **options).open()


# ---------------------------------------------------------------------- SQLite set-up


def _check_sqlite_target(url: URL) -> None:
    database = url.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return
    file = Path(database)
    if not file.parent.is_dir():
        raise JournalError(
            f"cannot open journal {mask_url(url)}: folder {file.parent} does not exist; "
            "create it or point the journal at an existing folder"
        )
    if file.is_dir():
        raise JournalError(f"cannot open journal {mask_url(url)}: {file} is a folder, not a file")


def _configure_sqlite(engine: Engine, busy_timeout: float, autocheckpoint: bool = True) -> None:
    """Per-connection pragmas, and explicit BEGIN (IMMEDIATE for writers)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN: pysqlite's implicit
        # transactions would otherwise defer BEGIN and break transactional DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed intent survives power loss, not only a process crash.
            cursor.execute("PRAGMA synchronous = FULL")
            if not autocheckpoint:  # the owner checkpoints (Journal.checkpoint)
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        # IMMEDIATE takes the write lock up front, so a writer waits (busy timeout) instead
        # of failing when another writer committed after its read snapshot began.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# ---------------------------------------------------------------------- error text


def _describe(exc: BaseException, url: URL) -> str:
    """One line on why a database call failed, with the password scrubbed."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split()) or type(orig).__name__
    text = text.split(" [SQL:")[0]
    if url.password:
        text = text.replace(str(url.password), "***")
    if url.get_backend_name() == "postgresql" and "connect" in text.lower() and "?" not in text:
        text += " (check host, port, user, password and that the server is running)"
    return text


def _rollback(conn: Any) -> None:
    """Roll back a driver connection's open transaction; a failure is left for the
    caller to see in ``conn.in_transaction`` (the error being raised is the one that
    matters)."""
    with suppress(Exception):
        conn.execute("ROLLBACK")


@contextmanager
def _wrap_driver_errors(engine: Engine) -> Iterator[None]:
    """Raise the driver's errors as SQLAlchemy's (``IntegrityError``, ``OperationalError``
    ...), as a SQLAlchemy call would."""
    dbapi = engine.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc


def _is_unavailable(exc: DBAPIError) -> bool:
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return any(
        s in text
        for s in ("locked", "busy", "connection", "server closed", "terminating", "timeout")
    )
