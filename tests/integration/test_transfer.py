"""Export / import (JSON Lines): lossless round trips across backends, and bad input rejected up front."""

from __future__ import annotations

import base64
import inspect
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _support import Clock, Facade

from agentmem_core import AsyncMemoryStore, InvalidMemoryError, InvalidVectorError, MemoryStore
from agentmem_core._flows_transfer import FORMAT, FORMAT_VERSION, ImportResult
from agentmem_core.embeddings import HashingEmbedder

pytestmark = pytest.mark.integration

Opener = Callable[[str, str], Awaitable[Facade]]


@pytest.fixture(params=["sync", "async"])
async def opener(
    request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Opener, Clock]]:
    """Opens set-up stores of one colour on either backend, all on one clock; closes them after."""
    clock = Clock()
    cls = MemoryStore if request.param == "sync" else AsyncMemoryStore
    opened: list[Facade] = []

    async def open_store(backend: str, name: str, **options: Any) -> Facade:
        url = valkey_url if backend == "valkey" else f"sqlite:///{tmp_path / (name + '.db')}"
        options.setdefault("dedup_threshold", 0.02)
        store = cls.from_url(url, name=name, embedder=HashingEmbedder(64), clock=clock, **options)
        facade = Facade(store, backend)
        await facade.setup()
        opened.append(facade)
        return facade

    yield open_store, clock
    for facade in opened:
        await facade.close()


async def seed(mem: Facade, clock: Clock) -> None:
    """Memories that exercise every field: scopes, keys, caller ids, texts, TTLs, counters, sequences."""
    await mem.remember("Ana prefers window seats", user_id="ana", importance=0.8, tags=["seat", "pref"])
    await mem.remember(
        "Trip to Lisbon in May", user_id="ana", kind="episodic", namespace=["travel", "2026"],
        metadata={"city": "Lisbon", "nights": 4, "tags": ["a", "b"]}, source="planner", thread_id="t1",
        agent_id="bot",
    )  # fmt: skip
    await mem.remember("Budget is 2000 euros", user_id="ana", key="budget", importance=0.6)
    await mem.remember("Passport expires 2030", user_id="ana", id="passport-ana", kind="procedural")
    await mem.remember("", user_id="ana", embed=False, metadata={"role": "user"})  # never embedded
    await mem.remember(
        "", user_id="bo", texts=["likes hiking trails", "allergic to peanuts"], tags=["health"]
    )
    await mem.remember("Bo speaks Portuguese", user_id="bo", ttl=3600)
    await mem.remember("Old memory from history", user_id="bo", created_at=1_500_000_000.5)
    # equal creation times: the write sequence orders them; a forgotten one leaves a gap in it
    for n in range(3):
        await mem.remember(f"chat turn {n}", thread_id="chat", created_at=1_700_000_000.0, embed=False)
    middle = (await mem.list(thread_id="chat", order="oldest", limit=10)).memories[1]
    assert await mem.forget(middle.id)
    clock.now += 10
    # counters: a near-duplicate merge, a reinforcing recall, an update
    await mem.remember("Ana prefers window seats", user_id="ana")
    await mem.recall("window seats", user_id="ana", k=2)
    await mem.update("passport-ana", importance=0.9, tags=["docs"])
    await mem.remember("short lived", user_id="bo", ttl=5)
    clock.now += 20  # ... and gone before the export


async def export_records(mem: Facade, **filters: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    count = await mem.export(records.append, page_size=3, **filters)
    assert count == len(records) - 1
    return records


async def import_lines(mem: Facade, records: list[dict[str, Any]], **options: Any) -> ImportResult:
    buffer = io.StringIO()
    for record in records:
        buffer.write(json.dumps(record) + "\n")
    buffer.seek(0)
    result: ImportResult = await mem.import_records(buffer, chunk_size=4, **options)
    return result


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in records[1:]}


async def memories(mem: Facade, records: list[dict[str, Any]]) -> dict[str, Any]:
    ids = sorted(by_id(records))
    found = await mem.get_many(ids, with_vector=True)
    assert all(m is not None for m in found)
    return dict(zip(ids, found))


QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("window seats", {"user_id": "ana"}),
    ("trip", {}),
    ("hiking", {"user_id": "bo"}),
    ("passport budget", {"namespace_prefix": ["travel"]}),
    ("passport budget", {}),
]


async def recalls(mem: Facade) -> list[list[tuple[str, float, float]]]:
    out = []
    for query, flt in QUERIES:
        hits = await mem.recall(query, k=10, reinforce=False, **flt)
        out.append([(h.memory.id, h.distance, h.score) for h in hits])
    return out


