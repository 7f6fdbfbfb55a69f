"""The dashboard's doors: credentials on every route, the bind check, and trace downloads that
serve only files the store recorded inside the trace folders."""

from __future__ import annotations

import gzip
import json
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import flask
import pytest

from dashboard.auth import COOKIE, AuthConfig, check_bind, from_env, install_auth
from dashboard.downloads import is_valid_id, register_downloads, trace_href
from monitor.core.errors import ConfigError, StoreUnavailable
from monitor.core.run_records import RunInfo, WindowRecord
from monitor.store import Store
from tests.cli import gpulens, gpulens_running, stop_gpulens

TOKEN = "s3cret-token-0123456789"
USER, PASSWORD = "ada", "pä55word"
BASIC = AuthConfig(username=USER, password=PASSWORD, token=None)
TOKEN_ONLY = AuthConfig(username=None, password=None, token=TOKEN)
BOTH = AuthConfig(username=USER, password=PASSWORD, token=TOKEN)
RUN_ID = "0123456789abcdef0123456789abcdef"
WINDOW_ID = f"{RUN_ID}-15-19"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def import_dash() -> Any:
    # This environment's requests pulls urllib3 1.26 with the deprecated "secure" extra.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="urllib3")
        import dash

    return dash


def minimal_app(tmp_path: Path) -> Any:
    """A Dash app with a layout, one callback and one asset: every kind of Dash route."""
    dash = import_dash()
    assets = tmp_path / "assets"
    assets.mkdir(exist_ok=True)
    (assets / "site.css").write_text("body { margin: 0; }\n")
    app = dash.Dash(__name__, assets_folder=str(assets))
    app.layout = dash.html.Div([dash.dcc.Input(id="a", value="x"), dash.html.Div(id="b")])

    @app.callback(dash.Output("b", "children"), dash.Input("a", "value"))
    def echo(value: str) -> str:
        return value

    return app


def update_body() -> dict[str, Any]:
    return {
        "output": "b.children",
        "outputs": {"id": "b", "property": "children"},
        "inputs": [{"id": "a", "property": "value", "value": "hello"}],
        "changedPropIds": ["a.value"],
        "state": [],
    }


def client_for(tmp_path: Path, auth: AuthConfig) -> flask.testing.FlaskClient:
    app = minimal_app(tmp_path)
    install_auth(app.server, auth)
    register_downloads(app.server, FailingStore(), ())
    return app.server.test_client()


class FailingStore:
    """A store whose database does not answer."""

    def windows(self, run_id: str) -> list[WindowRecord]:
        raise StoreUnavailable("cannot use the database sqlite:///nowhere: unreachable")


def fetch(client: flask.testing.FlaskClient, path: str, method: str = "GET", **kw: Any) -> Any:
    """The response, read whole and closed (files are served as open file wrappers)."""
    response = client.open(path, method=method, **kw)
    response.get_data()
    response.close()
    return response


def basic(user: str, password: str) -> dict[str, str]:
    import base64

    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


GUARDED = [
    ("GET", "/"),
    ("GET", "/runs"),
    ("GET", "/_dash-layout"),
    ("GET", "/_dash-dependencies"),
    ("POST", "/_dash-update-component"),
    ("GET", "/_reload-hash"),
    ("GET", "/_favicon.ico"),
    ("GET", "/assets/site.css"),
    ("GET", "/_dash-component-suites/dash/dcc/dash_core_components.js"),
    ("GET", "/download/trace/x/y"),
    ("OPTIONS", "/_dash-update-component"),
]


# -- credentials on every route ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_route_answers_401_without_credentials(tmp_path, method: str, path: str) -> None:
    client = client_for(tmp_path, BOTH)
    response = fetch(client, path, method, json=update_body() if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="gpulens"')
    assert TOKEN not in response.get_data(as_text=True)


def test_token_only_auth_asks_for_no_basic_login(tmp_path) -> None:
    response = fetch(client_for(tmp_path, TOKEN_ONLY), "/")
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (BASIC, basic(USER, PASSWORD)),
        (BOTH, basic(USER, PASSWORD)),
        (TOKEN_ONLY, {"Authorization": f"Bearer {TOKEN}"}),
        (BOTH, {"Authorization": f"bearer {TOKEN}"}),
    ],
)
def test_valid_basic_or_bearer_credentials_open_every_dash_route(
    tmp_path, auth: AuthConfig, headers: dict[str, str]
) -> None:
    client = client_for(tmp_path, auth)
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/assets/site.css"):
        assert fetch(client, path, headers=headers).status_code == 200, path
    update = fetch(client, "/_dash-update-component", "POST", json=update_body(), headers=headers)
    assert update.status_code == 200
    assert "hello" in update.get_data(as_text=True)


