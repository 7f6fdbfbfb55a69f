"""StepSession and its entry points, driven by real PyTorch training loops on CPU and written to
a real SQLite store (and a fake sink where a store outage is the point). Where a test checks
times, the session reads a :class:`ManualPerfClock` that the loop and the dataset advance by
hand, so that every duration is exact; no test sleeps or checks a real clock's durations."""

from __future__ import annotations

import gzip
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import profiler_hooks
from monitor.core.errors import ConfigError
from monitor.store import Store
from profiler_hooks import ProfileSchedule, SessionError
from profiler_hooks.config import HooksConfig, resolve_config
from profiler_hooks.environment import distributed_rank, visible_gpu_uuids
from profiler_hooks.session import StepSession
from tests.helpers import ManualPerfClock, modules_imported_by
from tests.test_hooks_writer import RecordingSink

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2
# Microseconds of the session's clock: each sample's loading (the DataLoader wait), the host
# work between a batch's arrival and the forward, the rest of the step, and what happens
# between two passes over the data (evaluation, checkpoints).
LOAD_US, PREPROCESS_US, COMPUTE_US, BETWEEN_PASSES_US = 40_000, 5_000, 7_000, 900_000


pytestmark = pytest.mark.usefixtures("hooks_isolated")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only (the conftest's ``store`` opens it): the hooks' own tests."""
    return "sqlite:///" + str(tmp_path / "g.db")


class SlowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Each sample costs ``LOAD_US`` of ``clock``: a DataLoader wait of known size (loaded in
    the training process, ``num_workers=0``, where the session reads the same clock)."""

    def __init__(self, size: int, clock: ManualPerfClock) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(size, 8, generator=generator)
        self.y = torch.randn(size, 2, generator=generator)
        self.clock = clock

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.clock.advance(LOAD_US / 1e6)
        return self.x[index], self.y[index]


def sink_config(tmp_path: Path) -> HooksConfig:
    """A session's settings for a test's own sink, without profiler windows."""
    return resolve_config(trace_dir=tmp_path, profile=False, has_sink=True)


def tiny_model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def train_steps(session: StepSession, steps: int) -> None:
    model, optimizer = tiny_model()
    x, y = torch.randn(4, 8), torch.randn(4, 2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        session.step(samples=4)


# -- the package ---------------------------------------------------------------------------


def test_importing_the_hooks_imports_neither_torch_nor_the_store() -> None:
    code = "import profiler_hooks\nprofiler_hooks.ProfileSchedule"
    assert modules_imported_by(code, ("torch", "sqlalchemy", "numpy")) == []


def test_the_public_names_are_the_contract() -> None:
    for name in profiler_hooks.__all__:
        assert getattr(profiler_hooks, name) is not None
    assert callable(profiler_hooks.trace_handler)  # the function, never a module
    # The keywords are HookOptions' (tests/test_hooks_config.py checks them against the config).
    parameters = inspect.signature(profiler_hooks.profile_steps).parameters
    assert list(parameters) == ["run_name", "options"]
    assert parameters["options"].annotation == "Unpack[HookOptions]"
    assert list(profiler_hooks.HookOptions.__annotations__) == [
        "run_name",
        "db",
        "batch_size",
        "tokens_per_step",
        "schedule",
        "profile",
        "trace_dir",
        "record_shapes",
        "profile_memory",
        "with_stack",
        "slow_step_trigger",
        "enabled",
        "config",
        "sink",
        "analysis",
    ]
    assert ProfileSchedule() == ProfileSchedule(
        wait=290, warmup=5, active=5, repeat=0, skip_first=10
    )


# -- a real training loop into a real store ---------------------------------------------------


def test_a_training_loop_is_recorded_step_by_step_with_one_analyzed_window(
    db_url: str, tmp_path: Path
) -> None:
    model, optimizer = tiny_model()
    clock = ManualPerfClock()  # the steps' times; the profiler window runs on real time
    loader = DataLoader(SlowDataset(60, clock), batch_size=BATCH)
    schedule = ProfileSchedule(wait=2, warmup=1, active=2, repeat=1, skip_first=0)
    config = resolve_config(
        "e2e",
        db=db_url,
        trace_dir=tmp_path / "traces",
        schedule=schedule,
        slow_step_trigger=False,
        config={"lr": 0.1},
    )
    with StepSession(config, clock=clock) as session:
        for x, y in session.wrap_dataloader(loader):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
            clock.advance(COMPUTE_US / 1e6)
            session.step(samples=len(x))
    assert session.stats.written == 30 and session.stats.pending == 0

    store = Store.open(db_url)
    (run,) = store.runs()
    assert (run.name, run.status, run.host) == ("e2e", "finished", socket.gethostname())
    assert run.config["lr"] == 0.1 and run.config["gpulens"]["schedule"]["active"] == 2
    assert run.versions["torch"] == torch.__version__

    steps = store.steps(session.run_id)
    assert [s.step for s in steps] == list(range(30))
    assert all(s.started_at.tzinfo is not None for s in steps)
    assert [s.started_at for s in steps] == sorted(s.started_at for s in steps)
    assert len({s.started_at for s in steps}) == len(steps)
    for step in steps:
        assert step.dataloader_wait_us == BATCH * LOAD_US
        assert step.duration_us == BATCH * LOAD_US + COMPUTE_US
        assert step.samples == BATCH and step.samples_per_second
        assert step.cuda_allocated_bytes is None  # CPU
    assert [s.step for s in steps if s.is_profiled] == [3, 4]

    (window,) = store.windows(session.run_id)
    assert (window.first_step, window.last_step, window.trigger) == (3, 4, "schedule")
    assert window.status == "analyzed", window.error
    assert window.trace_path is not None
    with gzip.open(window.trace_path, "rt") as handle:
        assert json.load(handle)["traceEvents"]
    breakdowns = store.step_breakdowns(session.run_id, window_id=window.window_id)
    assert [row.step for row in breakdowns] == [3, 4]
    store.close()


class AttachedLoop(NamedTuple):
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    clock: ManualPerfClock
    loader: DataLoader[tuple[torch.Tensor, torch.Tensor]]
    sink: RecordingSink
    session: StepSession


def attached_loop(tmp_path: Path, samples: int, *, with_model: bool) -> AttachedLoop:
    """What ``profiler_hooks.attach(optimizer=, dataloader=, [model=,] sink=)`` does, on a
    hand-moved clock, over a loader whose every sample costs ``LOAD_US``."""
    model, optimizer = tiny_model()
    clock = ManualPerfClock()
    loader = DataLoader(SlowDataset(samples, clock), batch_size=BATCH)
    sink = RecordingSink()
    session = StepSession(sink_config(tmp_path), sink=sink, clock=clock).attach(
        optimizer=optimizer, dataloader=loader, model=model if with_model else None
    )
    return AttachedLoop(model, optimizer, clock, loader, sink, session)


def test_attach_records_an_unchanged_loop(tmp_path: Path) -> None:
    model, optimizer, clock, loader, sink, session = attached_loop(tmp_path, 12, with_model=False)
    for _epoch in range(2):
        for x, y in loader:  # the loop body knows nothing of gpulens
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            clock.advance(COMPUTE_US / 1e6)
            optimizer.step()
        clock.advance(BETWEEN_PASSES_US / 1e6)  # an evaluation: part of no step
    session.close()
    optimizer.step()  # after close: no longer counted

    assert session.steps_recorded == 12 and type(loader) is DataLoader
    assert [s.step for s in sink.steps] == list(range(12))
    assert all(s.dataloader_wait_us == BATCH * LOAD_US for s in sink.steps)
    assert all(s.duration_us == BATCH * LOAD_US + COMPUTE_US for s in sink.steps)
    assert sink.names()[-1] == "end_run" and sink.calls[-1][1][1] == "finished"


def test_attach_with_a_model_times_the_batch_to_forward_gap(tmp_path: Path) -> None:
    model, optimizer, clock, loader, sink, session = attached_loop(tmp_path, 6, with_model=True)
    for x, y in loader:
        clock.advance(PREPROCESS_US / 1e6)  # between the batch's arrival and the forward
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        clock.advance(COMPUTE_US / 1e6)
        model(x)  # a second forward in the step (e.g. an EMA model) does not move the mark
        optimizer.step()
    session.close()
    assert len(sink.steps) == len(loader)
    for step in sink.steps:
        assert step.pre_forward_us == PREPROCESS_US  # the second forward came COMPUTE_US later
        assert step.dataloader_wait_us == BATCH * LOAD_US
        assert step.duration_us == BATCH * LOAD_US + PREPROCESS_US + COMPUTE_US
    settings = sink.calls[0][1].config["gpulens"]
    assert settings["pid"] > 0 and "float32_matmul_precision" in settings["torch"]
    assert "model_wrapper" not in settings  # a plain module, neither DataParallel nor DDP


def test_profiler_hooks_attach_hooks_all_three_on_the_real_clock(tmp_path: Path) -> None:
    """The function users call: the same wiring as above, on ``time.perf_counter_ns``."""
    assert inspect.signature(StepSession).parameters["clock"].default is time.perf_counter_ns
    model, optimizer = tiny_model()
    loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(6, 8)), batch_size=BATCH)
    sink = RecordingSink()
    session = profiler_hooks.attach(
        optimizer=optimizer, dataloader=loader, model=model, sink=sink, trace_dir=tmp_path,
        profile=False,
    )  # fmt: skip
    assert type(loader) is not DataLoader  # its passes are timed until close
    for (x,) in loader:
        model(x).sum().backward()
        optimizer.step()
    session.close()
    assert type(loader) is DataLoader and not model._forward_pre_hooks
    assert [s.step for s in sink.steps] == [0, 1, 2]
    # Real readings, so no value is checked: only that each of the three was measured.
    assert all(
        s.dataloader_wait_us is not None and s.pre_forward_us is not None for s in sink.steps
    )


