"""Who may see the dashboard: credentials from the environment, checked on every request.

The dashboard shows host names, process names and training configurations, so anything but a
loopback bind needs credentials (:func:`check_bind`). Two kinds, either or both:

- ``GPULENS_DASHBOARD_TOKEN``: a shared token, sent as ``Authorization: Bearer TOKEN``, as the
  cookie ``gpulens_token``, or once as ``?token=TOKEN`` (which sets that cookie and redirects
  to the same URL without the token, so it leaves the address bar);
- ``GPULENS_DASHBOARD_USER`` and ``GPULENS_DASHBOARD_PASSWORD``: HTTP basic authentication.

:func:`install_auth` guards every route of the Flask server: the pages, Dash's ``/_dash-*``
endpoints, assets, component suites and trace downloads. Secrets are compared in constant
time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import flask
from werkzeug.wrappers import Response

from monitor.core.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "GPULENS_DASHBOARD_TOKEN"
USER_VARIABLE = "GPULENS_DASHBOARD_USER"
PASSWORD_VARIABLE = "GPULENS_DASHBOARD_PASSWORD"
COOKIE = "gpulens_token"
QUERY_PARAMETER = "token"
REALM = "gpulens"
COOKIE_MAX_AGE_SECONDS = 30 * 86400


@dataclass(frozen=True)
class AuthConfig:
    """The credentials the dashboard requires: a basic-auth user and password, a token, or
    both (either is then accepted). The secrets are left out of ``repr``."""

    username: str | None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ConfigError(
                f"set both {USER_VARIABLE} and {PASSWORD_VARIABLE} for basic authentication "
                "(or neither)"
            )
        if self.username is None and self.token is None:
            raise ConfigError(
                f"no dashboard credentials: set {TOKEN_VARIABLE}, or {USER_VARIABLE} and "
                f"{PASSWORD_VARIABLE}"
            )

    @property
    def uses_basic(self) -> bool:
        return self.username is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AuthConfig | None:
        """The credentials in ``GPULENS_DASHBOARD_*``; ``None`` where none are set. Raises
        :class:`ConfigError` where only one of the user and the password is set."""
        return from_env(environ)


def from_env(environ: Mapping[str, str] = os.environ) -> AuthConfig | None:
    """The credentials in ``GPULENS_DASHBOARD_*`` (empty counts as unset); ``None`` where
    none are set. Raises :class:`ConfigError` where only one of user and password is set."""
    token = environ.get(TOKEN_VARIABLE) or None
    username = environ.get(USER_VARIABLE) or None
    password = environ.get(PASSWORD_VARIABLE) or None
    if token is None and username is None and password is None:
        return None
    return AuthConfig(username=username, password=password, token=token)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from here."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to any interface


def check_bind(host: str, auth: AuthConfig | None, insecure_no_auth: bool) -> None:
    """Refuse to serve on a non-loopback ``host`` without credentials, unless asked to."""
    if auth is not None or insecure_no_auth or is_loopback(host):
        return
    raise ConfigError(
        f"binding to {host or 'every interface'} exposes the dashboard: set {TOKEN_VARIABLE} "
        f"(or {USER_VARIABLE} and {PASSWORD_VARIABLE}), or pass --insecure-no-auth"
    )


def install_auth(server: flask.Flask, auth: AuthConfig) -> None:
    """Answer 401 on every route of ``server`` unless the request carries ``auth``'s
    credentials (basic, ``Bearer`` token, the token cookie, or ``?token=``)."""

    def guard() -> Response | None:
        return _guard(flask.request, auth)

    # First in line: no other hook (Dash's own setup included) runs for a refused request.
    server.before_request_funcs.setdefault(None, []).insert(0, guard)


def _guard(request: flask.Request, auth: AuthConfig) -> Response | None:
    if _has_credentials(request, auth):
        return None
    offered = request.args.get(QUERY_PARAMETER)
    if auth.token is not None and offered is not None and _same(offered, auth.token):
        if request.method in ("GET", "HEAD"):
            return _keep_query_token(request, auth.token)
        return None
    log.info("refused %s %s: no valid credentials", request.method, request.path)
    response = Response(
        "authentication required: send the dashboard token or the user and password\n",
        status=401,
        mimetype="text/plain",
    )
    if auth.uses_basic:
        response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return response


def _has_credentials(request: flask.Request, auth: AuthConfig) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if auth.token is not None:
        if scheme.lower() == "bearer" and _same(value.strip(), auth.token):
            return True
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and _same(cookie, auth.token):
            return True
    if auth.username is not None and auth.password is not None and scheme.lower() == "basic":
        given = request.authorization
        if given is not None and given.type == "basic":
            # Both compared, whatever the first gives, so timing tells nothing.
            user_ok = _same(given.username or "", auth.username)
            password_ok = _same(given.password or "", auth.password)
            return user_ok and password_ok
    return False


def _keep_query_token(request: flask.Request, token: str) -> Response:
    """Keep the token in an HttpOnly cookie and send the browser on to the URL without it."""
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != QUERY_PARAMETER]
    # One leading slash: "//host/..." would send the browser to another site.
    path = "/" + (request.script_root + request.path).lstrip("/")
    target = path + (f"?{urlencode(rest)}" if rest else "")
    response: Response = flask.redirect(target, code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


__all__ = ["AuthConfig", "check_bind", "from_env", "install_auth", "is_loopback"]
