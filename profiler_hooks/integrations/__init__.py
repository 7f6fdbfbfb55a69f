"""Callbacks that time every training step of a framework's own loop.

- :class:`~profiler_hooks.integrations.lightning.GpulensCallback` for the Lightning ``Trainer``
  (``pip install gpulens[lightning]``);
- :class:`~profiler_hooks.integrations.transformers.GpulensTrainerCallback` for the Hugging Face
  ``Trainer`` (``pip install gpulens[transformers]``).

Both take the keyword options of :func:`profiler_hooks.profile_steps` and drive one
:class:`~profiler_hooks.StepSession` per training run. Importing this package imports neither
framework: each name is loaded from its submodule on first use, so
``from profiler_hooks.integrations import GpulensCallback`` imports Lightning and nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from profiler_hooks.integrations.lightning import GpulensCallback
    from profiler_hooks.integrations.transformers import GpulensTrainerCallback

__all__ = ["GpulensCallback", "GpulensTrainerCallback"]

_HOMES = {
    "GpulensCallback": "profiler_hooks.integrations.lightning",
    "GpulensTrainerCallback": "profiler_hooks.integrations.transformers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
