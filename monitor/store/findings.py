"""Advisor findings in the store: saving a run's (or the fleet's) findings, and reading them.

Saving replaces the whole set of one scope in the caller's transaction: every finding of one
run, or the fleet findings (``run_id`` NULL) of one host or of all hosts. A finding's id is the
SHA-1 of what identifies it (run, rank, rule, GPU, and its position among findings alike in
those), so saving the same findings again keeps their ids and their ``created_at``.

A run's stored findings are *stale* when they were never computed, or when evidence arrived
after they were: the run ended, a window's analysis landed, or a step started after
``runs.findings_computed_at``. Ending a run and saving a window's analysis also clear that
column, so staleness does not hang on two hosts' clocks agreeing.

Every function takes a connection; the caller (:class:`monitor.store.Store`) owns the
transaction and turns connection failures into ``StoreUnavailable``.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from monitor.core.advisor.findings import SEVERITIES, Finding, finding_from_json, finding_to_json
from monitor.core.run_views import StoredFinding
from monitor.store.runs import check_lengths
from monitor.store.schema import findings, profiler_windows, run_steps, runs
from monitor.store.windows import _finite
from monitor.store.writer import Row

OPEN = "open"


@dataclass(frozen=True, slots=True)
class FindingsState:
    """Whether a run's stored findings are current."""

    run_id: str
    computed_at: datetime | None  # None: never computed, or evidence arrived since
    evidence_at: datetime | None  # the newest of its end, window analyses and step starts

    @property
    def is_stale(self) -> bool:
        """Never computed, or computed before the newest evidence."""
        if self.computed_at is None:
            return True
        return self.evidence_at is not None and self.computed_at < self.evidence_at


# -- writing ---------------------------------------------------------------------------------


def save_findings(
    conn: Connection,
    run_id: str | None,
    items: Sequence[Finding],
    *,
    at: datetime,
    host: str | None = None,
) -> None:
    """Replace the findings of run ``run_id`` (``None``: the fleet findings of ``host``, or
    of every host without one) with ``items``, all ``open`` and updated ``at``."""
    rows = _rows(run_id, items, at, host)
    check_lengths(findings, rows)
    ids = [row["finding_id"] for row in rows]
    created: dict[str, datetime] = {}
    if ids:
        query = select(findings.c.finding_id, findings.c.created_at)
        created.update(conn.execute(query.where(findings.c.finding_id.in_(ids))).all())
    conn.execute(delete(findings).where(_scope(run_id, host)))
    for row in rows:
        row["created_at"] = created.get(row["finding_id"], at)
    if rows:
        conn.execute(insert(findings), rows)
    if run_id is not None:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(findings_computed_at=at))


def forget_window_findings(conn: Connection, window_id: str) -> None:
    """Mark the findings of the run of window ``window_id`` stale (its analysis landed)."""
    run_of_window = (
        select(profiler_windows.c.run_id)
        .where(profiler_windows.c.window_id == window_id)
        .scalar_subquery()
    )
    conn.execute(
        update(runs).where(runs.c.run_id == run_of_window).values(findings_computed_at=None)
    )


def _scope(run_id: str | None, host: str | None) -> ColumnElement[bool]:
    """The rows that one save replaces."""
    if run_id is not None:
        return findings.c.run_id == run_id
    fleet = findings.c.run_id.is_(None)
    return fleet if host is None else fleet & (findings.c.host == host)


def _rows(
    run_id: str | None, items: Sequence[Finding], at: datetime, host: str | None
) -> list[Row]:
    seen: Counter[tuple[Any, ...]] = Counter()
    rows = []
    for finding in items:
        scope = finding.scope
        if run_id is not None and scope.run_id not in (None, run_id):
            raise ValueError(f"finding {finding.rule!r} is of run {scope.run_id!r}, not {run_id!r}")
        if run_id is None and host is not None and scope.host not in (None, host):
            raise ValueError(
                f"fleet finding {finding.rule!r} is of host {scope.host!r}, not {host!r}"
            )
        if not math.isfinite(finding.time_fraction):
            raise ValueError(f"finding {finding.rule!r} has time_fraction {finding.time_fraction}")
        row_host = scope.host if scope.host is not None else host
        key = (run_id, scope.rank, finding.rule, scope.gpu_uuid, row_host)
        rows.append(_row(finding_id(*key, index=seen[key]), run_id, row_host, finding, at))
        seen[key] += 1
    return rows


