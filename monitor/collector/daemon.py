"""The collector daemon: APScheduler wiring, the clock watchdog, signals and shutdown.

The scheduler is built inside :func:`run`, never at import. Each job is a thin call into
:class:`monitor.collector.jobs.Collector`; ``coalesce`` and ``max_instances=1`` mean a slow job is
skipped, never stacked. APScheduler 3 times jobs by the wall clock, so the main loop watches
wall time against the monotonic clock: when the wall clock jumps (NTP step, suspend, an
admin), every job is rescheduled from the new "now" — no burst after a jump forward, no stall
after a jump back.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.clock import Clock, ClockWatch, SystemClock
from monitor.collector.exporter import GpuCollector, serve
from monitor.collector.jobs import Collector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    duration_seconds: float | None = None
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    dcgm_names: bool = False
    flush_deadline_seconds: float = 10.0


def _add_jobs(scheduler: BackgroundScheduler, collector: Collector) -> None:
    settings = collector.settings
    jobs: list[tuple[str, Callable[[], None], float]] = [
        ("sample", collector.sample, settings.interval_seconds),
        ("flush", collector.flush, settings.flush_seconds),
        ("rollup", collector.rollup, settings.rollup_seconds),
        ("retention", collector.apply_retention, settings.retention_seconds),
    ]
    for job_id, func, seconds in jobs:
        scheduler.add_job(func, "interval", seconds=seconds, id=job_id, name=job_id)


def reschedule_all(scheduler: BackgroundScheduler, collector: Collector) -> None:
    """Restart every job's interval from the current wall clock."""
    for job in scheduler.get_jobs():
        trigger = job.trigger
        scheduler.reschedule_job(job.id, trigger="interval", seconds=trigger.interval_length)
    log.info("jobs rescheduled after a clock jump (host %s)", collector.host)


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def run(
    collector: Collector,
    options: DaemonOptions,
    *,
    clock: Clock | None = None,
    stop: threading.Event | None = None,
    wait: Callable[[float], bool] | None = None,
) -> int:
    """Run until ``options.duration_seconds`` pass, SIGTERM/SIGINT, or ``stop`` is set.

    ``wait(seconds)`` is the main loop's pause between clock checks; it returns ``True`` to
    stop. The default waits on ``stop``; tests pass one that steps the loop themselves.
    Returns the process exit code (0 for a clean stop).
    """
    clock = clock or SystemClock()
    stop = stop or threading.Event()
    wait = wait or (lambda seconds: stop.wait(timeout=seconds))
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    _add_jobs(scheduler, collector)
    previous_handlers = _install_signals(stop)
    server = None
    if options.metrics_port is not None:
        exporter = GpuCollector(collector.snapshot, dcgm_names=options.dcgm_names)
        server = serve(options.metrics_port, exporter, addr=options.metrics_addr)
        log.info(
            "Prometheus metrics on http://%s:%d/metrics", options.metrics_addr, options.metrics_port
        )
    watch = ClockWatch(clock)
    started = clock.monotonic()
    reason = "stopped"
    collector.sample()
    collector.apply_retention()
    scheduler.start()
    try:
        while not wait(min(1.0, collector.settings.interval_seconds)):
            if watch.check() is not None:
                reschedule_all(scheduler, collector)
            elapsed = clock.monotonic() - started
            if options.duration_seconds is not None and elapsed >= options.duration_seconds:
                reason = f"duration of {timedelta(seconds=options.duration_seconds)} reached"
                break
        else:
            reason = "signal"
    finally:
        scheduler.shutdown(wait=False)
        collector.stop(reason, options.flush_deadline_seconds)
        if server is not None:
            server.shutdown()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return 0