def test_steps_without_a_watched_model_have_no_batch_to_forward_time(tmp_path: Path) -> None:
    sink = RecordingSink()
    with profiler_hooks.profile_steps(sink=sink, trace_dir=tmp_path, profile=False) as session:
        session.step()
    assert sink.steps[0].pre_forward_us is None


@pytest.mark.parametrize(("ending", "status"), [("pass", "finished"), ("1 / 0", "failed")])
def test_attach_ends_the_run_at_interpreter_exit(
    tmp_path: Path, db_url: str, ending: str, status: str
) -> None:
    script = (
        "import torch, profiler_hooks\n"
        "model = torch.nn.Linear(4, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        f"profiler_hooks.attach(optimizer=optimizer, run_name='exit', db={db_url!r},\n"
        f"                      trace_dir={str(tmp_path / 'traces')!r}, profile=False)\n"
        "for _ in range(5):\n"
        "    model(torch.randn(2, 4)).sum().backward()\n"
        "    optimizer.step()\n"
        f"{ending}\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, check=False)
    store = Store.open(db_url)
    ((name, run_status, steps),) = [(r.name, r.status, r.steps) for r in store.runs()]
    store.close()
    assert (name, run_status, steps) == ("exit", status, 5)


# -- outages -------------------------------------------------------------------------------


def test_a_store_that_is_down_spools_the_run_and_a_later_session_replays_it(
    db_url: str, tmp_path: Path
) -> None:
    sink = RecordingSink()
    sink.down = True
    traces = tmp_path / "traces"
    with profiler_hooks.profile_steps("outage", sink=sink, trace_dir=traces, profile=False) as s:
        train_steps(s, 30)
    stats = s.stats
    assert (stats.spooled, stats.written, stats.pending, stats.dropped) == (30, 0, 0, 0)
    assert stats.write_errors >= 1 and list((tmp_path / "hooks-spool").glob("*.jsonl"))

    with profiler_hooks.profile_steps("later", db=db_url, trace_dir=traces, profile=False) as s2:
        train_steps(s2, 2)
    assert s2.stats.replayed == 30

    store = Store.open(db_url)
    runs = {run.name: run for run in store.runs()}
    assert runs["outage"].status == "finished" and runs["later"].status == "finished"
    assert [step.step for step in store.steps(s.run_id)] == list(range(30))
    store.close()
    assert not list((tmp_path / "hooks-spool").glob("*"))


def test_an_unreachable_postgres_does_not_stop_training(tmp_path: Path) -> None:
    url = "postgresql+psycopg://gpulens@127.0.0.1:1/nothing_listens_here"
    with profiler_hooks.profile_steps(
        "no-postgres", db=url, trace_dir=tmp_path / "traces", profile=False
    ) as session:
        train_steps(session, 10)
    assert session.steps_recorded == 10
    assert session.stats.spooled == 10 and session.stats.dropped == 0


# -- switches and settings ---------------------------------------------------------------


def test_gpulens_disable_counts_steps_and_touches_nothing(tmp_path: Path) -> None:
    code = (
        "import sys, profiler_hooks\n"
        f"s = profiler_hooks.profile_steps('off', db='sqlite:///{tmp_path}/g.db',"
        f" trace_dir='{tmp_path}/traces').start()\n"
        "for _ in range(50):\n"
        "    s.begin_step(); s.step()\n"
        "s.close()\n"
        "print(s.steps_recorded, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "GPULENS_DISABLE": "1", "XDG_DATA_HOME": str(tmp_path)},
    )
    assert result.stdout.split() == ["50", "False"]
    assert list(tmp_path.iterdir()) == []


def test_a_disabled_session_never_starts_the_profiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.profiler.profile was called")

    monkeypatch.setattr(torch.profiler, "profile", refuse)
    sink = RecordingSink()
    schedule = ProfileSchedule(wait=0, warmup=1, active=1, repeat=0, skip_first=0)
    with profiler_hooks.profile_steps(
        sink=sink, trace_dir=tmp_path, schedule=schedule, enabled=False
    ) as session:
        train_steps(session, 5)
    assert session.steps_recorded == 5 and sink.calls == []


def test_gpulens_profile_0_records_steps_without_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPULENS_PROFILE", "0")
    sink = RecordingSink()
    schedule = ProfileSchedule(wait=0, warmup=1, active=1, repeat=0, skip_first=0)
    with profiler_hooks.profile_steps(sink=sink, trace_dir=tmp_path, schedule=schedule) as s:
        train_steps(s, 6)
    assert len(sink.steps) == 6 and "save_window" not in sink.names()
    assert not any(step.is_profiled for step in sink.steps)


def test_a_bad_schedule_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPULENS_PROFILE_SCHEDULE", "wait=10,active=often")
    with pytest.raises(ConfigError, match="GPULENS_PROFILE_SCHEDULE"):
        profiler_hooks.profile_steps("x")
    monkeypatch.setenv("GPULENS_PROFILE_SCHEDULE", "wait=10,active=0")
    with pytest.raises(ConfigError, match=r"GPULENS_PROFILE_SCHEDULE.*active"):
        profiler_hooks.profile_steps("x")
    monkeypatch.setenv("GPULENS_PROFILE_SCHEDULE", "wait=3, active=2")
    assert resolve_config("x").schedule == ProfileSchedule(wait=3, active=2)


@pytest.mark.parametrize(
    ("variable", "value", "match"),
    [
        ("GPULENS_DISABLE", "maybe", "GPULENS_DISABLE"),
        ("GPULENS_PROFILE", "2", "GPULENS_PROFILE"),
        ("GPULENS_DB", "not a url", "GPULENS_DB"),
    ],
)
def test_bad_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, match: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=match):
        profiler_hooks.profile_steps("x")


def test_bad_arguments_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        profiler_hooks.profile_steps(batch_size=0)
    with pytest.raises(ConfigError, match="analysis"):
        profiler_hooks.profile_steps(analysis="later")  # type: ignore[arg-type]


def test_arguments_win_over_variables_and_defaults_fill_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GPULENS_RUN_NAME", "from-env")
    monkeypatch.setenv("GPULENS_DB", "sqlite:///env.db")
    monkeypatch.setenv("GPULENS_PROFILE", "0")
    config = resolve_config(db="sqlite:///arg.db", profile=True)
    assert (config.run_name, config.db_url, config.profile) == (
        "from-env",
        "sqlite:///arg.db",
        True,
    )
    assert config.trace_dir == tmp_path / "data" / "gpulens" / "traces"
    assert config.spool_dir == tmp_path / "data" / "gpulens" / "hooks-spool"


# -- usage -------------------------------------------------------------------------------------


def test_a_second_open_session_is_refused(tmp_path: Path) -> None:
    first = profiler_hooks.profile_steps("one", sink=RecordingSink(), trace_dir=tmp_path)
    with first, pytest.raises(SessionError, match="already open"):
        profiler_hooks.profile_steps("two", sink=RecordingSink(), trace_dir=tmp_path).start()
    with profiler_hooks.profile_steps("three", sink=RecordingSink(), trace_dir=tmp_path):
        pass  # the first one closed: a new one may open


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")]
)
def test_the_run_ends_with_the_loops_fate(
    tmp_path: Path, error: type[BaseException], status: str
) -> None:
    sink = RecordingSink()
    with (
        pytest.raises(error),
        profiler_hooks.profile_steps(sink=sink, trace_dir=tmp_path, profile=False) as session,
    ):
        train_steps(session, 3)
        raise error
    assert sink.calls[-1] == ("end_run", (session.run_id, status))
    assert len(sink.steps) == 3