def test_the_token_cookie_opens_the_dashboard(tmp_path) -> None:
    client = client_for(tmp_path, TOKEN_ONLY)
    client.set_cookie(COOKIE, TOKEN)
    assert fetch(client, "/").status_code == 200
    assert fetch(client, "/_dash-update-component", "POST", json=update_body()).status_code == 200


def test_token_in_the_url_sets_the_cookie_and_redirects_without_it(tmp_path) -> None:
    client = client_for(tmp_path, TOKEN_ONLY)
    response = fetch(client, f"/runs?name=bert&token={TOKEN}&host=n1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/runs?name=bert&host=n1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    # The test client keeps the cookie, as a browser does.
    assert fetch(client, "/runs?name=bert&host=n1").status_code == 200
    assert fetch(client, "/_dash-layout").status_code == 200


def test_a_token_url_redirect_never_leaves_the_site(tmp_path) -> None:
    raw = {"PATH_INFO": "//evil.example/x", "QUERY_STRING": f"token={TOKEN}"}
    response = fetch(client_for(tmp_path, TOKEN_ONLY), "/", environ_overrides=raw)
    assert response.status_code == 303
    assert response.headers["Location"] == "/evil.example/x"


@pytest.mark.parametrize(
    ("auth", "headers", "cookie", "query"),
    [
        (BASIC, basic(USER, "wrong"), None, ""),
        (BASIC, basic("eve", PASSWORD), None, ""),
        (BASIC, basic(USER, ""), None, ""),
        (BOTH, {"Authorization": "Bearer wrong"}, None, ""),
        (BOTH, {"Authorization": f"Basic {TOKEN}"}, None, ""),  # a token is no basic login
        (TOKEN_ONLY, basic(USER, PASSWORD), None, ""),  # basic is not configured
        (TOKEN_ONLY, {"Authorization": f"Token {TOKEN}"}, None, ""),
        (TOKEN_ONLY, {}, "wrong", ""),
        (TOKEN_ONLY, {}, TOKEN[:-1], ""),
        (TOKEN_ONLY, {}, None, "?token=wrong"),
        (BASIC, {}, TOKEN, f"?token={TOKEN}"),  # no token configured: none is accepted
    ],
)
def test_wrong_credentials_are_refused(
    tmp_path, auth: AuthConfig, headers: dict[str, str], cookie: str | None, query: str
) -> None:
    client = client_for(tmp_path, auth)
    if cookie is not None:
        client.set_cookie(COOKIE, cookie)
    response = fetch(client, f"/_dash-layout{query}", headers=headers)
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_secrets_stay_out_of_repr_and_logs(tmp_path, caplog) -> None:
    assert PASSWORD not in repr(BOTH)
    assert TOKEN not in repr(BOTH)
    caplog.set_level("DEBUG")
    client = client_for(tmp_path, BOTH)
    fetch(client, f"/?token={TOKEN}x", headers=basic(USER, PASSWORD + "x"))
    fetch(client, f"/?token={TOKEN}")
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text


# -- credentials from the environment, and the bind ------------------------------------------------


def test_credentials_come_from_the_environment() -> None:
    assert from_env({}) is None
    assert from_env({"GPULENS_DASHBOARD_TOKEN": ""}) is None
    assert from_env({"GPULENS_DASHBOARD_TOKEN": "t"}) == AuthConfig(None, None, "t")
    both = from_env(
        {"GPULENS_DASHBOARD_USER": "u", "GPULENS_DASHBOARD_PASSWORD": "p", "OTHER": "x"}
    )
    assert both == AuthConfig("u", "p", None)
    assert AuthConfig.from_env({"GPULENS_DASHBOARD_TOKEN": "t"}) == AuthConfig(None, None, "t")


@pytest.mark.parametrize(
    "environ", [{"GPULENS_DASHBOARD_USER": "u"}, {"GPULENS_DASHBOARD_PASSWORD": "p"}]
)
def test_half_a_basic_login_is_a_config_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="GPULENS_DASHBOARD_USER and GPULENS_DASHBOARD_PASSWORD"):
        from_env({**environ, "GPULENS_DASHBOARD_TOKEN": "t"})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1"])
def test_loopback_binds_need_no_credentials(host: str) -> None:
    check_bind(host, None, insecure_no_auth=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "gpu-node-1", ""])
