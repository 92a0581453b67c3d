"""Model-based property test: random operation sequences on a real store and on the reference model.

Every rule runs one operation on a :class:`MemoryStore` (real Valkey + search module) and on
:class:`agentmem_core.testing.model.ReferenceModel`, the documented semantics in plain Python, and asserts
that both give the same answer: ids, whole memories (every field but the sequence number, whose effect,
the list order, is compared instead), pages and cursors, counts, facets, stats, namespaces, and recall hits
(same ids, scores within float tolerance, near-ties in any order; see ``recall_page_problems``).

Set-up that keeps the comparison exact:

* ``IndexConfig(algorithm="FLAT")``: exact KNN, so the model's brute-force cosine agrees; ``hybrid=False``
  (vector-only recall); ``candidate_multiplier=50`` with at most ``MAX_WRITES`` memories, so the KNN pool
  always holds every candidate and recall ranks all of them, as the model does.
* An injected clock, advanced only by a rule. A memory's TTL is a server-side ``PEXPIRE`` counted in real
  time, which the injected clock does not move; the ``advance`` rule therefore also deletes the hashes whose
  ``expires_at`` has passed, as the server does once the clocks agree. (What happens when the server has not
  expired such a key yet is pinned by the xfail tests at the end.)
* Every example uses a fresh store name and drops its keys and index afterwards. The store's random ids
  are replaced by ids from a per-example counter: ids break ties, so an example replays identically.
* Read filters are random, and half the time carry a metadata condition built from a value some live
  memory holds, so that boundaries (``$lte`` against ``$lt``) and exact matches are hit.

What this test found is pinned at the end by minimal sequences: regression tests for the bugs since
fixed, and ``xfail(strict=True)`` tests for the expiry disagreement still open, which the machine steps
around by emulating the server's expiry (``server_expires``); an unguarded variant, also xfail, shows the
rules still fail without it.

Reproducibility: failing examples are saved to Hypothesis' local database (``.hypothesis/``, git-ignored)
and replayed first on the next run; ``print_blob=True`` prints a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import valkey
from _support import Clock  # tests/integration is on sys.path (rootdir import mode)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from agentmem_core import (
    IndexConfig,
    InvalidMemoryError,
    Kind,
    Memory,
    MemoryInput,
    MemoryStore,
    NotFoundError,
    _records,
)
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.model import ReferenceModel, recall_page_problems

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIMS = 64
EMBEDDER = HashingEmbedder(DIMS)
START = 1_800_000_000.0
MAX_WRITES = 40
"""Memories written per example (keeps every candidate inside the KNN pool: ``k × 50 >= 50``)."""

STEPS = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

FIELDS = (
    "id", "content", "kind", "importance", "tags", "namespace", "thread_id", "agent_id", "user_id",
    "source", "key", "metadata", "created_at", "updated_at", "expires_at", "access_count",
    "last_accessed_at", "duplicate_count",
)  # fmt: skip
"""Compared field by field (``sequence`` is compared through the list order it decides)."""

# -- values ----------------------------------------------------------------------------------------------
WORDS = ("window", "aisle", "seat", "tea", "coffee", "trip", "Lisbon", "delay", "airport", "the")
CONTENTS = st.one_of(
    st.sampled_from(("window seat", "aisle seat", "likes tea", "the trip to Lisbon")),  # repeats: exact ties
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
)
SCOPES: tuple[dict[str, Any], ...] = (
    {"user_id": "ana"},
    {"user_id": "ana", "namespace": ("crew",)},
    {"user_id": "ana", "namespace": ("crew", "research")},
    {"user_id": "bob", "namespace": ("crew", "research", "deep")},
    {"user_id": "bob", "thread_id": "t1"},
    {"namespace": ("crew", "Été")},
    {"namespace": ("ops",), "agent_id": "a1"},
    {"user_id": "Bob Ü", "thread_id": "t1", "agent_id": "a1"},
    {},
)
KEYS = ("k1", "k2", "drink: morning")
CALLER_IDS = ("id-1", "id-2", "a:b:3", "Ünï")
MISSING_IDS = ("nobody", "0123456789abcdef0123456789abcdef")
TAGS = st.lists(st.sampled_from(("a", "b", "Seat Pref")), max_size=3)
IMPORTANCE = st.sampled_from((0.0, 0.1, 0.25, 0.5, 0.75, 1.0))
SCALARS = (0, 1, 2, 5, -1, 2.5, 1.0, "x", "y", "Z z", True, False, None)
META_VALUES = st.sampled_from((*SCALARS, [1, 2], ["x"], [], [1, "x"], {"p": 1}, {"p": "x", "q": [1]}))
METADATA = st.dictionaries(st.sampled_from(("n", "s", "l", "o")), META_VALUES, max_size=3)
TTLS = st.sampled_from((3600.0, 7200.0, 86400.0))
TIMES = st.sampled_from((-3600, 0, 1, 60, 3600, 86_400, 8 * 86_400)).map(lambda d: START + d)


def memory_inputs(scopes: Sequence[dict[str, Any]]) -> st.SearchStrategy[MemoryInput]:
    """One ``remember`` call's arguments (a key or a caller id sometimes; a TTL or a back-date sometimes)."""

    @st.composite
    def build(draw: st.DrawFn) -> MemoryInput:
        identity = draw(st.sampled_from(("none", "none", "key", "id")))
        back = draw(st.one_of(st.none(), st.sampled_from((0, 10, 3600))))
        return MemoryInput(
            content=draw(CONTENTS),
            importance=draw(IMPORTANCE),
            tags=draw(TAGS),
            kind=draw(st.sampled_from(list(Kind))),
            source=draw(st.sampled_from((None, "me", "them"))),
            metadata=draw(st.one_of(st.none(), METADATA)),
            ttl=draw(st.one_of(st.none(), st.none(), TTLS)),
            created_at=None if back is None else -float(back),  # relative: resolved against the clock
            key=draw(st.sampled_from(KEYS)) if identity == "key" else None,
            id=draw(st.sampled_from(CALLER_IDS)) if identity == "id" else None,
            **draw(st.sampled_from(scopes)),
        )

    return build()


