"""A store remembers the scopes it has read (a tag always names the same scope), never whether they exist.

Reads filtered by a scope field find their scopes in the scope index and, for tags not seen before, read
their descriptors; a list whose filter matched the same scopes last time sends its first reads of them
with the index read. Whether a scope is there is still the index's answer on every read, so another
store's forget or new scope shows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _support import Facade, open_like

from agentmem_core import MemoryStore
from agentmem_core._context import ScopeCache
from agentmem_core._encoding import ScopeKey


async def test_another_stores_forget_and_new_scopes_show_at_once(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    await mem.remember("first", user_id="ana", thread_id="t1")
    assert [m.content for m in (await mem.list(user_id="ana")).memories] == ["first"]
    assert await mem.count(user_id="ana") == 1
    other = await open_like(mem, valkey_url, unique_name)
    try:
        await other.remember("first, again", user_id="ana", thread_id="t1")  # the same scopes as before
        assert sorted(m.content for m in (await mem.list(user_id="ana")).memories) == [
            "first",
            "first, again",
        ]
        await other.forget_by_scope(user_id="ana", thread_id="t1")
        await other.remember("first", user_id="ana", thread_id="t1")
        await other.remember("second", user_id="ana", thread_id="t2")  # a scope mem has not seen
        assert sorted(m.content for m in (await mem.list(user_id="ana")).memories) == ["first", "second"]
        await other.forget_by_scope(user_id="ana", thread_id="t1")
        assert [m.content for m in (await mem.list(user_id="ana")).memories] == ["second"]
        assert await mem.count(user_id="ana") == 1
        await other.forget_by_scope(user_id="ana", thread_id="t2")
        assert (await mem.list(user_id="ana")).memories == ()
        await other.remember("again", user_id="ana", thread_id="t1")  # the forgotten scope, re-created
        assert [m.content for m in (await mem.list(user_id="ana")).memories] == ["again"]
    finally:
        await other.close()


def test_a_known_scope_costs_one_round_trip_less(valkey_url: str, unique_name: str) -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0]] * len(texts)

    writer = MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
    reader = MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
    writer.setup()
    reader.setup()
    try:
        items = [{"content": f"m{i}", "namespace": ("chat", "s1"), "embed": False} for i in range(5)]
        writer.remember_many(items)
        reader.list(namespace=("elsewhere",), limit=1)  # its first call's own reads (live config) done
        counts = []
        for store in (reader, reader, writer):  # cold, then warm; the writer knows the scope it wrote
            batches: list[Sequence[Any]] = []
            send = store._driver.backend._send_once  # type: ignore[attr-defined]

            def counting(commands: Sequence[Any], send: Any = send, batches: Any = batches) -> list[Any]:
                batches.append(commands)
                return send(commands)  # type: ignore[no-any-return]

            store._driver.backend._send_once = counting  # type: ignore[attr-defined]
            page = store.list(namespace=("chat", "s1"), order="oldest", limit=10)
            store._driver.backend._send_once = send  # type: ignore[attr-defined]
            assert [m.content for m in page.memories] == [f"m{i}" for i in range(5)]
            counts.append(len(batches))
        cold, again, written = counts
        # cold: the index range, the descriptors, the scope's page (its time order and its memories in
        # one script); again: the page rides with the index read (the same scopes as last time), one
        # round trip in all; the writer: it guessed the scope it wrote, so its page rides too
        assert (cold, again, written) == (3, 1, 1)
    finally:
        writer.close()
        reader.close()


def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    cache = ScopeCache(size=2)
    a, b, c = (ScopeKey(namespace=(n,)) for n in "abc")
    cache.put(a)
    cache.put(b)
    assert cache.get(a.tag) == a  # a is now the most recently used
    cache.put(c)
    assert cache.get(b.tag) is None and cache.get(a.tag) == a and cache.get(c.tag) == c


def test_a_scope_whose_descriptor_is_missing_is_read_again(valkey_url: str, unique_name: str) -> None:
    # The index read's members are kept with the scopes they gave only when every member's scope was
    # read: a member whose descriptor is not there yet (a scope being registered) is looked up again on
    # the next read, not taken as absent for as long as the index holds the same members.
    import valkey

    from agentmem_core._encoding import Keys

    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0]] * len(texts)

    store = MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
    store.setup()
    raw = valkey.Valkey.from_url(valkey_url)
    try:
        store.remember("in t1", user_id="ana", thread_id="t1", embed=False)
        store.remember("in t2", user_id="ana", thread_id="t2", embed=False)
        key = ScopeKey(user_id="ana", thread_id="t2")
        scopes = Keys(unique_name).scopes
        descriptor = raw.hget(scopes, key.tag)
        assert descriptor is not None
        raw.hdel(scopes, key.tag)
        reader = MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
        reader.setup()
        try:
            for _ in range(2):  # t2 is in the index, its descriptor is not: only t1 is listed
                assert [m.content for m in reader.list(user_id="ana").memories] == ["in t1"]
            raw.hset(scopes, key.tag, descriptor)
            assert sorted(m.content for m in reader.list(user_id="ana").memories) == ["in t1", "in t2"]
            # the same members, every scope read: the next read takes the kept scopes, with the same answer
            assert sorted(m.content for m in reader.list(user_id="ana").memories) == ["in t1", "in t2"]
        finally:
            reader.close()
    finally:
        raw.close()
        store.close()


def test_the_same_index_read_gives_the_kept_scopes() -> None:
    cache = ScopeCache()
    a, b = ScopeKey(user_id="a"), ScopeKey(user_id="b")
    selection = (None, None, None, None, "a")
    assert cache.same_read(selection, (b"m1",)) is None  # nothing kept yet
    cache.matched(selection, [a], (b"m1",))
    assert cache.same_read(selection, (b"m1",)) == (a,)
    assert cache.same_read(selection, (b"m1", b"m2")) is None  # other members: read them
    assert cache.same_read((None, None, None, None, "b"), (b"m1",)) is None  # another selection
    cache.matched(selection, [a, b])  # matched without members (one was not read): nothing to reuse
    assert cache.same_read(selection, (b"m1",)) is None
    assert cache.guess(selection) == (a, b)


async def test_a_writers_guess_of_its_own_scope_is_checked(
    mem: Facade, valkey_url: str, unique_name: str
) -> None:
    # the store that wrote ("chat", "s1") guesses that a read of that namespace finds that scope alone;
    # another store's scope under the same namespace (with a user) proves the guess wrong, and the read
    # still returns both, on every backend
    other = await open_like(mem, valkey_url, unique_name)
    try:
        await other.remember("the user's", namespace=("chat", "s1"), user_id="ana")
        await mem.remember("the session's", namespace=("chat", "s1"))
        page = await mem.list(namespace=("chat", "s1"), order="oldest")
        assert [m.content for m in page.memories] == ["the user's", "the session's"]
        assert await mem.count(namespace=("chat", "s1")) == 2
        hits = await mem.recall("the", k=5, namespace=("chat", "s1"))
        assert sorted(h.memory.content for h in hits) == ["the session's", "the user's"]
    finally:
        await other.close()


def test_a_forget_between_a_new_scopes_registration_and_its_write_leaves_it_registered(
    valkey_url: str, unique_name: str
) -> None:
    # A new scope is registered in the round trip of its first write, and registered again after the
    # write in that same round trip. Here another client's forget_by_scope unregisters it between the
    # two (the pipeline is not a transaction, so this interleaving can happen): the write still ends
    # with its scope registered, so list finds the memory, and in one round trip.
    import valkey

    from agentmem_core._plan import ScriptCall

    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0]] * len(texts)

    store = MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
    store.setup()
    other = MemoryStore.from_url(valkey_url, name=unique_name, embedder=embed)
    other.setup()
    raw = valkey.Valkey.from_url(valkey_url)
    backend = store._driver.backend  # type: ignore[attr-defined]
    inner = backend._round_trip
    trips: list[int] = []

    def interleaved(commands: Any) -> list[Any]:
        trips.append(len(commands))
        first = next((i for i, c in enumerate(commands) if isinstance(c, ScriptCall)), None)
        if first is None:
            return list(inner(commands))
        head = list(inner(commands[:first]))  # the registration
        other.forget_by_scope(user_id="race")  # another client: empties and unregisters the scope
        return head + list(inner(commands[first:]))

    try:
        other.remember("seen by the other store first", user_id="race", embed=False)
        other.forget_by_scope(user_id="race")  # other now knows the scope, and it is gone
        store.remember("warm-up", user_id="elsewhere", embed=False)  # its first call's own reads done
        backend._round_trip = interleaved
        try:
            memory_id = store.remember("written after the forget", user_id="race", embed=False)
        finally:
            del backend._round_trip
        assert trips == [trips[0]]  # one round trip
        assert raw.hget(store.keys.scopes, ScopeKey(user_id="race").tag) is not None
        assert [m.id for m in other.list(user_id="race").memories] == [memory_id]
    finally:
        raw.close()
        other.close()
        store.close()
