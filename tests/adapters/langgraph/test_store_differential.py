"""Differential test: ValkeyMemoryStore(ranking="similarity") against LangGraph's InMemoryStore.

Hypothesis draws op sequences (put, delete, get, single-namespace batches, search with and without a
query and filters, list_namespaces) and runs each on both stores: same items, same order, scores within
1e-5. Embeddings are a deterministic hashing bag of words; the core index is FLAT (exact KNN).

Where InMemoryStore is arguably wrong the reference is corrected, and each correction says why:

* a put that is not embedded (``index=False``, no text at the fields) leaves InMemoryStore's old vector
  in place, so the item keeps being ranked by its previous text: the reference drops it before each put;
* InMemoryStore.batch raises ValueError when two of its puts embed the same text: the reference runs
  the puts of a batch one by one after its reads (one put embedding a text twice raises too: the drawn
  values never hold a text twice; the core embeds each and stores both vectors);
* InMemoryStore lists namespaces whose items were all deleted (and namespaces it was only asked to read:
  its data dict is a defaultdict): the reference drops empty namespaces before each listing;
* with a query, InMemoryStore restarts the unranked items (score None) at the first one on every page
  past the ranked ones: the expected page is a slice of its whole ranking instead;
* order without a query: InMemoryStore groups items by namespace in the order its dict first saw each
  namespace (an artifact of its layout, e.g. a namespace emptied and refilled keeps its old place); here
  items come in creation order across namespaces (oldest first, a re-put keeps its place), which the
  test's model tracks. Within one namespace both agree.

Two index configurations: one field, and several (``["text", "extra[*]"]``, with puts that also name
their own fields): an item then has one vector per text and both stores score it by its closest one.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import uuid
from collections.abc import Generator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from langgraph.store.base import GetOp, Item, ListNamespacesOp, MatchCondition, Op, PutOp, Result, SearchOp
from langgraph.store.memory import InMemoryStore

from agentmem_core import IndexConfig as CoreIndexConfig
from agentmem_langgraph import AsyncValkeyMemoryStore, ValkeyMemoryStore

pytestmark = pytest.mark.integration

DIMS = 64
WORDS = ("tea", "coffee", "green", "black", "milk", "sugar", "water", "lemon")


def _bucket(word: str) -> int:
    return 1 + int(hashlib.sha256(word.encode()).hexdigest(), 16) % (DIMS - 1)


assert len({_bucket(w) for w in WORDS}) == len(WORDS), "the vocabulary must not collide"


def embed(texts: list[str]) -> list[list[float]]:
    """Deterministic hashing bag of words (a constant component keeps every vector non-zero)."""
    out = []
    for text in texts:
        vector = [0.0] * DIMS
        vector[0] = 0.05
        for word in text.split():
            vector[_bucket(word)] += 1.0
        out.append(vector)
    return out


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["text"]}
MULTI_INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["text", "extra[*]"]}
CORE = {"index": CoreIndexConfig(dims=DIMS, algorithm="FLAT")}
TOL = 1e-5

# -- strategies ------------------------------------------------------------------------------------------
NAMESPACES = [("a",), ("a", "b"), ("a", "bc"), ("b",), ("a", "b", "c")]
PREFIXES = [(), ("a",), ("a", "b"), ("b",), ("a", "bc"), ("c",)]
KEYS = ["k1", "k2", "k3"]

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


def _distinct_texts(value: dict[str, Any]) -> dict[str, Any]:
    """No text twice in one value: InMemoryStore raises ValueError when a put embeds one text twice."""
    if "extra" in value:
        value["extra"] = [t for t in value["extra"] if t != value.get("text")]
    return value


values = (
    st.fixed_dictionaries(
        {"n": st.integers(0, 4), "text": st.one_of(texts, texts, texts, st.none())},
        optional={
            "extra": st.lists(
                texts, max_size=3, unique=True
            ),  # more texts, for the index with several fields
            "color": st.sampled_from(["red", "blue"]),
            "meta": st.fixed_dictionaries({"x": st.sampled_from(["p", "q"]), "y": st.integers(0, 3)}),
        },
    )
    .map(lambda v: {k: x for k, x in v.items() if x is not None})
    .map(_distinct_texts)
)  # a quarter: no text
namespaces = st.sampled_from(NAMESPACES)
puts = st.builds(PutOp, namespace=namespaces, key=st.sampled_from(KEYS), value=values,
                 index=st.sampled_from([None, None, None, False, ["extra[*]"]]), ttl=st.none())  # fmt: skip
deletes = st.builds(PutOp, namespace=namespaces, key=st.sampled_from(KEYS), value=st.none(), ttl=st.none())
gets = st.builds(GetOp, namespace=namespaces, key=st.sampled_from(KEYS), refresh_ttl=st.booleans())
filters = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.builds(lambda n: {"n": n}, st.integers(0, 4)),
    st.builds(
        lambda op, n: {"n": {op: n}},
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
        st.integers(0, 4),
    ),  # fmt: skip
    st.builds(lambda c: {"color": c}, st.sampled_from(["red", "blue"])),
    st.builds(lambda c: {"color": {"$ne": c}}, st.sampled_from(["red", "blue"])),
    st.builds(lambda x: {"meta": {"x": x}}, st.sampled_from(["p", "q"])),
    st.builds(lambda y: {"meta": {"y": {"$gte": y}}}, st.integers(0, 3)),
    st.builds(lambda x: {"meta": {"x": {"$ne": x}}}, st.sampled_from(["p", "q"])),
    st.builds(
        lambda n, c: {"n": {"$lte": n}, "color": c}, st.integers(0, 4), st.sampled_from(["red", "blue"])
    ),
)
searches = st.builds(
    SearchOp,
    namespace_prefix=st.one_of(st.just(()), st.just(("a",)), st.sampled_from(PREFIXES)),
    filter=filters,
    limit=st.integers(1, 6),
    offset=st.one_of(st.just(0), st.integers(0, 6)),
    query=st.one_of(st.none(), texts),
    refresh_ttl=st.booleans(),
)
patterns = st.sampled_from([("a",), ("a", "*"), ("*", "b"), ("a", "b"), ("b",), ("c",), ("*",)])
list_namespaces = st.builds(
    lambda prefix, suffix, depth, limit, offset: ListNamespacesOp(
        match_conditions=tuple(
            [MatchCondition("prefix", prefix)] * (prefix is not None)
            + [MatchCondition("suffix", suffix)] * (suffix is not None)
        ),
        max_depth=depth,
        limit=limit,
        offset=offset,
    ),
    st.one_of(st.none(), patterns),
    st.one_of(st.none(), patterns),
    st.sampled_from([None, None, 1, 2]),
    st.integers(1, 10),
    st.integers(0, 3),
)
# A batch touches one namespace: items written by one batch share their created_at, and only within a
# namespace does the core order ties by write order.
batches = st.builds(
    lambda ns, ops: [op._replace(namespace=ns) for op in ops],
    namespaces,
    st.lists(st.one_of(puts, deletes, gets), min_size=2, max_size=5),
)
mixed = st.lists(
    st.one_of(
        puts.map(lambda op: [op]),
        puts.map(lambda op: [op]),
        deletes.map(lambda op: [op]),
        gets.map(lambda op: [op]),
        searches.map(lambda op: [op]),
        searches.map(lambda op: [op]),
        searches.map(lambda op: [op]),
        list_namespaces.map(lambda op: [op]),
        batches,
    ),  # fmt: skip
    min_size=5,
    max_size=20,
)
# Start from a few items, so searches and listings have something to rank and page through.
steps = st.tuples(st.lists(puts, min_size=4, max_size=10), mixed).map(
    lambda parts: [[op] for op in parts[0]] + parts[1]
)


# -- the comparison (a generator: sync and async drivers feed it each store's results) --------------------
def compare(steps: Sequence[list[Op]], index: Any = INDEX) -> Generator[list[Op], list[Result], None]:
    ref = InMemoryStore(index=index)
    created: dict[tuple[tuple[str, ...], str], int] = {}  # creation order of the live items
    counter = itertools.count()
    for ops in steps:
        want = _reference_batch(ref, ops)
        got = yield ops
        assert len(got) == len(ops)
        last: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op, g, w in zip(ops, got, want):
            if isinstance(op, GetOp):
                assert _item(g) == _item(w), op
            elif isinstance(op, ListNamespacesOp):
                assert g == w, op
            elif isinstance(op, SearchOp):
                _check_search(ref, created, op, g)
            else:
                assert g is None
                last[(op.namespace, op.key)] = op
        for (ns, key), op in last.items():
            if op.value is None:
                created.pop((ns, key), None)
            elif (ns, key) not in created:
                created[(ns, key)] = next(counter)


def _reference_batch(ref: InMemoryStore, ops: Sequence[Op]) -> list[Result]:
    """``ref.batch(ops)``, with the corrections of the module docstring.

    Correction: InMemoryStore.batch raises when two puts of one batch embed the same text (it embeds each
    distinct text once but expects one vector per use), so the reads run as one batch and then the
    deduplicated puts one by one, which is the same thing for a batch of puts and gets.
    """
    if any(isinstance(op, ListNamespacesOp) for op in ops):  # correction: only namespaces holding items
        for ns in [ns for ns, items in ref._data.items() if not items]:
            del ref._data[ns]
    reads = iter(ref.batch([op for op in ops if not isinstance(op, PutOp)]))
    results = [None if isinstance(op, PutOp) else next(reads) for op in ops]
    last = {(op.namespace, op.key): op for op in ops if isinstance(op, PutOp)}
    for op in last.values():
        ref._vectors[op.namespace].pop(op.key, None)  # correction: a put replaces the item's vectors
        ref.batch([op])
    return results


def _brief(items: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [(i.namespace, i.key, i.score) for i in items]


def _item(item: Item | None) -> tuple[Any, ...] | None:
    return None if item is None else (item.namespace, item.key, item.value)


def _check_search(
    ref: InMemoryStore, created: dict[tuple[tuple[str, ...], str], int], op: SearchOp, got: Any
) -> None:
    whole = ref.search(op.namespace_prefix, query=op.query, filter=op.filter, limit=1000)
    scored = [i for i in whole if i.score is not None]
    unscored = sorted((i for i in whole if i.score is None), key=lambda i: created[(i.namespace, i.key)])
    expected = (scored + unscored)[op.offset : op.offset + op.limit]
    by_id = {(i.namespace, i.key): i for i in whole}
    context = f"{op} -> {_brief(got)} vs {_brief(expected)}"
    assert len(got) == len(expected), context
    event(f"search {'with' if op.query else 'without'} query: {'empty' if not got else 'items'}")
    if op.query and scored and unscored and got:
        event("search with a query: scored and unscored items")
    assert len({(i.namespace, i.key) for i in got}) == len(got), context
    for g, e in zip(got, expected):
        assert (g.namespace, g.key) in by_id, context
        assert g.value == by_id[(g.namespace, g.key)].value, context
        if e.score is None:
            assert g.score is None and (g.namespace, g.key) == (e.namespace, e.key), context
        else:  # ties may come in either order: the score at each place, and each item's own score
            own = by_id[(g.namespace, g.key)].score
            assert g.score is not None and own is not None, context
            assert abs(g.score - e.score) <= TOL and abs(g.score - own) <= TOL, context


# -- drivers ---------------------------------------------------------------------------------------------
_BACKENDS = [b for b in os.environ.get("AGENTMEM_TEST_BACKENDS", "valkey,sqlite").split(",") if b]


@pytest.fixture(scope="module", params=_BACKENDS)
def store_url(
    request: pytest.FixtureRequest, valkey_url: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Every core backend: the same differential holds on each (one embedded file holds every example)."""
    if request.param == "valkey":
        return valkey_url
    return f"sqlite:///{tmp_path_factory.mktemp('lg') / 'store.db'}"