def test_other_binds_need_credentials_or_the_explicit_flag(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_bind(host, None, insecure_no_auth=False)
    message = str(caught.value)
    assert "exposes the dashboard" in message
    for name in ("GPULENS_DASHBOARD_TOKEN", "GPULENS_DASHBOARD_USER", "GPULENS_DASHBOARD_PASSWORD"):
        assert name in message
    assert "--insecure-no-auth" in message
    check_bind(host, None, insecure_no_auth=True)
    check_bind(host, TOKEN_ONLY, insecure_no_auth=False)
    check_bind(host, BASIC, insecure_no_auth=False)


# -- trace downloads -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> Any:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def stored_window(store: Store, trace_path: Path | str | None, window_id: str = WINDOW_ID) -> None:
    if store.run(RUN_ID) is None:
        store.start_run(RunInfo(RUN_ID, "bert", "node01", T0))
    path = None if trace_path is None else str(trace_path)
    store.save_window(WindowRecord(window_id, RUN_ID, 15, 19, T0, path, "analyzed"))


def download_client(store: Store, roots: list[Path]) -> flask.testing.FlaskClient:
    server = flask.Flask(__name__)
    register_downloads(server, store, roots)
    return server.test_client()


def gzip_trace(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = gzip.compress(json.dumps({"traceEvents": []}).encode())
    path.write_bytes(body)
    return body


def test_a_stored_trace_inside_a_root_is_served_as_a_gzip_attachment(tmp_path, store) -> None:
    root = tmp_path / "traces"
    body = gzip_trace(root / RUN_ID / "window-15-19.pt.trace.json.gz")
    stored_window(store, root / RUN_ID / "window-15-19.pt.trace.json.gz")
    response = fetch(
        download_client(store, [tmp_path / "elsewhere", root]), trace_href(RUN_ID, WINDOW_ID)
    )
    assert response.status_code == 200
    assert response.data == body
    assert response.mimetype == "application/gzip"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f"attachment; filename={RUN_ID}-{WINDOW_ID}.pt.trace.json.gz"


def test_a_stored_trace_outside_the_roots_is_not_served(tmp_path, store) -> None:
    secret = tmp_path / "secret" / "keys.json.gz"
    gzip_trace(secret)
    stored_window(store, secret)
    response = fetch(download_client(store, [tmp_path / "traces"]), trace_href(RUN_ID, WINDOW_ID))
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert "secret" not in response.get_data(as_text=True)


def test_dot_dot_in_a_stored_path_and_symlinks_out_of_a_root_are_not_served(
    tmp_path, store
) -> None:
    root = tmp_path / "traces"
    outside = tmp_path / "outside.json.gz"
    gzip_trace(outside)
    (root / RUN_ID).mkdir(parents=True)
    (root / RUN_ID / "link.json.gz").symlink_to(outside)
    client = download_client(store, [root])
    stored_window(store, root / RUN_ID / ".." / ".." / "outside.json.gz")
    assert fetch(client, trace_href(RUN_ID, WINDOW_ID)).status_code == 404
    stored_window(store, root / RUN_ID / "link.json.gz")
    assert fetch(client, trace_href(RUN_ID, WINDOW_ID)).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        f"/download/trace/../{WINDOW_ID}",
        f"/download/trace/{RUN_ID}/..",
        f"/download/trace/{RUN_ID}/a..b",
        f"/download/trace/%2e%2e/{WINDOW_ID}",
        f"/download/trace/{RUN_ID}/..%2F..%2Fetc%2Fpasswd",
        f"/download/trace/{RUN_ID}/{'a' * 65}",
        f"/download/trace/{RUN_ID}/.hidden",
        f"/download/trace/{RUN_ID}/a%00b",
        f"/download/trace/{RUN_ID}/a b",
    ],
)
def test_ids_outside_the_strict_pattern_are_404(tmp_path, store, path: str) -> None:
    root = tmp_path / "traces"
    gzip_trace(root / "t.json.gz")
    stored_window(store, root / "t.json.gz")
    assert fetch(download_client(store, [root]), path).status_code == 404


def test_id_pattern() -> None:
    assert is_valid_id(RUN_ID)
    assert is_valid_id(WINDOW_ID)
    assert is_valid_id("a_b.c-1")
    for bad in ("", "..", "a..b", "a/b", "a\\b", ".x", "x" * 65, "é"):
        assert not is_valid_id(bad), bad


def test_missing_files_unknown_windows_and_windows_without_a_trace_are_404(tmp_path, store) -> None:
    root = tmp_path / "traces"
    stored_window(store, root / RUN_ID / "gone.json.gz")
    stored_window(store, None, window_id="no-trace")
    (root / "a-folder").mkdir(parents=True)
    stored_window(store, root / "a-folder", window_id="a-folder")
    client = download_client(store, [root])
    assert fetch(client, trace_href(RUN_ID, WINDOW_ID)).status_code == 404
    assert fetch(client, trace_href(RUN_ID, "no-trace")).status_code == 404
    assert fetch(client, trace_href(RUN_ID, "a-folder")).status_code == 404
    assert fetch(client, trace_href(RUN_ID, "unknown")).status_code == 404
    assert fetch(client, trace_href("ffff", WINDOW_ID)).status_code == 404


