"""``create_app(store)``: the gpulens web dashboard (Dash), wired to one store.

The shell (navigation, the database banner, the URL and the live tick) is here; each page is
one module of :mod:`dashboard.pages` with its layout and callbacks. Routing is by
:mod:`dashboard.routes` (validated parameters); the store's query functions are the only way
pages reach data. Debug mode is never on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import dash
from dash import Input, Output, dcc, html

from dashboard import ids
from dashboard.auth import AuthConfig, install_auth
from dashboard.context import PageContext, utc_now
from dashboard.downloads import register_downloads
from dashboard.pages import advice, compare, fleet, gpu, run, runs
from dashboard.routes import RouteError, parse
from monitor.core.errors import StoreError
from monitor.store import Store

PAGES: dict[str, ModuleType] = {
    "fleet": fleet,
    "gpu": gpu,
    "runs": runs,
    "run": run,
    "compare": compare,
    "advice": advice,
}
NAV = (("Fleet", "/"), ("Runs", "/runs"), ("Compare", "/compare"), ("Advice", "/advice"))


def create_app(
    store: Store,
    *,
    auth: AuthConfig | None = None,
    trace_roots: Sequence[Path] = (),
    now: Callable[[], datetime] = utc_now,
    live_interval_ms: int = 5_000,
) -> dash.Dash:
    """The dashboard for ``store``. ``auth``: required credentials (every route answers 401
    without them); ``trace_roots``: folders trace downloads may be served from."""
    ctx = PageContext(store, now, tuple(Path(p) for p in trace_roots), live_interval_ms)
    app = dash.Dash(
        __name__,
        title="gpulens",
        update_title="",
        suppress_callback_exceptions=True,
        assets_folder=str(Path(__file__).parent / "assets"),
    )
    app.layout = _shell(ctx)
    app.callback(
        Output(ids.PAGE, "children"), Input(ids.URL, "pathname"), Input(ids.URL, "search")
    )(lambda pathname, search: render(ctx, pathname, search))
    app.callback(Output(ids.BANNER, "children"), Output(ids.BANNER, "style"),
                 Input(ids.TICK, "n_intervals"))(lambda _n: banner(ctx))  # fmt: skip
    for module in PAGES.values():
        module.register(app, ctx)
    if auth is not None:
        install_auth(app.server, auth)
    register_downloads(app.server, store, ctx.trace_roots)
    return app


def _shell(ctx: PageContext) -> html.Div:
    return html.Div(
        className="gl-shell",
        children=[
            html.Nav(
                id=ids.NAV,
                className="gl-nav",
                children=[html.Span("gpulens", className="gl-brand")]
                + [dcc.Link(label, href=href, className="gl-nav-link") for label, href in NAV],
            ),
            html.Div(id=ids.BANNER, style={"display": "none"}),
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            dcc.Interval(id=ids.TICK, interval=ctx.live_interval_ms),
            html.Main(id=ids.PAGE, className="gl-page"),
        ],
    )


def render(ctx: PageContext, pathname: str | None, search: str | None) -> Any:
    """The page for a URL: its layout, or a message that says what went wrong."""
    try:
        route = parse(pathname, search)
    except RouteError as exc:
        return message("Not found", str(exc))
    try:
        return PAGES[route.page].layout(ctx, route.params)
    except StoreError as exc:
        return message(
            "The database is unreachable",
            f"{exc}. This page fills in when it answers again (reload it then).",
        )


def banner(ctx: PageContext) -> tuple[Any, dict[str, str]]:
    """A banner while the store does not answer; hidden once it does."""
    try:
        ctx.store.ping()
    except StoreError as exc:
        text = (
            f"The database {ctx.store.url} is unreachable: {exc}. The dashboard keeps "
            "running and recovers when it answers."
        )
        return text, {"display": "block"}
    return "", {"display": "none"}


def message(title: str, text: str) -> html.Div:
    return html.Div(className="gl-message", children=[html.H2(title), html.P(text)])


__all__ = ["PAGES", "create_app"]
