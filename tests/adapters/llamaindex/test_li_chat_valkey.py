"""What only ValkeyChatStore promises: core mapping, TTL, concurrency, bad input, durability, isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import valkey.asyncio as avalkey
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.base_db import MessageStatus

from agentmem_core import (
    AsyncMemoryStore,
    ConfigurationError,
    InvalidMemoryError,
)
from agentmem_core.embeddings import HashingEmbedder
from agentmem_llamaindex import CHAT_NAMESPACE, ValkeyChatStore

pytestmark = pytest.mark.integration

Make = Callable[..., ValkeyChatStore]


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


def msgs(*contents: str) -> list[ChatMessage]:
    return [ChatMessage(content=c) for c in contents]


# -- the mapping onto the core ---------------------------------------------------------------------------
async def test_messages_are_unembedded_core_memories_of_the_session_namespace(
    valkey_chat: ValkeyChatStore,
) -> None:
    await valkey_chat.add_messages("ana-1", msgs("hi", "there"))
    await valkey_chat.archive_oldest_messages("ana-1", 1)
    page = await valkey_chat.core.list(namespace=(*CHAT_NAMESPACE, "ana-1"), order="oldest")
    assert [m.embedded for m in page.memories] == [False, False]
    assert [m.metadata for m in page.memories] == [{"status": "archived"}, {"status": "active"}]
    assert [m.sequence for m in page.memories] == [1, 2]
    # never recalled: a vector query over the whole store finds nothing
    assert len(await valkey_chat.core.recall_by_vector([1.0], k=10)) == 0
    assert await valkey_chat.core.list_namespaces(prefix=CHAT_NAMESPACE) == [(*CHAT_NAMESPACE, "ana-1")]


async def test_custom_prefix_and_shared_core_store_isolate(valkey_url: str, unique_name: str) -> None:
    """Two chat stores on one core store with different prefixes never see each other's sessions."""
    core = AsyncMemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(8))
    await core.setup()
    try:
        one = ValkeyChatStore(core)
        two = ValkeyChatStore(core, namespace_prefix=("tenant-b", "chat"))
        await one.add_message("s", ChatMessage(content="from one"))
        await two.add_message("s", ChatMessage(content="from two"))
        assert texts(await one.get_messages("s")) == ["from one"]
        assert texts(await two.get_messages("s")) == ["from two"]
        assert await one.get_keys() == ["s"] and await two.get_keys() == ["s"]
        await two.delete_messages("s")
        assert texts(await one.get_messages("s")) == ["from one"]
        # a memory the block-like user writes in the same store never shows up as a session
        await core.remember("a fact", namespace=(*CHAT_NAMESPACE, "s", "deeper"))
        assert await one.get_keys() == ["s"]
    finally:
        await core.close()


async def test_keys_that_look_like_patterns_do_not_widen(valkey_chat: ValkeyChatStore) -> None:
    for key in ("a", "a*", "*", "a.b", "a b", "ключ", "x" * 512):
        await valkey_chat.add_message(key, ChatMessage(content=f"msg of {key[:8]}"))
    assert texts(await valkey_chat.get_messages("*")) == ["msg of *"]
    assert texts(await valkey_chat.get_messages("a*")) == ["msg of a*"]
    assert await valkey_chat.count_messages("*") == 1
    await valkey_chat.delete_messages("*")
    assert await valkey_chat.count_messages("a") == 1 and await valkey_chat.count_messages("a*") == 1
    assert sorted(await valkey_chat.get_keys()) == sorted(["a", "a*", "a.b", "a b", "ключ", "x" * 512])


async def test_get_keys_sends_no_keys_or_scan(valkey_chat: ValkeyChatStore, valkey_url: str) -> None:
    for n in range(30):
        await valkey_chat.add_message(f"s{n:02d}", ChatMessage(content="x"))
    probe = avalkey.Valkey.from_url(valkey_url)
    try:
        before = await probe.info("commandstats")
        keys = await valkey_chat.get_keys()
        after = await probe.info("commandstats")
    finally:
        await probe.aclose()
    assert keys == [f"s{n:02d}" for n in range(30)]
    for command in ("cmdstat_keys", "cmdstat_scan", "cmdstat_hscan", "cmdstat_sscan", "cmdstat_zscan"):
        assert after.get(command, {}).get("calls", 0) == before.get(command, {}).get("calls", 0), command


