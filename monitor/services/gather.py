"""Gather a run's evidence for the advisor: from the store, or from a trace file alone.

The adapter side of the advisor: it reads the store's query functions (never SQL) and the trace
analyzer, and hands :func:`monitor.core.advisor.advice.advise` plain data. The use cases that
advise (:mod:`monitor.services.runs`, :mod:`monitor.services.trace_advice`) call it.

The ranks of one distributed job are separate runs in the store (one per process); the
*peers* of a run are the runs with the same name and world size that started within
:data:`PEER_START_WINDOW` of it, one per rank (the newest).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.core.advisor.evidence import PeerRank, RunEvidence
from monitor.core.advisor.measures import measure, step_rows
from monitor.core.advisor.thresholds import Thresholds
from monitor.core.analysis.results import (
    RankAnalysis,
    TraceAnalysis,
    from_json,
)
from monitor.core.errors import ConfigError
from monitor.core.run_records import RunInfo, StepRecord
from monitor.core.run_views import StepBreakdownRow
from monitor.store import Store

PEER_START_WINDOW = timedelta(minutes=10)
TELEMETRY_SLACK = timedelta(seconds=5)


def find_run(store: Store, ref: str) -> RunInfo:
    """Run ``ref`` (an id, or the newest run of that name); :class:`ConfigError` naming it when
    the store has none."""
    run = store.run(ref)
    if run is None:
        raise ConfigError(f"no run {ref!r} in {store.url}; `gpulens runs` lists the runs")
    return run


def gather_run(store: Store, ref: str, *, thresholds: Thresholds | None = None) -> RunEvidence:
    """Everything the store knows about run ``ref`` (an id, or the newest run of that name).

    Raises :class:`ConfigError` naming the run when there is none.
    """
    run = find_run(store, ref)
    own = RunEvidence(
        run=run,
        steps=tuple(store.steps(run.run_id)),
        breakdowns=tuple(store.step_breakdowns(run.run_id)),
    )
    start, end = _span(run, own.steps)
    uuids = run.gpu_uuids
    return dataclasses.replace(
        own,
        kernels=tuple(store.kernels(run.run_id, limit=5000)),
        traces=_traces(store, run),
        gpus=tuple(gpu for gpu in store.gpus() if gpu.uuid in uuids),
        samples={uuid: tuple(store.samples(uuid, start, end)) for uuid in uuids},
        events=tuple(e for uuid in uuids for e in store.events(start, end, uuid=uuid)),
        processes=tuple(p for uuid in uuids for p in store.process_spans(uuid, start, end)),
        peers=_peers(store, own, thresholds or Thresholds()),
    )


def evidence_from_trace(analysis: TraceAnalysis) -> list[RunEvidence]:
    """One evidence per rank of an analyzed trace file or folder (no step records, no
    telemetry); the ranks are each other's peers."""
    peers = tuple(_peer_from_trace(item) for item in analysis.ranks)
    return [
        RunEvidence(
            breakdowns=_trace_rows(item),
            kernels=item.kernels,
            traces=(item,),
            peers=peers if len(peers) > 1 else (),
            source="trace",
        )
        for item in analysis.ranks
    ]


def _span(run: RunInfo, steps: Sequence[StepRecord]) -> tuple[datetime, datetime]:
    end = run.ended_at
    if steps:
        last = steps[-1]
        step_end = last.started_at + timedelta(microseconds=last.duration_us)
        end = max(end, step_end) if end is not None else step_end
    return run.started_at - TELEMETRY_SLACK, (end or run.started_at) + TELEMETRY_SLACK


def _traces(store: Store, run: RunInfo) -> tuple[RankAnalysis, ...]:
    found = []
    for window in store.windows(run.run_id):
        if window.status != "analyzed":
            continue
        summary = store.window_summary(window.window_id)
        if summary:
            found += [item for item in from_json(summary).ranks if item.rank == run.rank]
    return tuple(found)


def _peers(store: Store, own: RunEvidence, thresholds: Thresholds) -> tuple[PeerRank, ...]:
    """Every rank of ``own``'s job, ``own`` included (its rows are already read)."""
    run = own.run
    if run is None or run.world_size < 2:
        return ()
    newest: dict[int, RunInfo] = {}
    for other in store.runs(name_like=run.name, limit=200):
        if other.name != run.name or other.world_size != run.world_size:
            continue
        if abs(other.started_at - run.started_at) > PEER_START_WINDOW:
            continue
        if other.rank not in newest or other.started_at > newest[other.rank].started_at:
            newest[other.rank] = other
    newest.pop(run.rank, None)
    others = [
        RunEvidence(
            run=item,
            steps=tuple(store.steps(item.run_id)),
            breakdowns=tuple(store.step_breakdowns(item.run_id)),
        )
        for item in newest.values()
    ]
    peers = [_peer(evidence, thresholds) for evidence in (own, *others)]
    return tuple(sorted((p for p in peers if p is not None), key=lambda p: p.rank))


def _peer(evidence: RunEvidence, thresholds: Thresholds) -> PeerRank | None:
    run = evidence.run
    assert run is not None
    measures = measure(evidence, thresholds)
    if not measures.has_steps or math.isnan(measures.mean_step_us):
        return None
    wait = measures.shares.get("communication", 0.0) * measures.mean_step_us
    loader = measures.dataloader_fraction
    return PeerRank(
        rank=run.rank,
        step_us=measures.mean_step_us,
        wait_us=wait,
        run_id=run.run_id,
        dataloader_wait_us=loader * measures.mean_step_us if loader is not None else None,
        host=run.host,
        wait_by_step_us=_waits_by_step(evidence.breakdowns),
    )


def _waits_by_step(rows: Sequence[StepBreakdownRow]) -> dict[int, float]:
    """Communication time of each traced step (summed over windows that traced it)."""
    waits: dict[int, float] = {}
    for row in rows:
        if row.step is not None:
            waits[row.step] = waits.get(row.step, 0.0) + row.breakdown_us.get("communication", 0.0)
    return waits


def _trace_rows(item: RankAnalysis) -> tuple[StepBreakdownRow, ...]:
    source = item.source or "trace"
    return tuple(
        StepBreakdownRow(
            window_id=source,
            rank=item.rank,
            step=step.step,
            start_us=step.start_us,
            duration_us=step.duration_us,
            breakdown_us=step.breakdown_us,
            gpu_busy_us=step.gpu_busy_us,
        )
        for step in (item.steps or (item.total,))
    )


def _peer_from_trace(item: RankAnalysis) -> PeerRank:
    rows = step_rows(_trace_rows(item))
    total = math.fsum(row.duration_us for row in rows)
    comm = math.fsum(row.breakdown_us.get("communication", 0.0) for row in rows)
    loader = math.fsum(row.breakdown_us.get("dataloader", 0.0) for row in rows)
    count = max(len(rows), 1)
    return PeerRank(
        rank=item.rank,
        step_us=total / count,
        wait_us=comm / count,
        dataloader_wait_us=loader / count,
        wait_by_step_us=_waits_by_step(rows),
    )


__all__ = ["PEER_START_WINDOW", "evidence_from_trace", "find_run", "gather_run"]
