"""Bad input against the real Valkey: every rejection is a typed error and NOTHING is written.

"Nothing written" is checked byte for byte: the DUMP of every key under the store's prefix ``am:<name>:``
(memories, counters, scope sets, counts, the scope registry) is the same before and after the call, and
``stats()`` / ``list()`` still show only the seeded memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from agentmem_core import AsyncMemoryStore, IndexConfig, MemoryStore
from agentmem_core.embeddings import CallableEmbedder, HashingEmbedder
from agentmem_core.errors import (
    AgentMemError,
    DimensionMismatchError,
    EmbeddingError,
    IndexNotFoundError,
    InvalidMemoryError,
    InvalidVectorError,
    NotFoundError,
    QueryTooComplexError,
    SchemaMismatchError,
    SearchModuleUnavailableError,
)
from agentmem_core.query import MemoryFilter, render_query

pytestmark = pytest.mark.integration

DIMS = 64
SEED_TEXT = "prefers the window seat"
QUERY = "seat preference"
VALID = [{"content": f"valid memory number {n}", "user_id": "u1"} for n in range(5)]


def snapshot(store: MemoryStore) -> dict[bytes, bytes | None]:
    """Every key of the store (SCAN ``am:<name>:*``) with its DUMP."""
    keys = store.client.scan_iter(match=f"am:{store.config.name}:*", count=1000)
    return {k: store.client.dump(k) for k in keys}


class Seeded:
    """A store holding one memory, and the proof that nothing else was written since."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.memory_id = store.remember(SEED_TEXT, user_id="u1", tags=["seed"], metadata={"n": 1})
        self.before = snapshot(store)
        assert len(self.before) >= 4  # memory hash, scope set, counts, registry

    def assert_nothing_written(self) -> None:
        assert snapshot(self.store) == self.before
        assert self.store.stats().total == 1
        assert [m.id for m in self.store.list().memories] == [self.memory_id]


@pytest.fixture
def seeded(store: MemoryStore) -> Iterator[Seeded]:
    s = Seeded(store)
    yield s
    s.assert_nothing_written()  # every test in this file leaves the store as seeded


