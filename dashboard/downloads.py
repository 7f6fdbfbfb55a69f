"""Trace downloads: ``GET /download/trace/<run_id>/<window_id>``, for Perfetto or TensorBoard.

The URL only names a window; the file is the one the store recorded for that window of that
run, and it is served only when it lies (symlinks resolved) inside one of the trace roots the
dashboard was given. Anything else is a plain 404, whatever the reason, so the URL cannot be
used to probe the file system.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import flask
from werkzeug.wrappers import Response

from monitor.core.errors import StoreError
from monitor.store import Store

log = logging.getLogger(__name__)

ROUTE = "/download/trace/<run_id>/<window_id>"
# Run ids are uuid hex; window ids are uuid hex or "<run id>-<first step>-<last step>".
_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
NOT_FOUND = "no such trace: the window is unknown, or its trace file is gone\n"
STORE_DOWN = "the database is unreachable right now; try again when it answers\n"


def trace_href(run_id: str, window_id: str) -> str:
    """The download URL of a window's trace (for links on the pages)."""
    return f"/download/trace/{quote(run_id, safe='')}/{quote(window_id, safe='')}"


def is_valid_id(text: str) -> bool:
    return bool(_ID.fullmatch(text)) and ".." not in text


def register_downloads(server: flask.Flask, store: Store, trace_roots: Sequence[Path]) -> None:
    """Serve stored window traces from ``server``; only files inside ``trace_roots``."""
    roots = tuple(Path(root).expanduser().resolve() for root in trace_roots)

    def download_trace(run_id: str, window_id: str) -> Response:
        if not (is_valid_id(run_id) and is_valid_id(window_id)):
            return _plain(NOT_FOUND, 404)
        try:
            windows = store.windows(run_id)
        except StoreError as exc:
            log.warning("trace download: %s", exc)
            return _plain(STORE_DOWN, 503)
        stored = next((w.trace_path for w in windows if w.window_id == window_id), None)
        path = _servable(stored, roots)
        if path is None:
            return _plain(NOT_FOUND, 404)
        response = flask.send_file(
            path,
            as_attachment=True,
            download_name=f"{run_id}-{window_id}.pt.trace.json.gz",
            mimetype="application/gzip",
            max_age=0,
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    server.add_url_rule(ROUTE, "gpulens_download_trace", download_trace, methods=["GET"])


def _servable(stored: str | None, roots: Sequence[Path]) -> Path | None:
    """The stored trace file, resolved, where it is a file inside one of ``roots``."""
    if not stored:
        return None
    try:
        path = Path(stored).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable, a symlink loop
        return None
    if not path.is_file():
        return None
    if not any(path.is_relative_to(root) for root in roots):
        log.warning("trace download refused: %s is outside the trace folders", path)
        return None
    return path


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")


__all__ = ["ROUTE", "is_valid_id", "register_downloads", "trace_href"]
