"""The gpulens web dashboard: ``create_app(store)`` returns a Dash app on that store.

``import dashboard`` imports no Dash; ``create_app`` does (it needs ``gpulens[dashboard]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashboard.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from dashboard.app import create_app

        return create_app
    raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
