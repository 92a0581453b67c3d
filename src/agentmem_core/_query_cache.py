"""A bounded LRU of query embeddings: a recall repeating a query text costs no embedding call.

Keyed by the exact query text; holds the embedder's raw row (the flow validates and normalises it as it
would a fresh one). Process-local and per store; ``StoreConfig.query_cache_size = 0`` turns it off.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["QueryCache", "QueryCacheStats"]


@dataclass(frozen=True)
class QueryCacheStats:
    """How the query-embedding cache has done.

    Attributes:
        hits: recalls whose query embedding came from the cache.
        misses: recalls that called the embedder.
        size: embeddings held now.
        capacity: the most it holds (``0``: off).
    """

    hits: int
    misses: int
    size: int
    capacity: int

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)`` (``0.0`` before any recall)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class QueryCache:
    """The LRU (thread-safe: a sync store may be shared by threads)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> Any | None:
        """The cached row of ``text``, or ``None`` (counted as a hit or a miss)."""
        if self.capacity <= 0:
            return None
        with self._lock:
            row = self._rows.get(text)
            if row is None:
                self.misses += 1
                return None
            self._rows.move_to_end(text)
            self.hits += 1
            return row

    def put(self, text: str, row: Any) -> None:
        """Keep ``row`` for ``text``, dropping the least recently used beyond the capacity."""
        if self.capacity <= 0:
            return
        with self._lock:
            self._rows[text] = row
            self._rows.move_to_end(text)
            while len(self._rows) > self.capacity:
                self._rows.popitem(last=False)

    def stats(self) -> QueryCacheStats:
        """A snapshot of the counters."""
        with self._lock:
            return QueryCacheStats(self.hits, self.misses, len(self._rows), self.capacity)
