"""The dashboard in a real headless Chromium (dash[testing]'s ``dash_duo``) on a seeded SQLite
store: every page shows the seeded numbers with their units, the nav links navigate, the fleet
follows the live tick, hostile names stay text, auth guards Dash's own endpoints, and the
browser logs no error.

``GPULENS_SCREENSHOTS=1`` also saves each page to ``bench/results/screenshots/<page>.png``
(1400x1000); CI leaves the committed pictures alone. Chromium's options are in conftest's
``pytest_setup_options``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing, services_required

try:  # dash[testing]: dash's pytest plugin brings dash_duo, selenium drives Chromium
    import requests
    from dash.testing.composite import DashComposite
    from dash.testing.wait import until
    from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError as exc:  # pragma: no cover - only without the dev extras
    if services_required():
        raise
    pytest.skip(f"dash[testing] is not installed: {exc}", allow_module_level=True)

from dashboard import ids
from dashboard.app import create_app
from dashboard.auth import AuthConfig
from dashboard.figures import MAX_POINTS
from dashboard.format import bytes_text, celsius_text, duration_us_text, percent_text, watts_text
from dashboard.pages.gpu import SHOWN_METRICS
from dashboard.routes import RANGES
from monitor.core.resolution import RetentionPolicy, plan_series
from monitor.store import Store
from tests.dashboard_seed import HOSTILE_PROCESS_NAME, HOSTILE_RUN_NAME, SeedInfo, seed_store

pytestmark = [
    pytest.mark.browser,
    # The Run and Compare pages' tables are DataTables on purpose; Dash 4.4 warns at each one
    # that it will leave the built-in components.
    pytest.mark.filterwarnings(
        "ignore:\\s*The dash_table.DataTable will be removed:DeprecationWarning:"
        "dash.development.base_component"
    ),
]

NOW = datetime(2026, 11, 22, 14, 0, tzinfo=timezone.utc)
WINDOW = (1400, 1000)
SCREENSHOTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "screenshots"
TOKEN = "s3cret"


@pytest.fixture(autouse=True)
def chromium() -> None:
    """Chromium and its driver (Debian: chromium, chromium-driver), or a skip/failure."""
    for tool, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(tool) is None:
            missing(f"{tool} not found on PATH (Debian package: {package})")


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Store, SeedInfo]]:
    store = Store.open(f"sqlite:///{tmp_path / 'gpulens.db'}")
    info = seed_store(store, now=NOW, trace_dir=tmp_path)
    yield store, info
    store.close()


@pytest.fixture
def duo(dash_duo: DashComposite, seeded: tuple[Store, SeedInfo]) -> DashComposite:
    """The browser on a started dashboard of the seeded store, at the fleet page."""
    store, info = seeded
    size_viewport(dash_duo, *WINDOW)
    dash_duo.start_server(create_app(store, now=lambda: info.now, live_interval_ms=1000))
    return dash_duo


# --- helpers --------------------------------------------------------------------------------


def size_viewport(duo: DashComposite, width: int, height: int) -> None:
    """A ``width`` x ``height`` page area (the window is that plus the browser's own bars)."""
    duo.driver.set_window_size(width, height)
    inner = duo.driver.execute_script("return [window.innerWidth, window.innerHeight]")
    duo.driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def count(duo: DashComposite, selector: str) -> int:
    """Elements matching ``selector`` now (find_elements waits 2 s when there is none)."""
    found: int = duo.driver.execute_script(
        "return document.querySelectorAll(arguments[0]).length", selector
    )
    return found


def points(duo: DashComposite, selector: str) -> list[int]:
    """How many x values the traces of each Plotly graph matching ``selector`` hold."""
    found: list[int] = duo.driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(g => (g.data || [])"
        ".reduce((n, t) => n + (t.x ? t.x.length : 0), 0))",
        selector,
    )
    return found


def visit(duo: DashComposite, path: str) -> None:
    duo.wait_for_page(url=duo.server_url + path)


def card_selector(uuid: str) -> str:
    return f'#{ids.FLEET_CARDS} .gl-card:has(a[href="/gpu/{uuid}"])'


def text_of(duo: DashComposite, selector: str) -> str:
    """The element's text read in one step: the live fleet replaces its cards every tick, so
    an element found a moment ago may be gone when asked for its text."""
    duo.wait_for_element(selector)
    text: str = duo.driver.execute_script(
        "return document.querySelector(arguments[0]).innerText", selector
    )
    return text


def click(duo: DashComposite, selector: str) -> None:
    """Click, again if a live refresh replaced the element between finding and clicking."""

    def attempt() -> bool:
        try:
            duo.find_element(selector).click()
        except StaleElementReferenceException:
            return False
        return True

    wait_until(attempt, f"a click on {selector}")


def texts(duo: DashComposite, selector: str) -> list[str]:
    return [element.text for element in duo.find_elements(selector)]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    return until(condition, timeout=timeout, poll=0.1, msg=what)


def screenshot(duo: DashComposite, page: str) -> None:
    """Save the page when GPULENS_SCREENSHOTS=1 (plots drawn, nothing loading)."""
    if os.environ.get("GPULENS_SCREENSHOTS") != "1":
        return
    wait_until(lambda: count(duo, "._dash-loading, .dash-spinner") == 0, "nothing loading")
    duo.driver.execute_script("window.scrollTo(0, 0)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert duo.driver.save_screenshot(str(SCREENSHOTS / f"{page}.png"))


def assert_no_injection(duo: DashComposite) -> None:
    """The hostile names ran nothing: no alert, no element they could have made."""
    with pytest.raises(NoAlertPresentException):
        _ = duo.driver.switch_to.alert.text
    assert count(duo, "img[src='x'], [onerror]") == 0
    assert not duo.driver.execute_script(
        "return [...document.scripts].some(s => s.textContent.includes('alert(1)'))"
    )


def assert_clean_console(duo: DashComposite) -> None:
    assert duo.get_logs() == []


# --- pages ----------------------------------------------------------------------------------


def test_fleet_cards_show_each_gpus_latest_numbers_with_units(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    duo.wait_for_contains_text(f"#{ids.FLEET_TOTALS}", "GPUs")
    wait_until(lambda: count(duo, f"#{ids.FLEET_CARDS} .gl-card") == 4, "4 cards")
    for uuid in info.gpu_uuids:
        sample = info.latest[uuid]
        text = text_of(duo, card_selector(uuid))
        assert f"{info.gpu_hosts[uuid]} · GPU {info.gpu_indices[uuid]}" in text
        assert "NVIDIA H100 80GB HBM3" in text
        utilization = percent_text(sample.utilization_gpu_percent)
        memory = f"{bytes_text(sample.memory_used_bytes)} / {bytes_text(sample.memory_total_bytes)}"
        power, temperature = (
            watts_text(sample.power_watts),
            celsius_text(sample.temperature_celsius),
        )
        assert (utilization, memory, power, temperature) == (
            f"{sample.utilization_gpu_percent:.0f} %",
            f"{bytes_text(sample.memory_used_bytes)} / 79.6 GiB",
            f"{sample.power_watts:.0f} W",
            f"{sample.temperature_celsius:.0f} °C",
        )  # every figure with its unit
        for shown in (utilization, memory, power, temperature):
            assert shown in text
        assert "stale" not in text and "simulated" not in text
    first = text_of(duo, card_selector(info.gpu_uuids[0]))
    assert HOSTILE_PROCESS_NAME in first and "python (60.0 GiB)" in first
    assert text_of(duo, f"#{ids.FLEET_TOTALS} .gl-total strong") == "4"
    assert "GPUs" in text_of(duo, f"#{ids.FLEET_TOTALS} .gl-total")
    assert_no_injection(duo)
    screenshot(duo, "fleet")
    assert_clean_console(duo)


def test_the_fleet_follows_the_live_tick(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    store, info = seeded
    uuid = info.gpu_uuids[0]
    before = info.latest[uuid]
    utilization, memory = f"{card_selector(uuid)} dd", f"{card_selector(uuid)} dd:nth-of-type(2)"
    duo.wait_for_text_to_equal(utilization, percent_text(before.utilization_gpu_percent))
    new_percent = 13.0 if before.utilization_gpu_percent != 13.0 else 14.0
    newer = dataclasses.replace(
        before,
        ts=info.now - timedelta(seconds=1),
        utilization_gpu_percent=new_percent,
        memory_used_bytes=20 * 2**30,
    )
    store.write([newer])
    # The next tick (1 s) redraws the card with the new sample.
    duo.wait_for_text_to_equal(utilization, percent_text(new_percent), timeout=10)
    duo.wait_for_contains_text(memory, f"{bytes_text(20 * 2**30)} / ")
    assert_clean_console(duo)


def test_the_nav_links_and_page_links_navigate(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    duo.wait_for_element(card_selector(info.gpu_uuids[0]))
    for label, path, landmark in (
        ("Runs", "/runs", f"#{ids.RUNS_TABLE} table"),
        ("Compare", "/compare", f"#{ids.COMPARE_A}"),
        ("Advice", "/advice", "#page table"),
        ("Fleet", "/", f"#{ids.FLEET_CARDS} .gl-card"),
    ):
        duo.find_element(f"#{ids.NAV}").find_element(By.LINK_TEXT, label).click()
        duo.wait_for_element(landmark)
        assert duo.driver.current_url == duo.server_url + path
    # From a fleet card to its GPU, from the runs table to a run.
    click(duo, f'{card_selector(info.gpu_uuids[1])} a[href^="/gpu/"]')
    duo.wait_for_element(f"#{ids.GPU_GRAPHS} .js-plotly-plot")
    assert duo.driver.current_url.endswith(f"/gpu/{info.gpu_uuids[1]}")
    duo.find_element(f"#{ids.NAV}").find_element(By.LINK_TEXT, "Runs").click()
    run = info.runs[1]
    duo.wait_for_element(f'#{ids.RUNS_TABLE} a[href="/run/{run.run_id}"]').click()
    duo.wait_for_text_to_equal("#page h1", run.name)
    assert duo.driver.current_url.endswith(f"/run/{run.run_id}")
    duo.driver.back()
    duo.wait_for_element(f"#{ids.RUNS_TABLE} table")
    assert_clean_console(duo)


def test_the_runs_table_lists_every_run_with_its_steps_and_filters(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    visit(duo, "/runs")
    wait_until(lambda: count(duo, f"#{ids.RUNS_TABLE} tbody tr") == 3, "3 rows")
    rows = {row.find_element(By.TAG_NAME, "a").text: row.text for row in
            duo.find_elements(f"#{ids.RUNS_TABLE} tbody tr")}  # fmt: skip
    assert set(rows) == {run.name for run in info.runs}
    for run in info.runs:
        assert f"{run.steps:,}" in rows[run.name]
        assert duration_us_text(run.mean_step_us) in rows[run.name]
        assert run.status in rows[run.name] and run.host in rows[run.name]
    analyzed = info.run(info.analyzed_run_id or "")
    assert analyzed.finding_titles[0] in rows[analyzed.name]  # the top finding
    assert_no_injection(duo)
    screenshot(duo, "runs")

    name_filter = duo.find_element(f"#{ids.RUNS_NAME}")
    name_filter.send_keys("workers8", Keys.ENTER)
    duo.wait_for_text_to_equal(f"#{ids.RUNS_TABLE} tbody a", info.runs[1].name)
    assert count(duo, f"#{ids.RUNS_TABLE} tbody tr") == 1
    duo.clear_input(name_filter)
    name_filter.send_keys(Keys.ENTER)
    wait_until(lambda: count(duo, f"#{ids.RUNS_TABLE} tbody tr") == 3, "3 rows")
    duo.select_dcc_dropdown(f"#{ids.RUNS_STATUS}", value="running")
    duo.wait_for_text_to_equal(f"#{ids.RUNS_TABLE} tbody a", HOSTILE_RUN_NAME)
    assert_no_injection(duo)
    assert_clean_console(duo)


def test_the_run_page_header_shows_steps_and_mean_step_time(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    run = info.run(info.analyzed_run_id or "")
    visit(duo, f"/run/{run.run_id}")
    duo.wait_for_text_to_equal("#page h1", run.name)
    header = duo.find_element(f"#{ids.RUN_HEADER}").text
    assert f"steps\n{run.steps:,}" in header
    assert f"mean step\n{duration_us_text(run.mean_step_us)}" in header
    assert f"host\n{run.host}" in header and "status\nfinished" in header
    assert "profiler windows\n1" in header
    for graph in (ids.RUN_STEP_TIME, ids.RUN_BREAKDOWN, ids.RUN_TELEMETRY, ids.RUN_MEMORY):
        duo.wait_for_element(f"#{graph} .main-svg")
    duo.wait_for_contains_text(f"#{ids.RUN_FINDINGS}", run.finding_titles[0])
    duo.wait_for_element(f"#{ids.RUN_KERNELS} td")
    screenshot(duo, "run")
    assert_clean_console(duo)


def test_hostile_names_show_as_text_on_every_page(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    duo.wait_for_contains_text(card_selector(info.hostile_process_uuid), HOSTILE_PROCESS_NAME)
    assert_no_injection(duo)
    visit(duo, f"/gpu/{info.hostile_process_uuid}")
    duo.wait_for_contains_text(f"#{ids.GPU_PROCESSES}", HOSTILE_PROCESS_NAME)
    assert_no_injection(duo)
    hostile = next(run for run in info.runs if run.name == HOSTILE_RUN_NAME)
    visit(duo, "/runs")
    duo.wait_for_text_to_equal(f'#{ids.RUNS_TABLE} a[href="/run/{hostile.run_id}"]',
                               HOSTILE_RUN_NAME)  # fmt: skip
    assert_no_injection(duo)
    visit(duo, f"/run/{hostile.run_id}")
    duo.wait_for_text_to_equal("#page h1", HOSTILE_RUN_NAME)
    assert "status\nrunning" in duo.find_element(f"#{ids.RUN_HEADER}").text
    assert_no_injection(duo)
    assert duo.driver.title == "gpulens"
    assert_clean_console(duo)


def test_the_gpu_page_draws_every_metric_and_the_range_changes_the_resolution(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    uuid = info.throttled_uuid
    visit(duo, f"/gpu/{uuid}")
    graphs = f"#{ids.GPU_GRAPHS} .js-plotly-plot"
    wait_until(lambda: count(duo, graphs) == len(SHOWN_METRICS), "a graph a metric")
    titles = " ".join(texts(duo, f"#{ids.GPU_GRAPHS} .gtitle"))
    assert "GPU utilization" in titles and "Power" in titles
    duo.wait_for_contains_text("#page h1", f"{info.gpu_hosts[uuid]} · GPU 1")
    screenshot(duo, "gpu")

    seen = set()
    for name in ("24h", "7d", "15m"):
        duo.find_element(f"#{ids.GPU_RANGE} input[value='{name}']").click()
        plan = plan_series(NOW - timedelta(seconds=RANGES[name]), NOW, NOW, RetentionPolicy(),
                           MAX_POINTS)  # fmt: skip
        expected = f"{plan.source} ({plan.bucket_seconds} s buckets)"
        duo.wait_for_contains_text(f"#{ids.GPU_RESOLUTION}", expected)
        seen.add(duo.find_element(f"#{ids.GPU_RESOLUTION}").text)
        assert count(duo, graphs) == len(SHOWN_METRICS)
        # Every graph has points at every range (7 d reads the seed's 1-minute rollups).
        wait_until(lambda: min(points(duo, graphs)) > 0, f"points in every graph at {name}")
    assert len(seen) == 3  # each range its own resolution
    assert_clean_console(duo)


def test_the_compare_page_compares_the_runs_the_url_names(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    a, b = info.runs[0], info.runs[1]
    visit(duo, f"/compare?a={a.run_id}&b={b.run_id}")
    duo.wait_for_contains_text(f"#{ids.COMPARE_RESULT} h2", "B is")
    headline = duo.find_element(f"#{ids.COMPARE_RESULT} h2").text
    assert "faster" in headline  # B waits far less for its DataLoader
    stats = duo.find_element(f"#{ids.COMPARE_STATS}").text
    assert a.name in stats and b.name in stats
    duo.wait_for_element(f"#{ids.COMPARE_DISTRIBUTION} .main-svg")
    screenshot(duo, "compare")
    assert_clean_console(duo)


def test_the_advice_page_lists_the_stored_findings(
    duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    _, info = seeded
    run = info.run(info.analyzed_run_id or "")
    visit(duo, "/advice")
    duo.wait_for_contains_text("#advice-table", run.finding_titles[0])
    rows = texts(duo, "#advice-table tbody tr")
    assert len(rows) == sum(len(r.finding_titles) for r in info.runs)
    top = next(row for row in rows if run.finding_titles[0] in row)
    assert "critical" in top and run.name in top
    duo.find_element(f'#advice-table tbody a[href="/run/{run.run_id}"]')
    duo.wait_for_contains_text("#page", "Evidence and advice")
    screenshot(duo, "advice")
    assert_clean_console(duo)


# --- auth -----------------------------------------------------------------------------------


def test_with_a_token_every_endpoint_needs_it(
    dash_duo: DashComposite, seeded: tuple[Store, SeedInfo]
) -> None:
    store, info = seeded
    app = create_app(store, auth=AuthConfig(None, None, TOKEN), now=lambda: info.now)
    dash_duo.start_server(app, navigate=False)
    url = dash_duo.server.url
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/runs"):
        assert requests.get(url + path, timeout=10).status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(url + "/_dash-layout", headers=bearer, timeout=10).status_code == 200
    wrong = {"Authorization": "Bearer s3cre"}
    assert requests.get(url + "/_dash-layout", headers=wrong, timeout=10).status_code == 401
    # A browser given the token once keeps it in a cookie and drops it from the address bar.
    dash_duo.wait_for_page(url=url + f"/runs?token={TOKEN}")
    dash_duo.wait_for_element(f"#{ids.RUNS_TABLE} table")
    assert TOKEN not in dash_duo.driver.current_url
    assert_clean_console(dash_duo)
