"""Shared fixtures.

Real services: ``pg_url`` hands a test a fresh database on the real Postgres server, and
``require_tool`` finds a real binary (promtool, prometheus). Where one is missing the test is
skipped with the reason, unless ``GPULENS_REQUIRE_SERVICES=1`` (set by ``.ci/run``): then it
fails, so CI can never pass by skipping what it claims to test.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import Store

PG_ADMIN_URL = os.environ.get(
    "GPULENS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("GPULENS_REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    """Skip, or fail where CI requires the real service."""
    if services_required():
        pytest.fail(f"{what} (GPULENS_REQUIRE_SERVICES=1, so this is a failure, not a skip)")
    pytest.skip(what)


# Chromium for dash[testing]'s browser fixtures (dash_duo): headless, and quiet on a closed
# network (no update, metrics or first-run traffic). The hook is dash's; optional, so pytest
# runs without dash[testing] too. Headless is set here rather than by `--headless` in addopts,
# which pytest refuses where dash's plugin (and its options) is not installed.
CHROMIUM_ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


@pytest.hookimpl(optionalhook=True)
def pytest_setup_options() -> object:
    """Chrome options for each browser dash[testing] starts: a fresh profile each time."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="gpulens-chromium-")
    atexit.register(shutil.rmtree, profile, ignore_errors=True)
    options.add_argument(f"--user-data-dir={profile}")
    return options


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a new, empty database on the real Postgres server, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gpulens_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        missing(f"Postgres not reachable at {PG_ADMIN_URL}: {exc.orig}")
    url = sqlalchemy.engine.make_url(PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def require_tool():
    """``require_tool("promtool")`` gives the tool's path, or skips/fails with the reason."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            missing(f"{name} not found on PATH (Debian package: prometheus)")
        assert path is not None
        return path

    return find


SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


@pytest.fixture(scope="session")
def shared_traces() -> dict[str, Path]:
    """The real GPU traces of ../shared/traces (name → path); a skip only outside CI."""
    files = sorted(SHARED_TRACES.glob("*.json.gz")) if SHARED_TRACES.is_dir() else []
    if not files:
        missing(f"the shared real traces are not at {SHARED_TRACES}")
    return {file.name: file for file in files}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh SQLite file, and of a fresh database on the real Postgres. A module that
    means SQLite alone overrides this fixture."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gpulens.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store, migrated, on the database of ``db_url``."""
    opened = Store.open(db_url)
    yield opened
    opened.close()


HOOK_SETTINGS = (
    "GPULENS_DB",
    "GPULENS_DISABLE",
    "GPULENS_PROFILE",
    "GPULENS_PROFILE_SCHEDULE",
    "GPULENS_TRACE_DIR",
    "GPULENS_RUN_NAME",
)


@pytest.fixture
def hooks_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No ``GPULENS_*`` hook setting from the caller's environment, the data folder (default
    store, spool) in ``tmp_path``, and no session left open by a failed test. Hook test
    modules use it with ``pytestmark = pytest.mark.usefixtures("hooks_isolated")``."""
    for name in HOOK_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield
    from profiler_hooks.session import active_session  # lazily: only hook tests load the hooks

    leftover = active_session()
    if leftover is not None:
        leftover.close()
