"""The SQLite file deleted or replaced under a running collector (issue 11, item 1): noticed at
the next write, said in one line, the file recreated, nothing counted written that is not in it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from monitor.core.errors import StoreError, StoreFileReplaced
from monitor.store import Store
from monitor.store.schema import gpu_samples
from tests.cli import gpulens_running, stop_gpulens
from tests.helpers import facts_records, samples
from tests.test_collector import build, rows, tick

# Only reached when the code under test is broken (a file never recreated), never a speed limit.
GUARD_SECONDS = 120.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def remove_database(path: Path) -> None:
    """What ``rm gpulens.db`` does (its -wal and -shm files stay, as they would)."""
    path.unlink()


def test_a_write_into_a_deleted_file_raises_store_file_replaced(tmp_path) -> None:
    path = tmp_path / "g.db"
    store = Store.open(f"sqlite:///{path}")
    store.write([*facts_records(), *samples("GPU-a", "h1", range(2))])
    remove_database(path)
    with pytest.raises(StoreFileReplaced, match="deleted or replaced") as caught:
        store.write(samples("GPU-a", "h1", range(2, 4)))
    assert isinstance(caught.value, StoreError) and str(path) in str(caught.value)
    store.close()


def test_a_write_into_a_replaced_file_raises_store_file_replaced(tmp_path) -> None:
    path, other = tmp_path / "g.db", tmp_path / "other.db"
    store = Store.open(f"sqlite:///{path}")
    Store.open(f"sqlite:///{other}").close()
    other.replace(path)  # another database moved over it
    with pytest.raises(StoreFileReplaced):
        store.write(facts_records())
    store.close()


def test_the_collector_recreates_a_deleted_file_and_counts_only_what_is_in_a_file(
    tmp_path, caplog
) -> None:
    path = tmp_path / "g.db"
    collector, clock = build(lambda: Store.open(f"sqlite:///{path}"), tmp_path)
    tick(collector, clock, 3)
    collector.flush()
    before = collector.pipeline.counters()
    assert before.written == before.collected > 0
    remove_database(path)
    tick(collector, clock, 2)
    with caplog.at_level(logging.WARNING, logger="monitor.collector.jobs"):
        collector.flush()
    lines = [r.getMessage() for r in caplog.records if "deleted or replaced" in r.getMessage()]
    assert len(lines) == 1 and str(path) in lines[0]
    after = collector.pipeline.counters()
    assert after.collected == after.written + after.dropped + after.pending
    assert after.pending == 0 and after.dropped == 0
    reopened = Store.open(f"sqlite:///{path}")
    # Exactly the two ticks after the deletion (two GPUs each): written again into the new file.
    assert rows(reopened, gpu_samples) == 4
    assert [gpu.uuid for gpu in reopened.gpus()] == ["GPU-a", "GPU-b"]  # its facts stated again
    (status,) = reopened.collectors()
    assert status.written == after.written
    reopened.close()
    collector.stop("test")


def sample_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM gpu_samples").fetchone()[0])
    except sqlite3.Error:  # not created yet, or its schema not there yet
        return 0


def test_deleting_the_file_of_a_running_collector_is_said_and_the_file_recreated(
    tmp_path,
) -> None:
    path = tmp_path / "x.db"
    args = ("collect", "--simulate", "2", "--interval", "0.2", "--flush-interval", "0.5")
    with gpulens_running(tmp_path, *args, "--db", f"sqlite:///{path}") as process:
        wait_until(lambda: sample_count(path) > 0, "the first samples in the file")
        remove_database(path)
        wait_until(lambda: sample_count(path) > 0, "samples in a recreated file")
        output = stop_gpulens(process)
    assert process.returncode == 0, output
    lines = [line for line in output.splitlines() if "deleted or replaced" in line]
    assert len(lines) == 1 and str(path) in lines[0], output
    store = Store.open(f"sqlite:///{path}")
    (status,) = store.collectors()
    assert status.state == "stopped"
    assert status.pending == 0 and status.dropped == 0
    assert status.collected == status.written
    assert len(store.gpus()) == 2 and len(store.latest()) == 2  # `gpulens status` lists them
    store.close()
