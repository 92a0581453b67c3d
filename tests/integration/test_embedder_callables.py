"""Plain functions as embedders, on the real Valkey, for the sync and the async store.

A store takes ``embedder=fn`` (sync or async, list of lists or numpy). Without ``dims=`` the dimension is
found by exactly one probe call in ``setup()`` (none at construction); with ``dims=`` there is no probe
and every embedding is checked against it. Misbehaving functions raise typed errors and write nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pytest
import valkey
from _support import Facade

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core._parse import parse_vector_dim
from agentmem_core.config import IndexConfig
from agentmem_core.embeddings import CallableEmbedder, HashingEmbedder
from agentmem_core.errors import ConfigurationError, DimensionMismatchError, EmbeddingError

pytestmark = pytest.mark.integration

DIMS = 24
HASH = HashingEmbedder(DIMS)
QUERY = "which seat does ana like"


class Counting:
    """A sync batch function (a list of lists) that counts its calls and records their threads."""

    def __init__(self, dims: int = DIMS) -> None:
        self.calls: list[list[str]] = []
        self.threads: list[int] = []
        self.hashing = HashingEmbedder(dims)

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        self.threads.append(threading.get_ident())
        return [[float(x) for x in row] for row in self.hashing.embed(texts)]


@pytest.fixture(params=["sync", "async"])
def colour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def raw(valkey_url: str) -> Iterator[valkey.Valkey]:
    client = valkey.Valkey.from_url(valkey_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def opened() -> AsyncIterator[list[Facade]]:
    """Stores opened by a test, closed after it."""
    stores: list[Facade] = []
    yield stores
    for store in stores:
        await store.close()


def make(colour: str, url: str, name: str, opened: list[Facade], **kwargs: Any) -> Facade:
    cls = MemoryStore if colour == "sync" else AsyncMemoryStore
    facade = Facade(cls.from_url(url, name=name, **kwargs))
    opened.append(facade)
    return facade


def keys_of(raw: valkey.Valkey, name: str) -> list[bytes]:
    return list(raw.scan_iter(match=f"am:{name}:*", count=1000))


def index_dims(raw: valkey.Valkey, name: str) -> int | None:
    return parse_vector_dim(raw.execute_command("FT.INFO", f"am_{name}_v2"))


async def roundtrip(store: Facade) -> None:
    """Remember two memories and recall the relevant one first."""
    await store.remember("Ana prefers the window seat", user_id="ana")
    await store.remember("Bo likes tea in the morning", user_id="ana")
    hits = await store.recall("seat preference window", user_id="ana", k=2)
    assert [h.memory.content for h in hits][0] == "Ana prefers the window seat"


# -- the dimension probe ------------------------------------------------------------------------------------
async def test_plain_function_probes_once_at_setup(
    colour: str, valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    fn = Counting()
    store = make(colour, valkey_url, unique_name, opened, embedder=fn)
    assert fn.calls == []  # nothing is called at construction
    await store.setup()
    assert len(fn.calls) == 1 and len(fn.calls[0]) == 1  # exactly one probe, of one text
    assert store.store.config.index.dims == DIMS
    assert index_dims(raw, unique_name) == DIMS  # the index was built from the probed dimension
    await store.setup()  # a second setup() knows the dimension: no new probe
    assert len(fn.calls) == 1
    await roundtrip(store)
    assert len(fn.calls) == 1 + 3  # two remembers and one recall, one call each


async def test_explicit_dims_skips_the_probe(
    colour: str, valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    fn = Counting()
    store = make(colour, valkey_url, unique_name, opened, embedder=fn, dims=DIMS)
    await store.setup()
    assert fn.calls == []
    assert index_dims(raw, unique_name) == DIMS
    await roundtrip(store)


async def test_index_config_dims_skips_the_probe(
    colour: str, valkey_url: str, unique_name: str, opened: list[Facade]
) -> None:
    fn = Counting()
    store = make(colour, valkey_url, unique_name, opened, embedder=fn, index=IndexConfig(dims=DIMS, m=8))
    await store.setup()
    assert fn.calls == []
    assert store.store.config.index.m == 8
    await roundtrip(store)


async def test_lambda(colour: str, valkey_url: str, unique_name: str, opened: list[Facade]) -> None:
    store = make(colour, valkey_url, unique_name, opened, embedder=lambda texts: HASH.embed(texts).tolist())
    await store.setup()
    assert store.store.config.index.dims == DIMS
    await roundtrip(store)


async def test_numpy_returning_function(
    colour: str, valkey_url: str, unique_name: str, opened: list[Facade]
) -> None:
    def embed(texts: list[str]) -> np.ndarray:
        return HASH.embed(texts).astype(np.float64) * 3.0  # any scale: the store normalises

    store = make(colour, valkey_url, unique_name, opened, embedder=embed)
    await store.setup()
    assert store.store.config.index.dims == DIMS
    await roundtrip(store)


async def test_async_function_in_the_async_store(
    valkey_url: str, unique_name: str, opened: list[Facade]
) -> None:
    calls: list[list[str]] = []

    async def embed(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        calls.append(texts)
        return HASH.embed(texts).tolist()

    store = make("async", valkey_url, unique_name, opened, embedder=embed)
    assert calls == []
    await store.asetup()
    assert len(calls) == 1
    assert store.store.config.index.dims == DIMS
    await roundtrip(store)


async def test_async_store_runs_a_sync_function_in_a_worker_thread(
    valkey_url: str, unique_name: str, opened: list[Facade]
) -> None:
    fn = Counting()
    store = make("async", valkey_url, unique_name, opened, embedder=fn)
    await store.setup()
    await store.remember("Ana prefers the window seat", user_id="ana")
    assert len(fn.threads) == 2
    assert threading.get_ident() not in fn.threads  # never on the event loop's thread


def test_sync_store_refuses_an_async_function_at_construction(valkey_url: str, unique_name: str) -> None:
    async def embed(texts: list[str]) -> list[list[float]]:
        return HASH.embed(texts).tolist()

    with pytest.raises(ConfigurationError, match="AsyncMemoryStore"):
        MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
    with pytest.raises(ConfigurationError, match="AsyncMemoryStore"):
        MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed, dims=DIMS)


# -- before setup() ---------------------------------------------------------------------------------------
OPERATIONS: list[tuple[str, Callable[[Facade], Any]]] = [
    ("remember", lambda s: s.remember("x", user_id="ana")),
    ("remember_many", lambda s: s.remember_many(["x"])),
    ("recall", lambda s: s.recall(QUERY)),
    ("recall_by_vector", lambda s: s.recall_by_vector([1.0] * DIMS)),
    ("get", lambda s: s.get("missing")),
    ("list", lambda s: s.list()),
    ("stats", lambda s: s.stats()),
    ("forget", lambda s: s.forget("missing")),
    ("set_live_config", lambda s: s.set_live_config(threshold=0.5)),
]


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=[label for label, _ in OPERATIONS])
async def test_operations_before_setup_say_to_call_setup(
    colour: str,
    valkey_url: str,
    unique_name: str,
    raw: valkey.Valkey,
    opened: list[Facade],
    label: str,
    operation: Callable[[Facade], Any],
) -> None:
    fn = Counting()
    store = make(colour, valkey_url, unique_name, opened, embedder=fn)
    with pytest.raises(ConfigurationError, match=r"call setup\(\)"):
        await operation(store)
    assert fn.calls == []
    assert keys_of(raw, unique_name) == []
    await store.setup()  # and the store is fine once set up
    assert len(fn.calls) == 1


# -- misbehaving functions ------------------------------------------------------------------------------
async def test_explicit_dims_and_a_function_of_another_dimension(
    colour: str, valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    fn = Counting(DIMS - 1)
    store = make(colour, valkey_url, unique_name, opened, embedder=fn, dims=DIMS)
    await store.setup()  # no probe, so the index is built for DIMS
    assert index_dims(raw, unique_name) == DIMS
    with pytest.raises(EmbeddingError, match=f"{DIMS - 1}-dimensional vectors; expected {DIMS}"):
        await store.remember("Ana prefers the window seat", user_id="ana")
    with pytest.raises(EmbeddingError):
        await store.remember_many(["one", "two"])
    with pytest.raises(EmbeddingError):
        await store.recall(QUERY)
    assert keys_of(raw, unique_name) == []


async def test_a_function_whose_dimension_changes_after_the_probe(
    colour: str, valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    def unstable(texts: list[str]) -> list[list[float]]:
        dims = DIMS if texts == ["agentmem dimension probe"] else DIMS + 3
        return HashingEmbedder(dims).embed(texts).tolist()

    store = make(colour, valkey_url, unique_name, opened, embedder=unstable)
    await store.setup()
    assert store.store.config.index.dims == DIMS
    with pytest.raises(EmbeddingError, match="expected 24"):
        await store.remember("Ana prefers the window seat", user_id="ana")
    assert keys_of(raw, unique_name) == []


async def test_probe_against_an_existing_index_of_another_dimension(
    colour: str, valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    first = make(colour, valkey_url, unique_name, opened, embedder=HashingEmbedder(DIMS))
    await first.setup()
    other = make(colour, valkey_url, unique_name, opened, embedder=Counting(DIMS * 2))
    with pytest.raises(DimensionMismatchError) as raised:
        await other.setup()
    assert (raised.value.existing, raised.value.configured) == (DIMS, DIMS * 2)
    assert keys_of(raw, unique_name) == []


async def test_a_function_that_raises(
    colour: str, valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("provider is down")

    probing = make(colour, valkey_url, unique_name, opened, embedder=broken)
    with pytest.raises(EmbeddingError, match="provider is down") as raised:
        await probing.setup()
    assert isinstance(raised.value.__cause__, RuntimeError)
    with pytest.raises(ConfigurationError, match=r"call setup\(\)"):  # still unknown: not half set up
        await probing.remember("x")

    explicit = make(colour, valkey_url, unique_name, opened, embedder=broken, dims=DIMS)
    await explicit.setup()
    with pytest.raises(EmbeddingError, match="provider is down") as raised:
        await explicit.remember("Ana prefers the window seat", user_id="ana")
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert keys_of(raw, unique_name) == []


async def test_an_async_function_that_raises(
    valkey_url: str, unique_name: str, raw: valkey.Valkey, opened: list[Facade]
) -> None:
    async def broken(texts: list[str]) -> list[list[float]]:
        raise ConnectionError("socket closed")

    store = make("async", valkey_url, unique_name, opened, embedder=broken)
    with pytest.raises(EmbeddingError, match="socket closed") as raised:
        await store.asetup()
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert keys_of(raw, unique_name) == []


async def test_a_callable_embedder_without_dims_is_probed_too(
    colour: str, valkey_url: str, unique_name: str, opened: list[Facade]
) -> None:
    fn = Counting()
    embedder = CallableEmbedder(fn)
    store = make(colour, valkey_url, unique_name, opened, embedder=embedder)
    assert store.store.embedder is embedder
    await store.setup()
    assert len(fn.calls) == 1 and embedder.dims == DIMS
    await roundtrip(store)


class _QueryAware:
    """Documents by HashingEmbedder; queries through embed_queries / aembed_queries (as e5 prefixes do)."""

    dims = 64

    def __init__(self) -> None:
        self.hash = HashingEmbedder(64)
        self.calls: list[tuple[str, list[str]]] = []

    def embed(self, texts: Any) -> Any:
        self.calls.append(("embed", list(texts)))
        return self.hash.embed(texts)

    async def aembed(self, texts: Any) -> Any:
        self.calls.append(("aembed", list(texts)))
        return self.hash.embed(texts)

    def _query(self, texts: Any) -> Any:  # "query: ..." maps onto the document it asks for
        return self.hash.embed([t.removeprefix("query: ") for t in texts])

    def embed_queries(self, texts: Any) -> Any:
        self.calls.append(("embed_queries", list(texts)))
        return self._query(texts)

    async def aembed_queries(self, texts: Any) -> Any:
        self.calls.append(("aembed_queries", list(texts)))
        return self._query(texts)


@pytest.mark.parametrize("colour", ["sync", "async"])
async def test_recall_embeds_its_query_with_the_query_method(
    colour: str, valkey_url: str, unique_name: str, opened: list[Facade]
) -> None:
    embedder = _QueryAware()
    cls = MemoryStore if colour == "sync" else AsyncMemoryStore
    mem = Facade(cls.from_url(valkey_url, name=unique_name, embedder=embedder))
    opened.append(mem)
    await mem.setup()
    memory_id = await mem.remember("window seat on long flights", user_id="u")
    await mem.remember("aisle seat please", user_id="u")
    result = await mem.recall("query: window seat on long flights", k=1, user_id="u", reinforce=False)
    assert result.hits[0].memory.id == memory_id and result.hits[0].distance == pytest.approx(0, abs=1e-5)
    doc, query = ("embed", "embed_queries") if colour == "sync" else ("aembed", "aembed_queries")
    assert [name for name, _ in embedder.calls] == [doc, doc, query]
    await mem.update(memory_id, content="window seat, always")  # a document again
    assert embedder.calls[-1] == (doc, ["window seat, always"])