def _condition() -> st.SearchStrategy[Any]:
    ranges = st.sampled_from((0, 1, 2, 2.5, 5, "x", "y"))
    scalars = st.sampled_from(SCALARS)
    return st.one_of(
        META_VALUES,  # a plain value: $eq (a list compares as a whole)
        st.builds(lambda v: {"$eq": v}, META_VALUES),
        st.builds(lambda v: {"$ne": v}, META_VALUES),
        st.builds(lambda v: {"$in": v}, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(lambda v: {"$nin": v}, st.lists(META_VALUES, min_size=1, max_size=2)),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
        st.builds(lambda v: {"$contains": v}, scalars),
        st.builds(lambda op, v: {op: v}, st.sampled_from(("$gt", "$gte", "$lt", "$lte")), ranges),
        st.builds(lambda a, b: {"$gte": a, "$lt": b}, ranges, ranges),
    )


METADATA_FILTERS = st.dictionaries(
    st.sampled_from(("n", "s", "l", "o", "o.p", "zz")), _condition(), min_size=1, max_size=2
)
SCOPE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "user_id": st.sampled_from(("ana", "bob", "Bob Ü", "nobody")),
    "namespace": st.sampled_from((("crew",), ("crew", "research"), ("ops",))),
    # ("crew", "res") must not match ("crew", "research"): prefixes end on label boundaries
    "namespace_prefix": st.sampled_from((("crew",), ("crew", "research"), ("crew", "res"))),
    "thread_id": st.just("t1"),
    "agent_id": st.just("a1"),
}
GROUP_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "source": st.sampled_from(("me", "them")),
    # may be empty: a group that matches nothing (test_an_empty_list_in_an_or_group_...)
    "tags": st.lists(st.sampled_from(("a", "b", "Seat Pref")), max_size=3),
    "kinds": st.lists(st.sampled_from(list(Kind)), max_size=2),
    "created_after": TIMES,
    "metadata": METADATA_FILTERS,
}


