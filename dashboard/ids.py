"""Every component id of the dashboard, in one place (pages and tests import them from here)."""

from __future__ import annotations

# The shell (every page)
URL = "url"
PAGE = "page"
BANNER = "db-banner"
NAV = "nav"
TICK = "live-tick"  # dcc.Interval driving the live pages

# Fleet
FLEET_CARDS = "fleet-cards"
FLEET_TOTALS = "fleet-totals"
FLEET_SORT = "fleet-sort"
FLEET_FILTER = "fleet-filter"

# GPU
GPU_RANGE = "gpu-range"
GPU_GRAPHS = "gpu-graphs"
GPU_RUNS = "gpu-runs"
GPU_PROCESSES = "gpu-processes"
GPU_RESOLUTION = "gpu-resolution"
GPU_LIVE = "gpu-live"  # dcc.Store: since when the live tick fetched, mean trace per graph

# Runs
RUNS_TABLE = "runs-table"
RUNS_NAME = "runs-filter-name"
RUNS_HOST = "runs-filter-host"
RUNS_STATUS = "runs-filter-status"

# Run
RUN_STEP_TIME = "run-step-time"
RUN_BREAKDOWN = "run-breakdown"
RUN_BREAKDOWN_TOTAL = "run-breakdown-total"
RUN_TELEMETRY = "run-telemetry"
RUN_MEMORY = "run-memory"
RUN_KERNELS = "run-kernels"
RUN_COPIES = "run-copies"
RUN_FINDINGS = "run-findings"
RUN_DOWNLOADS = "run-downloads"

# Compare
COMPARE_A = "compare-a"
COMPARE_B = "compare-b"
COMPARE_RESULT = "compare-result"
COMPARE_DISTRIBUTION = "compare-distribution"
COMPARE_BREAKDOWN = "compare-breakdown"

# Advice
ADVICE_TABLE = "advice-table"

# Run (more)
RUN_HEADER = "run-header"
RUN_SYNCS = "run-syncs"

# Compare (more)
COMPARE_STATS = "compare-stats"
COMPARE_KERNELS = "compare-kernels"
COMPARE_FINDINGS = "compare-findings"
