"""The hook options are declared once (HookOptions), checked once and resolved once into
HooksConfig, whose fields hold the defaults."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import profiler_hooks
from monitor.core.errors import ConfigError
from profiler_hooks.config import (
    PASSED_THROUGH,
    HookOptions,
    HooksConfig,
    ProfileSchedule,
    check_options,
    option_fields,
    resolve_config,
)

# HooksConfig fields no option sets: the writer's limits. A new field is either set by an
# option (and then in HookOptions) or named here.
TUNING_FIELDS = {
    "flush_interval_s",
    "flush_steps",
    "capacity_steps",
    "spool_max_bytes",
    "close_timeout_s",
}


def test_the_options_are_the_config_fields_and_nothing_else() -> None:
    options = set(HookOptions.__annotations__)
    assert options == set(HookOptions.__optional_keys__)  # every option may be left out
    assert options == set(option_fields()) | PASSED_THROUGH
    set_by_options = set(option_fields().values())
    assert set_by_options | TUNING_FIELDS == {item.name for item in fields(HooksConfig)}
    assert not set_by_options & TUNING_FIELDS
    assert option_fields()["db"] == "db_url"
    assert option_fields()["config"] == "user_config"


def test_left_out_options_take_the_config_defaults(tmp_path: Path) -> None:
    resolved = resolve_config("r", has_sink=True, trace_dir=tmp_path, environ={})
    assert resolved == HooksConfig(run_name="r", db_url=None, trace_dir=tmp_path)


def test_every_option_reaches_the_config(tmp_path: Path) -> None:
    schedule = ProfileSchedule(wait=1, warmup=0, active=2)
    given: HookOptions = {
        "run_name": "full",
        "db": "sqlite:///full.db",
        "batch_size": 8,
        "tokens_per_step": 1024,
        "schedule": schedule,
        "profile": False,
        "trace_dir": tmp_path,
        "record_shapes": True,
        "profile_memory": True,
        "with_stack": True,
        "slow_step_trigger": False,
        "enabled": False,
        "config": {"lr": 0.1},
        "analysis": "inline",
    }
    resolved = resolve_config(environ={}, **given)
    expected = {option_fields()[name]: value for name, value in given.items()}
    expected["trace_dir"] = tmp_path
    assert {name: getattr(resolved, name) for name in expected} == expected


@pytest.mark.parametrize("name", sorted(set(HookOptions.__annotations__) - PASSED_THROUGH))
def test_every_option_is_checked(name: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        check_options({name: object()})
    assert "unknown" not in str(caught.value)  # a known option, with a check of its own
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"record_shapes": "yes"}, "record_shapes must be True or False"),
        ({"profile": 1}, "profile must be True or False"),
        ({"tokens_per_step": True}, "tokens_per_step must be a whole number"),
        ({"schedule": {"wait": 1}}, "schedule must be a ProfileSchedule"),
        ({"config": ["lr"]}, "config must be a mapping"),
        ({"trace_dir": 3}, "trace_dir must be a path"),
    ],
)
def test_bad_values_name_the_option(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_options(options)


def test_an_unknown_keyword_is_one_config_error_line_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        profiler_hooks.profile_steps(batchsize=4)  # type: ignore[call-arg]
    message = str(caught.value)
    assert "unknown gpulens option 'batchsize' (did you mean 'batch_size'?)" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="unknown gpulens option 'optimiser'"):
        profiler_hooks.attach(optimiser=None)  # type: ignore[call-arg]


def test_run_name_comes_first_or_by_keyword_but_once() -> None:
    assert resolve_config("first", has_sink=True, environ={}).run_name == "first"
    assert resolve_config(run_name="named", has_sink=True, environ={}).run_name == "named"
    with pytest.raises(ConfigError, match="run_name given twice"):
        resolve_config("first", run_name="named", has_sink=True, environ={})


def test_a_sink_option_means_no_store(tmp_path: Path) -> None:
    class Nowhere:
        pass

    resolved = resolve_config(sink=Nowhere(), trace_dir=tmp_path, environ={})  # type: ignore[arg-type]
    assert resolved.db_url is None


def test_the_entry_points_take_the_one_declaration() -> None:
    for function in (profiler_hooks.profile_steps, profiler_hooks.attach, resolve_config):
        options = inspect.signature(function).parameters["options"]
        assert options.kind is inspect.Parameter.VAR_KEYWORD
        assert options.annotation == "Unpack[HookOptions]"
