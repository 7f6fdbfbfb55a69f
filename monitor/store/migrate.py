"""Schema upgrades through Alembic (scripts in the top-level ``migrations`` package).

The schema is created and upgraded only here. Commands that write upgrade the database
themselves; commands that only read call :func:`check` and say what to run.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

import migrations
from monitor.core.errors import SchemaOutOfDate
from monitor.store.engine import describe_url, translate_errors, unusable_file

# Any fixed 64-bit number: every collector that starts against the same Postgres database
# takes this advisory lock, so ten collectors starting at once create the schema once.
_PG_MIGRATION_LOCK = 7_201_563_405_817


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with translate_errors(engine), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest). Processes that upgrade the
    same database at once take turns (a Postgres advisory lock; a lock file beside a SQLite
    file), so the schema is created once: the ranks of one job all open the store together."""
    with _sqlite_file_lock(engine), translate_errors(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        command.upgrade(alembic_config(conn), revision)


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    try:
        handle = open(f"{database}.migrate-lock", "a+b")  # noqa: SIM115  # closed below
    except OSError as exc:
        raise unusable_file(database, exc) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDate` unless the database is at the newest revision."""
    current = current_revision(engine)
    if current == head_revision():
        return
    where = describe_url(engine.url)
    state = "has no gpulens tables yet" if current is None else f"is at revision {current}"
    raise SchemaOutOfDate(f"the database {where} {state}; run: gpulens db upgrade --db '{where}'")