@pytest.mark.parametrize("first", ["valkey", "sqlite"])
async def test_round_trip_across_backends_is_lossless(
    opener: tuple[Opener, Clock], unique_name: str, first: str
) -> None:
    open_store, clock = opener
    second = "sqlite" if first == "valkey" else "valkey"
    source = await open_store(first, unique_name + "a")
    await seed(source, clock)
    exported = await export_records(source)
    header = exported[0]
    assert header["format"] == FORMAT and header["version"] == FORMAT_VERSION
    assert header["dims"] == 64 and header["store"] == unique_name + "a"
    records = by_id(exported)
    assert len(records) == 10  # 13 remembered: 1 merged, 1 forgotten, 1 expired
    assert {r["content"] for r in records.values()} >= {"chat turn 0", "chat turn 2"}
    assert sorted(r["sequence"] for r in records.values() if r["thread_id"] == "chat") == [1, 3]
    texts = next(r for r in records.values() if r["from_texts"])
    assert len(texts["vectors"]) == 2 and texts["content"] == ""
    assert next(r for r in records.values() if r["caller_id"] == "passport-ana")["tags"] == ["docs"]
    assert max(r["duplicate_count"] for r in records.values()) == 1
    assert max(r["access_count"] for r in records.values()) >= 1

    middle = await open_store(second, unique_name + "b")
    result = await import_lines(middle, exported)
    assert result == ImportResult(imported=10, expired=0)
    back = await open_store(first, unique_name + "c")
    assert (await import_lines(back, await export_records(middle))).imported == 10

    want = await memories(source, exported)
    assert await memories(middle, exported) == want  # every field, vectors included
    assert await memories(back, exported) == want
    assert by_id(await export_records(back)) == records  # the same export, line for line
    # recall: identical on the same backend; the same ids in the same order on the other one
    expected = await recalls(source)
    assert await recalls(back) == expected
    for got, want_hits in zip(await recalls(middle), expected):
        assert [h[0] for h in got] == [h[0] for h in want_hits]
        assert [h[2] for h in got] == pytest.approx([h[2] for h in want_hits], abs=1e-5)
    # listing order (equal created_at ordered by sequence), keys, caller ids, stats, namespaces
    for mem in (middle, back):
        chat = (await mem.list(thread_id="chat", order="oldest", limit=10)).memories
        assert [m.content for m in chat] == ["chat turn 0", "chat turn 2"]
        assert (await mem.get_by_key("budget", user_id="ana")).content == "Budget is 2000 euros"
        assert (await mem.get("passport-ana")).importance == 0.9
        assert (await mem.stats()).total == 10
        assert await mem.list_namespaces() == await source.list_namespaces()
        # the imported store works as any other: new writes, forget by caller id
        await mem.remember("new after import", thread_id="chat", created_at=1_700_000_000.0, embed=False)
        assert await mem.forget("passport-ana")


async def test_export_filters_pages_and_stream_sinks(opener: tuple[Opener, Clock], unique_name: str) -> None:
    open_store, clock = opener
    mem = await open_store("valkey", unique_name)
    await seed(mem, clock)
    bo = await export_records(mem, user_id="bo")
    assert {r["user_id"] for r in bo[1:]} == {"bo"} and len(bo) == 4
    tagged = await export_records(mem, tags=["seat"])
    assert [r["content"] for r in tagged[1:]] == ["Ana prefers window seats"]
    text, binary = io.StringIO(), io.BytesIO()
    assert await mem.export(text) == await mem.export(binary) == 10
    assert text.getvalue().encode("utf-8") == binary.getvalue()
    lines = text.getvalue().splitlines()
    assert len(lines) == 11 and all(json.loads(line) for line in lines)
    progress: list[int] = []
    assert await mem.export(io.StringIO(), page_size=2, progress=progress.append) == 10
    assert progress and progress[-1] == 10 and progress == sorted(progress)


async def test_import_skips_expired_keeps_expiry_and_replaces(
    opener: tuple[Opener, Clock], unique_name: str
) -> None:
    open_store, clock = opener
    source = await open_store("sqlite", unique_name + "a")
    hour_id = await source.remember("lives an hour", user_id="u", ttl=3600)
    await source.remember("lives a minute", user_id="u", ttl=60)
    await source.touch([hour_id])
    original = await source.get(hour_id)
    exported = await export_records(source)
    clock.now += 120
    target = await open_store("valkey", unique_name + "b")
    assert await import_lines(target, exported) == ImportResult(imported=1, expired=1)
    (memory,) = (await target.list(user_id="u", limit=5)).memories
    assert memory == original  # the same expires_at and ttl (its remaining lifetime), counters too
    # the counters written after the memory expire with it (Valkey: its own key, with its own TTL)
    pttl = target.store.client.pttl(target.store.keys.stats(hour_id))
    if inspect.isawaitable(pttl):
        pttl = await pttl
    assert 0 < pttl <= 3480 * 1000
    # importing again replaces (same id), counters back to the record's
    await target.touch([memory.id])
    assert (await target.get(memory.id)).access_count == 2
    assert (await import_lines(target, exported)).imported == 1
    assert await target.get(memory.id) == original
    assert (await target.stats()).total == 1
    clock.now += 3600
    assert await target.get(memory.id) is None


