"""Where a run happens: host, GPUs, rank and library versions (read once, at session start).

GPU UUIDs are written the way NVML (and so the collector) writes them, ``GPU-<uuid>``, so a
run's steps line up with the telemetry of the same GPUs.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class CudaApi(Protocol):
    """The part of ``torch.cuda`` read here (a seam for tests without a GPU)."""

    def is_available(self) -> bool: ...
    def device_count(self) -> int: ...
    def get_device_properties(self, device: int) -> Any: ...


@dataclass(frozen=True, slots=True)
class RunEnvironment:
    host: str
    gpu_uuids: tuple[str, ...] = ()
    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None
    versions: Mapping[str, str] = field(default_factory=dict)


def detect_environment(environ: Mapping[str, str] = os.environ) -> RunEnvironment:
    """Host, visible GPUs, rank and versions; torch must be importable."""
    import torch

    rank, world_size, local_rank = distributed_rank(environ)
    return RunEnvironment(
        host=socket.gethostname(),
        gpu_uuids=visible_gpu_uuids(torch.cuda),
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        versions=library_versions(),
    )


def distributed_rank(environ: Mapping[str, str] = os.environ) -> tuple[int, int, int | None]:
    """``(rank, world_size, local_rank)``: from torch.distributed when it is initialized,
    else from the launcher's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, else ``(0, 1, None)``."""
    import torch.distributed as dist

    local_rank = _env_int(environ, "LOCAL_RANK")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local_rank
    rank = _env_int(environ, "RANK")
    world_size = _env_int(environ, "WORLD_SIZE")
    return rank or 0, world_size or 1, local_rank


def visible_gpu_uuids(cuda: CudaApi) -> tuple[str, ...]:
    """UUIDs of the GPUs this process can see (``CUDA_VISIBLE_DEVICES`` applies), in index
    order; empty without CUDA. Reading them initialises CUDA in this process."""
    try:
        if not cuda.is_available():
            return ()
        found = (_nvml_style(cuda.get_device_properties(i)) for i in range(cuda.device_count()))
        return tuple(uuid for uuid in found if uuid)
    except Exception as exc:  # a broken driver must not stop the training script
        log.warning("gpulens: cannot read the GPUs' UUIDs: %s", exc)
        return ()


def library_versions() -> dict[str, str]:
    import torch

    from monitor.version import VERSION

    versions = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "gpulens": VERSION,
    }
    cuda = torch.version.cuda
    if cuda:
        versions["cuda"] = str(cuda)
    return versions


def torch_settings() -> dict[str, Any]:
    """The precision and cuDNN switches in force when the run starts (the advisor reads them)."""
    import torch

    try:
        return {
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        }
    except Exception as exc:  # a torch without one of these switches
        log.warning("gpulens: cannot read torch's precision settings: %s", exc)
        return {}


def _nvml_style(properties: Any) -> str | None:
    # torch prints the CUDA UUID bare ("ffc79498-8ff3-..."); NVML prefixes it with "GPU-".
    # Torch builds from before the ``uuid`` property (2.4) give nothing.
    uuid = getattr(properties, "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return int(raw)
    except ValueError:
        log.warning("gpulens: ignoring %s=%r (not a whole number)", name, raw)
        return None
