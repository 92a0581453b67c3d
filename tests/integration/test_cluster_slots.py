"""Issue 18: the core's keys, its multi-key operations and the checkpointer are slot-safe on a cluster.

Four parts (see docs/cluster.md):

* pure: every command the Valkey translation (``ValkeyOps(cluster=True)``) produces for an operation of any
  type, for many scopes (hostile ids among them), touches keys of one hash slot, the slot of the scope's
  ``{tag}``; a standalone translation that groups scopes is caught by the same check (the control);
* the session's 3-primary cluster without a search module (``cluster_url``): the script calls run through
  the Valkey backend's send path with no CROSSSLOT and the right results, while the server refuses the
  standalone grouping; a ``MemoryStore`` does everything but the FT.* operations (recall, dedup);
* a 3-primary cluster of our own whose nodes load the search module (RediSearch OSS, no coordinator):
  what the store's setup and recall do there, observed;
* the checkpointer on the session cluster: threads on every node, hostile thread ids, namespaces,
  writes, list over every node, copy across slots, delete_for_runs, prune, delete_thread.

The sync and async store's setup() and the checkpointer's setup() on a cluster, and the NOSCRIPT recovery
after a redirected FT.*, were bugs (strict xfails until fixed); their tests now pin the fixes.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import valkey
import valkey.asyncio as avalkey
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from valkey.crc import key_slot

from agentmem_core import AsyncMemoryStore, MemoryStore, ops
from agentmem_core._encoding import Keys, ScopeKey
from agentmem_core._plan import Call, ScriptCall
from agentmem_core._scripts import FETCH, PAGE
from agentmem_core.backends.valkey import _COMMANDS, ValkeyOps
from agentmem_core.backends.valkey_client import ValkeyBackend
from agentmem_core.config import IndexConfig
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import AgentMemError, SearchModuleUnavailableError
from agentmem_core.schema import F, IndexSpec
from agentmem_core.testing.server import ValkeyServer, free_port
from agentmem_langgraph import AsyncValkeySaver, ValkeySaver
from agentmem_langgraph.checkpoint import _keys as cp_keys

DIMS = 4
SLOTS = 16384

# -- slots ---------------------------------------------------------------------------------------------------


def _crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the cluster's key hash, written out independently of valkey-py."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _slot_of(key: str | bytes) -> int:
    """The hash slot of a key by the cluster spec: the text of the first non-empty ``{...}``, else the key."""
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16(raw) % SLOTS


def _slot(key: str) -> int:
    slot = key_slot(key.encode())
    assert slot == _slot_of(key), key  # valkey-py and the spec agree
    return slot


# User-controlled scope values: hash-tag braces, glob and separator characters, control characters, unicode,
# a key prefix, very long values. None of them may move a key out of its scope's slot.
HOSTILE = [
    "alice", "{", "}", "{}", "}{", "a{b}c", "{x}", "x}{y", "%7B", "{{}}", "*", "?", "[a-z]", "a:b", "|",
    "am:t:m:{", "ü{ß}", "🙂", "a b", "x" * 500, "0" * 16, "_none_",
]  # fmt: skip
CONTROL = ["\x00", "\n", "line\nbreak", "\x01{"]


def _hostile_scopes() -> list[ScopeKey]:
    scopes = [ScopeKey()]
    for value in HOSTILE + CONTROL:
        scopes += [
            ScopeKey(user_id=value),
            ScopeKey(thread_id=value, agent_id="{agent}"),
            ScopeKey(namespace=("proj", value), user_id=value),
        ]
    return scopes


def _translation(keys: Keys, cluster: bool) -> ValkeyOps:
    spec = IndexSpec(keys, IndexConfig(dims=DIMS))
    return ValkeyOps(keys, spec, EngineInfo("redisearch", (2, 10, 5)), 1000, cluster)


def _vector(n: int) -> bytes:
    values = [0.0] * DIMS
    values[n % DIMS] = 1.0
    return struct.pack(f"<{DIMS}f", *values)


def _memory_ids(scope: ScopeKey, n: int = 3) -> list[str]:
    return [scope.tag + f"{i + 1:016x}" for i in range(n)]


def _write(memory_id: str, tag: str, content: str, vectors: int = 1) -> ops.Write:
    now = "1000"
    fields = {
        F.CREATED_AT: now, F.X_CREATED_AT: now, F.KIND: "semantic", F.IMPORTANCE: "0.5", F.CONTENT: content,
        F.EXPIRES_AT: "9999999999", F.X_EXPIRES_AT: "9999999999", F.UPDATED_AT: now,
    }  # fmt: skip
    return ops.Write(
        id=memory_id, tag=tag, now=now, created_at=now, ttl_ms=0, expires_at="0", kind="semantic",
        importance="0.5", opt_rest="0|0|", fields=fields, vectors=tuple(_vector(i) for i in range(vectors)),
    )  # fmt: skip


def _scope_ops(scope: ScopeKey) -> list[Any]:
    """One operation of every per-scope type, for ``scope``."""
    tag = scope.tag
    ids = _memory_ids(scope)
    first = ids[0]
    return [
        _write(first, tag, "c", vectors=3),
        ops.WriteMany((_write(ids[1], tag, "d", vectors=2), _write(ids[2], tag, "e"))),
        ops.Merge(first, "1001", (('"t"', "t"),)),
        ops.Update(
            first,
            "1002",
            "episodic",
            "0.7",
            60_000,
            "1062",
            "60",
            {F.CONTENT: "d"},
            (F.SOURCE,),
            _vector(1),
            ("fabc",),
        ),  # fmt: skip
        ops.Delete(tag, tuple(ids), "1003", keep=1, limit=2),
        ops.ReadMemories(tuple(ids), (F.CONTENT, F.KIND), counters=True),
        ops.ReadCounters(first),
        ops.WriteCounters(first, {"access_count": "3"}),
        ops.Exists(first),
        ops.ClaimId("ext-" + tag, tag, "0" * 16),
        ops.ReleaseIds(tag, ("ext-" + tag,)),
        ops.ScopeCounts(tag, "1000"),
        ops.TermStats((tag,), (), ("appl", "banana"), 1000.0),
        ops.ScopeSize(tag),
        ops.ScopeMembers(tag, 0, -1),
        ops.ScopeByTime(tag, True, None, 10),
        ops.ScopeByTime(tag, False, 5.0, 10),
        ops.ScopePage(tag, True, None, 10, (F.CONTENT,), counters=True),
        ops.ScopePage(tag, False, 5.0, 10, (F.CONTENT, F.KIND)),
        ops.EvictionSample(tag, 8),
        ops.Register(scope, (b"member-a", b"member-b")),
        ops.Unregister(scope, (b"member-a",)),
        ops.ScopeDescriptors((tag, "0" * 16)),
    ]


def _store_ops(scopes: list[ScopeKey]) -> list[Any]:
    """The operations over several scopes at once, and the store-wide ones."""
    every = [memory_id for scope in scopes for memory_id in _memory_ids(scope)]
    return [
        ops.Fetch(tuple(every), True, "1000", (F.CONTENT, F.EXPIRES_AT)),
        ops.TermStats(tuple(s.tag for s in scopes), (), ("appl",), 1000.0),
        ops.Refresh(tuple((memory_id, "semantic", "2000", 1000) for memory_id in every)),
        ops.ResolveIds(("a", "b{c}")),
        ops.AllScopes(),
        ops.ScopeIndexRange(b"[a", b"(b", 10),
        ops.DropScopeIndexMembers((b"member-a",)),
        ops.ReadConfig(),
        ops.WriteConfig({"threshold": "0.5"}),
        ops.AcquireLease("consolidate:x", "holder", 1000),
        ops.ReleaseLease("consolidate:x", "holder"),
        ops.AuditAppend(({"action": "remember", "ids": "x"}, {"action": "forget", "ids": "y"}), 100),
        ops.AuditRange(None, 10),
        ops.Knn((), _vector(0), 10, (F.CONTENT,)),
        ops.FilterSearch((), 0),
        ops.Probe(),
    ]


# The plain commands the translation sends: each takes exactly one key, its first argument.
ONE_KEY = {
    "HMGET", "HGETALL", "HSET", "HDEL", "EXISTS", "ZCARD", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
    "ZRANGEBYLEX", "ZADD", "ZREM", "XADD", "XREVRANGE",
}  # fmt: skip


def _keys_of(command: Any) -> tuple[str, ...]:
    """The keys a command touches (FT.* name an index, not a key)."""
    if isinstance(command, ScriptCall):
        return command.keys
    assert isinstance(command, Call)
    name = str(command.args[0]).upper()
    if name.startswith("FT."):
        return ()
    assert name in ONE_KEY, f"{name}: a command this test does not know; declare where its keys are"
    return (str(command.args[1]),)


def _child_keys(command: ScriptCall, extra_vectors: int) -> list[str]:
    """The keys a script touches that are not in KEYS: the child vector documents it creates next to
    each memory key it names, and the memory and counter hashes PAGE names from its key prefixes."""
    memory_keys = [k for k in command.keys if ":m:{" in k]
    out = [f"{k}:{j}" for k in memory_keys for j in range(1, extra_vectors + 1)]
    if command.script is PAGE:
        out += [f"{command.args[4]}{'f' * 16}", f"{command.args[5]}{'f' * 16}"]
    return out


def test_every_operation_type_is_checked() -> None:
    scopes = _hostile_scopes()[:3]
    built = {type(op) for op in _scope_ops(scopes[0]) + _store_ops(scopes)}
    assert built == set(_COMMANDS), set(_COMMANDS) ^ built  # a new operation type must be added here


def test_every_command_of_every_operation_touches_one_slot_on_a_cluster() -> None:
    keys = Keys("t")
    translation = _translation(keys, cluster=True)
    scopes = _hostile_scopes()
    assert len({s.tag for s in scopes}) == len(scopes)  # distinct scopes, distinct tags
    checked = 0
    for scope in scopes:
        tag_slot = _slot(scope.tag)
        for op in _scope_ops(scope):
            for command in translation.commands(op):
                touched = list(_keys_of(command))
                if isinstance(command, ScriptCall):
                    touched += _child_keys(command, extra_vectors=2)
                slots = {_slot(k) for k in touched}
                assert len(slots) == 1, (type(op).__name__, scope, touched)
                store_wide = touched[0] in (keys.aliases, keys.scopes, keys.scope_index)
                assert store_wide or slots == {tag_slot}, (type(op).__name__, touched)
                checked += 1
    for op in _store_ops(scopes):
        commands = translation.commands(op)
        for command in commands:
            slots = {_slot(k) for k in _keys_of(command)}
            assert len(slots) <= 1, (type(op).__name__, _keys_of(command))
            checked += 1
        if isinstance(op, (ops.Fetch, ops.Refresh)):  # over many scopes: one script call per scope
            assert len(commands) == len(scopes)
            tags = [{k[k.index("{") + 1 : k.index("}")] for k in c.keys} for c in commands]  # type: ignore[union-attr]
            assert all(len(t) == 1 for t in tags) and len(set().union(*tags)) == len(scopes)
            got = [keys.id_from_memory_key(k) for c in commands for k in c.keys if ":m:{" in k]  # type: ignore[union-attr]
            assert sorted(got) == sorted(m for s in scopes for m in _memory_ids(s))
        if isinstance(op, ops.TermStats):  # one script call per scope, its four keys
            assert [{k[k.index("{") + 1 : k.index("}")] for k in c.keys} for c in commands] == [  # type: ignore[union-attr]
                {s.tag} for s in scopes
            ]
    assert checked > 25 * len(scopes)


def test_a_scope_keeps_every_key_in_its_tag_slot_and_scopes_spread_over_slots() -> None:
    keys = Keys("store-name_1")
    scopes = _hostile_scopes()
    for scope in scopes:
        memory_id = _memory_ids(scope, 1)[0]
        own = [
            keys.memory(memory_id), keys.stats(memory_id), *keys.bookkeeping(scope.tag),
            keys.memory(memory_id) + ":1", keys.stats_of_memory_key(keys.memory(memory_id)),
        ]  # fmt: skip
        assert {_slot(k) for k in own} == {_slot(scope.tag)}, scope
        assert keys.id_from_memory_key(keys.memory(memory_id)) == memory_id
    # 70-odd scopes land on many slots (so on every node of a cluster), not on one
    assert len({_slot(s.tag) for s in scopes}) >= len(scopes) - 2


def test_the_check_catches_a_call_spanning_scopes() -> None:
    # Control: on a standalone server FETCH takes the hits of every scope in one call; the same check must
    # see that call span slots, so the assertions above could fail.
    scopes = _hostile_scopes()[:6]
    (call,) = _translation(Keys("t"), cluster=False).commands(_store_ops(scopes)[0])
    assert isinstance(call, ScriptCall)
    assert len({_slot(k) for k in call.keys}) == len(scopes)


def test_the_slot_function_follows_the_hash_tag_rules() -> None:
    # first "{" and the first "}" after it; an empty tag hashes the whole key
    assert _slot_of("a{b}c") == _slot_of("b") == _slot_of("{b}") == _slot_of("x{b}{c}")
    assert _slot_of("a{}c") == _crc16(b"a{}c") % SLOTS
    assert _slot_of("a{b") == _crc16(b"a{b") % SLOTS
    assert _slot_of("a}b{c}") == _slot_of("c")
    for key in ["plain", "a{b}c", "{}", "}{", "{{x}}", "x" * 300, "ü{ß}"]:
        assert _slot(key) == key_slot(key.encode())


# -- the session's cluster, no search module --------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(cluster_url: str) -> Iterator[valkey.ValkeyCluster]:
    client = valkey.ValkeyCluster.from_url(cluster_url)  # type: ignore[no-untyped-call]
    yield client
    client.close()


def _node_of(client: valkey.ValkeyCluster, key: str) -> str:
    return str(client.get_node_from_key(key).name)


def _scopes_on_every_node(
    client: valkey.ValkeyCluster, scopes: list[ScopeKey], per_node: int
) -> list[ScopeKey]:
    """The first scopes of ``scopes`` that put at least ``per_node`` scopes on every primary."""
    nodes = {n.name for n in client.get_primaries()}
    chosen: list[ScopeKey] = []
    count: dict[str, int] = {}
    for scope in scopes:
        node = _node_of(client, f"x{{{scope.tag}}}")
        if count.get(node, 0) < per_node:
            chosen.append(scope)
            count[node] = count.get(node, 0) + 1
    assert set(count) == nodes and min(count.values()) == per_node, count
    return chosen


def _under(client: Any, prefix: str) -> list[bytes]:
    return sorted(client.scan_iter(match=prefix + "*", count=1000))


def test_the_server_agrees_on_every_slot(cluster: valkey.ValkeyCluster) -> None:
    keys = Keys("t")
    sample = [keys.memory(_memory_ids(s, 1)[0]) for s in _hostile_scopes()[:20]] + ["a{}c", "}{x}"]
    for key in sample:
        assert cluster.execute_command("CLUSTER", "KEYSLOT", key) == _slot(key)  # type: ignore[no-untyped-call]


def test_script_calls_of_every_kind_run_per_scope_on_the_cluster(
    cluster: valkey.ValkeyCluster, unique_name: str
) -> None:
    keys = Keys(unique_name)
    translation = _translation(keys, cluster=True)
    backend = ValkeyBackend(cluster, lambda: translation)
    scopes = _scopes_on_every_node(cluster, _hostile_scopes(), per_node=3)
    ids = {s.tag: _memory_ids(s) for s in scopes}
    every = [m for s in scopes for m in ids[s.tag]]

    # WRITE (the first memory of a scope has two extra vectors: child documents not named in KEYS), then
    # WRITE_MANY for the other two (the second with children too)
    writes: list[Any] = []
    for s in scopes:
        first, second, third = ids[s.tag]
        writes += [
            _write(first, s.tag, f"content {first}", vectors=3),
            ops.WriteMany((_write(second, s.tag, f"content {second}", vectors=2),
                           _write(third, s.tag, f"content {third}"))),
        ]  # fmt: skip
    replies = backend.execute(writes)
    results = [r for reply in replies for r in ([reply] if isinstance(reply, ops.WriteResult) else reply)]
    assert [r.is_new for r in results] == [True] * 3 * len(scopes)
    assert [r.scope_size for r in results] == [1, 2, 3] * len(scopes)
    for s in scopes:
        assert cluster.exists(keys.memory(ids[s.tag][1]) + ":1") == 1  # type: ignore[no-untyped-call]
    for s in scopes:  # children live next to their memory, on its node
        first = keys.memory(ids[s.tag][0])
        for j in (1, 2):
            assert cluster.exists(f"{first}:{j}") == 1  # type: ignore[no-untyped-call]
            assert _node_of(cluster, f"{first}:{j}") == _node_of(cluster, first)
    assert len({_node_of(cluster, keys.memory(m)) for m in every}) == 3

    # FETCH across every scope (one call per slot, in one pipeline), reinforcing
    (fetched,) = backend.execute([ops.Fetch(tuple(every), True, "1001", (F.CONTENT,))])
    assert not isinstance(fetched, BaseException), fetched
    assert {m: v[1] for m, v in fetched.items()} == {m: [f"content {m}".encode()] for m in every}
    (again,) = backend.execute([ops.Fetch(tuple(every), False, "1002", ())])
    assert {m: v[0][:2] for m, v in again.items()} == {m: [b"1", b"1001"] for m in every}

    # DUPLICATE, UPDATE, REFRESH, SCOPE_STATS, the caller-id scripts, per scope in one batch
    batch: list[Any] = []
    for s in scopes:
        first = ids[s.tag][0]
        batch += [
            ops.Merge(first, "1003", (('"tag"', "tag"),)),
            ops.Update(
                first, "1004", "episodic", "0.9", None, "0", "", {F.CONTENT: "changed", F.KIND: "episodic"}
            ),
            ops.ClaimId("ext-" + s.tag, s.tag),
            ops.ScopeCounts(s.tag, "1005"),
        ]
    batch.append(
        ops.Refresh(tuple((m, "semantic", "99999", 100_000) for s in scopes for m in ids[s.tag][1:]))
    )
    replies = backend.execute(batch)
    assert not [r for r in replies if isinstance(r, BaseException)], replies
    per = [replies[4 * n : 4 * n + 4] for n in range(len(scopes))]
    assert [p[0] for p in per] == [1] * len(scopes)  # duplicate counts
    assert [p[1] for p in per] == [True] * len(scopes)
    assert [p[2] for p in per] == [""] * len(scopes)  # claimed
    assert [p[3] for p in per] == [(3, {"semantic": 2, "episodic": 1})] * len(scopes)
    assert replies[-1] == 2 * len(scopes)
    (resolved,) = backend.execute([ops.ResolveIds(tuple("ext-" + s.tag for s in scopes))])
    assert resolved == [s.tag for s in scopes]
    read = backend.execute([ops.ReadMemories((ids[s.tag][0],), (F.CONTENT, F.KIND)) for s in scopes])
    assert [r[0] for r in read] == [([b"changed", b"episodic"], None)] * len(scopes)
    for s in scopes:  # UPDATE rewrote the children from the changed memory (same slot, no KEYS entry)
        assert cluster.hget(keys.memory(ids[s.tag][0]) + ":1", "kind") == b"episodic"  # type: ignore[no-untyped-call]

    # DELETE per scope (eviction-style keep/limit first, then everything), then nothing of a memory is left
    evicted = backend.execute([ops.Delete(s.tag, tuple(ids[s.tag][::-1]), "1006", keep=2) for s in scopes])
    assert [(d.remaining, d.removed) for d in evicted] == [(2, [ids[s.tag][-1]]) for s in scopes]
    deleted = backend.execute([ops.Delete(s.tag, tuple(ids[s.tag]), "1007") for s in scopes])
    assert [(d.remaining, sorted(d.removed)) for d in deleted] == [(0, ids[s.tag][:2]) for s in scopes]
    released = backend.execute([ops.ReleaseIds(s.tag, ("ext-" + s.tag,)) for s in scopes])
    assert released == [1] * len(scopes)
    left = [k.decode() for k in _under(cluster, keys.prefix)]
    assert not [k for k in left if ":m:" in k or ":s:" in k or ":z:" in k or ":i:" in k], left


def test_the_server_refuses_a_script_call_that_spans_scopes(
    cluster: valkey.ValkeyCluster, unique_name: str
) -> None:
    # Control: the standalone translation (one FETCH for the hits of every scope) is what the per-scope
    # grouping avoids; the cluster refuses it with CROSSSLOT even on the node holding its first key.
    scopes = _scopes_on_every_node(cluster, _hostile_scopes(), per_node=1)
    op = ops.Fetch(tuple(_memory_ids(s, 1)[0] for s in scopes), False, "1", ())
    (call,) = _translation(Keys(unique_name), cluster=False).commands(op)
    assert isinstance(call, ScriptCall)
    node = cluster.get_node_from_key(call.keys[0])
    direct = valkey.Valkey(host=node.host, port=node.port)
    try:
        with pytest.raises(valkey.exceptions.ResponseError, match="CROSSSLOT"):
            direct.eval(FETCH.body, len(call.keys), *call.keys, *call.args)  # type: ignore[no-untyped-call]
        one = _translation(Keys(unique_name), cluster=True).commands(op)[0]  # the cluster's grouping
        node = cluster.get_node_from_key(one.keys[0])  # type: ignore[union-attr]
        direct.close()
        direct = valkey.Valkey(host=node.host, port=node.port)
        assert direct.eval(FETCH.body, len(one.keys), *one.keys, *one.args) == [-1]  # type: ignore[union-attr, no-untyped-call]
    finally:
        direct.close()


# The scope values a store accepts (it refuses control characters in some fields; braces and the rest pass).
STORE_VALUES = ["alice", "{", "}", "{}", "}{", "a{b}c", "x}{y", "%7B", "*", "[a-z]", "ü{ß}", "🙂", "a b"]


def _store_scopes() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, value in enumerate(STORE_VALUES):
        out.append({"user_id": value})
        out.append({"namespace": ["proj", value], "thread_id": f"t{n}{{x}}", "agent_id": value})
    return out


def _key_of(scope: dict[str, Any]) -> ScopeKey:
    ns = scope.get("namespace") or ()
    return ScopeKey(tuple(ns), scope.get("thread_id"), scope.get("agent_id"), scope.get("user_id"))


def test_a_store_without_a_search_module_does_all_but_search_on_a_cluster(
    cluster_url: str, cluster: valkey.ValkeyCluster, unique_name: str
) -> None:
    store = MemoryStore.from_url(cluster_url, name=unique_name, embedder=HashingEmbedder(64), cluster=True)
    other = MemoryStore.from_url(
        cluster_url, name=unique_name + "b", embedder=HashingEmbedder(64), cluster=True
    )
    try:
        with pytest.raises(SearchModuleUnavailableError):
            store.setup()
        scopes = _store_scopes()
        keys = Keys(unique_name)
        scope_of: dict[str, int] = {}  # memory id -> index of its scope in `scopes`
        for n, scope in enumerate(scopes):
            scope_of[store.remember(f"note {n}", tags=["t1"], metadata={"n": n}, **scope)] = n
            scope_of[store.remember(f"texts {n}", texts=[f"first {n}", f"second {n}"], ttl=3600, **scope)] = n
        ids = list(scope_of)
        keyed = store.remember("keyed", key="k{1}", **scopes[3])
        caller = store.remember("with a caller id", id="ext-{7}", **scopes[4])
        assert caller == "ext-{7}"
        nodes = {_node_of(cluster, keys.memory(m)) for m in ids}
        assert len(nodes) == 3, nodes  # the scopes' memories live on every primary

        got = store.get_many(ids)
        assert [m.content for m in got if m is not None] == [
            text for n in range(len(scopes)) for text in (f"note {n}", f"texts {n}")
        ]
        assert store.get(caller).content == "with a caller id"  # type: ignore[union-attr]
        assert store.get_by_key("k{1}", **scopes[3]).id == keyed  # type: ignore[union-attr]
        assert store.update(ids[0], content="changed", importance=0.9).content == "changed"
        bulk = store.update_many([*ids, caller], importance=0.25)  # every scope, on every node
        assert [m.importance for m in bulk if m is not None] == [0.25] * (len(ids) + 1)
        assert store.touch(ids) == len(ids)
        assert store.get(ids[1], refresh_ttl=True) is not None
        for n, scope in enumerate(scopes):
            assert {m.id for m in store.list(**scope).memories} >= {ids[2 * n], ids[2 * n + 1]}
        assert store.count() == len(ids) + 2
        assert store.count(tags=["t1"]) == len(scopes)
        assert store.count(metadata={"n": 3}, **scopes[3]) == 1
        stats = store.stats()
        assert stats.total == len(ids) + 2 and len(stats.scopes) == len(scopes)
        assert {_key_of(s) for s in scopes} == set(store.scopes())
        assert store.facets(**scopes[0]).by_tag == {"t1": 1}

        # export from one store, import into another: the same memories, on the same slots
        records: list[dict[str, Any]] = []
        assert store.export(records.append) == len(ids) + 2
        assert other.import_records(records).imported == len(ids) + 2
        assert sorted(m.id for m in other.get_many(ids) if m is not None) == sorted(ids)

        # what needs FT.*: recall, recall by vector, write-time dedup
        with pytest.raises(SearchModuleUnavailableError):
            store.recall("note", k=5)
        with pytest.raises(SearchModuleUnavailableError):
            store.recall_by_vector(HashingEmbedder(64).embed(["note"])[0], k=5, **scopes[0])
        dedup = MemoryStore(cluster, name=unique_name, embedder=HashingEmbedder(64), dedup_threshold=0.1)
        with pytest.raises(SearchModuleUnavailableError):
            dedup.remember("again", **scopes[0])

        # leases and the audit log: store-wide keys, one slot each
        assert store.acquire_lease("consolidate", holder="a")
        assert not store.acquire_lease("consolidate", holder="b")
        assert store.release_lease("consolidate", holder="a")
        assert {e.action for e in store.audit(limit=500)} >= {"remember", "update"}

        # deletes over many scopes at once: by key, by ids (caller ids too), by scope, by namespace prefix
        alive = set(ids)
        assert store.forget_keys(["k{1}"], **scopes[3]) == 1
        gone = {ids[0], ids[2], ids[5]}
        assert store.forget_many([*gone, caller, "0" * 32]) == 4
        alive -= gone
        in_scope_2 = {m for m in alive if scope_of[m] == 2}  # scopes[2] is {"user_id": "{"}
        assert store.forget_by_scope(user_id="{") == len(in_scope_2) == 1
        alive -= in_scope_2
        under_proj = {m for m in alive if "namespace" in scopes[scope_of[m]]}
        assert store.forget_by_scope(namespace_prefix=["proj"]) == len(under_proj) > len(STORE_VALUES)
        alive -= under_proj
        assert store.forget_many(ids) == len(alive) > 0
        assert store.count() == 0 and store.scopes() == []
        left = [k.decode() for k in _under(cluster, keys.prefix)]
        assert not [k for k in left if ":m:" in k or ":s:" in k], left
    finally:
        store.close()
        other.close()


def test_capacity_eviction_per_scope_on_a_cluster(cluster_url: str, unique_name: str) -> None:
    store = MemoryStore.from_url(cluster_url, name=unique_name, embedder=HashingEmbedder(64), cluster=True,
                                 max_items_per_scope=2)  # fmt: skip
    try:
        for scope in _store_scopes()[:8]:
            written = [store.remember(f"m{n}", importance=0.1 * (n + 1), **scope) for n in range(4)]
            # the least important went
            assert {m.id for m in store.list(**scope).memories} == set(written[2:])
        assert store.count() == 16
    finally:
        store.close()


async def test_async_setup_on_a_cluster_reports_the_missing_search_module(
    cluster_url: str, unique_name: str
) -> None:
    store = AsyncMemoryStore.from_url(
        cluster_url, name=unique_name, embedder=HashingEmbedder(64), cluster=True
    )
    try:
        with pytest.raises(SearchModuleUnavailableError):  # what the sync store raises
            await store.setup()
    finally:
        await store.close()


async def test_the_async_store_on_a_cluster(cluster_url: str, unique_name: str) -> None:
    store = AsyncMemoryStore.from_url(
        cluster_url, name=unique_name, embedder=HashingEmbedder(64), cluster=True
    )
    try:
        scopes = _store_scopes()
        ids = await store.remember_many([{"content": f"m{n}", **s} for n, s in enumerate(scopes)])
        got = await store.get_many(ids)
        assert [m.content for m in got if m is not None] == [f"m{n}" for n in range(len(scopes))]
        assert await store.touch(ids) == len(ids)
        assert (await store.stats()).total == len(ids)
        assert await store.forget_many(ids) == len(ids)
        assert await store.count() == 0
    finally:
        await store.close()


# -- a cluster whose nodes load the search module (RediSearch OSS, no coordinator) --------------------------


def _start_cluster(base: Path, nodes: int = 3, search: bool = True) -> list[ValkeyServer]:
    """tests/conftest.py's ``_start_cluster``, with the search module loaded on every node."""
    servers: list[ValkeyServer] = []
    bus_ports: list[int] = []
    try:
        for i in range(nodes):
            bus_ports.append(free_port())
            servers.append(
                ValkeyServer(
                    search=search,
                    extra_args=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(base / f"nodes-{i}.conf"),
                        "--cluster-node-timeout", "5000",
                        "--cluster-port", str(bus_ports[i]),
                    ],
                ).start()
            )  # fmt: skip
        clients = [valkey.Valkey(host="127.0.0.1", port=s.port) for s in servers]
        per = SLOTS // nodes
        for i, client in enumerate(clients):
            start = i * per
            end = SLOTS - 1 if i == nodes - 1 else start + per - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)  # type: ignore[no-untyped-call]
        for server, bus in zip(servers[1:], bus_ports[1:]):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port, bus)  # type: ignore[no-untyped-call]
        texts: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            texts = [c.execute_command("CLUSTER", "INFO").decode() for c in clients]  # type: ignore[no-untyped-call]
            if all("cluster_state:ok" in t and f"cluster_known_nodes:{nodes}" in t for t in texts):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cluster did not converge: {texts}")
        for client in clients:
            client.close()
        return servers
    except BaseException:
        for server in servers:
            server.stop()
        raise


