"""Reads with ``counters=False``: the same memories, their counters left unread, and less to send.

A memory's counters (``access_count``, ``last_accessed_at``, ``duplicate_count``) live outside its indexed
hash, so reading them costs one more read per memory, and a recall one more round trip. A caller that
does not show them (a LangGraph ``SearchItem``, a LlamaIndex chat message) asks for reads without them.
Every test runs on all four store flavours (Valkey and the embedded backend, sync and async).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from _support import Facade

from agentmem_core import InvalidMemoryError, Memory
from agentmem_core.embeddings import HashingEmbedder

SIMILARITY = {"similarity": 1.0, "recency": 0.0, "importance": 0.0}
QUERY = "a window seat on the night train"


def _unread(memory: Memory | None) -> Memory | None:
    """``memory`` as a read without counters gives it."""
    if memory is None:
        return None
    return replace(memory, access_count=None, last_accessed_at=None, duplicate_count=None)


def _batches(mem: Facade) -> list[Any]:
    """Records the operation batches the store sends from now on (one per round trip)."""
    backend = mem.store._driver.backend  # type: ignore[union-attr]
    sent: list[Any] = []
    name = "aexecute" if hasattr(backend, "aexecute") else "execute"
    inner = getattr(backend, name)
    if name == "aexecute":

        async def recorded(ops: Any) -> Any:
            sent.append(list(ops))
            return await inner(ops)

    else:

        def recorded(ops: Any) -> Any:  # type: ignore[misc]
            sent.append(list(ops))
            return inner(ops)

    setattr(backend, name, recorded)
    return sent


async def _seed(mem: Facade) -> list[str]:
    ids = [
        await mem.remember("a window seat on the night train to Vienna", user_id="u", key="seat"),
        await mem.remember("prefers green tea in the morning", user_id="u", key="tea", importance=0.9),
        await mem.remember("the hotel is near the river", user_id="u", metadata={"stars": 4}),
        await mem.remember("booked the night train back", user_id="u", ttl=3600),
    ]
    await mem.recall(QUERY, user_id="u", k=2)  # reinforced: the counters differ from their defaults
    return ids


async def test_every_read_gives_the_same_memories_without_their_counters(mem: Facade) -> None:
    ids = await _seed(mem)
    assert any((m.access_count or 0) > 0 for m in await mem.get_many(ids))
    for name, args, kwargs in [
        ("get", (ids[0],), {}),
        ("get_many", (ids,), {}),
        ("get_by_key", ("seat",), {"user_id": "u"}),
        ("get_many_by_key", (["tea", "missing", "seat"],), {"user_id": "u"}),
    ]:
        read = getattr(mem, name)
        full, bare = await read(*args, **kwargs), await read(*args, counters=False, **kwargs)
        if isinstance(full, list):
            assert bare == [_unread(m) for m in full], name
        else:
            assert bare == _unread(full), name
    for order in ("newest", "oldest"):
        full_page = await mem.list(user_id="u", order=order, limit=3)
        bare_page = await mem.list(user_id="u", order=order, limit=3, counters=False)
        assert bare_page.memories == tuple(_unread(m) for m in full_page.memories)
        assert bare_page.next_cursor == full_page.next_cursor
    vector = HashingEmbedder(64).embed([QUERY])[0]
    for weights in (SIMILARITY, None):  # similarity alone (one round trip), and the composite ranking
        for recall, query in ((mem.recall, QUERY), (mem.recall_by_vector, vector)):
            kwargs = {"user_id": "u", "k": 3, "reinforce": False, "weights": weights}
            full_hits = await recall(query, **kwargs)
            bare_hits = await recall(query, counters=False, **kwargs)
            assert [h.memory for h in bare_hits] == [_unread(h.memory) for h in full_hits]
            assert [h.scores for h in bare_hits] == [h.scores for h in full_hits]


async def test_a_similarity_recall_without_counters_takes_one_round_trip(mem: Facade) -> None:
    await _seed(mem)
    vector = HashingEmbedder(64).embed([QUERY])[0]
    kwargs: dict[str, Any] = {"user_id": "u", "k": 3, "reinforce": False, "weights": SIMILARITY}
    await mem.recall_by_vector(vector, **kwargs)  # the scope is known from here on
    sent = _batches(mem)
    hits = await mem.recall_by_vector(vector, counters=False, **kwargs)
    assert len(hits) == 3 and len(sent) == 1
    del sent[:]
    await mem.recall_by_vector(vector, **kwargs)
    assert len(sent) == 2  # the search, then the hits' counters (and fields)


async def test_a_hit_on_an_extra_vector_is_read_from_its_memory(mem: Facade) -> None:
    # A memory's vectors after the first are documents of their own, without its content: a hit found
    # through one of them is read from the memory (one more round trip), never returned half empty.
    first = await mem.remember(
        "packing list", user_id="u", texts=["passport and charger", QUERY], metadata={"n": 1}
    )
    await mem.remember("the hotel is near the river", user_id="u")
    vector = HashingEmbedder(64).embed([QUERY])[0]
    kwargs: dict[str, Any] = {"user_id": "u", "k": 2, "reinforce": False, "weights": SIMILARITY}
    full = await mem.recall_by_vector(vector, **kwargs)
    assert full[0].memory.id == first
    bare = await mem.recall_by_vector(vector, counters=False, **kwargs)
    assert [h.memory for h in bare] == [_unread(h.memory) for h in full]
    assert bare[0].memory.content == "packing list" and bare[0].memory.metadata == {"n": 1}


async def test_a_reinforced_recall_without_counters_still_reinforces(mem: Facade) -> None:
    ids = await _seed(mem)
    before = {m.id: m.access_count for m in await mem.get_many(ids) if m is not None}
    hits = await mem.recall(QUERY, user_id="u", k=1, counters=False)
    assert hits[0].memory.access_count is None and hits[0].memory.last_accessed_at is None
    after = await mem.get(hits[0].memory.id)
    assert after is not None and after.access_count == (before[after.id] or 0) + 1


@pytest.mark.parametrize("bad", ["no", 0, None])
async def test_counters_must_be_a_bool(mem: Facade, bad: Any) -> None:
    ids = await _seed(mem)
    calls = [
        mem.get(ids[0], counters=bad),
        mem.list(user_id="u", counters=bad),
        mem.get_by_key("seat", user_id="u", counters=bad),
        mem.recall(QUERY, user_id="u", counters=bad),
    ]
    for call in calls:
        with pytest.raises(InvalidMemoryError, match="counters must be True or False"):
            await call
