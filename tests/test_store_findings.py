"""Advisor findings, step pre-forward times, raw samples and process spans in the store, on
real SQLite files and the real Postgres server."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, insert, inspect, select

from monitor.core.advisor.findings import Finding, Gain, Scope, ThresholdUse, Waste
from monitor.core.gpu_records import ProcessSample
from monitor.core.run_records import RunInfo, StepRecord
from monitor.core.run_views import StoredFinding
from monitor.store import Store, migrate
from monitor.store.engine import create_store_engine
from monitor.store.schema import findings, gpu_samples, run_steps
from tests.helpers import T0, at, count, facts_records, samples


def a_run(run_id: str = "r1", name: str = "bert") -> RunInfo:
    return RunInfo(run_id=run_id, name=name, host="h1", started_at=T0, gpu_uuids=("GPU-a",))


def a_finding(
    rule: str = "dataloader_bound",
    severity: Any = "warning",
    time_fraction: float = 0.25,
    *,
    gpu_hours: float | None = None,
    **scope: Any,
) -> Finding:
    return Finding(
        rule=rule,
        severity=severity,
        title=f"{rule} costs {time_fraction:.0%} of step time",
        evidence={"dataloader_wait_us": 1250.5, "steps": [3, 4]},
        advice=("Raise DataLoader(num_workers=...)", "Set pin_memory=True"),
        expected_gain=Gain(time_fraction, "step timer"),
        confidence="high",
        scope=Scope(**scope),
        thresholds=(ThresholdUse("dataloader_fraction", 0.1, "default"),),
        waste=None
        if gpu_hours is None
        else Waste(360.0, 1, 300.0, "telemetry", 1.08e5, 0.01, "EUR", gpu_hours),
    )


def expected_id(*parts: object) -> str:
    return hashlib.sha1("|".join(str(part) for part in parts).encode()).hexdigest()


def by_rule(stored: list[StoredFinding]) -> list[str]:
    return [item.finding.rule for item in stored]


# -- migration -------------------------------------------------------------------------------


def test_upgrading_from_0002_keeps_the_steps_and_adds_pre_forward_us(db_url: str) -> None:
    engine = create_store_engine(db_url)  # the empty database: the test migrates it
    try:
        migrate.upgrade(engine, "0002")
        assert "findings" not in inspect(engine).get_table_names()
        old = Store(engine)
        old.write([*facts_records(), *samples("GPU-a", "h1", range(20))])
        old.start_run(a_run())
        with engine.begin() as conn:  # the 0002 columns only: no pre_forward_us yet
            conn.execute(
                insert(run_steps),
                [
                    {"run_id": "r1", "step": n, "started_at": at(n), "duration_us": 10.0 * n}
                    | {"is_profiled": False, "samples": 32}
                    for n in range(5)
                ],
            )
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision() == "0004"
        store = Store(engine)
        steps = store.steps("r1")
        assert [(s.step, s.duration_us, s.samples) for s in steps] == [
            (n, 10.0 * n, 32) for n in range(5)
        ]
        assert {s.pre_forward_us for s in steps} == {None}
        assert count(store, gpu_samples) == 20
        store.write_steps([StepRecord("r1", 5, at(5), 50.0, pre_forward_us=12.5)])
        assert store.steps("r1", first_step=5)[0].pre_forward_us == 12.5
        store.save_findings("r1", [a_finding()], at=at(60))
        assert len(store.findings(run_id="r1")) == 1
        # And back: 0003's downgrade drops its table and column, and nothing else.
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0002")
        assert "findings" not in inspect(engine).get_table_names()
        columns = {column["name"] for column in inspect(engine).get_columns("run_steps")}
        assert "pre_forward_us" not in columns and "duration_us" in columns
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(run_steps)).scalar_one() == 6
        migrate.upgrade(engine)
        assert store.findings(status=None) == []
        assert [s.pre_forward_us for s in store.steps("r1")] == [None] * 6
    finally:
        engine.dispose()


# -- steps -----------------------------------------------------------------------------------


def test_pre_forward_us_round_trips_and_is_upserted(store: Store) -> None:
    store.start_run(a_run())
    steps = [
        StepRecord("r1", 0, at(0), 1000.0, pre_forward_us=85.25),
        StepRecord("r1", 1, at(1), 1000.0),
    ]
    assert store.write_steps(steps) == 2
    assert store.steps("r1") == steps
    store.write_steps([dataclasses.replace(steps[1], pre_forward_us=3.5)])
    assert [s.pre_forward_us for s in store.steps("r1")] == [85.25, 3.5]


# -- findings --------------------------------------------------------------------------------


def test_a_finding_round_trips_whole(store: Store) -> None:
    store.start_run(a_run())
    finding = a_finding(gpu_hours=2.5, run_id="r1", rank=0, gpu_uuid="GPU-a", steps=(3, 4))
    store.save_findings("r1", [finding], at=at(60))
    (stored,) = store.findings(run_id="r1")
    assert stored == StoredFinding(
        finding_id=expected_id("r1", 0, "dataloader_bound", "GPU-a", 0),
        run_id="r1",
        run_name="bert",
        created_at=at(60),
        updated_at=at(60),
        status="open",
        finding=finding,
    )
    with store.engine.connect() as conn:
        row = conn.execute(select(findings)).one()
    assert (row.rank, row.host, row.gpu_uuid, row.severity) == (0, None, "GPU-a", "warning")
    assert (row.time_fraction, row.wasted_gpu_hours) == (0.25, 2.5)


def test_saving_again_replaces_the_runs_findings_and_keeps_ids(store: Store) -> None:
    store.start_run(a_run())
    twins = [a_finding("sync", rank=0), a_finding("sync", rank=0, time_fraction=0.1)]
    store.save_findings("r1", [*twins, a_finding("idle", rank=1)], at=at(60))
    store.save_findings("r2", [a_finding("idle")], at=at(60))
    first = {item.finding_id: item for item in store.findings(run_id="r1")}
    assert set(first) == {
        expected_id("r1", 0, "sync", None, 0),
        expected_id("r1", 0, "sync", None, 1),
        expected_id("r1", 1, "idle", None, 0),
    }
    # The same findings again: the same ids, created then, updated now.
    store.save_findings("r1", [*twins, a_finding("idle", rank=1)], at=at(120))
    again = store.findings(run_id="r1")
    assert {item.finding_id for item in again} == set(first)
    assert {(item.created_at, item.updated_at) for item in again} == {(at(60), at(120))}
    # Fewer findings: the others go; a new one is created now. Run r2's finding stays.
    store.save_findings("r1", [twins[0], a_finding("memcpy", rank=0)], at=at(180))
    now = {item.finding.rule: item for item in store.findings(run_id="r1")}
    assert set(now) == {"sync", "memcpy"}
    assert now["sync"].finding_id == expected_id("r1", 0, "sync", None, 0)
    assert now["sync"].created_at == at(60) and now["memcpy"].created_at == at(180)
    assert [item.run_id for item in store.findings(run_id="r2")] == ["r2"]
    store.save_findings("r1", [], at=at(240))
    assert store.findings(run_id="r1") == [] and count(store, findings) == 1


def test_fleet_findings_are_replaced_per_host_and_never_touch_runs(store: Store) -> None:
    store.start_run(a_run())
    store.save_findings("r1", [a_finding("sync")], at=at(0))
    store.save_findings(None, [a_finding("idle_gpu", gpu_uuid="GPU-a")], at=at(0), host="h1")
    store.save_findings(None, [a_finding("idle_gpu", gpu_uuid="GPU-b")], at=at(0), host="h2")
    store.save_findings(None, [a_finding("throttle")], at=at(0), host="h1")
    store.save_findings(None, [a_finding("throttle")], at=at(0), host="h2")
    fleet = [item for item in store.findings() if item.run_id is None]
    assert sorted((i.finding.rule, i.finding.scope.gpu_uuid) for i in fleet) == [
        ("throttle", None),
        ("throttle", None),
    ]  # saving host h1's findings again replaced its idle_gpu finding
    assert {item.run_name for item in fleet} == {None}
    assert len({item.finding_id for item in fleet}) == 2
    assert fleet[0].finding_id in {
        expected_id(None, None, "throttle", None, "h1", 0),
        expected_id(None, None, "throttle", None, "h2", 0),
    }
    store.save_findings(None, [], at=at(60), host="h2")
    with store.engine.connect() as conn:
        hosts = conn.execute(select(findings.c.host).where(findings.c.run_id.is_(None))).all()
    assert hosts == [("h1",)]
    # Without a host a fleet save replaces every fleet finding, and still no run's.
    store.save_findings(None, [a_finding("stale", host="h3")], at=at(60))
    assert sorted((i.run_id or "-", i.finding.rule) for i in store.findings()) == [
        ("-", "stale"),
        ("r1", "sync"),
    ]
    (run_finding,) = store.findings(run_id="r1")
    assert run_finding.run_name == "bert"


def test_a_finding_of_another_run_or_host_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="is of run 'r2', not 'r1'"):
        store.save_findings("r1", [a_finding(run_id="r2")], at=at(0))
    with pytest.raises(ValueError, match="is of host 'h2', not 'h1'"):
        store.save_findings(None, [a_finding(host="h2")], at=at(0), host="h1")
    assert count(store, findings) == 0


def test_a_string_longer_than_its_column_writes_nothing(store: Store) -> None:
    store.save_findings("r1", [a_finding("sync")], at=at(0))
    long_title = dataclasses.replace(a_finding("idle"), title="t" * 501)
    with pytest.raises(ValueError, match=r"findings\.title holds at most 500"):
        store.save_findings("r1", [a_finding("memcpy"), long_title], at=at(60))
    with pytest.raises(ValueError, match=r"findings\.rule holds at most 64"):
        store.save_findings("r1", [a_finding("r" * 65)], at=at(60))
    assert by_rule(store.findings(run_id="r1")) == ["sync"]  # the transaction rolled back


def test_a_runs_findings_come_most_important_first(store: Store) -> None:
    store.save_findings(
        "r1",
        [
            a_finding("a", "info", 0.9),
            a_finding("b", "warning", 0.1),
            a_finding("c", "critical", 0.05),
            a_finding("d", "warning", 0.4),
            a_finding("e", "critical", 0.3),
        ],
        at=at(0),
    )
    assert by_rule(store.findings(run_id="r1")) == ["e", "c", "d", "b", "a"]
    assert by_rule(store.findings(run_id="r1", min_severity="warning")) == ["e", "c", "d", "b"]
    assert by_rule(store.findings(run_id="r1", min_severity="critical")) == ["e", "c"]
    assert by_rule(store.findings(run_id="r1", limit=2)) == ["e", "c"]
    assert store.findings(run_id="r1", status="resolved") == []
    assert len(store.findings(run_id="r1", status=None)) == 5
    with pytest.raises(ValueError, match="unknown severity 'fatal'"):
        store.findings(min_severity="fatal")


def test_fleet_findings_come_by_wasted_gpu_hours_unknown_last(store: Store) -> None:
    store.start_run(a_run("r2", "gpt"))
    store.save_findings("r1", [a_finding("a", "critical", 0.5)], at=at(0))  # no waste known
    store.save_findings(
        "r2",
        [
            a_finding("b", "info", 0.1, gpu_hours=40.0),
            a_finding("c", "warning", 0.2, gpu_hours=3.0),
            a_finding("d", "critical", 0.2, gpu_hours=3.0),
            a_finding("e", "critical", 0.6, gpu_hours=3.0),
        ],
        at=at(0),
    )
    store.save_findings(None, [a_finding("f", "warning", 0.0, gpu_hours=12.0)], at=at(0))
    ranked = store.findings()
    assert by_rule(ranked) == ["b", "f", "e", "d", "c", "a"]
    assert [item.run_name for item in ranked] == ["gpt", None, "gpt", "gpt", "gpt", None]
    assert [item.run_id for item in ranked] == ["r2", None, "r2", "r2", "r2", "r1"]
    assert by_rule(store.findings(min_severity="critical")) == ["e", "d", "a"]
    assert by_rule(store.findings(limit=3)) == ["b", "f", "e"]


def test_nan_and_infinities_are_stored_as_null(store: Store) -> None:
    finding = dataclasses.replace(
        a_finding(gpu_hours=math.nan),
        evidence={"ratio": math.nan, "spread": [1.5, math.inf, -math.inf], "nested": {"x": 2.0}},
    )
    store.save_findings("r1", [finding], at=at(0))
    with store.engine.connect() as conn:
        row = conn.execute(select(findings.c.document, findings.c.wasted_gpu_hours)).one()
    assert row.wasted_gpu_hours is None
    assert row.document["evidence"] == {
        "ratio": None,
        "spread": [1.5, None, None],
        "nested": {"x": 2.0},
    }
    assert row.document["waste"]["gpu_hours_total"] is None
    (stored,) = store.findings(run_id="r1")
    assert stored.finding.evidence["ratio"] is None
    assert finding.waste is not None
    assert stored.finding.waste == dataclasses.replace(finding.waste, gpu_hours_total=None)
    assert stored.finding.waste.gpus == 1 and stored.finding.waste.currency == "EUR"
    with pytest.raises(ValueError, match="time_fraction nan"):
        store.save_findings("r1", [a_finding(time_fraction=math.nan)], at=at(0))


# -- raw samples and process spans -----------------------------------------------------------


def test_samples_are_the_range_in_time_order(store: Store) -> None:
    rows = samples("GPU-a", "h1", range(100))
    store.write([*facts_records(uuids=("GPU-a", "GPU-b")), *reversed(rows)])
    store.write(samples("GPU-b", "h1", range(100)))
    got = store.samples("GPU-a", at(10), at(20))
    assert got == rows[10:20]  # start included, end excluded, other GPUs left out
    assert got[0].utilization_gpu_percent == 10.0 and got[0].memory_used_bytes == 10
    assert store.samples("GPU-a", at(200), at(300)) == []
    assert store.samples("GPU-a", T0, at(100), limit=100) == rows


def test_samples_over_the_limit_are_thinned_evenly(store: Store) -> None:
    rows = samples("GPU-a", "h1", range(100))
    store.write([*facts_records(), *rows])
    assert store.samples("GPU-a", T0, at(100), limit=10) == rows[::10]
    assert [s.ts for s in store.samples("GPU-a", T0, at(100), limit=25)] == [
        at(n) for n in range(0, 100, 4)
    ]
    thinned = store.samples("GPU-a", T0, at(100), limit=30)
    seconds = [round((s.ts - T0).total_seconds()) for s in thinned]
    assert len(seconds) == 30 and seconds[0] == 0
    assert {b - a for a, b in itertools.pairwise(seconds)} == {3, 4}
    assert store.samples("GPU-a", at(50), at(60), limit=1) == [rows[50]]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.samples("GPU-a", T0, at(100), limit=0)


def test_process_spans_are_one_peak_row_per_pid_with_the_last_time_seen(store: Store) -> None:
    def process(pid: int, second: int, memory: int | None, name: str, uuid: str = "GPU-a"):
        return ProcessSample(uuid, "h1", at(second), pid, name, memory, sm_percent=float(second))

    store.write(
        [
            *facts_records(uuids=("GPU-a", "GPU-b")),
            *(process(100, s, m, f"train-{s}") for s, m in enumerate([1, 5, 9, 9, 2, 3])),
            process(200, 3, 50, "eval"),
            process(200, 4, 40, "eval"),
            process(300, 4, None, "tool"),
            process(100, 99, 1000, "later"),  # outside the range
            process(400, 2, 10_000, "other-gpu", uuid="GPU-b"),
        ]
    )
    spans = store.process_spans("GPU-a", T0, at(10))
    assert [(p.pid, p.used_memory_bytes, p.ts, p.name) for p in spans] == [
        (200, 50, at(4), "eval"),
        (100, 9, at(5), "train-3"),  # the later of two peaks, seen last at second 5
        (300, None, at(4), "tool"),
    ]
    assert spans[1].sm_percent == 3.0 and spans[1].host == "h1" and spans[1].uuid == "GPU-a"
    assert [p.pid for p in store.process_spans("GPU-a", at(4), at(5))] == [200, 100, 300]
    assert store.process_spans("GPU-a", at(4), at(5))[1].ts == at(4)
    assert store.process_spans("GPU-c", T0, at(10)) == []
