"""The embedded SQLite backend, at the level of storage operations (agentmem_core.ops).

Each op's result is checked against what the Valkey translation (backends/valkey.py + _scripts.py)
documents; the ``integration`` test at the end runs one op sequence on a real Valkey and on SQLite and
compares every result.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentmem_core import ops
from agentmem_core._conditions import AnyOf, NumRange, TagIn
from agentmem_core._encoding import Keys, ScopeKey, encode_tag
from agentmem_core._records import MemoryInput, PreparedMemory, prepare
from agentmem_core._scope_index import dimension_range, namespace_range, scope_members
from agentmem_core.backends.sqlite import SqliteBackend
from agentmem_core.config import IndexConfig, Kind, StoreConfig
from agentmem_core.errors import (
    BackendError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidVectorError,
    SchemaMismatchError,
)
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import STORED_FIELDS, F, IndexSpec, format_number, numeric_field

DIMS = 8
NOW = 1_700_000_000.0
SCOPE = ScopeKey(("proj",), user_id="alice")
OTHER = ScopeKey(("proj", "sub"), user_id="bob", thread_id="t1")


def config(name: str = "t", *, numeric: tuple[str, ...] = ("price",)) -> StoreConfig:
    return StoreConfig(name=name, index=IndexConfig(dims=DIMS, algorithm="FLAT"), numeric_fields=numeric)


def spec_of(cfg: StoreConfig) -> IndexSpec:
    return IndexSpec(Keys(cfg.name), cfg.index, cfg.numeric_fields)


def unit(seed: int, dims: int = DIMS) -> bytes:
    v = np.random.default_rng(seed).normal(size=dims).astype(np.float32)
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def near(blob: bytes, seed: int, eps: float = 0.05) -> bytes:
    base = np.frombuffer(blob, dtype="<f4")
    v = base + eps * np.frombuffer(unit(seed), dtype="<f4")
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def item(cfg: StoreConfig, now: float = NOW, scope: ScopeKey = SCOPE, **kw: Any) -> PreparedMemory:
    kw.setdefault("content", "the quick brown fox")
    return prepare(
        MemoryInput(
            namespace=scope.namespace, user_id=scope.user_id, thread_id=scope.thread_id,
            agent_id=scope.agent_id, **kw,
        ),
        cfg,
        now,
    )  # fmt: skip


def write(memory: PreparedMemory, vectors: Sequence[bytes] = ()) -> ops.Write:
    """What _flows_write._write_call sends, as an op."""
    return ops.Write(
        id=memory.id,
        tag=memory.scope.tag,
        now=memory.fields[F.UPDATED_AT],
        created_at="" if memory.keeps_created else memory.fields[F.CREATED_AT],
        ttl_ms=memory.ttl_ms,
        expires_at=memory.fields[F.EXPIRES_AT] if memory.expires_at is not None else "0",
        kind=memory.kind.value,
        importance=memory.fields[F.IMPORTANCE],
        opt_rest=memory.opt_rest,
        fields=memory.fields,
        vectors=tuple(vectors),
    )


def now_text(t: float) -> str:
    return format_number(t)


@pytest.fixture
def cfg() -> StoreConfig:
    return config()


@pytest.fixture
def db(tmp_path: Path, cfg: StoreConfig) -> Any:
    backend = SqliteBackend(str(tmp_path / "mem.db"))
    backend.setup(spec_of(cfg))
    yield backend
    backend.close()


def one(db: SqliteBackend, op: Any) -> Any:
    (result,) = db.execute([op])
    return result


# -- setup ------------------------------------------------------------------------------------------------
def test_setup_is_wal_and_validates_dims_and_numeric_fields(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    backend = SqliteBackend(path)
    assert one(backend, ops.ReadConfig()).__class__ is IndexNotFoundError  # before setup: in place
    backend.setup(spec_of(config(numeric=("price",))))
    backend.setup(spec_of(config(numeric=("price",))))  # idempotent
    conn = backend._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # checkpoints every 10,000 WAL pages, not SQLite's 1,000 (a save writes hundreds), WAL file bounded
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == 64 * 1024 * 1024
    backend.close()
    other = SqliteBackend(path)
    bigger = StoreConfig(name="t", index=IndexConfig(dims=DIMS * 2), numeric_fields=("price",))
    with pytest.raises(DimensionMismatchError) as info:
        other.setup(spec_of(bigger))
    assert (info.value.existing, info.value.configured) == (DIMS, DIMS * 2)
    with pytest.raises(SchemaMismatchError, match="numeric"):
        other.setup(spec_of(config(numeric=("price", "rating"))))
    other.setup(spec_of(config(numeric=())))  # fewer declared keys: fine, as on Valkey
    # another store in the same file has its own tables (and its own dimension)
    other.setup(spec_of(StoreConfig(name="u", index=IndexConfig(dims=3))))
    assert other.meta() is not None and other.meta().dims == 3  # type: ignore[union-attr]
    other.close()


# -- writes -------------------------------------------------------------------------------------------------
def test_write_replace_keeps_created_at_sequence_and_counts(db: SqliteBackend, cfg: StoreConfig) -> None:
    first = item(cfg, key="k1", created_at=NOW - 100)
    second = item(cfg, content="another", kind=Kind.PROCEDURAL)
    r = db.execute([write(first, [unit(1)]), write(second, [unit(2)])])
    assert r == [ops.WriteResult(True, 1), ops.WriteResult(True, 2)]
    # re-put the key later without created_at: keeps created_at and the sequence
    again = item(cfg, now=NOW + 50, key="k1", content="changed", kind=Kind.EPISODIC, ttl=3600)
    assert again.keeps_created and again.id == first.id
    assert one(db, write(again, [unit(3)])) == ops.WriteResult(False, 2)
    ((found, _),) = one(db, ops.ReadMemories((first.id,), (F.CREATED_AT, F.X_CREATED_AT, F.OPT, F.CONTENT)))
    created = format_number(NOW - 100).encode()
    assert found[:2] == [created, created]
    assert found[2].startswith(b"1|") and found[3] == b"changed"
    total, kinds = one(db, ops.ScopeCounts(SCOPE.tag, now_text(NOW + 50)))
    assert total == 2 and kinds == {"semantic": 0, "procedural": 1, "episodic": 1}
    assert one(db, ops.ScopeMembers(SCOPE.tag, 0, -1)) == [first.id, second.id]  # by created_at
    # a write with created_at given takes the next sequence
    third = item(cfg, now=NOW + 60, key="k1", created_at=NOW + 60)
    one(db, write(third, [unit(4)]))
    ((opt,),) = [v for v, _ in one(db, ops.ReadMemories((first.id,), (F.OPT,)))]
    assert opt.startswith(b"3|")


def test_a_bounded_write_counts_its_scope_only_as_far_as_asked(db: SqliteBackend, cfg: StoreConfig) -> None:
    # counting a scope is linear here (2.2 ms per remember at 20k): a write that only has to tell a new
    # scope, or one over capacity, stops counting one row past its bound
    items = [item(cfg, content=f"memory {n}") for n in range(6)]
    db.execute([write(m, [unit(n)]) for n, m in enumerate(items[:5])])
    bounded = ops.Write(**{**_fields(write(items[5], [unit(5)])), "count_up_to": 2})
    assert one(db, bounded) == ops.WriteResult(True, 3)  # 6 members: "more than 2" is all it says
    assert one(db, write(item(cfg, content="memory 6"), [unit(6)])) == ops.WriteResult(True, 7)  # exact
    fresh = item(cfg, scope=OTHER, content="first of its scope")
    assert one(db, ops.Write(**{**_fields(write(fresh, [unit(7)])), "count_up_to": 1})) == ops.WriteResult(
        True, 1
    )  # a new scope is still told apart


def _fields(op: ops.Write) -> dict[str, Any]:
    return {name: getattr(op, name) for name in op.__dataclass_fields__}


def test_counters_reset_for_new_memory_and_kept_on_replace(db: SqliteBackend, cfg: StoreConfig) -> None:
    m = item(cfg, key="k")
    one(db, write(m, [unit(1)]))
    fetched = one(db, ops.Fetch((m.id,), True, "123", (F.CONTENT,)))
    assert fetched == {m.id: ([None, None, None], [b"the quick brown fox"])}
    fetched = one(db, ops.Fetch((m.id,), True, "124", ()))
    assert fetched == {m.id: ([b"1", b"123", None], [])}
    one(db, write(item(cfg, key="k", content="v2"), [unit(2)]))  # replace: counters kept
    assert one(db, ops.ReadCounters(m.id)) == {"access_count": "2", "last_accessed_at": "124"}
    one(db, ops.Delete(SCOPE.tag, (m.id,), "0"))
    assert one(db, ops.ReadCounters(m.id)) == {}
    one(db, ops.WriteCounters(m.id, {"access_count": "7"}))  # counters without a memory (a move)
    one(db, write(item(cfg, key="k"), [unit(3)]))  # a new memory: counters reset
    assert one(db, ops.ReadCounters(m.id)) == {}


def test_merge_appends_tags_and_counts_duplicates(db: SqliteBackend, cfg: StoreConfig) -> None:
    m = item(cfg, tags=["a"])
    one(db, write(m, [unit(1)]))
    tags = (('"a"', encode_tag("a")), ('"b c"', encode_tag("b c")))
    assert one(db, ops.Merge(m.id, "200", tags)) == 1
    assert one(db, ops.Merge(m.id, "201", ())) == 2
    ((values, counters),) = one(
        db, ops.ReadMemories((m.id,), (F.TAGS, F.X_TAGS, F.UPDATED_AT), counters=True)
    )
    assert values == [b'["a","b c"]', f"a|{encode_tag('b c')}".encode(), b"200"]
    assert counters == [None, b"201", b"2"]
    leaves = (TagIn(F.X_TAGS, (encode_tag("b c"),)),)
    assert one(db, ops.FilterSearch(leaves, 0))[0] == 1
    assert one(db, ops.Merge(SCOPE.tag + "0" * 16, "1", ())) == -1


def test_update_moves_bookkeeping_and_rewrites_opt(db: SqliteBackend, cfg: StoreConfig) -> None:
    m = item(cfg, ttl=3600)
    one(db, write(m, [unit(1)]))
    update = ops.Update(
        id=m.id, now=now_text(NOW + 1), kind="procedural", importance="0.9", ttl_ms=7_200_000,
        expires_at=now_text(NOW + 7201), ttl_seconds="7200",
        set_fields={F.KIND: "procedural", F.IMPORTANCE: "0.9", F.EXPIRES_AT: now_text(NOW + 7201),
                    F.X_EXPIRES_AT: now_text(NOW + 7201)},
        removed=(F.X_TAGS,), vector=unit(9),
    )  # fmt: skip
    assert one(db, update) is True
    total, kinds = one(db, ops.ScopeCounts(SCOPE.tag, now_text(NOW + 3700)))  # past the old expiry
    assert total == 1 and kinds["procedural"] == 1 and kinds["semantic"] == 0
    ((opt, kind),) = [v for v, _ in one(db, ops.ReadMemories((m.id,), (F.OPT, F.KIND)))]
    assert opt == b"1|7200|" + m.opt_rest.split("|", 1)[1].encode() and kind == b"procedural"
    sample = one(db, ops.EvictionSample(SCOPE.tag, 4))
    assert sample[3] == [(m.id, 0.9)]
    knn = one(db, ops.Knn((), unit(9), 3, (F.KIND,)))
    assert knn.rows[0].id == m.id and knn.rows[0].distance == pytest.approx(0.0, abs=1e-6)
    # past its logical expiry (the flow's now), an update is refused
    late = ops.Update(m.id, now_text(NOW + 8000), "", "", None, "", "", {F.CONTENT: "x"})
    assert one(db, late) is False
    assert one(db, ops.Update(SCOPE.tag + "f" * 16, "1", "", "", None, "", "", {"a": "b"})) is False


def test_delete_keep_limit_and_external_ids(db: SqliteBackend, cfg: StoreConfig) -> None:
    items = [item(cfg, now=NOW + i, id=f"ext-{i}") for i in range(5)]
    db.execute([write(m, [unit(i)]) for i, m in enumerate(items)])
    ids = tuple(m.id for m in items)
    gone = one(db, ops.Delete(SCOPE.tag, ids, now_text(NOW), keep=3))
    assert gone == ops.Deleted(3, [ids[0], ids[1]], ["ext-0", "ext-1"])
    gone = one(db, ops.Delete(SCOPE.tag, ids, now_text(NOW), limit=1))
    assert gone == ops.Deleted(2, [ids[2]], ["ext-2"])  # ids already gone are not counted
    assert one(db, ops.ScopeSize(SCOPE.tag)) == 2
    assert one(db, ops.Exists(ids[0])) is False and one(db, ops.Exists(ids[4])) is True
    assert one(db, ops.Delete(SCOPE.tag, ids, now_text(NOW))) == ops.Deleted(0, [ids[3], ids[4]], [
        "ext-3", "ext-4"])  # fmt: skip


def test_purge_by_flow_now(db: SqliteBackend, cfg: StoreConfig) -> None:
    short = item(cfg, ttl=10, kind=Kind.EPISODIC)
    keep = item(cfg, content="kept")
    db.execute([write(short, [unit(1)]), write(keep, [unit(2)])])
    assert one(db, ops.ScopeCounts(SCOPE.tag, now_text(NOW + 5))) == (2, {"episodic": 1, "semantic": 1})
    assert one(db, ops.ScopeCounts(SCOPE.tag, now_text(NOW + 10))) == (1, {"episodic": 0, "semantic": 1})
    # logically expired but its key lives on (real time): readable, as on Valkey
    assert one(db, ops.Exists(short.id)) is True
    assert one(db, ops.ScopeMembers(SCOPE.tag, 0, -1)) == [keep.id]


def test_ttl_expiry_by_real_time(db: SqliteBackend, cfg: StoreConfig) -> None:
    m = replace_ttl(item(cfg, ttl=60), 150)
    one(db, write(m, [unit(1)]))
    one(db, ops.Fetch((m.id,), True, "1", ()))
    assert one(db, ops.Exists(m.id)) is True
    assert one(db, ops.ReadCounters(m.id)) == {"access_count": "1", "last_accessed_at": "1"}
    # a refresh restarts the real-time lifetime
    time.sleep(0.1)
    assert one(db, ops.Refresh(((m.id, "semantic", now_text(NOW + 60), 300),))) == 1
    time.sleep(0.1)
    assert one(db, ops.Exists(m.id)) is True
    time.sleep(0.3)
    assert db.execute([
        ops.Exists(m.id), ops.ReadMemories((m.id,), (F.CONTENT,), counters=True),
        ops.Knn((), unit(1), 5, ()), ops.FilterSearch(tuple(MemoryFilter().leaves(NOW)), 10),
        ops.Fetch((m.id,), False, "1"), ops.ReadCounters(m.id), ops.Merge(m.id, "1", ()),
    ]) == [False, [(None, [None, None, None])], ops.KnnResult([], 0), (0, []), {}, {}, -1]  # fmt: skip
    # the bookkeeping stays until a purge by the flow's clock, exactly like Valkey's ZSETs
    assert one(db, ops.ScopeSize(SCOPE.tag)) == 1
    assert one(db, write(item(cfg, content="x"), [unit(2)])).scope_size == 2


def replace_ttl(m: PreparedMemory, ms: int) -> PreparedMemory:
    from dataclasses import replace

    return replace(m, ttl_ms=ms)


# -- search -------------------------------------------------------------------------------------------------
def test_knn_filters_extra_vectors_and_returned(db: SqliteBackend, cfg: StoreConfig) -> None:
    target = unit(100)
    a = item(cfg, content="alpha", tags=["x"], metadata={"price": 5})
    b = item(cfg, content="beta", scope=OTHER, metadata={"price": 50})
    c = item(cfg, content="", texts=["one", "two", "three"], tags=["x"])  # 3 vectors
    d = item(cfg, content="delta", embed=False)  # no vector: never a KNN row
    db.execute([
        write(a, [near(target, 1, 0.3)]), write(b, [near(target, 2, 0.2)]),
        write(c, [unit(7), near(target, 3, 0.01), near(target, 4, 0.02)]), write(d),
    ])  # fmt: skip
    res = one(db, ops.Knn((), target, 10, (F.CONTENT, F.IMPORTANCE)))
    assert [r.id for r in res.rows] == [c.id, b.id, a.id]
    assert res.returned == 5  # vector documents: 3 of c, 1 each of a and b
    assert res.rows[0].fields == {F.IMPORTANCE: b"0.5"}  # a child document has no content
    assert res.rows[1].fields == {F.CONTENT: b"beta", F.IMPORTANCE: b"0.5"}
    # the pool counts documents: c's two close vectors take two of the three places
    res = one(db, ops.Knn((), target, 3, ()))
    assert [r.id for r in res.rows] == [c.id, b.id] and res.returned == 3
    scoped = MemoryFilter(namespace=("proj",), user_id="alice").scope_leaves()
    res = one(db, ops.Knn(tuple(scoped), target, 10, ()))
    assert [r.id for r in res.rows] == [c.id, a.id] and res.returned == 4
    # the expiry leaf: child documents lack x_expires_at, so only c's first vector matches
    res = one(db, ops.Knn(tuple(MemoryFilter(user_id="alice").leaves(NOW)), target, 10, ()))
    assert [r.id for r in res.rows] == [a.id, c.id] and res.returned == 2
    numeric = MemoryFilter.build(metadata={"price": {"$gt": 5}}).with_numeric(["price"]).scope_leaves()
    assert numeric == [NumRange(numeric_field("price"), lo=5.0, lo_exclusive=True)]
    res = one(db, ops.Knn(tuple(numeric), target, 10, ()))
    assert [r.id for r in res.rows] == [b.id]
    inclusive = (NumRange(numeric_field("price"), lo=5.0, hi=50.0, hi_exclusive=True),)
    assert [r.id for r in one(db, ops.Knn(inclusive, target, 10, ())).rows] == [a.id]
    negated = (TagIn(F.X_TAGS, (encode_tag("x"),), negate=True),)
    assert [r.id for r in one(db, ops.Knn(negated, target, 10, ())).rows] == [b.id]
    either = (AnyOf(((TagIn(F.X_USER, (encode_tag("bob"),)),), (TagIn(F.KIND, ("episodic",)),))),)
    assert [r.id for r in one(db, ops.Knn(either, target, 10, ())).rows] == [b.id]
    bad = one(db, ops.Knn((), b"\x00" * 12, 3, ()))
    assert isinstance(bad, BackendError)


def test_knn_ties_break_by_id(db: SqliteBackend, cfg: StoreConfig) -> None:
    same = unit(5)
    memories = [item(cfg, content=f"m{i}") for i in range(6)]
    db.execute([write(m, [same]) for m in memories])
    res = one(db, ops.Knn((), same, 4, ()))
    assert [r.id for r in res.rows] == sorted(m.id for m in memories)[:4] and res.returned == 4


def test_filter_search_counts_and_fields(db: SqliteBackend, cfg: StoreConfig) -> None:
    memories = [item(cfg, content=f"word{i} common", kind=Kind.SEMANTIC if i % 2 else Kind.EPISODIC)
                for i in range(6)]  # fmt: skip
    no_terms = item(cfg, content="the of and")  # stop words only: no x_terms, no lex
    db.execute([*(write(m, [unit(i)]) for i, m in enumerate(memories)), write(no_terms, [unit(9)])])
    everything = tuple(MemoryFilter().leaves(NOW))
    assert one(db, ops.FilterSearch(everything, 0)) == (7, [])
    total, rows = one(db, ops.FilterSearch(everything, 3, (F.KIND,)))
    assert total == 7 and len(rows) == 3 and all(set(f) == {F.KIND} for _, f in rows)
    episodic = tuple(MemoryFilter(kinds=(Kind.EPISODIC,)).leaves(NOW))
    assert one(db, ops.FilterSearch(episodic, 0))[0] == 3
    # a match without any of the asked fields is counted but comes back as no row
    total, rows = one(db, ops.FilterSearch(everything, 10, (F.LEX,)))
    assert total == 7 and no_terms.id not in {i for i, _ in rows} and len(rows) == 6
    term = (TagIn(F.X_TERMS, ("common",)), *everything)
    assert one(db, ops.FilterSearch(term, 0))[0] == 6
    # logically expired (the flow's now is past expires_at): out of filter searches
    short = item(cfg, ttl=10)
    one(db, write(short, [unit(20)]))
    assert one(db, ops.FilterSearch(tuple(MemoryFilter().leaves(NOW + 11)), 0))[0] == 7
    # no fields asked: the whole hash, vectors included
    _, rows = one(db, ops.FilterSearch(tuple(MemoryFilter(kinds=(Kind.SEMANTIC,)).leaves(NOW)), 1))
    assert F.EMBEDDING in rows[0][1] and rows[0][1][F.CONTENT] and rows[0][1][F.KIND] == b"semantic"


def test_read_memories_and_vectors(db: SqliteBackend, cfg: StoreConfig) -> None:
    m = item(cfg, texts=["a", "b"], content="")
    one(db, write(m, [unit(1), unit(2)]))
    (values, counters), (missing, _) = one(
        db, ops.ReadMemories((m.id, SCOPE.tag + "0" * 16), (*STORED_FIELDS, F.EMBEDDING, F.VX, F.NV))
    )
    named = dict(zip((*STORED_FIELDS, F.EMBEDDING, F.VX, F.NV), values))
    assert named[F.EMBEDDING] == unit(1) and named[F.VX] == unit(2) and named[F.NV] == b"1"
    assert named[F.KEY] is None and counters is None and missing is None
    assert isinstance(one(db, ops.ReadMemories((m.id,), ())), BackendError)  # HMGET without fields


# -- scopes, aliases, config --------------------------------------------------------------------------------
def test_scope_registry_and_index_range_order(db: SqliteBackend) -> None:
    scopes = [ScopeKey(("a",)), ScopeKey(("a", "b"), user_id="u1"), ScopeKey(("a", "bc")), ScopeKey(("b",))]
    db.execute([ops.Register(s, tuple(scope_members(s))) for s in scopes])
    start, end = namespace_range(("a",))
    got = one(db, ops.ScopeIndexRange(start, end))
    assert got == sorted(m for s in scopes[:3] for m in scope_members(s) if m.startswith(b"n"))
    assert one(db, ops.ScopeIndexRange(start, end, limit=1)) == got[:1]
    assert one(db, ops.ScopeIndexRange(b"-", b"+")) == sorted(m for s in scopes for m in scope_members(s))
    assert one(db, ops.ScopeIndexRange(b"(" + got[0], end)) == got[1:]
    assert one(db, ops.ScopeIndexRange(b"+", b"-")) == []
    assert len(one(db, ops.ScopeIndexRange(*dimension_range("user_id", "u1")))) == 1
    assert isinstance(one(db, ops.ScopeIndexRange(b"x", b"+")), BackendError)
    assert one(db, ops.AllScopes())[scopes[1].tag] == scopes[1].descriptor()
    assert one(db, ops.ScopeDescriptors((scopes[0].tag, "nope"))) == [scopes[0].descriptor(), None]
    one(db, ops.Unregister(scopes[0], tuple(scope_members(scopes[0]))))
    assert one(db, ops.ScopeDescriptors((scopes[0].tag,))) == [None]
    assert one(db, ops.DropScopeIndexMembers((*scope_members(scopes[3]), b"zzz"))) == 1


def test_scope_by_time_and_members(db: SqliteBackend, cfg: StoreConfig) -> None:
    memories = [item(cfg, created_at=NOW + i // 2, content=f"c{i}") for i in range(6)]
    db.execute([write(m, [unit(i)]) for i, m in enumerate(memories)])
    order = sorted(memories, key=lambda m: (m.created_at, m.id))
    assert one(db, ops.ScopeMembers(SCOPE.tag, 1, 2)) == [order[1].id, order[2].id]
    assert one(db, ops.ScopeMembers(SCOPE.tag, -2, -1)) == [order[4].id, order[5].id]
    assert one(db, ops.ScopeMembers(SCOPE.tag, 5, 2)) == []
    newest = one(db, ops.ScopeByTime(SCOPE.tag, True, NOW + 1, 3))
    assert newest == [(order[3].id, NOW + 1), (order[2].id, NOW + 1), (order[1].id, NOW)]
    oldest = one(db, ops.ScopeByTime(SCOPE.tag, False, None, 2))
    assert oldest == [(order[0].id, NOW), (order[1].id, NOW)]
    n, ni, old, cheap = one(db, ops.EvictionSample(SCOPE.tag, 2))
    assert (n, ni, [i for i, _ in old], len(cheap)) == (6, 6, [order[0].id, order[1].id], 2)


def test_aliases_claim_and_release(db: SqliteBackend) -> None:
    assert db.execute([
        ops.ClaimId("x", "tag1"), ops.ClaimId("x", "tag1"), ops.ClaimId("x", "tag2"),
        ops.ClaimId("x", "tag2", stale="tag1"), ops.ResolveIds(("x", "y")),
        ops.ReleaseIds("tag1", ("x",)), ops.ReleaseIds("tag2", ("x", "y")), ops.ResolveIds(("x",)),
    ]) == ["", "", "tag1", "", ["tag2", None], 0, 1, [None]]  # fmt: skip


def test_live_config(db: SqliteBackend) -> None:
    assert one(db, ops.ReadConfig()) == {}
    db.execute([ops.WriteConfig({"threshold": "0.5"}), ops.WriteConfig({})])
    assert one(db, ops.ReadConfig()) == {"threshold": "0.5"}


# -- transactions, threads, processes ------------------------------------------------------------------------
def test_failed_op_is_rolled_back_alone(db: SqliteBackend, cfg: StoreConfig) -> None:
    good = item(cfg, content="good")
    bad = item(cfg, content="bad")
    results = db.execute([write(good, [unit(1)]), write(bad, [unit(2)[:8]]), ops.ScopeSize(SCOPE.tag)])
    assert results[0] == ops.WriteResult(True, 1)
    assert isinstance(results[1], InvalidVectorError)
    assert results[2] == 1  # the bad write left nothing behind (not even its bookkeeping)
    assert one(db, ops.Exists(bad.id)) is False
    assert [r.id for r in one(db, ops.Knn((), unit(1), 5, ())).rows] == [good.id]
    assert one(db, ops.ScopeCounts(SCOPE.tag, "0")) == (1, {"semantic": 1})
    invalid = one(db, ops.Exists("not-an-id"))
    assert isinstance(invalid, Exception)


def _statements(db: SqliteBackend) -> list[str]:
    """Record the SQL the backend's connection runs from now on."""
    seen: list[str] = []
    conn = db._connection()
    conn.set_trace_callback(seen.append)
    return seen


