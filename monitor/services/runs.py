"""The run use cases, written once: advise a run, refresh its findings, read its current
findings, refresh the stale ones, compare two runs.

The CLI (``gpulens advise``, ``gpulens compare``), the dashboard (Run, Compare and Advice pages),
the demo and the benchmarks call these; none of them gathers evidence or runs the advisor itself.

A run's findings are stored. They are *stale* when never computed or computed before the run's
newest evidence (its end, a window analysis, a step: :class:`monitor.store.findings.FindingsState`).
The readers call :func:`current_findings` or :func:`compare`, which compute stale findings again
and save them: the analysis of a run's last profiler window lands after the run has ended, in
a background process, and is in what every reader sees. Nothing here runs in a training process.

Custom settings (thresholds other than the defaults, an energy price) give the advisor's findings
with those settings, not saved: the stored findings are those of the default settings, or of the
last ``gpulens advise`` that saved them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from monitor.core.advisor.advice import AdvisorSettings, advise
from monitor.core.advisor.compare import compare_runs
from monitor.core.advisor.compare_report import Comparison
from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, rank_findings
from monitor.core.errors import GpulensError, StoreError
from monitor.core.run_records import RunInfo
from monitor.services.gather import find_run, gather_run
from monitor.store import Store

log = logging.getLogger(__name__)

STALE_RUNS_CHECKED = 50
"""How many of the newest runs :func:`refresh_stale_findings` looks at by default."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class RunAdvice:
    """The advisor's findings on one run, the evidence they came from, and whether they are
    what the store now holds for the run."""

    evidence: RunEvidence
    findings: tuple[Finding, ...]
    saved: bool

    @property
    def run(self) -> RunInfo:
        assert self.evidence.run is not None  # gathered from the store: always a run
        return self.evidence.run


@dataclass(frozen=True, slots=True)
class CurrentFindings:
    """A run's findings as a reader shows them; ``stored``: they are the run's stored
    findings (False: computed now and not saved, with custom settings or a refused write)."""

    findings: tuple[Finding, ...]
    stored: bool


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Run B against run A, with both runs' evidence (the pages plot their step times)."""

    comparison: Comparison
    a: RunEvidence
    b: RunEvidence


def advise_run(
    store: Store,
    ref: str,
    settings: AdvisorSettings | None = None,
    *,
    save: bool = True,
    clock: Clock = utc_now,
) -> RunAdvice:
    """Gather run ``ref``'s evidence, advise, and (``save``) store the findings as the run's.

    Raises :class:`~monitor.core.errors.ConfigError` for an unknown run and
    :class:`~monitor.core.errors.StoreError` when the store fails.
    """
    run = find_run(store, ref)
    return _advise_now(store, run, settings, save=save, clock=clock, strict=True)


def refresh_findings(
    store: Store, ref: str, settings: AdvisorSettings | None = None
) -> list[Finding]:
    """Advise run ``ref`` and replace its stored findings; returns them."""
    return list(advise_run(store, ref, settings).findings)


def current_findings(
    store: Store, ref: str, settings: AdvisorSettings | None = None, *, clock: Clock = utc_now
) -> CurrentFindings:
    """Run ``ref``'s findings for a reader: the stored ones, computed again and saved first when
    stale. A store that refuses the save still gets the fresh findings shown (``stored`` False).
    """
    run = find_run(store, ref)
    if _stored_are_current(store, run.run_id, settings):
        return CurrentFindings(_stored(store, run.run_id), stored=True)
    advice = _advise_now(store, run, settings, save=not _is_custom(settings), clock=clock)
    return CurrentFindings(advice.findings, stored=advice.saved)


