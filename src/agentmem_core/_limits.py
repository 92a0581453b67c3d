"""Bounds shared by the read and recall flows."""

from __future__ import annotations

__all__ = ["MAX_K"]

MAX_K = 10_000
"""The most hits a recall returns and the most memories a list page holds (``k + offset`` for recall)."""