def test_a_write_batch_runs_without_savepoints_until_an_op_fails(db: SqliteBackend, cfg: StoreConfig) -> None:
    # savepoints make SQLite copy each page an op changes into a sub-journal (a third of a small batch's
    # time): a batch runs without them, and only one whose op failed runs again with one per op
    seen = _statements(db)
    first, second = item(cfg, content="one"), item(cfg, content="two")
    assert db.execute([write(first, [unit(1)]), write(second, [unit(2)])]) == [
        ops.WriteResult(True, 1), ops.WriteResult(True, 2),
    ]  # fmt: skip
    assert not [q for q in seen if "SAVEPOINT" in q] and seen.count("COMMIT") == 1
    seen.clear()
    good, bad, later = item(cfg, content="good"), item(cfg, content="bad"), item(cfg, content="later")
    results = db.execute([write(good, [unit(3)]), write(bad, [unit(4)[:8]]), write(later, [unit(5)])])
    assert results[0] == ops.WriteResult(True, 3) and results[2] == ops.WriteResult(True, 4)
    assert isinstance(results[1], InvalidVectorError)
    assert seen.count("ROLLBACK") == 1 and seen.count("SAVEPOINT op") == 3 and seen.count("COMMIT") == 1
    # the first run left nothing: every count and sequence number is as if the batch ran once
    assert one(db, ops.ScopeCounts(SCOPE.tag, now_text(NOW))) == (4, {"semantic": 4})
    opts = [v[0] for v, _ in one(db, ops.ReadMemories((good.id, later.id), (F.OPT,)))]
    assert [opt.split(b"|")[0] for opt in opts] == [b"3", b"4"]
    assert one(db, ops.Exists(bad.id)) is False
    ids = {r.id for r in one(db, ops.Knn((), unit(5), 10, ())).rows}
    assert ids == {first.id, second.id, good.id, later.id}