# -- invalid memories: single writes and a batch whose item 3 of 5 is invalid ---------------------------
BAD_MEMORIES: list[Any] = [
    pytest.param({"content": ""}, id="content-empty"),
    pytest.param({"content": " "}, id="content-space"),
    pytest.param({"content": "\t\n \r"}, id="content-whitespace"),
    pytest.param({"content": None}, id="content-None"),
    pytest.param({"content": b"bytes"}, id="content-bytes"),
    pytest.param({"content": "x" * 32_769}, id="content-oversized"),
    pytest.param({"importance": -0.01}, id="importance-negative"),
    pytest.param({"importance": 1.0001}, id="importance-above-1"),
    pytest.param({"importance": math.nan}, id="importance-nan"),
    pytest.param({"importance": math.inf}, id="importance-inf"),
    pytest.param({"importance": -math.inf}, id="importance-minus-inf"),
    pytest.param({"importance": True}, id="importance-True"),
    pytest.param({"importance": False}, id="importance-False"),
    pytest.param({"importance": "0.5"}, id="importance-str"),
    pytest.param({"importance": None}, id="importance-None"),
    pytest.param({"kind": "nope"}, id="kind-unknown"),
    pytest.param({"kind": ""}, id="kind-empty"),
    pytest.param({"kind": None}, id="kind-None"),
    pytest.param({"kind": 3}, id="kind-int"),
    pytest.param({"kind": "semantic "}, id="kind-trailing-space"),
    pytest.param({"tags": [f"t{i}" for i in range(65)]}, id="tags-65"),
    pytest.param({"tags": ["x" * 257]}, id="tag-oversized"),
    pytest.param({"tags": "single-string"}, id="tags-str"),
    pytest.param({"tags": ["ok", None]}, id="tag-None"),
    pytest.param({"tags": ["ok", 3]}, id="tag-int"),
    pytest.param({"metadata": {"a": {1, 2}}}, id="metadata-set"),
    pytest.param({"metadata": {"a": b"x"}}, id="metadata-bytes"),
    pytest.param({"metadata": {"a": object()}}, id="metadata-object"),
    pytest.param({"metadata": {1: "x"}}, id="metadata-int-key"),
    pytest.param({"metadata": {"a": math.nan}}, id="metadata-nan"),
    pytest.param({"metadata": {"a": [1, math.inf]}}, id="metadata-nested-inf"),
    pytest.param({"metadata": [("a", 1)]}, id="metadata-list"),
    pytest.param({"metadata": "{}"}, id="metadata-str"),
    pytest.param({"metadata": {"a": "x" * 32_768}}, id="metadata-oversized"),
    pytest.param({"user_id": "u" * 513}, id="user-oversized"),
    pytest.param({"thread_id": "t" * 513}, id="thread-oversized"),
    pytest.param({"agent_id": 7}, id="agent-int"),
    pytest.param({"source": "s" * 513}, id="source-oversized"),
    pytest.param({"namespace": ("a", "n" * 513)}, id="namespace-label-oversized"),
    pytest.param({"namespace": ("a", None)}, id="namespace-label-None"),
    pytest.param({"key": "k" * 513}, id="key-oversized"),
    pytest.param({"key": 5}, id="key-int"),
    pytest.param({"ttl": 0}, id="ttl-zero"),
    pytest.param({"ttl": -1}, id="ttl-negative"),
    pytest.param({"ttl": math.nan}, id="ttl-nan"),
    pytest.param({"ttl": math.inf}, id="ttl-inf"),
    pytest.param({"ttl": "60"}, id="ttl-str"),
    pytest.param({"created_at": math.nan}, id="created-nan"),
    pytest.param({"created_at": math.inf}, id="created-inf"),
    pytest.param({"created_at": True}, id="created-True"),
    pytest.param({"created_at": "2024-01-01"}, id="created-str"),
    pytest.param(
        {"ttl": 1e17},
        id="ttl-beyond-pexpire-range",
    ),
    pytest.param(
        {"ttl": True},
        id="ttl-True",
    ),
    pytest.param(
        {"content": "lone surrogate \ud800"},
        id="content-surrogate",
    ),
    pytest.param(
        {"user_id": "\udfff"},
        id="user-surrogate",
    ),
    pytest.param(
        {"tags": ["ok", "\ud83d"]},
        id="tag-surrogate",
    ),
    pytest.param(
        {"metadata": {"a": "\ud800"}},
        id="metadata-surrogate",
    ),
    pytest.param(
        {"namespace": 5},
        id="namespace-int",
    ),
    pytest.param(
        {"tags": 5},
        id="tags-int",
    ),
]


