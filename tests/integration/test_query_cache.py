"""A recall that repeats a query text makes no embedding call (a bounded LRU per store, opt-out)."""

from __future__ import annotations

from _support import Facade, open_like

from agentmem_core._query_cache import QueryCache
from agentmem_core.embeddings import HashingEmbedder

HASH = HashingEmbedder(64)


class Counting:
    """A sync batch function (the core wraps it as an embedder) that counts the texts it embeds."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        return [list(map(float, v)) for v in HASH.embed(texts)]


async def test_a_repeated_query_is_embedded_once(mem: Facade) -> None:
    counting = Counting()
    store = await open_like(mem, "", mem.store.config.name + "q", embedder=counting, dims=64, clock=mem.clock)
    try:
        await store.remember("window seat on long flights", user_id="ana")
        first = await store.recall("seat preference", user_id="ana", reinforce=False)
        again = await store.recall("seat preference", user_id="ana", reinforce=False)
        assert [h.memory.id for h in first] == [h.memory.id for h in again]
        assert [h.scores.score for h in first] == [h.scores.score for h in again]
        assert counting.texts.count("seat preference") == 1
        await store.recall("something else", user_id="ana", reinforce=False)
        stats = store.store.query_cache_stats()
        assert (stats.hits, stats.misses, stats.size) == (1, 2, 2) and stats.hit_rate == 1 / 3
    finally:
        await store.close()


async def test_the_cache_can_be_turned_off(mem: Facade) -> None:
    counting = Counting()
    store = await open_like(
        mem, "", mem.store.config.name + "o", embedder=counting, dims=64, query_cache_size=0
    )
    try:
        for _ in range(2):
            await store.recall("seat preference", reinforce=False, user_id="ana")
        assert counting.texts.count("seat preference") == 2
        assert store.store.query_cache_stats().capacity == 0
    finally:
        await store.close()


def test_the_lru_drops_the_least_recently_used() -> None:
    cache = QueryCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.stats().size == 2