@pytest.fixture(scope="module")
def search_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ValkeyServer]]:
    servers = _start_cluster(tmp_path_factory.mktemp("search-cluster"))
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def _fresh_client(servers: list[ValkeyServer]) -> valkey.ValkeyCluster:
    return valkey.ValkeyCluster(host="127.0.0.1", port=servers[0].port)  # type: ignore[no-untyped-call]


def _name_with_index_off_the_default_node(client: valkey.ValkeyCluster) -> str:
    """A store name whose index name hashes to a slot the client's default node does not own."""
    default = client.get_default_node().name
    while True:
        name = "c" + uuid.uuid4().hex[:10]
        if _node_of(client, f"am_{name}_v2") != default:
            return name


def test_setup_completes_on_a_cluster_with_a_search_module(search_cluster: list[ValkeyServer]) -> None:
    client = _fresh_client(search_cluster)
    store = MemoryStore(client, name="c" + uuid.uuid4().hex[:10], embedder=HashingEmbedder(64))
    try:
        assert store.setup().kind == "redisearch"
    finally:
        client.close()


async def test_async_setup_and_writes_without_cached_scripts_on_a_search_cluster(
    search_cluster: list[ValkeyServer],
) -> None:
    """The asyncio store's setup routes its keyless commands too, and its NOSCRIPT recovery (EVAL) works."""
    client = avalkey.ValkeyCluster(host="127.0.0.1", port=search_cluster[0].port)
    lookup = _fresh_client(search_cluster)  # the sync client only says which node owns a scope
    try:
        store = AsyncMemoryStore(client, name="c" + uuid.uuid4().hex[:10], embedder=HashingEmbedder(64))
        assert (await store.setup()).kind == "redisearch"
        for server in search_cluster:  # setup loaded the scripts; now no node has them
            with valkey.Valkey(host="127.0.0.1", port=server.port) as node:
                node.script_flush()  # type: ignore[no-untyped-call]
        scopes = _scopes_on_every_node(lookup, [_key_of(s) for s in _store_scopes()], per_node=1)
        written = [
            await store.remember("no script cached", namespace=list(scope.namespace),
                                 thread_id=scope.thread_id, agent_id=scope.agent_id, user_id=scope.user_id)
            for scope in scopes
        ]  # fmt: skip
        found = await store.get_many(written)
        assert [m.content if m is not None else None for m in found] == ["no script cached"] * len(scopes)
    finally:
        lookup.close()
        await client.aclose()


