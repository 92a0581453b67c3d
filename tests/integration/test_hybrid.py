"""Hybrid recall on the real engine: the lexical channel finds what the vector channel cannot, scores
each scope on its own, follows content updates, and keeps the sync and async paths equal."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import CallableEmbedder

DIMS = 32


def _random_direction(texts: Sequence[str]) -> np.ndarray:
    """A vector per text that says nothing about its words: dense recall ranks these at random."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        rows.append(np.random.default_rng(seed).normal(size=DIMS))
    return np.asarray(rows)


EMBEDDER = CallableEmbedder(_random_direction, dims=DIMS)


@pytest.fixture
def store(valkey_url: str, unique_name: str) -> Iterator[MemoryStore]:
    s = MemoryStore.from_url(valkey_url, name=unique_name, embedder=EMBEDDER)
    s.setup()
    try:
        yield s
    finally:
        s.close()


def _fill(
    store: MemoryStore, namespace: tuple[str, ...], n: int, text: str = "note {i} about the weather"
) -> None:
    store.remember_many([{"content": text.format(i=i), "namespace": namespace} for i in range(n)])


def test_hybrid_is_on_by_default(store: MemoryStore) -> None:
    assert store.hybrid_enabled


def test_a_second_store_on_the_same_index_recalls_lexically_after_its_own_setup(
    store: MemoryStore, valkey_url: str, unique_name: str
) -> None:
    """The README: call ``setup()`` in every process (it detects the engine the lexical channel needs)."""
    _fill(store, ("t",), 50)
    target = store.remember("Passport number XK42 is kept in the hotel safe", namespace=("t",))
    with MemoryStore.from_url(valkey_url, name=unique_name, embedder=EMBEDDER) as other:
        before = other.recall("passport XK42", k=5, namespace=("t",))
        assert not other.hybrid_enabled  # vector alone: no hit has a lexical part
        assert before.hits and all(h.scores.lexical == 0.0 for h in before.hits)
        other.setup()
        after = other.recall("passport XK42", k=1, namespace=("t",))
        assert other.hybrid_enabled and after.hits[0].memory.id == target
        assert after.hits[0].scores.lexical == pytest.approx(1.0)


def test_keyword_finds_a_memory_outside_the_vector_pool(store: MemoryStore) -> None:
    _fill(store, ("t",), 300)
    target = store.remember("Passport number XK42 is kept in the hotel safe", namespace=("t",))
    result = store.recall("where did I put my passport?", k=3, namespace=("t",))
    assert result.hits[0].memory.id == target
    top = result.hits[0]
    assert top.scores.lexical == pytest.approx(1.0)
    # a lexical-only candidate still reports its real distance (read from the stored vector)
    expected = 1 - float(
        np.dot(
            *(
                v / np.linalg.norm(v)
                for v in _random_direction(
                    ["where did I put my passport?", "Passport number XK42 is kept in the hotel safe"]
                )
            )
        )
    )
    assert top.distance == pytest.approx(expected, abs=1e-5)


def test_stemming_matches_inflections(store: MemoryStore) -> None:
    _fill(store, ("t",), 100)
    target = store.remember("Loves hiking in the Alps every summer", namespace=("t",))
    assert store.recall("does she like to hike?", k=1, namespace=("t",)).hits[0].memory.id == target


def test_rarer_terms_weigh_more(store: MemoryStore) -> None:
    _fill(store, ("t",), 50, "flight {i} booked")
    rare = store.remember("flight to Reykjavik", namespace=("t",))
    common = store.remember("another flight", namespace=("t",))
    ids = [h.memory.id for h in store.recall("flight Reykjavik", k=60, namespace=("t",)).hits]
    assert ids[0] == rare and ids.index(rare) < ids.index(common)


def test_other_scopes_never_change_a_scopes_lexical_ranking(store: MemoryStore) -> None:
    """Document frequencies are counted under the recall's own filter, not across the index."""
    _fill(store, ("a",), 40)
    store.remember("The museum pass covers the Louvre and Orsay", namespace=("a",))
    store.remember("Orsay opens late on Thursdays", namespace=("a",))
    store.remember("Book the Louvre for Friday morning", namespace=("a",))
    before = store.recall("louvre orsay museum", k=5, namespace=("a",), reinforce=False)
    # another tenant writes lots of memories with the same words (changing any index-wide statistics)
    _fill(store, ("b",), 200, "louvre {i} louvre louvre museum")
    after = store.recall("louvre orsay museum", k=5, namespace=("a",), reinforce=False)
    assert [h.memory.id for h in after] == [h.memory.id for h in before]
    assert [h.scores.relevance for h in after] == pytest.approx([h.scores.relevance for h in before])
    assert all(h.memory.namespace == ("a",) for h in after)


def test_update_reindexes_terms(store: MemoryStore) -> None:
    _fill(store, ("t",), 60)
    memory_id = store.remember("Allergic to peanuts", namespace=("t",))
    store.update(memory_id, content="Allergic to shellfish")
    assert store.recall("shellfish allergy", k=1, namespace=("t",)).hits[0].memory.id == memory_id
    hits = store.recall("peanuts", k=61, namespace=("t",)).hits
    assert all(h.scores.lexical == 0 for h in hits)


def test_stopword_only_memory_is_stored_and_found_by_vector(store: MemoryStore) -> None:
    memory_id = store.remember("it is what it is", namespace=("t",))
    hits = store.recall("it is what it is", k=1, namespace=("t",)).hits
    assert hits[0].memory.id == memory_id and hits[0].scores.lexical == 0


async def test_async_hybrid_equals_sync(valkey_url: str, unique_name: str, store: MemoryStore) -> None:
    _fill(store, ("t",), 120)
    target = store.remember("Vegetarian, no mushrooms", namespace=("t",))
    sync = store.recall("mushrooms vegetarian", k=5, namespace=("t",), reinforce=False)
    astore = AsyncMemoryStore.from_url(valkey_url, name=store.config.name, embedder=EMBEDDER)
    await astore.setup()
    try:
        result = await astore.recall("mushrooms vegetarian", k=5, namespace=("t",), reinforce=False)
    finally:
        await astore.close()
    assert result.hits[0].memory.id == target
    assert [h.memory.id for h in result] == [h.memory.id for h in sync]
    assert [h.score for h in result] == pytest.approx([h.score for h in sync])
