"""Turning source polls into records: samples, processes and the events between them.

The sampler keeps the little state that events need (throttle reasons, ECC counts, which GPUs
are lost, the previous energy reading, the previous clock readings) and nothing else. It does
no I/O of its own; the source and the clock are arguments.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime

from monitor.clock import Clock, ClockWatch, SystemClock
from monitor.core.gpu_records import (
    Event,
    GpuInfo,
    GpuSample,
    HostInfo,
    Record,
    gpu_info,
    process_sample,
)
from monitor.core.source import DeviceFacts, GpuReading, GpuSource, Poll, SystemFacts
from monitor.core.throttle import SLOWDOWN_MASK, decode_clock_event_reasons

log = logging.getLogger(__name__)

# A throttle episode ends after this many ticks without a slowdown reason: a power-capped
# job drops below the cap at every data-loading dip, and one episode per dip is noise.
THROTTLE_END_HOLD_TICKS = 5

_ECC_COUNTERS = (
    "ecc_uncorrected_volatile_count",
    "ecc_corrected_volatile_count",
    "retired_pages_count",
    "remapped_rows_uncorrectable_count",
)


def new_event(ts: datetime, host: str, kind: str, **fields: object) -> Event:
    """An event with a fresh id (so a retried write never stores it twice)."""
    return Event(uuidlib.uuid4().hex, ts, host, kind, **fields)  # type: ignore[arg-type]


@dataclass(slots=True)
class _GpuState:
    throttle_bits: int = 0
    clear_ticks: int = 0
    energy_joules: float | None = None
    ecc: dict[str, int] = field(default_factory=dict)
    is_lost: bool = False


class Sampler:
    """``Sampler(source, host)``: :meth:`start` once, then :meth:`tick` each interval."""

    def __init__(
        self,
        source: GpuSource,
        host: str,
        clock: Clock | None = None,
        *,
        collector_version: str | None = None,
    ) -> None:
        self.source = source
        self.host = host
        self.clock = clock or SystemClock()
        self.collector_version = collector_version
        self.facts: SystemFacts | None = None
        self.poll_errors = 0
        self._gpus: dict[str, _GpuState] = {}
        self._clock_watch: ClockWatch | None = None

    def start(self) -> list[Record]:
        """Open the source; the host and GPU facts and a ``collector_start`` event."""
        facts = self.source.open()
        self.facts = facts
        now = self.clock.wall()
        records = self._facts_records(facts, now)
        self._gpus = {device.uuid: _GpuState() for device in facts.devices}
        detail = "simulated GPUs" if self.source.is_simulated else "NVML"
        records.append(new_event(now, self.host, "collector_start", detail=detail))
        return records

    def facts_records(self) -> list[Record]:
        """The host and GPU facts as of now (after :meth:`start`), for a store that lost them
        (a SQLite file recreated while collecting)."""
        return [] if self.facts is None else self._facts_records(self.facts, self.clock.wall())

    def _facts_records(self, facts: SystemFacts, now: datetime) -> list[Record]:
        records: list[Record] = [
            HostInfo(
                host=self.host,
                ts=now,
                is_simulated=self.source.is_simulated,
                driver_version=facts.driver_version,
                nvml_version=facts.nvml_version,
                cuda_driver_version=facts.cuda_driver_version,
                collector_version=self.collector_version,
            )
        ]
        records += [self._gpu_info(device, now) for device in facts.devices]
        return records

    def _gpu_info(self, device: DeviceFacts, now: datetime) -> GpuInfo:
        facts = self.facts
        return gpu_info(
            device,
            host=self.host,
            ts=now,
            is_simulated=self.source.is_simulated,
            driver_version=facts.driver_version if facts else None,
            cuda_driver_version=facts.cuda_driver_version if facts else None,
        )

    def tick(self) -> list[Record]:
        """Poll the source once and return the records of this tick."""
        now = self.clock.wall()
        records: list[Record] = self._clock_events(now)
        poll = self.source.poll()
        self.poll_errors += poll.error_count
        records += self._availability_events(poll, now)
        for reading in poll.readings:
            records += self._reading_records(reading, now)
        for xid in poll.xids:
            detail = xid.detail or f"XID {xid.xid}"
            records.append(
                new_event(now, self.host, "xid", uuid=xid.uuid, value=xid.xid, detail=detail)
            )
        return records

    def stop(self, reason: str = "stopped") -> list[Record]:
        """The ``collector_stop`` event; closes the source."""
        self.source.close()
        return [new_event(self.clock.wall(), self.host, "collector_stop", detail=reason)]

    def _clock_events(self, now: datetime) -> list[Record]:
        if self._clock_watch is None:  # the first tick has nothing to compare with
            self._clock_watch = ClockWatch(self.clock)
            return []
        drift = self._clock_watch.check()
        if drift is None:
            return []
        log.warning("wall clock jumped by %+.1f s; sampling cadence is unaffected", drift)
        return [
            new_event(
                now,
                self.host,
                "clock_jump",
                value=drift,
                detail=f"wall clock jumped {drift:+.1f} s",
            )
        ]

    def _availability_events(self, poll: Poll, now: datetime) -> list[Record]:
        records: list[Record] = []
        for device in poll.reacquired:
            state = self._gpus.setdefault(device.uuid, _GpuState())
            state.is_lost = False
            records.append(self._gpu_info(device, now))
            records.append(new_event(now, self.host, "gpu_back", uuid=device.uuid))
            log.warning("GPU %s answers again", device.uuid)
        for gpu_uuid, reason in poll.lost.items():
            state = self._gpus.setdefault(gpu_uuid, _GpuState())
            if not state.is_lost:
                state.is_lost = True
                records.append(new_event(now, self.host, "gpu_lost", uuid=gpu_uuid, detail=reason))
                log.error("GPU %s lost: %s (the other GPUs go on)", gpu_uuid, reason)
        return records

    def _reading_records(self, reading: GpuReading, now: datetime) -> list[Record]:
        state = self._gpus.setdefault(reading.uuid, _GpuState())
        metrics = dict(reading.metrics)
        metrics["energy_used_joules"] = self._energy_used(state, metrics.get("energy_joules"))
        sample = GpuSample.from_metrics(reading.uuid, self.host, now, metrics)
        records: list[Record] = [sample]
        records += self._throttle_events(state, sample)
        records += self._ecc_events(state, sample)
        records += [
            process_sample(p, uuid=reading.uuid, host=self.host, ts=now) for p in reading.processes
        ]
        return records

    @staticmethod
    def _energy_used(state: _GpuState, energy: float | int | None) -> float | None:
        previous, state.energy_joules = (
            state.energy_joules,
            (None if energy is None else float(energy)),
        )
        if energy is None or previous is None:
            return None
        used = float(energy) - previous
        # The counter restarts at a driver reload or GPU reset: the energy used across the
        # reset is unknown, never negative.
        return used if used >= 0 else None

    def _throttle_events(self, state: _GpuState, sample: GpuSample) -> list[Record]:
        if sample.clock_event_reasons is None:
            return []
        # Idle, application-clock and display reasons are not throttling (monitor.core.throttle).
        bits = sample.clock_event_reasons & SLOWDOWN_MASK
        if bits == 0:
            if state.throttle_bits == 0:
                return []
            state.clear_ticks += 1
            if state.clear_ticks < THROTTLE_END_HOLD_TICKS:
                return []
            state.throttle_bits, state.clear_ticks = 0, 0
            return [new_event(sample.ts, self.host, "throttle_end", uuid=sample.uuid)]
        state.clear_ticks = 0
        if bits & ~state.throttle_bits == 0:
            return []  # the same episode (or a subset of its reasons)
        state.throttle_bits |= bits
        names = ",".join(decode_clock_event_reasons(state.throttle_bits))
        return [
            new_event(
                sample.ts,
                self.host,
                "throttle_start",
                uuid=sample.uuid,
                value=state.throttle_bits,
                detail=names,
            )
        ]

    def _ecc_events(self, state: _GpuState, sample: GpuSample) -> list[Record]:
        records: list[Record] = []
        for name in _ECC_COUNTERS:
            value = getattr(sample, name)
            if value is None:
                continue
            previous = state.ecc.get(name)
            state.ecc[name] = value
            if previous is not None and value > previous:
                records.append(
                    new_event(
                        sample.ts,
                        self.host,
                        "ecc",
                        uuid=sample.uuid,
                        value=value - previous,
                        detail=f"{name} +{value - previous}",
                    )
                )
        return records
