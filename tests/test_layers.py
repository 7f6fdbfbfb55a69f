"""The house's rules hold: import-linter's contracts (pyproject.toml) are kept, only the NVML
module imports pynvml, and the collector's start path imports neither torch nor dash."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

from tests.helpers import modules_imported_by

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_import_contracts_are_declared_and_kept() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    kinds = sorted(contract["type"] for contract in config["contracts"])
    assert kinds.count("layers") == 1 and kinds.count("forbidden") >= 4, kinds
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Contracts: {len(kinds)} kept, 0 broken." in result.stdout


def test_only_the_nvml_module_imports_pynvml() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for folder in ("monitor", "dashboard", "profiler_hooks", "migrations")
        for path in (ROOT / folder).rglob("*.py")
        if "pynvml" in {n.split(".")[0] for n in imported_modules(path)}
    }
    assert importers == {"monitor/collector/nvml.py"}


def test_the_collector_start_path_imports_neither_torch_nor_dash() -> None:
    code = (
        "import monitor.cli.main, monitor.cli.verbs.collect, monitor.cli.verbs.status\n"
        "import monitor.collector.nvml, monitor.collector.simulated\n"
        "import monitor.collector.daemon, monitor.collector.exporter\n"
    )
    assert modules_imported_by(code, ("torch", "dash", "plotly", "pandas", "numpy")) == []