def test_threads_share_one_backend(db: SqliteBackend, cfg: StoreConfig) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                m = item(cfg, content=f"t{n}-{i}")
                assert db.execute([write(m, [unit(n * 100 + i)]), ops.Fetch((m.id,), True, "1")])[1]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and one(db, ops.ScopeSize(SCOPE.tag)) == 80


def _child_writes(path: str, name: str, n: int) -> None:
    """Write ``n`` memories (one batch each; ``n < 0``: until killed)."""
    cfg = config(name)
    backend = SqliteBackend(path)
    backend.setup(spec_of(cfg))
    i = 0
    while i != n:
        backend.execute([write(item(cfg, content=f"child {i}"), [unit(1000 + i)])])
        i += 1
    backend.close()


def test_two_connections_on_one_file(tmp_path: Path, cfg: StoreConfig) -> None:
    path = str(tmp_path / "shared.db")
    a, b = SqliteBackend(path), SqliteBackend(path)
    a.setup(spec_of(cfg))
    b.setup(spec_of(cfg))
    m = item(cfg, content="from a")
    one(a, write(m, [unit(1)]))
    assert [r.id for r in one(b, ops.Knn((), unit(1), 3, ())).rows] == [m.id]  # b's cache loads
    m2 = item(cfg, content="from b")
    one(b, write(m2, [unit(2)]))
    assert [r.id for r in one(a, ops.Knn((), unit(2), 1, ())).rows] == [m2.id]  # a's cache reloads
    one(a, ops.Delete(SCOPE.tag, (m2.id,), "0"))
    assert [r.id for r in one(b, ops.Knn((), unit(2), 5, ())).rows] == [m.id]
    a.close()
    b.close()


