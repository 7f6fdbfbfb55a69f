"""Choosing raw samples or rollups for a series (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.core.resolution import RetentionPolicy, plan_series
from tests.helpers import T0

POLICY = RetentionPolicy()


@pytest.mark.parametrize(
    ("span", "source", "bucket"),
    [
        (timedelta(minutes=15), "raw", 1),
        (timedelta(hours=1), "raw", 2),
        (timedelta(hours=6), "raw", 11),
        (timedelta(days=1), "raw", 44),
        (timedelta(days=7), "1m", 360),
        (timedelta(days=30), "1m", 1320),
        (timedelta(days=90), "1h", 7200),
        (timedelta(days=400), "1h", 18000),
    ],
)
def test_the_finest_source_within_the_point_budget(span, source, bucket) -> None:
    plan = plan_series(T0 - span, T0, T0, POLICY)
    assert (plan.source, plan.bucket_seconds) == (source, bucket)
    assert span.total_seconds() / plan.bucket_seconds <= 2000


def test_expired_raw_data_falls_back_to_rollups() -> None:
    start = T0 - timedelta(days=10)
    plan = plan_series(start, start + timedelta(minutes=30), T0, POLICY)
    assert plan.source == "1m" and plan.bucket_seconds == 60


def test_expired_minute_rollups_fall_back_to_hours() -> None:
    start = T0 - timedelta(days=200)
    assert plan_series(start, start + timedelta(hours=2), T0, POLICY).source == "1h"


def test_an_empty_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty time range"):
        plan_series(T0, T0, T0, POLICY)
