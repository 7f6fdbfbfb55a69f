"""One run as the store sees it: its :class:`RunInfo`, its writer, and its saved traces.

A :class:`~profiler_hooks.session.StepSession` owns one; so does a
:func:`~profiler_hooks.trace_handler` used without a session.
A window's trace is exported where torch hands it over, then gzipped in the writer thread to
``<trace_dir>/<run_id>/window-<first>-<last>.pt.trace.json.gz`` (Perfetto and TensorBoard open
``.json.gz``), saved as a :class:`WindowRecord` and analyzed in the background.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeAlias

from monitor.core.run_records import RunInfo, RunStatus, WindowRecord
from profiler_hooks.analyzer import describe_error
from profiler_hooks.codec import hook_spool
from profiler_hooks.config import HooksConfig
from profiler_hooks.environment import detect_environment, torch_settings
from profiler_hooks.sink import EndRun, RunSink, SaveWindow, StartRun, StoreSink
from profiler_hooks.step_timer import RawStep, WallClock, step_record
from profiler_hooks.writer import BackgroundWriter, HookStats

log = logging.getLogger(__name__)

WindowTrigger: TypeAlias = Literal["schedule", "slow_step", "import", "manual"]


@dataclass(frozen=True, slots=True)
class TraceCapture:
    """A finished profiler window, handed over in ``on_trace_ready``; ``export(path)``
    writes its Chrome trace JSON."""

    export: Callable[[str], object]
    first_step: int
    last_step: int
    started_at: datetime
    trigger: WindowTrigger = "schedule"


def describe_run(
    config: HooksConfig, run_id: str, clock: WallClock, settings: Mapping[str, Any]
) -> RunInfo:
    """The run's row: this process's host, GPUs and rank; the user's config with the hook
    settings under ``"gpulens"``."""
    env = detect_environment()
    return RunInfo(
        run_id=run_id,
        name=config.run_name,
        host=env.host,
        started_at=clock.at(clock.perf_ns),
        gpu_uuids=env.gpu_uuids,
        rank=env.rank,
        world_size=env.world_size,
        config={
            **config.user_config,
            "gpulens": {
                **settings,
                "local_rank": env.local_rank,
                "pid": os.getpid(),
                "torch": torch_settings(),
            },
        },
        versions=env.versions,
    )


class RunRecorder:
    """Writes one run through a :class:`BackgroundWriter`."""

    def __init__(
        self, config: HooksConfig, info: RunInfo, clock: WallClock, sink: RunSink | None = None
    ) -> None:
        self.config = config
        self.info = info
        owned = StoreSink(config.db_url) if sink is None and config.db_url else None
        target = sink if sink is not None else owned
        if target is None:
            raise ValueError("a RunRecorder needs a sink or a store URL")
        self.writer = BackgroundWriter(
            target,
            hook_spool(
                config.spool_dir,
                info.run_id,
                store_url=config.db_url if owned is not None else None,
                max_bytes=config.spool_max_bytes,
            ),
            to_record=partial(step_record, run_id=info.run_id, clock=clock),
            analysis=config.analysis,
            store_url=config.db_url if owned is not None else None,
            close_sink=owned.close if owned is not None else None,
            flush_interval_s=config.flush_interval_s,
            flush_steps=config.flush_steps,
            capacity_steps=config.capacity_steps,
        )
        self.add_step: Callable[[RawStep], None] = self.writer.add_step
        self._closed = False

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def start(self) -> None:
        self.writer.submit(StartRun(self.info))
        self.writer.start()

    def annotate(self, **settings: Any) -> None:
        """Add ``settings`` to the run's ``"gpulens"`` config (the run row is rewritten)."""
        config = dict(self.info.config)
        config["gpulens"] = {**config.get("gpulens", {}), **settings}
        self.info = dataclasses.replace(self.info, config=config)
        self.writer.submit(StartRun(self.info))

    def save_trace(self, capture: TraceCapture) -> None:
        """Export the window's trace now; gzip, save and analyze it in the writer thread.

        The export stays on the calling (training) thread: torch's exporter holds the GIL
        throughout, so elsewhere it would stall a later step at random; here its cost lands
        in the step after the window, which the slow-step detector skips.
        """
        path = self.trace_path(capture.first_step, capture.last_step)
        raw = path.with_name(path.name.removesuffix(".gz") + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            capture.export(str(raw))
        except Exception as exc:
            raw.unlink(missing_ok=True)
            log.warning("gpulens: cannot export the trace of steps %s: %s", path.name, exc)
            self.writer.call_soon(partial(self._save_window, capture, None, exc))
            return
        self.writer.call_soon(partial(self._save_window, capture, raw, None))

    def close(self, status: RunStatus) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.submit(EndRun(self.run_id, datetime.now(timezone.utc), status))
        self.writer.close(self.config.close_timeout_s)

    def stats(self) -> HookStats:
        return self.writer.stats()

    def trace_path(self, first_step: int, last_step: int) -> Path:
        name = f"window-{first_step}-{last_step}.pt.trace.json.gz"
        return self.config.trace_dir / self.run_id / name

    def _save_window(
        self, capture: TraceCapture, raw: Path | None, error: Exception | None
    ) -> None:
        path = self.trace_path(capture.first_step, capture.last_step)
        window = WindowRecord(
            window_id=f"{self.run_id}-{capture.first_step}-{capture.last_step}",
            run_id=self.run_id,
            first_step=capture.first_step,
            last_step=capture.last_step,
            started_at=capture.started_at,
            trigger=capture.trigger,
        )
        try:
            if raw is not None:
                gzip_file(raw, path)
        except OSError as exc:
            log.warning("gpulens: cannot save the trace %s: %s", path, exc)
            error = exc
        if error is not None:
            failed = dataclasses.replace(window, status="failed", error=describe_error(error))
            self.writer.submit(SaveWindow(failed, analyze=False))
            return
        analyze = self.writer.analyzer.mode != "off"
        saved = dataclasses.replace(
            window, trace_path=str(path), status="analyzing" if analyze else "recording"
        )
        self.writer.submit(SaveWindow(saved, analyze=analyze))


def gzip_file(raw: Path, path: Path) -> None:
    """Compress ``raw`` to ``path`` (atomically: a reader never sees half a file), then
    remove ``raw``."""
    part = path.with_name(path.name + ".part")
    try:
        with raw.open("rb") as source, gzip.open(part, "wb", compresslevel=6) as target:
            shutil.copyfileobj(source, target, 1 << 20)
        os.replace(part, path)
    finally:
        raw.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