def test_another_process_writing_and_killed_mid_write(tmp_path: Path, cfg: StoreConfig) -> None:
    path = str(tmp_path / "shared.db")
    parent = SqliteBackend(path)
    parent.setup(spec_of(cfg))
    one(parent, ops.Knn((), unit(1), 1, ()))  # a warm vector cache, which the child's writes invalidate
    child = multiprocessing.get_context("spawn").Process(target=_child_writes, args=(path, cfg.name, -1))
    child.start()
    try:
        for i in range(15):
            one(parent, write(item(cfg, content=f"parent {i}"), [unit(2000 + i)]))
        deadline = time.monotonic() + 20
        while one(parent, ops.ScopeSize(SCOPE.tag)) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        child.kill()  # SIGKILL, most likely inside a write transaction
        child.join(10)
    conn = parent._connection()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    size = one(parent, ops.ScopeSize(SCOPE.tag))
    assert size >= 30
    # every batch is all or nothing: the memories and the bookkeeping agree
    assert one(parent, ops.FilterSearch(tuple(MemoryFilter().leaves(NOW)), 0))[0] == size
    assert one(parent, ops.ScopeCounts(SCOPE.tag, "0")) == (size, {"semantic": size})
    assert one(parent, ops.Knn((), unit(1001), 1000, ())).returned == size
    assert one(parent, ops.Knn((), unit(2003), 1, ())).rows[0].distance == pytest.approx(0, abs=1e-6)
    parent.close()


