"""Alembic environment: runs on the connection gpulens hands over (see monitor.store.migrate)."""

from __future__ import annotations

from alembic import context

from monitor.store.engine import create_store_engine
from monitor.store.schema import metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the plain `alembic` command line, e.g. for `alembic revision --autogenerate`
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x is not used); see README: Migrations")
    with create_store_engine(url).begin() as conn:
        _run(conn)
