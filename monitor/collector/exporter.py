"""Prometheus ``/metrics`` for the collector: the latest sample of every GPU, and its health.

An adapter in the manner of prometheus/client_python: :class:`GpuCollector` is a custom
collector (one ``collect`` method) over a snapshot function; :func:`render` is the exposition
text as a pure function of a snapshot; :func:`serve` starts prometheus_client's HTTP server on
``127.0.0.1`` by default. To let a Prometheus on another machine scrape it, bind all
interfaces with ``serve(port, collector, addr="0.0.0.0")`` (``"::"`` for IPv6) and restrict
access with a firewall; the endpoint has no authentication.

Native names (labels ``host``, ``uuid``, ``index``, ``model``, ``simulated``; base units;
a metric the GPU does not report is absent for that GPU, never 0):

===============================================  =======  ==================================
name                                             type     from / unit
===============================================  =======  ==================================
gpulens_gpu_<name> for every gauge of METRICS    gauge    same name and unit, except:
gpulens_gpu_{sm,memory,graphics}_clock_hertz     gauge    ``*_clock_mhz`` x 1e6 (base unit)
gpulens_gpu_energy_joules_total                  counter  ``energy_joules``
gpulens_gpu_ecc_{un,}corrected_volatile_total    counter  ``ecc_*_volatile_count``
gpulens_gpu_retired_pages_total                  counter  ``retired_pages_count``
gpulens_gpu_remapped_rows_{un,}correctable_total counter  ``remapped_rows_*_count``
gpulens_gpu_retired_pages_pending                gauge    ``retired_pages_pending_count``
gpulens_gpu_remapped_rows_pending                gauge    ``remapped_rows_pending_count``
gpulens_gpu_clock_event_reasons                  gauge    the raw NVML bitmask
gpulens_gpu_clock_event_reason{reason=...}       gauge    0/1 per known bit (monitor.core.throttle)
gpulens_gpu_xid_errors_total                     counter  XID events seen since start
gpulens_gpu_xid_last_code                        gauge    last XID code, 0 = none
gpulens_gpu_info{pci_bus_id,driver_version,...}  gauge    1 per GPU, also before its 1st sample
gpulens_collector_info{host,simulated}           gauge    1
gpulens_collector_records_total{state=...}       counter  collected, written, dropped, spooled
gpulens_collector_pending_records                gauge    records waiting to be written
gpulens_collector_poll_errors_total              counter  absorbed poll errors
gpulens_collector_stale_since_seconds            gauge    unix time; only while stale
===============================================  =======  ==================================

Not exported: ``energy_used_joules`` (the energy of one collector tick; a scrape samples ticks
at random, so use ``increase(gpulens_gpu_energy_joules_total[5m])``). Catalogue counters named
``*_count`` become ``*_total`` (promtool reserves ``_count`` for histograms and summaries);
``*_pending_count`` are levels (work waiting for a reset), so they are gauges.

``dcgm_names=True`` (``--dcgm-names``) also exports dcgm-exporter's names, units and labels
(:data:`DCGM_SERIES`), for NVIDIA's stock Grafana dashboard; the table and its reasoning are in
:mod:`monitor.collector.exporter_dcgm`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.samples import Sample

from monitor.collector.exporter_dcgm import (
    DCGM_TABLE,
    DCGM_XID_HELP,
    DCGM_XID_NAME,
    dcgm_help,
    dcgm_labels,
)
from monitor.core.errors import ConfigError
from monitor.core.gpu_records import GpuInfo, GpuSample
from monitor.core.metrics import METRICS, MetricSpec
from monitor.core.throttle import CLOCK_EVENT_REASONS

SeriesType = Literal["gauge", "counter", "untyped"]
_FAMILY: dict[str, Callable[[str, str], Metric]] = {
    "gauge": GaugeMetricFamily,
    "counter": CounterMetricFamily,
    "untyped": UnknownMetricFamily,
}

# Catalogue metrics deliberately not exported, with the reason (a test checks that every
# metric of METRICS is either exported or listed here).
SKIPPED: dict[str, str] = {
    "energy_used_joules": "per-tick delta; use increase() on gpulens_gpu_energy_joules_total",
}


@dataclass(frozen=True, slots=True)
class ExporterSnapshot:
    """What the exporter shows: the collector's latest state, read once per scrape."""

    gpus: tuple[tuple[GpuInfo, GpuSample | None], ...]  # latest sample (None before the first)
    xid_last: Mapping[str, int]  # uuid -> last XID code seen (0 = none)
    xid_total: Mapping[str, int]  # uuid -> XID events seen since start
    counters: Mapping[str, int]  # collected, written, dropped, spooled, pending, poll_errors
    stale_since: float | None  # unix time since when collection is stale, else None
    host: str
    is_simulated: bool


