"""The hooks' store sink: findings computed after the last window's analysis (never in the
training process), and a Postgres whose schema is behind checked, never migrated, with the
run's records kept in the spool. Real CPU PyTorch loops, real SQLite and a real Postgres."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
import torch
from cli import gpulens
from torch.utils.data import DataLoader, Dataset

import profiler_hooks
from dashboard.pages import run as run_page
from monitor.core.errors import SchemaOutOfDate, StoreError
from monitor.core.run_records import RunInfo
from monitor.store import Store, migrate
from monitor.store.engine import create_store_engine
from profiler_hooks import ProfileSchedule, analyze_window
from profiler_hooks.sink import StoreSink
from tests.helpers import T0

STEPS, BATCH = 14, 2
SLOW_FROM = 11  # the loader is slow from this step on: only the last window traces it
LOAD_S = 0.02  # per sample of the slow steps: the DataLoader wait the last window shows


class LateSlowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Fast samples, then slow ones: the DataLoader wait appears only in the final steps."""

    def __len__(self) -> int:
        return STEPS * BATCH

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index // BATCH >= SLOW_FROM:
            time.sleep(LOAD_S)
        return torch.full((8,), float(index)), torch.zeros(2)


pytestmark = pytest.mark.usefixtures("hooks_isolated")


def train(session: profiler_hooks.StepSession, loader: DataLoader[object]) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in loader:  # not wrap_dataloader: the wait is known from the traces alone
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        session.step(samples=BATCH)


# -- findings after the last window ----------------------------------------------------------


def test_the_last_windows_evidence_is_in_the_findings_the_dashboard_and_cli_read(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    schedule = ProfileSchedule(wait=SLOW_FROM - 1, warmup=1, active=2, repeat=1, skip_first=0)
    loader = DataLoader(LateSlowDataset(), batch_size=BATCH)
    with profiler_hooks.profile_steps(
        "late", db=db, trace_dir=tmp_path / "traces", schedule=schedule, slow_step_trigger=False
    ) as session:
        train(session, loader)

    store = Store.open(db)
    try:
        (window,) = store.windows(session.run_id)
        assert (window.first_step, window.last_step, window.status) == (11, 12, "analyzed")
        # The training process computed nothing: the end and the analysis left them stale.
        state = store.findings_state(session.run_id)
        assert state is not None and state.computed_at is None and state.is_stale
        assert store.findings(run_id=session.run_id) == []

        run = store.run(session.run_id)
        assert run is not None
        data = run_page.load_run(store, run, T0 + timedelta(days=30))
        loader_finding = next(f for f in data.findings if f.rule == "input_pipeline")
        assert loader_finding.evidence["source"] == "profiler windows"
        assert data.findings_stored
        stored = {item.finding.rule for item in store.findings(run_id=session.run_id)}
        assert "input_pipeline" in stored
    finally:
        store.close()
    done = gpulens(tmp_path, "advise", "--run", session.run_id, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    assert "input_pipeline" in {f["rule"] for f in json.loads(done.stdout)["findings"]}


def test_ending_a_run_through_the_sink_runs_no_advisor(tmp_path: Path) -> None:
    sink = StoreSink(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        sink.start_run(RunInfo(run_id="r1", name="n", host="h", started_at=T0))
        sink.end_run("r1", T0 + timedelta(seconds=5), "finished")
        store = sink.store()
        assert store.findings(run_id="r1") == []
        state = store.findings_state("r1")
        assert state is not None and state.computed_at is None
    finally:
        sink.close()


# -- a Postgres schema that is behind ----------------------------------------------------------


@pytest.fixture
def behind_pg_url(pg_url: str) -> str:
    """A throwaway Postgres database at revision 0003 (its owner has not upgraded yet), its
    URL with a password (trust auth ignores it) that no message may show."""
    engine = create_store_engine(pg_url)
    try:
        migrate.upgrade(engine, "0003")
    finally:
        engine.dispose()
    url = sqlalchemy.engine.make_url(pg_url).set(password="hunter2")
    return url.render_as_string(hide_password=False)


def revision(url: str) -> str | None:
    engine = create_store_engine(url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_sink_checks_a_postgres_schema_and_never_migrates_it(behind_pg_url: str) -> None:
    sink = StoreSink(behind_pg_url)
    with pytest.raises(SchemaOutOfDate) as raised:
        sink.store()
    message = str(raised.value)
    assert "gpulens db upgrade --db" in message and "\n" not in message
    assert "hunter2" not in message and "***" in message
    assert isinstance(raised.value, StoreError)  # the writer's "try again": records are kept
    assert revision(behind_pg_url) == "0003"


@pytest.mark.postgres
def test_a_run_against_a_postgres_behind_stays_spooled_until_it_is_upgraded(
    behind_pg_url: str, tmp_path: Path
) -> None:
    traces = tmp_path / "traces"
    with profiler_hooks.profile_steps(
        "behind", db=behind_pg_url, trace_dir=traces, profile=False
    ) as session:
        for _ in range(10):
            session.step(samples=BATCH)
    stats = session.stats
    assert (stats.written, stats.spooled, stats.dropped) == (0, 10, 0)
    assert revision(behind_pg_url) == "0003"

    engine = create_store_engine(behind_pg_url)  # what `gpulens db upgrade` does
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    with profiler_hooks.profile_steps(
        "after-upgrade", db=behind_pg_url, trace_dir=traces, profile=False
    ) as later:
        later.step(samples=BATCH)
    assert later.stats.replayed == 10
    store = Store.open(behind_pg_url, upgrade=False)
    try:
        assert [step.step for step in store.steps(session.run_id)] == list(range(10))
    finally:
        store.close()


@pytest.mark.postgres
def test_the_analysis_process_spools_its_window_when_the_schema_is_behind(
    behind_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPULENS_DB", behind_pg_url)
    trace = tmp_path / "bad.json"
    trace.write_text("{}")
    spool = tmp_path / "spool"
    status = analyze_window.main(["--window-id", "w9", "--spool-dir", str(spool), str(trace)])
    assert status == analyze_window.EXIT_SPOOLED
    kept = [path for path in spool.rglob("*") if path.is_file() and "w9" in path.read_text()]
    assert kept  # the window waits in the spool for a later session
    assert revision(behind_pg_url) == "0003"
