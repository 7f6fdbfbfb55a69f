"""Each verb module registers its verbs with the function that runs them; main dispatches by
``args.func`` and leaves unknown verbs to argparse; the demo's pieces work apart from the
dashboard."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.cli.main import build_parser, main
from tests.cli import gpulens, gpulens_env, gpulens_running, stop_gpulens
from tests.helpers import modules_imported_by

ROOT = Path(__file__).resolve().parent.parent

# DESIGN.md's verbs, each with the least it parses from, and the function that runs it.
VERBS = {
    "collect": (["collect"], "monitor.cli.verbs.collect", "run_collect"),
    "dashboard": (["dashboard"], "monitor.cli.verbs.dashboard", "run_dashboard"),
    "up": (["up"], "monitor.cli.verbs.dashboard", "run_up"),
    "demo": (["demo"], "monitor.cli.verbs.demo", "run_demo"),
    "status": (["status"], "monitor.cli.verbs.status", "run_status"),
    "db upgrade": (["db", "upgrade"], "monitor.cli.verbs.db", "run_upgrade"),
    "analyze": (["analyze", "t.json"], "monitor.cli.verbs.analyze", "run_analyze"),
    "import": (["import", "t.json", "--run", "r"], "monitor.cli.verbs.analyze", "run_import"),
    "runs": (["runs"], "monitor.cli.verbs.runs", "run_runs"),
    "advise": (["advise"], "monitor.cli.verbs.advise", "run_advise"),
    "compare": (["compare", "a", "b"], "monitor.cli.verbs.compare", "run_compare"),
}


def verb_names(parser: argparse.ArgumentParser) -> set[str]:
    (verbs,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(verbs.choices)


def test_the_verbs_are_the_designed_ones() -> None:
    assert verb_names(build_parser()) == {name.split()[0] for name in VERBS}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_is_registered_with_the_function_that_runs_it(verb: str) -> None:
    argv, module, function = VERBS[verb]
    args = build_parser().parse_args(argv)
    assert (args.func.__module__, args.func.__name__) == (module, function)


def test_the_flags_keep_their_defaults() -> None:
    parser = build_parser()
    collect = parser.parse_args(["collect"])
    assert (collect.interval, collect.flush_interval, collect.raw_days) == (1.0, 5.0, 7.0)
    assert (collect.rollup_1m_days, collect.metrics_addr, collect.seed) == (90.0, "127.0.0.1", 0)
    demo = parser.parse_args(["demo"])
    assert (demo.steps, demo.host, demo.port, demo.db) == (60, "127.0.0.1", 8050, None)
    up = parser.parse_args(["up", "--simulate", "2", "--insecure-no-auth", "--db", "sqlite://"])
    assert (up.simulate, up.insecure_no_auth, up.db) == (2, True, "sqlite://")
    advise = parser.parse_args(["advise", "--fleet", "--threshold", "a=1", "--json"])
    assert (advise.fleet, advise.threshold, advise.json, advise.no_save) == (
        True,
        ["a=1"],
        True,
        False,
    )
    assert parser.parse_args(["compare", "a", "b", "--seed", "3"]).seed == 3
    assert parser.parse_args(["-v", "runs", "--name", "x"]).verbose


def test_building_the_parser_imports_no_torch_and_no_web_stack() -> None:
    # Every verb module is imported to build the parser, on every run (the collector's too),
    # so their register functions and module tops must leave these to the verbs' bodies
    # (numpy comes with the core's analysis and the advisor: advise, analyze, compare).
    code = "from monitor.cli.main import build_parser\nbuild_parser()"
    heavy = ("torch", "dash", "plotly", "pandas", "flask", "waitress", "lightning", "numpy")
    assert modules_imported_by(code, heavy) == []


def test_a_bad_flag_value_is_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["collect", "--simulate", "65"])
    assert exited.value.code == 2
    assert "simulated GPUs must be 1..64, got 65" in capsys.readouterr().err


def test_a_mistyped_verb_exits_2_with_argparse_s_line_and_no_traceback(tmp_path: Path) -> None:
    done = gpulens(tmp_path, "advsie")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "gpulens: error: argument VERB: invalid choice: 'advsie'"
    )
    assert "'advise'" in done.stderr.splitlines()[-1]  # the choices are listed


def test_db_without_its_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["db"])
    assert exited.value.code == 2
    assert "gpulens db: error: the following arguments are required: VERB" in (
        capsys.readouterr().err
    )


def test_a_gpulens_error_from_a_verb_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    done = gpulens(tmp_path, "runs", "--db", f"sqlite:///{missing}")
    assert done.returncode == 1
    assert done.stderr.startswith("gpulens: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_the_demo_suite_is_found_from_outside_the_checkout(tmp_path: Path) -> None:
    # The working folder is not a checkout, so examples/ is loaded by its file path.
    code = (
        "from monitor.cli.demo_trainer import DEMO_CASE, bottleneck_suite\n"
        "suite = bottleneck_suite()\n"
        "print(suite.__name__, suite.case_named(DEMO_CASE).name, suite.ROOT)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.split() == ["gpulens_demo_suite", "starved_dataloader", str(ROOT)]


@pytest.mark.slow
def test_demo_serves_collects_and_trains_its_two_runs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    seen = []
    with gpulens_running(tmp_path, "demo", "--port", "0", "--steps", "4", "--db", db) as process:
        assert process.stdout is not None
        deadline = time.monotonic() + 300  # two CPU runs on a shared machine; never a measure
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "demo-starved_dataloader-clean done" in line:
                break
        else:
            raise AssertionError("the demo runs did not finish:\n" + "".join(seen))
        output = stop_gpulens(process, timeout=60)
    text = "".join(seen) + output
    assert process.returncode == 0, text
    assert "gpulens demo: http://" in text and "collector: pid" in text
    runs = subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "runs", "--json", "--db", db],
        env=gpulens_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    names = sorted(run["name"] for run in json.loads(runs.stdout)["runs"])
    assert names == ["demo-starved_dataloader-bottleneck", "demo-starved_dataloader-clean"]


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    # `gpulens analyze TRACE | head -1`: the pipe closes while gpulens still prints.
    code = (
        "import sys\n"
        "from monitor.cli.main import main\n"
        "import monitor.cli.verbs.runs as runs\n"
        "def chatty(args):\n"
        "    for i in range(100000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "runs.run_runs = chatty\n"
        "sys.exit(main(['runs']))\n"
    )
    pipeline = 'python="$0"; "$python" -c "$1" 2>"$2" | head -n 1; exit "${PIPESTATUS[0]}"'
    errors = tmp_path / "stderr"
    done = subprocess.run(
        ["bash", "-c", pipeline, sys.executable, code, str(errors)],
        capture_output=True,
        cwd=ROOT,
    )
    assert done.stdout == b"line 0\n"
    assert done.returncode == 141
    assert b"Traceback" not in errors.read_bytes()