@dataclass(frozen=True, slots=True)
class Series:
    """One exported per-GPU family: ``value = sample.<attr> * scale``."""

    attr: str
    name: str  # the family name given to prometheus_client (no ``_total``)
    help: str
    type: SeriesType
    scale: float = 1.0

    @property
    def sample_name(self) -> str:
        """The name the samples carry in the exposition."""
        return f"{self.name}_total" if self.type == "counter" else self.name


def _native_series(spec: MetricSpec) -> tuple[Series, ...]:
    name = f"gpulens_gpu_{spec.name}"
    if spec.kind == "gauge":
        if spec.name.endswith("_mhz"):
            hertz = name.removesuffix("_mhz") + "_hertz"
            return (Series(spec.name, hertz, f"{spec.help} (hertz)", "gauge", 1e6),)
        return (Series(spec.name, name, spec.help, "gauge"),)
    if spec.kind == "counter":
        base = name.removesuffix("_count")
        if spec.name.endswith("_pending_count"):
            return (Series(spec.name, base, spec.help, "gauge"),)
        return (Series(spec.name, base, spec.help, "counter"),)
    if spec.kind == "bitmask":
        return (Series(spec.name, name, spec.help, "gauge"),)
    if spec.name in SKIPPED:
        return ()
    raise ValueError(f"exporter: decide how to export {spec.name!r} (kind {spec.kind!r})")


NATIVE_SERIES: tuple[Series, ...] = tuple(s for spec in METRICS for s in _native_series(spec))

DCGM_SERIES: tuple[Series, ...] = tuple(
    Series(attr, name, dcgm_help(attr, name, unit), typ, scale)
    for attr, name, typ, scale, unit in DCGM_TABLE
)


@dataclass(frozen=True, slots=True)
class _GpuLabels:
    """The label dicts of one GPU, built once and shared by every scrape (never mutated)."""

    native: dict[str, str]
    dcgm: dict[str, str]
    info: dict[str, str]
    reasons: tuple[dict[str, str], ...]  # ``native`` plus ``reason``, per CLOCK_EVENT_REASONS


def _gpu_labels(info: GpuInfo) -> _GpuLabels:
    native = {
        "host": info.host,
        "uuid": info.uuid,
        "index": str(info.index),
        "model": info.name,
        "simulated": "true" if info.is_simulated else "false",
    }
    extra = {
        "pci_bus_id": info.pci_bus_id,
        "driver_version": info.driver_version,
        "compute_capability": info.compute_capability,
        "parent_uuid": info.parent_uuid,
    }
    full = native | {k: v for k, v in extra.items() if v is not None}
    reasons = tuple(native | {"reason": r.name} for r in CLOCK_EVENT_REASONS)
    return _GpuLabels(native, dcgm_labels(info), full, reasons)


_Row = tuple[_GpuLabels, GpuSample | None]


