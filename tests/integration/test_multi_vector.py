"""Memories with several vectors (``remember(texts=...)``, LangGraph's ``fields``) on the real server.

A memory's second and later vectors are child documents of the index; these tests pin what a caller
sees: recall scores a memory by its closest vector and returns it once, filters and scopes hold for
every vector, nothing else (count, list, stats, facets) ever sees a child, and every write path (re-put,
update, move, forget, eviction, TTL, refresh) keeps the children in step with their memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _support import Facade

from agentmem_core import ScopeKey
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import InvalidMemoryError, InvalidVectorError

EMB = HashingEmbedder(64)
TEXTS = ["volcano hike in iceland", "sushi dinner in tokyo", "museum pass for paris"]


def _vec(text: str) -> np.ndarray:
    return np.asarray(EMB.embed([text])[0], dtype=np.float32)


async def _children(mem: Facade) -> list[str] | None:
    """The child vector documents of this store left on the server (its own prefix only).

    ``None`` on another backend: child documents are how Valkey indexes extra vectors.
    """
    if mem.backend != "valkey":
        return None
    client = mem.store.client
    pattern = f"{mem.store.keys.memory_prefix}*:*"
    scanner = client.scan_iter(match=pattern, count=1000)
    if hasattr(scanner, "__aiter__"):
        return sorted([k.decode() async for k in scanner])
    return sorted(k.decode() for k in scanner)


def _none_or(value: list[str] | None, want: Any) -> bool:
    """``value == want`` where the backend has child documents."""
    return value is None or value == want


def _none_or_len(value: list[str] | None, n: int) -> bool:
    return value is None or len(value) == n


async def _pttl(mem: Facade, key: str) -> int:
    reply = mem.store.client.pttl(key)
    if hasattr(reply, "__await__"):
        reply = await reply
    return int(reply)


async def test_recall_scores_a_memory_by_its_closest_vector_and_returns_it_once(mem: Facade) -> None:
    memory_id = await mem.remember("", texts=TEXTS, user_id="u")
    await mem.remember("a note about the weather", user_id="u")
    for text in TEXTS:
        result = await mem.recall_by_vector(_vec(text), k=5, user_id="u", reinforce=False)
        ids = [h.memory.id for h in result.hits]
        assert ids.count(memory_id) == 1 and ids[0] == memory_id
        assert result.hits[0].distance == pytest.approx(0.0, abs=1e-5)
        hybrid = await mem.recall(text, k=5, user_id="u", reinforce=False)
        assert [h.memory.id for h in hybrid.hits].count(memory_id) == 1
        assert hybrid.hits[0].memory.id == memory_id
    got = await mem.get(memory_id, with_vector=True)
    assert got is not None and got.content == "" and got.vectors is not None and len(got.vectors) == 3
    for stored, text in zip(got.vectors, TEXTS):
        assert np.allclose(stored, _vec(text), atol=1e-6)
    assert got.vector == got.vectors[0]
    assert _none_or_len(await _children(mem), 2)


async def test_children_never_count_as_memories(mem: Facade) -> None:
    await mem.remember("", texts=TEXTS, user_id="u", tags=["trip"])
    await mem.remember("plain", user_id="u", tags=["trip"])
    assert await mem.count(user_id="u") == 2
    assert await mem.count(user_id="u", tags=["trip"]) == 2
    page = await mem.list(user_id="u")
    assert len(page.memories) == 2
    assert dict((await mem.facets(user_id="u")).by_tag) == {"trip": 2}
    stats = await mem.stats(user_id="u")
    assert stats.total == 2
    # k larger than the store: every memory once, no child padding the page
    result = await mem.recall_by_vector(_vec(TEXTS[1]), k=10, user_id="u", reinforce=False)
    assert len(result.hits) == 2


async def test_every_vector_obeys_the_scope_and_the_filters(mem: Facade) -> None:
    mine = await mem.remember("", texts=TEXTS, user_id="ana", metadata={"city": "x", "n": 1})
    await mem.remember("", texts=TEXTS, user_id="bob", metadata={"city": "x", "n": 1})
    for text in TEXTS:
        hits = (await mem.recall_by_vector(_vec(text), k=10, user_id="ana", reinforce=False)).hits
        assert [h.memory.id for h in hits] == [mine]
        none = await mem.recall_by_vector(
            _vec(text), k=10, user_id="ana", metadata={"city": "y"}, reinforce=False
        )
        assert none.hits == ()
    # an update of a filtered field reaches every vector
    await mem.update(mine, metadata={"city": "y"}, tags=["moved"])
    for text in TEXTS[1:]:
        hits = await mem.recall_by_vector(
            _vec(text), k=10, user_id="ana", metadata={"city": "y"}, tags=["moved"]
        )
        assert [h.memory.id for h in hits.hits] == [mine]
        old = await mem.recall_by_vector(_vec(text), k=10, user_id="ana", metadata={"city": "x"})
        assert old.hits == ()


async def test_a_page_of_k_holds_k_memories_when_each_has_many_close_vectors(mem: Facade) -> None:
    # every memory has 8 vectors near the query: a pool of k x multiplier rows holds few memories, so
    # recall must widen until k distinct memories are in it
    ids = []
    for n in range(6):
        texts = [f"paris museum pass day {n} variant {v}" for v in range(8)]
        ids.append(await mem.remember(f"memory {n}", texts=texts, user_id="u"))
    result = await mem.recall_by_vector(_vec("paris museum pass day"), k=5, user_id="u", reinforce=False)
    got = [h.memory.id for h in result.hits]
    assert len(got) == len(set(got)) == 5
    page2 = await mem.recall_by_vector(
        _vec("paris museum pass day"), k=5, offset=5, user_id="u", reinforce=False
    )
    assert len(page2.hits) == 1 and page2.hits[0].memory.id not in got


async def test_re_put_update_move_and_forget_keep_the_children_in_step(mem: Facade) -> None:
    key_id = await mem.remember("", texts=TEXTS, namespace=("a",), key="k")
    assert _none_or_len(await _children(mem), 2)
    # re-put with one text: the old children go, the last vector no longer finds it at distance 0
    assert await mem.remember("", texts=[TEXTS[0]], namespace=("a",), key="k") == key_id
    assert _none_or(await _children(mem), [])
    result = await mem.recall_by_vector(_vec(TEXTS[2]), k=1, namespace=("a",), reinforce=False)
    assert result.hits[0].distance > 0.1
    # re-put with three again, then update: content changes, the vectors of the texts stay
    await mem.remember("", texts=TEXTS, namespace=("a",), key="k")
    before = await mem.get(key_id, with_vector=True)
    updated = await mem.update(key_id, content="now with words")
    assert updated.content == "now with words"
    after = await mem.get(key_id, with_vector=True)
    assert after is not None and before is not None and after.vectors == before.vectors
    # move to another scope: the children move (the old ones are gone), every vector finds it there
    new_id = (await mem.update(key_id, scope=ScopeKey(namespace=("b",)))).id
    children = await _children(mem)
    assert children is None or (len(children) == 2 and all(new_id[16:] in c for c in children))
    for text in TEXTS:
        hits = (await mem.recall_by_vector(_vec(text), k=1, namespace=("b",), reinforce=False)).hits
        assert hits[0].memory.id == new_id and hits[0].distance == pytest.approx(0.0, abs=1e-5)
        assert (await mem.recall_by_vector(_vec(text), k=1, namespace=("a",))).hits == ()
    moved = await mem.get(new_id, with_vector=True)
    assert moved is not None and moved.vectors == before.vectors
    # forget: nothing is left behind
    assert await mem.forget(new_id)
    assert _none_or(await _children(mem), [])
    assert (await mem.recall_by_vector(_vec(TEXTS[2]), k=5, namespace=("b",))).hits == ()


async def test_children_share_the_ttl_and_its_refresh(mem: Facade) -> None:
    memory_id = await mem.remember("", texts=TEXTS, user_id="u", ttl=600)
    children = await _children(mem)
    assert children is None or len(children) == 2
    for key in children or ():
        assert 0 < await _pttl(mem, key) <= 600_000
    await mem.update(memory_id, ttl=6000)
    for key in children or ():
        assert 600_000 < await _pttl(mem, key) <= 6_000_000
    await mem.forget_by_scope(user_id="u")
    assert _none_or(await _children(mem), [])


async def test_capacity_eviction_takes_the_children_with_it(mem: Facade, valkey_url: str) -> None:
    from _support import open_like

    small = await open_like(mem, valkey_url, mem.store.keys.store + "e", max_items_per_scope=2)
    try:
        for n in range(4):
            await small.remember("", texts=[f"text {n} one", f"text {n} two"], user_id="u", importance=n / 4)
        assert await small.count(user_id="u") == 2
        assert _none_or_len(await _children(small), 2)
    finally:
        await small.forget_by_scope(user_id="u")
        await small.close()


async def test_texts_are_validated_before_anything_is_written(mem: Facade) -> None:
    bad: list[dict[str, Any]] = [
        {"texts": "one string"},
        {"texts": []},
        {"texts": ["ok", ""]},
        {"texts": ["ok", "   "]},
        {"texts": ["ok", 3]},
        {"texts": ["t"] * 257},
        {"texts": ["ok"], "embed": False},
        {"texts": ["x" * 40_000]},
    ]
    for options in bad:
        with pytest.raises(InvalidMemoryError):
            await mem.remember("", user_id="u", **options)
    with pytest.raises(InvalidVectorError):  # one vector per text
        await mem.remember_many([{"content": "", "texts": TEXTS, "user_id": "u"}], vectors=[_vec("a")] * 2)
    assert await mem.count(user_id="u") == 0


async def test_precomputed_vectors_are_one_per_text_in_order(mem: Facade) -> None:
    vectors = [_vec(t) for t in ["plain one", *TEXTS, "plain two"]]
    ids = await mem.remember_many(
        [
            {"content": "plain one", "user_id": "u"},
            {"content": "", "texts": TEXTS, "user_id": "u"},
            {"content": "plain two", "user_id": "u"},
            {"content": "not embedded", "user_id": "u", "embed": False},
        ],
        vectors=vectors,
    )
    got = await mem.get(ids[1], with_vector=True)
    assert got is not None and got.vectors is not None
    assert [np.allclose(a, b, atol=1e-6) for a, b in zip(got.vectors, vectors[1:4])] == [True] * 3
    last = await mem.get(ids[2], with_vector=True)
    assert last is not None and np.allclose(last.vector, vectors[4], atol=1e-6)


async def test_write_time_dedup_never_merges_a_memory_of_texts(mem: Facade, valkey_url: str) -> None:
    from _support import open_like

    deduped = await open_like(mem, valkey_url, mem.store.keys.store + "d", dedup_threshold=0.05)
    try:
        first = await deduped.remember("", texts=[TEXTS[0]], user_id="u")
        second = await deduped.remember("", texts=[TEXTS[0]], user_id="u")
        plain = await deduped.remember(TEXTS[0], user_id="u")
        again = await deduped.remember(TEXTS[0], user_id="u")
        assert len({first, second, plain}) == 3 and again == plain
    finally:
        await deduped.forget_by_scope(user_id="u")
        await deduped.close()
