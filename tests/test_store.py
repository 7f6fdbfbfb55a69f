"""The store on real SQLite files and the real Postgres server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from monitor.core.errors import SchemaOutOfDate, StoreUnavailable
from monitor.core.gpu_records import Event, GpuInfo, GpuSample, ProcessSample
from monitor.core.resolution import RetentionPolicy
from monitor.store import Store
from monitor.store.engine import create_store_engine
from monitor.store.schema import gpu_rollups_1h, gpu_rollups_1m, gpu_samples, metadata
from tests.helpers import T0, at, count, facts_records, samples


def test_schema_matches_the_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(context, metadata) == []


def test_a_retried_write_stores_each_row_once(store: Store) -> None:
    batch = [*facts_records(), *samples("GPU-a", "h1", range(100))]
    batch.append(Event("e1", at(5), "h1", "xid", "GPU-a", 79.0, "XID 79"))
    batch.append(ProcessSample("GPU-a", "h1", at(5), 4242, "python", 2**30))
    store.write(batch)
    store.write(batch)
    assert count(store, gpu_samples) == 100
    assert [e.event_id for e in store.events(T0, at(100))] == ["e1"]
    assert [p.pid for p in store.processes_at("GPU-a", at(30))] == [4242]


def test_gpu_facts_are_upserted(store: Store) -> None:
    store.write(facts_records())
    store.write([GpuInfo("GPU-a", "h1", at(60), 3, "Renamed", True, memory_total_bytes=8)])
    (gpu,) = store.gpus()
    assert (gpu.index, gpu.name, gpu.memory_total_bytes, gpu.ts) == (3, "Renamed", 8, at(60))


def test_latest_is_the_newest_sample_per_gpu(store: Store) -> None:
    store.write([*facts_records(uuids=("GPU-a", "GPU-b")), *samples("GPU-a", "h1", range(10))])
    latest = {item.gpu.uuid: item.sample for item in store.latest()}
    assert latest["GPU-b"] is None
    sample = latest["GPU-a"]
    assert sample is not None and sample.ts == at(9)
    assert sample.utilization_gpu_percent == 9.0
    assert sample.temperature_celsius is None  # not reported stays NULL, never 0


def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    ts = T0.replace(microsecond=123456)
    store.write([*facts_records(), GpuSample("GPU-a", "h1", ts, power_watts=1.0)])
    sample = store.latest()[0].sample
    assert sample is not None and sample.ts == ts and sample.ts.utcoffset() == timedelta(0)


def test_rollups_aggregate_min_mean_max_and_sums(store: Store) -> None:
    store.write([*facts_records(), *samples("GPU-a", "h1", range(180))])
    assert store.rollup("h1", T0, at(180)) == 3
    with store.engine.connect() as conn:
        rows = conn.execute(select(gpu_rollups_1m).order_by(gpu_rollups_1m.c.ts)).all()
        hour = conn.execute(select(gpu_rollups_1h)).one()
    first = rows[0]._mapping
    assert first["sample_count"] == 60
    assert first["utilization_gpu_percent_min"] == 0.0
    assert first["utilization_gpu_percent_max"] == 59.0
    assert first["utilization_gpu_percent_mean"] == pytest.approx(29.5)
    assert first["energy_used_joules_sum"] == pytest.approx(60.0)
    assert hour._mapping["sample_count"] == 180
    assert hour._mapping["utilization_gpu_percent_mean"] == pytest.approx(89.5)
    assert hour._mapping["energy_used_joules_sum"] == pytest.approx(180.0)


def test_rolling_up_again_folds_in_late_rows(store: Store) -> None:
    store.write([*facts_records(), *samples("GPU-a", "h1", range(0, 60, 2))])
    store.rollup("h1", T0, at(60))
    store.write(samples("GPU-a", "h1", range(1, 60, 2)))  # a replayed spool, say
    store.rollup("h1", T0, at(60))
    assert count(store, gpu_rollups_1m) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(gpu_rollups_1m.c.sample_count)).scalar_one() == 60


def test_series_reads_raw_for_short_ranges(store: Store) -> None:
    store.write([*facts_records(), *samples("GPU-a", "h1", range(600))])
    series = store.series("GPU-a", "utilization_gpu_percent", T0, at(600), now=at(600))
    assert series.source == "raw" and series.bucket_seconds == 1
    assert len(series.points) == 600
    assert series.points[10].mean == 10.0


def test_series_uses_rollups_and_stays_under_the_point_budget(store: Store) -> None:
    # Three days at one sample a minute: the 1-min rollup path must be used and bucketed.
    rows = [
        GpuSample("GPU-a", "h1", at(60 * m), utilization_gpu_percent=float(m % 100))
        for m in range(3 * 24 * 60)
    ]
    store.write([*facts_records(), *rows])
    store.rollup("h1", T0, at(3 * 86400))
    end = at(3 * 86400)
    series = store.series("GPU-a", "utilization_gpu_percent", T0, end, now=end, max_points=500)
    assert series.source == "1m"
    assert series.bucket_seconds % 60 == 0
    assert 0 < len(series.points) <= 500
    assert min(p.min for p in series.points if p.min is not None) == 0.0
    assert max(p.max for p in series.points if p.max is not None) == 99.0


def test_series_rejects_unknown_metrics_and_bitmasks(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        store.series("GPU-a", "x; DROP TABLE gpus", T0, at(10), now=at(10))
    with pytest.raises(ValueError, match="bitmask"):
        store.series("GPU-a", "clock_event_reasons", T0, at(10), now=at(10))


def test_retention_expires_raw_rows_and_keeps_hourly_rollups(store: Store) -> None:
    store.retention = RetentionPolicy(raw_days=1, rollup_1m_days=2)
    old = [GpuSample("GPU-a", "h1", at(3600 * h), power_watts=1.0) for h in range(0, 96)]
    store.write([*facts_records(), *old])
    store.rollup("h1", T0, at(96 * 3600))
    deleted = store.apply_retention(at(96 * 3600))
    assert deleted["gpu_samples"] == 72
    assert count(store, gpu_samples) == 24
    assert count(store, gpu_rollups_1m) == 48
    assert count(store, gpu_rollups_1h) == 96


def test_a_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.write([GpuSample("GPU-a", "h1", T0.replace(tzinfo=None))])


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'x' / 'g.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_an_unreachable_postgres_says_what_to_check() -> None:
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1.*Check that it is running"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_reading_an_unmigrated_database_says_what_to_run(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(SchemaOutOfDate, match="gpulens db upgrade"):
        Store.open(url, upgrade=False)


def _open_and_close(url: str) -> None:
    Store.open(url).close()


def test_processes_creating_one_sqlite_store_at_once_take_turns(tmp_path: Path) -> None:
    # The ranks of a distributed job open a fresh store together; without the lock file two
    # of them ran the first migration at once ("table ... already exists").
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_open_and_close, args=(url,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    store = Store.open(url, upgrade=False)  # at head, or this raises SchemaOutOfDate
    store.close()
