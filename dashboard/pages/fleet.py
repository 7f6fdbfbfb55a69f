"""Fleet: every GPU as a card (live), with totals, sorting and a filter."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.context import PageContext
from dashboard.controls import search_box
from dashboard.format import (
    bytes_text,
    celsius_text,
    energy_text,
    percent_text,
    watts_text,
)
from dashboard.routes import FLEET_SORTS
from monitor.core.errors import StoreError
from monitor.core.gpu_records import CollectorStatus, LatestGpu, ProcessSample
from monitor.core.throttle import decode_clock_event_reasons, is_slowdown

IDLE_PERCENT = 5.0  # under this utilization a GPU counts as idle
HELD_SHARE = 0.10  # idle while this share of memory is in use: idle but allocated
STALE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class GpuView:
    latest: LatestGpu
    health: tuple[str, ...]  # "ok", "stale", "lost", "throttling", "idle-allocated"
    processes: tuple[ProcessSample, ...]


def layout(ctx: PageContext, params: Mapping[str, str]) -> html.Div:
    cards, totals = render_fleet(ctx, params.get("sort", "host"), params.get("filter", ""))
    return html.Div(
        [
            html.H1("Fleet"),
            html.Div(totals, id=ids.FLEET_TOTALS, className="gl-totals"),
            html.Div(
                className="gl-controls",
                children=[
                    dcc.Dropdown(
                        id=ids.FLEET_SORT,
                        options=[
                            {"label": f"sort by {name}", "value": name} for name in FLEET_SORTS
                        ],
                        value=params.get("sort", "host"),
                        clearable=False,
                    ),
                    search_box(
                        ids.FLEET_FILTER, "filter: host, GPU, process", params.get("filter", "")
                    ),
                ],
            ),
            html.Div(cards, id=ids.FLEET_CARDS, className="gl-cards"),
        ]
    )


def register(app: dash.Dash, ctx: PageContext) -> None:
    app.callback(
        Output(ids.FLEET_CARDS, "children"),
        Output(ids.FLEET_TOTALS, "children"),
        Input(ids.TICK, "n_intervals"),
        Input(ids.FLEET_SORT, "value"),
        Input(ids.FLEET_FILTER, "value"),
        prevent_initial_call=True,  # the layout has just rendered the same cards
    )(lambda _n, sort, text: refresh(ctx, sort, text))


def refresh(ctx: PageContext, sort: str | None, text: str | None) -> tuple[Any, Any]:
    """The tick's update: new cards and totals (the last ones stay while the store is down)."""
    if sort not in FLEET_SORTS:
        sort = "host"
    try:
        return render_fleet(ctx, sort, (text or "")[:100])
    except StoreError:
        raise PreventUpdate from None


def render_fleet(ctx: PageContext, sort: str, text: str) -> tuple[list[Any], list[Any]]:
    now = ctx.now()
    views = fleet_views(ctx, now)
    shown = sort_views(filter_views(views, text), sort)
    cards: list[Any] = [card(view, now) for view in shown]
    if not views:
        cards = [html.P(
            "No GPUs yet. Start a collector on each GPU host: `gpulens collect` "
            "(or `gpulens up` for collector and dashboard together; `--simulate 4` without a "
            "GPU).", className="gl-empty")]  # fmt: skip
    elif not shown:
        cards = [html.P(f"No GPU matches {text!r}.", className="gl-empty")]
    return cards, totals(ctx, views, now)


def fleet_views(ctx: PageContext, now: datetime) -> list[GpuView]:
    store = ctx.store
    latest = store.latest()
    collectors = {c.host: c for c in store.collectors()}
    lost = lost_uuids(store.events(now - timedelta(days=1), now, kinds=["gpu_lost", "gpu_back"]))
    views = []
    for item in latest:
        sample = item.sample
        processes = tuple(store.processes_at(item.gpu.uuid, sample.ts)) if sample else ()
        health = gpu_health(item, collectors.get(item.gpu.host), item.gpu.uuid in lost, now)
        views.append(GpuView(item, health, processes))
    return views


def lost_uuids(events: Sequence[Any]) -> set[str]:
    """GPUs whose newest lost/back event says lost."""
    newest: dict[str, Any] = {}
    for event in sorted(events, key=lambda e: e.ts):
        if event.uuid:
            newest[event.uuid] = event
    return {uuid for uuid, event in newest.items() if event.kind == "gpu_lost"}


