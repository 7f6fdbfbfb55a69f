"""The hooks' settings: arguments, then ``GPULENS_*`` environment variables, then defaults.

Everything a session needs is resolved once, when the session is made, into a frozen
:class:`HooksConfig`; a bad value raises :class:`~monitor.core.errors.ConfigError` right there,
naming the argument or variable (the one kind of error the hooks let reach the training script).

Environment variables (arguments win):

- ``GPULENS_DB``: the store's URL (default: SQLite in the user's data folder)
- ``GPULENS_DISABLE=1``: sessions count steps and do nothing else
- ``GPULENS_PROFILE=0``: step timing only, no profiler windows
- ``GPULENS_PROFILE_SCHEDULE="wait=290,warmup=5,active=5,repeat=0,skip_first=10"``
- ``GPULENS_TRACE_DIR``: where traces go (default: ``traces/`` in the gpulens data folder)
- ``GPULENS_RUN_NAME``: the run's name (default: the script's name)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeAlias

from monitor.core.errors import ConfigError

AnalysisMode: TypeAlias = Literal["process", "inline", "off"]
ANALYSIS_MODES: tuple[AnalysisMode, ...] = ("process", "inline", "off")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class ProfileSchedule:
    """When profiler windows are traced, in torch.profiler.schedule's terms.

    After ``skip_first`` steps, each cycle waits ``wait`` steps, warms the profiler up for
    ``warmup`` steps (not kept) and traces ``active`` steps; ``repeat`` cycles, 0 = forever.
    The default traces 5 steps of every 300, after 10 steps of start-up.
    """

    wait: int = 290
    warmup: int = 5
    active: int = 5
    repeat: int = 0
    skip_first: int = 10

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"profile schedule: {item.name} must be a whole number >= 0, not {value!r}"
                )
        if self.active < 1:
            raise ConfigError("profile schedule: active must be at least 1 step")

    @property
    def cycle_steps(self) -> int:
        return self.wait + self.warmup + self.active

    @classmethod
    def parse(cls, text: str, *, source: str = "GPULENS_PROFILE_SCHEDULE") -> ProfileSchedule:
        """``"wait=290,warmup=5,active=5,repeat=0,skip_first=10"``; names left out keep their
        defaults. Raises :class:`ConfigError` naming ``source``."""
        names = {item.name for item in fields(cls)}
        values: dict[str, int] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            name, sep, number = (piece.strip() for piece in part.partition("="))
            if not sep or name not in names or name in values:
                raise ConfigError(
                    f"{source}={text!r}: expected comma-separated name=number pairs with the "
                    f"names {', '.join(sorted(names))}, each at most once"
                )
            try:
                values[name] = int(number)
            except ValueError:
                raise ConfigError(f"{source}={text!r}: {name} is not a whole number") from None
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}={text!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class HooksConfig:
    """A session's resolved settings (see :func:`resolve_config`)."""

    run_name: str
    db_url: str | None  # None when the caller hands its own sink
    trace_dir: Path
    enabled: bool = True
    profile: bool = True
    schedule: ProfileSchedule = field(default_factory=ProfileSchedule)
    batch_size: int | None = None
    tokens_per_step: int | None = None
    record_shapes: bool = False
    profile_memory: bool = False
    with_stack: bool = False
    slow_step_trigger: bool = True
    analysis: AnalysisMode = "process"
    user_config: Mapping[str, Any] = field(default_factory=dict)
    # The writer: flush every interval or every flush_steps steps, whichever comes first;
    # keep up to capacity_steps in memory while the store is down, then spool.
    flush_interval_s: float = 1.0
    flush_steps: int = 500
    capacity_steps: int = 50_000
    spool_max_bytes: int = 64 * 1024 * 1024
    close_timeout_s: float = 30.0

    @property
    def spool_dir(self) -> Path:
        """Records waiting for the store (JSON lines), beside the trace folder."""
        return self.trace_dir.parent / "hooks-spool"

    def describe(self) -> dict[str, Any]:
        """The hook settings worth keeping with the run (JSON-ready)."""
        schedule = self.schedule
        return {
            "profile": self.profile,
            "schedule": {item.name: getattr(schedule, item.name) for item in fields(schedule)},
            "batch_size": self.batch_size,
            "tokens_per_step": self.tokens_per_step,
            "record_shapes": self.record_shapes,
            "profile_memory": self.profile_memory,
            "with_stack": self.with_stack,
            "slow_step_trigger": self.slow_step_trigger,
        }


def resolve_config(
    run_name: str | None = None,
    *,
    db: str | None = None,
    batch_size: int | None = None,
    tokens_per_step: int | None = None,
    schedule: ProfileSchedule | None = None,
    profile: bool | None = None,
    trace_dir: str | os.PathLike[str] | None = None,
    record_shapes: bool = False,
    profile_memory: bool = False,
    with_stack: bool = False,
    slow_step_trigger: bool = True,
    enabled: bool | None = None,
    config: Mapping[str, Any] | None = None,
    analysis: AnalysisMode = "process",
    has_sink: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> HooksConfig:
    """Arguments win over ``GPULENS_*`` variables, which win over defaults."""
    _check_count("batch_size", batch_size)
    _check_count("tokens_per_step", tokens_per_step)
    if analysis not in ANALYSIS_MODES:
        raise ConfigError(f"analysis must be one of {', '.join(ANALYSIS_MODES)}, not {analysis!r}")
    if schedule is not None and not isinstance(schedule, ProfileSchedule):
        raise ConfigError(f"schedule must be a ProfileSchedule, not {type(schedule).__name__}")
    if enabled is None:
        enabled = not env_flag(environ, "GPULENS_DISABLE", default=False)
    if profile is None:
        profile = env_flag(environ, "GPULENS_PROFILE", default=True)
    if schedule is None:
        text = environ.get("GPULENS_PROFILE_SCHEDULE")
        schedule = ProfileSchedule.parse(text) if text else ProfileSchedule()
    return HooksConfig(
        run_name=run_name or environ.get("GPULENS_RUN_NAME") or default_run_name(),
        db_url=None if has_sink else _store_url(db, environ),
        trace_dir=_trace_dir(trace_dir, environ),
        enabled=enabled,
        profile=profile,
        schedule=schedule,
        batch_size=batch_size,
        tokens_per_step=tokens_per_step,
        record_shapes=record_shapes,
        profile_memory=profile_memory,
        with_stack=with_stack,
        slow_step_trigger=slow_step_trigger,
        analysis=analysis,
        user_config=dict(config or {}),
    )


def env_flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (any case); unset = ``default``."""
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1 or 0 (also true/false, yes/no, on/off)")


def default_run_name() -> str:
    """The training script's file name without its suffix, else ``"run"``."""
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return script if script and script not in ("-c", "-m", "ipykernel_launcher") else "run"


def _check_count(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, not {value!r}")


def _store_url(db: str | None, environ: Mapping[str, str]) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from monitor.store.engine import resolve_url

    url = resolve_url(db, environ)
    try:
        make_url(url)
    except ArgumentError:
        source = "db" if db else "GPULENS_DB"
        raise ConfigError(
            f"{source}: not a database URL: {url!r} (examples: sqlite:///path/gpulens.db, "
            "postgresql+psycopg://user@host/db)"
        ) from None
    return url


def _trace_dir(trace_dir: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    if trace_dir is not None:
        return Path(trace_dir).expanduser()
    if environ.get("GPULENS_TRACE_DIR"):
        return Path(environ["GPULENS_TRACE_DIR"]).expanduser()
    from monitor.store.engine import data_dir

    return data_dir(environ) / "traces"
