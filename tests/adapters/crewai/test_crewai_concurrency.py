"""Concurrency: Memory's background saves and direct saves race recalls on one storage; nothing is lost."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from _crewai_support import DIMS, embed, vec
from crewai import Memory
from crewai.llms.base_llm import BaseLLM
from crewai.memory.types import MemoryRecord

from agentmem_core import AsyncMemoryStore, IndexConfig
from agentmem_crewai import ValkeyStorage
from agentmem_crewai.storage import never_embeds

WORDS = ["amber", "birch", "cedar", "dune", "ember", "fjord", "grove", "heath", "inlet", "juniper"]


def text(batch: int, i: int) -> str:
    return f"note {batch} {i} {WORDS[batch % 10]} {WORDS[i % 10]} {batch * 100 + i}"


class NoLLM(BaseLLM):
    def call(self, messages: object, *args: object, **kwargs: object) -> str:
        raise AssertionError("every field is given: no LLM call expected")


def hammer(
    stop: threading.Event, errors: list[BaseException], work: Callable[[], object]
) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            try:
                work()
            except BaseException as exc:  # collected and re-raised by the test
                errors.append(exc)
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_background_saves_while_recalls_run(storage: ValkeyStorage) -> None:
    batches, per_batch = 12, 10
    memories = [
        Memory(storage=storage, llm=NoLLM(model="none"), embedder=embed, consolidation_threshold=1.0)
        for _ in range(2)
    ]  # two save pools: saves of two Memory objects run in parallel
    stop = threading.Event()
    errors: list[BaseException] = []
    readers = [
        hammer(stop, errors, lambda: storage.search(vec("note amber birch"), limit=5)),
        hammer(stop, errors, lambda: storage.count("/c")),
        hammer(stop, errors, lambda: storage.list_scopes("/c")),
    ]
    recalls: list[int] = []
    try:
        for b in range(batches):
            memories[b % 2].remember_many(
                [text(b, i) for i in range(per_batch)],
                scope=f"/c/s{b % 3}",
                categories=[f"k{b % 2}"],
                importance=0.5,
            )
            # recall drains this Memory's pending saves first, so it always sees its own writes
            found = memories[b % 2].recall(text(b, 3), depth="shallow", limit=3)
            recalls.append(len(found))
            assert found[0].record.content == text(b, 3)
        for memory in memories:
            memory.drain_writes()
    finally:
        stop.set()
        for thread in readers:
            thread.join(10)
    assert not errors, errors
    assert storage.count() == batches * per_batch
    for s in range(3):
        assert storage.count(f"/c/s{s}") == batches // 3 * per_batch
    assert storage.list_categories("/c") == {"k0": 60, "k1": 60}
    contents = {r.content for r in storage.list_records(limit=1000)}
    assert contents == {text(b, i) for b in range(batches) for i in range(per_batch)}
    assert all(n == 3 for n in recalls)


def test_parallel_direct_saves_and_deletes_are_exact(storage: ValkeyStorage) -> None:
    writers, per_writer = 4, 40
    records = [
        [
            MemoryRecord(content=text(w, i), scope=f"/w{w}", embedding=vec(text(w, i)))
            for i in range(per_writer)
        ]
        for w in range(writers)
    ]
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for start in range(0, per_writer, 10):
                storage.save(records[w][start : start + 10])
                storage.search(vec(text(w, start)), scope_prefix=f"/w{w}", limit=3)
            # each writer then deletes its even records by id
            assert storage.delete(record_ids=[r.id for r in records[w][::2]]) == per_writer // 2
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert storage.count() == writers * per_writer // 2
    assert storage.list_scopes("/") == [f"/w{w}" for w in range(writers)]


async def test_async_saves_and_searches_interleave(valkey_url: str, unique_name: str) -> None:
    acore = AsyncMemoryStore.from_url(
        valkey_url,
        name=unique_name,
        embedder=never_embeds,
        index=IndexConfig(dims=DIMS, default_algorithm="FLAT"),
    )
    storage = ValkeyStorage.from_url(valkey_url, name=unique_name, dims=DIMS)
    storage = ValkeyStorage(storage.core, acore=acore, owns_core=True)
    try:
        batches = [
            [MemoryRecord(content=text(b, i), embedding=vec(text(b, i))) for i in range(10)]
            for b in range(10)
        ]
        await asyncio.gather(
            *(storage.asave(batch) for batch in batches),
            *(storage.asearch(vec(text(b, 0)), limit=3) for b in range(10)),
        )
        assert storage.count() == 100
        hits = await asyncio.gather(*(storage.asearch(vec(text(b, 5)), limit=1) for b in range(10)))
        assert [h[0][0].content for h in hits] == [text(b, 5) for b in range(10)]
        deleted = await asyncio.gather(
            *(storage.adelete(record_ids=[r.id for r in batch]) for batch in batches)
        )
        assert deleted == [10] * 10 and storage.count() == 0
    finally:
        storage.close()
        await acore.close()
