"""How a filtered KNN should run on RediSearch: brute force over the matches, or the graph in batches.

RediSearch (2.10) answers a KNN under a filter either ad hoc (a distance per match: exact, linear in the
matches) or in batches (the HNSW graph, filtered batch by batch: approximate as HNSW is, about
``1 / share`` graph searches). Its own choice flips with ``k``: at 100k memories a KNN-10 under a filter
matching the whole index went to the graph (1.8 ms) and a KNN-20 to brute force (55 ms). agentmem's recall
always carries a scope filter, so a scope holding most of the index (one tenant, a LangGraph prefix over
the whole store) paid that brute force on every recall.

``benchmarks/hybrid_policy_probe.py`` (30k 384-d vectors, HNSW M=16) puts the crossover where the ad hoc
cost (about ``matches``) meets the batches cost (about ``k / share``): ``matches**2 = c * k * total``
with ``c`` about 15 (10% of 30k for k=20, 15% for k=40). Past it the graph is 3-30x faster; below it
batches is 2-140x slower, so selective filters keep the ad hoc plan. On clustered (low-rank) vectors
the batches answer keeps HNSW's unfiltered recall (19 of 20 at ef 64).

The estimates come from counts the store sends in a recall's own round trip, at most once per
:data:`ESTIMATE_TTL_S` per filter (and once for the whole index); the hybrid channel's filter count,
sent with every hybrid recall anyway, refreshes them for free. Only RediSearch on an HNSW index is
planned: FLAT is exact either way, valkey-search and the embedded backend plan their own searches.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from agentmem_core.ops import FilterSearch
from agentmem_core.query import Leaf, MemoryFilter, leaf_size

__all__ = ["BATCHES_FACTOR", "ESTIMATE_TTL_S", "KnnPlanner", "prefer_batches"]

BATCHES_FACTOR = 15.0
"""``c`` of the crossover ``matches**2 = c * pool * total`` (measured: see the module doc)."""
ESTIMATE_TTL_S = 60.0
"""How long a count stays the estimate of a filter's (or the index's) size."""
_CAPACITY = 1024
_TOTAL: Hashable = ("*",)


def prefer_batches(matches: int, total: int, pool: int) -> bool:
    """Whether a KNN of ``pool`` under a filter matching ``matches`` of ``total`` should search in batches."""
    return total > 0 and matches > 0 and matches * matches >= BATCHES_FACTOR * pool * total


class KnnPlanner:
    """Per store: recent counts of KNN filters and of the index, and the plan they give (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _fresh(self, key: Hashable, now: float) -> int | None:
        entry = self._counts.get(key)
        if entry is None or now - entry[1] > ESTIMATE_TTL_S:
            return None
        return entry[0]

    def batches(self, leaves: Sequence[Leaf], pool: int) -> bool:
        """Whether the KNN of ``pool`` under ``leaves`` should search in batches (``False`` when unknown)."""
        if not leaves:  # no filter: a plain graph search, nothing to choose
            return False
        now = self._clock()
        with self._lock:
            matches, total = self._fresh(tuple(leaves), now), self._fresh(_TOTAL, now)
        return matches is not None and total is not None and prefer_batches(matches, total, pool)

    def counts_needed(
        self, flt: MemoryFilter, now: float, max_leaves: int, *, matches: bool = True
    ) -> list[tuple[Hashable, FilterSearch]]:
        """The counts to send beside a KNN under ``flt`` whose estimates are missing or stale, keyed.

        ``matches=False``: the filter's own count is sent anyway (the hybrid channel's: pass it to
        :meth:`learn` under :meth:`key`); only the index's may be needed. A filter whose count (its
        leaves plus the expiry leaf) would pass the engine's ``max_leaves`` is not counted: the KNN
        itself fits, and a filter that large is selective (the engine's own plan is the right one).
        """
        key, clock = self.key(flt), self._clock()
        if not key:  # no filter: nothing to plan (see :meth:`batches`)
            return []
        with self._lock:
            want_matches = matches and self._fresh(key, clock) is None
            want_total = self._fresh(_TOTAL, clock) is None
        ops: list[tuple[Hashable, FilterSearch]] = []
        leaves = tuple(flt.leaves(now)) if want_matches else ()
        if want_matches and sum(leaf_size(leaf) for leaf in leaves) <= max_leaves:
            ops.append((key, FilterSearch(leaves, 0)))
        if want_total:
            ops.append((_TOTAL, FilterSearch(tuple(MemoryFilter().leaves(now)), 0)))
        return ops

    @staticmethod
    def key(flt: MemoryFilter) -> Hashable:
        """What a filter's count is kept under: the leaves its KNN carries."""
        return tuple(flt.scope_leaves())

    def learn(self, counted: Sequence[tuple[Hashable, Any]]) -> None:
        """Keep counts: ``(key, reply)`` pairs, a reply as a ``FilterSearch`` result ``(total, rows)``.

        The flow passes replies through ``expect`` first (an error raises there); anything that is not
        a count is ignored.
        """
        clock = self._clock()
        with self._lock:
            for key, reply in counted:
                if isinstance(reply, tuple) and reply and isinstance(reply[0], int):
                    self._counts[key] = (reply[0], clock)
                    self._counts.move_to_end(key)
            while len(self._counts) > _CAPACITY:
                self._counts.popitem(last=False)
