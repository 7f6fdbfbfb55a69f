"""Opening a database: which URL, which engine settings, and errors a user can act on.

The store is named by a SQLAlchemy URL: ``--db URL``, else ``GPULENS_DB``, else a SQLite file
in the user's data folder (``$XDG_DATA_HOME/gpulens/gpulens.db``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
)

from monitor.core.errors import ConfigError, StoreError, StoreUnavailable

# SQLite waits this long for another writer (a second collector, the dashboard) before
# giving up; set before journal_mode, which itself needs the lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The gpulens folder under ``$XDG_DATA_HOME`` (default ``~/.local/share``)."""
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gpulens"


def resolve_url(db: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``db`` if given, else ``GPULENS_DB``, else the default SQLite file."""
    if db:
        return db
    if environ.get("GPULENS_DB"):
        return environ["GPULENS_DB"]
    return f"sqlite:///{data_dir(environ) / 'gpulens.db'}"


def describe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


URL_EXAMPLES = "examples: sqlite:///path/gpulens.db, postgresql+psycopg://user@host/db"


def parse_url(url: str | URL, *, source: str = "--db / GPULENS_DB") -> URL:
    """``url`` parsed; else :class:`ConfigError` naming ``source`` (a usage error)."""
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(f"{source}: not a database URL: {str(url)!r} ({URL_EXAMPLES})") from None


def checked_url(url: str, *, source: str) -> str:
    """``url`` if SQLAlchemy can parse it; else :class:`ConfigError` naming ``source``."""
    parse_url(url, source=source)
    return url


def is_shared(url: str) -> bool:
    """Whether another process can open the same store (not an in-memory SQLite one)."""
    return parse_url(url).get_backend_name() != "sqlite" or sqlite_file(url) is not None


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL (``None`` for other databases and in-memory SQLite)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(str(parsed.database)).expanduser()


FileIdentity = tuple[int, int]
"""A file's ``(st_dev, st_ino)``: which file is at a path, whatever its name."""


def file_identity(path: Path) -> FileIdentity | None:
    """The identity of the file at ``path`` now (``None``: nothing there)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def create_store_engine(url: str) -> Engine:
    """An engine with gpulens's settings for the URL's dialect.

    SQLite: the parent folder is created; WAL, ``busy_timeout`` (before ``journal_mode``) and
    ``synchronous=NORMAL`` on every connection. Postgres (psycopg 3): a small pool with
    pre-ping (a restarted server costs one failed checkout, not a crash) and UTC sessions.
    """
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        if parsed.get_backend_name() == "postgresql":
            return _postgres_engine(parsed)
    except NoSuchModuleError as exc:
        raise ConfigError(
            f"no driver for {describe_url(parsed)}: install gpulens[postgres] for Postgres"
        ) from exc
    raise ConfigError(f"unsupported database {describe_url(parsed)}: use SQLite or Postgres")


def _sqlite_engine(url: URL) -> Engine:
    file = sqlite_file(url)
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unusable_file(str(url.database), exc) from None
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def _postgres_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=4,
        max_overflow=4,
        connect_args={"connect_timeout": 5, "options": "-c timezone=UTC"},
    )


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn "cannot connect" driver errors into :class:`StoreUnavailable` with advice."""
    try:
        yield
    except OperationalError as exc:
        reason = _first_line(exc.orig)
        if engine.dialect.name == "sqlite" and _is_permission_problem(reason):
            raise StoreUnavailable(
                f"no permission to write the SQLite database {engine.url.database} ({reason}): "
                "the file and its folder (for the -wal and -shm files beside it) must be "
                "writable by this user, or choose another with --db / GPULENS_DB"
            ) from exc
        raise StoreUnavailable(
            f"cannot use the database {describe_url(engine.url)}: {reason}. "
            "Check that it is running and reachable, or choose another with --db / GPULENS_DB."
        ) from exc
    except DatabaseError as exc:
        if engine.dialect.name == "sqlite" and type(exc) is DatabaseError:
            # sqlite3.DatabaseError itself: "file is not a database", "disk image is
            # malformed"; no retry helps, so not StoreUnavailable (the collector stops).
            raise StoreError(
                f"{engine.url.database} is not a SQLite database ({_first_line(exc.orig)}): "
                "point --db / GPULENS_DB at a gpulens database, or move that file away"
            ) from exc
        if exc.connection_invalidated:
            raise StoreUnavailable(
                f"lost the connection to {describe_url(engine.url)}: {_first_line(exc.orig)}"
            ) from exc
        raise
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(
                f"lost the connection to {describe_url(engine.url)}: {_first_line(exc.orig)}"
            ) from exc
        raise


def unusable_file(database: str, exc: OSError) -> StoreError:
    """The error for a SQLite file (or a file beside it) that cannot be created or opened."""
    return StoreError(
        f"cannot create the SQLite database {database}: {exc.strerror or exc} "
        f"({exc.filename or database}); choose a writable folder with --db / GPULENS_DB"
    )


# What SQLite says when the file or its folder is not writable by this user.
_PERMISSION_REASONS = ("readonly database", "unable to open database file", "permission denied")


def _is_permission_problem(reason: str) -> bool:
    return any(part in reason.lower() for part in _PERMISSION_REASONS)


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip() if error is not None else "unknown error"
    return text.splitlines()[0] if text else type(error).__name__
