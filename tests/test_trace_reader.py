"""The streaming trace reader: real Kineto traces, synthetic ones, and hostile input.

Every hostile file must give exactly one :class:`TraceError` (no chained traceback) that says
what is wrong and where, with memory bounded by the limits, not by the file.
"""

from __future__ import annotations

import gzip
import itertools
import json
import tracemalloc
import zlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import TraceError
from monitor.traces import reader as trace_reader
from monitor.traces.reader import BATCH_EVENTS, TraceLimits, find_trace_files, read_trace
from tests.conftest import missing
from tests.trace_gen import FIRST_STEP, SyntheticTruth, write_synthetic_trace

REAL_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
REAL_NAMES = (
    "hta_alexnet_a100.json.gz",
    "hta_nccl_parser_a100_rank0.json.gz",
    "hta_ns_resolution_v100.pt.trace.json.gz",
    "param_resnet_rtx2080ti.json.gz",
    "tracelens_h100_qwen1.5_0.5b.json.gz",
)
KiB = 1024


def read_all(path: Path, **kwargs: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events: list[dict[str, Any]] = []
    metadata = read_trace(path, events.extend, **kwargs)
    return events, metadata


def trace_error(path: Path, **kwargs: Any) -> str:
    """The one TraceError reading ``path`` gives: no other type, no chained traceback."""
    with pytest.raises(TraceError) as info:
        read_all(path, **kwargs)
    error = info.value
    assert type(error) is TraceError
    assert error.__context__ is None or error.__suppress_context__, "chained traceback"
    assert error.__cause__ is None
    return str(error)


def write(tmp_path: Path, data: bytes | str, name: str = "trace.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def decimal_ns(value: str | int) -> int:
    return int(Decimal(str(value)) * 1000)


# --- finding files -------------------------------------------------------------------------


def test_find_trace_files_lists_a_folders_traces_sorted(tmp_path: Path) -> None:
    for name in ("b.pt.trace.json.gz", "a.json", "c.pt.trace.json", "notes.txt", "d.JSON"):
        write(tmp_path, "{}", name)
    (tmp_path / "sub.json").mkdir()
    found = find_trace_files(tmp_path)
    assert [p.name for p in found] == ["a.json", "b.pt.trace.json.gz", "c.pt.trace.json", "d.JSON"]
    assert find_trace_files(found[0]) == [found[0]]


def test_find_trace_files_says_what_it_looked_for(tmp_path: Path) -> None:
    write(tmp_path, "x", "notes.txt")
    with pytest.raises(TraceError, match=r"no trace files in .*\*\.json and \*\.json\.gz"):
        find_trace_files(tmp_path)
    with pytest.raises(TraceError, match="does not exist"):
        find_trace_files(tmp_path / "missing")


# --- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_traces_read_like_json_load(name: str) -> None:
    path = REAL_TRACES / name
    if not path.exists():
        missing(f"real trace {path} not found (the shared traces folder ships with CI)")
    expected = json.loads(gzip.decompress(path.read_bytes()), parse_float=str)
    expected_events = expected.pop("traceEvents")
    batches: list[int] = []

    def keep(batch: list[dict[str, Any]]) -> None:
        batches.append(len(batch))
        events.extend(batch)

    events: list[dict[str, Any]] = []
    metadata = read_trace(path, keep, limits=TraceLimits(chunk_bytes=256 * KiB))
    assert events == expected_events
    assert metadata == expected
    assert all(size <= BATCH_EVENTS for size in batches)
    assert all(size == BATCH_EVENTS for size in batches[:-1])


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("float_timestamps", [True, False])
def test_synthetic_trace_round_trips(
    tmp_path: Path, compress: bool, float_timestamps: bool
) -> None:
    path = tmp_path / ("t.json.gz" if compress else "t.json")
    truth = write_synthetic_trace(
        path, steps=3, kernels_per_step=40, compress=compress, float_timestamps=float_timestamps
    )
    seen: list[tuple[int, int]] = []
    events, metadata = read_all(path, progress=lambda done, size: seen.append((done, size)))
    assert len(events) == truth.event_count
    assert metadata["distributedInfo"] == {"backend": "nccl", "rank": 0, "world_size": 1}
    assert set(metadata) == {
        "schemaVersion", "deviceProperties", "distributedInfo", "traceName", "displayTimeUnit"
    }  # fmt: skip
    steps = {e["name"]: e for e in events if e["name"].startswith("ProfilerStep#")}
    first = steps[f"ProfilerStep#{FIRST_STEP}"]
    assert first["ts"] == truth.as_read(truth.step_start_ns[FIRST_STEP])
    assert type(first["ts"]) is (str if float_timestamps else int)
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_synthetic_truth_matches_the_events(tmp_path: Path) -> None:
    truth = write_synthetic_trace(tmp_path / "t.json", steps=4, kernels_per_step=23, with_nccl=True)
    events, _ = read_all(tmp_path / "t.json")
    check_truth(truth, events)


def check_truth(truth: SyntheticTruth, events: list[dict[str, Any]]) -> None:
    steps = {int(e["name"][13:]): e for e in events if e["name"].startswith("ProfilerStep#")}
    assert tuple(sorted(steps)) == truth.steps == tuple(range(FIRST_STEP, FIRST_STEP + 4))
    for step, event in steps.items():
        assert decimal_ns(event["ts"]) == truth.step_start_ns[step]
        assert decimal_ns(event["dur"]) == truth.step_duration_ns[step]
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy")]
    kernels = [e for e in gpu if e["cat"] == "kernel"]
    assert len(kernels) == truth.kernel_total_count == 4 * 24
    assert sum(decimal_ns(e["dur"]) for e in kernels) == truth.kernel_total_ns
    for name, count in truth.kernel_count.items():
        assert sum(e["name"] == name for e in kernels) == count
    assert sum(e["args"]["stream"] == 20 for e in kernels) == truth.nccl_count == 4
    copies = [e for e in gpu if e["cat"] == "gpu_memcpy"]
    assert sum(e["args"]["bytes"] for e in copies) == truth.memcpy_bytes
    assert sum(decimal_ns(e["dur"]) for e in copies) == truth.memcpy_time_ns
    spans = sorted((decimal_ns(e["ts"]), decimal_ns(e["ts"]) + decimal_ns(e["dur"])) for e in gpu)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert sum(end - start for start, end in spans) == truth.gpu_busy_ns
    assert (spans[0][0], spans[-1][1]) == (truth.first_gpu_ts_ns, truth.last_gpu_end_ns)
    assert len(truth.tensor_core_names) == 2


def test_synthetic_traces_are_deterministic_per_seed(tmp_path: Path) -> None:
    for folder, seed in (("a", 1), ("b", 1), ("c", 2)):
        (tmp_path / folder).mkdir()
        write_synthetic_trace(tmp_path / folder / "t.json", steps=2, kernels_per_step=5, seed=seed)
    a, b, c = ((tmp_path / folder / "t.json").read_bytes() for folder in "abc")
    assert a == b != c


TRICKY = {
    "schemaVersion": 1,
    "n": -12345.6789e-3,
    "unicode": "µs → 𝄞 ✓ é",
    "nested": {"a": [1, 2, {"b": [[], {}]}], "s": '}],{[\\"\u0001'},
    "traceEvents": [
        {"name": "kernel µ𝄞", "ts": 1712195495519689.047, "dur": 0.5, "args": {"x": [1, [2]]}},
        {"name": '\\"quoted\\" ]}', "ts": 17, "big": 123456789012345678901234567890},
        {},
    ],
    "after": [True, False, None, 1e400],
}


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 64, 4096])
@pytest.mark.parametrize("compress", [False, True])
def test_any_chunk_boundary_reads_the_same(
    tmp_path: Path, chunk_bytes: int, compress: bool
) -> None:
    text = json.dumps(TRICKY, indent=1, ensure_ascii=False)
    data = gzip.compress(text.encode()) if compress else text.encode()
    events, metadata = read_all(write(tmp_path, data), limits=TraceLimits(chunk_bytes=chunk_bytes))
    expected = json.loads(text, parse_float=str)
    assert events == expected.pop("traceEvents")
    assert metadata == expected


