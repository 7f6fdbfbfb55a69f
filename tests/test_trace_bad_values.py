"""``gpulens analyze`` on traces with one bad event value: no traceback, ever (issue 11, item 3).

A kernel with an unusable ``ts``/``dur``/``args``/``name`` (or a negative ``dur``) is skipped and
counted in a note naming the event and its byte offset; a ProfilerStep with an absurd ``dur`` (the
step boundaries) is one error line and exit 1. Real processes, traces from the generator.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli import gpulens
from tests.trace_gen import write_synthetic_trace

BAD_NUMBERS = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "1e300": "1e300",
    "2^70": str(2**70),
    "-1e18": "-1e18",
    "1e999999999": "1e999999999",
    "null": "null",
    "a string": '"soon"',
    "an object": '{"us": 5}',
    "true": "true",
}
_KERNEL = '"cat": "kernel"'
_STEP = '"name": "ProfilerStep#10"'


def _trace_with(tmp_path: Path, anchor: str, old: str, new: str) -> tuple[Path, int]:
    """A generated trace whose first event holding ``anchor`` has ``old`` (a regex) → ``new``;
    the trace and the byte offset of that event's ``{``."""
    clean = tmp_path / "clean.json"
    write_synthetic_trace(clean, steps=3, kernels_per_step=4)
    text = clean.read_text()
    at = text.index(anchor)
    start, end = text.rindex("{", 0, at), text.index("\n  }", at)
    event, count = re.subn(old, new, text[start:end], count=1)
    assert count == 1, (old, text[start:end])
    bad = tmp_path / "bad.json"
    bad.write_text(text[:start] + event + text[end:], encoding="utf-8", errors="surrogatepass")
    return bad, len(text[:start].encode())


def _assert_skipped(tmp_path: Path, trace: Path, offset: int, what: str) -> None:
    done = gpulens(tmp_path, "analyze", str(trace))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if "skipped" in line]
    assert len(notes) == 1, done.stdout
    assert "skipped 1 event " in notes[0] and what in notes[0], notes[0]
    assert f"at byte {offset:,}" in notes[0], notes[0]
    json_done = gpulens(tmp_path, "analyze", str(trace), "--json")
    assert json_done.returncode == 0 and "Traceback" not in json_done.stderr, json_done.stderr


@pytest.mark.parametrize("field", ["ts", "dur"])
@pytest.mark.parametrize("label", list(BAD_NUMBERS))
def test_a_kernel_with_a_bad_time_is_skipped_and_counted(
    tmp_path: Path, field: str, label: str
) -> None:
    trace, offset = _trace_with(
        tmp_path, _KERNEL, rf'"{field}": [0-9.]+', f'"{field}": {BAD_NUMBERS[label]}'
    )
    what = "a negative dur" if (field, label) == ("dur", "-1e18") else f"a bad {field}"
    _assert_skipped(tmp_path, trace, offset, what)


def test_a_kernel_without_ts_is_skipped_and_counted(tmp_path: Path) -> None:
    trace, offset = _trace_with(tmp_path, _KERNEL, r'"ts": [0-9.]+, ', "")
    _assert_skipped(tmp_path, trace, offset, "no ts")


def test_a_negative_duration_is_skipped_and_counted_not_made_zero(tmp_path: Path) -> None:
    trace, offset = _trace_with(tmp_path, _KERNEL, r'"dur": [0-9.]+', '"dur": -5.5')
    _assert_skipped(tmp_path, trace, offset, "a negative dur")


def test_args_that_are_a_list_are_skipped_and_counted(tmp_path: Path) -> None:
    trace, offset = _trace_with(tmp_path, _KERNEL, r'"args": \{[^}]*\}', '"args": [1, 2]')
    _assert_skipped(tmp_path, trace, offset, "args")


def test_a_lone_surrogate_in_a_name_is_skipped_and_counted(tmp_path: Path) -> None:
    trace, offset = _trace_with(tmp_path, _KERNEL, r'"name": "', r'"name": "\\ud800')
    _assert_skipped(tmp_path, trace, offset, "name")


def test_a_profiler_step_with_an_absurd_duration_is_one_error_line(tmp_path: Path) -> None:
    trace, offset = _trace_with(tmp_path, _STEP, r'"dur": [0-9.]+', '"dur": 1e300')
    done = gpulens(tmp_path, "analyze", str(trace))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "ProfilerStep#10" in line and f"at byte {offset:,}" in line and "dur" in line, line
