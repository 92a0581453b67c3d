"""Hostile user strings on the embedded backend (no network): typed errors only, and no widened query.

The properties and strategies live in ``tests/_hostile_input.py`` (shared with
``tests/integration/test_hostile_input_valkey.py``); see its docstring. Each test opens one store in a
temporary SQLite file, plants tenant A (``user_id="acme"`` with agent, thread and namespace, and a tenant
literally named ``*``) once, then runs its property over hostile values B: query syntax, whitespace and
control characters, NUL, 255..5000-character strings, RTL text, combining marks, emoji, lone surrogates,
look-alikes of A's ids and of their encoded tokens, and ``*``.

Examples per property (``max_examples``; Hypothesis may stop a little earlier when it exhausts a small
space): core writes 400, core reads / deletes 300, LangGraph store 200, CrewAI storage 150, LlamaIndex
chat store 200. The bug the properties found here (a lone surrogate in a tag filter) is fixed; its minimal
reproduction is the test at the end, and no error is tolerated any more.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from _hostile_input import (
    CREW_PLACES,
    DIMS,
    FILTER_PLACES,
    SETTINGS,
    SURROGATE,
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
from agentmem_core.errors import InvalidMemoryError
from agentmem_langgraph import ValkeyMemoryStore
from agentmem_llamaindex import ValkeyChatStore

pytestmark = pytest.mark.slow

NAME = "hostile"


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hostile.db'}"


def test_hostile_values_in_core_writes(tmp_path: Path) -> None:
    with core_store(_url(tmp_path), NAME) as store:
        planted = plant(store, alive=lambda: store.health())

        @settings(SETTINGS, max_examples=400)
        @given(where=st.sampled_from(WRITE_FIELDS), value=hostile())
        def prop(where: str, value: str) -> None:
            check_core_write(planted, where, value)

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(outcomes, "MemoryStore.remember")


def test_hostile_values_in_core_filters_never_widen_a_query(tmp_path: Path) -> None:
    with core_store(_url(tmp_path), NAME) as store:
        planted = plant(store, alive=lambda: store.health())

        @settings(SETTINGS, max_examples=300)
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


def test_hostile_langgraph_labels_keys_and_filters(tmp_path: Path) -> None:
    index = {"dims": DIMS, "embed": lg_embed, "fields": ["text"]}
    with ValkeyMemoryStore.from_url(
        _url(tmp_path),
        name=NAME,
        index=index,
        core_options={"index": IndexConfig(dims=DIMS, algorithm="FLAT")},
    ) as lg:
        lg.setup()
        items = lg_plant(lg)
        lg_unchanged(lg, items)

        @settings(SETTINGS, max_examples=200)
        @given(
            where=st.sampled_from(("label", "deep-label", "key", "field", "filter", "query")), value=hostile()
        )
        def prop(where: str, value: str) -> None:
            check_langgraph(lg, items, where, value, allowed=(InvalidNamespaceError,))
            lg.core.health()

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(outcomes, "BaseStore.put", "BaseStore.search")


def test_hostile_crewai_scope_paths_and_filters(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        from agentmem_crewai import ValkeyStorage

    storage = ValkeyStorage.from_url(_url(tmp_path), name=NAME, dims=DIMS)
    try:
        ids = crew_plant(storage)

        @settings(SETTINGS, max_examples=150)
        @given(where=st.sampled_from(CREW_PLACES), value=hostile())
        def prop(where: str, value: str) -> None:
            check_crewai(storage, ids, where, value)
            storage.core.health()

        take_outcomes()
        prop()
        outcomes = take_outcomes()
        print(outcomes)
        assert_exercised(outcomes, "ValkeyStorage.save", "ValkeyStorage.search", "ValkeyStorage.delete")
    finally:
        storage.close()


def test_hostile_llamaindex_chat_session_keys(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    core = AsyncMemoryStore.from_url(_url(tmp_path), name=NAME, embedder=HashingEmbedder(DIMS))
    chat = ValkeyChatStore(core)
    try:
        loop.run_until_complete(chat.asetup())
        loop.run_until_complete(chat_plant(chat))

        @settings(SETTINGS, max_examples=200)
        @given(value=hostile(), content=st.one_of(st.just("hello"), hostile()))
        def prop(value: str, content: str) -> None:
            check_chat(loop, chat, value, content)

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
def test_a_lone_surrogate_in_a_tag_filter_is_a_typed_error(tmp_path: Path, call: str) -> None:
    check_surrogate_tag_filter(_url(tmp_path), NAME, call)


def test_a_lone_surrogate_tag_is_refused_typed_on_write(tmp_path: Path) -> None:
    """The control of the bug above: the same value as a tag on write is an InvalidMemoryError."""
    with core_store(_url(tmp_path), NAME) as store:
        with pytest.raises(InvalidMemoryError):
            store.remember("window seat", user_id="acme", tags=[SURROGATE])
        assert store.count() == 0
