"""Runnable examples of gpulens in use (not installed with the package)."""