def test_writes_in_every_scope_survive_a_redirected_search_command(
    search_cluster: list[ValkeyServer],
) -> None:
    for server in search_cluster:  # no script cached anywhere (whatever ran before)
        with valkey.Valkey(host="127.0.0.1", port=server.port) as node:
            node.script_flush()  # type: ignore[no-untyped-call]
    client = _fresh_client(search_cluster)
    try:
        name = _name_with_index_off_the_default_node(client)
        store = MemoryStore(client, name=name, embedder=HashingEmbedder(64))
        scopes = _scopes_on_every_node(client, [_key_of(s) for s in _store_scopes()], per_node=1)
        with pytest.raises(AgentMemError):  # no index yet; what matters is the redirect of its FT.SEARCH
            store.recall("anything", k=1)
        assert len(client.get_primaries()) == 2  # what the redirect did to the client's node table
        for scope in scopes:
            store.remember("after a search", namespace=list(scope.namespace), thread_id=scope.thread_id,
                           agent_id=scope.agent_id, user_id=scope.user_id)  # fmt: skip
    finally:
        client.close()


def test_redisearch_oss_indexes_and_searches_one_shard_only(search_cluster: list[ValkeyServer]) -> None:
    """An observation, not a contract: what a store gets from RediSearch OSS (no coordinator) on a cluster.

    RediSearch declares the index name a key, so FT.CREATE and FT.SEARCH go to the node owning the index
    name's slot; that node alone has the index and indexes its own hashes only. Its search lists those keys
    but, in a cluster-enabled server without the coordinator, with nil field arrays, which the store drops
    as it drops expired rows: recall finds nothing (observed with RediSearch 2.10.5 on Valkey 8.0.1). Once
    setup has detected the engine, ``count()`` asks that one shard too (one FT.SEARCH count), while the
    scope bookkeeping (no FT.*, ``stats()``) sees every shard.
    """
    client = _fresh_client(search_cluster)
    try:
        name = "c" + uuid.uuid4().hex[:10]
        store = MemoryStore(client, name=name, embedder=HashingEmbedder(64), threshold=None)
        scopes = _scopes_on_every_node(client, [_key_of(s) for s in _store_scopes()], per_node=2)
        assert store.setup().kind == "redisearch"
        index = f"am_{name}_v2"
        owner = _node_of(client, index)
        lists = {}
        for server in search_cluster:
            with valkey.Valkey(host="127.0.0.1", port=server.port) as node:
                lists[f"127.0.0.1:{server.port}"] = [n.decode() for n in node.execute_command("FT._LIST")]  # type: ignore[no-untyped-call]
        assert {n for n, names in lists.items() if index in names} == {owner}, lists

        keys = Keys(name)
        written = {
            store.remember(
                "note about the trip",
                namespace=list(s.namespace),
                thread_id=s.thread_id,
                agent_id=s.agent_id,
                user_id=s.user_id,
            ): s  # fmt: skip
            for s in scopes
        }
        local = {m for m in written if _node_of(client, keys.memory(m)) == owner}
        assert 0 < len(local) < len(written)
        host, port = owner.rsplit(":", 1)
        with valkey.Valkey(host=host, port=int(port)) as node:
            info = node.execute_command("FT.INFO", index)  # type: ignore[no-untyped-call]
            num_docs = dict(zip(info[::2], info[1::2]))[b"num_docs"]
            assert int(float(num_docs)) == len(local)  # per shard
            found = node.execute_command("FT.SEARCH", index, "*", "LIMIT", 0, 100)  # type: ignore[no-untyped-call]
        assert found[0] == len(local)
        assert {keys.id_from_memory_key(k.decode()) for k in found[1::2]} == local
        assert all(fields is None for fields in found[2::2])  # nil rows: nothing to rank
        hits = {h.memory.id for h in store.recall("note about the trip", k=50, reinforce=False).hits}
        assert hits <= local  # never a memory of another shard (observed: none at all)
        assert store.stats().total == len(written)  # the scope bookkeeping (no FT.*) sees every shard
        assert store.count() == len(local)  # an FT.SEARCH count: the index's shard only
    finally:
        client.close()