# A fixed seed keeps runs reproducible (derandomize=True would only try the smallest sequences).
SETTINGS = settings(
    max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@seed(20240601)
@SETTINGS
@given(steps=steps)
def test_sync_store_matches_in_memory_store(store_url: str, steps: list[list[Op]]) -> None:
    name = "d" + uuid.uuid4().hex[:12]
    with ValkeyMemoryStore.from_url(
        store_url, name=name, index=INDEX, ranking="similarity", core_options=CORE
    ) as store:
        store.setup()
        flow = compare(steps)
        try:
            ops = next(flow)
            while True:
                ops = flow.send(store.batch(ops))
        except StopIteration:
            pass


@seed(20240603)
@settings(SETTINGS, max_examples=8)
@given(steps=steps)
def test_sync_store_with_several_fields_matches_in_memory_store(
    store_url: str, steps: list[list[Op]]
) -> None:
    name = "d" + uuid.uuid4().hex[:12]
    with ValkeyMemoryStore.from_url(
        store_url, name=name, index=MULTI_INDEX, ranking="similarity", core_options=CORE
    ) as store:
        store.setup()
        flow = compare(steps, MULTI_INDEX)
        try:
            ops = next(flow)
            while True:
                ops = flow.send(store.batch(ops))
        except StopIteration:
            pass


@seed(20240602)
@settings(SETTINGS, max_examples=4)
@given(steps=steps)
def test_async_store_matches_in_memory_store(store_url: str, steps: list[list[Op]]) -> None:
    async def run() -> None:
        name = "d" + uuid.uuid4().hex[:12]
        async with AsyncValkeyMemoryStore.from_url(
            store_url, name=name, index=INDEX, ranking="similarity", core_options=CORE
        ) as store:
            await store.setup()
            flow = compare(steps)
            try:
                ops = next(flow)
                while True:
                    ops = flow.send(await store.abatch(ops))
            except StopIteration:
                pass

    asyncio.run(run())
