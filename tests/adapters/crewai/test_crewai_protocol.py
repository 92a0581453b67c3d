"""The StorageBackend contract of ValkeyStorage on a real Valkey, through sync, async and threaded calls."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _crewai_support import DIMS, Driver, same_record, vec
from crewai.memory.storage.backend import EmbeddingDimensionMismatchError, StorageBackend
from crewai.memory.types import MemoryRecord

from agentmem_core import AgentMemError, InvalidMemoryError, MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_crewai import PRIVATE_KEY, VISIBLE_TO_KEY, StorageDimensionMismatchError, ValkeyStorage

BASE = datetime(2026, 3, 1, 12, 0, 0, 123456)


def rec(content: str, scope: str = "/", *, n: int = 0, embed: bool = True, **fields: Any) -> MemoryRecord:
    created = fields.pop("created_at", BASE + timedelta(seconds=n))
    return MemoryRecord(
        content=content,
        scope=scope,
        created_at=created,
        last_accessed=fields.pop("last_accessed", created),
        embedding=vec(content) if embed else None,
        **fields,
    )


def ids(pairs: list[tuple[MemoryRecord, float]]) -> list[str]:
    return [r.id for r, _ in pairs]


def test_is_a_storage_backend(storage: ValkeyStorage) -> None:
    assert isinstance(storage, StorageBackend)


async def test_record_round_trips_exactly(driver: Driver) -> None:
    full = MemoryRecord(
        content="The client prefers Valkey over LanceDB",
        scope="/crew/research",
        categories=["decision", "infra", "a"],
        metadata={"ticket": 42, "nested": {"x": [1, 2.5, None, True]}, "who": "ana"},
        importance=0.83,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901),
        last_accessed=datetime(2026, 1, 3, 3, 4, 5, 1),
        embedding=vec("The client prefers Valkey over LanceDB"),
        source="researcher",
        private=True,
    )
    plain = MemoryRecord(content="plain", embedding=vec("plain"))  # CrewAI defaults: utcnow() twice
    bare = MemoryRecord(content="", scope="/crew", embedding=None)  # CrewAI saves empty text unembedded
    await driver.save([full, plain, bare])
    for original in (full, plain, bare):
        back = driver.get_record(original.id)
        assert same_record(back, original)  # every field; the embedding as v/|v| in float32
        assert back.created_at.tzinfo is None and back.last_accessed.tzinfo is None
    assert driver.get_record(str(uuid.uuid4())) is None
    assert driver.count() == 3
    # the unembedded record is listed and counted, never searched
    assert bare.id not in ids(await driver.search(vec("plain"), limit=10))


async def test_zero_vector_is_no_embedding_and_aware_times_become_naive_utc(
    driver: Driver,
) -> None:
    aware = datetime(2026, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    record = MemoryRecord(content="zero", embedding=[0.0] * DIMS, created_at=aware, last_accessed=aware)
    await driver.save([record])
    back = driver.get_record(record.id)
    assert back.embedding is None
    assert back.created_at == back.last_accessed == datetime(2026, 5, 1, 12, 0, 0, 5)


async def test_scope_prefix_matches_whole_labels(driver: Driver) -> None:
    scopes = ["/crew/research", "/crew/research/deep", "/crew/researchers", "/crew", "/", "/crew-a"]
    records = [rec(f"note about topic {i}", s, n=i, categories=[f"c{i}"]) for i, s in enumerate(scopes)]
    await driver.save(records)
    inside = {records[0].id, records[1].id}
    assert driver.count("/crew/research") == 2
    assert driver.count("/crew/research/") == 2
    assert {r.id for r in driver.list_records("/crew/research")} == inside
    assert set(ids(await driver.search(vec("note about topic"), scope_prefix="/crew/research"))) == inside
    assert driver.list_categories("/crew/research") == {"c0": 1, "c1": 1}
    assert driver.count("/crew") == 4 and driver.count("/") == driver.count() == 6
    assert driver.list_scopes("/crew") == ["/crew/research", "/crew/researchers"]
    assert driver.list_scopes("/") == ["/crew", "/crew-a"]
    assert driver.list_scopes("/crew/research/deep") == []
    assert await driver.delete(scope_prefix="/crew/research") == 2
    assert driver.count("/crew/researchers") == 1 and driver.count() == 4  # "/" survives, unlike LanceDB
    driver.reset("/crew")
    assert sorted(r.scope for r in driver.list_records()) == ["/", "/crew-a"]


async def test_search_order_scores_and_filters(driver: Driver) -> None:
    texts = ["valkey memory backend", "valkey cluster", "lancedb on disk", "cooking pasta", "valkey search"]
    records = [
        rec(t, "/s", n=i, categories=["db"] if "valkey" in t else ["misc"], metadata={"n": i, "tag": t[:5]})
        for i, t in enumerate(texts)
    ]
    await driver.save(records)
    query = vec("valkey memory backend")
    hits = await driver.search(query, limit=10)
    assert len(hits) == 5
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert hits[0][0].id == records[0].id and hits[0][1] == pytest.approx(1.0, abs=1e-6)
    for record, score in hits:  # the score is cosine similarity, clamped at 0
        cosine = sum(a * b for a, b in zip(query, vec(record.content)))
        assert score == pytest.approx(max(0.0, cosine), abs=1e-5)
    assert hits[0][0].embedding is None  # search results come without their vector
    gate = hits[2][1]
    assert [r.id for r, s in hits if s >= gate] == ids(await driver.search(query, limit=10, min_score=gate))
    assert ids(await driver.search(query, limit=10, min_score=1.5)) == []
    only_db = await driver.search(query, categories=["db", "nope"], limit=10)
    assert {r.id for r, _ in only_db} == {records[i].id for i in (0, 1, 4)}
    assert len(await driver.search(query, categories=[], limit=10)) == 5  # [] is no category filter
    assert ids(await driver.search(query, metadata_filter={"n": 3}, limit=10)) == [records[3].id]
    assert ids(await driver.search(query, metadata_filter={"n": 3, "tag": "lance"}, limit=10)) == []
    assert len(await driver.search(query, limit=2)) == 2
    assert await driver.search(query, limit=0) == []


async def test_metadata_filter_is_crewai_equality(driver: Driver) -> None:
    a = rec("alpha", metadata={"op": {"$gt": 1}, "a.b": 1, "none": None})
    b = rec("beta", metadata={"op": 5, "a": {"b": 1}})
    c = rec("gamma", metadata={"other": 1})
    await driver.save([a, b, c])
    q = vec("alpha")

    async def found(flt: dict[str, Any]) -> set[str]:
        return {r.id for r, _ in await driver.search(q, metadata_filter=flt, limit=10)}

    assert await found({"op": {"$gt": 1}}) == {a.id}  # a value shaped like an operator is a value
    assert await found({"a.b": 1}) == {a.id}  # a dotted key is a top-level key, as in CrewAI
    assert await found({"none": None}) == {a.id, b.id, c.id}  # .get(k) == None matches a missing key
    assert await driver.delete(metadata_filter={"a.b": 1}) == 1
    assert driver.get_record(b.id) is not None and driver.get_record(a.id) is None


async def test_a_selective_filter_still_fills_the_page(driver: Driver) -> None:
    records = [
        rec(f"common words here {i}", n=i, categories=["rare" if i % 10 == 0 else "x"]) for i in range(60)
    ]
    await driver.save(records)
    hits = await driver.search(vec("common words"), categories=["rare"], limit=5)
    assert len(hits) == 5 and all(r.categories == ["rare"] for r, _ in hits)


async def test_delete_takes_every_criterion_together(driver: Driver) -> None:
    records = [
        rec(
            f"item {i}",
            "/a" if i < 4 else "/b",
            n=i,
            categories=["even" if i % 2 == 0 else "odd"],
            metadata={"i": i},
        )
        for i in range(8)
    ]
    await driver.save(records)
    assert await driver.delete(record_ids=[]) == 0  # no ids: nothing (LanceDB deletes everything)
    assert await driver.delete(record_ids=[records[5].id], scope_prefix="/a") == 0
    assert await driver.delete(record_ids=[records[1].id, records[2].id], categories=["odd"]) == 1
    assert driver.get_record(records[2].id) is not None and driver.get_record(records[1].id) is None
    assert await driver.delete(categories=["even"], older_than=BASE + timedelta(seconds=4)) == 2  # 0, 2
    assert await driver.delete(scope_prefix="/b", metadata_filter={"i": 7}) == 1
    assert await driver.delete(record_ids=[records[3].id, str(uuid.uuid4())]) == 1
    assert sorted(r.content for r in driver.list_records()) == ["item 4", "item 5", "item 6"]
    assert await driver.delete() == 3
    assert driver.count() == 0


async def test_update_replaces_moves_and_creates(driver: Driver) -> None:
    original = rec("old text", "/crew/a", categories=["x"], metadata={"v": 1}, importance=0.2)
    other = rec("neighbour", "/crew/a", n=1)
    await driver.save([original, other])
    later = datetime(2026, 4, 1)
    changed = original.model_copy(
        update={
            "content": "new text entirely",
            "scope": "/crew/b",
            "categories": ["y", "z"],
            "metadata": {"v": 2},
            "importance": 0.9,
            "last_accessed": later,
            "embedding": vec("new text entirely"),
        }
    )
    driver.update(changed)
    assert same_record(driver.get_record(original.id), changed)
    assert driver.count() == 2 and driver.list_scopes("/crew") == ["/crew/a", "/crew/b"]
    assert [r.id for r in driver.list_records("/crew/a")] == [other.id]
    hits = await driver.search(vec("new text entirely"), limit=1)
    assert hits[0][0].id == original.id and hits[0][0].scope == "/crew/b"
    driver.update(changed.model_copy(update={"scope": "/crew/a", "embedding": None}))
    assert driver.get_record(original.id).scope == "/crew/a"
    assert driver.list_scopes("/crew") == ["/crew/a"]  # the emptied scope is gone
    fresh = rec("created by update", "/new")
    driver.update(fresh)  # LanceDB's update adds a missing record too
    assert same_record(driver.get_record(fresh.id), fresh)


async def test_touch_moves_last_accessed_forward(driver: Driver) -> None:
    record = rec("touch me")
    await driver.save([record])
    before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)
    driver.touch_records([record.id, str(uuid.uuid4())])
    driver.touch_records([])
    touched = driver.get_record(record.id)
    assert touched.last_accessed >= before and touched.created_at == record.created_at
    future = datetime(2100, 1, 1)
    driver.update(touched.model_copy(update={"last_accessed": future}))
    assert driver.get_record(record.id).last_accessed == future  # a later save wins over the touch


async def test_list_records_newest_first_and_paged(driver: Driver) -> None:
    records = [rec(f"r{i}", "/p" if i % 3 else "/q", n=i) for i in range(25)]
    await driver.save(records[::-1])
    newest_first = [r.id for r in sorted(records, key=lambda r: r.created_at, reverse=True)]
    assert [r.id for r in driver.list_records()] == newest_first
    pages = [driver.list_records(limit=7, offset=o) for o in range(0, 25, 7)]
    assert [r.id for page in pages for r in page] == newest_first
    assert [r.id for r in driver.list_records("/q", limit=3, offset=1)] == [
        r.id for r in sorted(records, key=lambda r: r.created_at, reverse=True) if r.scope == "/q"
    ][1:4]
    assert driver.list_records(limit=0) == [] and driver.list_records(offset=-1) == []
    assert driver.list_records(offset=25) == []


async def test_scope_info_and_wildcard_labels(driver: Driver) -> None:
    records = [
        rec("one", "/p/*/c", n=0, categories=["k1"]),
        rec("two", "/p/q/c", n=5, categories=["k2", "k1"]),
        rec("three", "/p", n=9),
    ]
    await driver.save(records)
    assert driver.list_scopes("/p/*") == ["/p/*/c"]  # "*" is a label, not a wildcard
    assert driver.list_scopes("/p") == ["/p/*", "/p/q"]
    info = driver.get_scope_info("/p/")
    assert info.path == "/p" and info.record_count == 3
    assert info.categories == ["k1", "k2"] and info.child_scopes == ["/p/*", "/p/q"]
    assert info.oldest_record == records[0].created_at and info.newest_record == records[2].created_at
    empty = driver.get_scope_info("/nothing")
    assert empty.record_count == 0 and empty.oldest_record is None and empty.child_scopes == []
    assert driver.list_categories() == {"k1": 2, "k2": 1}


async def test_private_rule_pushed_into_the_query(driver: Driver) -> None:
    query = "shared secret plan"
    theirs = [rec(f"{query} {i}", n=i, source="other", private=True) for i in range(12)]
    mine = [rec(f"{query} mine {i}", n=20 + i, source="me", private=True) for i in range(2)]
    public = [rec(f"{query} public {i}", n=30 + i, source="other") for i in range(3)]
    await driver.save(theirs + mine + public)
    q = vec(query)
    crowded = await driver.search(q, limit=5)
    assert any(r.private and r.source == "other" for r, _ in crowded)  # what Memory drops afterwards
    visible_to_me = {r.id for r in mine + public}
    for found in (
        await driver.search(q, limit=5, metadata_filter={VISIBLE_TO_KEY: "me"}),
        await Driver(driver.storage.for_viewer("me"), driver.mode).search(q, limit=5),
    ):
        assert {r.id for r, _ in found} == visible_to_me
    for found in (
        await driver.search(q, limit=10, metadata_filter={VISIBLE_TO_KEY: None}),
        await Driver(driver.storage.for_viewer(None), driver.mode).search(q, limit=10),
    ):
        assert {r.id for r, _ in found} == {r.id for r in public}
    assert driver.get_record(mine[0].id).private is True


async def test_dimension_mismatch_is_crewais_error(driver: Driver, core_url: str) -> None:
    good = rec("fine")
    with pytest.raises(EmbeddingDimensionMismatchError) as caught:
        await driver.save([good, MemoryRecord(content="short", embedding=[1.0] * (DIMS - 1))])
    assert (caught.value.stored_dim, caught.value.new_dim) == (DIMS, DIMS - 1)
    assert isinstance(caught.value, AgentMemError)
    assert driver.count() == 0  # nothing of the batch was written
    with pytest.raises(EmbeddingDimensionMismatchError):
        await driver.search([1.0] * (DIMS + 1))
    await driver.save([good])
    with pytest.raises(EmbeddingDimensionMismatchError):
        driver.update(good.model_copy(update={"embedding": [1.0] * 3}))
    assert same_record(driver.get_record(good.id), good)
    other = ValkeyStorage.from_url(core_url, name=driver.storage.core.keys.store, dims=DIMS // 2)
    try:
        with pytest.raises(StorageDimensionMismatchError) as caught:
            other.count()
        assert (caught.value.stored_dim, caught.value.new_dim) == (DIMS, DIMS // 2)
    finally:
        other.close()


async def test_bad_records_are_typed_errors_and_nothing_is_written(driver: Driver) -> None:
    ok = rec("ok")
    bad_batches = [
        [ok, rec("reserved", metadata={PRIVATE_KEY: False})],
        [ok, rec("hex id", id=uuid.uuid4().hex)],
        [ok, rec("not json", metadata={"when": datetime(2026, 1, 1)})],
        [ok, ok],
        [ok, rec("nan", embed=False).model_copy(update={"embedding": [float("nan")] * DIMS})],
    ]
    for batch in bad_batches:
        with pytest.raises(InvalidMemoryError):
            await driver.save(batch)
    assert driver.count() == 0
    with pytest.raises(InvalidMemoryError):
        await driver.search(vec("x"), metadata_filter={PRIVATE_KEY: True})
    with pytest.raises(InvalidMemoryError):
        await driver.delete(metadata_filter={VISIBLE_TO_KEY: "me"})
    with pytest.raises(InvalidMemoryError):
        await driver.search(vec("x"), min_score=float("nan"))


async def test_the_core_sees_the_same_memories(driver: Driver, core_url: str) -> None:
    record = rec(
        "visible to every adapter", "/crew/research", categories=["c"], metadata={"m": 1}, source="s"
    )
    await driver.save([record])
    core = driver.storage.core
    memory = core.get(record.id)
    assert memory is not None and memory.id == record.id
    assert memory.namespace == ("crew", "research") and memory.tags == ("c",)
    assert dict(memory.metadata) == {"m": 1} and memory.source == "s"
    assert core.count(namespace_prefix=("crew",)) == 1
    # a memory written through the core (with a real embedder) is a CrewAI record too
    with MemoryStore.from_url(core_url, name=core.keys.store, embedder=HashingEmbedder(DIMS)) as text_core:
        text_core.setup()
        written = text_core.remember("written through the core", namespace=("crew", "research"), tags=["c"])
    foreign = driver.get_record(written)
    assert foreign is not None and foreign.scope == "/crew/research" and foreign.id == written
    assert driver.list_categories("/crew") == {"c": 2}
    driver.touch_records([written])
    with pytest.raises(InvalidMemoryError, match="without a caller id"):
        driver.update(foreign.model_copy(update={"importance": 0.9}))
    assert await driver.delete(record_ids=[written]) == 1 and driver.count() == 1