# -- the checkpointer ---------------------------------------------------------------------------------------

THREADS = ["plain", "{", "}", "{}", "}{", "a{b}c", "x}{y", "%7B", "%", "\x00\x01", "ü{ß}", "*", "[x]", " "]
NAMESPACES = ["", "child:1", "ns{x}", "a|b:c"]


def _put(saver: ValkeySaver, thread: str, ns: str, values: dict[str, Any], parent: str | None = None,
         run_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    versions = {k: saver.get_next_version(None, None) for k in values}
    cp = generate_checkpoint(channel_values=values, channel_versions=versions)
    meta = generate_metadata(**({"run_id": run_id} if run_id else {}))
    return dict(
        saver.put(generate_config(thread, checkpoint_ns=ns, checkpoint_id=parent), cp, meta, versions)
    )


def _thread_nodes(client: valkey.ValkeyCluster, prefix: str, threads: list[str]) -> dict[str, str]:
    return {t: _node_of(client, cp_keys.thread_keys(prefix, t).ids) for t in threads}


def test_checkpointer_threads_on_every_node(cluster: valkey.ValkeyCluster) -> None:
    prefix = "cs" + uuid.uuid4().hex[:10]
    saver = ValkeySaver(cluster, prefix=prefix)  # no setup(): the scripts load on first use (EVAL)
    threads = THREADS + [f"t-{n}" for n in range(10)]
    nodes = _thread_nodes(cluster, prefix, threads)
    assert set(nodes.values()) == {n.name for n in cluster.get_primaries()}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for thread in threads:
        for ns in NAMESPACES:
            first = _put(saver, thread, ns, {"v": 1}, run_id=f"run-{thread}")
            second = _put(saver, thread, ns, {"v": 2, "who": thread},
                          first["configurable"]["checkpoint_id"], run_id="run-shared")  # fmt: skip
            saver.put_writes(second, [("ch", thread), ("other", ns)], task_id="task{1}")
            latest[(thread, ns)] = second
    for (thread, ns), config in latest.items():
        got = saver.get_tuple(generate_config(thread, checkpoint_ns=ns))
        assert got is not None and got.config["configurable"] == config["configurable"]
        assert got.checkpoint["channel_values"] == {"v": 2, "who": thread}
        assert got.pending_writes == [("task{1}", "ch", thread), ("task{1}", "other", ns)]
        assert got.parent_config is not None
        assert len(list(saver.list({"configurable": {"thread_id": thread, "checkpoint_ns": ns}}))) == 2
    # list(None) SCANs every node and finds every checkpoint of every thread
    everything = list(saver.list(None))
    assert len(everything) == len(threads) * len(NAMESPACES) * 2
    assert {t.config["configurable"]["thread_id"] for t in everything} == set(threads)

    # copy to a thread on another node (DUMP of the source's keys, one RESTORE script on the target's)
    source = threads[0]
    target = next(f"copy-{n}" for n in range(100)
                  if _thread_nodes(cluster, prefix, [f"copy-{n}"])[f"copy-{n}"] != nodes[source])  # fmt: skip
    saver.copy_thread(source, target)
    for ns in NAMESPACES:
        copied = saver.get_tuple(generate_config(target, checkpoint_ns=ns))
        assert copied is not None and copied.checkpoint["channel_values"] == {"v": 2, "who": source}
        assert copied.pending_writes == [("task{1}", "ch", source), ("task{1}", "other", ns)]

    # delete_for_runs over threads on every node: the shared run's checkpoints go, the first ones stay
    saver.delete_for_runs(["run-shared"])
    for thread in threads:
        for ns in NAMESPACES:
            got = saver.get_tuple(generate_config(thread, checkpoint_ns=ns))
            assert got is not None and got.checkpoint["channel_values"] == {"v": 1}
    saver.prune(threads[:6], strategy="delete")
    assert all(saver.get_tuple(generate_config(t)) is None for t in threads[:6])
    saver.prune(threads[6:], strategy="keep_latest")
    for thread in [*threads[6:], target]:
        saver.delete_thread(thread)
    assert _under(cluster, prefix + ":") == []


def test_checkpointer_setup_on_a_cluster(cluster_url: str) -> None:
    client = valkey.ValkeyCluster.from_url(cluster_url)  # type: ignore[no-untyped-call]
    try:
        ValkeySaver(client, prefix="cu" + uuid.uuid4().hex[:10]).setup()
    finally:
        client.close()


async def test_async_checkpointer_setup_on_a_cluster(cluster_url: str) -> None:
    client = avalkey.ValkeyCluster.from_url(cluster_url)
    try:
        await AsyncValkeySaver(client, prefix="cu" + uuid.uuid4().hex[:10]).setup()
    finally:
        await client.aclose()


async def test_async_checkpointer_threads_on_every_node(cluster_url: str) -> None:
    client = avalkey.ValkeyCluster.from_url(cluster_url)
    try:
        prefix = "ca" + uuid.uuid4().hex[:10]
        saver = AsyncValkeySaver(client, prefix=prefix)
        threads = THREADS + [f"t-{n}" for n in range(6)]
        for thread in threads:
            for ns in NAMESPACES[:2]:
                versions = {"v": saver.get_next_version(None, None)}
                cp = generate_checkpoint(channel_values={"v": thread}, channel_versions=versions)
                config = await saver.aput(generate_config(thread, checkpoint_ns=ns), cp, generate_metadata(),
                                          versions)  # fmt: skip
                await saver.aput_writes(config, [("ch", json.dumps([thread, ns]))], task_id="t")
        listed = [t async for t in saver.alist(None)]
        assert len(listed) == len(threads) * 2
        for thread in threads:
            got = await saver.aget_tuple(generate_config(thread, checkpoint_ns="child:1"))
            assert got is not None and got.checkpoint["channel_values"] == {"v": thread}
            assert got.pending_writes == [("t", "ch", json.dumps([thread, "child:1"]))]
            await saver.adelete_thread(thread)
        assert [k async for k in client.scan_iter(match=prefix + ":*")] == []
    finally:
        await client.aclose()
