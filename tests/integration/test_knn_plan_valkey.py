"""The KNN plan on the real engine: a scope holding most of the index searches RediSearch's graph in
batches (``HYBRID_POLICY BATCHES``), a selective scope keeps the exact ad hoc plan, and both find the
same nearest memory; FLAT indexes are never hinted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentmem_core import MemoryStore
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import IndexConfig
from agentmem_core.embeddings import HashingEmbedder

BIG, SMALL = 1_100, 8


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The KNN query strings the stores send (the real command still goes to the server)."""
    queries: list[str] = []
    original = ValkeyOps.knn_command

    def spy(self: ValkeyOps, *args: Any, **kwargs: Any) -> Any:
        call = original(self, *args, **kwargs)
        queries.append(str(call.args[2]))
        return call

    monkeypatch.setattr(ValkeyOps, "knn_command", spy)
    yield queries


def _fill(store: MemoryStore) -> None:
    store.remember_many(
        [{"content": f"note {n} about city {n % 97}", "user_id": "big"} for n in range(BIG)]
        + [{"content": f"small note {n}", "user_id": "small"} for n in range(SMALL)]
    )


def _open(valkey_url: str, name: str, hybrid: bool = True, **index: Any) -> MemoryStore:
    store = MemoryStore.from_url(
        valkey_url,
        name=name,
        embedder=HashingEmbedder(64),
        index=IndexConfig(dims=64, **index),
        hybrid=hybrid,
    )
    store.setup()
    return store


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "vector-only"])
def test_a_large_scope_searches_in_batches_and_a_small_one_does_not(
    valkey_url: str, unique_name: str, sent: list[str], hybrid: bool
) -> None:
    store = _open(valkey_url, unique_name, hybrid)
    try:
        if store.engine.kind != "redisearch":
            pytest.skip("HYBRID_POLICY is RediSearch's; other engines plan their own searches")
        _fill(store)
        query = "note 517 about city 32"
        first = store.recall(query, k=5, user_id="big")  # unplanned: the counts ride along
        assert "HYBRID_POLICY" not in sent[-1]
        second = store.recall(query, k=5, user_id="big")
        assert "HYBRID_POLICY BATCHES" in sent[-1]
        assert first.hits[0].memory.content == second.hits[0].memory.content == query  # same nearest
        store.recall("small note 3", k=5, user_id="small")
        store.recall("small note 3", k=5, user_id="small")
        assert "HYBRID_POLICY" not in sent[-1]  # selective: the exact ad hoc plan
        for _ in range(2):  # no filter at all: a plain graph search (RediSearch refuses the hint there)
            assert store.recall(query, k=5).hits[0].memory.content == query
            assert "HYBRID_POLICY" not in sent[-1]
    finally:
        store.close()


def test_a_flat_index_is_never_hinted(valkey_url: str, unique_name: str, sent: list[str]) -> None:
    store = _open(valkey_url, unique_name, algorithm="FLAT")
    try:
        _fill(store)
        for _ in range(3):
            store.recall("note 5 about city 5", k=5, user_id="big")
        assert sent and not any("HYBRID_POLICY" in q for q in sent)
    finally:
        store.close()
