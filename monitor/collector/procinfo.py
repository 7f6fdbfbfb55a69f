"""Who a GPU process is: its name, container, cgroup and Slurm job, read from ``/proc``.

NVML reports process ids only. :class:`ProcReader` adds what ``/proc`` tells about them.
The parsing functions are pure (strings in, values out); only :class:`ProcReader` reads files.

NVML reports *host* pids. Inside a container with its own pid namespace a host pid is usually
absent from ``/proc`` (then every field is ``None``), and it may even name an unrelated process
of the container: nothing in ``/proc`` can tell the two apart, so run the collector in the host
pid namespace (``--pid=host``) for trustworthy names.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ProcInfo",
    "ProcReader",
    "parse_cgroup_path",
    "parse_cmdline_name",
    "parse_container_id",
    "parse_environ_slurm_job_id",
    "parse_slurm_job_id",
    "parse_start_time",
]

# Docker, containerd (cri-containerd-<id>.scope), CRI-O (crio-<id>.scope) and Kubernetes
# (/kubepods/<qos>/pod<uid>/<id>) all name the container by a 64-hex id as one path segment,
# bare or with a runtime prefix and a systemd ".scope" suffix.
_CONTAINER_ID = re.compile(r"(?:^|[/\-:])([0-9a-f]{64})(?:\.scope)?(?=/|$)")
_SLURM_JOB = re.compile(r"(?:^|/)job_(\d+)(?=/|$)")
_STARTTIME_FIELD = 22  # /proc/PID/stat, 1-based, in clock ticks since boot


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """What ``/proc`` tells about one process. Fields it does not tell are ``None``."""

    pid: int
    name: str | None = None
    container_id: str | None = None
    cgroup: str | None = None
    slurm_job_id: str | None = None


def parse_start_time(stat_text: str) -> int | None:
    """Start time (field 22) of a ``/proc/PID/stat`` line, or ``None`` if malformed.

    The command name (field 2) is in parentheses and may itself hold spaces and ``)``, so the
    fields are counted from the last ``)``.
    """
    _, sep, rest = stat_text.rpartition(")")
    if not sep:
        return None
    fields = rest.split()  # fields[0] is field 3 (state)
    index = _STARTTIME_FIELD - 3
    if len(fields) <= index or not fields[index].isdigit():
        return None
    return int(fields[index])


def _cgroup_lines(cgroup_text: str) -> list[tuple[str, str]]:
    """``(controllers, path)`` per line of ``/proc/PID/cgroup`` (``hierarchy:controllers:path``)."""
    lines = []
    for line in cgroup_text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            lines.append((parts[1], parts[2]))
    return lines


def parse_cgroup_path(cgroup_text: str) -> str | None:
    """The process's cgroup path: the unified (v2) one, else the v1 memory controller's."""
    lines = _cgroup_lines(cgroup_text)
    unified = [path for controllers, path in lines if controllers == ""]
    # In hybrid mode the unified line often says only "/"; the v1 lines then say more.
    if unified and unified[0] != "/":
        return unified[0]
    for controllers, path in lines:
        if "memory" in controllers.split(","):
            return path
    paths = [path for _, path in lines if path and path != "/"]
    if paths:
        return paths[0]
    return unified[0] if unified else None


def parse_container_id(cgroup_text: str) -> str | None:
    """The 64-hex container id in any cgroup path of ``/proc/PID/cgroup``, else ``None``."""
    for _, path in _cgroup_lines(cgroup_text):
        match = _CONTAINER_ID.search(path)
        if match:
            return match.group(1)
    return None


def parse_slurm_job_id(cgroup_text: str) -> str | None:
    """The Slurm job id from a ``job_<n>`` cgroup segment (``/slurm/uid_1000/job_12345/...``)."""
    for _, path in _cgroup_lines(cgroup_text):
        match = _SLURM_JOB.search(path)
        if match:
            return match.group(1)
    return None


def parse_environ_slurm_job_id(environ: bytes) -> str | None:
    """``SLURM_JOB_ID`` from a NUL-separated ``/proc/PID/environ``, else ``None``."""
    for entry in environ.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key == b"SLURM_JOB_ID" and value:
            return value.decode(errors="replace")
    return None


def parse_cmdline_name(cmdline: bytes) -> str | None:
    """The basename of ``argv[0]`` from a NUL-separated ``/proc/PID/cmdline``."""
    argv0 = cmdline.split(b"\0", 1)[0]
    name = os.path.basename(argv0.decode(errors="replace"))
    return name or None


class ProcReader:
    """Describes processes by pid from a ``/proc`` tree (an argument, so tests pass a fake one).

    Results are cached by ``(pid, start time)``, so a reused pid is read afresh; call
    :meth:`retain` after each poll to forget the processes that were not seen.
    """

    def __init__(self, root: str = "/proc", *, max_entries: int = 4096) -> None:
        self._root = root
        self._max_entries = max_entries
        self._cache: OrderedDict[int, tuple[int, ProcInfo]] = OrderedDict()

    def describe(self, pid: int) -> ProcInfo | None:
        """What ``/proc`` says about ``pid``; ``None`` if it is gone or not visible here."""
        stat = self._read_text(pid, "stat")
        start_time = parse_start_time(stat) if stat is not None else None
        if start_time is None:
            self._cache.pop(pid, None)
            return None
        cached = self._cache.get(pid)
        if cached is not None and cached[0] == start_time:
            self._cache.move_to_end(pid)
            return cached[1]
        info = self._read(pid)
        self._cache[pid] = (start_time, info)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return info

    def retain(self, pids: Iterable[int]) -> None:
        """Forget every cached process except ``pids`` (those seen in the latest poll)."""
        keep = set(pids)
        for pid in [pid for pid in self._cache if pid not in keep]:
            del self._cache[pid]

    def _read(self, pid: int) -> ProcInfo:
        comm = self._read_text(pid, "comm")
        name = comm.strip() if comm else None
        if not name:
            cmdline = self._read_bytes(pid, "cmdline")
            name = parse_cmdline_name(cmdline) if cmdline else None
        cgroup_text = self._read_text(pid, "cgroup") or ""
        slurm_job_id = parse_slurm_job_id(cgroup_text)
        if slurm_job_id is None:
            # environ is readable only for our own processes (or as root).
            environ = self._read_bytes(pid, "environ")
            slurm_job_id = parse_environ_slurm_job_id(environ) if environ else None
        return ProcInfo(
            pid=pid,
            name=name,
            container_id=parse_container_id(cgroup_text),
            cgroup=parse_cgroup_path(cgroup_text),
            slurm_job_id=slurm_job_id,
        )

    def _read_bytes(self, pid: int, name: str) -> bytes | None:
        # A process can exit between any two reads, and another user's files may be closed to
        # us: both simply mean "not known".
        try:
            with open(os.path.join(self._root, str(pid), name), "rb") as file:
                return file.read()
        except OSError:
            return None

    def _read_text(self, pid: int, name: str) -> str | None:
        data = self._read_bytes(pid, name)
        return data.decode(errors="replace") if data is not None else None
