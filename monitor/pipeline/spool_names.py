"""Spool file names: whose file it is, for which store, and whether its writer is gone.

A writer's own file is ``<stem>.<key>.<host>.<pid>.jsonl``, where ``key`` is
``<family>-<hash>``: the producer and a short hash of the store's identity (its URL without
the password, a SQLite path made absolute), so a file meant for store A is never replayed into
store B. A file claimed for replay is renamed ``<stem>-<random>.<key>.<host>.<pid>.claimed``.
Files without a key (``<stem>.<host>.<pid>.jsonl``) were written before spools were keyed, or
for a caller's own sink, which has no URL. Stems, keys and hosts hold no dots.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SUFFIXES = ("jsonl", "claimed")

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")

# Own files of the writers alive in this process (a hook session, a trace handler's run):
# another writer of this process must not claim them, though the process is alive.
_live_paths: set[str] = set()
_live_lock = threading.Lock()


def safe_name(text: str, fallback: str = "x") -> str:
    """``text`` with every run of characters other than letters, digits, ``_`` and ``-``
    replaced by ``_`` (a part of a spool file name)."""
    return _NAME_CHARS.sub("_", text) or fallback


HOST = safe_name(socket.gethostname(), "host")
"""This machine's name, as spool file names carry it."""


@dataclass(frozen=True, slots=True)
class SpoolName:
    """The parts of a spool file name."""

    stem: str
    key: str | None
    host: str
    pid: int
    suffix: str = "jsonl"

    def __str__(self) -> str:
        parts = [self.stem, self.host, str(self.pid), self.suffix]
        if self.key is not None:
            parts.insert(1, self.key)
        return ".".join(parts)

    @classmethod
    def parse(cls, name: str) -> SpoolName | None:
        """The parts of ``name``, or ``None`` for a file that is not a writer's spool."""
        parts = name.split(".")
        if len(parts) not in (4, 5) or parts[-1] not in SUFFIXES or not parts[-2].isdigit():
            return None
        key = parts[1] if len(parts) == 5 else None
        return cls(parts[0], key, parts[-3], int(parts[-2]), parts[-1])


def store_key(family: str, url: str) -> str:
    """``<family>-<10 hex digits>``: the key of the spool files meant for the store at ``url``."""
    digest = hashlib.sha256(store_identity(url).encode()).hexdigest()[:10]
    return f"{safe_name(family)}-{digest}"


def store_identity(url: str) -> str:
    """What names a store in ``url``: backend, user, host, port and database; not the driver,
    the password or the options. A relative SQLite path is made absolute (the same URL in two
    folders names two databases)."""
    parts = urlsplit(url)
    backend = parts.scheme.split("+", 1)[0].lower()
    path = unquote(parts.path)
    if backend == "sqlite":
        database = path[1:] if path.startswith("/") else path
        if database not in ("", ":memory:") and not database.startswith("file:"):
            database = os.path.realpath(database)
        return f"sqlite:///{database}"
    try:
        port = str(parts.port or "")
    except ValueError:  # not a number: the URL's own text still names the store
        port = parts.netloc.rsplit(":", 1)[-1]
    user = unquote(parts.username or "")
    return f"{backend}://{user}@{(parts.hostname or '').lower()}:{port}/{path.lstrip('/')}"


def mark_live(path: os.PathLike[str]) -> None:
    """``path`` is the own file of a writer alive in this process."""
    with _live_lock:
        _live_paths.add(os.fspath(path))


def mark_released(path: os.PathLike[str]) -> None:
    """The writer of ``path`` is done: a later writer (in this process too) may replay it."""
    with _live_lock:
        _live_paths.discard(os.fspath(path))


def is_live_here(path: os.PathLike[str]) -> bool:
    with _live_lock:
        return os.fspath(path) in _live_paths


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


__all__ = [
    "HOST",
    "SpoolName",
    "is_live_here",
    "mark_live",
    "mark_released",
    "process_alive",
    "safe_name",
    "store_identity",
    "store_key",
]