# -- the same ops on Valkey ------------------------------------------------------------------------------
def _scenario(cfg: StoreConfig) -> list[list[Any]]:
    """A sequence of batches touching every op (logical clock only: nothing expires in real time)."""
    a = item(cfg, key="ka", tags=["x", "y"], metadata={"price": 5, "color": "red"}, created_at=NOW - 10)
    b = item(cfg, content="beta words", scope=OTHER, ttl=30, kind=Kind.EPISODIC, metadata={"price": 50})
    c = item(cfg, content="", texts=["one", "two"], tags=["x"], id="caller-c")
    d = item(cfg, content="delta", embed=False, importance=0.1)
    e = item(cfg, content="echo", ttl=5, kind=Kind.EPISODIC)
    again = item(cfg, now=NOW + 1, key="ka", content="alpha again", importance=0.7)
    f = item(cfg, content="the frog jumps", tags=["q"], metadata={"price": 1.5}, kind=Kind.SUMMARY)
    g = item(cfg, content="the frog sleeps", ttl=100, kind=Kind.SUMMARY, metadata={"price": 3})
    target = unit(500)
    knn_fields = (F.IMPORTANCE, F.CREATED_AT, F.EXPIRES_AT, F.CONTENT, F.OPT, F.LEX)
    scoped = tuple(MemoryFilter(namespace=("proj",), user_id="alice").scope_leaves())
    live = tuple(MemoryFilter().leaves(NOW + 2))
    later = now_text(NOW + 6)
    return [
        [ops.Register(SCOPE, tuple(scope_members(SCOPE))), ops.Register(OTHER, tuple(scope_members(OTHER))),
         ops.ClaimId("caller-c", SCOPE.tag)],
        [write(a, [near(target, 1, 0.5)]), write(b, [near(target, 2, 0.3)]),
         write(c, [unit(3), near(target, 4, 0.1)]), write(d), write(e, [near(target, 5, 0.4)])],
        [ops.Knn((), target, 10, knn_fields), ops.Knn(scoped, target, 2, knn_fields),
         ops.Knn(live, target, 10, ()), ops.FilterSearch(live, 0),
         ops.FilterSearch((TagIn(F.X_TERMS, ("word",)), *live), 10, (F.LEX, F.CONTENT)),
         ops.FilterSearch((NumRange(numeric_field("price"), hi=50, hi_exclusive=True), *live), 10,
                          (F.KIND,))],
        [write(again, [near(target, 6, 0.2)]), ops.Fetch((a.id, c.id, b.id), True, format_number(NOW + 2),
                                                         (F.CONTENT, F.IMPORTANCE))],
        [ops.Merge(b.id, now_text(NOW + 3), (('"z"', "z"),)), ops.Merge(b.id, now_text(NOW + 3), ()),
         ops.Fetch((b.id,), False, "0", (F.TAGS,))],
        [ops.Update(a.id, now_text(NOW + 4), "procedural", "0.3", 60_000, now_text(NOW + 64), "60",
                    {F.KIND: "procedural", F.IMPORTANCE: "0.3", F.EXPIRES_AT: now_text(NOW + 64),
                     F.X_EXPIRES_AT: now_text(NOW + 64), F.X_TAGS: "y"}, (F.LEX,), unit(77)),
         ops.Refresh(((b.id, "episodic", now_text(NOW + 90), 90_000),)),
         ops.ReadMemories((a.id, b.id, d.id), (*STORED_FIELDS, F.X_TAGS, F.NV), counters=True)],
        [ops.ScopeCounts(SCOPE.tag, later), ops.ScopeSize(SCOPE.tag), ops.ScopeMembers(SCOPE.tag, 0, -1),
         ops.ScopeByTime(SCOPE.tag, True, None, 10), ops.ScopeByTime(SCOPE.tag, False, NOW, 2),
         ops.ScopePage(SCOPE.tag, True, None, 10, (F.CONTENT, F.KIND, F.NV), counters=True),
         ops.ScopePage(SCOPE.tag, False, NOW, 2, STORED_FIELDS), ops.ScopePage(OTHER.tag, True, None, 5, ()),
         ops.EvictionSample(SCOPE.tag, 2), ops.EvictionSample(OTHER.tag, 0),
         ops.Knn((TagIn(F.X_TAGS, ("y",)),), unit(77), 5, (F.KIND,))],
        [ops.Delete(SCOPE.tag, (d.id, c.id, a.id), later, keep=1), ops.ReadCounters(a.id),
         ops.WriteCounters(a.id, {"access_count": "9"}), ops.ReadCounters(a.id), ops.Exists(c.id),
         ops.ResolveIds(("caller-c", "nobody")), ops.ReleaseIds(SCOPE.tag, ("caller-c",))],
        [ops.AllScopes(), ops.ScopeDescriptors((SCOPE.tag, "0" * 16)),
         ops.ScopeIndexRange(*namespace_range(("proj",))), ops.ScopeIndexRange(b"-", b"+", 2),
         ops.Unregister(OTHER, tuple(scope_members(OTHER))), ops.ScopeIndexRange(b"-", b"+"),
         ops.DropScopeIndexMembers((*scope_members(SCOPE), b"nope")),
         ops.WriteConfig({"threshold": "0.4"}), ops.ReadConfig()],
        [write(f, [near(target, 8, 0.05), near(target, 9, 0.01), unit(10)]), write(g, [unit(11)]),
         ops.Knn((), target, 3, (F.CONTENT, F.EMBEDDING, F.NV, F.X_TERMS, F.KIND)),
         ops.Knn((TagIn(F.X_TERMS, ("frog",)),), target, 10, (F.KIND,)),
         ops.Knn((TagIn(F.X_TERMS, ("frog",), negate=True), TagIn(F.KIND, ("semantic", "summary"))), target,
                 10, (F.KIND,)),
         ops.Knn((AnyOf(((TagIn(F.X_USER, (encode_tag("bob"),)),),
                         (NumRange(numeric_field("price"), lo=1, hi=2, lo_exclusive=True),))),), target, 10,
                 ()),
         ops.FilterSearch((TagIn(F.X_TAGS, ("q",)), *live), 5),
         ops.FilterSearch((NumRange(numeric_field("price"), lo=2, lo_exclusive=True), *live), 5, (F.KIND,))],
        [ops.Update(f.id, now_text(NOW + 7), "", "", None, "", "", {F.X_TAGS: "q|r"}, (F.VX,)),
         ops.Knn((TagIn(F.X_TAGS, ("r",)),), target, 10, (F.TAGS,)),
         ops.ReadMemories((f.id,), (F.NV, F.VX, F.EMBEDDING, F.X_TAGS)),
         ops.Merge(g.id, now_text(NOW + 7), (('"q"', "q"), ('"q"', "q"))), ops.Merge(a.id, "1", ()),
         ops.Refresh(((a.id, "semantic", "1", 100_000), (g.id, "summary", now_text(NOW + 99), 99_000))),
         ops.ReadMemories((g.id,), (F.EXPIRES_AT, F.X_EXPIRES_AT, F.TAGS, F.X_TAGS), counters=True),
         ops.ScopeByTime(SCOPE.tag, True, NOW + 1000, 0), ops.ScopeByTime(SCOPE.tag, False, None, -1),
         ops.ScopePage(SCOPE.tag, True, NOW + 1000, 0, (F.CONTENT,)),
         ops.ScopePage(SCOPE.tag, False, None, -1, (F.CONTENT, F.EXPIRES_AT), counters=True),
         ops.ScopeMembers(SCOPE.tag, -1, -1), ops.ScopeMembers(SCOPE.tag, 2, 100),
         ops.ClaimId("caller-f", SCOPE.tag), ops.ClaimId("caller-f", OTHER.tag),
         ops.ResolveIds(("caller-f",)),
         ops.ReadMemories((f.id,), ()), ops.ResolveIds(()), ops.DropScopeIndexMembers(()),
         ops.WriteCounters(f.id, {}), ops.ScopeIndexRange(b"x", b"+"), ops.Fetch((), True, "1"),
         ops.Refresh(()), ops.ReleaseIds(SCOPE.tag, ()), ops.Delete(SCOPE.tag, (), "0"),
         ops.Delete(SCOPE.tag, (f.id, g.id, e.id), now_text(NOW + 1), limit=2),
         ops.ScopeCounts(SCOPE.tag, now_text(NOW + 1)), ops.ScopeCounts(OTHER.tag, now_text(NOW + 1000))],
    ]  # fmt: skip


