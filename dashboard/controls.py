"""Inputs the pages share: a page's filters are the same kind of control everywhere."""

from __future__ import annotations

from dash import dcc

FILTER_MAX_LENGTH = 100  # characters: a filter is a name or a host, never a document


def search_box(element_id: str, placeholder: str, value: str) -> dcc.Input:
    """A text filter that applies when the user pauses or presses Enter (debounced)."""
    return dcc.Input(
        id=element_id,
        type="search",
        placeholder=placeholder,
        value=value,
        debounce=True,
        maxLength=FILTER_MAX_LENGTH,
    )
