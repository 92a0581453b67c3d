"""The conformance suite: every backend of the core must behave as the reference model documents.

Importable by third parties (as ``langgraph-checkpoint-conformance`` is for savers). Needs ``pytest``-free
``hypothesis`` only::

    from agentmem_core import MemoryStore
    from agentmem_core.testing.conformance import ConformanceBackend, run_conformance

    def test_my_backend(tmp_path):
        run_conformance(ConformanceBackend(
            open=lambda name, options: MemoryStore(MyBackend(tmp_path / "db"), name=name, **options),
        ))

Random sequences of remember / remember_many / update / forget / forget_by_scope / get / list / count /
facets / stats / recall / list_namespaces run on a real store and on
:class:`agentmem_core.testing.model.ReferenceModel`, and every answer must agree: ids, whole memories
(every field but the sequence number, whose effect, the list order, is compared), pages and cursors,
counts, facets, stats, namespaces, and recall hits (same ids, scores within float tolerance, near-ties in
any order: ``recall_page_problems``).

Set-up that keeps the comparison exact: a FLAT (exact) index, vector-only recall, ``candidate_multiplier=50``
with at most ``MAX_WRITES`` memories (the KNN pool holds every candidate), an injected clock advanced only
by a rule, and ids from a per-example counter (ids break ties, so an example replays identically). A
backend whose memories expire on another clock (a server's) gives an ``expire`` hook that removes what
that clock would have removed once it agrees with the injected one.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from hypothesis import HealthCheck, settings
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
from agentmem_core.testing.lifecycle import run_lifecycle_conformance
from agentmem_core.testing.model import ReferenceModel, recall_page_problems

__all__ = [
    "MAX_WRITES",
    "ConformanceBackend",
    "StoreMatchesModel",
    "StoreWithCapacityMatchesModel",
    "run_conformance",
    "run_machine",
]


class Clock:
    """A settable clock for stores (``clock=``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _approx:  # noqa: N801 (reads as pytest.approx, without needing pytest)
    """Equal to numbers within a tolerance (``==`` in an assertion)."""

    def __init__(self, value: float, *, abs_tol: float = 0.0, rel_tol: float = 0.0) -> None:
        self.value, self.abs_tol, self.rel_tol = value, abs_tol, rel_tol

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (int, float)) and math.isclose(
            float(other), self.value, abs_tol=self.abs_tol, rel_tol=self.rel_tol
        )

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"{self.value} ± (abs {self.abs_tol}, rel {self.rel_tol})"


@dataclass(frozen=True)
class ConformanceBackend:
    """How the suite opens stores on a backend.

    Attributes:
        open: ``(store name, store options) -> MemoryStore`` (not yet set up; options include ``clock``).
        expire: ``(store, now)``: remove what the backend's own clock would expire by ``now`` (a server's
            PEXPIRE); ``None`` when the backend expires by the store's clock.
        drop: ``(store)``: delete a store's data after an example (a shared server); ``None`` when nothing
            needs deleting (a temporary file).
    """

    open: Callable[[str, Mapping[str, Any]], MemoryStore]
    expire: Callable[[MemoryStore, float], None] | None = None
    drop: Callable[[MemoryStore], None] | None = None


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
    outcomes: list[tuple[Any, type[Exception] | None]] = []
    for call in (store_call, model_call):
        try:
            outcomes.append((call(), None))
        except (InvalidMemoryError, NotFoundError) as exc:
            outcomes.append((None, type(exc)))
    (got, got_error), (want, want_error) = outcomes
    assert got_error == want_error, f"store raised {got_error}, model raised {want_error}"
    return got, want


# -- the state machine -----------------------------------------------------------------------------------
class StoreMatchesModel(RuleBasedStateMachine):
    """One fresh store and one empty model per example; every rule applies to both and compares."""

    backend: ClassVar[ConformanceBackend]
    """How stores open, and what the backend's own expiry needs (set by :func:`run_conformance`)."""
    server_expires: ClassVar[bool] = True
    """Run the backend's ``expire`` hook when the clock advances (a server expires keys on its own clock)."""
    capacity: ClassVar[int | None] = None
    items: ClassVar[st.SearchStrategy[MemoryInput]] = memory_inputs(SCOPES)

    def __init__(self) -> None:
        super().__init__()
        # The store draws its ids at random, and ids break ties (list order, recall, eviction): ids made
        # from a per-example counter keep every example, and its replay while shrinking, deterministic.
        counter = itertools.count()
        self._restore_ids = getattr(_records, "new_local_id")  # noqa: B009 (a private hook, set back after)
        setattr(  # noqa: B010
            _records,
            "new_local_id",
            lambda: hashlib.blake2b(b"%d" % next(counter), digest_size=8).hexdigest(),
        )
        self.clock = Clock(START)
        self.store = self.backend.open(
            "mb" + uuid.uuid4().hex[:16],
            dict(
                embedder=EMBEDDER, clock=self.clock, index=IndexConfig(dims=DIMS, algorithm="FLAT"),
                hybrid=False, candidate_multiplier=50, live_config_seconds=None,
                max_items_per_scope=self.capacity,
            ),
        )  # fmt: skip
        self.store.setup()
        self.generated: list[str] = []  # ids the store chose, handed to the model in order
        self.model = ReferenceModel(
            embedder=EMBEDDER, clock=self.clock, max_items_per_scope=self.capacity, id_source=self._next_id
        )
        self.seen: dict[str, None] = dict.fromkeys(MISSING_IDS)  # every id ever returned, live or not
        self.writes = 0

    def teardown(self) -> None:
        setattr(_records, "new_local_id", self._restore_ids)  # noqa: B010
        if self.backend.drop is not None:
            self.backend.drop(self.store)
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
        use_live: bool = data.draw(st.booleans())
        pool = live if live and use_live else list(self.seen)
        chosen: str = data.draw(st.sampled_from(sorted(pool)))
        return chosen

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
        # What a server's own expiry (Valkey's PEXPIRE, on real time, which the injected clock does not
        # move) does once its clock reaches expires_at; a backend that expires by the store's clock has no
        # hook.
        if self.backend.expire is not None:
            self.backend.expire(self.store, self.clock.now)

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
            sources: tuple[Any, Any] = (self.store, self.model)
            for n, source in enumerate(sources):
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
            assert hit.scores.similarity == _approx(want.similarity, abs_tol=1e-5)
            assert hit.scores.relevance == _approx(want.similarity, abs_tol=1e-5)
            assert hit.scores.recency == _approx(want.recency, rel_tol=1e-9)
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


def run_machine(machine: type[StoreMatchesModel], backend: ConformanceBackend, config: settings) -> None:
    """Run one state machine against ``backend`` (a subclass bound to it, so runs never share state)."""
    bound = type(machine.__name__, (machine,), {"backend": backend})
    run_state_machine_as_test(bound, settings=config)


def run_conformance(backend: ConformanceBackend, *, quick: bool = False) -> None:
    """The contract suite: random operation sequences on ``backend``'s stores and on the reference model.

    Runs the state machine without and with a capacity (eviction), then the lifecycle checks (facts,
    leases, the audit log: :mod:`agentmem_core.testing.lifecycle`). ``quick`` draws fewer examples (a
    smoke run). Raises ``AssertionError`` (with Hypothesis' shrunk sequence) where the backend differs.
    """
    run_lifecycle_conformance(backend)
    base = settings(STEPS, max_examples=20) if quick else STEPS
    run_machine(StoreMatchesModel, backend, base)
    run_machine(
        StoreWithCapacityMatchesModel, backend, settings(base, max_examples=max(10, base.max_examples // 2))
    )
