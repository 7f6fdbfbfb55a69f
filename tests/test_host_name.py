"""A second collector under a host name a live one holds refuses to start (issue 11, item 6),
unless told to take over."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from monitor.core.errors import ConfigError
from monitor.store import Store
from tests.cli import gpulens, gpulens_running, stop_gpulens
from tests.helpers import dead_pid
from tests.test_collector import build, tick
from tests.test_store_file import wait_until


def test_a_fresh_heartbeat_of_another_pid_holds_the_host_name(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    first, clock = build(lambda: store, tmp_path)
    tick(first, clock, 1)
    first.flush()
    row = first.status("running")
    store.heartbeat(dataclasses.replace(row, pid=row.pid + 1))  # another process
    second, _ = build(lambda: store, tmp_path / "second")
    with pytest.raises(ConfigError, match=r"host name h1 is in use by a live collector") as caught:
        second.connect()
    assert f"pid {row.pid + 1}" in str(caught.value) and "--take-over" in str(caught.value)
    second.connect(take_over=True)
    # Stopped, or silent past the health limit of `gpulens status`: the name is free.
    store.heartbeat(dataclasses.replace(row, pid=row.pid + 1, state="stopped"))
    build(lambda: store, tmp_path / "third")[0].connect()
    old = row.heartbeat_at - timedelta(minutes=5)
    store.heartbeat(dataclasses.replace(row, pid=row.pid + 1, heartbeat_at=old))
    build(lambda: store, tmp_path / "fourth")[0].connect()
    store.close()


def test_a_collector_killed_on_this_machine_does_not_hold_its_name(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A restart right after SIGKILL (systemd's Restart=) finds a fresh "running" row whose
    # process is gone: on the machine that ran it, that is no rival.
    monkeypatch.setattr("monitor.collector.jobs.socket.gethostname", lambda: "h1")
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    first, clock = build(lambda: store, tmp_path)
    tick(first, clock, 1)
    first.flush()
    store.heartbeat(dataclasses.replace(first.status("running"), pid=dead_pid()))
    build(lambda: store, tmp_path / "restarted")[0].connect()
    monkeypatch.setattr("monitor.collector.jobs.socket.gethostname", lambda: "elsewhere")
    with pytest.raises(ConfigError, match="in use by a live collector"):
        build(lambda: store, tmp_path / "other-machine")[0].connect()
    store.close()


def collector_running(db: str, host: str) -> bool:
    store = Store.open(db)
    try:
        return any(c.host == host and c.state == "running" for c in store.collectors())
    finally:
        store.close()


def test_a_second_collector_with_the_same_host_name_refuses_to_start(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    common = ("collect", "--simulate", "1", "--interval", "0.2", "--db", db)
    naming = ("--host-name", "shared")
    with gpulens_running(tmp_path, *common, *naming, "--flush-interval", "0.5") as first:
        wait_until(lambda: collector_running(db, "shared"), "the first collector's heartbeat")
        second = gpulens(tmp_path, *common, *naming, "--duration", "1")
        assert second.returncode == 2, second.stderr
        lines = [line for line in second.stderr.splitlines() if line.startswith("gpulens:")]
        assert len(lines) == 1, second.stderr
        assert f"host name shared is in use by a live collector (pid {first.pid}" in lines[0]
        assert "--take-over" in lines[0]
        taken = gpulens(tmp_path, *common, *naming, "--duration", "1", "--take-over")
        assert taken.returncode == 0, taken.stderr
        other = gpulens(tmp_path, *common, "--host-name", "other", "--duration", "1")
        assert other.returncode == 0, other.stderr
        output = stop_gpulens(first)
    assert first.returncode == 0, output