def _normalise(result: Any) -> Any:
    if isinstance(result, ops.KnnResult):
        return ("knn", [(r.id, round(r.distance, 5), r.fields) for r in result.rows], result.returned)
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[1], list)
        and (not result[1] or isinstance(result[1][0], tuple) and isinstance(result[1][0][1], dict))
    ):  # FilterSearch: rows in no particular order
        return ("filter", result[0], sorted(result[1], key=lambda r: r[0]))
    if isinstance(result, Exception):
        return ("error", type(result).__name__)
    return result


def _run_all(execute: Callable[[list[Any]], list[Any]], batches: list[list[Any]]) -> list[Any]:
    return [[_normalise(r) for r in execute(batch)] for batch in batches]


@pytest.mark.integration
def test_same_results_as_valkey(valkey_url: str, unique_name: str, tmp_path: Path) -> None:
    import valkey

    from agentmem_core._scripts import ALL_SCRIPTS
    from agentmem_core.backends.valkey import ValkeyOps
    from agentmem_core.backends.valkey_client import ValkeyBackend
    from agentmem_core.engine import EngineInfo

    cfg = config(unique_name)
    spec = spec_of(cfg)
    client: Any = valkey.Valkey.from_url(valkey_url, protocol=2, decode_responses=False)
    client.execute_command(*spec.create_command())
    for script in ALL_SCRIPTS:  # as setup does: a NOSCRIPT retry would run after the rest of its batch
        client.script_load(script.body)
    translator = ValkeyOps(spec.keys, spec, EngineInfo("redisearch", (2, 10, 5)), timeout_ms=5000)
    on_server = ValkeyBackend(client, lambda: translator)
    sqlite = SqliteBackend(str(tmp_path / "diff.db"))
    sqlite.setup(spec)
    batches = _scenario(cfg)
    try:
        on_valkey = _run_all(on_server.execute, batches)
        on_sqlite = _run_all(sqlite.execute, batches)
    finally:
        sqlite.close()
        client.execute_command("FT.DROPINDEX", spec.name, "DD")
        client.close()
    for n, (expected, got) in enumerate(zip(on_valkey, on_sqlite)):
        for m, (x, y) in enumerate(zip(expected, got)):
            assert y == x, f"batch {n} op {m}: {type(batches[n][m]).__name__}: {expected} vs {got}"


