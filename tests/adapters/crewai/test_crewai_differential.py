"""Differential tests: the same protocol calls against ValkeyStorage and CrewAI's LanceDBStorage (temp dir).

Where both are right they must agree: records, counts, scopes, categories, scope info, listing order, and
search order up to score ties (LanceDB scores ``1 / (1 + L2 distance)``, ValkeyStorage cosine similarity:
the same order for unit vectors, other values). Where LanceDB is wrong (its ``LIKE 'prefix%'`` scope
match, deletes that also hit the root scope, ``reset``'s string range, ``record_ids=[]``, short pages
after its post-filter), the test asserts the right answer for ValkeyStorage, and asserts LanceDB's wrong
one too, so that a fix upstream is noticed here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from _crewai_support import vec
from crewai.memory.storage.lancedb_storage import LanceDBStorage
from crewai.memory.types import MemoryRecord

from agentmem_crewai import ValkeyStorage

BASE = datetime(2026, 2, 1, 9, 30, 0, 250000)  # every time has microseconds: LanceDB compares ISO text
SCOPES = ["/", "/crew", "/crew/research", "/crew/research/deep", "/crew/researchers", "/crew-a", "/other/x"]
TOPICS = ["valkey", "lancedb", "memory", "agents", "search", "scopes"]
# prefixes LanceDB answers right (no other scope starts with the same characters)
SAFE_PREFIXES = [None, "/", "/crew/research/deep", "/crew/researchers", "/crew-a", "/other", "/other/x"]


def corpus(n: int = 42) -> list[MemoryRecord]:
    out = []
    for i in range(n):
        text = f"record {i} about {TOPICS[i % len(TOPICS)]} and {TOPICS[(i * 5) % len(TOPICS)]}"
        out.append(
            MemoryRecord(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentmem-crewai/{i}")),  # the same ids each call
                content=text,
                scope=SCOPES[i % len(SCOPES)],
                categories=[c for c, m in (("a", 2), ("b", 3), ("c", 5)) if i % m == 0],
                metadata={"i": i, "team": ("red", "blue", "green")[i % 3]},
                importance=round(0.1 + (i % 9) / 10, 2),
                created_at=BASE + timedelta(seconds=i),
                last_accessed=BASE + timedelta(seconds=i, microseconds=7),
                embedding=vec(text),
                source=("ana", "bo", None)[i % 3],
                private=i % 4 == 0,
            )
        )
    return out


def below(scope: str, prefix: str | None) -> bool:
    """The right prefix rule: whole path labels."""
    want = [p for p in (prefix or "").split("/") if p]
    return [p for p in scope.split("/") if p][: len(want)] == want


def like(scope: str, prefix: str | None) -> bool:
    """LanceDB's rule: the scope string starts with the prefix string."""
    return scope.startswith((prefix or "").rstrip("/"))


def bare(record: MemoryRecord) -> MemoryRecord:
    return record.model_copy(update={"embedding": None})


class Both:
    """Runs each protocol call on both storages and returns both answers."""

    def __init__(self, valkey: ValkeyStorage, lance: LanceDBStorage) -> None:
        self.valkey = valkey
        self.lance = lance

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        return getattr(self.valkey, method)(*args, **kwargs), getattr(self.lance, method)(*args, **kwargs)

    def same(self, method: str, *args: Any, key: Callable[[Any], Any] = lambda x: x, **kwargs: Any) -> Any:
        ours, theirs = self(method, *args, **kwargs)
        assert key(ours) == key(theirs), (method, args, kwargs)
        return ours


@pytest.fixture
def both(storage: ValkeyStorage, lance: LanceDBStorage) -> Both:
    pair = Both(storage, lance)
    records = corpus()
    for start in range(0, len(records), 10):
        pair("save", records[start : start + 10])
    return pair


def record_ids(records: list[MemoryRecord]) -> list[str]:
    return [r.id for r in records]


def assert_same_search(
    ours: list[tuple[MemoryRecord, float]], theirs: list[tuple[MemoryRecord, float]]
) -> None:
    """Same records; both orders sorted by our score, so they differ at most within ties of it."""
    mine = {r.id: (bare(r), s) for r, s in ours}
    assert len(mine) == len(ours) and {r.id for r, _ in theirs} == set(mine)
    assert all(bare(r) == mine[r.id][0] for r, _ in theirs)
    scores = [s for _, s in ours]
    assert scores == sorted(scores, reverse=True)
    ranked = [mine[r.id][1] for r, _ in theirs]  # LanceDB's order, in our scores
    assert all(a >= b - 1e-6 for a, b in zip(ranked, ranked[1:]))