async def test_reads_ask_for_no_counters(valkey_chat: ValkeyChatStore) -> None:
    # A chat message shows no access counters: its reads leave the memories' counter hashes alone.
    await valkey_chat.add_messages("s", [ChatMessage(content=f"m{n}") for n in range(5)])
    backend = valkey_chat._core._driver.backend
    sent: list[Any] = []
    inner = backend.aexecute

    async def recorded(ops: Any) -> Any:
        sent.extend(ops)
        return await inner(ops)

    backend.aexecute = recorded
    try:
        assert [m.content for m in await valkey_chat.get_messages("s")] == [f"m{n}" for n in range(5)]
        assert [m.content for m in await valkey_chat.get_messages("s", limit=2, offset=3)] == ["m3", "m4"]
    finally:
        del backend.aexecute
    reads = [op for op in sent if hasattr(op, "counters")]
    assert reads and not any(op.counters for op in reads)


# -- durability and TTL ----------------------------------------------------------------------------------
async def test_history_survives_a_new_client(make_valkey_chat: Make) -> None:
    first = make_valkey_chat()
    await first.asetup()
    await first.add_messages("durable", msgs("one", "two"))
    await first.archive_oldest_messages("durable", 1)
    await first.aclose()
    second = make_valkey_chat()
    await second.asetup()
    assert texts(await second.get_messages("durable", status=None)) == ["one", "two"]
    assert texts(await second.get_messages("durable")) == ["two"]
    await second.add_message("durable", ChatMessage(content="three"))
    assert texts(await second.get_messages("durable", status=None)) == ["one", "two", "three"]


async def test_ttl_expires_messages_and_reads_can_refresh_it(make_valkey_chat: Make) -> None:
    plain = make_valkey_chat(ttl=0.6)
    refreshing = make_valkey_chat(ttl=0.6, refresh_ttl=True)
    await plain.asetup()
    await plain.add_messages("short", msgs("a", "b"))
    await refreshing.add_messages("kept", msgs("c"))
    for _ in range(4):  # reads every 0.3 s keep "kept" alive past its first lifetime
        await asyncio.sleep(0.3)
        assert texts(await refreshing.get_messages("kept")) == ["c"]
    assert await plain.get_messages("short") == []
    assert await plain.count_messages("short") == 0
    assert "short" not in await plain.get_keys()
    assert texts(await plain.get_messages("kept")) == ["c"]


# -- concurrency -----------------------------------------------------------------------------------------
async def test_concurrent_batches_to_one_session_keep_every_message_and_batch_order(
    valkey_chat: ValkeyChatStore,
) -> None:
    batches = [[ChatMessage(content=f"b{b}-{i}") for i in range(5)] for b in range(12)]
    await asyncio.gather(*(valkey_chat.add_messages("busy", batch) for batch in batches))
    got = texts(await valkey_chat.get_messages("busy"))
    assert sorted(got, key=str) == sorted((m.content for b in batches for m in b), key=str)
    # each batch is contiguous and in its own order
    firsts = [got.index(f"b{b}-0") for b in range(12)]
    for b, start in enumerate(firsts):
        assert got[start : start + 5] == [f"b{b}-{i}" for i in range(5)]


async def test_concurrent_trims_from_several_clients_delete_each_message_once(make_valkey_chat: Make) -> None:
    stores = [make_valkey_chat() for _ in range(4)]
    await stores[0].asetup()
    for attempt in range(3):
        key = f"trim{attempt}"
        await stores[0].add_messages(key, [ChatMessage(content=f"m{i:02d}") for i in range(44)])
        results = await asyncio.gather(*(store.delete_oldest_messages(key, 2) for store in stores * 5))
        deleted = [m.content for result in results for m in result]
        assert len(deleted) == 40 and len(set(deleted)) == 40  # nobody got a message twice
        assert all(len(result) == 2 for result in results)  # each call topped up to its n
        assert texts(await stores[0].get_messages(key)) == ["m40", "m41", "m42", "m43"]