def test_a_window_is_only_found_under_its_own_run(tmp_path, store) -> None:
    root = tmp_path / "traces"
    gzip_trace(root / "t.json.gz")
    stored_window(store, root / "t.json.gz")
    other = "fedcba9876543210fedcba9876543210"
    store.start_run(RunInfo(other, "gpt", "node01", T0))
    assert fetch(download_client(store, [root]), trace_href(other, WINDOW_ID)).status_code == 404


def test_an_unreachable_store_is_503_with_a_plain_message() -> None:
    server = flask.Flask(__name__)
    register_downloads(server, FailingStore(), [Path("/nonexistent")])
    response = fetch(server.test_client(), trace_href(RUN_ID, WINDOW_ID))
    assert response.status_code == 503
    assert response.mimetype == "text/plain"
    assert "unreachable" in response.get_data(as_text=True)


def test_downloads_need_credentials_too(tmp_path, store) -> None:
    root = tmp_path / "traces"
    body = gzip_trace(root / "t.json.gz")
    stored_window(store, root / "t.json.gz")
    app = minimal_app(tmp_path)
    install_auth(app.server, TOKEN_ONLY)
    register_downloads(app.server, store, [root])
    client = app.server.test_client()
    assert fetch(client, trace_href(RUN_ID, WINDOW_ID)).status_code == 401
    allowed = fetch(
        client, trace_href(RUN_ID, WINDOW_ID), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert allowed.status_code == 200
    assert allowed.data == body


def test_trace_href_quotes_what_it_is_given() -> None:
    assert trace_href("ab", "c-1") == "/download/trace/ab/c-1"
    assert trace_href("a/b", "c d") == "/download/trace/a%2Fb/c%20d"


# -- the command line ------------------------------------------------------------------------------


def test_dashboard_on_every_interface_without_credentials_exits_2(tmp_path) -> None:
    db = tmp_path / "g.db"
    result = gpulens(tmp_path, "dashboard", "--host", "0.0.0.0", "--db", f"sqlite:///{db}")
    assert result.returncode == 2
    assert "binding to 0.0.0.0 exposes the dashboard" in result.stderr
    assert "GPULENS_DASHBOARD_TOKEN" in result.stderr
    assert "--insecure-no-auth" in result.stderr
    assert not db.exists()  # refused before the store is touched


def test_half_a_login_in_the_environment_exits_2(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GPULENS_DASHBOARD_USER", "ada")
    monkeypatch.delenv("GPULENS_DASHBOARD_PASSWORD", raising=False)
    result = gpulens(tmp_path, "dashboard", "--db", f"sqlite:///{tmp_path / 'g.db'}")
    assert result.returncode == 2
    assert "GPULENS_DASHBOARD_PASSWORD" in result.stderr


def served_url(process: subprocess.Popen[str], verb: str) -> str:
    """The URL from the ``gpulens VERB: URL`` line, read as it comes."""
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(f"gpulens {verb}: http://"):
            return line.split()[2]
    process.kill()
    raise AssertionError("no URL line; output:\n" + "".join(seen))


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_the_dashboard_serves_with_a_token_and_stops_on_sigterm(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GPULENS_DASHBOARD_TOKEN", TOKEN)
    db = f"sqlite:///{tmp_path / 'g.db'}"
    with gpulens_running(tmp_path, "dashboard", "--port", "0", "--db", db) as process:
        url = served_url(process, "dashboard").replace("localhost", "127.0.0.1")
        assert status_of(url) == 401
        assert status_of(url + "_dash-layout") == 401
        assert status_of(url, {"Authorization": f"Bearer {TOKEN}"}) == 200
        assert status_of(url + "_dash-layout", {"Authorization": f"Bearer {TOKEN}"}) == 200
        output = stop_gpulens(process)
    assert process.returncode == 0, output
    assert TOKEN not in output


@pytest.mark.slow
def test_up_starts_a_collector_and_stops_it_on_exit(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    with gpulens_running(tmp_path, "up", "--simulate", "2", "--port", "0", "--db", db) as process:
        url = served_url(process, "up")
        assert status_of(url) == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the collector's first flush comes within 5 s
            status = gpulens(tmp_path, "status", "--json", "--db", db)
            if status.returncode == 0 and len(json.loads(status.stdout)["gpus"]) == 2:
                break
            time.sleep(1)
        else:
            raise AssertionError("the collector wrote no GPUs")
        assert all(gpu["simulated"] for gpu in json.loads(status.stdout)["gpus"])
        output = stop_gpulens(process, timeout=40)
    assert process.returncode == 0, output
    collectors = json.loads(gpulens(tmp_path, "status", "--json", "--db", db).stdout)["collectors"]
    assert [c["state"] for c in collectors] == ["stopped"]