def test_setup_op_and_async_protocol(tmp_path: Path, cfg: StoreConfig) -> None:
    import asyncio

    from agentmem_core._flows_admin import SetupResult
    from agentmem_core.backends.threaded import ThreadedBackend

    backend = SqliteBackend(str(tmp_path / "op.db"))
    (result,) = backend.execute([ops.Setup(spec_of(cfg), True)])
    assert isinstance(result, SetupResult) and result.lexical and result.spec == spec_of(cfg)
    wrong = spec_of(StoreConfig(name=cfg.name, index=IndexConfig(dims=DIMS + 1)))
    assert isinstance(backend.execute([ops.Setup(wrong, True)])[0], DimensionMismatchError)

    async def use() -> list[Any]:
        threaded = ThreadedBackend(backend)  # the one bridge the async store uses for a sync backend
        out = await threaded.aexecute([ops.ReadConfig(), ops.ScopeSize("x" * 16)])
        await threaded.aclose()
        return out

    assert asyncio.run(use()) == [{}, 0]


# -- the in-memory filter evaluation (vector cache postings) against the SQL rendering ---------------------
def _sql_ids(db: SqliteBackend, leaves: tuple[Any, ...], *, child: bool = False) -> list[str]:
    """The live memories a filter matches, by the SQL rendering (the reference meaning)."""
    from agentmem_core.backends.sqlite._filters import render

    assert db._sql is not None
    condition, params = render(leaves, db._sql, child=child)
    statement = db._sql("SELECT m.id FROM {mem} m WHERE (m.deadline IS NULL OR m.deadline > ?) AND ")
    rows = db._connection().execute(
        statement + condition + " ORDER BY m.id", (int(time.time() * 1000), *params)
    )
    return [r[0] for r in rows]


def _expected_knn(db: SqliteBackend, leaves: tuple[Any, ...]) -> set[str]:
    with_vector = {r[0] for r in db._connection().execute(db._sql("SELECT id FROM {vec} WHERE n = 0"))}  # type: ignore[misc]
    with_extra = {r[0] for r in db._connection().execute(db._sql("SELECT id FROM {vec} WHERE n > 0"))}  # type: ignore[misc]
    first = set(_sql_ids(db, leaves)) & with_vector
    return first | (set(_sql_ids(db, leaves, child=True)) & with_extra)