async def test_concurrent_calls_of_one_store_are_serialised_per_session(valkey_chat: ValkeyChatStore) -> None:
    await valkey_chat.add_messages("q", [ChatMessage(content=f"m{i:02d}") for i in range(30)])
    results = await asyncio.gather(
        *(valkey_chat.archive_oldest_messages("q", 2) for _ in range(10)),
        valkey_chat.add_messages("q", msgs("late1", "late2")),
    )
    archived = [m.content for r in results[:10] if r is not None for m in r]
    assert len(archived) == 20 and len(set(archived)) == 20  # no overlap inside one process
    assert await valkey_chat.count_messages("q", MessageStatus.ARCHIVED) == 20
    assert await valkey_chat.count_messages("q") == 12
    assert len(valkey_chat._locks) == 0  # per-session locks are dropped once unused


async def test_set_messages_against_concurrent_adds(valkey_chat: ValkeyChatStore) -> None:
    await valkey_chat.add_messages("r", msgs("old1", "old2"))
    await asyncio.gather(
        valkey_chat.set_messages("r", msgs("new1", "new2")),
        valkey_chat.add_message("r", ChatMessage(content="x")),
    )
    got = texts(await valkey_chat.get_messages("r", status=None))
    assert got in (["new1", "new2"], ["new1", "new2", "x"])  # the add ran before or after the replacement


# -- bad input: typed errors, nothing lost ---------------------------------------------------------------
async def test_bad_input_is_a_typed_error_and_writes_nothing(valkey_chat: ValkeyChatStore) -> None:
    await valkey_chat.add_messages("safe", msgs("keep1", "keep2"))
    bad_calls: list[Callable[[], Awaitable[object]]] = [
        lambda: valkey_chat.add_message("", ChatMessage(content="x")),
        lambda: valkey_chat.add_message("k" * 513, ChatMessage(content="x")),
        lambda: valkey_chat.add_message(None, ChatMessage(content="x")),  # type: ignore[arg-type]
        lambda: valkey_chat.add_message("safe", "not a message"),  # type: ignore[arg-type]
        lambda: valkey_chat.add_messages("safe", [ChatMessage(content="ok"), {"role": "user"}]),  # type: ignore[list-item]
        lambda: valkey_chat.add_messages("safe", ChatMessage(content="x")),  # type: ignore[arg-type]
        lambda: valkey_chat.add_message("safe", ChatMessage(content="x"), status="deleted"),  # type: ignore[arg-type]
        lambda: valkey_chat.add_message("safe", ChatMessage(content="\ud800 lone surrogate")),
        lambda: valkey_chat.set_messages("safe", [ChatMessage(content="ok"), "bad"]),  # type: ignore[list-item]
        lambda: valkey_chat.get_messages("safe", status="bogus"),  # type: ignore[arg-type]
        lambda: valkey_chat.count_messages(""),
        lambda: valkey_chat.delete_message("safe", "1"),  # type: ignore[arg-type]
        lambda: valkey_chat.delete_messages("safe", status="bogus"),  # type: ignore[arg-type]
    ]
    for call in bad_calls:
        with pytest.raises(InvalidMemoryError):
            await call()
    assert texts(await valkey_chat.get_messages("safe", status=None)) == ["keep1", "keep2"]
    assert await valkey_chat.get_keys() == ["safe"]


async def test_oversized_message(make_valkey_chat: Make) -> None:
    store = make_valkey_chat(core_options={"max_content_chars": 2_000})
    await store.asetup()
    await store.add_messages("big", msgs("small1", "small2"))
    huge = ChatMessage(content="x" * 5_000)
    with pytest.raises(InvalidMemoryError, match="2000"):
        await store.add_messages("big", [ChatMessage(content="fits"), huge])
    with pytest.raises(InvalidMemoryError, match="2000"):
        await store.set_messages("big", [huge])  # checked before the old history is touched
    assert texts(await store.get_messages("big")) == ["small1", "small2"]