def test_a_closed_session_ignores_steps_and_closes_once(tmp_path: Path) -> None:
    sink = RecordingSink()
    session = profiler_hooks.profile_steps(sink=sink, trace_dir=tmp_path, profile=False).start()
    train_steps(session, 2)
    session.close()
    session.close("failed")
    session.step()
    assert session.steps_recorded == 2 and sink.names().count("end_run") == 1
    with pytest.raises(SessionError):
        session.start()


def test_begin_step_measures_the_wait_since_the_last_step(tmp_path: Path) -> None:
    sink, clock = RecordingSink(), ManualPerfClock()
    with StepSession(sink_config(tmp_path), sink=sink, clock=clock) as session:
        for _ in range(3):
            clock.advance(LOAD_US / 1e6)
            session.begin_step()
            clock.advance(COMPUTE_US / 1e6)
            session.step(tokens=128)
    assert len(sink.steps) == 3
    assert all(step.dataloader_wait_us == LOAD_US for step in sink.steps)
    assert all(step.duration_us == LOAD_US + COMPUTE_US for step in sink.steps)
    assert all(step.tokens == 128 and step.samples is None for step in sink.steps)


# -- CUDA, rank and GPUs, through stand-ins ------------------------------------------------


class FakeCuda:
    def __init__(self) -> None:
        self.resets = 0
        self.allocated = 1_000

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def memory_stats(self) -> dict[str, Any]:
        self.allocated += 10
        return {
            "allocated_bytes.all.current": self.allocated,
            "reserved_bytes.all.current": 4_096,
            "allocated_bytes.all.peak": self.allocated + 500,
        }

    def reset_peak_memory_stats(self) -> None:
        self.resets += 1