def test_an_event_spanning_many_chunks(tmp_path: Path) -> None:
    events = [{"a": 1}, {"name": "x" * 3_000_000, "args": {"n": 1.5}}, {"b": 2}]
    path = write(tmp_path, json.dumps({"traceEvents": events}))
    assert read_all(path, limits=TraceLimits(chunk_bytes=4 * KiB))[0][1]["args"] == {"n": "1.5"}


def test_parse_float_and_integers(tmp_path: Path) -> None:
    path = write(tmp_path, '{"traceEvents": [{"ts": 1712195495519689.047, "dur": 3, "x": 1e2}]}')
    assert read_all(path)[0] == [{"ts": "1712195495519689.047", "dur": 3, "x": "1e2"}]
    assert read_all(path, parse_float=Decimal)[0][0]["ts"] == Decimal("1712195495519689.047")


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ('[{"ph": "X"}, {"ph": "i"}]', 2),
        ("[]", 0),
        ('[{"ph": "X"},\n{"ph": "i"},\n', 2),  # Chrome's array format may omit the "]"
        ('[{"ph": "X"}', 1),
    ],
)
def test_bare_array_traces(tmp_path: Path, text: str, count: int) -> None:
    events, metadata = read_all(write(tmp_path, text), limits=TraceLimits(chunk_bytes=3))
    assert (len(events), metadata) == (count, {})


