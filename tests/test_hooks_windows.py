"""Profiler windows: the schedule arithmetic against torch's, the slow-step detector with plain
numbers, and real torch.profiler windows (session windows and trace_handler) on CPU."""

from __future__ import annotations

import gzip
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.profiler import ProfilerAction

import profiler_hooks
from profiler_hooks import ProfileSchedule
from profiler_hooks.config import resolve_config
from profiler_hooks.handler import traced_steps
from profiler_hooks.session import StepSession
from profiler_hooks.step_timer import SlowStepDetector
from profiler_hooks.windows import WindowPlan, scheduled_window
from tests.helpers import ManualPerfClock
from tests.test_hooks_writer import RecordingSink

SCHEDULES = [
    ProfileSchedule(wait=2, warmup=1, active=2, repeat=1, skip_first=0),
    ProfileSchedule(wait=0, warmup=0, active=1, repeat=0, skip_first=0),
    ProfileSchedule(wait=3, warmup=2, active=3, repeat=2, skip_first=5),
    ProfileSchedule(),
]


pytestmark = pytest.mark.usefixtures("hooks_isolated")


# -- the schedule, pure -----------------------------------------------------------------------


def plans(schedule: ProfileSchedule, steps: int) -> list[WindowPlan]:
    found, step = [], 0
    while (plan := scheduled_window(schedule, step)) is not None and plan.start_step < steps:
        found.append(plan)
        step = plan.start_step + 1
    return found


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_scheduled_windows_trace_the_steps_torch_schedule_records(
    schedule: ProfileSchedule,
) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Profiler won't be using warmup")
        torch_schedule = torch.profiler.schedule(
            wait=schedule.wait,
            warmup=schedule.warmup,
            active=schedule.active,
            repeat=schedule.repeat,
            skip_first=schedule.skip_first,
        )
    steps = 1_000
    recorded = {ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE}
    expected_traced = [s for s in range(steps) if torch_schedule(s) in recorded]
    expected_warmup = [s for s in range(steps) if torch_schedule(s) == ProfilerAction.WARMUP]
    windows = plans(schedule, steps)
    traced = [s for p in windows for s in range(p.first_step, p.last_step + 1) if s < steps]
    warmup = [s for p in windows for s in range(p.start_step, p.first_step) if s < steps]
    assert (traced, warmup) == (expected_traced, expected_warmup)


def test_a_finite_schedule_ends() -> None:
    schedule = ProfileSchedule(wait=1, warmup=1, active=1, repeat=2, skip_first=0)
    assert [p.first_step for p in plans(schedule, 100)] == [2, 5]
    assert scheduled_window(schedule, 6) is None


# -- the slow-step detector, pure -------------------------------------------------------------


def test_a_step_over_three_times_the_median_is_slow() -> None:
    detector = SlowStepDetector()
    assert not any(detector.observe(step, 10.0) for step in range(20))
    assert detector.median == 10.0
    assert not detector.observe(20, 30.0)  # exactly 3x is not over it
    assert detector.observe(21, 30.5)


def test_no_step_is_slow_before_twenty_steps() -> None:
    detector = SlowStepDetector()
    assert not any(detector.observe(step, 10.0) for step in range(19))
    assert not detector.observe(19, 1_000.0)
    assert detector.observe(20, 1_000.0)


def test_after_a_slow_step_the_next_ones_wait_out_the_cool_down() -> None:
    detector = SlowStepDetector(cooldown_steps=500)
    for step in range(20):
        detector.observe(step, 10.0)
    assert detector.observe(20, 100.0)
    flagged = [
        step for step in range(21, 700) if detector.observe(step, 100.0 if step % 50 == 0 else 10.0)
    ]
    assert flagged == [550]


def test_the_median_follows_the_last_fifty_steps() -> None:
    detector = SlowStepDetector(history=50)
    for step in range(50):
        detector.observe(step, 10.0)
    for step in range(50, 100):
        detector.observe(step, 20.0)
    assert detector.median == 20.0
    assert not detector.observe(100, 59.0)
    assert detector.observe(101, 61.0)


# -- real windows ------------------------------------------------------------------------------