def refresh_stale_findings(
    store: Store, *, limit: int = STALE_RUNS_CHECKED, clock: Clock = utc_now
) -> list[str]:
    """Compute again and save the findings of the stale runs among the ``limit`` newest (for
    pages that list findings across runs); returns their ids. A run that cannot be advised is
    logged and left stale."""
    refreshed = []
    for run_id in store.stale_runs(limit=limit):
        try:
            run = find_run(store, run_id)
            _advise_now(store, run, None, save=True, clock=clock, strict=True)
        except (GpulensError, ValueError) as exc:
            log.warning("cannot refresh the findings of run %s: %s", run_id, exc)
            continue
        refreshed.append(run_id)
    return refreshed


def compare(
    store: Store,
    ref_a: str,
    ref_b: str,
    settings: AdvisorSettings | None = None,
    *,
    seed: int = 0,
    clock: Clock = utc_now,
) -> RunComparison:
    """Compare run B against run A (ids or names) with each run's current findings, as
    :func:`current_findings` gives them."""
    a = _current_advice(store, ref_a, settings, clock)
    b = _current_advice(store, ref_b, settings, clock)
    comparison = compare_runs(
        a.evidence,
        b.evidence,
        a.findings,
        b.findings,
        thresholds=(settings or AdvisorSettings()).thresholds,
        seed=seed,
    )
    return RunComparison(comparison, a.evidence, b.evidence)


def ranked(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Most important first, ties in a fixed order (rule, rank, title): the order does not
    depend on whether the findings come from the advisor or from the store."""
    fixed = sorted(findings, key=lambda f: (f.rule, f.scope.rank or 0, f.title))
    return tuple(rank_findings(fixed))


# -- internals -------------------------------------------------------------------------------


def _is_custom(settings: AdvisorSettings | None) -> bool:
    return settings is not None and settings != AdvisorSettings()


def _stored_are_current(store: Store, run_id: str, settings: AdvisorSettings | None) -> bool:
    """Whether a reader gets the stored findings: default settings, no evidence newer than them."""
    if _is_custom(settings):
        return False
    state = store.findings_state(run_id)
    return state is not None and not state.is_stale


def _stored(store: Store, run_id: str) -> tuple[Finding, ...]:
    return ranked([item.finding for item in store.findings(run_id=run_id)])


def _current_advice(
    store: Store, ref: str, settings: AdvisorSettings | None, clock: Clock
) -> RunAdvice:
    run = find_run(store, ref)
    if _stored_are_current(store, run.run_id, settings):
        evidence = gather_run(store, run.run_id)
        return RunAdvice(evidence, _stored(store, run.run_id), saved=True)
    return _advise_now(store, run, settings, save=not _is_custom(settings), clock=clock)


def _advise_now(
    store: Store,
    run: RunInfo,
    settings: AdvisorSettings | None,
    *,
    save: bool,
    clock: Clock,
    strict: bool = False,
) -> RunAdvice:
    """Gather, advise and save. The findings count as computed when gathering began (or at the
    newest evidence then, should the host that wrote it run ahead of this clock): evidence that
    lands while the advisor runs leaves them stale. A refused save raises with ``strict``;
    else it is logged and the findings are returned as not saved."""
    settings = settings or AdvisorSettings()
    state = store.findings_state(run.run_id)
    started = clock()
    evidence = gather_run(store, run.run_id, thresholds=settings.thresholds)
    findings = ranked(advise(evidence, settings))
    if not save:
        return RunAdvice(evidence, findings, saved=False)
    newest = state.evidence_at if state is not None else None
    at = max(started, newest) if newest is not None else started
    try:
        store.save_findings(run.run_id, findings, at=at)
    except StoreError as exc:
        if strict:
            raise
        log.warning("cannot store the findings of run %s: %s", run.run_id, exc)
        return RunAdvice(evidence, findings, saved=False)
    return RunAdvice(evidence, findings, saved=True)


__all__ = [
    "STALE_RUNS_CHECKED",
    "CurrentFindings",
    "RunAdvice",
    "RunComparison",
    "advise_run",
    "compare",
    "current_findings",
    "ranked",
    "refresh_findings",
    "refresh_stale_findings",
    "utc_now",
]