def _row(
    identity: str, run_id: str | None, host: str | None, finding: Finding, at: datetime
) -> Row:
    waste = finding.waste
    return {
        "finding_id": identity,
        "run_id": run_id,
        "rank": finding.scope.rank,
        "host": host,
        "gpu_uuid": finding.scope.gpu_uuid,
        "rule": finding.rule,
        "severity": finding.severity,
        "title": finding.title,
        "time_fraction": finding.time_fraction,
        "wasted_gpu_hours": _finite(waste.gpu_hours_total if waste is not None else None),
        "status": OPEN,
        "document": _finite(finding_to_json(finding)),
        "updated_at": at,
    }


def finding_id(
    run_id: str | None,
    rank: int | None,
    rule: str,
    gpu_uuid: str | None,
    host: str | None,
    *,
    index: int = 0,
) -> str:
    """SHA-1 hex of ``run_id|rank|rule|gpu_uuid|index``; ``index`` counts the earlier findings
    of a save with the same key. Fleet findings (no ``run_id``) add their host after the GPU:
    two hosts' findings of one rule are saved apart and must not share an id."""
    parts: list[object] = [run_id, rank, rule, gpu_uuid]
    if run_id is None:
        parts.append(host)
    parts.append(index)
    return hashlib.sha1("|".join(str(part) for part in parts).encode()).hexdigest()


# -- reading ---------------------------------------------------------------------------------


def findings_states(conn: Connection, run_ids: Sequence[str]) -> dict[str, FindingsState]:
    """The findings state of each of ``run_ids`` that exists."""
    if not run_ids:
        return {}
    r, w, s = runs.c, profiler_windows.c, run_steps.c
    newest_analysis = select(func.max(w.analyzed_at)).where(w.run_id == r.run_id)
    newest_step = select(func.max(s.started_at)).where(s.run_id == r.run_id)
    query = select(
        r.run_id,
        r.findings_computed_at,
        r.ended_at,
        newest_analysis.scalar_subquery().label("analyzed_at"),
        newest_step.scalar_subquery().label("step_at"),
    ).where(r.run_id.in_(list(run_ids)))
    states = {}
    for row in conn.execute(query):
        times = (row.ended_at, row.analyzed_at, row.step_at)  # typed: aware datetimes
        known = [value for value in times if value is not None]
        states[row.run_id] = FindingsState(
            row.run_id, row.findings_computed_at, max(known) if known else None
        )
    return states


def stale_run_ids(conn: Connection, *, limit: int) -> list[str]:
    """Of the ``limit`` newest ended runs, those whose findings are stale, newest first.

    Runs still recording are left out: every new step makes them stale again, so a page that
    lists findings across runs would advise them on every view (their own page does)."""
    r = runs.c
    newest = conn.execute(
        select(r.run_id)
        .where(r.ended_at.is_not(None))
        .order_by(r.started_at.desc(), r.run_id.desc())
        .limit(limit)
    ).scalars()
    ids = list(newest)
    states = findings_states(conn, ids)
    return [run_id for run_id in ids if run_id in states and states[run_id].is_stale]


def _severity_rank() -> ColumnElement[int]:
    """``SEVERITIES`` index of the row's severity (critical highest), -1 when unknown."""
    order = {severity: position for position, severity in enumerate(SEVERITIES)}
    return case(order, value=findings.c.severity, else_=-1)


def list_findings(
    conn: Connection,
    *,
    run_id: str | None = None,
    status: str | None = OPEN,
    min_severity: str | None = None,
    limit: int = 500,
) -> list[StoredFinding]:
    """Findings of ``run_id`` most important first (severity, then share of step time), or
    without ``run_id`` every finding, run and fleet, most wasted GPU hours first (unknown
    last), then severity and share of step time."""
    f = findings.c
    query = select(findings, runs.c.name.label("run_name")).select_from(
        findings.outerjoin(runs, runs.c.run_id == f.run_id)
    )
    if run_id is not None:
        query = query.where(f.run_id == run_id)
    if status is not None:
        query = query.where(f.status == status)
    if min_severity is not None:
        if min_severity not in SEVERITIES:
            raise ValueError(f"unknown severity {min_severity!r}; one of {SEVERITIES}")
        query = query.where(f.severity.in_(SEVERITIES[SEVERITIES.index(min_severity) :]))
    order = [_severity_rank().desc(), f.time_fraction.desc(), f.finding_id]
    if run_id is None:
        order.insert(0, f.wasted_gpu_hours.desc().nulls_last())
    return [_stored(row) for row in conn.execute(query.order_by(*order).limit(limit))]


def _stored(row: Any) -> StoredFinding:
    return StoredFinding(
        finding_id=row.finding_id,
        run_id=row.run_id,
        run_name=row.run_name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status=row.status,
        finding=finding_from_json(row.document),
    )
