"""The Valkey backend's translation of storage operations: op -> commands, their replies -> its result.

Pure (no I/O): :class:`ValkeyOps` is what the Valkey drivers call around one pipelined round trip. Every
operation becomes the command(s) agentmem always sent for it (FT.SEARCH strings, EVALSHA of the Lua
scripts, hash and sorted-set commands), so the seam costs no round trip. On a cluster an operation over
memories of several scopes becomes one script call per scope (one hash slot each).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from agentmem_core import ops
from agentmem_core._encoding import Keys
from agentmem_core._lease_scripts import LEASE_ACQUIRE, LEASE_RELEASE
from agentmem_core._parse import (
    as_text,
    index_health,
    pairs,
    parse_filter_search,
    parse_search,
    returned_rows,
)
from agentmem_core._plan import Call, Command, ScriptCall
from agentmem_core._scripts import (
    ALIAS_CLAIM,
    ALIAS_RELEASE,
    DELETE,
    DUPLICATE,
    FETCH,
    PAGE,
    READ,
    REFRESH,
    SCOPE_STATS,
    TERM_STATS,
    UPDATE,
    WRITE,
    WRITE_MANY,
)
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import AgentMemError, BackendAuthError, BackendError, translate_backend_error
from agentmem_core.query import render_query
from agentmem_core.schema import DISTANCE_ALIAS, STATS_FIELDS, F, IndexSpec, format_number

__all__ = ["ValkeyOps"]


@dataclass(frozen=True)
class ValkeyOps:
    """Translates operations for one store: its key layout, index, engine limits and client kind."""

    keys: Keys
    spec: IndexSpec
    engine: EngineInfo
    timeout_ms: int
    cluster: bool = False

    @cached_property
    def prefix_len(self) -> int:
        """Length of the memory key prefix (ids are read from keys at fixed offsets after it)."""
        return len(self.keys.memory_prefix)

    # -- the two halves ------------------------------------------------------------------------------
    def commands(self, op: Any) -> list[Command]:
        """The commands of one operation (raw ``Call`` / ``ScriptCall`` pass through unchanged)."""
        if isinstance(op, (Call, ScriptCall)):
            return [op]
        return _COMMANDS[type(op)](self, op)

    def result(self, op: Any, commands: Sequence[Command], replies: Sequence[Any]) -> Any:
        """The result of one operation from its replies; a server error comes back in place, translated."""
        if isinstance(op, (Call, ScriptCall)):
            return replies[0]
        for command, reply in zip(commands, replies):
            if isinstance(reply, BaseException):
                return refused(command, reply)
        try:
            return _RESULTS[type(op)](self, op, commands, replies)
        except AgentMemError as exc:  # e.g. an FT.SEARCH error reply: in place, as the server's errors
            return exc
        except (TypeError, ValueError, IndexError) as exc:
            return BackendError(f"unreadable reply to {type(op).__name__}: {exc}")

    # -- search ----------------------------------------------------------------------------------------
    def knn_command(
        self, leaves: Sequence[Any], vector: bytes, pool: int, fields: Sequence[str], batches: bool = False
    ) -> Call:
        """The portable KNN FT.SEARCH (EF_RUNTIME before AS, explicit LIMIT 0 k, TIMEOUT, DIALECT 2).

        ``batches`` (RediSearch only; the flow's plan) adds ``HYBRID_POLICY BATCHES`` to a filtered KNN.
        """
        filter_text = render_query(leaves, max_leaves=self.engine.max_leaves)
        knn = f"[KNN {pool} @{F.EMBEDDING} $vec"
        if self.spec.config.algorithm == "HNSW":
            # only when the index is known to be HNSW (configured, or found or made by setup()): a store
            # used before setup() may be searching a FLAT index (another adapter's), which refuses the
            # option; it then searches with the engine's own beam, max(k, its default)
            ef = self.spec.config.ef_runtime or max(pool, 64)
            knn += f" EF_RUNTIME {min(4096, max(ef, pool if pool <= 4096 else 4096))}"
        if batches and self.engine.kind == "redisearch" and filter_text != "*":
            # a KNN without a filter is no hybrid query: RediSearch refuses the attribute there
            knn += " HYBRID_POLICY BATCHES"
        knn += f" AS {DISTANCE_ALIAS}]"
        return Call((
            "FT.SEARCH", self.spec.name, f"{filter_text}=>{knn}",
            "PARAMS", 2, "vec", vector,
            "RETURN", len(fields) + 1, DISTANCE_ALIAS, *fields,
            "LIMIT", 0, pool,
            "TIMEOUT", self.timeout_ms,
            "DIALECT", 2,
        ))  # fmt: skip

    def filter_command(self, leaves: Sequence[Any], limit: int, fields: Sequence[str] = ()) -> Call:
        """A filter-only FT.SEARCH: the count of every match plus up to ``limit`` rows of ``fields``."""
        query = render_query(leaves, max_leaves=self.engine.max_leaves)
        returned: tuple[str | int, ...] = ("RETURN", len(fields), *fields) if fields else ()
        return Call((
            "FT.SEARCH", self.spec.name, query, *returned,
            "LIMIT", 0, limit, "TIMEOUT", self.timeout_ms, "DIALECT", 2,
        ))  # fmt: skip

    def groups(self, ids: Sequence[str]) -> list[list[str]]:
        """Ids per script call: one call per scope (hash slot) on a cluster, one in all otherwise."""
        if not self.cluster:
            return [list(ids)] if ids else []
        by_tag: dict[str, list[str]] = {}
        for memory_id in ids:
            by_tag.setdefault(memory_id[:16], []).append(memory_id)
        return list(by_tag.values())


def refused(command: Command, reply: BaseException) -> AgentMemError:
    """The typed error of a reply that is a server error, chained to it (``__cause__``).

    The server names no key when an ACL refuses one ("No permissions to access a key"), but this is where
    a reply meets the command that produced it: the error names that command and its keys, so the grant
    that is missing can be read off it (shared by the sync and async executors, which only send).
    """
    error = translate_backend_error(reply)
    if error is not reply:
        if isinstance(error, BackendAuthError) and "No permissions to access a key" in str(reply):
            what, keys = _named(command)
            error = BackendAuthError(f"{error}: {what} on keys {', '.join(keys) or '(none)'}")
        error.__cause__ = reply  # as ``raise error from reply`` would, though it is returned in place
    return error


def _named(command: Command) -> tuple[str, list[str]]:
    """The command's name and the keys it declares (for a plain command: its first argument)."""
    if isinstance(command, ScriptCall):
        return f"EVALSHA {command.script.name}", list(command.keys)
    # only the name and the first argument are read: later ones may be binary (a query vector)
    name, *first = (as_text(a) if isinstance(a, bytes) else str(a) for a in command.args[:2])
    return name.upper(), first


Translate = Callable[[ValkeyOps, Any], list[Command]]
Parse = Callable[[ValkeyOps, Any, Sequence[Command], Sequence[Any]], Any]


def _knn(v: ValkeyOps, op: ops.Knn) -> list[Command]:
    return [v.knn_command(op.leaves, op.vector, op.pool, op.fields, op.batches)]


def _knn_result(v: ValkeyOps, op: ops.Knn, _c: Sequence[Command], replies: Sequence[Any]) -> ops.KnnResult:
    (reply,) = replies
    return ops.KnnResult(parse_search(reply, v.prefix_len), returned_rows(reply))


def _filter(v: ValkeyOps, op: ops.FilterSearch) -> list[Command]:
    return [v.filter_command(op.leaves, op.limit, op.fields)]


def _filter_result(
    v: ValkeyOps, op: ops.FilterSearch, _c: Sequence[Command], replies: Sequence[Any]
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    total, rows = parse_filter_search(replies[0])
    id_of = v.keys.id_from_memory_key
    return total, [(id_of(key), fields) for key, fields in rows]


# -- memories ----------------------------------------------------------------------------------------------
def _write_args(op: ops.Write, shared: Mapping[str, str] | None = None) -> tuple[Any, ...]:
    """WRITE's ARGV for one memory; with ``shared`` (WRITE_MANY's), only the field pairs not in it."""
    if shared is None:
        created = op.fields[F.CREATED_AT]
        flat: list[str | bytes] = [F.CREATED_AT, created, F.X_CREATED_AT, created]  # first: the script may
        for name, value in op.fields.items():  # keep the replaced memory's time in their place
            if name not in (F.CREATED_AT, F.X_CREATED_AT):
                flat += [name, value]
    else:
        flat = [x for name, value in op.fields.items() if name not in shared for x in (name, value)]
    if op.vectors:  # a memory without a vector stays out of KNN (and valkey-search 1.0 queries)
        flat += [F.EMBEDDING, op.vectors[0]]
    return (
        op.now,
        op.id,
        op.created_at,
        op.ttl_ms,
        op.expires_at,
        op.kind,
        op.importance,
        op.opt_rest,
        max(0, len(op.vectors) - 1),  # the vectors after the first become child documents
        b"".join(op.vectors[1:]),
        *flat,
    )  # fmt: skip


def _write(v: ValkeyOps, op: ops.Write) -> list[Command]:
    keys = v.keys
    names = (keys.memory(op.id), keys.stats(op.id), *keys.bookkeeping(op.tag))
    return [ScriptCall(WRITE, names, _write_args(op))]


def _write_result(
    v: ValkeyOps, op: ops.Write, _c: Sequence[Command], replies: Sequence[Any]
) -> ops.WriteResult:
    return _write_reply(replies[0])


def _write_reply(reply: Sequence[Any]) -> ops.WriteResult:
    """One memory's reply of WRITE (or of WRITE_MANY, per memory): ``{is_new, scope size}``."""
    is_new, size = reply
    return ops.WriteResult(int(is_new) == 1, int(size))


def _write_many(v: ValkeyOps, op: ops.WriteMany) -> list[Command]:
    keys = v.keys
    first, rest = op.writes[0].fields, op.writes[1:]
    # the field pairs every memory of the call has (a chat session's scope, times, status...): sent once
    common = set(first.items())
    for w in rest:
        common &= w.fields.items()  # set operations in C: the field pairs are text
        if not common:
            break
    shared = {k: value for k, value in first.items() if (k, value) in common}
    names: list[str] = list(keys.bookkeeping(op.writes[0].tag))
    args: list[Any] = [2 * len(shared), *(x for pair in shared.items() for x in pair)]
    for w in op.writes:
        names += (keys.memory(w.id), keys.stats(w.id))
        one = _write_args(w, shared)
        args += (len(one), *one)
    return [ScriptCall(WRITE_MANY, tuple(names), tuple(args))]


def _write_many_result(
    v: ValkeyOps, op: ops.WriteMany, _c: Sequence[Command], replies: Sequence[Any]
) -> tuple[ops.WriteResult, ...]:
    return tuple(_write_reply(reply) for reply in replies[0])


def _merge(v: ValkeyOps, op: ops.Merge) -> list[Command]:
    flat = [x for pair in op.tags for x in pair]
    return [ScriptCall(DUPLICATE, (v.keys.memory(op.id), v.keys.stats(op.id)), (op.now, len(op.tags), *flat))]


def _int_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> int:
    return int(replies[0])


def _update(v: ValkeyOps, op: ops.Update) -> list[Command]:
    flat: list[str | bytes] = [x for name, value in op.set_fields.items() for x in (name, value)]
    if op.vector is not None:
        flat += [F.EMBEDDING, op.vector]
    return [
        ScriptCall(
            UPDATE,
            (v.keys.memory(op.id), v.keys.stats(op.id), *v.keys.bookkeeping(op.id[:16])),
            (
                op.now,
                op.id,
                op.kind,
                op.importance,
                "" if op.ttl_ms is None else op.ttl_ms,
                op.expires_at,
                op.ttl_seconds,
                "" if op.fact_tokens is None else "=" + "|".join(op.fact_tokens),
                len(flat) // 2,
                *flat,
                *op.removed,
            ),
        )  # fmt: skip
    ]


def _update_result(v: ValkeyOps, op: ops.Update, _c: Sequence[Command], replies: Sequence[Any]) -> bool:
    return int(replies[0]) >= 0


def _delete(v: ValkeyOps, op: ops.Delete) -> list[Command]:
    keys = v.keys
    script_keys = list(keys.bookkeeping(op.tag))
    for memory_id in op.ids:
        script_keys += [keys.memory(memory_id), keys.stats(memory_id)]
    return [ScriptCall(DELETE, tuple(script_keys), (op.now, op.keep, op.limit, *op.ids))]


def _delete_result(
    v: ValkeyOps, op: ops.Delete, _c: Sequence[Command], replies: Sequence[Any]
) -> ops.Deleted:
    reply = replies[0]
    external = [as_text(e) for e in reply[2]] if len(reply) > 2 and reply[2] else []
    return ops.Deleted(int(reply[0]), [as_text(i) for i in reply[1]], external)


def _fetch(v: ValkeyOps, op: ops.Fetch) -> list[Command]:
    args = ("1" if op.reinforce else "0", op.now, *op.fields)
    calls: list[Command] = []
    for group in v.groups(op.ids):
        keys: list[str] = []
        for memory_id in group:
            keys += [v.keys.memory(memory_id), v.keys.stats(memory_id)]
        calls.append(ScriptCall(FETCH, tuple(keys), args))
    return calls


def _fetch_result(
    v: ValkeyOps, op: ops.Fetch, commands: Sequence[Command], replies: Sequence[Any]
) -> ops.Fetched:
    out: ops.Fetched = {}
    for call, reply in zip(commands, replies):
        assert isinstance(call, ScriptCall)
        for key, value in zip(call.keys[::2], reply):
            if isinstance(value, (list, tuple)):
                out[v.keys.id_from_memory_key(key)] = ([value[0], value[1], value[2]], list(value[3] or ()))
    return out


def _refresh(v: ValkeyOps, op: ops.Refresh) -> list[Command]:
    groups: dict[str, tuple[list[str], list[str | int]]] = {}
    for memory_id, kind, expires, ms in op.entries:
        keys, args = groups.setdefault(memory_id[:16], ([], []))
        keys += [v.keys.memory(memory_id), v.keys.stats(memory_id)]
        args += [memory_id, kind, expires, ms]
    return [
        ScriptCall(REFRESH, (v.keys.expiring(tag), v.keys.expiring_terms(tag), *keys), tuple(args))
        for tag, (keys, args) in groups.items()
    ]


def _sum_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> int:
    return sum(int(r) for r in replies)


_SCRIPTED_READ = 3
"""From this many memories on, a read is one READ script call per slot instead of HMGETs per hash."""


def _read(v: ValkeyOps, op: ops.ReadMemories) -> list[Command]:
    if len(op.ids) >= _SCRIPTED_READ and op.fields:
        args = ("1" if op.counters else "0", len(STATS_FIELDS), *STATS_FIELDS, *op.fields)
        calls: list[Command] = []
        for group in v.groups(op.ids):
            keys: list[str] = []
            for memory_id in group:
                keys.append(v.keys.memory(memory_id))
                if op.counters:
                    keys.append(v.keys.stats(memory_id))
            calls.append(ScriptCall(READ, tuple(keys), args))
        return calls
    commands: list[Command] = []
    for memory_id in op.ids:
        commands.append(Call(("HMGET", v.keys.memory(memory_id), *op.fields)))
        if op.counters:
            commands.append(Call(("HMGET", v.keys.stats(memory_id), *STATS_FIELDS)))
    return commands


def _read_result(
    v: ValkeyOps, op: ops.ReadMemories, commands: Sequence[Command], replies: Sequence[Any]
) -> list[tuple[list[Any] | None, list[Any] | None]]:
    if commands and isinstance(commands[0], ScriptCall):  # READ: per memory {values, counters}
        step = 2 if op.counters else 1
        by_id: dict[str, tuple[Any, Any]] = {}
        for call, reply in zip(commands, replies):
            assert isinstance(call, ScriptCall)
            for key, (values, counters) in zip(call.keys[::step], reply):
                by_id[v.keys.id_from_memory_key(key)] = (values, counters)
        pairs_ = [by_id[memory_id] for memory_id in op.ids]
    else:
        step = 2 if op.counters else 1
        pairs_ = [
            (replies[step * n], replies[step * n + 1] if op.counters else None) for n in range(len(op.ids))
        ]
    return [(_found(values), list(counters) if op.counters else None) for values, counters in pairs_]


def _found(values: Any) -> list[Any] | None:
    """A hash's HMGET values, or ``None`` when it does not exist (every value nil)."""
    if values is None or values.count(None) == len(values):
        return None
    return list(values)


def _read_counters(v: ValkeyOps, op: ops.ReadCounters) -> list[Command]:
    return [Call(("HGETALL", v.keys.stats(op.id)))]


def _pairs_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> dict[str, str]:
    return {name: as_text(value) for name, value in pairs(replies[0]).items()}


def _write_counters(v: ValkeyOps, op: ops.WriteCounters) -> list[Command]:
    flat = [x for name, value in op.values.items() for x in (name, value)]
    return [Call(("HSET", v.keys.stats(op.id), *flat))]


def _none_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> None:
    return None


def _exists(v: ValkeyOps, op: ops.Exists) -> list[Command]:
    return [Call(("EXISTS", v.keys.memory(op.id)))]


def _bool_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> bool:
    return bool(int(replies[0]))


# -- caller ids --------------------------------------------------------------------------------------------
def _resolve(v: ValkeyOps, op: ops.ResolveIds) -> list[Command]:
    return [Call(("HMGET", v.keys.aliases, *op.ids))]


def _texts_or_none(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> list[str | None]:
    return [None if x is None else as_text(x) for x in replies[0]]


def _claim(v: ValkeyOps, op: ops.ClaimId) -> list[Command]:
    return [ScriptCall(ALIAS_CLAIM, (v.keys.aliases,), (op.id, op.tag, op.stale))]


def _text_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> str:
    return as_text(replies[0]) if replies[0] is not None else ""


def _release(v: ValkeyOps, op: ops.ReleaseIds) -> list[Command]:
    return [ScriptCall(ALIAS_RELEASE, (v.keys.aliases,), (op.tag, *op.ids))]


# -- scopes ------------------------------------------------------------------------------------------------
def _scope_counts(v: ValkeyOps, op: ops.ScopeCounts) -> list[Command]:
    return [ScriptCall(SCOPE_STATS, v.keys.bookkeeping(op.tag), (op.now,))]


def _scope_counts_result(
    v: ValkeyOps, op: ops.ScopeCounts, _c: Sequence[Command], replies: Sequence[Any]
) -> tuple[int, dict[str, int]]:
    count, raw = replies[0]
    # the count hash also holds the scope's write sequence ("#seq"), which is not a kind
    kinds = {k: int(as_text(x)) for k, x in pairs(raw).items() if not k.startswith("#")}
    return int(count), kinds


STATS_EXPIRED = 200
"""Expired memories a scope's term counts subtract in :class:`ops.TermStats` (more: ``None``, count them)."""


def _term_stats(v: ValkeyOps, op: ops.TermStats) -> list[Command]:
    groups = [[tag] for tag in op.tags] if v.cluster else [list(op.tags)]  # a cluster: one slot per call
    args: tuple[str | int, ...] = (format_number(op.now), STATS_EXPIRED, *op.terms)
    store = v.keys.store
    return [ScriptCall(TERM_STATS, _stats_keys(store, tuple(tags)), args) for tags in groups if tags]


@lru_cache(maxsize=1024)
def _stats_keys(store: str, tags: tuple[str, ...]) -> tuple[str, ...]:
    # the keys of one call, made once per set of scopes (a user's recalls name the same ones each time)
    return tuple(k for tag in tags for k in _term_keys(store, tag))


@lru_cache(maxsize=8192)
def _term_keys(store: str, tag: str) -> tuple[str, str, str, str]:
    # the four keys of a scope's term counts, made once per scope (a recall may name 128 scopes)
    keys = Keys(store)
    return (keys.created(tag), keys.expiring(tag), keys.terms(tag), keys.expiring_terms(tag))


def _term_stats_result(
    v: ValkeyOps, op: ops.TermStats, _c: Sequence[Command], replies: Sequence[Any]
) -> tuple[int, list[int]] | None:
    total, df = 0, [0] * len(op.terms)
    for row in replies:  # one summed row per script call
        if int(row[0]) != 1:
            return None
        total += int(row[1])
        df = [a + int(b) for a, b in zip(df, row[2:])]
    return total, df


def _scope_size(v: ValkeyOps, op: ops.ScopeSize) -> list[Command]:
    return [Call(("ZCARD", v.keys.created(op.tag)))]


def _scope_members(v: ValkeyOps, op: ops.ScopeMembers) -> list[Command]:
    return [Call(("ZRANGE", v.keys.created(op.tag), op.start, op.stop))]


def _ids_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> list[str]:
    return [as_text(m) for m in replies[0]]


def _time_bound(newest: bool, bound: float | None) -> str:
    """The ZSET score a by-time read starts from (inclusive; the end when ``bound`` is ``None``)."""
    if bound is None:
        return "+inf" if newest else "-inf"
    return repr(float(bound))


def _by_time(v: ValkeyOps, op: ops.ScopeByTime) -> list[Command]:
    start = _time_bound(op.newest, op.bound)
    if op.newest:
        args = ("ZREVRANGEBYSCORE", v.keys.created(op.tag), start, "-inf")
    else:
        args = ("ZRANGEBYSCORE", v.keys.created(op.tag), start, "+inf")
    return [Call((*args, "WITHSCORES", "LIMIT", 0, op.limit))]


def _scored(flat: Sequence[Any]) -> list[tuple[str, float]]:
    return [(as_text(flat[n]), float(as_text(flat[n + 1]))) for n in range(0, len(flat), 2)]


def _scored_result(
    v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]
) -> list[tuple[str, float]]:
    return _scored(replies[0])


def _page(v: ValkeyOps, op: ops.ScopePage) -> list[Command]:
    args = (
        "1" if op.newest else "0", _time_bound(op.newest, op.bound), op.limit, op.tag,
        v.keys.memory_of_scope(op.tag), v.keys.stats_of_scope(op.tag),
        "1" if op.counters else "0", len(STATS_FIELDS), *STATS_FIELDS, *op.fields,
    )  # fmt: skip
    return [ScriptCall(PAGE, (v.keys.created(op.tag),), args)]


def _page_result(
    v: ValkeyOps, op: ops.ScopePage, _c: Sequence[Command], replies: Sequence[Any]
) -> list[tuple[str, float, list[Any] | None, list[Any] | None]]:
    out: list[tuple[str, float, list[Any] | None, list[Any] | None]] = []
    for memory_id, created, values, counters in replies[0]:
        held = list(counters) if op.counters else None
        out.append((as_text(memory_id), float(created), _found(values), held))  # float() reads bytes
    return out


def _eviction(v: ValkeyOps, op: ops.EvictionSample) -> list[Command]:
    created, importance = v.keys.created(op.tag), v.keys.by_importance(op.tag)
    return [
        Call(("ZCARD", created)),
        Call(("ZCARD", importance)),
        Call(("ZRANGE", created, 0, op.n - 1, "WITHSCORES")),
        Call(("ZRANGE", importance, 0, op.n - 1, "WITHSCORES")),
    ]


def _eviction_result(
    v: ValkeyOps, op: ops.EvictionSample, _c: Sequence[Command], replies: Sequence[Any]
) -> tuple[int, int, list[tuple[str, float]], list[tuple[str, float]]]:
    return int(replies[0]), int(replies[1]), _scored(replies[2]), _scored(replies[3])


# -- the registry and the scope index ------------------------------------------------------------------------
def _register(v: ValkeyOps, op: ops.Register) -> list[Command]:
    descriptor = json.dumps(op.scope.descriptor(), sort_keys=True, ensure_ascii=False)
    members: list[str | bytes | int] = []
    for member in op.members:
        members += [0, member]
    commands: list[Command] = [Call(("HSET", v.keys.scopes, op.scope.tag, descriptor))]
    if members:
        commands.append(Call(("ZADD", v.keys.scope_index, *members)))
    return commands


def _unregister(v: ValkeyOps, op: ops.Unregister) -> list[Command]:
    commands: list[Command] = [Call(("HDEL", v.keys.scopes, op.scope.tag))]
    if op.members:
        commands.append(Call(("ZREM", v.keys.scope_index, *op.members)))
    return commands


def _all_scopes(v: ValkeyOps, op: ops.AllScopes) -> list[Command]:
    return [Call(("HGETALL", v.keys.scopes))]


def _descriptors_result(
    v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]
) -> dict[str, Any]:
    return {tag: json.loads(as_text(d)) for tag, d in pairs(replies[0]).items()}


def _scope_descriptors(v: ValkeyOps, op: ops.ScopeDescriptors) -> list[Command]:
    return [Call(("HMGET", v.keys.scopes, *op.tags))]


def _scope_descriptors_result(
    v: ValkeyOps, op: ops.ScopeDescriptors, _c: Sequence[Command], replies: Sequence[Any]
) -> list[dict[str, Any] | None]:
    return [None if d is None else json.loads(as_text(d)) for d in replies[0]]


def _index_range(v: ValkeyOps, op: ops.ScopeIndexRange) -> list[Command]:
    limit: tuple[str | int, ...] = () if op.limit is None else ("LIMIT", 0, op.limit)
    return [Call(("ZRANGEBYLEX", v.keys.scope_index, op.start, op.end, *limit))]


def _bytes_result(v: ValkeyOps, op: Any, _c: Sequence[Command], replies: Sequence[Any]) -> list[bytes]:
    return [m if isinstance(m, bytes) else str(m).encode() for m in replies[0]]


def _drop_members(v: ValkeyOps, op: ops.DropScopeIndexMembers) -> list[Command]:
    return [Call(("ZREM", v.keys.scope_index, *op.members))]


# -- live config ---------------------------------------------------------------------------------------------
def _read_config(v: ValkeyOps, op: ops.ReadConfig) -> list[Command]:
    return [Call(("HGETALL", v.keys.config))]


def _write_config(v: ValkeyOps, op: ops.WriteConfig) -> list[Command]:
    flat = [x for name, value in op.values.items() for x in (name, value)]
    return [Call(("HSET", v.keys.config, *flat))] if flat else []


# -- health ------------------------------------------------------------------------------------------------
def _probe(v: ValkeyOps, op: ops.Probe) -> list[Command]:
    # FT.INFO: a round trip that needs no key permission and says whether the index is serving
    return [Call(("FT.INFO", v.spec.name))]


def _probe_result(v: ValkeyOps, op: ops.Probe, _c: Sequence[Command], replies: Sequence[Any]) -> ops.Probed:
    return ops.Probed(*index_health(replies[0]))


# -- leases (_lease_scripts.py) ------------------------------------------------------------------------------
def _lease_key(v: ValkeyOps, name: str) -> str:
    # one plain key per lease, outside every scope's hash tag (a lease may outlive or span scopes)
    return f"{v.keys.prefix}lease:{name}"


def _acquire_lease(v: ValkeyOps, op: ops.AcquireLease) -> list[Command]:
    return [ScriptCall(LEASE_ACQUIRE, (_lease_key(v, op.name),), (op.holder, op.ttl_ms))]


def _release_lease(v: ValkeyOps, op: ops.ReleaseLease) -> list[Command]:
    return [ScriptCall(LEASE_RELEASE, (_lease_key(v, op.name),), (op.holder,))]


# -- the audit trail (agentmem_core.audit) -------------------------------------------------------------------
def _audit_key(v: ValkeyOps) -> str:
    # one stream per store, outside every scope's hash tag: entries span scopes, and on a cluster its XADD
    # and XREVRANGE are plain commands the cluster pipeline routes to the stream's own slot
    return f"{v.keys.prefix}audit"


def _audit_append(v: ValkeyOps, op: ops.AuditAppend) -> list[Command]:
    key = _audit_key(v)
    commands: list[Command] = []
    for entry in op.entries:
        flat = [x for name, value in entry.items() for x in (name, value)]
        # "~": the server trims whole macro nodes only (cheap), so it keeps at least cap, a little more
        commands.append(Call(("XADD", key, "MAXLEN", "~", op.cap, "*", *flat)))
    return commands


def _audit_append_result(
    v: ValkeyOps, op: ops.AuditAppend, _c: Sequence[Command], replies: Sequence[Any]
) -> list[str]:
    return [as_text(position) for position in replies]


def _audit_range(v: ValkeyOps, op: ops.AuditRange) -> list[Command]:
    end = "+" if op.before is None else f"({op.before}"  # "(": exclusive, so pages never overlap
    return [Call(("XREVRANGE", _audit_key(v), end, "-", "COUNT", op.count))]


def _audit_range_result(
    v: ValkeyOps, op: ops.AuditRange, _c: Sequence[Command], replies: Sequence[Any]
) -> list[tuple[str, dict[str, str]]]:
    return [
        (as_text(position), {as_text(k): as_text(value) for k, value in pairs(fields).items()})
        for position, fields in replies[0]
    ]


_COMMANDS: dict[type, Translate] = {
    ops.Knn: _knn, ops.FilterSearch: _filter, ops.Write: _write, ops.WriteMany: _write_many,
    ops.Merge: _merge, ops.Update: _update,
    ops.Delete: _delete, ops.Fetch: _fetch, ops.Refresh: _refresh, ops.ReadMemories: _read,
    ops.ReadCounters: _read_counters, ops.WriteCounters: _write_counters, ops.Exists: _exists,
    ops.ResolveIds: _resolve, ops.ClaimId: _claim, ops.ReleaseIds: _release, ops.ScopeCounts: _scope_counts,
    ops.TermStats: _term_stats,
    ops.ScopeSize: _scope_size, ops.ScopeMembers: _scope_members, ops.ScopeByTime: _by_time,
    ops.ScopePage: _page, ops.EvictionSample: _eviction, ops.Register: _register, ops.Unregister: _unregister,
    ops.AllScopes: _all_scopes, ops.ScopeDescriptors: _scope_descriptors, ops.ScopeIndexRange: _index_range,
    ops.DropScopeIndexMembers: _drop_members, ops.ReadConfig: _read_config, ops.WriteConfig: _write_config,
    ops.AcquireLease: _acquire_lease, ops.ReleaseLease: _release_lease,
    ops.AuditAppend: _audit_append, ops.AuditRange: _audit_range, ops.Probe: _probe,
}  # fmt: skip
_RESULTS: dict[type, Parse] = {
    ops.Knn: _knn_result, ops.FilterSearch: _filter_result, ops.Write: _write_result,
    ops.WriteMany: _write_many_result, ops.Merge: _int_result,
    ops.Update: _update_result, ops.Delete: _delete_result, ops.Fetch: _fetch_result,
    ops.Refresh: _sum_result,
    ops.ReadMemories: _read_result, ops.ReadCounters: _pairs_result, ops.WriteCounters: _none_result,
    ops.Exists: _bool_result, ops.ResolveIds: _texts_or_none, ops.ClaimId: _text_result,
    ops.ReleaseIds: _int_result, ops.ScopeCounts: _scope_counts_result, ops.TermStats: _term_stats_result,
    ops.ScopeSize: _int_result,
    ops.ScopeMembers: _ids_result, ops.ScopeByTime: _scored_result, ops.ScopePage: _page_result,
    ops.EvictionSample: _eviction_result, ops.Register: _none_result, ops.Unregister: _none_result,
    ops.AllScopes: _descriptors_result,
    ops.ScopeDescriptors: _scope_descriptors_result, ops.ScopeIndexRange: _bytes_result,
    ops.DropScopeIndexMembers: _int_result, ops.ReadConfig: _pairs_result, ops.WriteConfig: _none_result,
    ops.AcquireLease: _bool_result, ops.ReleaseLease: _bool_result,
    ops.AuditAppend: _audit_append_result, ops.AuditRange: _audit_range_result, ops.Probe: _probe_result,
}  # fmt: skip
