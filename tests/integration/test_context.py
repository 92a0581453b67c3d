"""``remember(context=...)`` on every backend: the context's words find a memory whose own words cannot,
weigh less than the content's, are never returned, and survive a content update, a move and a transfer."""

from __future__ import annotations

import io
from typing import Any

import pytest
from _support import Facade

from agentmem_core import ScopeKey
from agentmem_core.errors import InvalidMemoryError

NS = ("trip",)


async def _noise(mem: Facade, n: int = 40) -> None:
    await mem.remember_many([{"content": f"note {i} about the weather", "namespace": NS} for i in range(n)])


async def _top_ids(mem: Facade, query: str, k: int = 3) -> list[str]:
    result = await mem.recall(query, k=k, namespace=NS)
    return [hit.memory.id for hit in result.hits if hit.scores.lexical]


async def test_context_words_find_a_short_reply(mem: Facade) -> None:
    await _noise(mem)
    plain = await mem.remember("Yes, twice!", namespace=NS)
    situated = await mem.remember(
        "Yes, twice!", namespace=NS, context="Caroline: have you ever been to Kyoto?"
    )
    found = await _top_ids(mem, "Kyoto")
    assert found[:1] == [situated]
    assert plain not in found  # the same reply without its context has no word of the question
    memory = await mem.get(situated)
    assert memory.content == "Yes, twice!"  # the context is not part of what is returned


async def test_content_words_outweigh_context_words(mem: Facade) -> None:
    await _noise(mem)
    own = await mem.remember("Kyoto temples", namespace=NS)
    borrowed = await mem.remember("Lovely gardens", namespace=NS, context="Kyoto temples")
    weakest = await mem.remember("Long walks", namespace=NS, context="temples")  # (min-max: scaled to 0)
    result = await mem.recall("Kyoto temples", k=50, namespace=NS)  # every memory of the scope
    lexical = {h.memory.id: h.scores.lexical for h in result.hits}
    assert result.hits[0].memory.id == own and lexical[own] == pytest.approx(1.0)
    assert 0.0 < lexical[borrowed] < 1.0 and lexical[weakest] == 0.0


async def test_a_content_update_keeps_the_context(mem: Facade) -> None:
    await _noise(mem)
    memory_id = await mem.remember("Yes, twice!", namespace=NS, context="Have you been to Kyoto?")
    await mem.update(memory_id, content="Yes, three times now")
    assert (await _top_ids(mem, "Kyoto"))[:1] == [memory_id]
    assert (await _top_ids(mem, "three times"))[:1] == [memory_id]


async def test_a_moved_or_transferred_memory_keeps_its_context(mem: Facade) -> None:
    await _noise(mem)
    await mem.remember("Yes, twice!", namespace=NS, context="Have you been to Kyoto?")
    buffer = io.StringIO()
    await mem.export(buffer, namespace=NS)
    await mem.forget_by_scope(namespace=NS)
    buffer.seek(0)
    await mem.import_records(buffer)
    (back,) = await _top_ids(mem, "Kyoto", k=1)
    assert (await mem.get(back)).content == "Yes, twice!"
    moved = (await mem.update(back, scope=ScopeKey(namespace=("elsewhere",)))).id
    result = await mem.recall("Kyoto", k=1, namespace=("elsewhere",))
    assert [h.memory.id for h in result.hits] == [moved]


async def test_remember_many_fills_context_from_the_previous_turns(mem: Facade) -> None:
    turns = [
        {"content": "Caroline: Have you ever been to Kyoto?", "namespace": NS},
        {"content": "Melanie: Yes, twice!", "namespace": NS},
        {"content": "Caroline: What did you like most?", "namespace": ("other",)},  # another scope
        {"content": "Melanie: The gardens.", "namespace": NS, "context": "my own context"},
        {"content": "Caroline: Nice.", "namespace": NS},
    ]
    ids = await mem.remember_many(turns, context_window=1)
    records: list[dict[str, Any]] = []
    await mem.export(records.append)
    lex = {r["id"]: r["lexical"]["lex"] for r in records[1:]}
    assert [lex[i].partition(" | ")[2] for i in ids] == [
        "",  # the first turn has no previous turn
        "carolin ever kyoto",  # the previous turn's words, analysed
        "",  # the other scope's turn has no previous turn there
        "context",  # a given context is kept ("my" and "own" are stop words)
        "melani garden",  # the previous turn of its own scope
    ]


async def test_bad_context_is_refused_before_any_write(mem: Facade) -> None:
    for bad, message in ((42, "context must be a string"), ("x" * 10**6, "context is")):
        with pytest.raises(InvalidMemoryError, match=message):
            await mem.remember("fine", namespace=NS, context=bad)
    with pytest.raises(InvalidMemoryError, match="embed=False"):
        await mem.remember("fine", namespace=NS, context="words", embed=False)
    with pytest.raises(InvalidMemoryError, match="context_window"):
        await mem.remember_many(["a", "b"], context_window=-1)
    assert (await mem.count(namespace=NS)) == 0
