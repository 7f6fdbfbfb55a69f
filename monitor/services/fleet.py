"""Fleet advice (``gpulens advise --fleet``): GPUs that sit idle while holding memory.

Fleet findings belong to no run; they are saved per host, each save replacing that host's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.core.advisor.advice import AdvisorSettings
from monitor.core.advisor.findings import Finding
from monitor.core.advisor.fleet import idle_allocated
from monitor.services.runs import Clock, ranked, utc_now
from monitor.store import Store


@dataclass(frozen=True, slots=True)
class FleetAdvice:
    """The fleet's findings, most important first, and what they looked at."""

    findings: tuple[Finding, ...]
    gpus: int
    hosts: int


def advise_fleet(
    store: Store,
    settings: AdvisorSettings | None = None,
    *,
    save: bool = True,
    clock: Clock = utc_now,
) -> FleetAdvice:
    """Every GPU in the store over the last ``fleet.idle_minutes``: idle but holding memory?
    With ``save``, each host's findings replace its stored fleet findings."""
    settings = settings or AdvisorSettings()
    now = clock()
    since = now - timedelta(minutes=settings.thresholds.value("fleet.idle_minutes"))
    gpus = store.gpus()
    samples = {gpu.uuid: store.samples(gpu.uuid, since, now) for gpu in gpus}
    processes = {gpu.uuid: store.process_spans(gpu.uuid, since, now) for gpu in gpus}
    findings = idle_allocated(gpus, samples, processes, now, settings.thresholds)
    hosts = sorted({gpu.host for gpu in gpus})
    if save:
        for host in hosts:
            mine = [f for f in findings if f.scope.host == host]
            store.save_findings(None, mine, at=now, host=host)
    return FleetAdvice(ranked(findings), gpus=len(gpus), hosts=len(hosts))


__all__ = ["FleetAdvice", "advise_fleet"]