def test_byte_order_mark_multi_member_gzip_and_padding(tmp_path: Path) -> None:
    text = '\ufeff{"traceEvents": [{"a": 1}, {"b": 2}], "x": 1}'.encode()
    data = gzip.compress(text[:20]) + gzip.compress(text[20:]) + b"\0" * 10
    assert read_all(write(tmp_path, data)) == ([{"a": 1}, {"b": 2}], {"x": 1})


def test_batches_are_full_until_the_last(tmp_path: Path) -> None:
    n = 2 * BATCH_EVENTS + 5
    path = write(tmp_path, json.dumps({"traceEvents": [{"i": i} for i in range(n)]}))
    sizes: list[int] = []
    read_trace(path, lambda batch: sizes.append(len(batch)))
    assert sizes == [BATCH_EVENTS, BATCH_EVENTS, 5]


@pytest.mark.slow  # tracemalloc slows the reader several times over
def test_long_events_make_smaller_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace_reader, "_BATCH_CHARS", 10_000)
    events = [{"name": "x" * 3000}] * 10 + [{"i": i} for i in range(5)]
    sizes: list[int] = []
    read_trace(write(tmp_path, json.dumps(events)), lambda batch: sizes.append(len(batch)))
    assert sizes == [4, 4, 7]


def test_memory_stays_bounded_on_a_large_trace(tmp_path: Path) -> None:
    path = tmp_path / "large.json"
    truth = write_synthetic_trace(path, steps=20, kernels_per_step=1900)
    size = path.stat().st_size
    assert size > 45 * 1024**2
    counted = 0

    def count(batch: list[dict[str, Any]]) -> None:
        nonlocal counted
        counted += len(batch)

    tracemalloc.start()
    try:  # memory grows with the chunk size and one batch, never with the file
        read_trace(path, count, limits=TraceLimits(chunk_bytes=KiB**2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counted == truth.event_count
    assert peak < size / 4, f"peak {peak:,} bytes for a {size:,}-byte trace"


# --- hostile and broken input: one TraceError each -----------------------------------------


@pytest.mark.parametrize("cut", [0.001, 0.3, 0.5, 0.999])
def test_truncated_plain_trace(tmp_path: Path, cut: float) -> None:
    full = tmp_path / "full.json"
    write_synthetic_trace(full, steps=2, kernels_per_step=30)
    data = full.read_bytes()
    path = write(tmp_path, data[: int(len(data) * cut)])
    message = trace_error(path, limits=TraceLimits(chunk_bytes=1000))
    assert "ends inside" in message and "cut off" in message and "re-record" in message
    assert f"at byte {int(len(data) * cut):,}" in message
    if 0.1 < cut < 0.99:
        assert "of the event list" in message


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    full = tmp_path / "full.json.gz"
    write_synthetic_trace(full, steps=2, kernels_per_step=30, compress=True)
    data = full.read_bytes()
    message = trace_error(write(tmp_path, data[: len(data) // 2], "cut.json.gz"))
    assert "gzip stream ends early" in message and "cut off" in message
    # only the 8-byte trailer (CRC and size) missing: still a cut-off file
    assert "gzip stream ends early" in trace_error(write(tmp_path, data[:-4], "cut2.json.gz"))


def test_complete_gzip_of_truncated_json(tmp_path: Path) -> None:
    text = b'{"traceEvents": [{"a": 1}, {"b": '
    message = trace_error(write(tmp_path, gzip.compress(text)))
    assert f"ends inside event 2 of the event list at byte {len(text)} of the gunzipped" in message


def test_corrupt_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(json.dumps(TRICKY).encode() * 50))
    data[30:60] = b"\xff" * 30
    assert "gzip" in trace_error(write(tmp_path, bytes(data)))


def test_invalid_utf8_names_the_byte(tmp_path: Path) -> None:
    before = '{"traceEvents": [{"name": "é'.encode()
    message = trace_error(write(tmp_path, before + b'\xff"}]}'), limits=TraceLimits(chunk_bytes=3))
    assert f"not UTF-8 text at byte {len(before)} (invalid start byte)" in message


@pytest.mark.parametrize("depth", [100_000, 401])
def test_deep_nesting_in_an_event(tmp_path: Path, depth: int) -> None:
    event = '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)
    if depth > 1000:
        event = '{"args": ' + "[" * depth + "]" * depth + "}"
    path = write(tmp_path, '{"traceEvents": [{"ok": 1}, ' + event + "]}")
    message = trace_error(path)
    assert "event 2 of the event list at byte 28" in message
    assert "nests deeper than 400 levels" in message


def test_depth_limit_is_exact(tmp_path: Path) -> None:
    def nested(depth: int) -> str:
        return "[" * (depth - 1) + "]" * (depth - 1)

    ok = write(tmp_path, '{"traceEvents": [{"a": ' + nested(400) + "}]}")
    assert len(read_all(ok)[0]) == 1
    too_deep = write(tmp_path, '{"traceEvents": [{"a": ' + nested(401) + "}]}", "deep.json")
    assert "nests deeper than 400 levels" in trace_error(too_deep)
    value = write(tmp_path, '{"meta": ' + nested(6) + ', "traceEvents": []}', "value.json")
    message = trace_error(value, limits=TraceLimits(max_depth=4))
    assert "the value of the top-level key 'meta'" in message


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    compressor = zlib.compressobj(9, wbits=31)
    parts = [compressor.compress(b'{"traceEvents": [')]
    parts += [compressor.compress(b" " * KiB**2) for _ in range(200)]  # 200 MiB of blanks
    path = write(tmp_path, b"".join(parts) + compressor.flush(), "bomb.json.gz")
    assert path.stat().st_size < KiB**2
    tracemalloc.start()
    try:
        limits = TraceLimits(max_decoded_bytes=8 * KiB**2, chunk_bytes=256 * KiB)
        message = trace_error(path, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decompresses to more than 8 MiB" in message and "gzip bomb" in message
    assert peak < 4 * KiB**2


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, '{"traceEvents": []}' + " " * 2000)
    message = trace_error(path, limits=TraceLimits(max_file_bytes=KiB))
    assert "is 2 KiB, over the 1 KiB limit (TraceLimits.max_file_bytes)" in message


@pytest.mark.parametrize("chunk_bytes", [64 * KiB, 100])
def test_event_over_the_size_limit(tmp_path: Path, chunk_bytes: int) -> None:
    big = json.dumps({"name": "x" * 40_000})
    path = write(tmp_path, '{"traceEvents": [{"a": 1}, ' + big + ', {"b": 2}]}')
    message = trace_error(
        path, limits=TraceLimits(max_event_bytes=8 * KiB, chunk_bytes=chunk_bytes)
    )
    assert "event 2 of the event list at byte 27 is over 8 KiB" in message


def test_metadata_value_over_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, '{"big": "' + "y" * 40_000 + '", "traceEvents": []}')
    message = trace_error(path, limits=TraceLimits(max_event_bytes=8 * KiB))
    assert "the value of the top-level key 'big' at byte 8 is over 8 KiB" in message


def test_metadata_is_bounded_as_a_whole(tmp_path: Path) -> None:
    many = "{" + "".join(f'"k{i}": {i}, ' for i in range(10_001)) + '"traceEvents": []}'
    assert "over 10,000 keys (10,001 read)" in trace_error(write(tmp_path, many))
    two = {"a": "y" * 5000, "b": "z" * 5000, "traceEvents": []}
    message = trace_error(
        write(tmp_path, json.dumps(two)), limits=TraceLimits(max_event_bytes=8 * KiB)
    )
    assert "the top-level keys besides traceEvents hold over 8 KiB of text" in message
    deep = '{"m": ' + "[" * 100_000 + "]" * 100_000 + ', "traceEvents": []}'
    message = trace_error(write(tmp_path, deep))
    assert "the value of the top-level key 'm' at byte 6 nests deeper than 400 levels" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("hello world", "is not JSON: it starts with 'h' at byte 0"),
        (b"\x89PNG\r\n\x1a\n", "not UTF-8 text at byte 0"),
        ('"a string"', "the JSON is a string, not an object or array"),
        ("42", "the JSON is a number"),
        ("  true", "the JSON is a boolean"),
        ("null", "the JSON is null, not an object"),
        ('{"schemaVersion": 1}', "has no \"traceEvents\" list (its keys: 'schemaVersion')"),
        ("{}", 'has no "traceEvents" list (its keys: none)'),
        ('{"traceEvents": {}}', '"traceEvents" at byte 16 is an object, not a list of events'),
        ('{"traceEvents": [1]}', "event 1 of the event list at byte 17 is a number"),
        ('[{"a": 1}, "x"]', "event 2 of the event list at byte 11 is a string"),
        ('{"traceEvents": []} {}', "unexpected data after the end of the trace at byte 20"),
        ('{"traceEvents": [{"a": 1,, "b": 2}]}', "invalid JSON in event 1 of the event list"),
        ('{"traceEvents": [{"a": 1} {"b": 2}]}', "Expecting ',' or ']'"),
        ('{"traceEvents": [], }', "Expecting a key after ','"),
        ('{"a" 1, "traceEvents": []}', "Expecting ':'"),
        ("   \n ", "holds no JSON, only whitespace"),
    ],
)
def test_not_a_trace(tmp_path: Path, data: str | bytes, expected: str) -> None:
    assert expected in trace_error(write(tmp_path, data))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: write(p, b""), "is empty"),
        (lambda p: write(p, gzip.compress(b""), "e.json.gz"), "holds no JSON"),
        (lambda p: p / "missing.json", "does not exist"),
        (lambda p: p, "is a folder"),
    ],
)
def test_nothing_to_read(tmp_path: Path, make: Callable[[Path], Path], expected: str) -> None:
    assert expected in trace_error(make(tmp_path))
