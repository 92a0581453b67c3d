"""Each storage operation on SQLite, mirroring its Valkey translation (``backends/valkey.py``) and Lua.

Searches, reads and scope reads are here, with the handler table of every operation; the memory writes
are in :mod:`._writes`, the registry, scope index, caller ids and live config in :mod:`._registry`.

Results have the shapes and types the Valkey translation gives (``decode_responses=False``): stored
field values and counters as ``bytes`` (``None`` where missing), ids and caller ids as ``str``. The
step-by-step comments name the Lua they follow (``_scripts.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from agentmem_core import ops
from agentmem_core._conditions import NumRange, TagIn
from agentmem_core._encoding import parse_id
from agentmem_core.errors import BackendError
from agentmem_core.schema import STATS_FIELDS, F

from ._audit import audit_append, audit_range
from ._filters import CHILD_SKIP, memory_mask, row_mask
from ._leases import acquire_lease, release_lease
from ._registry import (
    all_scopes,
    claim,
    drop_members,
    index_range,
    read_config,
    register,
    release,
    resolve,
    scope_descriptors,
    unregister,
    write_config,
)
from ._tx import Tx, parse_integer, parse_score, text, wrong_args
from ._vectors import nearest
from ._writes import delete, merge, update, write, write_many

__all__ = ["HANDLERS", "READ_ONLY"]

_BLOB_FIELDS = (F.EMBEDDING, F.VX)
_CHUNK = 500


def _enc(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _field_values(tx: Tx, memory_id: str, fields: dict[str, str], names: tuple[str, ...]) -> list[Any]:
    blobs = tx.vector_fields(memory_id) if any(n in _BLOB_FIELDS for n in names) else {}
    return [blobs.get(n) if n in _BLOB_FIELDS else _enc(fields.get(n)) for n in names]


# -- search ----------------------------------------------------------------------------------------------
def _knn(tx: Tx, op: ops.Knn) -> ops.KnnResult:
    query = np.frombuffer(op.vector, dtype="<f4").astype(np.float32)
    if query.size != tx.meta.dims:
        raise BackendError(
            f"query vector blob size ({len(op.vector)}) does not match the index's expected size "
            f"({4 * tx.meta.dims})"
        )
    cache = tx.fresh_cache()
    if op.leaves:  # evaluated in memory on the cache's postings, inside the search (no post-filter)
        mask: Any = row_mask(op.leaves, tx.postings())
    else:  # every vector document
        mask = None if cache.n_dead == 0 else cache.live()
    found, held = _nearest_alive(tx, query, mask, op.pool)
    best: dict[str, tuple[float, int]] = {}
    for distance, memory_id, n in found:  # one row per memory, at its closest vector document
        if memory_id not in best:
            best[memory_id] = (distance, n)
    out: list[ops.SearchRow] = []
    for memory_id, (distance, n) in best.items():
        fields = held.get(memory_id, {})
        values = _field_values(tx, memory_id, fields, op.fields)
        row: dict[str, Any] = {}
        for name, value in zip(op.fields, values):
            if n > 0 and name in CHILD_SKIP:
                if name == F.EMBEDDING:
                    value = tx.vector(memory_id, n)
                else:
                    continue
            if value is not None:
                row[name] = value
        out.append(ops.SearchRow(memory_id, distance, row))
    out.sort(key=lambda r: (r.distance, r.id))
    return ops.KnnResult(out, len(found))


def _nearest_alive(
    tx: Tx, query: Any, mask: Any, pool: int
) -> tuple[list[tuple[float, str, int]], dict[str, dict[str, str]]]:
    """Nearest documents among the masked rows, leaving out memories past their real-time deadline.

    Also the fields of the memories found (one query reads them and their deadlines).
    """
    cache = tx.cache
    while True:
        found = nearest(cache, query, mask, pool)
        ids = list(dict.fromkeys(memory_id for _, memory_id, _ in found))
        if not ids:
            return found, {}
        marks = ", ".join("?" * len(ids))
        statement = f"SELECT id, fields, deadline FROM {{mem}} WHERE id IN ({marks})"
        held = {r[0]: r[1] for r in tx.q(statement, ids) if tx.alive(r[2])}
        if len(held) == len(ids):
            return found, {memory_id: json.loads(raw) for memory_id, raw in held.items()}
        if mask is None:
            mask = cache.live()
        else:
            mask = mask.copy()
        for memory_id in set(ids) - held.keys():  # gone (or past its deadline): not a match
            rows = [cache.first[memory_id]] if memory_id in cache.first else []
            rows.extend(cache.extra.get(memory_id, ()))
            mask[rows] = False


def _filter(tx: Tx, op: ops.FilterSearch) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    cache = tx.fresh_cache()  # evaluated in memory on the cache's postings (and every memory's deadline)
    mask = memory_mask(op.leaves, tx.postings()) & tx.alive_slots()
    total = int(np.count_nonzero(mask))
    rows: list[tuple[str, dict[str, Any]]] = []
    if op.limit <= 0 or total == 0:
        return total, rows
    ids = cache.first_ids(np.flatnonzero(mask), op.limit)  # by id, as before (Valkey's order is its own)
    held: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):  # bound the statement's parameters
        part = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(part))
        held.update(tx.q(f"SELECT id, fields FROM {{mem}} WHERE id IN ({marks})", part).fetchall())
    for memory_id in ids:
        raw = held[memory_id]
        fields: dict[str, str] = json.loads(raw)
        if op.fields:
            values = _field_values(tx, memory_id, fields, op.fields)
            row = {name: value for name, value in zip(op.fields, values) if value is not None}
        else:  # no RETURN: the whole hash, its vectors included
            row = {name: value.encode("utf-8") for name, value in fields.items()}
            row.update(tx.vector_fields(memory_id))
        if row:  # a document without any asked field comes back empty, and the parser skips it
            rows.append((memory_id, row))
    return total, rows


# -- reads -------------------------------------------------------------------------------------------------
def _fetch(tx: Tx, op: ops.Fetch) -> ops.Fetched:
    out: ops.Fetched = {}
    for memory_id in op.ids:
        parse_id(memory_id)
        held = tx.memory(memory_id)
        if held is None:
            continue
        fields, deadline = held
        counters = tx.counters(memory_id)
        data, own = counters if counters is not None else ({}, None)
        before: list[Any] = [_enc(data.get(name)) for name in STATS_FIELDS]
        if op.reinforce:
            data[F.ACCESS_COUNT] = str(parse_integer(data.get(F.ACCESS_COUNT)) + 1)
            data[F.LAST_ACCESSED_AT] = op.now
            tx.save_counters(memory_id, data, deadline if deadline is not None else own)
        out[memory_id] = (before, _field_values(tx, memory_id, fields, op.fields))
    return out


def _refresh(tx: Tx, op: ops.Refresh) -> int:
    refreshed = 0
    for memory_id, kind, expires, ms in op.entries:
        parse_id(memory_id)
        held = tx.memory(memory_id)
        if held is None:
            continue
        fields = held[0]
        before = dict(fields)
        fields[F.EXPIRES_AT] = fields[F.X_EXPIRES_AT] = text(expires)
        deadline = tx.now_ms + int(ms)
        tx.save(memory_id, fields, deadline)
        tx.index(memory_id, fields, (F.X_EXPIRES_AT,), old=before)
        tx.expire_counters(memory_id, deadline)
        tx.zadd("x", memory_id[:16], f"{kind}|{memory_id}", parse_score(expires))
        refreshed += 1
    return refreshed


def _read(tx: Tx, op: ops.ReadMemories) -> list[tuple[list[Any] | None, list[Any] | None]]:
    if not op.fields:
        raise wrong_args("hmget")
    out: list[tuple[list[Any] | None, list[Any] | None]] = []
    for memory_id in op.ids:
        parse_id(memory_id)
        held = tx.memory(memory_id)
        values = None if held is None else _field_values(tx, memory_id, held[0], op.fields)
        found = None if values is None or all(v is None for v in values) else values
        counters: list[Any] | None = None
        if op.counters:
            stats = tx.counters(memory_id)
            data = stats[0] if stats is not None else {}
            counters = [_enc(data.get(name)) for name in STATS_FIELDS]
        out.append((found, counters))
    return out


def _read_counters(tx: Tx, op: ops.ReadCounters) -> dict[str, str]:
    parse_id(op.id)
    counters = tx.counters(op.id)
    return dict(counters[0]) if counters is not None else {}


def _write_counters(tx: Tx, op: ops.WriteCounters) -> None:
    parse_id(op.id)
    if not op.values:
        raise wrong_args("hset")
    counters = tx.counters(op.id)
    data, deadline = counters if counters is not None else ({}, None)
    data.update({name: text(value) for name, value in op.values.items()})
    tx.save_counters(op.id, data, deadline)


def _exists(tx: Tx, op: ops.Exists) -> bool:
    parse_id(op.id)
    return tx.memory(op.id) is not None


# -- scopes ------------------------------------------------------------------------------------------------
def _scope_counts(tx: Tx, op: ops.ScopeCounts) -> tuple[int, dict[str, int]]:
    tx.purge(op.tag, op.now)
    kinds = {
        str(name): int(n)
        for name, n in tx.q("SELECT name, n FROM {counts} WHERE tag = ?", (op.tag,))
        if not str(name).startswith("#")
    }
    return tx.zcard("z", op.tag), kinds


def _term_stats(tx: Tx, op: ops.TermStats) -> tuple[int, list[int]]:
    # counted from the postings, as FilterSearch counts (they are in memory): always able to tell
    live = (NumRange(F.X_EXPIRES_AT, lo=op.now, lo_exclusive=True), *op.leaves)
    total, _ = _filter(tx, ops.FilterSearch(live, 0))
    df = [_filter(tx, ops.FilterSearch((*live, TagIn(F.X_TERMS, (t,))), 0))[0] for t in op.terms]
    return total, df


def _scope_size(tx: Tx, op: ops.ScopeSize) -> int:
    return tx.zcard("z", op.tag)


def _scope_members(tx: Tx, op: ops.ScopeMembers) -> list[str]:
    return [member for member, _ in tx.zrange("z", op.tag, op.start, op.stop)]


def _by_time(tx: Tx, op: ops.ScopeByTime) -> list[tuple[str, float]]:
    limit = -1 if op.limit < 0 else op.limit
    if op.newest:
        where, order = ("score <= ?", "score DESC, member DESC")
    else:
        where, order = ("score >= ?", "score, member")
    if op.bound is not None:
        bound = float(op.bound)
    else:
        bound = float("inf") if op.newest else float("-inf")
    rows = tx.q(
        "SELECT member, score FROM {zs} WHERE k = 'z' AND tag = ? AND " + where + " ORDER BY " + order
        + " LIMIT ?", (op.tag, bound, limit),
    )  # fmt: skip
    return [(str(m), float(s)) for m, s in rows]


def _page(tx: Tx, op: ops.ScopePage) -> list[tuple[str, float, list[Any] | None, list[Any] | None]]:
    if not op.fields:
        raise wrong_args("hmget")
    scored = _by_time(tx, ops.ScopeByTime(op.tag, op.newest, op.bound, op.limit))
    reads = _read(tx, ops.ReadMemories(tuple(m for m, _ in scored), op.fields, op.counters))
    return [(m, created, values, counters) for (m, created), (values, counters) in zip(scored, reads)]


def _eviction(
    tx: Tx, op: ops.EvictionSample
) -> tuple[int, int, list[tuple[str, float]], list[tuple[str, float]]]:
    return (
        tx.zcard("z", op.tag), tx.zcard("i", op.tag),
        tx.zrange("z", op.tag, 0, op.n - 1), tx.zrange("i", op.tag, 0, op.n - 1),
    )  # fmt: skip


# -- health --------------------------------------------------------------------------------------------------
def _probe(tx: Tx, op: ops.Probe) -> ops.Probed:
    # the index is the tables themselves: always ready, nothing it could not take
    (documents,) = tx.q("SELECT count(*) FROM {mem}").fetchone()
    return ops.Probed(ready=True, documents=int(documents), failures=0)


HANDLERS: dict[type, Callable[[Tx, Any], Any]] = {
    ops.Knn: _knn, ops.FilterSearch: _filter, ops.Write: write, ops.WriteMany: write_many,
    ops.Merge: merge, ops.Update: update,
    ops.Delete: delete, ops.Fetch: _fetch, ops.Refresh: _refresh, ops.ReadMemories: _read,
    ops.ReadCounters: _read_counters, ops.WriteCounters: _write_counters, ops.Exists: _exists,
    ops.ResolveIds: resolve, ops.ClaimId: claim, ops.ReleaseIds: release, ops.ScopeCounts: _scope_counts,
    ops.TermStats: _term_stats,
    ops.ScopeSize: _scope_size, ops.ScopeMembers: _scope_members, ops.ScopeByTime: _by_time,
    ops.ScopePage: _page, ops.EvictionSample: _eviction, ops.Register: register, ops.Unregister: unregister,
    ops.AllScopes: all_scopes, ops.ScopeDescriptors: scope_descriptors, ops.ScopeIndexRange: index_range,
    ops.DropScopeIndexMembers: drop_members, ops.ReadConfig: read_config, ops.WriteConfig: write_config,
    ops.AcquireLease: acquire_lease, ops.ReleaseLease: release_lease,
    ops.AuditAppend: audit_append, ops.AuditRange: audit_range, ops.Probe: _probe,
}  # fmt: skip
"""The handler of each operation type."""

READ_ONLY = frozenset({
    ops.Knn, ops.FilterSearch, ops.ReadMemories, ops.ReadCounters, ops.Exists, ops.ResolveIds, ops.ScopeSize,
    ops.ScopeMembers, ops.ScopeByTime, ops.ScopePage, ops.EvictionSample, ops.AllScopes, ops.ScopeDescriptors,
    ops.ScopeIndexRange, ops.ReadConfig, ops.TermStats,
    ops.AuditRange, ops.Probe,
})  # fmt: skip
"""Operations that never write (a batch of only these runs in a read transaction; Fetch without reinforce
is one too)."""