def _some_of(values: dict[str, st.SearchStrategy[Any]], most: int) -> st.SearchStrategy[dict[str, Any]]:
    """Up to ``most`` of the named conditions (few conditions, so that filters still match something)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        names = draw(st.lists(st.sampled_from(sorted(values)), max_size=most, unique=True))
        return {name: draw(values[name]) for name in names}

    return build()


GROUP = _some_of(GROUP_VALUES, 2)
SCOPE_FILTERS = _some_of(SCOPE_VALUES, 2)
FILTERS = st.builds(
    lambda scope, rest: {**scope, **rest},
    _some_of(SCOPE_VALUES, 1),
    _some_of(
        {
            **GROUP_VALUES,
            "tags": TAGS,  # may be empty at the top level: matches nothing
            "kinds": st.lists(st.sampled_from(list(Kind)), max_size=2),
            "created_before": TIMES,
            "any_of": st.lists(GROUP, min_size=1, max_size=2),
        },
        2,
    ),
)
WEIGHTS = st.sampled_from((
    None,
    {"similarity": 1.0, "recency": 1.0, "importance": 1.0},
    {"similarity": 0.0, "recency": 1.0, "importance": 1.0},  # distance only breaks ties
    {"similarity": 0.0, "recency": 0.0, "importance": 1.0},
))  # fmt: skip
UPDATES = st.fixed_dictionaries(
    {},
    optional={
        "content": CONTENTS,
        "importance": IMPORTANCE,
        "tags": TAGS,
        "metadata": METADATA,
        "kind": st.sampled_from(list(Kind)),
        "ttl": TTLS,
    },
)


# -- comparisons -----------------------------------------------------------------------------------------
def assert_same(got: Memory | None, want: Memory | None, context: str) -> None:
    """The store's memory equals the model's, field by field."""
    if got is None or want is None:
        assert got is None and want is None, f"{context}: store {got!r}, model {want!r}"
        return
    for name in FIELDS:
        assert getattr(got, name) == getattr(want, name), (
            f"{context}: {name} of {want.id}: store {getattr(got, name)!r}, model {getattr(want, name)!r}"
        )


def assert_same_list(got: Sequence[Memory], want: Sequence[Memory], context: str) -> None:
    """Same memories in the same order."""
    assert [m.id for m in got] == [m.id for m in want], f"{context}: order differs"
    for g, w in zip(got, want):
        assert_same(g, w, context)


def both(store_call: Callable[[], Any], model_call: Callable[[], Any]) -> tuple[Any, Any]:
    """Run both calls; they must both succeed or both raise the same agentmem error."""
    outcomes = []
    for call in (store_call, model_call):
        try:
            outcomes.append((call(), None))
        except (InvalidMemoryError, NotFoundError) as exc:
            outcomes.append((None, type(exc)))
    (got, got_error), (want, want_error) = outcomes
    assert got_error == want_error, f"store raised {got_error}, model raised {want_error}"
    return got, want


def drop_store(store: MemoryStore) -> None:
    """Delete the store's index and keys (the server is shared; never flush it). Embedded: a temp file."""
    client = store.client
    if client is None:
        return
    try:
        client.execute_command("FT.DROPINDEX", store.keys.index)
    except valkey.ResponseError:  # never created
        pass
    keys = list(client.scan_iter(match=f"{store.keys.prefix}*", count=1000))
    if keys:
        client.unlink(*keys)


