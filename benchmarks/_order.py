"""The order of an interleaved benchmark's timings: every series meets each query cold, in a fair place.

The benchmarks time several series (a raw floor, agentmem, a peer) round-robin over one list of queries.
Two things there decided who looked faster, besides the work each series does:

* the query: timing every series on the same query in turn let the series after the first on an index
  find the query's HNSW neighbourhood in the CPU caches the first one had just filled. On this VM at 10k
  memories (core_bench's data), the same ``recall_by_vector`` took 1.25 ms p50 on a new query and
  0.93 ms repeated at once (session 25); an agent's next query is a new one;
* the place in the round: a series timed right after another index's or another library's series paid
  for the caches that one evicted (agentmem's recall without reinforcement, timed after the floors,
  read 1.43 ms where the same recall with reinforcement, timed next, read 1.13 ms).

So each series starts at its own place in the query list, ``len(args) // len(series)`` queries apart
(at every step the series time different queries, each series times every query once, and a query comes
back only after a stride of other queries), and the series run in a new seeded random order each step
(each one as often first, and after each of the others, as any other).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def staggered(args: Sequence[T], series: int, seed: int = 0) -> Iterator[list[tuple[int, T]]]:
    """Per step, ``(series index, argument)`` in timing order; each series sees every argument once."""
    n = len(args)
    if n == 0 or series <= 0:
        return
    stride = max(1, n // series)
    rng = random.Random(seed)
    order = list(range(series))
    for step in range(n):
        rng.shuffle(order)
        yield [(s, args[(step + s * stride) % n]) for s in order]