def train(
    steps: int, step_hook: Any, *, clock: ManualPerfClock | None = None, slow_at: int | None = None
) -> None:
    """``steps`` real training steps; with ``clock``, each takes 10 ms of it (``slow_at``: 300)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 16), torch.randn(8, 4)
    for step in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        if clock is not None:
            clock.advance(0.3 if step == slow_at else 0.01)
        step_hook()


def trace_steps(path: Path) -> list[int]:
    with gzip.open(path, "rt") as handle:
        events = json.load(handle)["traceEvents"]
    names = {event.get("name", "") for event in events}
    return sorted(int(m.group(1)) for n in names if (m := re.fullmatch(r"ProfilerStep#(\d+)", n)))


def traced_run(
    name: str, tmp_path: Path, schedule: ProfileSchedule, steps: int
) -> tuple[RecordingSink, str]:
    """``steps`` steps of a session that traces on ``schedule`` alone (no slow-step windows, no
    analysis): what its sink was given, and its run id."""
    sink = RecordingSink()
    with profiler_hooks.profile_steps(
        name,
        sink=sink,
        trace_dir=tmp_path,
        schedule=schedule,
        analysis="off",
        slow_step_trigger=False,
    ) as session:
        train(steps, session.step)
    return sink, session.run_id


def test_session_windows_carry_the_session_step_numbers(tmp_path: Path) -> None:
    schedule = ProfileSchedule(wait=3, warmup=1, active=2, repeat=2, skip_first=1)
    sink, run_id = traced_run("windows", tmp_path, schedule, 16)

    windows = sink.windows
    assert [(w.first_step, w.last_step, w.trigger, w.status) for w in windows] == [
        (5, 6, "schedule", "recording"),
        (11, 12, "schedule", "recording"),
    ]
    assert [s.step for s in sink.steps if s.is_profiled] == [5, 6, 11, 12]
    for window in windows:
        path = Path(window.trace_path)
        assert path.name == f"window-{window.first_step}-{window.last_step}.pt.trace.json.gz"
        assert path.parent == tmp_path / run_id
        assert set(trace_steps(path)) >= {window.first_step, window.last_step}


def test_a_slow_step_starts_an_extra_window_at_the_next_step(tmp_path: Path) -> None:
    clock = ManualPerfClock()  # the session's step times, so that no scheduling noise gets in
    sink = RecordingSink()
    schedule = ProfileSchedule(wait=1_000, warmup=1, active=2, repeat=1, skip_first=1_000)
    config = resolve_config(
        "slow", sink=sink, trace_dir=tmp_path, schedule=schedule, analysis="off"
    )
    with StepSession(config, sink=sink, clock=clock) as session:
        train(30, session.step, clock=clock, slow_at=24)

    (window,) = sink.windows
    assert (window.first_step, window.last_step, window.trigger) == (26, 27, "slow_step")
    durations = {step.step: step.duration_us for step in sink.steps}
    assert durations[24] == 300_000 and durations[23] == 10_000


def test_closing_inside_a_window_keeps_the_traced_steps_that_ended(tmp_path: Path) -> None:
    schedule = ProfileSchedule(wait=0, warmup=1, active=10, repeat=1, skip_first=2)
    sink, _ = traced_run("cut", tmp_path, schedule, 6)
    (window,) = sink.windows
    assert (window.first_step, window.last_step) == (3, 5)
    assert Path(window.trace_path).exists()
    assert not torch.autograd.profiler._is_profiler_enabled


# -- trace_handler with the user's own profiler -------------------------------------------


# torch warns (once per process) that a profile reused for a second cycle drops the first's
# events: the user's profiler, not gpulens.
@pytest.mark.filterwarnings("ignore:Warning. Profiler clears events at the end of each cycle")
def test_trace_handler_saves_and_analyses_a_users_profiler_cycles(tmp_path: Path) -> None:
    sink = RecordingSink()
    handler = profiler_hooks.trace_handler("own-profiler", sink=sink, trace_dir=tmp_path)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU],
        schedule=torch.profiler.schedule(wait=1, warmup=1, active=2, repeat=2),
        on_trace_ready=handler,
    ) as prof:
        train(10, prof.step)
    handler.close()

    names = sink.names()
    assert names[0] == "start_run" and names.count("end_run") == 1
    windows = sink.windows
    assert [(w.first_step, w.last_step, w.trigger) for w in windows] == [
        (2, 3, "manual"),
        (6, 7, "manual"),
    ]
    assert all(w.run_id == handler.run_id for w in windows)
    analyzed = dict(value for name, value in sink.calls if name == "save_window_analysis")
    assert set(analyzed) == {w.window_id for w in windows}
    (rank,) = analyzed[windows[0].window_id].ranks
    assert [step.step for step in rank.steps] == [2, 3]


def test_trace_handler_inside_a_session_joins_its_run(tmp_path: Path) -> None:
    sink = RecordingSink()
    with (
        profiler_hooks.profile_steps(
            "joined", sink=sink, trace_dir=tmp_path, profile=False, analysis="off"
        ) as session,
        torch.profiler.profile(
            schedule=torch.profiler.schedule(wait=1, warmup=1, active=1, repeat=1),
            on_trace_ready=profiler_hooks.trace_handler(),
        ) as prof,
    ):
        train(4, lambda: (prof.step(), session.step()))
    (window,) = sink.windows
    assert window.run_id == session.run_id and (window.first_step, window.last_step) == (2, 2)
    assert [name for name in sink.names() if name == "start_run"] == ["start_run"]


class FakeProfile:
    def __init__(self, step_num: int, schedule: Any, record_steps: bool = True) -> None:
        self.step_num, self.schedule, self.record_steps = step_num, schedule, record_steps


def test_traced_steps_from_step_and_from_stop() -> None:
    schedule = torch.profiler.schedule(wait=1, warmup=1, active=3, repeat=1)
    assert traced_steps(FakeProfile(5, schedule)) == (2, 4)  # called by step() into step 5
    assert traced_steps(FakeProfile(3, schedule)) == (2, 3)  # called by stop() in step 3
    assert traced_steps(FakeProfile(7, lambda _: ProfilerAction.RECORD, False)) == (0, 7)
