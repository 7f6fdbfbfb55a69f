"""The trace analyzer: Kineto traces → step breakdowns, HTA temporal breakdown, kernel tables.

Pure: ``events``, ``intervals``, ``columns``, ``breakdown``, ``gpu``, ``tables``, ``ranks``,
``model`` and ``report`` do no I/O. Files are read by :mod:`monitor.traces`
(:func:`monitor.traces.analyze.analyze_path`).
"""

from __future__ import annotations

from monitor.core.analysis.results import CATEGORIES, TraceAnalysis, to_json

__all__ = ["CATEGORIES", "TraceAnalysis", "to_json"]
