"""The three rings: the pure core imports no adapter library, and the collector's start path
imports neither torch nor dash."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = [
    "monitor/metrics.py",
    "monitor/records.py",
    "monitor/source.py",
    "monitor/resolution.py",
    "monitor/throttle.py",
    "monitor/status_report.py",
    "monitor/clock.py",
    "monitor/errors.py",
    "profiler_hooks/records.py",
    "profiler_hooks/analysis/model.py",
    "profiler_hooks/analysis/events.py",
    "profiler_hooks/analysis/intervals.py",
    "profiler_hooks/analysis/columns.py",
    "profiler_hooks/analysis/breakdown.py",
    "profiler_hooks/analysis/gpu.py",
    "profiler_hooks/analysis/tables.py",
    "profiler_hooks/analysis/ranks.py",
    "profiler_hooks/analysis/report.py",
    "monitor/run_views.py",
    "monitor/advisor/model.py",
    "monitor/advisor/thresholds.py",
    "monitor/advisor/evidence.py",
    "monitor/advisor/steps.py",
    "monitor/advisor/measures.py",
    "monitor/advisor/engine.py",
    "monitor/advisor/compare.py",
    "monitor/advisor/compare_report.py",
    "monitor/advisor/report.py",
    "monitor/advisor/rules/__init__.py",
    "monitor/advisor/rules/base.py",
    "monitor/advisor/rules/catalog.py",
    "monitor/advisor/rules/copies.py",
    "monitor/advisor/rules/distributed.py",
    "monitor/advisor/rules/gpu.py",
    "monitor/advisor/rules/input_pipeline.py",
    "monitor/advisor/rules/memory.py",
    "monitor/advisor/rules/precision.py",
    "monitor/advisor/rules/step_health.py",
    "monitor/advisor/rules/sync.py",
    "monitor/advisor/rules/telemetry.py",
]
ADAPTER_LIBRARIES = {
    "pynvml",
    "sqlalchemy",
    "alembic",
    "prometheus_client",
    "apscheduler",
    "dash",
    "plotly",
    "torch",
    "psycopg",
    "sqlite3",
    "requests",
    "flask",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_no_adapter_library(module: str) -> None:
    imported = imported_modules(ROOT / module)
    roots = {name.split(".")[0] for name in imported}
    assert roots.isdisjoint(ADAPTER_LIBRARIES), roots & ADAPTER_LIBRARIES
    inner = {n for n in imported if n.split(".")[0] in ("monitor", "profiler_hooks", "dashboard")}
    allowed = {m.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for m in CORE} | {
        "profiler_hooks.analysis"
    }
    assert inner <= allowed, inner - allowed


def test_only_the_nvml_module_imports_pynvml() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for folder in ("monitor", "dashboard", "profiler_hooks", "migrations")
        for path in (ROOT / folder).rglob("*.py")
        if "pynvml" in {n.split(".")[0] for n in imported_modules(path)}
    }
    assert importers == {"monitor/nvml.py"}


def test_the_collector_start_path_imports_neither_torch_nor_dash() -> None:
    code = (
        "import sys\n"
        "import monitor.cli, monitor.commands.collect, monitor.commands.status\n"
        "import monitor.nvml, monitor.simulated, monitor.daemon, monitor.exporter\n"
        "heavy = sorted(m for m in ('torch', 'dash', 'plotly', 'pandas', 'numpy')"
        " if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == ""
