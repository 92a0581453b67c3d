"""A page is never short because a condition ran on the client, even past the widest KNN pool.

The widest pool is shrunk (``MAX_POOL``) so the fallback is reached with a few hundred memories: the
matches of a client-side condition are far from the query, so no pool the index serves holds them.
"""

from __future__ import annotations

import pytest
from _support import Facade

import agentmem_core._flows_candidates as recall_module
from agentmem_core.embeddings import HashingEmbedder

QUERY = "museum tickets in paris"


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(recall_module, "MAX_POOL", 40)
    return 40


async def _seed(mem: Facade, user: str, n: int, matches: int) -> set[str]:
    near = [
        {"content": f"{QUERY} option {i}", "user_id": user, "metadata": {"n": i}} for i in range(n - matches)
    ]
    far = [
        {"content": f"volcano hike number {i}", "user_id": user, "metadata": {"n": 1000 + i}}
        for i in range(matches)
    ]
    ids = await mem.remember_many(near + far)
    return set(ids[n - matches :])


@pytest.mark.parametrize("path", ["hybrid", "vector"])
async def test_far_matches_of_a_client_side_range_still_fill_the_page(
    mem: Facade, small_pool: int, path: str
) -> None:
    wanted = await _seed(mem, "ana", 200, 7)
    await _seed(mem, "bob", 60, 7)  # another scope's matches never leak in
    flt = {"user_id": "ana", "metadata": {"n": {"$gte": 1000}}}  # not declared numeric: client-side

    async def ids(k: int, offset: int = 0) -> list[str]:
        if path == "hybrid":
            result = await mem.recall(QUERY, k=k, offset=offset, reinforce=False, **flt)
        else:
            vector = HashingEmbedder(64).embed([QUERY])[0]
            result = await mem.recall_by_vector(vector, k=k, offset=offset, reinforce=False, **flt)
        return [h.memory.id for h in result.hits]

    first = await ids(5)
    assert len(first) == 5 and set(first) <= wanted
    rest = await ids(5, offset=5)
    assert len(rest) == 2 and set(first) | set(rest) == wanted
    assert set(await ids(20)) == wanted  # fewer than k match: all of them, nothing else


async def test_the_fallback_ranks_like_the_index_would(mem: Facade, small_pool: int) -> None:
    await _seed(mem, "ana", 120, 6)
    flt = {"user_id": "ana", "metadata": {"n": {"$gte": 1000}}}
    vector = HashingEmbedder(64).embed([QUERY + " volcano"])[0]
    exhaustive = await mem.recall_by_vector(vector, k=6, reinforce=False, **flt)
    # the same ranking from the index, once the pool may grow to the whole scope
    recall_module.MAX_POOL = 10_000
    served = await mem.recall_by_vector(vector, k=6, reinforce=False, **flt)
    assert [h.memory.id for h in exhaustive.hits] == [h.memory.id for h in served.hits]
    assert [h.distance for h in exhaustive.hits] == pytest.approx([h.distance for h in served.hits], abs=1e-5)
    assert [h.scores.score for h in exhaustive.hits] == pytest.approx(
        [h.scores.score for h in served.hits], abs=1e-6
    )