def _filters(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    users = [encode_tag(u) for u in ("alice", "bob", "carol")]
    tags = [encode_tag(t) for t in ("x", "y", "z")]
    price = numeric_field("price")
    out: list[tuple[Any, ...]] = [
        (),
        tuple(MemoryFilter().leaves(NOW)),
        tuple(MemoryFilter(user_id="alice").leaves(NOW)),
    ]
    for _ in range(40):
        leaves: list[Any] = []
        for _ in range(int(rng.integers(1, 4))):
            pick = int(rng.integers(0, 7))
            if pick == 0:
                leaves.append(
                    TagIn(F.X_USER, tuple(rng.choice(users, int(rng.integers(1, 3)), replace=False)))
                )
            elif pick == 1:
                leaves.append(TagIn(F.X_TAGS, (str(rng.choice(tags)),), negate=bool(rng.integers(0, 2))))
            elif pick == 2:
                lo = float(rng.integers(0, 60))
                leaves.append(
                    NumRange(
                        price,
                        lo=lo,
                        hi=lo + float(rng.integers(0, 40)),
                        lo_exclusive=bool(rng.integers(0, 2)),
                    )
                )
            elif pick == 3:
                leaves.append(TagIn(F.KIND, (str(rng.choice(["episodic", "semantic"])),)))
            elif pick == 4:
                leaves.append(
                    AnyOf(
                        (
                            (TagIn(F.X_TAGS, (tags[0],)),),
                            (NumRange(price, hi=20.0), TagIn(F.X_USER, (users[1],))),
                        )
                    )
                )
            elif pick == 5:
                leaves.append(TagIn(F.X_TERMS, ("common",), negate=bool(rng.integers(0, 2))))
            else:  # the expired half of a live count (_counts): a child vector document is among it
                leaves.append(NumRange(F.X_EXPIRES_AT, hi=NOW))
        out.append(tuple(leaves))
    return out


def _check_filters(db: SqliteBackend, filters: list[tuple[Any, ...]], target: bytes) -> None:
    for leaves in filters:
        want = _expected_knn(db, leaves)
        res = one(db, ops.Knn(leaves, target, 500, ()))
        assert {r.id for r in res.rows} == want, leaves
        total, rows = one(db, ops.FilterSearch(leaves, 7, (F.KIND,)))
        ids = _sql_ids(db, leaves)
        assert total == len(ids), leaves
        assert [i for i, _ in rows] == ids[:7], leaves  # the first ids, with the asked field


def test_in_memory_filters_match_the_sql_rendering_and_follow_writes(
    tmp_path: Path, cfg: StoreConfig
) -> None:
    rng = np.random.default_rng(3)
    path = str(tmp_path / "f.db")
    db, other = SqliteBackend(path), SqliteBackend(path)
    db.setup(spec_of(cfg))
    other.setup(spec_of(cfg))
    scopes = [SCOPE, OTHER, ScopeKey(("proj",), user_id="carol")]
    memories: list[PreparedMemory] = []
    batch = []
    for i in range(60):
        tags = [t for t in ("x", "y", "z") if rng.random() < 0.4]
        kw: dict[str, Any] = {"content": f"word{i} common" if i % 3 else f"word{i}", "tags": tags,
                              "kind": Kind.EPISODIC if i % 2 else Kind.SEMANTIC}  # fmt: skip
        if i % 4:
            kw["metadata"] = {"price": int(rng.integers(0, 100))}
        if i % 7 == 0:
            kw["content"], kw["texts"] = "", ["a", "b"]
        m = item(cfg, scope=scopes[i % 3], **kw)
        memories.append(m)
        vectors = [unit(i), unit(500 + i)] if i % 7 == 0 else [] if i % 11 == 0 else [unit(i)]
        batch.append(write(m, vectors))
    db.execute(batch)
    filters = _filters(rng)
    target = unit(10_000)
    _check_filters(db, filters, target)  # loads the postings
    # this process's own writes keep the loaded postings in step
    one(db, ops.Merge(memories[1].id, now_text(NOW + 1), (('"x"', encode_tag("x")),)))
    changes = {F.KIND: "episodic", numeric_field("price"): "55"}
    one(db, ops.Update(memories[2].id, now_text(NOW + 1), "episodic", "", None, "", "", changes))
    one(db, ops.Delete(SCOPE.tag, (memories[3].id,), now_text(NOW + 1)))
    one(db, write(item(cfg, content="late common", tags=["y"], metadata={"price": 30}), [unit(777)]))
    _check_filters(db, filters, target)
    # another connection's writes (tags, numbers, deletes): the postings reload
    one(other, ops.Merge(memories[4].id, now_text(NOW + 2), (('"z"', encode_tag("z")),)))
    one(other, ops.Delete(OTHER.tag, (memories[5].id,), now_text(NOW + 2)))
    one(other, write(item(cfg, scope=OTHER, content="from other", tags=["x"]), [unit(778)]))
    _check_filters(db, filters, target)
    _check_filters(other, filters, target)
    db.close()
    other.close()


def test_knn_dense_filter_is_exact_and_fills_the_pool(db: SqliteBackend, cfg: StoreConfig) -> None:
    memories = [item(cfg, content=f"m{i}", scope=SCOPE if i % 5 else OTHER) for i in range(200)]
    db.execute([write(m, [unit(i)]) for i, m in enumerate(memories)])
    target = unit(9999)
    q = np.frombuffer(target, dtype="<f4")
    alice = tuple(MemoryFilter(user_id="alice").scope_leaves())  # 4 in 5 rows: the whole-matrix path
    for leaves, keep in ((alice, [m for i, m in enumerate(memories) if i % 5]), ((), memories)):
        distances = {m.id: 1.0 - float(np.frombuffer(unit(i), dtype="<f4") @ q)
                     for i, m in enumerate(memories) if m in keep}  # fmt: skip
        want = sorted(distances, key=lambda k: (distances[k], k))[:30]
        res = one(db, ops.Knn(leaves, target, 30, ()))
        assert [r.id for r in res.rows] == want and res.returned == 30
    bob = tuple(MemoryFilter(user_id="bob").scope_leaves())  # 1 in 5: the gathered path
    res = one(db, ops.Knn(bob, target, 100, ()))
    assert res.returned == 40 and {r.id for r in res.rows} == {
        m.id for i, m in enumerate(memories) if i % 5 == 0
    }


def test_in_memory_filters_with_evicted_postings(
    db: SqliteBackend, cfg: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem_core.backends.sqlite import _vectors

    monkeypatch.setattr(_vectors, "MAX_POSTINGS", 2)  # a filter needs more tokens than stay loaded
    users = ["alice", "bob", "carol", "dave"]
    memories = [
        item(cfg, scope=ScopeKey(("p",), user_id=users[i % 4]), tags=[f"t{i % 3}"]) for i in range(40)
    ]
    db.execute([write(m, [unit(i)]) for i, m in enumerate(memories)])
    many = (
        TagIn(F.X_USER, tuple(encode_tag(u) for u in users[:3])),
        TagIn(F.X_TAGS, (encode_tag("t1"),), negate=True),
    )
    either = (AnyOf(tuple((TagIn(F.X_USER, (encode_tag(u),)),) for u in users[1:])),)
    rng = np.random.default_rng(5)
    _check_filters(db, [many, either, *_filters(rng)[:10]], unit(1234))
