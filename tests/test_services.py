"""The run use cases of monitor.services.runs: findings that go stale when evidence lands and
are computed again on read, and the CLI and the dashboard showing the same findings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from cli import gpulens

from dashboard.pages import run as run_page
from monitor.core.advisor.findings import Finding, finding_to_json
from monitor.core.analysis.results import TraceAnalysis
from monitor.core.errors import StoreUnavailable
from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from monitor.services.runs import (
    advise_run,
    current_findings,
    ranked,
    refresh_stale_findings,
)
from monitor.store import Store
from monitor.traces.analyze import analyze_path
from tests.helpers import T0, at

TRACE = "hta_alexnet_a100.json.gz"  # its analysis alone gives the h2d_copies finding


def a_run(run_id: str = "r1") -> RunInfo:
    return RunInfo(run_id=run_id, name=f"name-{run_id}", host="h1", started_at=T0)


def seed_steps(store: Store, run_id: str, count: int = 40) -> None:
    """Steps that wait half their time for the DataLoader: an input_pipeline finding."""
    store.write_steps(
        [StepRecord(run_id, n, at(n), 100_000.0, dataloader_wait_us=50_000.0) for n in range(count)]
    )


def as_json(findings: Sequence[Finding]) -> list[object]:
    """The documented JSON form, as it reads back from JSON text (tuples become lists)."""
    return json.loads(json.dumps([finding_to_json(f) for f in findings]))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def trace_analysis(shared_traces: dict[str, Path]) -> TraceAnalysis:
    return analyze_path(shared_traces[TRACE])


def land_window(store: Store, run_id: str, analysis: TraceAnalysis, *, when: int) -> None:
    window = WindowRecord(f"{run_id}-w{when}", run_id, 30, 31, at(when), status="analyzing")
    store.save_window(window)
    store.save_window_analysis(window.window_id, analysis, analyzed_at=at(when))


# -- staleness -------------------------------------------------------------------------------


def test_findings_go_stale_when_the_run_ends_or_a_window_lands(
    store: Store, trace_analysis: TraceAnalysis
) -> None:
    store.start_run(a_run())
    seed_steps(store, "r1")
    assert store.findings_state("r1").is_stale  # type: ignore[union-attr]  # never computed
    first = advise_run(store, "r1", clock=lambda: at(100))
    assert first.saved and not store.findings_state("r1").is_stale  # type: ignore[union-attr]
    assert "h2d_copies" not in {f.rule for f in first.findings}

    land_window(store, "r1", trace_analysis, when=200)
    state = store.findings_state("r1")
    assert state is not None and state.is_stale and state.evidence_at == at(200)
    assert "h2d_copies" in {f.rule for f in current_findings(store, "r1").findings}
    assert "h2d_copies" in {item.finding.rule for item in store.findings(run_id="r1")}
    assert not store.findings_state("r1").is_stale  # type: ignore[union-attr]

    store.end_run("r1", at(300), "finished")
    assert store.findings_state("r1").is_stale  # type: ignore[union-attr]


def test_fresh_findings_are_read_back_not_computed_again(store: Store) -> None:
    store.start_run(a_run())
    seed_steps(store, "r1")
    store.end_run("r1", at(60), "finished")
    mine = advise_run(store, "r1", clock=lambda: at(100)).findings[0]
    planted = Finding(
        rule="planted", severity="info", title="kept as stored", evidence={}, advice=()
    )
    store.save_findings("r1", [planted, mine], at=at(100))
    shown = current_findings(store, "r1")
    assert shown.stored and {f.rule for f in shown.findings} == {"planted", mine.rule}


def test_findings_count_as_computed_at_the_newest_evidence_when_it_is_ahead(
    store: Store,
) -> None:
    store.start_run(a_run())
    seed_steps(store, "r1")
    store.end_run("r1", at(3600), "finished")  # written by a host whose clock runs ahead
    advise_run(store, "r1", clock=lambda: at(60))
    state = store.findings_state("r1")
    assert state is not None and state.computed_at == at(3600) and not state.is_stale


class RefusingStore(Store):
    """A store whose findings cannot be saved (a read-only database user)."""

    def save_findings(self, *args: object, **kwargs: object) -> None:
        raise StoreUnavailable("cannot use the database: read-only")


def test_a_refused_save_still_shows_the_fresh_findings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    Store.open(url).close()
    store = RefusingStore.open(url)
    try:
        store.start_run(a_run())
        seed_steps(store, "r1")
        shown = current_findings(store, "r1")
        assert not shown.stored and shown.findings
        with pytest.raises(StoreUnavailable):
            advise_run(store, "r1")  # `gpulens advise` says the save failed
    finally:
        store.close()


def test_the_stale_runs_are_refreshed_and_the_fresh_ones_left(store: Store) -> None:
    for run_id in ("old", "new", "running"):
        store.start_run(a_run(run_id))
        seed_steps(store, run_id)
        if run_id != "running":
            store.end_run(run_id, at(60), "finished")
    advise_run(store, "old", clock=lambda: at(100))
    # The run still recording is left to its own page: each new step would make it stale.
    assert refresh_stale_findings(store, clock=lambda: at(200)) == ["new"]
    assert store.stale_runs() == []
    assert {item.run_id for item in store.findings()} == {"old", "new"}
    state = store.findings_state("running")
    assert state is not None and state.is_stale


def test_ties_rank_alike_from_the_advisor_and_from_the_store() -> None:
    twins = [
        Finding(rule=rule, severity="warning", title=f"{rule} title", evidence={}, advice=())
        for rule in ("b_rule", "a_rule", "c_rule")
    ]
    assert ranked(twins) == ranked(list(reversed(twins)))
    assert [f.rule for f in ranked(twins)] == ["a_rule", "b_rule", "c_rule"]


# -- one answer, whoever asks ------------------------------------------------------------------


def test_the_cli_and_the_dashboard_show_the_same_findings_for_a_run(
    tmp_path: Path, shared_traces: dict[str, Path]
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    for name in ("cli-first", "page-first"):
        done = gpulens(tmp_path, "import", str(shared_traces[TRACE]), "--run", name, "--db", db)
        assert done.returncode == 0, done.stderr

    def cli(name: str) -> list[object]:
        done = gpulens(tmp_path, "advise", "--run", name, "--db", db, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["findings"]  # type: ignore[no-any-return]

    def page(name: str) -> list[object]:
        store = Store.open(db)
        try:
            run = store.run(name)
            assert run is not None
            data = run_page.load_run(store, run, T0 + timedelta(days=30))
            assert data.findings_stored
            return as_json(data.findings)
        finally:
            store.close()

    cli_first = cli("cli-first")
    assert cli_first and page("cli-first") == cli_first
    page_first = page("page-first")  # the page advises the never-advised run, and saves
    assert page_first and cli("page-first") == page_first
    assert {f["rule"] for f in cli_first} >= {"h2d_copies"}  # type: ignore[index]
