"""Training runs in the store: writes and read queries for runs and their steps.

Runs are upserted by ``run_id``; steps are upserted on ``(run_id, step)`` in one statement per
batch, so a replayed batch never stores a step twice. Profiler windows and their analyses are
in :mod:`monitor.store.windows`.

Every function takes a connection; the caller (:class:`monitor.store.Store`) owns the
transaction and turns connection failures into ``StoreUnavailable``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from monitor.core.run_records import RunInfo, RunStatus, StepRecord
from monitor.core.run_views import RunSummary
from monitor.store.schema import profiler_windows, run_steps, runs, step_breakdowns
from monitor.store.writer import Row, upsert

_STEP_FIELDS = tuple(f.name for f in dataclasses.fields(StepRecord))
_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunInfo))

# Steps are written and read field by field (pre_forward_us and any later field included), so
# a StepRecord field without its column, or the reverse, must fail at import, not at a write.
_STEP_COLUMNS = {column.name for column in run_steps.columns}
if set(_STEP_FIELDS) != _STEP_COLUMNS or _STEP_FIELDS[:2] != ("run_id", "step"):
    raise AssertionError("StepRecord fields do not match the run_steps columns")


# -- writing ---------------------------------------------------------------------------------


def start_run(conn: Connection, info: RunInfo) -> None:
    row = {name: getattr(info, name) for name in _RUN_FIELDS}
    row.update(
        gpu_uuids=list(info.gpu_uuids), config=dict(info.config), versions=dict(info.versions)
    )
    check_lengths(runs, [row])
    upsert(conn, runs, "run_id", [row])


def end_run(conn: Connection, run_id: str, ended_at: datetime, status: RunStatus) -> None:
    # The end is evidence (the last steps, the status): the run's findings are stale.
    values = {"ended_at": ended_at, "status": status, "findings_computed_at": None}
    result = conn.execute(update(runs).where(runs.c.run_id == run_id).values(**values))
    if result.rowcount == 0:
        raise ValueError(f"unknown run {run_id!r}: start_run must come first")


def write_steps(conn: Connection, steps: Sequence[StepRecord]) -> int:
    """Upsert ``steps`` in one statement (the last record wins where a batch repeats a step);
    returns the number of distinct steps written."""
    latest = {(step.run_id, step.step): step for step in steps}
    rows = [{name: getattr(step, name) for name in _STEP_FIELDS} for step in latest.values()]
    if not rows:
        return 0
    check_lengths(run_steps, rows)
    statement = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        run_steps
    )
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "step"],
        set_={name: statement.excluded[name] for name in _STEP_FIELDS[2:]},
    )
    conn.execute(statement, rows)
    return len(rows)


def check_lengths(table: Table, rows: list[Row]) -> None:
    """Refuse strings longer than their column on both backends alike (SQLite would keep
    them, Postgres would refuse them)."""
    for column in table.columns:
        length = column.type.length if isinstance(column.type, String) else None
        if length is None:
            continue
        for row in rows:
            value = row.get(column.name)
            if isinstance(value, str) and len(value) > length:
                raise ValueError(
                    f"{table.name}.{column.name} holds at most {length} characters; "
                    f"got {len(value)}: {value[:40]!r}..."
                )


# -- reading ---------------------------------------------------------------------------------


def _run_values(row: Any) -> dict[str, Any]:
    values = {name: row._mapping[name] for name in _RUN_FIELDS}
    values.update(gpu_uuids=tuple(values["gpu_uuids"]))
    return values


def _run_info(row: Any) -> RunInfo:
    return RunInfo(**_run_values(row))


LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """The LIKE pattern (for ``list_runs``' ``name_like``) of names containing ``text``
    literally: its ``%``, ``_`` and the escape character match only themselves."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return f"%{text}%"


def list_runs(
    conn: Connection,
    *,
    name_like: str | None = None,
    host: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[RunSummary]:
    """Runs newest first with their step and window figures. ``name_like`` is a
    case-insensitive SQL LIKE pattern (``\\`` escapes, as :func:`contains_pattern` writes);
    without a ``%`` it matches anywhere in the name."""
    query = select(runs)
    if name_like is not None:
        pattern = name_like if "%" in name_like else f"%{name_like}%"
        query = query.where(runs.c.name.ilike(pattern, escape=LIKE_ESCAPE))
    if host is not None:
        query = query.where(runs.c.host == host)
    if status is not None:
        query = query.where(runs.c.status == status)
    query = query.order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    values = [_run_values(row) for row in conn.execute(query)]
    figures = _run_figures(conn, [run["run_id"] for run in values]) if values else {}
    return [RunSummary(**run, **figures[run["run_id"]]) for run in values]


def _run_figures(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """RunSummary's figures per run id (a run without steps or windows keeps the defaults)."""
    figures: dict[str, dict[str, Any]] = {run_id: {} for run_id in ids}
    steps, breakdowns, windows = run_steps.c, step_breakdowns.c, profiler_windows.c
    for run_id, count, mean in conn.execute(
        select(steps.run_id, func.count(), func.avg(steps.duration_us))
        .where(steps.run_id.in_(ids))
        .group_by(steps.run_id)
    ):
        figures[run_id].update(steps=int(count), mean_step_us=float(mean))
    for run_id, median in conn.execute(_median_step_query(ids)):
        figures[run_id]["median_step_us"] = float(median)
    for run_id, busy_us, duration_us in conn.execute(
        select(
            breakdowns.run_id, func.sum(breakdowns.gpu_busy_us), func.sum(breakdowns.duration_us)
        )
        .where(breakdowns.run_id.in_(ids))
        .group_by(breakdowns.run_id)
    ):
        if duration_us:
            figures[run_id]["gpu_busy_percent"] = 100.0 * float(busy_us) / float(duration_us)
    for run_id, count in conn.execute(
        select(windows.run_id, func.count()).where(windows.run_id.in_(ids)).group_by(windows.run_id)
    ):
        figures[run_id]["windows"] = int(count)
    return figures


def _median_step_query(ids: list[str]) -> Any:
    """Median step duration per run in portable SQL (SQLite has no percentile function): the
    mean of the one or two middle rows by ``row_number``."""
    steps = run_steps.c
    ranked = (
        select(
            steps.run_id,
            steps.duration_us,
            func.row_number()
            .over(partition_by=steps.run_id, order_by=steps.duration_us)
            .label("position"),
            func.count().over(partition_by=steps.run_id).label("n"),
        )
        .where(steps.run_id.in_(ids))
        .subquery()
    )
    middle = or_(
        ranked.c.position == (ranked.c.n + 1) // 2, ranked.c.position == (ranked.c.n + 2) // 2
    )
    return (
        select(ranked.c.run_id, func.avg(ranked.c.duration_us))
        .where(middle)
        .group_by(ranked.c.run_id)
    )


def find_run(conn: Connection, ref: str) -> RunInfo | None:
    """The run with id ``ref``, else the newest run named ``ref``."""
    row = conn.execute(select(runs).where(runs.c.run_id == ref)).first()
    if row is None:
        row = conn.execute(
            select(runs)
            .where(runs.c.name == ref)
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
            .limit(1)
        ).first()
    return None if row is None else _run_info(row)


def list_steps(
    conn: Connection, run_id: str, *, first_step: int | None = None, last_step: int | None = None
) -> list[StepRecord]:
    """Steps of ``run_id`` in step order, ``first_step`` to ``last_step`` inclusive."""
    query = select(run_steps).where(run_steps.c.run_id == run_id)
    if first_step is not None:
        query = query.where(run_steps.c.step >= first_step)
    if last_step is not None:
        query = query.where(run_steps.c.step <= last_step)
    rows = conn.execute(query.order_by(run_steps.c.step))
    return [StepRecord(**{name: row._mapping[name] for name in _STEP_FIELDS}) for row in rows]


def runs_on_gpu(conn: Connection, uuid: str, start: datetime, end: datetime) -> list[RunInfo]:
    """Runs that list GPU ``uuid`` and overlap ``[start, end)``, oldest first; a run without
    ``ended_at`` counts as still running."""
    query = (
        select(runs)
        .where(
            and_(
                runs.c.started_at < end,
                or_(runs.c.ended_at.is_(None), runs.c.ended_at > start),
                _lists_gpu(conn.dialect.name, uuid),
            )
        )
        .order_by(runs.c.started_at, runs.c.run_id)
    )
    return [_run_info(row) for row in conn.execute(query)]


def _lists_gpu(dialect: str, uuid: str) -> ColumnElement[bool]:
    """Whether the run's ``gpu_uuids`` array holds ``uuid`` (jsonb ``@>``; SQLite json_each)."""
    if dialect == "postgresql":
        contains: ColumnElement[bool] = type_coerce(runs.c.gpu_uuids, postgresql.JSONB).contains(
            [uuid]
        )
        return contains
    gpu = func.json_each(runs.c.gpu_uuids).table_valued("value").alias("gpu")
    return select(literal(1)).select_from(gpu).where(gpu.c.value == uuid).exists()