# -- the state machine -----------------------------------------------------------------------------------
class StoreMatchesModel(RuleBasedStateMachine):
    """One fresh store and one empty model per example; every rule applies to both and compares."""

    url: ClassVar[str] = ""
    server_expires: ClassVar[bool] = True
    """Delete expired hashes when the clock advances, as the server does once its clock agrees."""
    capacity: ClassVar[int | None] = None
    items: ClassVar[st.SearchStrategy[MemoryInput]] = memory_inputs(SCOPES)

    def __init__(self) -> None:
        super().__init__()
        # The store draws its ids at random, and ids break ties (list order, recall, eviction): ids made
        # from a per-example counter keep every example, and its replay while shrinking, deterministic.
        counter = itertools.count()
        self._restore_ids = _records.new_local_id
        _records.new_local_id = lambda: hashlib.blake2b(b"%d" % next(counter), digest_size=8).hexdigest()
        self.clock = Clock(START)
        self.store = MemoryStore.from_url(
            self.url, name="mb" + uuid.uuid4().hex[:16], embedder=EMBEDDER, clock=self.clock,
            index=IndexConfig(dims=DIMS, algorithm="FLAT"), hybrid=False, candidate_multiplier=50,
            live_config_seconds=None, max_items_per_scope=self.capacity,
        )  # fmt: skip
        self.store.setup()
        self.generated: list[str] = []  # ids the store chose, handed to the model in order
        self.model = ReferenceModel(
            embedder=EMBEDDER, clock=self.clock, max_items_per_scope=self.capacity, id_source=self._next_id
        )
        self.seen: dict[str, None] = dict.fromkeys(MISSING_IDS)  # every id ever returned, live or not
        self.writes = 0

    def teardown(self) -> None:
        _records.new_local_id = self._restore_ids
        drop_store(self.store)
        self.store.close()

    def _next_id(self, scope: Any) -> str:
        if not self.generated:  # the store wrote nothing: the model must fail too (asserted by _write)
            return str(scope.tag) + uuid.uuid4().hex[:16]
        memory_id = self.generated.pop(0)
        assert memory_id[:16] == scope.tag, f"id {memory_id} does not start with its scope's tag {scope.tag}"
        return memory_id

    def _resolve_times(self, item: MemoryInput) -> MemoryInput:
        if item.created_at is None:
            return item
        return replace(item, created_at=self.clock.now + item.created_at)

    def _write(self, items: list[MemoryInput]) -> None:
        self.writes += len(items)
        items = [self._resolve_times(i) for i in items]
        got: list[str] | None
        try:
            got = self.store.remember_many(items)
        except InvalidMemoryError:
            got = None
        if got is not None:
            self.generated = [g for g, i in zip(got, items) if i.key is None and i.id is None]
        try:
            want: list[str] | None = self.model.remember_many(items)
        except InvalidMemoryError:
            want = None
        assert (got is None) == (want is None), f"store wrote {got}, model wrote {want}"
        if got is None or want is None:
            return
        assert got == want
        self.seen.update(dict.fromkeys(got))
        for memory_id in got:
            assert_same(self.store.get(memory_id), self.model.get(memory_id), "after remember")

    # -- writes ------------------------------------------------------------------------------------------
    @initialize(data=st.data(), n=st.integers(0, 12))
    def seed(self, data: st.DataObject, n: int) -> None:
        if n:
            self._write([data.draw(self.items) for _ in range(n)])

    @precondition(lambda self: self.writes < MAX_WRITES)
    @rule(data=st.data())
    def remember(self, data: st.DataObject) -> None:
        self._write([data.draw(self.items)])

    @precondition(lambda self: self.writes < MAX_WRITES)
    @rule(data=st.data(), n=st.integers(2, 6))
    def remember_many(self, data: st.DataObject, n: int) -> None:
        self._write([data.draw(self.items) for _ in range(n)])

    def _some_id(self, data: st.DataObject) -> str:
        live = [m.id for m in self.model.memories()]
        pool = live if live and data.draw(st.booleans()) else list(self.seen)
        return data.draw(st.sampled_from(sorted(pool)))

    @rule(data=st.data(), changes=UPDATES)
    def update(self, data: st.DataObject, changes: dict[str, Any]) -> None:
        memory_id = self._some_id(data)
        got, want = both(
            lambda: self.store.update(memory_id, **changes), lambda: self.model.update(memory_id, **changes)
        )
        assert_same(got, want, f"update({memory_id!r}, {changes})")

    @rule(data=st.data(), how=st.sampled_from(("one", "many", "scope")))
    def forget(self, data: st.DataObject, how: str) -> None:
        # one rule for the three deletions, so that deleting does not outweigh writing
        if how == "scope":
            flt = self._derive(data, data.draw(FILTERS))
            got, want = both(
                lambda: self.store.forget_by_scope(**flt), lambda: self.model.forget_by_scope(**flt)
            )
            assert got == want, flt
        elif how == "one":
            memory_id = self._some_id(data)
            assert self.store.forget(memory_id) == self.model.forget(memory_id), memory_id
        else:  # duplicates included: each memory counts once
            ids = [self._some_id(data) for _ in range(data.draw(st.integers(2, 3)))]
            assert self.store.forget_many(ids) == self.model.forget_many(ids), ids

    def _derive(self, data: st.DataObject, flt: dict[str, Any]) -> dict[str, Any]:
        """Half the time, a metadata condition on a value some live memory holds (its boundary included).

        Random conditions rarely hit a stored value exactly, which is where ``$lte`` against ``$lt`` or
        ``$in`` against ``$nin`` differ.
        """
        holders = [m for m in self.model.memories() if m.metadata]
        if not holders or not data.draw(st.booleans()):
            return flt
        metadata = data.draw(st.sampled_from(holders)).metadata
        key = data.draw(st.sampled_from(sorted(metadata)))
        value = metadata[key]
        if isinstance(value, dict) and value:  # a nested path
            inner = data.draw(st.sampled_from(sorted(value)))
            key, value = f"{key}.{inner}", value[inner]
        ops = ["$eq", "$ne", "$in", "$nin"]
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            ops += ["$gt", "$gte", "$lt", "$lte"]
        if isinstance(value, list) and value:
            ops.append("$contains")
        op = data.draw(st.sampled_from(ops))
        if op == "$contains":
            condition: Any = {op: data.draw(st.sampled_from(value))}
        elif op in ("$in", "$nin"):
            condition = {op: [value, data.draw(st.sampled_from(SCALARS))]}
        else:
            condition = {op: value}
        return {**flt, "metadata": {key: condition}}

    @rule(seconds=st.sampled_from((1, 60, 3599, 3600, 86_400, 8 * 86_400)))
    def advance(self, seconds: int) -> None:
        self.clock.now += seconds
        if self.server_expires:
            self._expire_on_server()

    def _expire_on_server(self) -> None:
        # What the server's PEXPIRE does once its clock reaches expires_at (it runs on real time, which the
        # injected clock does not move): delete the memory hash and its counter hash.
        client, keys = self.store.client, self.store.keys
        if client is None:  # the embedded backend expires memories by the store's own clock
            return
        for key in client.scan_iter(match=f"{keys.memory_prefix}*", count=1000):
            expires = client.hget(key, "expires_at")
            if expires is not None and float(expires) <= self.clock.now:
                client.delete(key, keys.stats_of_memory_key(key.decode()))

    # -- reads -------------------------------------------------------------------------------------------
    @rule()
    def get_everything(self) -> None:
        ids = list(self.seen)
        for got, want, memory_id in zip(self.store.get_many(ids), self.model.get_many(ids), ids):
            assert_same(got, want, f"get_many {memory_id!r}")

    @rule(key=st.sampled_from(KEYS), scope=st.sampled_from(SCOPES))
    def get_by_key(self, key: str, scope: dict[str, Any]) -> None:
        assert_same(self.store.get_by_key(key, **scope), self.model.get_by_key(key, **scope), f"key {key}")

    @rule(
        data=st.data(),
        flt=FILTERS,
        order=st.sampled_from(("newest", "oldest")),
        limit=st.integers(1, 5),
        offset=st.integers(0, 3),
        step_offset=st.integers(0, 1),
    )
    def list_and_walk(
        self, data: st.DataObject, flt: dict[str, Any], order: Any, limit: int, offset: int, step_offset: int
    ) -> None:
        flt = self._derive(data, flt)
        whole_store = self.store.list(limit=1000, order=order, **flt)
        whole_model = self.model.list(limit=1000, order=order, **flt)
        assert_same_list(whole_store.memories, whole_model.memories, f"list {order} {flt}")
        assert whole_store.next_cursor is None
        cursors: list[str | None] = [None, None]
        skip = offset
        for page_number in range(60):
            pages = []
            for n, source in enumerate((self.store, self.model)):
                page = source.list(limit=limit, order=order, offset=skip, cursor=cursors[n], **flt)
                pages.append(page)
                cursors[n] = page.next_cursor
            context = f"page {page_number} of list({order}, limit={limit}, offset={skip}) {flt}"
            assert_same_list(pages[0].memories, pages[1].memories, context)
            assert (cursors[0] is None) == (cursors[1] is None), f"{context}: next_cursor {cursors}"
            if cursors[0] is None:
                break
            skip = step_offset

    @rule(data=st.data(), flt=FILTERS)
    def count_and_facets(self, data: st.DataObject, flt: dict[str, Any]) -> None:
        flt = self._derive(data, flt)
        assert self.store.count(**flt) == self.model.count(**flt), flt
        got, want = self.store.facets(**flt), self.model.facets(**flt)
        assert got == want, flt
        assert list(got.by_tag) == list(want.by_tag), f"tag order {flt}"

    @rule(flt=SCOPE_FILTERS)
    def stats(self, flt: dict[str, Any]) -> None:
        got, want = self.store.stats(**flt), self.model.stats(**flt)
        assert (got.total, dict(got.by_kind)) == (want.total, dict(want.by_kind)), flt
        assert got.scopes == want.scopes, flt

    @rule(
        prefix=st.sampled_from(
            (None, ("crew",), ("crew", "*"), ("*", "research"), ("ops",), ("crew", "res"))
        ),
        suffix=st.sampled_from((None, ("research",), ("*", "deep"), ("Été",))),
        max_depth=st.sampled_from((None, 1, 2)),
        limit=st.integers(1, 4),
        offset=st.integers(0, 2),
    )
    def list_namespaces(
        self, prefix: Any, suffix: Any, max_depth: int | None, limit: int, offset: int
    ) -> None:
        options = {
            "prefix": prefix,
            "suffix": suffix,
            "max_depth": max_depth,
            "limit": limit,
            "offset": offset,
        }
        assert self.store.list_namespaces(**options) == self.model.list_namespaces(**options), options

    @rule(
        data=st.data(),
        flt=st.one_of(st.just({}), SCOPE_FILTERS, FILTERS),
        k=st.integers(1, 4),
        offset=st.sampled_from((0, 0, 1, 3)),
        reinforce=st.booleans(),
        weights=WEIGHTS,
        half_life=st.sampled_from((None, 3600.0)),
        by_vector=st.booleans(),
    )
    def recall(
        self,
        data: st.DataObject,
        flt: dict[str, Any],
        k: int,
        offset: int,
        reinforce: bool,
        weights: Any,
        half_life: float | None,
        by_vector: bool,
    ) -> None:
        flt = self._derive(data, flt)
        text = data.draw(CONTENTS)
        options = {"weights": weights, "half_life_seconds": half_life, **flt}
        ranking = self.model.rank(text, **options)
        if by_vector:  # a query no memory has: the sum of two texts' vectors
            other = data.draw(CONTENTS)
            vector = np.asarray(EMBEDDER.embed([text, other]), dtype=np.float64).sum(axis=0)
            ranking = self.model.rank(vector, **options)
            result = self.store.recall_by_vector(vector, k=k, offset=offset, reinforce=reinforce, **options)
        else:
            result = self.store.recall(text, k=k, offset=offset, reinforce=reinforce, **options)
        page = [(hit.memory.id, hit.score, hit.distance) for hit in result]
        problems = recall_page_problems(ranking, page, offset=offset, k=k)
        head = [(s.memory.id, s.score, s.distance) for s in ranking[: offset + k + 2]]
        assert not problems, f"recall k={k} offset={offset} {options}: {problems}; store {page}, model {head}"
        by_id = {s.memory.id: s for s in ranking}
        for hit in result:
            want = by_id[hit.memory.id]
            assert hit.scores.similarity == pytest.approx(want.similarity, abs=1e-5)
            assert hit.scores.relevance == pytest.approx(want.similarity, abs=1e-5)
            assert hit.scores.recency == pytest.approx(want.recency, rel=1e-9)
            assert hit.scores.importance == want.memory.importance and hit.scores.lexical == 0.0
        if reinforce:
            self.model.reinforce([hit.memory.id for hit in result])
        for hit in result:
            assert_same(hit.memory, self.model.get(hit.memory.id), "recall hit")


