"""``gpulens import`` is all or nothing (issue 11, item 5): a trace whose storing fails leaves
no run, no window, no steps and no trace copy behind, says so in one line, and a retry works.

The fault is a real one raised by the database: a trigger that refuses a row partway through
the import (a kernel statistic, the last rows written; or the second rank's run), on SQLite
and on the real Postgres.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.core.errors import GpulensError, StoreError, TraceError
from monitor.services.imports import import_trace
from monitor.store import Store
from monitor.store.schema import kernel_stats, profiler_windows, run_steps, runs, step_breakdowns
from tests.cli import gpulens
from tests.trace_gen import write_synthetic_trace

FAULT = "gpulens_test_fault"


def add_fault(store: Store, table: str, when: str = "") -> None:
    """A trigger that refuses every insert into ``table`` (where ``when`` holds, SQL on NEW)."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            condition = f"WHEN {when}" if when else ""
            conn.exec_driver_sql(
                f"CREATE TRIGGER {FAULT} BEFORE INSERT ON {table} {condition} "
                "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE FUNCTION {FAULT}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
            )
            condition = f"WHEN ({when})" if when else ""
            conn.exec_driver_sql(
                f"CREATE TRIGGER {FAULT} BEFORE INSERT ON {table} FOR EACH ROW {condition} "
                f"EXECUTE FUNCTION {FAULT}()"
            )


def remove_fault(store: Store, table: str) -> None:
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER {FAULT}")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER {FAULT} ON {table}")
            conn.exec_driver_sql(f"DROP FUNCTION {FAULT}()")


def row_counts(store: Store) -> dict[str, int]:
    tables = (runs, run_steps, profiler_windows, step_breakdowns, kernel_stats)
    with store.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in tables
        }


NOTHING = {name: 0 for name in ("runs", "run_steps", "profiler_windows")} | {
    "step_breakdowns": 0,
    "kernel_stats": 0,
}


def a_trace(path: Path, *, rank: int = 0) -> Path:
    write_synthetic_trace(path, steps=3, kernels_per_step=4, rank=rank, seed=rank)
    return path


def two_ranks(folder: Path) -> Path:
    folder.mkdir()
    a_trace(folder / "rank0.json", rank=0)
    a_trace(folder / "rank1.json", rank=1)
    return folder


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def test_a_fault_at_the_last_write_stores_nothing(store: Store, tmp_path: Path) -> None:
    trace = a_trace(tmp_path / "t.json")
    copies = tmp_path / "copies"
    add_fault(store, "kernel_stats")
    with pytest.raises(StoreError, match="injected fault"):
        import_trace(store, trace, "atomic", copies=copies)
    assert row_counts(store) == NOTHING
    assert store.runs() == []
    assert files_under(copies) == []
    remove_fault(store, "kernel_stats")
    (imported,) = import_trace(store, trace, "atomic", copies=copies)
    (run,) = store.runs()
    assert run.run_id == imported.run_id and run.status == "imported" and run.steps == 3
    (window,) = store.windows(run.run_id)
    assert window.status == "analyzed"
    assert len(files_under(copies)) == 1


def test_a_fault_on_the_second_rank_leaves_no_first_rank(store: Store, tmp_path: Path) -> None:
    folder = two_ranks(tmp_path / "ranks")
    add_fault(store, "runs", "NEW.rank = 1")
    with pytest.raises(StoreError):
        import_trace(store, folder, "two", copies=tmp_path / "copies")
    assert row_counts(store) == NOTHING
    assert files_under(tmp_path / "copies") == []
    remove_fault(store, "runs")
    imported = import_trace(store, folder, "two", copies=tmp_path / "copies")
    assert sorted(item.rank for item in imported) == [0, 1]
    assert {run.status for run in store.runs()} == {"imported"}
    assert row_counts(store)["profiler_windows"] == 2


def test_a_rank_that_cannot_be_analyzed_stores_nothing(store: Store, tmp_path: Path) -> None:
    folder = two_ranks(tmp_path / "ranks")
    text = (folder / "rank1.json").read_text()
    (folder / "rank1.json").write_text(text[: len(text) // 2])
    with pytest.raises(TraceError):
        import_trace(store, folder, "cut", copies=tmp_path / "copies")
    assert row_counts(store) == NOTHING
    assert files_under(tmp_path / "copies") == []


def test_a_run_name_too_long_is_a_store_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(GpulensError, match="255"):
        import_trace(store, a_trace(tmp_path / "t.json"), "x" * 300, copies=tmp_path / "c")
    assert row_counts(store) == NOTHING


def test_gpulens_import_that_fails_is_one_line_and_a_retry_works(
    db_url: str, tmp_path: Path
) -> None:
    trace = a_trace(tmp_path / "t.json")
    store = Store.open(db_url)
    try:
        add_fault(store, "kernel_stats")
        failed = gpulens(tmp_path, "import", str(trace), "--run", "cli-atomic", "--db", db_url)
        assert failed.returncode == 1, failed.stderr
        assert "Traceback" not in failed.stderr
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gpulens: "), failed.stderr
        assert "injected fault" in lines[0]
        assert failed.stdout == ""
        assert row_counts(store) == NOTHING
        assert files_under(tmp_path / "data") == []
        remove_fault(store, "kernel_stats")
        retried = gpulens(tmp_path, "import", str(trace), "--run", "cli-atomic", "--db", db_url)
        assert retried.returncode == 0, retried.stderr
        assert "imported rank 0" in retried.stdout
        (run,) = store.runs()
        assert run.name == "cli-atomic" and run.steps == 3
        (window,) = store.windows(run.run_id)
        assert window.status == "analyzed"
    finally:
        store.close()
