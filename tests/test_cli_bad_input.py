"""Bad flags and odd files given to the real ``gpulens`` command: one line that says what went
wrong and what to do, exit 2 for usage errors and 1 otherwise, never a traceback."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from monitor.core.errors import StoreUnavailable
from monitor.core.run_records import RunInfo
from monitor.store import Store
from monitor.store.engine import translate_errors
from tests.cli import gpulens

COLLECT = ("collect", "--simulate", "1", "--duration", "1")


def the_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one error line of a failed run (after any log lines): checked, then returned."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("gpulens")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0], result.stderr
    return errors[0]


@pytest.fixture
def not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    return f"sqlite:///{path}"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0.001", "0", "-1", "fast"])
def test_a_bad_interval_is_a_usage_error(tmp_path: Path, value: str) -> None:
    line = the_error(gpulens(tmp_path, *COLLECT, "--interval", value), 2)
    assert "--interval" in line


def test_the_interval_minimum_is_said_in_the_error_and_the_help(tmp_path: Path) -> None:
    assert "at least 0.1" in the_error(gpulens(tmp_path, *COLLECT, "--interval", "0.001"), 2)
    assert "0.1" in gpulens(tmp_path, "collect", "--help").stdout


@pytest.mark.parametrize("flag", ["--duration", "--flush-interval", "--raw-days"])
def test_nan_and_infinity_are_refused_where_a_positive_number_is_asked(
    tmp_path: Path, flag: str
) -> None:
    for value in ("nan", "inf"):
        assert flag in the_error(gpulens(tmp_path, *COLLECT, flag, value), 2)


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_metrics_port_out_of_range_is_a_usage_error(tmp_path: Path, port: str) -> None:
    line = the_error(gpulens(tmp_path, *COLLECT, "--metrics-port", port), 2)
    assert "--metrics-port" in line and "0..65535" in line


def test_a_dashboard_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    assert "--port" in the_error(gpulens(tmp_path, "dashboard", "--port", "99999"), 2)


def test_a_metrics_port_in_use_says_so(tmp_path: Path, busy_port: int) -> None:
    line = the_error(gpulens(tmp_path, *COLLECT, "--metrics-port", str(busy_port)), 2)
    assert f"127.0.0.1:{busy_port}" in line and "--metrics-port" in line


def test_a_database_where_no_file_can_be_made_names_the_file(tmp_path: Path) -> None:
    line = the_error(gpulens(tmp_path, *COLLECT, "--db", "sqlite:////proc/g.db"), 1)
    assert "/proc/g.db" in line and "--db" in line


@pytest.mark.parametrize("verb", [("status",), ("runs",), ("db", "upgrade"), ("dashboard",)])
def test_a_url_that_is_not_a_url_is_a_usage_error(tmp_path: Path, verb: tuple[str, ...]) -> None:
    line = the_error(gpulens(tmp_path, *verb, "--db", "garbage", timeout=60), 2)
    assert "not a database URL" in line and "garbage" in line


@pytest.mark.parametrize(
    "verb",
    [("status",), ("runs",), ("db", "upgrade"), ("dashboard", "--port", "0"), COLLECT],
)
def test_a_file_that_is_not_a_database_is_named(
    tmp_path: Path, not_a_database: str, verb: tuple[str, ...]
) -> None:
    line = the_error(gpulens(tmp_path, *verb, "--db", not_a_database, timeout=60), 1)
    assert "notes.db" in line and "not a SQLite database" in line and "--db" in line


def test_a_read_only_sqlite_error_says_permission_and_which_file(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE t (x)")
        setup.commit()
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(StoreUnavailable) as caught, translate_errors(engine), engine.begin() as c:
        c.execute(text("INSERT INTO t VALUES (1)"))
    message = str(caught.value)
    assert "permission" in message and str(path) in message
    assert "running and reachable" not in message
    engine.dispose()


def test_an_unknown_run_status_lists_the_valid_ones(tmp_path: Path) -> None:
    line = the_error(gpulens(tmp_path, "runs", "--status", "bogus"), 2)
    assert "bogus" in line and "finished" in line and "interrupted" in line


def test_runs_name_matches_underscore_and_percent_literally(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    store = Store.open(url)
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for run_id, name in [("a", "bert_base"), ("b", "bertXbase"), ("c", "50%"), ("d", "500")]:
        store.start_run(RunInfo(run_id=run_id, name=name, host="h", started_at=started))
    store.close()

    def names(text: str) -> list[str]:
        result = gpulens(tmp_path, "runs", "--db", url, "--name", text, "--json")
        assert result.returncode == 0, result.stderr
        return sorted(run["name"] for run in json.loads(result.stdout)["runs"])

    assert names("t_b") == ["bert_base"]
    assert names("50%") == ["50%"]
    assert names("bert") == ["bertXbase", "bert_base"]
    assert names("\\") == []
