"""Many hosts, one Postgres: ten collector processes of eight simulated GPUs each, at 1 Hz,
into the real server. Every record a collector wrote is exactly one row; none is missing and
none is doubled."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.cli import gpulens, start_gpulens

HOSTS = 10
GPUS = 8
SECONDS = 8

ROW_TABLES = ("hosts", "gpus", "gpu_samples", "process_samples", "events")


@pytest.mark.slow
def test_ten_collectors_write_every_row_once(tmp_path, pg_url) -> None:
    assert gpulens(tmp_path, "db", "upgrade", "--db", pg_url).returncode == 0
    processes = [
        start_gpulens(
            tmp_path,
            "collect",
            "--simulate",
            str(GPUS),
            "--seed",
            "7",
            "--interval",
            "1",
            "--flush-interval",
            "2",
            "--duration",
            str(SECONDS),
            "--db",
            pg_url,
            "--host-name",
            f"node{n:02d}",
            "--spool",
            str(tmp_path / f"spool{n}.jsonl"),
        )
        for n in range(HOSTS)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * HOSTS, outputs

    document = json.loads(gpulens(tmp_path, "status", "--json", "--db", pg_url).stdout)
    collectors = {c["host"]: c for c in document["collectors"]}
    assert sorted(collectors) == [f"node{n:02d}" for n in range(HOSTS)]
    assert len(document["gpus"]) == HOSTS * GPUS
    assert len({g["uuid"] for g in document["gpus"]}) == HOSTS * GPUS

    engine = create_engine(pg_url)
    with engine.connect() as conn:
        for host, collector in collectors.items():
            counters = collector["counters"]
            assert counters["pending"] == counters["dropped"] == 0, host
            assert counters["collected"] == counters["written"], host
            rows = sum(
                conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE host = :h"), {"h": host}
                ).scalar_one()
                for table in ROW_TABLES
            )
            assert rows == counters["written"], host  # one row per record: none lost or doubled
            ticks = conn.execute(
                text("SELECT count(DISTINCT ts), count(*) FROM gpu_samples WHERE host = :h"),
                {"h": host},
            ).one()
            assert ticks[0] >= SECONDS // 2 and ticks[1] == GPUS * ticks[0], host
    engine.dispose()
