"""Time-bucket SQL expressions, per dialect (the one dialect-specific piece of query SQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, case, cast, func, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.schema import UtcDateTime


def bucket_start(column: Any, width_seconds: int, dialect: str) -> ColumnElement[Any]:
    """The start of the ``width_seconds`` bucket (aligned to the epoch) holding ``column``."""
    if dialect == "sqlite":
        # Stored as epoch seconds: integer division, then back to seconds.
        seconds = type_coerce(column, Float)
        expr: ColumnElement[Any] = cast(seconds / width_seconds, Integer) * width_seconds
    else:
        epoch = func.extract("epoch", column)
        expr = func.to_timestamp(func.floor(epoch / width_seconds) * width_seconds)
    return type_coerce(expr, UtcDateTime())


def weighted_mean(mean: Any, count: Any) -> ColumnElement[Any]:
    """The mean over buckets of rollup ``mean`` values, weighted by their sample ``count``;
    buckets whose mean is NULL (metric not reported) carry no weight."""
    weight = case((mean.is_not(None), count))
    result: ColumnElement[Any] = func.sum(mean * count) / func.nullif(func.sum(weight), 0)
    return result
