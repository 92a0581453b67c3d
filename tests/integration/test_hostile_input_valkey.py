"""Hostile user strings on the real Valkey + search module: typed errors only, no widened query, no crash.

The same properties as ``tests/unit/test_hostile_input_fuzz.py`` (shared in ``tests/_hostile_input.py``; see
its docstring), on the session's server (``valkey_url``), each test on a store name of its own
(``unique_name``; the server is never flushed). After every example the server must still answer PING.
Hostile values B: RediSearch / valkey-search query syntax (``@ | { } ( ) [ ] * - ~ " ' \\ : ; $ % ^ , . < >
= !``), whitespace and control characters, NUL, 255..5000-character strings, RTL text, combining marks,
emoji, lone surrogates, look-alikes of tenant A's ids and of their encoded TAG tokens, and ``*``.

Examples per property (``max_examples``): core writes 300, core reads / deletes 250, LangGraph store 150,
CrewAI storage 120, LlamaIndex chat store 150.

The bugs the properties found (a lone surrogate in a tag filter; a lone ``_`` query word on RediSearch)
are fixed; their minimal reproductions are the tests at the end, and no error is tolerated any more.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator

import pytest
import valkey
from _hostile_input import (
    CREW_PLACES,
    DIMS,
    FILTER_PLACES,
    SETTINGS,
    SURROGATE_CALLS,
    WRITE_FIELDS,
    assert_exercised,
    chat_plant,
    check_chat,
    check_core_reads,
    check_core_write,
    check_crewai,
    check_langgraph,
    check_surrogate_tag_filter,
    core_store,
    crew_plant,
    hostile,
    lg_embed,
    lg_plant,
    lg_unchanged,
    plant,
    take_outcomes,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from langgraph.store.base import InvalidNamespaceError

from agentmem_core import AsyncMemoryStore, IndexConfig
from agentmem_core.embeddings import HashingEmbedder
from agentmem_langgraph import ValkeyMemoryStore
from agentmem_llamaindex import ValkeyChatStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def ping(valkey_url: str) -> Iterator[valkey.Valkey]:
    """A client of its own: PING after each example proves the server survived it."""
    client = valkey.Valkey.from_url(valkey_url)
    yield client
    client.close()


def alive(client: valkey.Valkey) -> None:
    assert client.ping() is True, "the server stopped answering PING"


def test_hostile_values_in_core_writes(valkey_url: str, unique_name: str, ping: valkey.Valkey) -> None:
    with core_store(valkey_url, unique_name) as store:
        planted = plant(store, alive=lambda: alive(ping))

        @settings(SETTINGS, max_examples=300)
        @given(where=st.sampled_from(WRITE_FIELDS), value=hostile())
        def prop(where: str, value: str) -> None:
            check_core_write(planted, where, value)

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(outcomes, "MemoryStore.remember")


def test_hostile_values_in_core_filters_never_widen_a_query(
    valkey_url: str, unique_name: str, ping: valkey.Valkey
) -> None:
    with core_store(valkey_url, unique_name) as store:
        planted = plant(store, alive=lambda: alive(ping))

        @settings(SETTINGS, max_examples=250)
        @given(where=st.sampled_from(FILTER_PLACES), value=hostile(), seed_b=st.booleans())
        def prop(where: str, value: str, seed_b: bool) -> None:
            check_core_reads(planted, where, value, seed_b)

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(
            outcomes,
            "MemoryStore.recall",
            "MemoryStore.list",
            "MemoryStore.count",
            "MemoryStore.forget_by_scope",
            "MemoryStore.stats",
        )


def test_hostile_langgraph_labels_keys_and_filters(
    valkey_url: str, unique_name: str, ping: valkey.Valkey
) -> None:
    index = {"dims": DIMS, "embed": lg_embed, "fields": ["text"]}
    with ValkeyMemoryStore.from_url(
        valkey_url, name=unique_name, index=index,
        core_options={"index": IndexConfig(dims=DIMS, algorithm="FLAT")},
    ) as lg:  # fmt: skip
        lg.setup()
        items = lg_plant(lg)
        lg_unchanged(lg, items)

        @settings(SETTINGS, max_examples=150)
        @given(
            where=st.sampled_from(("label", "deep-label", "key", "field", "filter", "query")), value=hostile()
        )
        def prop(where: str, value: str) -> None:
            check_langgraph(lg, items, where, value, allowed=(InvalidNamespaceError,))
            alive(ping)

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(outcomes, "BaseStore.put", "BaseStore.search")


def test_hostile_crewai_scope_paths_and_filters(
    valkey_url: str, unique_name: str, ping: valkey.Valkey
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        from agentmem_crewai import ValkeyStorage

    storage = ValkeyStorage.from_url(valkey_url, name=unique_name, dims=DIMS)
    try:
        ids = crew_plant(storage)

        @settings(SETTINGS, max_examples=120)
        @given(where=st.sampled_from(CREW_PLACES), value=hostile())
        def prop(where: str, value: str) -> None:
            check_crewai(storage, ids, where, value)
            alive(ping)

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(outcomes, "ValkeyStorage.save", "ValkeyStorage.search", "ValkeyStorage.delete")
    finally:
        storage.close()


def test_hostile_llamaindex_chat_session_keys(valkey_url: str, unique_name: str, ping: valkey.Valkey) -> None:
    loop = asyncio.new_event_loop()
    core = AsyncMemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(DIMS))
    chat = ValkeyChatStore(core)
    try:
        loop.run_until_complete(chat.asetup())
        loop.run_until_complete(chat_plant(chat))

        @settings(SETTINGS, max_examples=150)
        @given(value=hostile(), content=st.one_of(st.just("hello"), hostile()))
        def prop(value: str, content: str) -> None:
            check_chat(loop, chat, value, content)
            alive(ping)

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(
            outcomes,
            "ValkeyChatStore.add_message",
            "ValkeyChatStore.get_messages",
            "ValkeyChatStore.delete_messages",
        )
    finally:
        loop.run_until_complete(core.close())
        loop.close()


# -- bugs the properties found, fixed (their minimal reproductions) --------------------------------------
@pytest.mark.parametrize("call", SURROGATE_CALLS)
def test_a_lone_surrogate_in_a_tag_filter_is_a_typed_error(
    valkey_url: str, unique_name: str, call: str
) -> None:
    check_surrogate_tag_filter(valkey_url, unique_name, call)


@pytest.mark.parametrize("query", ["_", "seat _", "langgraph"])
def test_a_lone_underscore_word_does_not_break_text_recall(
    valkey_url: str, unique_name: str, query: str
) -> None:
    if query == "langgraph":
        index = {"dims": DIMS, "embed": lg_embed, "fields": ["text"]}
        with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=index) as lg:
            lg.setup()
            lg.put(("users", "acme"), "pref", {"text": "window seat"})
            assert [i.key for i in lg.search(("users", "acme"), query="_")] == ["pref"]
        return
    with core_store(valkey_url, unique_name) as store:
        store.remember("window seat", user_id="acme")
        assert [h.memory.content for h in store.recall(query, user_id="acme")] == ["window seat"]


def test_underscore_words_that_are_not_alone_recall(valkey_url: str, unique_name: str) -> None:
    """The control of the bug above: '_' inside a word, or doubled, is fine."""
    with core_store(valkey_url, unique_name) as store:
        store.remember("window seat", user_id="acme")
        for query in ("__", "_a", "a_b", "seat __"):
            assert len(store.recall(query, user_id="acme")) == 1, query
