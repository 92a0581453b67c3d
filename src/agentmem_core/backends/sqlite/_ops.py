"""Each storage operation on SQLite, mirroring its Valkey translation (``backends/valkey.py``) and Lua.

Results have the shapes and types the Valkey translation gives (``decode_responses=False``): stored
field values and counters as ``bytes`` (``None`` where missing), ids and caller ids as ``str``. The
step-by-step comments name the Lua they follow (``_scripts.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from agentmem_core import ops
from agentmem_core._conditions import NumRange, TagIn
from agentmem_core._encoding import parse_id
from agentmem_core.errors import BackendError
from agentmem_core.facts import FACT_TOKEN_PREFIX
from agentmem_core.schema import STATS_FIELDS, F

from ._audit import audit_append, audit_range
from ._filters import CHILD_SKIP, memory_mask, row_mask
from ._leases import acquire_lease, release_lease
from ._tx import Tx, parse_integer, parse_score, text, wrong_args
from ._vectors import nearest

__all__ = ["HANDLERS", "READ_ONLY"]

_SEQ = re.compile(r"(\d+)\|")
_OPT_TTL = re.compile(r"([^|]*)\|[^|]*\|(.*)", re.DOTALL)
_CALLER = re.compile(r"[^|]*\|[^|]*\|[^|]*\|(.+)", re.DOTALL)
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


# -- memories ----------------------------------------------------------------------------------------------
def _write(tx: Tx, op: ops.Write) -> ops.WriteResult:
    parse_id(op.id)
    tag, now = op.tag, op.now
    tx.purge(tag, now)
    old = tx.memory(op.id)
    old_fields = old[0] if old is not None else {}
    old_kind = old_fields.get(F.KIND)
    keep = op.created_at == ""
    created = op.created_at
    if keep:
        kept = old_fields.get(F.CREATED_AT)
        created = kept if kept is not None else now
    # the write sequence: a re-put keeps its place
    seq: str | None = None
    opt = old_fields.get(F.OPT)
    if keep and opt is not None and (match := _SEQ.match(opt)):
        seq = match.group(1)
    if seq is None:
        seq = str(tx.hincrby(tag, "#seq", 1))
    if old is not None:  # the old memory goes, with its fields, index entries and child vectors
        if old_kind is not None:
            if tx.zrem("z", tag, op.id):
                tx.hincrby(tag, old_kind, -1)
            tx.zrem("x", tag, f"{old_kind}|{op.id}")
        tx.destroy(op.id)
    extra = max(0, len(op.vectors) - 1)
    fields: dict[str, str] = {F.OPT: f"{seq}|{op.opt_rest}"}
    if extra:
        fields[F.NV] = str(extra)
    first = created if keep else text(op.fields[F.CREATED_AT])
    fields[F.CREATED_AT] = fields[F.X_CREATED_AT] = first
    for name, value in op.fields.items():
        if name not in (F.CREATED_AT, F.X_CREATED_AT):
            fields[name] = text(value)
    ttl = int(op.ttl_ms)
    deadline = tx.now_ms + ttl if ttl > 0 else None
    tx.save(op.id, fields, deadline)
    tx.index(op.id, fields, old=None)  # the old one (if any) was destroyed above
    for n, blob in enumerate(op.vectors):
        tx.put_vector(op.id, n, blob)
    tx.hincrby(tag, op.kind, 1)
    tx.zadd("z", tag, op.id, parse_score(created))
    tx.zadd("i", tag, op.id, parse_score(op.importance))
    if ttl > 0:
        tx.zadd("x", tag, f"{op.kind}|{op.id}", parse_score(op.expires_at))
    counters = tx.counters(op.id)  # its own hash: dropped for a new memory, else lives as long
    if counters is not None:
        if old_kind is None:
            tx.drop_counters(op.id)
        else:
            tx.save_counters(op.id, counters[0], deadline)
    size = tx.zcard("z", tag) if op.count_up_to is None else tx.zcard_up_to("z", tag, op.count_up_to)
    return ops.WriteResult(old_kind is None, size)


def _write_many(tx: Tx, op: ops.WriteMany) -> tuple[ops.WriteResult, ...]:
    return tuple(_write(tx, w) for w in op.writes)


def _merge(tx: Tx, op: ops.Merge) -> int:
    parse_id(op.id)
    held = tx.memory(op.id)
    if held is None:
        return -1
    fields, deadline = held
    if op.tags:
        tags = fields.get(F.TAGS)
        tags = "[]" if tags is None else tags
        tokens = fields.get(F.X_TAGS) or ""
        have = {t for t in tokens.split("|") if t}
        changed = False
        for json_tag, token in op.tags:
            if token not in have:
                have.add(token)
                changed = True
                tags = f"[{json_tag}]" if tags == "[]" else f"{tags[:-1]},{json_tag}]"
                tokens = token if tokens == "" else f"{tokens}|{token}"
        if changed:
            before = dict(fields)
            fields.update({F.TAGS: tags, F.X_TAGS: tokens, F.UPDATED_AT: op.now})
            tx.save(op.id, fields, deadline)
            tx.index(op.id, fields, (F.X_TAGS,), old=before)
    counters = tx.counters(op.id)
    data, own = counters if counters is not None else ({}, None)
    count = parse_integer(data.get(F.DUPLICATE_COUNT)) + 1
    data[F.DUPLICATE_COUNT] = str(count)
    data[F.LAST_ACCESSED_AT] = op.now
    tx.save_counters(op.id, data, deadline if deadline is not None else own)
    return count


def _update(tx: Tx, op: ops.Update) -> bool:
    parse_id(op.id)
    tag = op.id[:16]
    held = tx.memory(op.id)
    if held is None or held[0].get(F.KIND) is None:
        return False
    fields, deadline = held
    before = dict(fields)
    current = fields[F.KIND]
    expires = fields.get(F.EXPIRES_AT)
    if expires is not None and parse_score(expires) <= parse_score(op.now):
        return False
    changes: list[tuple[str, Any]] = [(name, value) for name, value in op.set_fields.items()]
    if op.vector is not None:
        changes.append((F.EMBEDDING, op.vector))
    opt = fields.get(F.OPT)
    if op.ttl_seconds != "" and opt is not None and (match := _OPT_TTL.fullmatch(opt)):
        changes.append((F.OPT, f"{match.group(1)}|{op.ttl_seconds}|{match.group(2)}"))
    if not changes:
        raise wrong_args("hset")
    for name, value in changes:
        if name == F.EMBEDDING:
            tx.put_vector(op.id, 0, value)
        else:
            fields[name] = text(value)
    for name in op.removed:
        if name == F.EMBEDDING:
            tx.drop_vectors(op.id, extra=False)
        elif name == F.VX:
            tx.drop_vectors(op.id, first=False)
        fields.pop(name, None)
    meta_touched = op.fact_tokens is not None or F.X_META in op.set_fields or F.X_META in op.removed
    if meta_touched:  # x_meta: the metadata's tokens and a fact's ("f...") change apart
        held_tokens = [t for t in (before.get(F.X_META) or "").split("|") if t]
        own = [t for t in held_tokens if not t.startswith(FACT_TOKEN_PREFIX)]
        fact = [t for t in held_tokens if t.startswith(FACT_TOKEN_PREFIX)]
        if F.X_META in op.set_fields or F.X_META in op.removed:
            own = [t for t in (op.set_fields.get(F.X_META) or "").split("|") if t]
        if op.fact_tokens is not None:
            fact = list(op.fact_tokens)
        if own or fact:
            fields[F.X_META] = "|".join(own + fact)
        else:
            fields.pop(F.X_META, None)
    ttl = op.ttl_ms
    if ttl is not None:
        deadline = tx.now_ms + int(ttl)
    tx.save(op.id, fields, deadline)
    touched = [n for n, _ in changes] + list(op.removed) + ([F.X_META] if meta_touched else [])
    tx.index(op.id, fields, touched, old=before)
    if op.kind != "" and op.kind != current:
        if tx.zscore("z", tag, op.id) is not None:
            tx.hincrby(tag, current, -1)
            tx.hincrby(tag, op.kind, 1)
        score = tx.zscore("x", tag, f"{current}|{op.id}")
        if score is not None:
            tx.zrem("x", tag, f"{current}|{op.id}")
            tx.zadd("x", tag, f"{op.kind}|{op.id}", score)
        current = op.kind
    if op.importance != "":
        tx.zadd("i", tag, op.id, parse_score(op.importance))
    if ttl is not None:
        tx.zadd("x", tag, f"{current}|{op.id}", parse_score(op.expires_at))
        tx.expire_counters(op.id, deadline)
    return True


def _delete(tx: Tx, op: ops.Delete) -> ops.Deleted:
    for memory_id in op.ids:
        parse_id(memory_id)
    tag = op.tag
    tx.purge(tag, op.now)
    n = tx.zcard("z", tag)
    removed: list[str] = []
    external: list[str] = []
    for memory_id in op.ids:
        if op.keep >= 0 and n <= op.keep:
            break
        if op.limit >= 0 and len(removed) >= op.limit:
            break
        held = tx.memory(memory_id)
        fields = held[0] if held is not None else {}
        kind, opt = fields.get(F.KIND), fields.get(F.OPT)
        caller = match.group(1) if opt is not None and (match := _CALLER.fullmatch(opt)) else None
        member = tx.zrem("z", tag, memory_id)
        tx.zrem("i", tag, memory_id)
        if kind is not None:
            if member:
                tx.hincrby(tag, kind, -1)
            tx.zrem("x", tag, f"{kind}|{memory_id}")
        existed = held is not None and tx.destroy(memory_id)
        tx.drop_counters(memory_id)
        if existed or member:
            n -= member
            removed.append(memory_id)
            if caller:
                external.append(caller)
    return ops.Deleted(n, removed, external)


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


# -- caller ids --------------------------------------------------------------------------------------------
def _alias(tx: Tx, caller_id: str) -> str | None:
    row = tx.q("SELECT tag FROM {aliases} WHERE ext = ?", (caller_id,)).fetchone()
    return None if row is None else str(row[0])


def _resolve(tx: Tx, op: ops.ResolveIds) -> list[str | None]:
    if not op.ids:
        raise wrong_args("hmget")
    return [_alias(tx, caller_id) for caller_id in op.ids]


def _claim(tx: Tx, op: ops.ClaimId) -> str:
    current = _alias(tx, op.id)
    if current is not None and current != op.tag and current != op.stale:
        return current
    tx.q("INSERT OR REPLACE INTO {aliases} (ext, tag) VALUES (?, ?)", (op.id, op.tag))
    return ""


def _release(tx: Tx, op: ops.ReleaseIds) -> int:
    released = 0
    for caller_id in op.ids:
        released += tx.q("DELETE FROM {aliases} WHERE ext = ? AND tag = ?", (caller_id, op.tag)).rowcount
    return released


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


# -- the registry and the scope index ------------------------------------------------------------------------
def _member(raw: Any) -> bytes:
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8")


def _register(tx: Tx, op: ops.Register) -> None:
    descriptor = json.dumps(op.scope.descriptor(), sort_keys=True, ensure_ascii=False)
    tx.q("INSERT OR REPLACE INTO {scopes} (tag, descriptor) VALUES (?, ?)", (op.scope.tag, descriptor))
    tx.conn.executemany(
        tx.sql("INSERT OR IGNORE INTO {scopeix} (member) VALUES (?)"), [(_member(m),) for m in op.members]
    )


def _unregister(tx: Tx, op: ops.Unregister) -> None:
    tx.q("DELETE FROM {scopes} WHERE tag = ?", (op.scope.tag,))
    for member in op.members:
        tx.q("DELETE FROM {scopeix} WHERE member = ?", (_member(member),))


def _all_scopes(tx: Tx, op: ops.AllScopes) -> dict[str, Any]:
    return {str(tag): json.loads(d) for tag, d in tx.q("SELECT tag, descriptor FROM {scopes}")}


def _descriptor(tx: Tx, tag: str) -> Any:
    row = tx.q("SELECT descriptor FROM {scopes} WHERE tag = ?", (tag,)).fetchone()
    return None if row is None else json.loads(row[0])


def _scope_descriptors(tx: Tx, op: ops.ScopeDescriptors) -> list[dict[str, Any] | None]:
    if not op.tags:
        raise wrong_args("hmget")
    return [_descriptor(tx, tag) for tag in op.tags]


def _lex_bound(raw: Any, *, start: bool) -> tuple[str, bytes] | None:
    """SQL comparison and value of a ZRANGEBYLEX bound; ``None``: unbounded; ``("", b"")``: empty range."""
    bound = _member(raw)
    if bound == b"-":
        return None if start else ("", b"")
    if bound == b"+":
        return ("", b"") if start else None
    if bound[:1] == b"[":
        return (">=" if start else "<=", bound[1:])
    if bound[:1] == b"(":
        return (">" if start else "<", bound[1:])
    raise BackendError("min or max not valid string range item")


def _index_range(tx: Tx, op: ops.ScopeIndexRange) -> list[bytes]:
    lo, hi = _lex_bound(op.start, start=True), _lex_bound(op.end, start=False)
    if (lo is not None and lo[0] == "") or (hi is not None and hi[0] == ""):
        return []
    where: list[str] = []
    params: list[Any] = []
    for bound in (lo, hi):
        if bound is not None:
            where.append(f"member {bound[0]} ?")
            params.append(bound[1])
    limit = -1 if op.limit is None or op.limit < 0 else op.limit
    rows = tx.q(
        "SELECT member FROM {scopeix}" + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY member LIMIT ?", (*params, limit),
    )  # fmt: skip
    return [bytes(r[0]) for r in rows]


def _drop_members(tx: Tx, op: ops.DropScopeIndexMembers) -> int:
    if not op.members:
        raise wrong_args("zrem")
    dropped = 0
    for member in dict.fromkeys(_member(m) for m in op.members):
        dropped += tx.q("DELETE FROM {scopeix} WHERE member = ?", (member,)).rowcount
    return dropped


# -- live config ---------------------------------------------------------------------------------------------
def _read_config(tx: Tx, op: ops.ReadConfig) -> dict[str, str]:
    return {str(name): str(value) for name, value in tx.q("SELECT name, value FROM {config}")}


def _write_config(tx: Tx, op: ops.WriteConfig) -> None:
    tx.conn.executemany(
        tx.sql("INSERT OR REPLACE INTO {config} (name, value) VALUES (?, ?)"),
        [(name, text(value)) for name, value in op.values.items()],
    )


# -- health --------------------------------------------------------------------------------------------------
def _probe(tx: Tx, op: ops.Probe) -> ops.Probed:
    # the index is the tables themselves: always ready, nothing it could not take
    (documents,) = tx.q("SELECT count(*) FROM {mem}").fetchone()
    return ops.Probed(ready=True, documents=int(documents), failures=0)


HANDLERS: dict[type, Callable[[Tx, Any], Any]] = {
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
