"""The trace analyzer: Kineto traces → step breakdowns, HTA temporal breakdown, kernel tables.

The pure core (``events``, ``intervals``, ``columns``, ``breakdown``, ``gpu``, ``tables``,
``ranks``, ``model``) does no I/O; :func:`analyze_path` reads files with the streaming reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from profiler_hooks.analysis.model import CATEGORIES, TraceAnalysis, to_json

if TYPE_CHECKING:
    from profiler_hooks.analysis.files import analyze_file, analyze_path

__all__ = ["CATEGORIES", "TraceAnalysis", "analyze_file", "analyze_path", "to_json"]


def __getattr__(name: str) -> Any:
    if name in ("analyze_path", "analyze_file"):
        from profiler_hooks.analysis import files

        return getattr(files, name)
    raise AttributeError(name)
