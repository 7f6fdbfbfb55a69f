"""The Lightning and Hugging Face callbacks, driven by the real trainers on CPU, writing to a
real SQLite store."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import transformers

from monitor.core.errors import ConfigError
from monitor.core.run_records import RunInfo
from monitor.store import Store
from profiler_hooks import ProfileSchedule
from profiler_hooks.integrations.lightning import GpulensCallback, infer_batch_size
from profiler_hooks.integrations.transformers import GpulensTrainerCallback
from tests.helpers import modules_imported_by

ROOT = Path(__file__).resolve().parent.parent
BATCH = 4


pytestmark = pytest.mark.usefixtures("hooks_isolated")


def the_run(store: Store) -> RunInfo:
    """The one run in ``store``, in full (its config, rank and world size)."""
    (run,) = store.runs()
    info = store.run(run.run_id)
    assert info is not None
    return info


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only (the conftest's ``store`` opens it): the callbacks' own tests."""
    return "sqlite:///" + str(tmp_path / "g.db")


# --- Lightning -------------------------------------------------------------------------------


class TinyModule(pl.LightningModule):
    def __init__(self, fail_at_batch: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)
        self.fail_at_batch = fail_at_batch

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if batch_idx == self.fail_at_batch:
            raise RuntimeError("boom in training_step")
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> Any:
        generator = torch.Generator().manual_seed(0)
        data = torch.utils.data.TensorDataset(
            torch.randn(64, 8, generator=generator), torch.randn(64, 1, generator=generator)
        )
        return torch.utils.data.DataLoader(data, batch_size=BATCH)


def lightning_trainer(tmp_path: Path, callback: GpulensCallback, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "max_steps": 20,
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
        "callbacks": [callback],
        **kwargs,
    }
    return pl.Trainer(**options)


def test_lightning_records_every_batch(tmp_path: Path, db_url: str, store: Store) -> None:
    callback = GpulensCallback(run_name="lightning-tiny", db=db_url, profile=False)
    lightning_trainer(tmp_path, callback).fit(TinyModule())

    info = the_run(store)
    assert info.name == "lightning-tiny"
    assert info.status == "finished"
    assert info.config["framework"] == "lightning"
    assert info.rank == 0
    assert info.world_size == 1
    steps = store.steps(info.run_id)
    assert len(steps) == 20
    assert all(s.duration_us > 0 for s in steps)
    assert [s.samples for s in steps] == [BATCH] * 20
    assert callback.session is None


def test_lightning_counts_batches_with_gradient_accumulation(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    callback = GpulensCallback(db=db_url, profile=False, batch_size=3)
    trainer = lightning_trainer(tmp_path, callback, max_steps=5, accumulate_grad_batches=2)
    trainer.fit(TinyModule())

    (run,) = store.runs()
    steps = store.steps(run.run_id)
    assert len(steps) == 10  # one record per batch: 5 optimizer steps of 2 batches
    assert {s.samples for s in steps} == {3}  # the explicit batch_size wins
    info = store.run(run.run_id)
    assert info is not None
    assert info.config["accumulate_grad_batches"] == 2


def test_lightning_failure_marks_the_run_failed(tmp_path: Path, db_url: str, store: Store) -> None:
    callback = GpulensCallback(db=db_url, profile=False)
    with pytest.raises(RuntimeError, match="boom in training_step"):
        lightning_trainer(tmp_path, callback).fit(TinyModule(fail_at_batch=5))

    info = the_run(store)
    assert info.status == "failed"
    assert len(store.steps(info.run_id)) == 5


def test_lightning_profiler_window(tmp_path: Path, db_url: str, store: Store) -> None:
    schedule = ProfileSchedule(wait=2, warmup=1, active=2, repeat=1, skip_first=0)
    callback = GpulensCallback(
        db=db_url,
        profile=True,
        schedule=schedule,
        trace_dir=tmp_path / "traces",
        analysis="inline",  # analyzed before close() returns, so the test need not wait
    )
    lightning_trainer(tmp_path, callback, max_steps=8).fit(TinyModule())

    (run,) = store.runs()
    steps = store.steps(run.run_id)
    assert len(steps) == 8
    assert [s.step for s in steps if s.is_profiled] == [3, 4]  # 2 waiting, 1 warm-up, 2 traced
    (window,) = store.windows(run.run_id)
    assert (window.first_step, window.last_step) == (3, 4)
    assert window.status == "analyzed"
    assert window.trace_path is not None
    assert Path(window.trace_path).is_relative_to(tmp_path / "traces")
    assert Path(window.trace_path).exists()


def test_a_second_fit_is_a_second_run(tmp_path: Path, db_url: str, store: Store) -> None:
    callback = GpulensCallback(db=db_url, profile=False)
    module = TinyModule()
    lightning_trainer(tmp_path, callback, max_steps=3).fit(module)
    lightning_trainer(tmp_path, callback, max_steps=4).fit(module)

    runs = store.runs()
    assert len(runs) == 2
    assert sorted(len(store.steps(r.run_id)) for r in runs) == [3, 4]


@pytest.mark.parametrize(
    ("batch", "size"),
    [
        ((torch.zeros(5, 2), torch.zeros(5)), 5),
        ({"ids": [torch.zeros(()), torch.zeros(7, 3)]}, 7),
        ([["a", "b"], torch.zeros(2)], 2),
        ("text", None),
        (torch.zeros(()), None),
    ],
)
def test_infer_batch_size(batch: Any, size: int | None) -> None:
    assert infer_batch_size(batch) == size


# --- Hugging Face ----------------------------------------------------------------------------


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, rows: int = 32, length: int = 16, vocab: int = 64) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, vocab, (rows, length), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def tiny_gpt2() -> Any:
    config = transformers.GPT2Config(
        vocab_size=64,
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config)