class GpuCollector:
    """prometheus_client custom collector over ``snapshot``, called once per scrape."""

    _CACHE_LIMIT = 1024  # label sets kept; far above any host's GPU count

    def __init__(
        self, snapshot: Callable[[], ExporterSnapshot], *, dcgm_names: bool = False
    ) -> None:
        self._snapshot = snapshot
        self._dcgm_names = dcgm_names
        self._labels: dict[tuple[object, ...], _GpuLabels] = {}

    def describe(self) -> Iterable[Metric]:
        # Nothing: so that registering (the global registry auto-describes) never calls the
        # snapshot function before the collector is ready.
        return ()

    def collect(self) -> Iterator[Metric]:
        """The metric families of the current snapshot."""
        snap = self._snapshot()
        rows = [(self._labels_of(info), sample) for info, sample in snap.gpus]
        yield from _per_gpu(NATIVE_SERIES, rows, dcgm=False)
        yield from _reasons(rows)
        yield from _gpu_health(snap, rows)
        yield from _collector_health(snap)
        if self._dcgm_names:
            yield from _per_gpu(DCGM_SERIES, rows, dcgm=True)
            yield _per_uuid(
                GaugeMetricFamily(DCGM_XID_NAME, DCGM_XID_HELP),
                DCGM_XID_NAME,
                snap.gpus,
                rows,
                snap.xid_last,
                dcgm=True,
            )

    def _labels_of(self, info: GpuInfo) -> _GpuLabels:
        key = (
            info.uuid,
            info.host,
            info.index,
            info.name,
            info.is_simulated,
            info.pci_bus_id,
            info.driver_version,
            info.compute_capability,
            info.parent_uuid,
        )
        labels = self._labels.get(key)
        if labels is None:
            if len(self._labels) >= self._CACHE_LIMIT:
                self._labels.clear()
            labels = self._labels[key] = _gpu_labels(info)
        return labels


def _per_gpu(series: tuple[Series, ...], rows: list[_Row], *, dcgm: bool) -> Iterator[Metric]:
    for s in series:
        family = _FAMILY[s.type](s.name, s.help)
        out = family.samples
        name, attr, scale = s.sample_name, s.attr, s.scale
        for labels, sample in rows:
            if sample is None:
                continue
            value = getattr(sample, attr)
            if value is not None:
                out.append(Sample(name, labels.dcgm if dcgm else labels.native, value * scale))
        if out:
            yield family


def _reasons(rows: list[_Row]) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "gpulens_gpu_clock_event_reason", "1 while NVML reports this clock event reason, else 0"
    )
    for labels, sample in rows:
        mask = None if sample is None else sample.clock_event_reasons
        if mask is None:
            continue
        for reason, reason_labels in zip(CLOCK_EVENT_REASONS, labels.reasons, strict=True):
            family.samples.append(
                Sample(family.name, reason_labels, 1.0 if mask & reason.bit else 0.0)
            )
    if family.samples:
        yield family


def _per_uuid(
    family: Metric,
    sample_name: str,
    gpus: tuple[tuple[GpuInfo, GpuSample | None], ...],
    rows: list[_Row],
    values: Mapping[str, int],
    *,
    dcgm: bool = False,
) -> Metric:
    for (info, _), (labels, _) in zip(gpus, rows, strict=True):
        family.samples.append(
            Sample(sample_name, labels.dcgm if dcgm else labels.native, values.get(info.uuid, 0))
        )
    return family


def _gpu_health(snap: ExporterSnapshot, rows: list[_Row]) -> Iterator[Metric]:
    info = GaugeMetricFamily("gpulens_gpu_info", "Static facts of a GPU (value 1)")
    info.samples.extend(Sample("gpulens_gpu_info", labels.info, 1.0) for labels, _ in rows)
    yield info
    yield _per_uuid(
        CounterMetricFamily("gpulens_gpu_xid_errors", "XID error events seen since start"),
        "gpulens_gpu_xid_errors_total",
        snap.gpus,
        rows,
        snap.xid_total,
    )
    yield _per_uuid(
        GaugeMetricFamily("gpulens_gpu_xid_last_code", "Code of the last XID error, 0 if none"),
        "gpulens_gpu_xid_last_code",
        snap.gpus,
        rows,
        snap.xid_last,
    )