def gpu_health(
    item: LatestGpu, collector: CollectorStatus | None, is_lost: bool, now: datetime
) -> tuple[str, ...]:
    """Health badges of one GPU (pure)."""
    sample = item.sample
    found = []
    if is_lost:
        found.append("lost")
    interval = timedelta(seconds=collector.interval_seconds) if collector else timedelta(0)
    if sample is None or now - sample.ts > max(STALE_AFTER, 3 * interval):
        found.append("stale")
    if sample is not None:
        if sample.clock_event_reasons and is_slowdown(sample.clock_event_reasons):
            found.append("throttling")
        total = sample.memory_total_bytes or item.gpu.memory_total_bytes
        used = sample.memory_used_bytes
        util = sample.utilization_gpu_percent
        is_idle = util is not None and util < IDLE_PERCENT
        if is_idle and used and total and used > HELD_SHARE * total:
            found.append("idle-allocated")
    return tuple(found) or ("ok",)


def filter_views(views: Sequence[GpuView], text: str) -> list[GpuView]:
    needle = text.strip().lower()
    if not needle:
        return list(views)

    def haystack(view: GpuView) -> str:
        gpu = view.latest.gpu
        names = " ".join(p.name or "" for p in view.processes)
        return f"{gpu.host} {gpu.name} {gpu.uuid} {gpu.index} {names}".lower()

    return [view for view in views if needle in haystack(view)]


_HEALTH_ORDER = ("lost", "stale", "throttling", "idle-allocated", "ok")


def sort_views(views: Sequence[GpuView], sort: str) -> list[GpuView]:
    def value(view: GpuView, name: str) -> float:
        sample = view.latest.sample
        number = getattr(sample, name, None) if sample is not None else None
        return -number if number is not None else math.inf

    keys: dict[str, Any] = {
        "host": lambda v: (v.latest.gpu.host, v.latest.gpu.index),
        "utilization": lambda v: value(v, "utilization_gpu_percent"),
        "memory": lambda v: value(v, "memory_used_bytes"),
        "power": lambda v: value(v, "power_watts"),
        "temperature": lambda v: value(v, "temperature_celsius"),
        "health": lambda v: min(_HEALTH_ORDER.index(h) for h in v.health),
    }
    return sorted(views, key=keys[sort])


def card(view: GpuView, now: datetime) -> html.Div:
    gpu, sample = view.latest.gpu, view.latest.sample
    badges = [
        html.Span(h.replace("-", " but "), className=f"gl-badge gl-badge-{h}") for h in view.health
    ]
    if gpu.is_simulated:
        badges.append(html.Span("simulated", className="gl-badge gl-badge-simulated"))
    used = sample.memory_used_bytes if sample else None
    total = (sample.memory_total_bytes if sample else None) or gpu.memory_total_bytes
    rows = [
        ("utilization", percent_text(sample.utilization_gpu_percent if sample else None)),
        ("memory", f"{bytes_text(used)} / {bytes_text(total)}"),
        ("power", watts_text(sample.power_watts if sample else None)),
        ("temperature", celsius_text(sample.temperature_celsius if sample else None)),
    ]
    if sample and sample.clock_event_reasons and is_slowdown(sample.clock_event_reasons):
        rows.append(("throttle", ", ".join(decode_clock_event_reasons(sample.clock_event_reasons))))
    processes = ", ".join(
        f"{p.name or p.pid} ({bytes_text(p.used_memory_bytes)})" for p in view.processes[:4]
    )
    rows.append(("processes", processes or "none"))
    return html.Div(
        className="gl-card",
        children=[
            html.H3(dcc.Link(f"{gpu.host} · GPU {gpu.index}", href=f"/gpu/{gpu.uuid}")),
            html.Div(gpu.name, className="gl-empty"),
            html.Div(badges),
            html.Dl(
                [part for key, text in rows for part in (html.Dt(key), html.Dd(text))],
                className="gl-kv",
            ),
        ],
    )


def totals(ctx: PageContext, views: Sequence[GpuView], now: datetime) -> list[Any]:
    busy = sum(
        1
        for v in views
        if v.latest.sample and (v.latest.sample.utilization_gpu_percent or 0) >= IDLE_PERCENT
    )
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    energy = 0.0
    for view in views if now > midnight else ():  # at midnight exactly, nothing used yet
        series = ctx.store.series(
            view.latest.gpu.uuid, "energy_used_joules", midnight, now, now=now, max_points=100
        )
        energy += math.fsum(p.mean for p in series.points if p.mean is not None)
    items = [("GPUs", str(len(views))), ("busy", str(busy)), ("idle", str(len(views) - busy)),
             ("energy today", energy_text(energy) if views else "n/a")]  # fmt: skip
    return [html.Div([html.Strong(value), label], className="gl-total") for label, value in items]