def test_records_counts_scopes_and_categories_agree(both: Both) -> None:
    records = corpus()
    for record in records:
        ours, theirs = both("get_record", record.id)
        assert bare(ours) == bare(theirs) == bare(record)
        assert ours.embedding == pytest.approx(theirs.embedding, abs=1e-6)
    for prefix in SAFE_PREFIXES:
        both.same("count", prefix)
        both.same("list_categories", prefix)
        both.same("list_records", prefix, key=record_ids)
        both.same("list_records", prefix, limit=4, offset=3, key=record_ids)
    for parent in ["/", "/crew", "/crew/research", "/other", "/nothing"]:
        both.same("list_scopes", parent)
    for scope in ["/", "/crew/research/deep", "/other", "/other/x", "/nothing"]:
        both.same("get_scope_info", scope)
    assert both.valkey.count() == len(records)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"scope_prefix": "/crew/research/deep"},
        {"scope_prefix": "/other"},
        {"categories": ["b", "c"]},
        {"metadata_filter": {"team": "red"}},
        {"metadata_filter": {"team": "blue", "i": 7}},
        {"scope_prefix": "/crew-a", "categories": ["a"]},
    ],
)
def test_search_agrees(both: Both, kwargs: dict[str, Any]) -> None:
    for query in ("record about valkey and memory", "agents search scopes", "lancedb"):
        ours, theirs = both("search", vec(query), limit=50, **kwargs)
        assert ours, kwargs
        assert_same_search(ours, theirs)


def test_write_sequences_agree(both: Both) -> None:
    records = corpus()
    both.same("delete", record_ids=[records[1].id, records[8].id, "missing-id"])
    both.same("delete", categories=["b"])
    both.same("delete", metadata_filter={"team": "green"})
    both.same("delete", categories=["c"], older_than=BASE + timedelta(seconds=30, microseconds=1))
    both.same("delete", older_than=BASE + timedelta(seconds=4))
    moved = records[28].model_copy(
        update={"scope": "/other/y", "content": "moved record", "embedding": vec("moved record")}
    )
    both("update", moved)
    ours, theirs = both("get_record", moved.id)
    assert bare(ours) == bare(theirs) == bare(moved)
    both("reset", "/crew/research/deep")
    for prefix in SAFE_PREFIXES:
        both.same("count", prefix)
        both.same("list_records", prefix, key=record_ids)
        both.same("list_categories", prefix)
    both.same("list_scopes", "/other")
    assert_same_search(*both("search", vec("record about memory"), limit=50))
    survivors = both.same("list_records", key=record_ids)
    touched = survivors[-1]
    both("touch_records", [touched.id, survivors[0].id])
    ours, theirs = both("get_record", touched.id)
    assert abs((ours.last_accessed - theirs.last_accessed).total_seconds()) < 5
    assert ours.last_accessed > touched.last_accessed
    both("reset", None)
    both.same("count")
    assert both.valkey.count() == 0


def test_where_lancedb_is_wrong(both: Both) -> None:
    records = corpus()
    valkey, lance = both.valkey, both.lance

    # 1. A scope prefix is a path prefix: /crew/research is not a prefix of /crew/researchers
    #    (nor /crew of /crew-a). LanceDB's LIKE 'prefix%' matches them.
    for prefix in ("/crew/research", "/crew"):
        right = {r.id for r in records if below(r.scope, prefix)}
        wrong = {r.id for r in records if like(r.scope, prefix)}
        assert right != wrong
        assert valkey.count(prefix) == len(right) and lance.count(prefix) == len(wrong)
        assert {r.id for r in valkey.list_records(prefix)} == right
        assert {r.id for r in lance.list_records(prefix)} == wrong
        assert {r.id for r, _ in valkey.search(vec("record"), scope_prefix=prefix, limit=50)} == right
        assert {r.id for r, _ in lance.search(vec("record"), scope_prefix=prefix, limit=50)} == wrong
        assert valkey.get_scope_info(prefix).record_count == len(right)

    # 2. A selective filter after a small limit: LanceDB takes 3 x limit neighbours, then filters,
    #    and returns a short page; ValkeyStorage filters inside the query and fills it.
    ours = valkey.search(vec("record about valkey"), metadata_filter={"i": 41}, limit=1)
    assert record_ids([r for r, _ in ours]) == [records[41].id]
    assert lance.search(vec("record about valkey"), metadata_filter={"i": 41}, limit=1) == []

    # 3. delete(record_ids=[]) deletes nothing; LanceDB deletes every record.
    # 4. ids AND the other criteria; LanceDB ignores the scope when ids come without categories.
    in_root = records[0]
    assert valkey.delete(record_ids=[in_root.id], scope_prefix="/other") == 0
    assert valkey.get_record(in_root.id) is not None
    # 5. delete(scope_prefix=...) deletes that subtree only; LanceDB also deletes the root scope "/".
    researchers = [r for r in records if r.scope == "/crew/researchers"]
    roots = [r for r in records if r.scope == "/"]
    assert valkey.delete(scope_prefix="/crew/researchers") == len(researchers)
    assert lance.delete(scope_prefix="/crew/researchers") == len(researchers) + len(roots)
    assert valkey.count("/") == len(records) - len(researchers)
    # 6. reset("/crew") keeps /crew-a; LanceDB's range "/crew" <= scope < "/crew/\uffff" holds "/crew-a".
    valkey.reset("/crew")
    lance.reset("/crew")
    assert sorted({r.scope for r in valkey.list_records()}) == ["/", "/crew-a", "/other/x"]
    assert sorted({r.scope for r in lance.list_records()}) == ["/other/x"]
    assert valkey.delete(record_ids=[]) == 0 and valkey.count() > 0
    before = lance.count()
    assert before > 0 and lance.delete(record_ids=[]) == before and lance.count() == 0