_RECORD_STATES = ("collected", "written", "dropped", "spooled")


def _collector_health(snap: ExporterSnapshot) -> Iterator[Metric]:
    host = {"host": snap.host}
    simulated = "true" if snap.is_simulated else "false"
    yield InfoMetricFamily(
        "gpulens_collector", "The collector", value={"host": snap.host, "simulated": simulated}
    )
    counters = snap.counters
    records = CounterMetricFamily(
        "gpulens_collector_records", "Records by what happened to them, since start"
    )
    for state in _RECORD_STATES:
        if state in counters:
            records.samples.append(
                Sample(records.name + "_total", host | {"state": state}, counters[state])
            )
    if records.samples:
        yield records
    if "pending" in counters:
        pending = GaugeMetricFamily(
            "gpulens_collector_pending_records", "Records waiting to be written to the store"
        )
        pending.samples.append(Sample(pending.name, host, counters["pending"]))
        yield pending
    if "poll_errors" in counters:
        errors = CounterMetricFamily(
            "gpulens_collector_poll_errors", "Poll errors absorbed (the value became None)"
        )
        errors.samples.append(Sample(errors.name + "_total", host, counters["poll_errors"]))
        yield errors
    if snap.stale_since is not None:
        stale = GaugeMetricFamily(
            "gpulens_collector_stale_since_seconds",
            "Unix time since when collection is stale (a hung NVML call); GPU values are the"
            " last ones collected. Absent while collection is healthy",
        )
        stale.samples.append(Sample(stale.name, host, snap.stale_since))
        yield stale


def render(snapshot_fn: Callable[[], ExporterSnapshot], *, dcgm_names: bool = False) -> bytes:
    """The Prometheus text exposition of one snapshot (a fresh registry; no I/O)."""
    registry = CollectorRegistry()
    registry.register(GpuCollector(snapshot_fn, dcgm_names=dcgm_names))
    return generate_latest(registry)


class ExporterServer:
    """A running ``/metrics`` endpoint; :meth:`shutdown` stops it and unregisters."""

    def __init__(
        self,
        server: WSGIServer,
        thread: threading.Thread,
        registry: CollectorRegistry,
        collector: GpuCollector,
    ) -> None:
        self._server = server
        self._thread = thread
        self._registry = registry
        self._collector = collector

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the port is the real one after ``serve(0, ...)``)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        """The bound port."""
        return self.address[1]

    def shutdown(self) -> None:
        """Stop serving, close the socket and unregister the collector."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._registry.unregister(self._collector)


def serve(
    port: int,
    collector: GpuCollector,
    *,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
) -> ExporterServer:
    """Register ``collector`` and serve ``/metrics`` on ``addr:port`` from a daemon thread.

    ``registry`` defaults to prometheus_client's global one (which also carries the process
    and platform collectors); tests pass a fresh :class:`CollectorRegistry`. ``port=0`` picks a
    free port (see :attr:`ExporterServer.port`). Loopback only unless ``addr`` says otherwise.
    A port that cannot be bound (in use, privileged) raises :class:`ConfigError`.
    """
    registry = REGISTRY if registry is None else registry
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:  # in use, not an address of this host, a privileged port
        registry.unregister(collector)
        raise ConfigError(
            f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}; "
            "choose another port with --metrics-port (or address with --metrics-addr)"
        ) from None
    except BaseException:
        registry.unregister(collector)
        raise
    return ExporterServer(server, thread, registry, collector)


__all__ = [
    "DCGM_SERIES",
    "NATIVE_SERIES",
    "SKIPPED",
    "ExporterServer",
    "ExporterSnapshot",
    "GpuCollector",
    "Series",
    "render",
    "serve",
]
