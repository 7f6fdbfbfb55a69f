"""Telemetry storage: SQLAlchemy Core tables, Alembic migrations, writes and read queries."""

from __future__ import annotations

from monitor.core.gpu_records import LatestGpu
from monitor.store.store import Store

__all__ = ["LatestGpu", "Store"]
