"""The core contract the adapters stand on: keyed upserts, atomic updates (real Valkey, sync and async)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _support import Facade, check_everywhere, open_like  # tests/integration is on sys.path

from agentmem_core import (
    AsyncMemoryStore,
    InvalidMemoryError,
    InvalidVectorError,
    Kind,
    MemoryInput,
    NotFoundError,
    SchemaMismatchError,
    ScopeKey,
)
from agentmem_core.embeddings import HashingEmbedder

pytestmark = pytest.mark.integration


# -- keyed upserts --------------------------------------------------------------------------------------
async def test_re_putting_a_key_keeps_created_at_and_sets_updated_at(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    first = await mem.remember("likes tea", user_id="k", key="drink")
    born = clock.now
    clock.now += 100
    await mem.remember("another memory", user_id="k")
    clock.now += 100
    again = await mem.remember("likes coffee", user_id="k", key="drink")
    assert again == first
    memory = await mem.get(first)
    assert memory.content == "likes coffee" and memory.created_at == born and memory.updated_at == clock.now
    # the listing order follows created_at: the re-put key did not jump ahead of the newer memory
    page = await mem.list(user_id="k", limit=10)
    assert [m.content for m in page.memories] == ["another memory", "likes coffee"]
    assert [m.id for m in (await mem.list(user_id="k", created_before=born + 1)).memories] == [first]
    # an explicit created_at still wins (importing history)
    await mem.remember("likes water", user_id="k", key="drink", created_at=born - 50)
    assert (await mem.get(first)).created_at == born - 50
    assert (await mem.stats(user_id="k")).total == 2


async def test_the_same_key_in_two_scopes_is_two_memories(mem: Facade) -> None:
    a = await mem.remember("a", user_id="k1", key="same")
    b = await mem.remember("b", user_id="k2", key="same")
    assert a != b and (await mem.get(a)).content == "a" and (await mem.get(b)).content == "b"


# -- atomic updates -------------------------------------------------------------------------------------
async def test_update_returns_the_updated_memory_and_keeps_bookkeeping(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    memory_id = await mem.remember("books aisle seats", user_id="u", kind="episodic", tags=["seat"])
    clock.now += 10
    updated = await mem.update(memory_id, kind="semantic", tags=[], metadata={"n": [1, 2]}, importance=0.7)
    assert updated.kind is Kind.SEMANTIC and updated.tags == () and updated.importance == 0.7
    assert updated.metadata == {"n": [1, 2]} and updated.updated_at == clock.now
    assert updated.expires_at is not None  # the episodic TTL stays: update(ttl=...) changes it
    stats = await mem.stats(user_id="u")
    assert stats.by_kind == {"semantic": 1}
    assert [
        h.memory.id for h in await mem.recall("aisle", user_id="u", metadata={"n": {"$contains": 2}})
    ] == [memory_id]
    assert list(await mem.recall("aisle", user_id="u", tags=["seat"])) == []
    refreshed = await mem.update(memory_id, ttl=60)
    assert refreshed.ttl == 60  # the new lifetime is what a refreshing read restarts
    assert refreshed.expires_at == pytest.approx(clock.now + 60)
    clock.now += 61
    assert await mem.get(memory_id) is None
    with pytest.raises(NotFoundError):
        await mem.update(memory_id, importance=0.1)  # expired is gone


async def test_concurrent_updates_of_different_attributes_both_stick(
    valkey_url: str, unique_name: str
) -> None:
    # Before: update read the memory, then rewrote all of it, so two interleaved updates lost one change.
    store = AsyncMemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(64))
    await store.setup()
    try:
        memory_id = await store.remember("a shared note", user_id="c", importance=0.5)
        for n in range(20):
            importance, tags = round(0.01 * n, 2), [f"t{n}"]
            await asyncio.gather(
                store.update(memory_id, importance=importance), store.update(memory_id, tags=tags)
            )
            memory = await store.get(memory_id)
            assert memory is not None and (memory.importance, memory.tags) == (importance, tuple(tags))
    finally:
        await store.close()


async def test_update_racing_a_delete_is_a_clean_not_found(valkey_url: str, unique_name: str) -> None:
    store = AsyncMemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(64))
    await store.setup()
    try:
        for n in range(20):
            memory_id = await store.remember(f"note {n}", user_id="d")
            outcome = await asyncio.gather(
                store.update(memory_id, importance=0.9), store.forget(memory_id), return_exceptions=True
            )
            assert outcome[1] is True
            assert not isinstance(outcome[0], BaseException) or isinstance(outcome[0], NotFoundError), outcome
            assert await store.get(memory_id) is None
    finally:
        await store.close()


async def test_raised_importance_protects_a_memory_from_eviction(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    cap = await open_like(mem, valkey_url, unique_name + "i", max_items_per_scope=2)
    low = await cap.remember("first", user_id="e", importance=0.0)
    other = await cap.remember("second", user_id="e", importance=0.5)
    await cap.update(low, importance=1.0)
    await cap.remember_many([MemoryInput("third", user_id="e", importance=0.6)])
    survivors = {m.id for m in (await cap.list(user_id="e")).memories}
    assert low in survivors and other not in survivors
    await cap.close()


# -- OR groups ------------------------------------------------------------------------------------------
PRIVATE = {
    "mine_public": {"source": "me", "metadata": {"private": False}},
    "mine_private": {"source": "me", "metadata": {"private": True}},
    "theirs_private": {"source": "them", "metadata": {"private": True}, "tags": ["x"]},
    "theirs_unmarked": {"source": "them", "metadata": {"n": 7}},
}
ANY_OF_CASES = [
    # CrewAI: "not private, or private and mine" (pushed into the query)
    pytest.param(
        [{"metadata": {"private": {"$ne": True}}}, {"source": "me"}],
        {"mine_public", "mine_private", "theirs_unmarked"},
        id="crewai-privacy",
    ),
    pytest.param([{"source": "them"}, {"tags": ["x"]}], {"theirs_private", "theirs_unmarked"}, id="pushed"),
    # a group with a range runs on the client: tags / source / metadata are read from the search rows
    pytest.param(
        [{"metadata": {"n": {"$gte": 5}}}, {"tags": ["x"]}],
        {"theirs_private", "theirs_unmarked"},
        id="client",
    ),
    pytest.param([{"metadata": {"n": {"$lt": 0}}}, {"kinds": ["summary"]}], set(), id="client-none"),
    pytest.param([{}], set(PRIVATE), id="empty-group-is-true"),
]


@pytest.mark.parametrize(("any_of", "expected"), ANY_OF_CASES)
async def test_any_of_or_groups_on_every_path(
    mem: Facade, any_of: list[dict[str, Any]], expected: set[str]
) -> None:
    await check_everywhere(mem, "or", PRIVATE, {"any_of": any_of}, expected)


@pytest.mark.parametrize(
    "any_of",
    [[], "source=me", [{"user_id": "u"}], [{"any_of": [{"source": "a"}]}], [{"colour": "red"}], [3]],
    ids=["empty", "string", "scope-field", "nested", "unknown", "not-a-mapping"],
)
async def test_bad_any_of_is_a_typed_error(mem: Facade, any_of: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        await mem.recall("x", user_id="or", any_of=any_of)
    with pytest.raises(InvalidMemoryError):
        await mem.forget_by_scope(user_id="or", any_of=any_of)


# -- keys, counts, facets, order and offset ---------------------------------------------------------------
async def test_get_by_key_finds_the_keyed_memory_in_its_scope(mem: Facade) -> None:
    memory_id = await mem.remember("likes tea", namespace=("prefs", "ana"), key="drink: morning")
    got = await mem.get_by_key("drink: morning", namespace=("prefs", "ana"))
    assert got is not None and got.id == memory_id and got.key == "drink: morning"
    assert await mem.get_by_key("drink: morning", namespace=("prefs",)) is None
    assert await mem.get_by_key("drink: morning ", namespace=("prefs", "ana")) is None
    with pytest.raises(InvalidMemoryError):
        await mem.get_by_key("", namespace=("prefs", "ana"))
    with pytest.raises(InvalidMemoryError):
        await mem.get_by_key("k" * 513, namespace=("prefs", "ana"))


async def test_count_is_exact_for_every_filter(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    await mem.remember_many(
        [MemoryInput(f"n{i}", user_id="cnt", tags=["even" if i % 2 == 0 else "odd"], metadata={"n": i},
                     ttl=30 if i % 5 == 0 else None) for i in range(20)]
    )  # fmt: skip
    await mem.remember("elsewhere", user_id="other", tags=["even"])
    assert await mem.count(user_id="cnt") == 20
    assert await mem.count(tags=["even"]) == 11
    assert await mem.count(user_id="cnt", metadata={"n": {"$gte": 15}}) == 5  # a range: counted on the client
    assert await mem.count(user_id="cnt", any_of=[{"tags": ["odd"]}, {"metadata": {"n": 0}}]) == 11
    clock.now += 60  # n = 0, 5, 10, 15 expired
    assert await mem.count(user_id="cnt") == 16
    assert await mem.count(tags=["even"]) == 11 - 2
    assert await mem.count(user_id="cnt", metadata={"n": {"$gte": 15}}) == 4
    assert await mem.count(user_id="nobody") == 0


async def test_facets_count_tags_kinds_and_the_time_span(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    start = clock.now
    for i, tags in enumerate((["a"], ["a", "b"], ["c"], [])):
        clock.now = start + i
        await mem.remember(
            f"m{i}", namespace=("crew", "research"), tags=tags, kind="episodic" if i else "semantic"
        )
    await mem.remember("outside", namespace=("crew", "researchers"), tags=["a"])
    facets = await mem.facets(namespace_prefix=("crew", "research"))
    assert facets.total == 4 and dict(facets.by_tag) == {"a": 2, "b": 1, "c": 1}
    assert dict(facets.by_kind) == {"episodic": 3, "semantic": 1}
    assert (facets.oldest, facets.newest) == (start, start + 3)
    empty = await mem.facets(namespace_prefix=("nothing",))
    assert (empty.total, empty.oldest, empty.newest) == (0, None, None)


async def test_list_orders_and_offsets_keep_exact_write_order(mem: Facade) -> None:
    # one batch: every memory has the same created_at; the write sequence keeps their order
    ids = await mem.remember_many([MemoryInput(f"message {i}", thread_id="chat") for i in range(12)])
    oldest = await mem.list(thread_id="chat", order="oldest", limit=12)
    assert [m.id for m in oldest.memories] == ids
    newest = await mem.list(thread_id="chat", limit=12)
    assert [m.id for m in newest.memories] == ids[::-1]
    page = await mem.list(thread_id="chat", order="oldest", limit=4, offset=3)
    assert [m.id for m in page.memories] == ids[3:7]
    walked, cursor = [], None
    while True:
        page = await mem.list(thread_id="chat", order="oldest", limit=5, cursor=cursor)
        walked += [m.id for m in page.memories]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert walked == ids
    with pytest.raises(InvalidMemoryError):  # a cursor of one order is not valid in the other
        await mem.list(
            thread_id="chat", cursor=(await mem.list(thread_id="chat", order="oldest", limit=2)).next_cursor
        )
    for bad in ({"order": "random"}, {"offset": -1}, {"offset": True}):
        with pytest.raises(InvalidMemoryError):
            await mem.list(thread_id="chat", **bad)


async def test_a_listing_over_many_scopes_is_exact_at_ties_filters_and_cursors(mem: Facade) -> None:
    """Six scopes listed together, read in one step or by id first (then only a page's worth whole).

    Creation times tie across scopes (three memories per instant, then five per scope at one), a client-side
    filter (kind) drops some, and every listing agrees with the order the memories' own fields give.
    """
    items = [
        MemoryInput(
            f"note {i}", user_id="u", thread_id=f"t{i % 6}", created_at=1_000.0 + i // 3,
            kind="episodic" if i % 2 else "semantic",
        )
        for i in range(72)
    ]  # fmt: skip
    # a batch of five per scope at one instant, newer than all, and one older than all: more tied at a
    # cut than are read whole (write order picks them; ties of it across scopes go by id, a caller's
    # where it gave one)
    items += [
        MemoryInput(
            f"batch {i}", user_id="u", thread_id=f"t{i % 6}", created_at=at,
            kind="episodic" if i % 3 else "semantic", id=f"zz-{at}-{i:03d}" if i % 2 == 0 else None,
        )
        for at in (2_000.0, 500.0)
        for i in range(30)
    ]  # fmt: skip
    ids = await mem.remember_many(items)
    memories = await mem.get_many(ids)

    def key(m: Any) -> tuple[float, int, str]:
        return (m.created_at, m.sequence, m.id)

    for order in ("newest", "oldest"):
        for kind in (None, "episodic"):
            want = sorted(
                (m for m in memories if kind is None or m.kind.value == kind),
                key=key, reverse=order == "newest",
            )  # fmt: skip
            flt: dict[str, Any] = {"user_id": "u"} if kind is None else {"user_id": "u", "kinds": [kind]}
            whole = await mem.list(order=order, limit=200, **flt)
            assert [m.id for m in whole.memories] == [m.id for m in want]
            assert whole.next_cursor is None
            for limit in (5, 8, 9, 12, 13, 30):  # cuts inside the tie group, read in one step or by id
                first = await mem.list(order=order, limit=limit, **flt)
                assert [m.id for m in first.memories] == [m.id for m in want[:limit]]
            offset = await mem.list(order=order, limit=7, offset=5, **flt)
            assert [m.id for m in offset.memories] == [m.id for m in want[5:12]]
            walked: list[str] = []
            cursor = None
            while True:
                page = await mem.list(order=order, limit=4, cursor=cursor, **flt)
                walked += [m.id for m in page.memories]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert walked == [m.id for m in want]


async def test_recall_offset_pages_through_the_ranking(mem: Facade) -> None:
    await mem.remember_many(
        [MemoryInput(f"seat note {i}", user_id="o", importance=i / 10) for i in range(10)]
    )
    full = [h.memory.id for h in await mem.recall("seat note", user_id="o", k=10, reinforce=False)]
    second = [h.memory.id for h in await mem.recall("seat note", user_id="o", k=3, offset=3, reinforce=False)]
    assert second == full[3:6]
    assert list(await mem.recall("seat note", user_id="o", k=3, offset=10, reinforce=False)) == []
    with pytest.raises(InvalidMemoryError):
        await mem.recall("seat note", user_id="o", offset=-1)


# -- namespaces ------------------------------------------------------------------------------------------
NAMESPACES = [
    ("users", "ana", "prefs"),
    ("users", "ana", "trips"),
    ("users", "bob", "prefs"),
    ("users", "bo"),
    ("users", "b"),
    ("a.b",),
    ("a", "b"),
    ("a", "bc"),
    ("docs", "été", "x y"),
]


async def test_list_namespaces_matches_langgraph_semantics(mem: Facade) -> None:
    for namespace in NAMESPACES:
        await mem.remember(f"in {namespace}", namespace=namespace)
    await mem.remember("no namespace", user_id="u")  # not listed: it has no namespace
    assert await mem.list_namespaces() == sorted(NAMESPACES)
    assert await mem.list_namespaces(prefix=("a", "b")) == [("a", "b")]  # not ("a", "bc"), not ("a.b",)
    assert await mem.list_namespaces(prefix=("users", "*", "prefs")) == [
        ("users", "ana", "prefs"), ("users", "bob", "prefs")
    ]  # fmt: skip
    assert await mem.list_namespaces(suffix=("prefs",)) == [
        ("users", "ana", "prefs"),
        ("users", "bob", "prefs"),
    ]
    assert await mem.list_namespaces(suffix=("*", "trips")) == [("users", "ana", "trips")]
    assert await mem.list_namespaces(prefix=("users",), max_depth=2) == [
        ("users", "ana"), ("users", "b"), ("users", "bo"), ("users", "bob")
    ]  # fmt: skip
    assert await mem.list_namespaces(max_depth=1) == [("a",), ("a.b",), ("docs",), ("users",)]
    assert await mem.list_namespaces(limit=3, offset=2) == sorted(NAMESPACES)[2:5]
    assert await mem.list_namespaces(prefix=("nothing",)) == []
    with pytest.raises(InvalidMemoryError):
        await mem.list_namespaces(limit=0)
    with pytest.raises(InvalidMemoryError):
        await mem.list_namespaces(prefix=("",))


async def test_a_namespace_disappears_with_its_last_memory(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    forgotten = await mem.remember("one", namespace=("gone", "forget"))
    await mem.remember("two", namespace=("gone", "scope"))
    await mem.remember("three", namespace=("gone", "ttl"), ttl=30)
    kept = await mem.remember("four", namespace=("gone", "kept"))
    assert len(await mem.list_namespaces(prefix=("gone",))) == 4
    assert await mem.forget(forgotten)
    assert await mem.forget_by_scope(namespace=("gone", "scope")) == 1
    clock.now += 60  # the ttl one expired
    assert await mem.list_namespaces(prefix=("gone",)) == [("gone", "kept")]
    assert await mem.forget_many([kept]) == 1
    assert await mem.list_namespaces(prefix=("gone",)) == []
    await mem.remember("back", namespace=("gone", "ttl"))
    assert await mem.list_namespaces(prefix=("gone",)) == [("gone", "ttl")]
    # capacity eviction never empties a scope, and the scope filters of list / count use the index too
    cap = await open_like(mem, valkey_url, unique_name + "n", max_items_per_scope=1)
    for n in range(3):
        await cap.remember(f"v{n}", namespace=("cap",))
    assert await cap.list_namespaces() == [("cap",)] and await cap.count(namespace=("cap",)) == 1
    await cap.close()


async def test_list_namespaces_walks_many_namespaces_in_pages(mem: Facade) -> None:
    names = [("tenant", f"t{n:04d}", "notes") for n in range(300)]
    await mem.remember_many([MemoryInput(f"note {n}", namespace=ns) for n, ns in enumerate(names)])
    assert await mem.list_namespaces(prefix=("tenant",), max_depth=2, limit=5, offset=100) == [
        ns[:2] for ns in names[100:105]
    ]
    walked, offset = [], 0
    while page := await mem.list_namespaces(prefix=("tenant",), limit=64, offset=offset):
        walked += page
        offset += len(page)
    assert walked == names
    assert await mem.list_namespaces(max_depth=1) == [("tenant",)]


# -- caller-chosen global ids --------------------------------------------------------------------------------
async def test_caller_ids_name_memories_without_their_scope(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    crew = "0b1e8a9c-6c4e-4f7e-9a53-7d1c2b3a4f5e"
    assert await mem.remember("found a cheaper flight", namespace=("crew", "research"), id=crew) == crew
    born = clock.now
    got = await mem.get(crew)
    assert got is not None and got.id == crew and got.namespace == ("crew", "research")
    assert [h.memory.id for h in await mem.recall("cheaper flight", namespace=("crew", "research"))] == [crew]
    assert [m.id for m in (await mem.list(namespace_prefix=("crew",))).memories] == [crew]
    clock.now += 5
    updated = await mem.update(crew, importance=0.9)
    assert updated.id == crew and updated.importance == 0.9
    # writing the id again replaces the memory, in place (created_at kept)
    assert await mem.remember("found an even cheaper flight", namespace=("crew", "research"), id=crew) == crew
    again = await mem.get(crew)
    assert again.content == "found an even cheaper flight" and again.created_at == born
    assert await mem.count(namespace=("crew", "research")) == 1
    # mixed ids in one call, in order
    other = await mem.remember("unrelated", user_id="u")
    assert [m.id if m else None for m in await mem.get_many([other, "nobody", crew])] == [other, None, crew]
    assert await mem.forget(crew) is True
    assert await mem.get(crew) is None and await mem.forget(crew) is False
    # released: the id may now name a memory of another scope
    assert await mem.remember("moved on", namespace=("crew", "writing"), id=crew) == crew
    assert (await mem.get(crew)).namespace == ("crew", "writing")


async def test_a_live_caller_id_is_never_taken_by_another_scope(mem: Facade) -> None:
    await mem.remember("alice's", user_id="alice", id="shared-id")
    with pytest.raises(InvalidMemoryError, match="another scope"):
        await mem.remember("bob's", user_id="bob", id="shared-id")
    assert await mem.count(user_id="bob") == 0  # nothing written
    assert (await mem.get("shared-id")).user_id == "alice"
    with pytest.raises(InvalidMemoryError, match="two scopes"):
        await mem.remember_many(
            [MemoryInput("a", user_id="x", id="twice"), MemoryInput("b", user_id="y", id="twice")]
        )
    for bad in ("a" * 32, "", "x" * 513):
        with pytest.raises(InvalidMemoryError):
            await mem.remember("bad id", user_id="u", id=bad)
    with pytest.raises(InvalidMemoryError, match="not both"):
        await mem.remember("both", user_id="u", id="an-id", key="a-key")


async def test_deletions_release_caller_ids(mem: Facade, valkey_url: str, unique_name: str) -> None:
    store = mem.store
    await mem.remember_many([MemoryInput(f"n{i}", user_id="rel", id=f"rel:{i}") for i in range(4)])
    assert await mem.forget_by_scope(user_id="rel") == 4
    await mem.remember("evicted", user_id="cap", id="cap:old", importance=0.0)
    cap = await open_like(mem, valkey_url, unique_name, max_items_per_scope=1)  # the same store name
    await cap.remember("newer", user_id="cap", importance=1.0)
    assert await cap.get("cap:old") is None
    if mem.backend == "valkey":
        aliases = store.client.hkeys(store.keys.aliases)
        if hasattr(aliases, "__await__"):
            aliases = await aliases
        assert aliases == []  # every id of a deleted memory was released
    # a cursor over memories with caller ids (which may hold ":") pages exactly
    ids = await mem.remember_many([MemoryInput(f"c{i}", thread_id="cur", id=f"a:b:{i}") for i in range(5)])
    walked, cursor = [], None
    while True:
        page = await mem.list(thread_id="cur", order="oldest", limit=2, cursor=cursor)
        walked += [m.id for m in page.memories]
        if (cursor := page.next_cursor) is None:
            break
    assert walked == ids
    await cap.close()


# -- memories that are not embedded ----------------------------------------------------------------------
async def test_unembedded_memories_are_stored_listed_and_filtered_but_never_recalled(mem: Facade) -> None:
    embedded = await mem.remember("window seat please", thread_id="chat", tags=["seat"])
    quiet = await mem.remember("window seat please", thread_id="chat", tags=["seat"], embed=False)
    empty = await mem.remember("", thread_id="chat", embed=False, metadata={"role": "system"})
    got = await mem.get(quiet)
    assert got is not None and not got.embedded and (await mem.get(embedded)).embedded
    assert (await mem.get(empty)).content == ""
    hits = await mem.recall("window seat please", thread_id="chat", k=10)
    assert [h.memory.id for h in hits] == [embedded]  # neither the vector nor the lexical channel sees it
    assert {m.id for m in (await mem.list(thread_id="chat")).memories} == {embedded, quiet, empty}
    assert await mem.count(thread_id="chat", tags=["seat"]) == 2
    assert await mem.count(thread_id="chat", metadata={"role": "system"}) == 1
    # an update keeps it unembedded (and an empty content stays allowed for it only)
    changed = await mem.update(quiet, content="aisle seat now")
    assert changed.content == "aisle seat now" and not changed.embedded
    assert [h.memory.id for h in await mem.recall("aisle seat now", thread_id="chat")] == [embedded]
    assert (await mem.update(quiet, content="")).content == ""
    with pytest.raises(InvalidMemoryError):
        await mem.update(embedded, content="")
    with pytest.raises(InvalidMemoryError):
        await mem.remember("", thread_id="chat")
    # precomputed vectors are given for the embedded items only
    ids = await mem.remember_many(
        [MemoryInput("a", thread_id="v"), MemoryInput("b", thread_id="v", embed=False)],
        vectors=[[1.0] + [0.0] * 63],
    )
    assert [m.embedded for m in await mem.get_many(ids)] == [True, False]
    with pytest.raises(InvalidVectorError):
        await mem.remember_many([MemoryInput("c", thread_id="v", embed=False)], vectors=[[1.0] + [0.0] * 63])


# -- declared numeric fields ------------------------------------------------------------------------------
async def test_declared_numeric_fields_push_ranges_into_the_search(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    store = await open_like(mem, valkey_url, unique_name + "num", numeric_fields=("n", "price.eur"))
    notes = [
        MemoryInput(f"hotel note {i}", user_id="p", metadata={"n": i, "price.eur": i / 2}) for i in range(300)
    ]
    await store.remember_many(notes + [MemoryInput("no number", user_id="p", metadata={"n": "7"})])
    hits = await store.recall("hotel note", user_id="p", k=10, metadata={"n": {"$gte": 290}})
    assert sorted(h.memory.metadata["n"] for h in hits) == list(range(290, 300))
    assert await store.count(user_id="p", metadata={"n": {"$gt": 10, "$lte": 20}}) == 10
    assert await store.count(user_id="p", metadata={"price.eur": {"$lt": 1}}) == 2
    # an update moves (or removes) the numeric mirror with the metadata
    first = hits[0].memory.id
    await store.update(first, metadata={"n": "not a number"})
    assert await store.count(user_id="p", metadata={"n": {"$gte": 290}}) == 9
    await store.close()
    # the declaration belongs to the index: an existing index without it is refused
    plain = await open_like(mem, valkey_url, unique_name + "plain")
    await plain.close()
    with pytest.raises(SchemaMismatchError, match="numeric"):
        await open_like(mem, valkey_url, unique_name + "plain", numeric_fields=("n",))


# -- dotted paths into nested metadata ----------------------------------------------------------------------
NESTED = {
    "lisbon": {"metadata": {"trip": {"city": "Lisbon", "nights": 3, "tags": ["sea"]}}},
    "porto_literal": {"metadata": {"trip.city": "Porto", "trip": {"city": "Braga"}}},
    "flat": {"metadata": {"trip": "none"}},
    "deep": {"metadata": {"a": {"b": {"c": 1.0}}}},
}


@pytest.mark.parametrize("declared", [False, True], ids=["client-side", "numeric-field"])
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"trip.city": "Lisbon"}, {"lisbon"}),
        ({"trip.city": "Porto"}, {"porto_literal"}),  # a top-level key with a dot wins over the path
        ({"trip.city": "Braga"}, set()),
        ({"trip.nights": {"$gte": 3}}, {"lisbon"}),
        ({"trip.nights": {"$lt": 3}}, set()),
        ({"trip.city": {"$exists": True}}, {"lisbon", "porto_literal"}),
        ({"trip.tags": {"$contains": "sea"}}, {"lisbon"}),
        ({"a.b.c": 1}, {"deep"}),
        ({"a.b": {"c": 1}}, {"deep"}),
        ({"trip.city": {"$ne": "Lisbon"}}, {"porto_literal", "flat", "deep"}),
    ],
)
async def test_dotted_keys_reach_into_nested_metadata(
    mem: Facade, valkey_url: str, unique_name: str, flt: dict[str, Any], expected: set[str], declared: bool
) -> None:
    store = (
        await open_like(mem, valkey_url, unique_name + "d", numeric_fields=("trip.nights",))
        if declared
        else mem
    )
    await check_everywhere(store, "nested", NESTED, {"metadata": flt}, expected)
    if declared:
        await store.close()


# -- TTL refresh on read -------------------------------------------------------------------------------------
async def test_reads_with_refresh_ttl_restart_the_lifetime(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    store = mem.store
    by_id = await mem.remember("short lived", user_id="r", ttl=60)
    await mem.remember("short lived key", user_id="r", ttl=60, key="k")
    listed = await mem.remember("short lived listed", thread_id="rl", ttl=60)
    recalled = await mem.remember("short lived recalled", agent_id="ra", ttl=60)
    forever = await mem.remember("kept forever", user_id="r")
    assert (await mem.get(by_id)).ttl == 60 and (await mem.get(forever)).ttl is None
    clock.now += 50
    assert (await mem.get(by_id, refresh_ttl=True)).expires_at == clock.now + 60
    assert (await mem.get_by_key("k", user_id="r", refresh_ttl=True)).expires_at == clock.now + 60
    assert [m.expires_at for m in (await mem.list(thread_id="rl", refresh_ttl=True)).memories] == [
        clock.now + 60
    ]
    hits = await mem.recall("short lived recalled", agent_id="ra", refresh_ttl=True)
    assert [h.memory.expires_at for h in hits] == [clock.now + 60]
    assert (await mem.get(forever, refresh_ttl=True)).expires_at is None
    if mem.backend == "valkey":
        ttl = store.client.pttl(store.keys.memory(by_id))
        if hasattr(ttl, "__await__"):
            ttl = await ttl
        assert ttl > 55_000  # the server's own expiry moved too
    clock.now += 30  # past the first lifetime, inside the refreshed one
    assert {m.id for m in await mem.get_many([by_id, listed, recalled]) if m} == {by_id, listed, recalled}
    assert await mem.count(user_id="r") == 3  # the indexed expiry moved: counts agree
    clock.now += 31
    assert await mem.get(by_id) is None and await mem.count(user_id="r") == 1


# -- vectors and touch ----------------------------------------------------------------------------------
async def test_reads_return_the_stored_vector_when_asked(mem: Facade) -> None:
    vector = [3.0, 4.0] + [0.0] * 62
    (memory_id,) = await mem.remember_many([MemoryInput("a", user_id="v")], vectors=[vector])
    quiet = await mem.remember("b", user_id="v", embed=False)
    assert (await mem.get(memory_id)).vector is None  # not read unless asked
    got = await mem.get(memory_id, with_vector=True)
    assert got.vector is not None and len(got.vector) == 64
    assert got.vector[:2] == pytest.approx((0.6, 0.8))  # stored unit length, float32
    assert [m.vector is None for m in await mem.get_many([memory_id, quiet], with_vector=True)] == [
        False,
        True,
    ]


async def test_touch_reinforces_without_a_recall(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    first = await mem.remember("touched", user_id="t", id="touch-me")
    second = await mem.remember("also touched", user_id="t")
    clock.now += 100
    assert await mem.touch(["touch-me", second, "nobody", second]) == 2
    a, b = await mem.get_many([first, second])
    assert (a.access_count, a.last_accessed_at) == (1, clock.now)
    assert (b.access_count, b.last_accessed_at) == (1, clock.now)
    assert await mem.touch([]) == 0


# -- moving a memory to another scope ---------------------------------------------------------------------
async def test_update_moves_a_memory_to_another_scope(mem: Facade) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    crew = await mem.remember(
        "draft plan", namespace=("crew", "research"), id="rec-1", tags=["plan"], ttl=600
    )
    born = clock.now
    await mem.touch([crew])
    clock.now += 10
    moved = await mem.update(crew, scope=ScopeKey(namespace=("crew", "writing")), importance=0.9)
    assert moved.id == "rec-1" and moved.namespace == ("crew", "writing") and moved.importance == 0.9
    assert (moved.created_at, moved.access_count, moved.tags) == (born, 1, ("plan",))
    assert moved.expires_at == pytest.approx(born + 600)  # its lifetime does not restart
    assert await mem.count(namespace=("crew", "research")) == 0
    assert await mem.list_namespaces(prefix=("crew",)) == [("crew", "writing")]
    assert [h.memory.id for h in await mem.recall("draft plan", namespace=("crew", "writing"))] == ["rec-1"]
    # agentmem's own ids name their scope: the moved memory gets a new one, the old one names nothing
    own = await mem.remember("a thought", user_id="a")
    elsewhere = await mem.update(own, scope=ScopeKey(user_id="b"))
    assert elsewhere.id != own and elsewhere.user_id == "b" and await mem.get(own) is None
    same = await mem.update(elsewhere.id, scope=ScopeKey(user_id="b"))
    assert same.id == elsewhere.id
    with pytest.raises(NotFoundError):
        await mem.update("nobody", scope=ScopeKey(user_id="b"))
    with pytest.raises(InvalidMemoryError):
        await mem.update(same.id, scope=ScopeKey(user_id=""))


async def test_get_many_by_key_and_forget_keys_work_in_bulk_within_one_scope(mem: Facade) -> None:
    ns = ("chat", "s1")
    for n in range(5):
        await mem.remember(f"message {n}", namespace=ns, key=f"m{n}", embed=False)
    await mem.remember("other scope", namespace=("chat", "s2"), key="m1", embed=False)
    got = await mem.get_many_by_key(["m3", "nope", "m0", "m3"], namespace=ns)
    assert [m.content if m else None for m in got] == ["message 3", None, "message 0", "message 3"]
    assert await mem.forget_keys(["m0", "m1", "missing"], namespace=ns) == 2
    left = await mem.get_many_by_key([f"m{n}" for n in range(5)], namespace=ns)
    assert [m is not None for m in left] == [False, False, True, True, True]
    # the same key in another scope is another memory: untouched
    assert (await mem.get_by_key("m1", namespace=("chat", "s2"))).content == "other scope"
    # bad input: a typed error and nothing deleted
    for bad in ("m2", ["m2", ""], ["m2", 3]):
        with pytest.raises(InvalidMemoryError):
            await mem.forget_keys(bad, namespace=ns)
        with pytest.raises(InvalidMemoryError):
            await mem.get_many_by_key(bad, namespace=ns)
    assert await mem.count(namespace=ns) == 3
