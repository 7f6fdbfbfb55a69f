"""Advice on a bare trace file or folder (``gpulens advise --trace``), without a store.

Each rank's analysis is evidence of its own (no step records, no telemetry), the ranks each
other's peers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from monitor.core.advisor.advice import AdvisorSettings, advise
from monitor.core.advisor.findings import Finding
from monitor.services.gather import evidence_from_trace
from monitor.services.runs import ranked
from monitor.traces.analyze import Progress, analyze_path


@dataclass(frozen=True, slots=True)
class TraceAdvice:
    """The findings on a trace, most important first; ``name``: the file or folder name."""

    findings: tuple[Finding, ...]
    name: str
    ranks: int


def advise_trace(
    path: str | Path,
    settings: AdvisorSettings | None = None,
    *,
    progress: Progress | None = None,
) -> TraceAdvice:
    """Analyze the trace at ``path`` and advise on every rank. Raises
    :class:`~monitor.core.errors.TraceError` for an unreadable trace."""
    analysis = analyze_path(path, progress=progress)
    found: dict[tuple[str, int | None, str], Finding] = {}
    for evidence in evidence_from_trace(analysis):
        for finding in advise(evidence, settings):
            # The straggler finding comes out of every rank's evidence; keep it once.
            found.setdefault((finding.rule, finding.scope.rank, finding.title), finding)
    name = os.path.basename(os.path.normpath(path))
    return TraceAdvice(ranked(list(found.values())), name=name, ranks=len(analysis.ranks))


__all__ = ["TraceAdvice", "advise_trace"]