def hf_trainer(tmp_path: Path, callback: GpulensTrainerCallback, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "output_dir": str(tmp_path / "hf"),
        "max_steps": 10,
        "per_device_train_batch_size": 2,
        "report_to": [],
        "save_strategy": "no",
        "logging_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
        **kwargs,
    }
    args = transformers.TrainingArguments(**options)
    return transformers.Trainer(
        model=tiny_gpt2(), args=args, train_dataset=RandomTokens(), callbacks=[callback]
    )


def test_transformers_records_every_optimizer_step(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    callback = GpulensTrainerCallback(run_name="gpt2-tiny", db=db_url, profile=False)
    hf_trainer(tmp_path, callback).train()

    info = the_run(store)
    assert info.name == "gpt2-tiny"
    assert info.status == "finished"
    assert info.config["framework"] == "transformers"
    steps = store.steps(info.run_id)
    assert len(steps) == 10
    assert all(s.duration_us > 0 for s in steps)
    assert {s.samples for s in steps} == {2}
    assert {s.tokens for s in steps} == {None}


def test_transformers_counts_accumulated_samples_and_tokens(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    callback = GpulensTrainerCallback(db=db_url, profile=False)
    trainer = hf_trainer(
        tmp_path,
        callback,
        max_steps=3,
        gradient_accumulation_steps=2,
        include_num_input_tokens_seen=True,
    )
    trainer.train()

    (run,) = store.runs()
    steps = store.steps(run.run_id)
    assert len(steps) == 3
    assert {s.samples for s in steps} == {4}
    assert {s.tokens for s in steps} == {4 * 16}


HF_FAILING_SCRIPT = """
import sys
import torch, transformers
from profiler_hooks.integrations.transformers import GpulensTrainerCallback

class Tokens(torch.utils.data.Dataset):
    served = 0
    def __len__(self):
        return 64
    def __getitem__(self, index):
        Tokens.served += 1
        if Tokens.served > 6:
            raise {error}("data ran out")
        ids = torch.arange(16) % 64
        return {{"input_ids": ids, "labels": ids}}

config = transformers.GPT2Config(
    vocab_size=64, n_positions=32, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
)
args = transformers.TrainingArguments(
    output_dir=sys.argv[2], max_steps=10, per_device_train_batch_size=2, report_to=[],
    save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True,
    dataloader_drop_last=True,
)
callback = GpulensTrainerCallback("hf-failing", db=sys.argv[1], profile=False)
trainer = transformers.Trainer(
    model=transformers.GPT2LMHeadModel(config), args=args, train_dataset=Tokens(),
    callbacks=[callback],
)
trainer.train()
"""


@pytest.mark.parametrize(
    ("error", "status"), [("RuntimeError", "failed"), ("KeyboardInterrupt", "interrupted")]
)
def test_transformers_run_left_open_by_an_exception_is_closed_at_exit(
    tmp_path: Path, db_url: str, error: str, status: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(HF_FAILING_SCRIPT.format(error=error), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script), db_url, str(tmp_path / "hf")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode != 0
    assert "data ran out" in result.stderr

    with closing(Store.open(db_url)) as store:
        info = the_run(store)
        assert info.status == status
        # 6 rows make 3 batches, but the loader reads one batch ahead, so 2 steps ended
        assert len(store.steps(info.run_id)) == 2


def test_importing_the_package_imports_no_framework() -> None:
    code = "import profiler_hooks, profiler_hooks.integrations"
    assert modules_imported_by(code, ("torch", "lightning", "transformers")) == []


# --- both callbacks ---------------------------------------------------------------------------


@pytest.mark.parametrize("callback_class", [GpulensCallback, GpulensTrainerCallback])
def test_callbacks_take_the_hook_options_and_check_them_when_made(
    callback_class: type[GpulensCallback] | type[GpulensTrainerCallback],
) -> None:
    options = inspect.signature(callback_class.__init__).parameters["options"]
    assert options.annotation == "Unpack[HookOptions]"  # editors offer every keyword
    with pytest.raises(
        ConfigError, match=r"unknown gpulens option 'bach_size' \(did you mean 'batch_size'"
    ):
        callback_class(bach_size=3)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="batch_size must be a whole number"):
        callback_class("named", batch_size=0)
    callback = callback_class("named", batch_size=2, tokens_per_step=5, profile=False)
    assert (callback.batch_size, callback.tokens_per_step, callback.session) == (2, 5, None)
