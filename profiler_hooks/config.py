"""The hooks' settings: arguments, then ``GPULENS_*`` environment variables, then defaults.

The options are declared once, as :class:`HookOptions` (the keywords of ``profile_steps``,
``attach`` and the framework callbacks); their defaults are :class:`HooksConfig`'s. Everything a
session needs is resolved once, when the session is made, into a frozen :class:`HooksConfig`;
a bad keyword or value raises :class:`~monitor.core.errors.ConfigError` right there, naming the
argument or variable (the one kind of error the hooks let reach the training script).

Environment variables (arguments win):

- ``GPULENS_DB``: the store's URL (default: SQLite in the user's data folder)
- ``GPULENS_DISABLE=1``: sessions count steps and do nothing else
- ``GPULENS_PROFILE=0``: step timing only, no profiler windows
- ``GPULENS_PROFILE_SCHEDULE="wait=290,warmup=5,active=5,repeat=0,skip_first=10"``
- ``GPULENS_TRACE_DIR``: where traces go (default: ``traces/`` in the gpulens data folder)
- ``GPULENS_RUN_NAME``: the run's name (default: the script's name)
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict, cast

from monitor.core.errors import ConfigError

if TYPE_CHECKING:
    # Only annotations use Unpack (and they are not evaluated at run time), so Python 3.10
    # needs no typing_extensions at run time; type checkers on 3.10 find it beside SQLAlchemy.
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from profiler_hooks.sink import RunSink

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


class HookOptions(TypedDict, total=False):
    """The keyword options of :func:`~profiler_hooks.profile_steps`, :func:`~profiler_hooks.attach`
    and the framework callbacks, declared here once (functions take them as
    ``**options: Unpack[HookOptions]``, so editors still offer every keyword). Left out, an
    option takes its ``GPULENS_*`` variable where it has one, else :class:`HooksConfig`'s default.

    - ``run_name``: the run's name (else ``GPULENS_RUN_NAME``, else the script's name).
    - ``db``: the store URL (else ``GPULENS_DB``, else SQLite in the user's data folder);
      ``sink`` replaces the store altogether (tests, custom destinations).
    - ``batch_size``/``tokens_per_step``: the default ``samples``/``tokens`` of a step, for
      throughput.
    - ``schedule``: when profiler windows trace steps (else ``GPULENS_PROFILE_SCHEDULE``, else
      :class:`ProfileSchedule`'s default); ``profile=False`` (or ``GPULENS_PROFILE=0``) records
      step times only.
    - ``trace_dir``: where window traces go (else ``GPULENS_TRACE_DIR``, else ``traces/`` in the
      data folder).
    - ``record_shapes``/``profile_memory``/``with_stack``: torch.profiler's options of the same
      names, for the windows.
    - ``slow_step_trigger``: trace the steps after one that took over 3x the recent median.
    - ``enabled=False`` (or ``GPULENS_DISABLE=1``): steps are counted, nothing else happens.
    - ``config``: your settings, kept with the run.
    - ``analysis``: where window traces are analyzed (``"process"``, ``"inline"`` or ``"off"``,
      see :mod:`profiler_hooks.analyzer`).
    """

    run_name: str | None
    db: str | None
    batch_size: int | None
    tokens_per_step: int | None
    schedule: ProfileSchedule | None
    profile: bool | None
    trace_dir: str | os.PathLike[str] | None
    record_shapes: bool
    profile_memory: bool
    with_stack: bool
    slow_step_trigger: bool
    enabled: bool | None
    config: Mapping[str, Any] | None
    sink: RunSink | None
    analysis: AnalysisMode


# Which option sets a HooksConfig field, where the names differ; a field marked _TUNING is set by
# no option (the writer's limits, fixed for now). tests/test_hooks_config.py checks that every
# option and every field is accounted for, so neither can be added in one place only.
_TUNING: dict[str, Any] = {"option": None}


def _set_by(option: str) -> dict[str, Any]:
    return {"option": option}


@dataclass(frozen=True, slots=True)
class HooksConfig:
    """A session's resolved settings (see :func:`resolve_config`); the defaults of the options
    (:class:`HookOptions`) are the defaults of these fields."""

    run_name: str
    db_url: str | None = field(metadata=_set_by("db"))  # None when the caller hands its own sink
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
    user_config: Mapping[str, Any] = field(default_factory=dict, metadata=_set_by("config"))
    # The writer: flush every interval or every flush_steps steps, whichever comes first;
    # keep up to capacity_steps in memory while the store is down, then spool.
    flush_interval_s: float = field(default=1.0, metadata=_TUNING)
    flush_steps: int = field(default=500, metadata=_TUNING)
    capacity_steps: int = field(default=50_000, metadata=_TUNING)
    spool_max_bytes: int = field(default=64 * 1024 * 1024, metadata=_TUNING)
    close_timeout_s: float = field(default=30.0, metadata=_TUNING)

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


def option_fields() -> dict[str, str]:
    """Each option that sets a :class:`HooksConfig` field, mapped to that field's name."""
    pairs = ((item.metadata.get("option", item.name), item.name) for item in fields(HooksConfig))
    return {option: name for option, name in pairs if option is not None}


# Options that are arguments rather than settings: they stay out of HooksConfig.
PASSED_THROUGH = frozenset({"sink"})


def check_options(options: Mapping[str, object], run_name: str | None = None) -> HookOptions:
    """``options`` checked against :class:`HookOptions`, with a positional ``run_name`` folded
    in; an unknown keyword or a bad value raises :class:`ConfigError` in one line."""
    unknown = sorted(set(options) - set(_CHECKS))
    if unknown:
        raise ConfigError(_unknown_message(unknown[0]))
    if run_name is not None and options.get("run_name") is not None:
        raise ConfigError(f"run_name given twice: {run_name!r} and {options['run_name']!r}")
    checked = dict(options)
    if run_name is not None:
        checked["run_name"] = run_name
    for name, value in checked.items():
        _CHECKS[name](name, value)
    return cast(HookOptions, checked)


# Options resolved against the environment (or converted) by resolve_config itself.
_FROM_ENVIRONMENT = frozenset(
    {"run_name", "db", "trace_dir", "enabled", "profile", "schedule", "config"}
)


def resolve_config(
    run_name: str | None = None,
    /,
    *,
    has_sink: bool = False,
    environ: Mapping[str, str] = os.environ,
    **options: Unpack[HookOptions],
) -> HooksConfig:
    """The options (see :class:`HookOptions`) checked and resolved: options win over
    ``GPULENS_*`` variables, which win over :class:`HooksConfig`'s defaults. ``has_sink``: the
    records go to a sink of the caller's, not to a store (also when ``sink`` is an option)."""
    given = check_options(options, run_name)
    plain: Mapping[str, object] = given
    values: dict[str, Any] = {
        field_name: plain[option]
        for option, field_name in option_fields().items()
        if option in plain and option not in _FROM_ENVIRONMENT
    }
    enabled, profile = given.get("enabled"), given.get("profile")
    if enabled is None:
        enabled = not env_flag(environ, "GPULENS_DISABLE", default=not _default("enabled"))
    if profile is None:
        profile = env_flag(environ, "GPULENS_PROFILE", default=_default("profile"))
    schedule = given.get("schedule")
    if schedule is None:
        text = environ.get("GPULENS_PROFILE_SCHEDULE")
        schedule = ProfileSchedule.parse(text) if text else ProfileSchedule()
    has_sink = has_sink or given.get("sink") is not None
    values.update(
        run_name=given.get("run_name") or environ.get("GPULENS_RUN_NAME") or default_run_name(),
        db_url=None if has_sink else _store_url(given.get("db"), environ),
        trace_dir=_trace_dir(given.get("trace_dir"), environ),
        enabled=enabled,
        profile=profile,
        schedule=schedule,
        user_config=dict(given.get("config") or {}),
    )
    return HooksConfig(**values)


def _default(name: str) -> Any:
    return HooksConfig.__dataclass_fields__[name].default


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


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(_CHECKS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown gpulens option {name!r}{hint}; the options are {', '.join(_CHECKS)}"


def _check_count(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, not {value!r}")


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, not {value!r}")


def _check_optional_flag(name: str, value: object) -> None:
    if value is not None:
        _check_flag(name, value)


def _check_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {type(value).__name__}")


def _check_path(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise ConfigError(f"{name} must be a path, not {type(value).__name__}")


def _check_mapping(name: str, value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping (a dict), not {type(value).__name__}")


def _check_schedule(name: str, value: object) -> None:
    if value is not None and not isinstance(value, ProfileSchedule):
        raise ConfigError(f"{name} must be a ProfileSchedule, not {type(value).__name__}")


def _check_analysis(name: str, value: object) -> None:
    if value not in ANALYSIS_MODES:
        raise ConfigError(f"{name} must be one of {', '.join(ANALYSIS_MODES)}, not {value!r}")


def _check_sink(name: str, value: object) -> None:
    # Any object with RunSink's methods will do; a missing one fails when the run starts.
    pass


# One check per option, in HookOptions' order (which the error for an unknown option lists).
_CHECKS: dict[str, Callable[[str, object], None]] = {
    "run_name": _check_text,
    "db": _check_text,
    "batch_size": _check_count,
    "tokens_per_step": _check_count,
    "schedule": _check_schedule,
    "profile": _check_optional_flag,
    "trace_dir": _check_path,
    "record_shapes": _check_flag,
    "profile_memory": _check_flag,
    "with_stack": _check_flag,
    "slow_step_trigger": _check_flag,
    "enabled": _check_optional_flag,
    "config": _check_mapping,
    "sink": _check_sink,
    "analysis": _check_analysis,
}


def _store_url(db: str | None, environ: Mapping[str, str]) -> str:
    from monitor.store.engine import checked_url, resolve_url

    return checked_url(resolve_url(db, environ), source="db" if db else "GPULENS_DB")


def _trace_dir(trace_dir: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    if trace_dir is not None:
        return Path(trace_dir).expanduser()
    if environ.get("GPULENS_TRACE_DIR"):
        return Path(environ["GPULENS_TRACE_DIR"]).expanduser()
    from monitor.store.engine import data_dir

    return data_dir(environ) / "traces"