async def test_import_respects_the_target_capacity(opener: tuple[Opener, Clock], unique_name: str) -> None:
    open_store, clock = opener
    source = await open_store("valkey", unique_name + "a")
    for n in range(5):
        await source.remember(f"memory {n}", user_id="u", importance=n / 10)
    target = await open_store("sqlite", unique_name + "b", max_items_per_scope=3)
    assert (await import_lines(target, await export_records(source))).imported == 5
    kept = {m.content for m in (await target.list(user_id="u", limit=10)).memories}
    assert kept == {"memory 2", "memory 3", "memory 4"}  # the least important go, as on any write


def _valid(dims: int = 64) -> list[dict[str, Any]]:
    vector = base64.b64encode(b"\x00\x00\x80\x3f" + b"\x00" * 4 * (dims - 1)).decode()
    header = {"format": FORMAT, "version": 1, "store": "x", "dims": dims, "vectors": "base64-float32-le"}
    good = {
        "id": "", "content": "hello", "kind": "semantic", "importance": 0.5, "created_at": 1_700_000_000.0,
        "user_id": "u", "vectors": [vector],
    }  # fmt: skip
    return [header, good]


async def test_bad_input_is_rejected_before_anything_is_written(
    opener: tuple[Opener, Clock], unique_name: str
) -> None:
    open_store, _ = opener
    mem = await open_store("valkey", unique_name)
    from agentmem_core._records import scope_of

    header, good = _valid()
    good["id"] = scope_of(None, None, None, "u").tag + "0" * 16
    assert (await import_lines(mem, [header, good], dry_run=True)).imported == 1
    assert (await mem.stats()).total == 0  # a dry run writes nothing

    def variant(**changes: Any) -> dict[str, Any]:
        return {k: v for k, v in {**good, **changes}.items() if v is not ...}

    cases: list[tuple[list[Any], type[Exception], str]] = [
        ([], InvalidMemoryError, "empty input"),
        ([good], InvalidMemoryError, "header"),
        ([{**header, "version": 2}, good], InvalidMemoryError, "version"),
        ([{**header, "format": "other"}, good], InvalidMemoryError, "not an agentmem export"),
        ([{**header, "dims": 32}, good], InvalidVectorError, "32 dimensions"),
        (
            [header, good, variant(vectors=[base64.b64encode(b"\0" * 128).decode()])],
            InvalidVectorError,
            "has 32",
        ),
        ([header, good, variant(vectors=["not base64!"])], InvalidVectorError, "base64"),
        ([header, good, variant(vectors=[])], InvalidVectorError, "0 vectors"),
        ([header, good, variant(importance=2)], InvalidMemoryError, "line 3"),
        ([header, good, variant(kind="nope")], InvalidMemoryError, "line 3"),
        ([header, good, variant(content=...)], InvalidMemoryError, "missing"),
        ([header, good, variant(surprise=1)], InvalidMemoryError, "unknown fields"),
        ([header, good, variant(id="f" * 32)], InvalidMemoryError, "scope"),
        ([header, good, variant(key="k")], InvalidMemoryError, "key"),
        ([header, good, variant(access_count=-1)], InvalidMemoryError, "access_count"),
        ([header, good, variant(created_at="yesterday")], InvalidMemoryError, "created_at"),
    ]
    for records, error, message in cases:
        with pytest.raises(error, match=message):
            await import_lines(mem, records)
        assert (await mem.stats()).total == 0, records
    first = json.dumps(header) + "\n"
    for text in (first + json.dumps(good) + "\n{oops\n", first + "[1]\n"):
        with pytest.raises(InvalidMemoryError, match="line"):
            await mem.import_records(io.StringIO(text))
        assert (await mem.stats()).total == 0
    with pytest.raises(InvalidMemoryError, match="NaN"):
        await mem.import_records([json.dumps(header), json.dumps(good).replace("0.5", "NaN")])
    with pytest.raises(InvalidMemoryError, match="iterable"):
        await mem.import_records(json.dumps(header))
    with pytest.raises(InvalidMemoryError, match="stream or a callable"):
        await mem.export(42)
    # a caller id held by a live memory of another scope: found by the dry run, refused by the import
    await mem.remember("held", user_id="other", id="shared-id")
    from agentmem_core._encoding import local_id_for_caller_id

    tag = scope_of(None, None, None, "u").tag
    claimed = variant(caller_id="shared-id", id=tag + local_id_for_caller_id("shared-id"))
    for dry_run in (True, False):
        with pytest.raises(InvalidMemoryError, match="another scope"):
            await import_lines(mem, [header, claimed], dry_run=dry_run)
    assert (await mem.stats()).total == 1
    # validated chunk by chunk: the chunk before a bad record is written, nothing from its own chunk
    records = [header, *(variant(id=tag + f"{n:016x}") for n in range(6)), variant(kind="x")]
    with pytest.raises(InvalidMemoryError, match="line 8"):
        await import_lines(mem, records)  # chunks of 4: records 1-4 written, 5-7 not
    assert (await mem.stats()).total == 1 + 4
