"""The composite recall score (pure functions; the only place scoring lives)."""

from __future__ import annotations

import math

from agentmem_core.config import ScoringConfig

__all__ = ["composite", "eviction_priority", "recency", "similarity_from_distance"]


def similarity_from_distance(distance: float) -> float:
    """Cosine distance (``0..2``) to a similarity in ``[0, 1]``: ``1 - distance / 2``."""
    return min(1.0, max(0.0, 1.0 - distance / 2.0))


def recency(now: float, last_accessed_at: float, half_life_seconds: float) -> float:
    """True half-life decay: 1 when just accessed, 0.5 after one half-life, 0.25 after two, ...

    Timestamps in the future (clock skew, back-dated "now") count as "just accessed".
    """
    age = max(0.0, now - last_accessed_at)
    return math.pow(0.5, age / half_life_seconds)


def composite(
    relevance: float,
    recency_value: float,
    importance: float,
    config: ScoringConfig,
    time_fit: float | None = None,
) -> float:
    """The weighted composite in ``[0, 1]`` (weights are normalised by their sum): what recall ranks by.

    ``relevance`` is the similarity in vector-only recall and the fused channels in hybrid recall.
    ``time_fit`` is how well the memory's time fits the dates the query names (``None``: it names none,
    and the time weight is left out of the sum).
    """
    w = config.weights
    score = w.similarity * relevance + w.recency * recency_value + w.importance * importance
    if time_fit is None:
        return score / w.total
    return (score + w.time * time_fit) / (w.total + w.time)


def eviction_priority(importance: float, recency_value: float) -> float:
    """What capacity eviction keeps: the highest ``importance + recency`` survive."""
    return importance + recency_value