def test_with_cuda_each_step_reads_the_allocator_and_resets_its_peak(tmp_path: Path) -> None:
    sink, cuda = RecordingSink(), FakeCuda()
    config = resolve_config(trace_dir=tmp_path, profile=False, has_sink=True)
    with StepSession(config, sink=sink, cuda=cuda) as session:
        train_steps(session, 3)
    assert cuda.resets == 3
    assert [
        (s.cuda_allocated_bytes, s.cuda_reserved_bytes, s.cuda_peak_bytes) for s in sink.steps
    ] == [
        (1_010, 4_096, 1_510),
        (1_020, 4_096, 1_520),
        (1_030, 4_096, 1_530),
    ]


class FakeProperties:
    def __init__(self, uuid: str | None) -> None:
        self.uuid = uuid


class FakeDevices:
    def __init__(self, uuids: list[str | None]) -> None:
        self.uuids = uuids

    def is_available(self) -> bool:
        return bool(self.uuids)

    def device_count(self) -> int:
        return len(self.uuids)

    def get_device_properties(self, device: int) -> FakeProperties:
        return FakeProperties(self.uuids[device])


def test_gpu_uuids_are_written_as_nvml_writes_them() -> None:
    devices = FakeDevices(["ffc79498-8ff3-c2dc-3b0d-fafd804516ae", "GPU-0000", None])
    assert visible_gpu_uuids(devices) == ("GPU-ffc79498-8ff3-c2dc-3b0d-fafd804516ae", "GPU-0000")
    assert visible_gpu_uuids(FakeDevices([])) == ()


def test_rank_comes_from_the_launchers_variables() -> None:
    assert distributed_rank({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == (3, 8, 1)
    assert distributed_rank({}) == (0, 1, None)
    assert timezone.utc  # times are UTC throughout (checked on real steps above)
