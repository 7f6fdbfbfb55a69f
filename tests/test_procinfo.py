"""``/proc`` parsing and the process reader: pure parsers on strings, the reader on a tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.collector.procinfo import (
    ProcInfo,
    ProcReader,
    parse_cgroup_path,
    parse_cmdline_name,
    parse_container_id,
    parse_environ_slurm_job_id,
    parse_slurm_job_id,
    parse_start_time,
)

CID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
STAT = "4242 (python3) S 1 4242 4242 0 -1 4194560 1000 0 0 0 12 3 0 0 20 0 4 0 987654 1000000"


def test_start_time_is_field_22() -> None:
    assert parse_start_time(STAT) == 987654


def test_start_time_survives_spaces_and_parens_in_the_command_name() -> None:
    stat = STAT.replace("(python3)", "(my (weird) name)")
    assert parse_start_time(stat) == 987654


@pytest.mark.parametrize("stat", ["", "4242 (python3", "4242 (python3) S 1 2"])
def test_start_time_of_malformed_stat_is_none(stat: str) -> None:
    assert parse_start_time(stat) is None


@pytest.mark.parametrize(
    "cgroup",
    [
        f"0::/system.slice/docker-{CID}.scope\n",
        f"12:memory:/docker/{CID}\n11:cpu,cpuacct:/docker/{CID}\n",
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/cri-containerd-{CID}.scope\n",
        f"0::/kubepods/burstable/pod0f1e2d3c-aaaa-bbbb-cccc-123456789abc/{CID}\n",
        f"0::/machine.slice/crio-{CID}.scope\n",
    ],
)
def test_container_id_in_v1_and_v2_cgroup_formats(cgroup: str) -> None:
    assert parse_container_id(cgroup) == CID


def test_no_container_id_on_a_plain_host_process() -> None:
    assert parse_container_id("0::/user.slice/user-1000.slice/session-3.scope\n") is None
    # A 64-hex run inside a longer segment is not a container id.
    assert parse_container_id(f"0::/something/x{CID}y\n") is None


def test_cgroup_path_prefers_unified_then_v1_memory() -> None:
    assert parse_cgroup_path("0::/system.slice/train.service\n") == "/system.slice/train.service"
    hybrid = "12:memory:/slurm/uid_1000/job_7\n3:cpu,cpuacct:/slurm/uid_1000/job_7/step_0\n0::/\n"
    assert parse_cgroup_path(hybrid) == "/slurm/uid_1000/job_7"
    assert parse_cgroup_path("") is None
    assert parse_cgroup_path("0::/\n") == "/"


def test_slurm_job_id_from_cgroup_segment() -> None:
    cgroup = "0::/system.slice/slurmstepd.scope/job_12345/step_0/user/task_0\n"
    assert parse_slurm_job_id(cgroup) == "12345"
    assert parse_slurm_job_id("4:memory:/slurm/uid_1000/job_12345/step_0\n") == "12345"
    assert parse_slurm_job_id("0::/user.slice/job_search.service\n") is None


def test_slurm_job_id_from_environ() -> None:
    environ = b"HOME=/root\0SLURM_JOB_ID=991\0SLURM_JOB_IDX=3\0"
    assert parse_environ_slurm_job_id(environ) == "991"
    assert parse_environ_slurm_job_id(b"HOME=/root\0") is None


def test_cmdline_name_is_basename_of_argv0() -> None:
    assert parse_cmdline_name(b"/usr/bin/python3\0train.py\0--lr\0") == "python3"
    assert parse_cmdline_name(b"") is None


def _make_proc(root: Path, pid: int, *, start: int = 987654, **files: str | bytes) -> Path:
    folder = root / str(pid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stat").write_text(STAT.replace("4242", str(pid)).replace("987654", str(start)))
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def test_reader_describes_a_containerised_slurm_process(tmp_path: Path) -> None:
    _make_proc(
        tmp_path,
        100,
        comm="python3\n",
        cgroup=f"0::/slurm/uid_1000/job_555/step_0/docker-{CID}.scope\n",
    )
    info = ProcReader(str(tmp_path)).describe(100)
    assert info == ProcInfo(
        pid=100,
        name="python3",
        container_id=CID,
        cgroup=f"/slurm/uid_1000/job_555/step_0/docker-{CID}.scope",
        slurm_job_id="555",
    )


def test_reader_falls_back_to_cmdline_and_environ(tmp_path: Path) -> None:
    _make_proc(
        tmp_path,
        101,
        cmdline=b"/opt/conda/bin/torchrun\0train.py\0",
        cgroup="0::/user.slice\n",
        environ=b"SLURM_JOB_ID=77\0",
    )
    info = ProcReader(str(tmp_path)).describe(101)
    assert info is not None
    assert (info.name, info.slurm_job_id, info.container_id) == ("torchrun", "77", None)


def test_missing_pid_is_none_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A host pid not visible in this container's /proc, or a process that already exited.
    assert ProcReader(str(tmp_path)).describe(99999) is None
    assert caplog.records == []


def test_unreadable_files_give_none_fields(tmp_path: Path) -> None:
    # Only stat is readable: the others are missing, as for another user's process.
    _make_proc(tmp_path, 102)
    assert ProcReader(str(tmp_path)).describe(102) == ProcInfo(pid=102)


def test_cache_is_keyed_by_start_time_so_a_reused_pid_is_read_again(tmp_path: Path) -> None:
    reader = ProcReader(str(tmp_path))
    _make_proc(tmp_path, 103, comm="first\n")
    assert reader.describe(103) == ProcInfo(pid=103, name="first")
    (tmp_path / "103" / "comm").write_text("renamed\n")
    # Same process (same start time): the cached answer, no re-read.
    assert reader.describe(103) == ProcInfo(pid=103, name="first")
    _make_proc(tmp_path, 103, start=999999, comm="second\n")
    assert reader.describe(103) == ProcInfo(pid=103, name="second")


def test_retain_forgets_processes_not_seen(tmp_path: Path) -> None:
    reader = ProcReader(str(tmp_path))
    _make_proc(tmp_path, 104, comm="a\n")
    _make_proc(tmp_path, 105, comm="b\n")
    reader.describe(104)
    reader.describe(105)
    reader.retain([105])
    (tmp_path / "104" / "comm").write_text("c\n")
    (tmp_path / "105" / "comm").write_text("d\n")
    assert reader.describe(104) == ProcInfo(pid=104, name="c")  # forgotten, so read afresh
    assert reader.describe(105) == ProcInfo(pid=105, name="b")  # kept


def test_cache_is_bounded(tmp_path: Path) -> None:
    reader = ProcReader(str(tmp_path), max_entries=2)
    for pid in (110, 111, 112):
        _make_proc(tmp_path, pid, comm=f"p{pid}\n")
        reader.describe(pid)
    (tmp_path / "110" / "comm").write_text("new\n")
    assert reader.describe(110) == ProcInfo(pid=110, name="new")  # the oldest was dropped


def test_real_proc_describes_this_test_process() -> None:
    info = ProcReader().describe(os.getpid())
    assert info is not None
    with open(f"/proc/{os.getpid()}/comm") as file:
        assert info.name == file.read().strip()
    with open(f"/proc/{os.getpid()}/cgroup") as file:
        assert info.cgroup == parse_cgroup_path(file.read())