async def test_default_limit_fits_a_megabyte_message_inline(make_valkey_chat: Make) -> None:
    store = make_valkey_chat()
    await store.asetup()
    big = ChatMessage(content="y" * 1_000_000)
    await store.add_message("mb", big)
    assert (await store.get_messages("mb"))[0].content == big.content


async def test_unknown_sessions_read_empty_and_deletes_are_no_ops(valkey_chat: ValkeyChatStore) -> None:
    assert await valkey_chat.get_messages("ghost") == []
    assert await valkey_chat.get_messages_with_ids("ghost", status=None) == []
    assert await valkey_chat.count_messages("ghost", None) == 0
    assert await valkey_chat.delete_message("ghost", 1) is None
    await valkey_chat.delete_messages("ghost")
    assert await valkey_chat.delete_oldest_messages("ghost", 2) == []
    assert await valkey_chat.archive_oldest_messages("ghost", 2) == []
    await valkey_chat.set_messages("ghost", [])
    assert await valkey_chat.get_keys() == []


def test_configuration_errors(valkey_url: str) -> None:
    with pytest.raises(ConfigurationError):
        ValkeyChatStore("valkey://x")  # type: ignore[arg-type]
    for options in ({"ttl": 0}, {"ttl": -1.0}, {"ttl": float("nan")}, {"namespace_prefix": "chat"},
                    {"namespace_prefix": ("ok", "")}, {"refresh_ttl": "yes"}):  # fmt: skip
        with pytest.raises(ConfigurationError):
            ValkeyChatStore.from_url(valkey_url, **options)
    with pytest.raises(ConfigurationError):
        ValkeyChatStore.from_url(valkey_url, core_options={"embedder": len})


async def test_before_asetup_it_runs_on_the_portable_paths(make_valkey_chat: Make) -> None:
    """Nothing of the chat store needs the index (counts fall back to reading the session's scope)."""
    store = make_valkey_chat()
    await store.add_messages("early", msgs("a", "b"))
    assert await store.count_messages("early") == 2
    await store.asetup()
    assert texts(await store.get_messages("early")) == ["a", "b"]
    # Counts now go through the index, which FT.CREATE fills from existing hashes in the background:
    # the core's setup() returns before that backfill ends (reported to the core), so poll briefly.
    for _ in range(100):
        if await store.count_messages("early") == 2:
            break
        await asyncio.sleep(0.05)
    assert await store.count_messages("early") == 2


def test_serialises_its_configuration_only(make_valkey_chat: Make) -> None:
    store = make_valkey_chat(ttl=30)
    assert store.model_dump() == {"namespace_prefix": CHAT_NAMESPACE, "ttl": 30.0, "refresh_ttl": False}
    assert ValkeyChatStore.class_name() == "ValkeyChatStore"


async def test_order_survives_a_wall_clock_stepping_back(make_valkey_chat: Make) -> None:
    """One store's batches get strictly increasing times, whatever the store's clock does."""

    class SteppingClock:
        now = 1_000_000.5

        def __call__(self) -> float:
            return self.now

    clock = SteppingClock()
    chat = make_valkey_chat(core_options={"clock": clock})
    await chat.asetup()
    for reading, batch in zip(
        (1_000_000.5, 999_000.0, 999_000.0, 1_000_000.5), (msgs("first"), msgs("second", "third"),
                                                          msgs("fourth"), msgs("fifth"))
    ):  # fmt: skip
        clock.now = reading
        await chat.add_messages("clock", batch)
    assert texts(await chat.get_messages("clock")) == ["first", "second", "third", "fourth", "fifth"]


async def test_messages_are_stamped_by_the_core_store_clock(valkey_url: str, unique_name: str) -> None:
    from llama_index.core.llms import ChatMessage

    class Clock:
        now = 1_500_000_000.0

        def __call__(self) -> float:
            return self.now

    chat = ValkeyChatStore.from_url(valkey_url, name=unique_name, core_options={"clock": Clock()})
    await chat.asetup()
    try:
        await chat.add_message("s1", ChatMessage(role="user", content="hello"))
        (memory,) = (await chat.core.list(limit=5)).memories
        assert 1_500_000_000.0 <= memory.created_at < 1_500_000_001.0  # not the wall clock
    finally:
        await chat.aclose()