@pytest.mark.parametrize("bad", BAD_MEMORIES)
def test_invalid_memory_is_rejected_and_nothing_is_written(seeded: Seeded, bad: dict[str, Any]) -> None:
    store = seeded.store
    with pytest.raises(InvalidMemoryError):
        store.remember(**{"content": "a valid memory", "user_id": "u1", **bad})
    seeded.assert_nothing_written()
    batch = [*VALID[:2], {**VALID[2], **bad}, *VALID[3:]]
    with pytest.raises(InvalidMemoryError):
        store.remember_many(batch)
    seeded.assert_nothing_written()


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(5, id="int"),
        pytest.param(None, id="None"),
        pytest.param({"content": "x", "bogus": 1}, id="unknown-keyword"),
        pytest.param({"user_id": "u1"}, id="no-content"),
    ],
)
# fmt: skip
def test_malformed_batch_items_are_rejected(seeded: Seeded, item: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.remember_many([*VALID[:2], item, *VALID[3:]])


async def test_async_invalid_batch_writes_nothing(astore: AsyncMemoryStore) -> None:
    seed = await astore.remember(SEED_TEXT, user_id="u1")
    for bad in ({"importance": 2.0}, {"kind": "nope"}, {"content": "  "}, {"tags": [""]}, {"user_id": ""}):
        with pytest.raises(InvalidMemoryError):
            await astore.remember_many([*VALID[:2], {**VALID[2], **bad}, *VALID[3:]])
        with pytest.raises(InvalidMemoryError):
            await astore.remember(**{"content": "a valid memory", **bad})
    with pytest.raises(InvalidVectorError):
        await astore.remember_many(
            VALID, vectors=[[1.0] * DIMS] * 2 + [[math.nan] * DIMS] + [[1.0] * DIMS] * 2
        )
    assert (await astore.stats()).total == 1
    assert [m.id for m in (await astore.list()).memories] == [seed]


# -- vectors --------------------------------------------------------------------------------------------
def _rows(bad_row: Any) -> list[Any]:
    rng = np.random.default_rng(7)
    rows: list[Any] = [list(rng.normal(size=DIMS)) for _ in range(5)]
    rows[2] = bad_row
    return rows


BAD_VECTOR_BATCHES: list[Any] = [
    pytest.param([[0.5] * (DIMS - 1)] * 5, id="all-wrong-dim"),
    pytest.param([[0.5] * (DIMS + 1)] * 5, id="all-too-long"),
    pytest.param(_rows([0.5] * (DIMS - 1)), id="row3-short"),
    pytest.param(_rows([0.5] * DIMS + [0.5]), id="row3-long"),
    pytest.param(_rows([math.nan] + [0.5] * (DIMS - 1)), id="row3-nan"),
    pytest.param(_rows([math.inf] + [0.5] * (DIMS - 1)), id="row3-inf"),
    pytest.param(_rows([-math.inf] * DIMS), id="row3-minus-inf"),
    pytest.param(_rows([0.0] * DIMS), id="row3-zero"),
    pytest.param(_rows(["x"] * DIMS), id="row3-strings"),
    pytest.param(_rows(None), id="row3-None"),
    pytest.param(np.full((5, DIMS), np.nan, dtype=np.float32), id="ndarray-nan"),
    pytest.param(np.zeros((5, DIMS)), id="ndarray-zero"),
    pytest.param(np.ones((5, DIMS, 1)), id="ndarray-3d"),
    pytest.param([0.5] * DIMS, id="one-flat-vector-for-5"),
    pytest.param([], id="no-vectors-for-5"),
]


@pytest.mark.parametrize("vectors", BAD_VECTOR_BATCHES)
def test_bad_vectors_in_remember_many(seeded: Seeded, vectors: Any) -> None:
    with pytest.raises(InvalidVectorError):
        seeded.store.remember_many(VALID, vectors=vectors)


@pytest.mark.parametrize(
    "vectors",
    [
        pytest.param([[0.5] * DIMS] * 4, id="4-for-5"),
        pytest.param([[0.5] * DIMS] * 6, id="6-for-5"),
    ],
)
def test_wrong_number_of_caller_vectors(seeded: Seeded, vectors: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.remember_many(VALID, vectors=vectors)


def test_good_caller_vectors_are_accepted(store: MemoryStore) -> None:
    """Control for the cases above: the same shapes with valid values are stored."""
    ids = store.remember_many(VALID, vectors=_rows([0.25] * DIMS))
    assert len(set(ids)) == 5
    assert store.stats().total == 5


BAD_QUERY_VECTORS: list[Any] = [
    pytest.param([0.5] * (DIMS - 1), id="short"),
    pytest.param([0.5] * (DIMS + 1), id="long"),
    pytest.param([], id="empty"),
    pytest.param([math.nan] * DIMS, id="nan"),
    pytest.param([0.5] * (DIMS - 1) + [math.inf], id="inf"),
    pytest.param([0.0] * DIMS, id="zero"),
    pytest.param(np.zeros(DIMS, dtype=np.float32), id="ndarray-zero"),
    pytest.param([[0.5] * DIMS] * 2, id="two-vectors"),
    pytest.param(
        ["x"] * DIMS,
        id="strings",
    ),
    pytest.param(
        None,
        id="None",
    ),
]


@pytest.mark.parametrize("vector", BAD_QUERY_VECTORS)
def test_bad_query_vectors(seeded: Seeded, vector: Any) -> None:
    with pytest.raises(InvalidVectorError):
        seeded.store.recall_by_vector(vector, reinforce=True)


# -- embedders that misbehave -----------------------------------------------------------------------------
def _embedder_store(valkey_url: str, name: str, fn: Callable[[Sequence[str]], Any]) -> MemoryStore:
    store = MemoryStore.from_url(valkey_url, name=name, embedder=CallableEmbedder(fn, dims=DIMS))
    store.setup()
    return store


def _good(texts: Sequence[str]) -> Any:
    return HashingEmbedder(DIMS).embed(texts)


def _boom(texts: Sequence[str]) -> Any:
    raise RuntimeError("provider is down")


MISBEHAVING: list[Any] = [
    pytest.param(lambda t: _good(t)[:-1], EmbeddingError, id="one-vector-too-few"),
    pytest.param(lambda t: np.vstack([_good(t), _good(t[:1])]), EmbeddingError, id="one-vector-too-many"),
    pytest.param(lambda t: [], (EmbeddingError, InvalidVectorError), id="no-vectors"),
    pytest.param(_boom, EmbeddingError, id="raises"),
    pytest.param(lambda t: _good(t)[:, :-1], (EmbeddingError, InvalidVectorError), id="wrong-dimension"),
    pytest.param(lambda t: _good(t) * np.nan, (EmbeddingError, InvalidVectorError), id="nan"),
    pytest.param(lambda t: _good(t) * 0.0, (EmbeddingError, InvalidVectorError), id="zero"),
    pytest.param(lambda t: None, (EmbeddingError, InvalidVectorError), id="returns-None"),
]


@pytest.mark.parametrize(("fn", "error"), MISBEHAVING)
def test_misbehaving_embedder_raises_typed_errors_and_writes_nothing(
    seeded: Seeded, valkey_url: str, fn: Callable[[Sequence[str]], Any], error: Any
) -> None:
    broken = _embedder_store(valkey_url, seeded.store.config.name, fn)
    try:
        with pytest.raises(error) as raised:
            broken.remember_many(VALID)
        assert isinstance(raised.value, AgentMemError)
        with pytest.raises(error):
            broken.remember("a valid memory", user_id="u1")
        with pytest.raises(error):
            broken.recall(QUERY, user_id="u1")
        if fn is _boom:
            assert isinstance(raised.value.__cause__, RuntimeError)
            assert "provider is down" in str(raised.value)
    finally:
        broken.close()


async def test_async_embedder_that_raises(valkey_url: str, unique_name: str) -> None:
    async def afail(texts: Sequence[str]) -> Any:
        raise ConnectionError("socket closed")

    store = AsyncMemoryStore.from_url(
        valkey_url, name=unique_name, embedder=CallableEmbedder(_good, dims=DIMS, afn=afail)
    )
    await store.setup()
    try:
        with pytest.raises(EmbeddingError) as raised:
            await store.remember_many(VALID)
        assert isinstance(raised.value.__cause__, ConnectionError)
        with pytest.raises(EmbeddingError):
            await store.recall(QUERY)
        assert (await store.stats()).total == 0
        assert [k async for k in store.client.scan_iter(match=f"am:{unique_name}:*")] == []
    finally:
        await store.close()


# -- reads: k, limit, threshold, filters ------------------------------------------------------------------
BAD_COUNTS = [0, -1, 10_001, 2.0, True, "5", None]


@pytest.mark.parametrize("k", BAD_COUNTS, ids=repr)
def test_bad_k(seeded: Seeded, k: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.recall(QUERY, k=k)
    with pytest.raises(InvalidMemoryError):
        seeded.store.recall_by_vector([0.5] * DIMS, k=k)


@pytest.mark.parametrize("limit", BAD_COUNTS, ids=repr)
def test_bad_limit(seeded: Seeded, limit: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.list(limit=limit)


@pytest.mark.parametrize(
    "threshold",
    [
        -0.01,
        2.01,
        math.nan,
        math.inf,
        pytest.param(
            "0.5",
        ),
    ],
    ids=repr,
)
def test_bad_threshold(seeded: Seeded, threshold: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.recall(QUERY, threshold=threshold)


BAD_FILTERS: list[Any] = [
    pytest.param({"metadata": {"n": {"$regex": "1"}}}, id="op-regex"),
    # $in / $nin / $exists / $contains are operators of the filter language: bad operands are errors
    pytest.param({"metadata": {"n": {"$in": 1}}}, id="op-in-not-a-list"),
    pytest.param({"metadata": {"n": {"$eq": 1, "$nin": "ab"}}}, id="op-nin-string"),
    pytest.param({"metadata": {"n": {"$exists": 1}}}, id="op-exists-not-bool"),
    pytest.param({"metadata": {"n": {"$gt": [1]}}}, id="op-gt-list"),
    pytest.param({"metadata": {"n": {"$lte": None}}}, id="op-lte-null"),
    pytest.param({"metadata": {"n": {"$in": [1, math.nan]}}}, id="op-in-nan"),
    pytest.param({"metadata": {"n": {"$contains": {"a": math.inf}}}}, id="op-contains-inf"),
    pytest.param({"metadata": {"n": b"bytes"}}, id="metadata-bytes-value"),
    pytest.param({"metadata": "n=1"}, id="metadata-not-a-mapping"),
    pytest.param({"metadata": {"n": {"$GT": 1}}}, id="op-uppercase"),
    pytest.param({"metadata": {"n": math.nan}}, id="metadata-nan"),
    pytest.param({"metadata": {"n": {"$lt": math.inf}}}, id="metadata-inf"),
    pytest.param({"metadata": {1: 1}}, id="metadata-int-key"),
    pytest.param({"colour": "red"}, id="unknown-filter"),
    pytest.param({"kinds": ["nope"]}, id="unknown-kind"),
    pytest.param({"kinds": ["semantic", None]}, id="kind-None"),
    pytest.param({"created_after": "yesterday"}, id="created-after-str"),
    pytest.param({"created_after": math.nan}, id="created-after-nan"),
    pytest.param({"created_before": math.inf}, id="created-before-inf"),
    pytest.param({"created_before": True}, id="created-before-bool"),
    pytest.param({"tags": "seed"}, id="tags-str"),
    pytest.param({"tags": ["seed", None]}, id="tag-None"),
    pytest.param({"user_id": 5}, id="user-int"),
    pytest.param({"namespace_prefix": ("a", None)}, id="prefix-None-label"),
    pytest.param({"filter": "user_id=u1"}, id="filter-not-MemoryFilter"),
    pytest.param({"filter": MemoryFilter(user_id="u1"), "user_id": "u1"}, id="filter-and-keywords"),
]


@pytest.mark.parametrize("filters", BAD_FILTERS)
def test_bad_filters(seeded: Seeded, filters: dict[str, Any]) -> None:
    store = seeded.store
    with pytest.raises(InvalidMemoryError):
        store.recall(QUERY, **filters)
    with pytest.raises(InvalidMemoryError):
        store.list(**filters)
    with pytest.raises(InvalidMemoryError):
        store.forget_by_scope(**filters)


def test_forget_by_scope_without_any_filter_is_refused(seeded: Seeded) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.forget_by_scope()
    with pytest.raises(InvalidMemoryError):
        seeded.store.forget_by_scope(filter=MemoryFilter())


@pytest.mark.parametrize("cursor", ["", "x", "1.0", "1.0:zz", "nan:" + "a" * 31, ":" + "a" * 32], ids=repr)
def test_bad_list_cursor(seeded: Seeded, cursor: str) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.list(cursor=cursor)


def test_query_too_complex_exactly_at_the_engine_budget(seeded: Seeded) -> None:
    store = seeded.store
    budget = store.engine.max_leaves
    assert store.engine.kind == "redisearch" and budget == 64
    # a KNN recall spends no leaf on "not expired" (expired rows are dropped on the client); each scalar
    # metadata equality is one leaf
    fits = {f"k{i}": i for i in range(budget)}
    assert list(store.recall(QUERY, metadata=fits)) == []
    with pytest.raises(QueryTooComplexError) as raised:
        store.recall(QUERY, metadata={**fits, "one_more": 1})
    assert str(budget) in str(raised.value)
    with pytest.raises(QueryTooComplexError):
        store.recall_by_vector([0.5] * DIMS, metadata={f"k{i}": i for i in range(budget + 10)})
    # the seeded memory is still found with a filter inside the budget
    assert [h.memory.id for h in store.recall(QUERY, metadata={"n": 1}, reinforce=False)] == [
        seeded.memory_id
    ]


def test_render_query_budget_on_the_portable_engine() -> None:
    flt = MemoryFilter.build(user_id="u", thread_id="t", agent_id="a", tags=["x"], metadata={"a": 1, "b": 2})
    leaves = flt.leaves(now=1_700_000_000.0)
    assert len(leaves) == 7
    assert render_query(leaves, max_leaves=7).count("@") == 7
    with pytest.raises(QueryTooComplexError):
        render_query(leaves, max_leaves=6)
    eight = MemoryFilter.build(user_id="u", thread_id="t", agent_id="a", source="s", tags=["x"],
                               metadata={"a": 1, "b": 2}).leaves(now=1.0)  # fmt: skip
    assert len(eight) == 8
    render_query(eight, max_leaves=8)
    nine = MemoryFilter.build(user_id="u", thread_id="t", agent_id="a", source="s", tags=["x"],
                              kinds=["episodic"], metadata={"a": 1, "b": 2}).leaves(now=1.0)  # fmt: skip
    with pytest.raises(QueryTooComplexError):
        render_query(nine, max_leaves=8)


# -- ids --------------------------------------------------------------------------------------------------
BAD_IDS: list[Any] = ["", None, 5, b"a" * 32, "x" * 513, "\ud800", ["a" * 32], 1.5]
"""Values that are no id at all: a typed error, before anything is sent."""

UNKNOWN_IDS: list[Any] = [
    "zz", "A" * 32, "a" * 31, "a" * 33, "g" * 32, "../" * 10 + "aa", "*", "a" * 16 + "*" * 16,
    "a" * 16 + "{" + "a" * 15, " " + "a" * 31, "=>[KNN 1 @embedding $vec]", "am:x:m:{a}b",
]  # fmt: skip
"""Caller ids (any text but agentmem's 32-hex shape) that name no memory."""


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
def test_bad_ids(seeded: Seeded, bad_id: Any) -> None:
    store = seeded.store
    calls: list[Callable[[Any], Any]] = [
        store.get,
        store.forget,
        lambda i: store.get_many([seeded.memory_id, i]),
        lambda i: store.forget_many([seeded.memory_id, i]),
        lambda i: store.update(i, importance=0.9),
    ]
    for call in calls:
        with pytest.raises(InvalidMemoryError):
            call(bad_id)
    assert store.get(seeded.memory_id) is not None


@pytest.mark.parametrize("unknown", UNKNOWN_IDS, ids=repr)
def test_ids_naming_nothing_touch_nothing(seeded: Seeded, unknown: str) -> None:
    # any text is a caller's global id: one nobody holds names nothing, and never another memory
    store = seeded.store
    assert store.get(unknown) is None
    assert store.get_many([unknown, seeded.memory_id])[0] is None
    assert store.forget(unknown) is False
    assert store.forget_many([unknown]) == 0
    with pytest.raises(NotFoundError):
        store.update(unknown, importance=0.9)
    memory = store.get(seeded.memory_id)
    assert memory is not None and memory.importance != 0.9


def test_an_id_with_a_trailing_newline_names_nothing(seeded: Seeded) -> None:
    for near in (seeded.memory_id + "\n", seeded.memory_id.upper(), " " + seeded.memory_id):
        assert seeded.store.get(near) is None
        assert seeded.store.forget(near) is False
    assert seeded.store.get(seeded.memory_id) is not None


def test_well_formed_but_missing_ids(seeded: Seeded) -> None:
    store = seeded.store
    missing = seeded.memory_id[:16] + "0" * 16
    assert store.get(missing) is None
    assert store.get_many([missing, seeded.memory_id])[0] is None
    assert store.forget(missing) is False
    assert store.forget_many(["f" * 32, missing]) == 0
    with pytest.raises(NotFoundError):
        store.update(missing, importance=0.9)


@pytest.mark.parametrize(
    "changes",
    [
        {"importance": 1.5},
        {"importance": math.nan},
        {"content": ""},
        {"content": "   "},
        {"kind": "nope"},
        {"tags": [""]},
        {"tags": [f"t{i}" for i in range(65)]},
        {"metadata": {"a": {1}}},
        {"ttl": -5},
    ],
    ids=repr,
)
def test_invalid_update_changes_nothing(seeded: Seeded, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidMemoryError):
        seeded.store.update(seeded.memory_id, **changes)
    memory = seeded.store.get(seeded.memory_id)
    assert memory is not None and memory.content == SEED_TEXT and memory.tags == ("seed",)


# -- servers and indexes ----------------------------------------------------------------------------------
def test_server_without_search_module(plain_valkey_url: str, unique_name: str) -> None:
    store = MemoryStore.from_url(plain_valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    try:
        with pytest.raises(SearchModuleUnavailableError) as raised:
            store.setup()
        assert "search module" in str(raised.value)
        with pytest.raises(SearchModuleUnavailableError):
            store.recall(QUERY)
        assert list(store.client.scan_iter(match=f"am:{unique_name}:*")) == []
    finally:
        store.close()


async def test_async_server_without_search_module(plain_valkey_url: str, unique_name: str) -> None:
    store = AsyncMemoryStore.from_url(plain_valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    try:
        with pytest.raises(SearchModuleUnavailableError):
            await store.setup()
    finally:
        await store.close()


def test_dimension_mismatch_names_both_dimensions(seeded: Seeded, valkey_url: str) -> None:
    other = MemoryStore.from_url(valkey_url, name=seeded.store.config.name, embedder=HashingEmbedder(32))
    try:
        with pytest.raises(DimensionMismatchError) as raised:
            other.setup()
        assert (raised.value.existing, raised.value.configured) == (64, 32)
        message = str(raised.value)
        assert "64" in message and "32" in message
        assert seeded.store.setup().kind == "redisearch"  # the right dimension still validates
    finally:
        other.close()


@pytest.mark.parametrize(("created", "configured"), [("HNSW", "FLAT"), ("FLAT", "HNSW")])
def test_an_index_of_another_algorithm_is_a_schema_mismatch(
    valkey_url: str, unique_name: str, created: str, configured: str
) -> None:
    """An exact (FLAT) store must not silently search an approximate index, nor the reverse."""
    first = MemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS),
        index=IndexConfig(dims=DIMS, algorithm=created),  # type: ignore[arg-type]
    )  # fmt: skip
    other = MemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS),
        index=IndexConfig(dims=DIMS, algorithm=configured),  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        first.setup()
        first.remember("the index's first memory", user_id="u1")
        with pytest.raises(SchemaMismatchError) as raised:
            other.setup()
        assert created in str(raised.value) and configured in str(raised.value)
        with pytest.raises(SchemaMismatchError, match="setup\\(\\) failed"):
            other.remember("not written under an index of another algorithm", user_id="u1")
        assert first.count(user_id="u1") == 1
        assert first.setup().kind == "redisearch"  # the right algorithm still validates
    finally:
        first.close()
        other.close()


def test_a_store_without_an_algorithm_uses_the_index_it_finds(valkey_url: str, unique_name: str) -> None:
    """``algorithm=None`` (the default) creates HNSW, and opens an existing index as what it is."""
    flat = MemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS),
        index=IndexConfig(dims=DIMS, algorithm="FLAT"),
    )  # fmt: skip
    adopting = MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    fresh = MemoryStore.from_url(valkey_url, name=unique_name + "n", embedder=HashingEmbedder(DIMS))
    try:
        flat.setup()
        flat.remember("a memory of the exact index", user_id="u1")
        adopting.setup()
        assert adopting.config.index.algorithm is None and adopting.spec.config.algorithm == "FLAT"
        hits = adopting.recall("a memory of the exact index", user_id="u1")
        assert [h.memory.content for h in hits] == ["a memory of the exact index"]
        fresh.setup()
        assert fresh.spec.config.algorithm == "HNSW"
        again = MemoryStore.from_url(
            valkey_url, name=unique_name + "n", embedder=HashingEmbedder(DIMS),
            index=IndexConfig(dims=DIMS, algorithm="FLAT"),
        )  # fmt: skip
        with again, pytest.raises(SchemaMismatchError, match="HNSW"):
            again.setup()
    finally:
        for store in (flat, adopting, fresh):
            store.close()


def test_a_store_not_set_up_searches_another_adapters_flat_index(valkey_url: str, unique_name: str) -> None:
    """Before ``setup()`` the algorithm is unknown: no HNSW option goes to an index that may be FLAT."""
    flat = MemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS),
        index=IndexConfig(dims=DIMS, default_algorithm="FLAT"),
    )  # fmt: skip
    unset = MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    try:
        flat.setup()
        flat.remember("a memory of the exact index", user_id="u1")
        hits = unset.recall("a memory of the exact index", user_id="u1")  # no setup(): refused before
        assert [h.memory.content for h in hits] == ["a memory of the exact index"]
        assert [
            h.memory.content
            for h in unset.recall_by_vector(
                HashingEmbedder(DIMS).embed(["a memory of the exact index"])[0], user_id="u1"
            )
        ] == ["a memory of the exact index"]
    finally:
        flat.close()
        unset.close()