class StoreWithCapacityMatchesModel(StoreMatchesModel):
    """The same, with ``max_items_per_scope=3`` over three scopes (so eviction happens often)."""

    capacity: ClassVar[int | None] = 3
    items: ClassVar[st.SearchStrategy[MemoryInput]] = memory_inputs(SCOPES[:3])


class StoreWithKnownBugsMatchesModel(StoreMatchesModel):
    """Without the expiry emulation: expired keys stay on the server (the xfail tests below)."""

    server_expires: ClassVar[bool] = False


def run_machine(machine: type[StoreMatchesModel], url: str, config: settings) -> None:
    bound = type(machine.__name__, (machine,), {"url": url})
    run_state_machine_as_test(bound, settings=config)


_BACKENDS = [b for b in os.environ.get("AGENTMEM_TEST_BACKENDS", "valkey,sqlite").split(",") if b]


@pytest.fixture(params=_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend the store runs on: the reference model is the contract of each."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, valkey_url: str, tmp_path: Path) -> str:
    """Where this test's stores open (the embedded file holds every store of the test, by name)."""
    return valkey_url if backend == "valkey" else f"sqlite:///{tmp_path / 'model.db'}"


# Passing runs take ~15 s each; a failure is then shrunk for up to Hypothesis' own 5 minutes, which the
# suite's 300 s timeout would cut short (reporting a flaky failure instead of the shrunk sequence).
SHRINK_TIME = pytest.mark.timeout(900)


@SHRINK_TIME
def test_store_matches_the_reference_model(store_url: str) -> None:
    run_machine(StoreMatchesModel, store_url, STEPS)


@SHRINK_TIME
def test_store_with_capacity_matches_the_reference_model(store_url: str) -> None:
    run_machine(StoreWithCapacityMatchesModel, store_url, settings(STEPS, max_examples=80))


def test_the_unguarded_state_machine_finds_the_known_bugs(
    store_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    # On Valkey: a strict xfail. The embedded backend expires memories by the store's clock, so it
    # has no such bug: the same run passes there.
    if backend == "valkey":
        request.applymarker(
            pytest.mark.xfail(
                strict=True, reason="writes count expired memories whose keys the server still holds"
            )
        )
    # no shrinking (the minimal sequences are the tests below) and no database (nothing to replay)
    # derandomized: a strict xfail must fail the same way on every run
    config = settings(STEPS, max_examples=300, phases=[Phase.generate], database=None, derandomize=True)
    run_machine(StoreWithKnownBugsMatchesModel, store_url, config)


# -- where the store and the model disagree ---------------------------------------------------------------
# Reads decide expiry by ``expires_at <= now`` (the store's clock); forget, re-put and id claims look at
# whether the hash still exists, which the server decides by PEXPIRE on its own (real-time) clock. Until the
# server expires the key, a memory every read reports as gone still counts as existing for those writes.
# With an injected clock that window is the whole rest of the test; in production it is the clock skew
# between client and server.
EXPIRED_KEY_STILL_ON_SERVER = pytest.mark.xfail(
    strict=True,
    reason="writes treat a memory past its expires_at as existing until the server's PEXPIRE removes it",
)


@pytest.fixture
def expired_url(backend: str, store_url: str, request: pytest.FixtureRequest) -> str:
    """``store_url``, with the known disagreement marked on Valkey (the embedded backend has none)."""
    if backend == "valkey":
        request.applymarker(EXPIRED_KEY_STILL_ON_SERVER)
    return store_url


@contextmanager
def clocked_store(url: str) -> Iterator[tuple[MemoryStore, Clock]]:
    """A fresh set-up store on an injected clock; its keys and index are removed afterwards."""
    clock = Clock(START)
    store = MemoryStore.from_url(
        url, name="mb" + uuid.uuid4().hex[:16], embedder=EMBEDDER, clock=clock, live_config_seconds=None
    )
    store.setup()
    try:
        yield store, clock
    finally:
        drop_store(store)
        store.close()


def test_forgetting_an_expired_memory_reports_that_it_did_not_exist(expired_url: str) -> None:
    with clocked_store(expired_url) as (store, clock):
        memory_id = store.remember("short-lived", user_id="u", ttl=60)
        clock.now += 61
        assert store.get(memory_id) is None  # expired: every read agrees
        assert store.forget(memory_id) is False  # "False if it did not exist": the store says True


def test_forget_by_scope_does_not_count_expired_memories(expired_url: str) -> None:
    with clocked_store(expired_url) as (store, clock):
        store.remember("short-lived", user_id="u", ttl=60)
        store.remember("lasting", user_id="u")
        clock.now += 61
        assert store.count(user_id="u") == 1
        assert store.forget_by_scope(user_id="u") == 1  # the store counts the expired memory too: 2


def test_re_putting_the_key_of_an_expired_memory_writes_a_new_memory(expired_url: str) -> None:
    with clocked_store(expired_url) as (store, clock):
        store.remember("short-lived", user_id="u", key="k", ttl=60)
        clock.now += 100
        assert store.get_by_key("k", user_id="u") is None
        store.remember("new", user_id="u", key="k")
        memory = store.get_by_key("k", user_id="u")
        assert memory is not None
        assert memory.created_at == clock.now  # the store keeps the expired memory's: START


def test_the_caller_id_of_an_expired_memory_is_free_for_another_scope(expired_url: str) -> None:
    with clocked_store(expired_url) as (store, clock):
        store.remember("short-lived", user_id="u1", id="shared", ttl=60)
        clock.now += 100
        assert store.get("shared") is None
        # "an id held by a live memory of another scope is an error": this one is not live, yet the store
        # raises InvalidMemoryError ("already names a memory in another scope")
        assert store.remember("new owner", user_id="u2", id="shared") == "shared"


# Found by the state machine and fixed (an empty group rendered as '@x_tags:{}', a query syntax error).
@pytest.mark.parametrize("empty", [{"tags": []}, {"kinds": []}], ids=["tags", "kinds"])
def test_an_empty_list_in_an_or_group_matches_nothing_on_every_path(
    store_url: str, empty: dict[str, Any]
) -> None:
    # The group can match nothing, so the OR is the other group alone (before the fix, list and
    # forget_by_scope agreed while count and recall raised BackendError "Syntax error ... near x_tags").
    with clocked_store(store_url) as (store, _clock):
        mine = store.remember("window seat", source="me")
        any_of = [{"source": "me"}, empty]
        assert [m.id for m in store.list(any_of=any_of).memories] == [mine]
        assert store.count(any_of=any_of) == 1
        assert [h.memory.id for h in store.recall("window seat", any_of=any_of)] == [mine]


# Found by the state machine and fixed (filtered forget_by_scope compared caller ids with internal ids).
def test_forget_by_scope_with_a_filter_deletes_memories_with_caller_ids(store_url: str) -> None:
    with clocked_store(store_url) as (store, _clock):
        store.remember("window seat", user_id="ana", source="me", id="id-1")
        assert store.count(source="me") == 1
        assert store.forget_by_scope(source="me") == 1  # before the fix: nothing deleted, 0
        assert store.get("id-1") is None
