"""ValkeyMemoryRetriever on the real Valkey + search module: documents, k, scopes, sync and async.

Each test gets its own core store name (``unique_name``); nothing is flushed or shared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.documents import Document

from agentmem_core import AsyncMemoryStore, ConfigurationError, InvalidMemoryError, MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_langgraph import AsyncValkeyMemoryStore, ValkeyMemoryRetriever, ValkeyMemoryStore
from agentmem_langgraph.retriever import narrow, recall_arguments

pytestmark = pytest.mark.integration

DIMS = 64
FACTS = [
    ("ana", "I always want a window seat on flights", 0.9, ["travel"], {"topic": "flights", "n": 1}),
    ("ana", "I am vegetarian, no meat in restaurant picks", 1.0, ["food"], {"topic": "food", "n": 2}),
    ("ana", "My hotel budget is 150 euros a night", 0.7, ["travel", "budget"], {"topic": "hotels", "n": 3}),
    ("ana", "I get motion sickness on long bus rides", 0.8, ["travel"], {"topic": "transport", "n": 4}),
    ("bob", "I always want an aisle seat on flights", 0.9, ["travel"], {"topic": "flights", "n": 5}),
]


def seed(store: MemoryStore) -> None:
    for user, text, importance, tags, metadata in FACTS:
        store.remember(text, user_id=user, importance=importance, tags=tags, metadata=metadata)


@pytest.fixture
def core(valkey_url: str, unique_name: str) -> Iterator[MemoryStore]:
    with MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS)) as store:
        store.setup()
        seed(store)
        yield store


@pytest.fixture
async def acore(core: MemoryStore, valkey_url: str, unique_name: str) -> AsyncIterator[AsyncMemoryStore]:
    async with AsyncMemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS)
    ) as store:
        await store.setup()
        yield store


def users(docs: list[Document]) -> set[str]:
    return {d.metadata["user_id"] for d in docs}


# -- documents ---------------------------------------------------------------------------------------------
def test_documents_carry_the_memory_and_the_score_breakdown(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(store=core, user_id="ana", k=2, reinforce=False)
    docs = retriever.invoke("window seat on flights")
    expected = core.recall("window seat on flights", user_id="ana", k=2, reinforce=False)
    assert [d.id for d in docs] == [h.memory.id for h in expected]
    first, hit = docs[0], expected[0]
    assert first.page_content == "I always want a window seat on flights"
    meta = first.metadata
    assert meta["id"] == hit.memory.id and meta["user_id"] == "ana" and meta["kind"] == "semantic"
    assert meta["tags"] == ["travel"] and meta["metadata"] == {"topic": "flights", "n": 1}
    assert meta["importance"] == 0.9 and meta["namespace"] == []
    assert meta["distance"] == pytest.approx(hit.distance, abs=1e-6)
    assert meta["score"] == pytest.approx(hit.scores.score, abs=1e-6)
    assert set(meta["scores"]) == {"similarity", "recency", "importance", "score", "relevance", "lexical"}
    assert meta["scores"]["similarity"] == pytest.approx(hit.scores.similarity, abs=1e-6)
    assert meta["scores"]["score"] == meta["score"]
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]  # best first


def test_a_query_naming_a_date_adds_the_time_signal(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(store=core, user_id="ana", k=2, reinforce=False)
    meta = retriever.invoke("window seat on flights today")[0].metadata
    assert meta["scores"]["time"] == pytest.approx(1.0)  # remembered today


def test_k_as_field_and_as_invoke_kwarg(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(store=core, user_id="ana", k=3)
    assert len(retriever.invoke("seat")) == 3
    assert len(retriever.invoke("seat", k=1)) == 1
    assert len(retriever.invoke("seat", k=10)) == 4  # ana has four memories
    assert len(ValkeyMemoryRetriever(store=core, k=10).invoke("seat")) == 5  # no scope: everyone's
    with pytest.raises(InvalidMemoryError, match="k must be"):
        retriever.invoke("seat", k=0)


def test_offset_pages_through_the_ranking(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(store=core, user_id="ana", k=4, reinforce=False)
    ranked = [d.id for d in retriever.invoke("seat")]
    assert [d.id for d in retriever.invoke("seat", k=2, offset=1)] == ranked[1:3]


def test_reinforce_is_the_cores(core: MemoryStore) -> None:
    ValkeyMemoryRetriever(store=core, user_id="bob", reinforce=False).invoke("aisle")
    (memory,) = core.list(user_id="bob").memories
    assert memory.access_count == 0
    ValkeyMemoryRetriever(store=core, user_id="bob").invoke("aisle")
    (memory,) = core.list(user_id="bob").memories
    assert memory.access_count == 1


async def test_async_retrieval(core: MemoryStore, acore: AsyncMemoryStore) -> None:
    both = ValkeyMemoryRetriever(store=core, async_store=acore, user_id="ana", k=2, reinforce=False)
    sync_docs = both.invoke("vegetarian restaurant")
    async_docs = await both.ainvoke("vegetarian restaurant")
    assert [d.id for d in async_docs] == [d.id for d in sync_docs]
    assert async_docs[0].page_content.startswith("I am vegetarian")
    # only a sync store: ainvoke runs it in a worker thread
    sync_only = ValkeyMemoryRetriever(store=core, user_id="ana", k=2, reinforce=False)
    assert [d.id for d in await sync_only.ainvoke("vegetarian restaurant", k=1)] == [sync_docs[0].id]
    # only an async store: invoke cannot run it
    async_only = ValkeyMemoryRetriever(async_store=acore, user_id="ana", k=1)
    assert len(await async_only.ainvoke("vegetarian")) == 1
    with pytest.raises(ConfigurationError, match="only an async store"):
        async_only.invoke("vegetarian")


# -- scopes never widen ------------------------------------------------------------------------------------
def test_invoke_kwargs_only_narrow_the_scope(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(store=core, user_id="ana", k=10, reinforce=False)
    assert users(retriever.invoke("seat on flights")) == {"ana"}
    with pytest.raises(InvalidMemoryError, match="would widen"):
        retriever.invoke("seat on flights", user_id="bob")
    assert users(retriever.invoke("seat", user_id="ana")) == {"ana"}  # the same value is fine
    narrowed = retriever.invoke("seat", tag_filter=["food"])
    assert [d.metadata["metadata"]["topic"] for d in narrowed] == ["food"]
    by_meta = retriever.invoke("seat", metadata_filter={"topic": "hotels"})
    assert [d.page_content for d in by_meta] == ["My hotel budget is 150 euros a night"]
    # an unscoped retriever can be scoped per call
    open_retriever = ValkeyMemoryRetriever(store=core, k=10, reinforce=False)
    assert users(open_retriever.invoke("seat", user_id="bob")) == {"bob"}


def test_metadata_and_tag_filters_of_the_retriever(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(
        store=core, k=10, reinforce=False, tag_filter=["travel"], metadata_filter={"n": {"$gte": 3}}
    )
    assert sorted(d.metadata["metadata"]["n"] for d in retriever.invoke("seat")) == [3, 4, 5]
    with pytest.raises(InvalidMemoryError, match="would widen"):
        retriever.invoke("seat", tag_filter=["travel", "food"])  # a superset would widen
    with pytest.raises(InvalidMemoryError, match="would replace"):
        retriever.invoke("seat", metadata_filter={"n": {"$gte": 0}})
    more = retriever.invoke("seat", metadata_filter={"topic": "flights"}, tag_filter=["travel"])
    assert sorted(d.metadata["metadata"]["n"] for d in more) == [5]


def test_narrow_rules() -> None:
    base = {
        "namespace_prefix": ("a", "b"),
        "created_after": 10.0,
        "created_before": 20.0,
        "kinds": ("semantic",),
    }
    assert narrow(base, {"namespace_prefix": ("a", "b", "c")})["namespace_prefix"] == ("a", "b", "c")
    for wider in (("a",), ("a", "bc"), ("x", "b", "c")):
        with pytest.raises(InvalidMemoryError):
            narrow(base, {"namespace_prefix": wider})
    assert narrow(base, {"created_after": 5.0, "created_before": 30.0}) == base
    assert narrow(base, {"created_after": 15.0})["created_after"] == 15.0
    assert narrow(base, {"created_before": 15.0})["created_before"] == 15.0
    with pytest.raises(InvalidMemoryError):
        narrow(base, {"kinds": ["semantic", "episodic"]})
    assert narrow(base, {"namespace": ["a", "b"], "user_id": None}) == {**base, "namespace": ("a", "b")}
    assert narrow({}, {"tag_filter": "food"}) == {"tag_filter": ("food",)}
    assert narrow({"user_id": "ana"}, {"user_id": "ana"}) == {"user_id": "ana"}
    for bad in ({"created_after": "yesterday"}, {"user_id": ""}, {"kinds": ["dream"]}, {"namespace": 3}):
        with pytest.raises(InvalidMemoryError):
            narrow(base, bad)


def test_recall_arguments_reject_unknown_and_bad_values(core: MemoryStore) -> None:
    retriever = ValkeyMemoryRetriever(store=core, user_id="ana", threshold=0.9, weights={"similarity": 1.0})
    args = recall_arguments(retriever, {"verbose": True})
    assert args == {
        "user_id": "ana", "k": 4, "offset": 0, "reinforce": True, "refresh_ttl": False,
        "threshold": 0.9, "weights": {"similarity": 1.0},
    }  # fmt: skip
    assert "threshold" not in recall_arguments(ValkeyMemoryRetriever(store=core), {})  # the store's gate
    with pytest.raises(InvalidMemoryError, match="unknown retriever arguments"):
        recall_arguments(retriever, {"top_k": 3})
    with pytest.raises(InvalidMemoryError):
        recall_arguments(retriever, {"tag_filter": "travel", "namespace": [""]})


def test_construction_errors(core: MemoryStore, acore: AsyncMemoryStore) -> None:
    with pytest.raises(ConfigurationError, match="needs store"):
        ValkeyMemoryRetriever()
    with pytest.raises(ConfigurationError, match="async_store="):
        ValkeyMemoryRetriever(store=acore)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="store="):
        ValkeyMemoryRetriever(async_store=core)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="invalid retriever scope"):
        ValkeyMemoryRetriever(store=core, user_id="")


# -- over the LangGraph store ------------------------------------------------------------------------------
def embed(texts: list[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in HashingEmbedder(DIMS).embed(texts)]


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["text"]}


def test_over_a_langgraph_store(valkey_url: str, unique_name: str) -> None:
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as lg:
        lg.setup()
        lg.put(("memories", "ana"), "seat", {"text": "window seat please", "source": "chat"})
        lg.put(("memories", "ana", "work"), "desk", {"text": "standing desk"})
        lg.put(("memories", "anabel"), "seat", {"text": "window seat please"})
        lg.put(("memories", "ana"), "raw", {"text": "window seat"}, index=False)  # never recalled
        retriever = ValkeyMemoryRetriever(store=lg, namespace_prefix=("memories", "ana"), k=10)
        docs = retriever.invoke("window seat")
        assert {(tuple(d.metadata["namespace"]), d.metadata["key"]) for d in docs} == {
            (("memories", "ana"), "seat"),
            (("memories", "ana", "work"), "desk"),
        }
        seat = next(d for d in docs if d.metadata["key"] == "seat")
        assert seat.page_content == "window seat please"
        assert seat.metadata["metadata"] == {"text": "window seat please", "source": "chat"}
        only_work = retriever.invoke("window seat", namespace_prefix=("memories", "ana", "work"))
        assert [d.metadata["key"] for d in only_work] == ["desk"]


async def test_over_an_async_langgraph_store(valkey_url: str, unique_name: str) -> None:
    async with AsyncValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as lg:
        await lg.setup()
        await lg.aput(("memories", "ana"), "seat", {"text": "window seat please"})
        retriever = ValkeyMemoryRetriever(async_store=lg, namespace=("memories", "ana"))
        assert [d.metadata["key"] for d in await retriever.ainvoke("seat")] == ["seat"]


def test_from_url_owns_its_stores(valkey_url: str, unique_name: str) -> None:
    with ValkeyMemoryRetriever.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS), mode="sync", user_id="ana", k=1
    ) as retriever:
        retriever.setup()
        assert retriever.store is not None and retriever.async_store is None
        retriever.store.remember("likes tea", user_id="ana")
        assert [d.page_content for d in retriever.invoke("tea")] == ["likes tea"]


async def test_from_url_async(valkey_url: str, unique_name: str) -> None:
    async with ValkeyMemoryRetriever.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS), user_id="ana", k=1
    ) as retriever:
        await retriever.asetup()
        assert retriever.async_store is not None and retriever.store is not None
        await retriever.async_store.remember("likes coffee", user_id="ana")
        assert [d.page_content for d in await retriever.ainvoke("coffee")] == ["likes coffee"]
        assert [d.page_content for d in retriever.invoke("coffee")] == ["likes coffee"]