async def test_async_index_of_another_algorithm_is_a_schema_mismatch(
    valkey_url: str, unique_name: str
) -> None:
    first = AsyncMemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS), index=IndexConfig(dims=DIMS)
    )
    other = AsyncMemoryStore.from_url(
        valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS),
        index=IndexConfig(dims=DIMS, algorithm="FLAT"),
    )  # fmt: skip
    try:
        await first.setup()
        with pytest.raises(SchemaMismatchError, match="HNSW"):
            await other.setup()
        with pytest.raises(SchemaMismatchError, match="setup\\(\\) failed"):
            await other.recall(QUERY)
    finally:
        await first.close()
        await other.close()


def test_store_whose_setup_failed_refuses_to_write(seeded: Seeded, valkey_url: str) -> None:
    """Hashes with 32-d vectors under a 64-d index would be silently unsearchable: refuse them."""
    other = MemoryStore.from_url(valkey_url, name=seeded.store.config.name, embedder=HashingEmbedder(32))
    try:
        with pytest.raises(DimensionMismatchError):
            other.setup()
        with pytest.raises(SchemaMismatchError, match="setup\\(\\) failed"):
            other.remember("written with the wrong dimension", user_id="u1")
        with pytest.raises(SchemaMismatchError):
            other.remember_many([{"content": "also wrong", "user_id": "u1"}])
        with pytest.raises(SchemaMismatchError):
            other.recall(QUERY, user_id="u1")
    finally:
        other.close()


async def test_async_dimension_mismatch(store: MemoryStore, valkey_url: str) -> None:
    other = AsyncMemoryStore.from_url(valkey_url, name=store.config.name, embedder=HashingEmbedder(128))
    try:
        with pytest.raises(DimensionMismatchError) as raised:
            await other.setup()
        assert (raised.value.existing, raised.value.configured) == (64, 128)
        assert "64" in str(raised.value) and "128" in str(raised.value)
        with pytest.raises(SchemaMismatchError, match="setup\\(\\) failed"):
            await other.remember("written with the wrong dimension")
    finally:
        await other.close()


def test_recall_before_setup_is_index_not_found(valkey_url: str, unique_name: str) -> None:
    store = MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    try:
        with pytest.raises(IndexNotFoundError):
            store.recall(QUERY)
    finally:
        store.close()
