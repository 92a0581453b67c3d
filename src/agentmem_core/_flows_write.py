"""Write flows: remember (batch embed, dedup, pipelined writes, capacity eviction), update, forget."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey, encode_tag, is_memory_id, local_id_for_caller_id
from agentmem_core._flows_read import decode_gets, get_commands, get_many_flow, resolve_flow, scopes_flow
from agentmem_core._flows_recall import knn_command
from agentmem_core._parse import as_text, pairs, parse_search
from agentmem_core._plan import Call, Command, Embed, Flow, ScriptCall, batch, expect
from agentmem_core._records import (
    MemoryInput,
    PreparedMemory,
    check_content,
    content_fields,
    prepare,
    prepare_patch,
)
from agentmem_core._scope_index import scope_members
from agentmem_core._scripts import ALIAS_CLAIM, ALIAS_RELEASE, DELETE, DUPLICATE, FETCH, UPDATE, WRITE
from agentmem_core.embeddings import Vectors, validate_vectors, vector_to_bytes
from agentmem_core.errors import BackendError, InvalidMemoryError, InvalidVectorError, NotFoundError
from agentmem_core.query import MemoryFilter, render_query
from agentmem_core.schema import (
    NEVER,
    STORED_FIELDS,
    F,
    format_number,
    opt_from_texts,
    pack_opt_rest,
    unpack_opt,
)
from agentmem_core.scoring import eviction_priority, recency
from agentmem_core.types import Memory

__all__ = ["forget_by_scope_flow", "forget_flow", "remember_flow", "update_flow"]

_NEVER = format_number(NEVER)

_DEDUP_POOL = 4
"""Nearest memories a write-time dedup search reads (memories of texts among them are skipped)."""

PIPELINE_CHUNK = 512
"""Commands per round trip for bulk writes (bounded so one huge batch cannot stall the server)."""


def _write_call(ctx: Context, item: PreparedMemory, vectors: Sequence[bytes]) -> ScriptCall:
    """The WRITE call of one memory; ``vectors``: its blobs (none when it is not embedded)."""
    keys = ctx.keys
    tag = item.scope.tag
    created = item.fields[F.CREATED_AT]
    flat: list[str | bytes] = [F.CREATED_AT, created, F.X_CREATED_AT, created]  # first: the script may keep
    for name, value in item.fields.items():  # the replaced memory's time in their place
        if name not in (F.CREATED_AT, F.X_CREATED_AT):
            flat += [name, value]
    if vectors:  # a memory without a vector stays out of KNN (and valkey-search 1.0 queries)
        flat += [F.EMBEDDING, vectors[0]]
    return ScriptCall(
        WRITE,
        (keys.memory(item.id), keys.stats(item.id), *keys.bookkeeping(tag)),
        (
            item.fields[F.UPDATED_AT],  # = now, formatted once by prepare
            item.id,
            "" if item.keeps_created else item.fields[F.CREATED_AT],
            item.ttl_ms,
            item.fields[F.EXPIRES_AT] if item.expires_at is not None else "0",
            item.kind.value,
            item.fields[F.IMPORTANCE],
            item.opt_rest,
            max(0, len(vectors) - 1),  # the vectors after the first become child documents
            b"".join(vectors[1:]),
            *flat,
        ),
    )


def _duplicate_call(ctx: Context, existing_id: str, item: PreparedMemory) -> ScriptCall:
    pairs_: list[str] = []
    for tag in item.tags:
        pairs_ += [json.dumps(tag, ensure_ascii=False), encode_tag(tag)]
    return ScriptCall(
        DUPLICATE,
        (ctx.keys.memory(existing_id), ctx.keys.stats(existing_id)),
        (format_number(ctx.now), len(item.tags), *pairs_),
    )


def _scope_filter(scope: ScopeKey) -> MemoryFilter:
    return MemoryFilter(
        namespace=scope.namespace, thread_id=scope.thread_id, agent_id=scope.agent_id, user_id=scope.user_id
    )


def _find_duplicates(
    ctx: Context, items: Sequence[PreparedMemory], vectors: Vectors, threshold: float
) -> Flow[list[str | None]]:
    """For each item, the id of an existing (or earlier in-batch) memory within ``threshold``, if any."""
    commands = []
    for item, vector in zip(items, vectors):
        flt = render_query(_scope_filter(item.scope).leaves(ctx.now), max_leaves=ctx.engine.max_leaves)
        commands.append(knn_command(ctx, vector_to_bytes(vector), flt, _DEDUP_POOL, (F.EXPIRES_AT, F.OPT)))
    replies = yield batch(commands)
    found: list[str | None] = []
    for n, (item, reply) in enumerate(zip(items, replies)):
        # a memory of texts is no merge target either: its content is not what its vectors embed
        rows = [r for r in parse_search(expect(reply)) if not opt_from_texts(r.fields.get(F.OPT))]
        match = None
        named = item.fields.get(F.KEY) is not None or item.external_id is not None  # never merged away
        if rows and rows[0].distance <= threshold and not named:
            match = ctx.keys.id_from_memory_key(rows[0].key)
        if match is None and not named:
            # an earlier item of the same batch and scope (cosine distance = 1 - dot of unit vectors)
            for m in range(n):
                if found[m] is None and items[m].scope == item.scope:
                    if 1.0 - float(np.dot(vectors[m], vectors[n])) <= threshold:
                        match = items[m].id
                        break
        found.append(match)
    return found


def register_calls(ctx: Context, scope: ScopeKey) -> list[Call]:
    """Put a scope in the registry (what it is) and in the scope index (where list and filters find it)."""
    descriptor = json.dumps(scope.descriptor(), sort_keys=True, ensure_ascii=False)
    members: list[str | bytes | int] = []
    for member in scope_members(scope):
        members += [0, member]
    return [
        Call(("HSET", ctx.keys.scopes, scope.tag, descriptor)),
        Call(("ZADD", ctx.keys.scope_index, *members)),
    ]


def _unregister_calls(ctx: Context, scope: ScopeKey) -> list[Call]:
    return [
        Call(("HDEL", ctx.keys.scopes, scope.tag)),
        Call(("ZREM", ctx.keys.scope_index, *scope_members(scope))),
    ]


def _claim_ids(
    ctx: Context, items: Sequence[PreparedMemory], moving: Mapping[str, str] | None = None
) -> Flow[None]:
    """Claim the caller ids of the items before they are written (a global id names one memory).

    An id held by a memory of another scope is an error while that memory exists (ids never move a
    memory silently); one whose memory is gone is taken over.

    Raises:
        InvalidMemoryError: an id names a live memory of another scope, or two items of one call.
    """
    wanted: dict[str, str] = {}
    for item in items:
        if (
            item.external_id is not None
            and wanted.setdefault(item.external_id, item.scope.tag) != item.scope.tag
        ):
            raise InvalidMemoryError(
                f"id {item.external_id!r} is given to memories of two scopes in one call"
            )
    # ``moving``: ids whose memory is being moved away from the named scope (that holder is no conflict)
    pending, stale = dict(wanted), dict(moving or {})
    for _ in range(3):
        if not pending:
            return
        claims = list(pending.items())
        replies = yield batch(
            [
                ScriptCall(ALIAS_CLAIM, (ctx.keys.aliases,), (ext, tag, stale.get(ext, "")))
                for ext, tag in claims
            ]
        )
        conflicts = {ext: as_text(r) for (ext, _), r in zip(claims, map(expect, replies)) if as_text(r)}
        if not conflicts:
            return
        holders = [ctx.keys.memory(other + local_id_for_caller_id(ext)) for ext, other in conflicts.items()]
        alive = yield batch([Call(("EXISTS", key)) for key in holders])
        taken = [ext for ext, reply in zip(conflicts, alive) if int(expect(reply))]
        if taken:
            raise InvalidMemoryError(
                f"id {taken[0]!r} already names a memory in another scope; forget it first (ids are global)"
            )
        stale, pending = conflicts, {ext: wanted[ext] for ext in conflicts}
    raise BackendError("could not claim the memory ids: other writers keep claiming them")


def remember_flow(
    ctx: Context,
    inputs: Sequence[MemoryInput],
    vectors: Sequence[Sequence[float]] | None = None,
    registered: set[str] | None = None,
) -> Flow[list[str]]:
    """Validate everything, embed in one batch call, then write in pipelined round trips.

    ``registered`` holds scope tags this process has already put in the scope registry, so a steady-state
    write is a single script call; a scope is (re-)registered with its first write here, and whenever a
    write finds its scope was empty (another process may have unregistered it).
    """
    registered = set() if registered is None else registered
    items = [prepare(item, ctx.config, ctx.now) for item in inputs]  # raises before any I/O
    if not items:
        return []
    dims = ctx.spec.config.dims
    embedded = [n for n, item in enumerate(items) if item.texts]  # embed=False items get no vector
    texts = [text for n in embedded for text in items[n].texts]  # one vector per text, in order
    blobs: list[list[bytes]] = [[] for _ in items]
    duplicates: list[str | None] = [None] * len(items)
    if embedded:
        if vectors is None:
            raw = yield Embed(tuple(texts))
            matrix = validate_vectors(raw, dims, expected=len(texts))
        else:
            if len(vectors) != len(texts):
                raise InvalidVectorError(f"got {len(vectors)} vectors for {len(texts)} embedded texts")
            matrix = validate_vectors(vectors, dims, expected=len(texts))
        first: dict[int, int] = {}  # item -> its first row of the matrix
        row = 0
        for n in embedded:
            first[n] = row
            blobs[n] = [vector_to_bytes(v) for v in matrix[row : row + len(items[n].texts)]]
            row += len(items[n].texts)
        if ctx.config.dedup_threshold is not None:
            # a memory of texts is never merged: which of its vectors would decide?
            single = [n for n in embedded if not items[n].from_texts]
            if single:
                found = yield from _find_duplicates(
                    ctx, [items[n] for n in single], matrix[[first[n] for n in single]],
                    ctx.config.dedup_threshold,
                )  # fmt: skip
                for n, duplicate in zip(single, found):
                    duplicates[n] = duplicate
    elif vectors is not None and len(vectors):
        raise InvalidVectorError(f"got {len(vectors)} vectors for 0 embedded memories")

    yield from _claim_ids(ctx, items)
    commands: list[Command] = []
    registering: dict[int, tuple[str, int]] = {}  # first command index -> (scope tag, command count)
    pending: set[str] = set()
    for item, blob, duplicate in zip(items, blobs, duplicates):
        if duplicate is not None:
            commands.append(_duplicate_call(ctx, duplicate, item))
            continue
        if item.scope.tag not in registered and item.scope.tag not in pending:
            pending.add(item.scope.tag)
            calls = register_calls(ctx, item.scope)
            registering[len(commands)] = (item.scope.tag, len(calls))
            commands.extend(calls)
        commands.append(_write_call(ctx, item, blob))
    replies: list[Any] = []
    for start in range(0, len(commands), PIPELINE_CHUNK):
        replies += yield batch(commands[start : start + PIPELINE_CHUNK])
    # A scope counts as registered only once the server confirmed its registry entries: if one is lost,
    # the next write registers again (list, stats and forget_by_scope find scopes there).
    for index, (tag, n) in registering.items():
        if not any(isinstance(r, BaseException) for r in replies[index : index + n]):
            registered.add(tag)

    ids: list[str] = []
    over: dict[str, ScopeKey] = {}
    reregister: dict[str, ScopeKey] = {}
    capacity = ctx.config.max_items_per_scope
    reply_iter = iter(zip(commands, replies))
    for item, duplicate in zip(items, duplicates):
        command, reply = next(reply_iter)
        while isinstance(command, Call):  # registry writes
            expect(reply)
            command, reply = next(reply_iter)
        result = expect(reply)
        if duplicate is not None:
            if int(result) < 0:  # the duplicate vanished between search and write: nothing was merged
                raise InvalidMemoryError("near-duplicate target disappeared during the write; retry")
            ids.append(duplicate)
            continue
        ids.append(item.external_id or item.id)
        if int(result[1]) == 1:
            reregister[item.scope.tag] = item.scope
        if capacity is not None and int(result[1]) > capacity:
            over[item.scope.tag] = item.scope
    for _command, rest_reply in reply_iter:
        expect(rest_reply)
    if reregister:
        registered.difference_update(reregister)  # until the server confirms it again
        for reply in (yield batch([c for s in reregister.values() for c in register_calls(ctx, s)])):
            expect(reply)
        registered.update(reregister)
    for scope in over.values():
        yield from evict_flow(ctx, scope, capacity or 0)
    return ids


EVICTION_SAMPLE = 32
"""Lowest-importance and oldest memories read per eviction round (widened only when it cannot prove its
choice; see :func:`evict_flow`)."""


def _scored(reply: Any) -> list[tuple[str, float]]:
    flat = expect(reply)
    return [(as_text(flat[n]), float(as_text(flat[n + 1]))) for n in range(0, len(flat), 2)]


def evict_flow(ctx: Context, scope: ScopeKey, capacity: int) -> Flow[int]:
    """Evict the lowest ``importance + recency`` memories of a scope down to ``capacity``.

    Recency is taken from the later of creation and last access. The cost does not grow with the scope:
    a round reads the ``EVICTION_SAMPLE`` lowest-importance and the ``EVICTION_SAMPLE`` oldest memories
    (two ZSETs kept by the write script) and scores them exactly. Any memory outside both has an
    importance at least the sample's highest low importance and was seen no earlier than the sample's
    newest old creation, so its priority is at least that bound: when the chosen victims all score
    within it, they are the scope's true lowest; otherwise the sample doubles and the round repeats.
    Victims are deleted by a script that re-checks the count atomically, so concurrent writers never
    evict below capacity; the loop repeats while another writer's inserts keep the scope above capacity.
    """
    keys = ctx.keys
    tag = scope.tag
    created_key, importance_key = keys.created(tag), keys.by_importance(tag)
    half_life = ctx.config.scoring.half_life_seconds
    removed_total = 0
    sample = EVICTION_SAMPLE
    for _ in range(24):
        replies = yield batch([
            Call(("ZCARD", created_key)),
            Call(("ZCARD", importance_key)),
            Call(("ZRANGE", created_key, 0, sample - 1, "WITHSCORES")),
            Call(("ZRANGE", importance_key, 0, sample - 1, "WITHSCORES")),
        ])  # fmt: skip
        n, indexed = int(expect(replies[0])), int(expect(replies[1]))
        if n <= capacity:
            return removed_total
        excess = n - capacity
        complete = sample >= n
        if not complete and (indexed < n or 2 * excess > sample):
            # too many victims for this sample, or memories the importance ZSET does not know yet
            # (written before it existed): look at more, up to the whole scope
            sample = n if indexed < n else max(2 * sample, 2 * excess)
            continue
        oldest, cheapest = _scored(replies[2]), _scored(replies[3])
        ids = list(dict.fromkeys([i for i, _ in oldest] + [i for i, _ in cheapest]))
        replies = yield batch(
            [Call(("HMGET", keys.memory(i), F.IMPORTANCE, F.CREATED_AT)) for i in ids]
            + [Call(("HMGET", keys.stats(i), F.LAST_ACCESSED_AT)) for i in ids]
        )
        ranked: list[tuple[float, str]] = []
        for k, memory_id in enumerate(ids):
            importance, created = expect(replies[k])
            (last,) = expect(replies[len(ids) + k])
            if importance is None:
                ranked.append((-1.0, memory_id))  # already gone: cheapest to drop from the bookkeeping
                continue
            seen = float(as_text(created))
            if last is not None:
                seen = max(seen, float(as_text(last)))
            ranked.append(
                (eviction_priority(float(as_text(importance)), recency(ctx.now, seen, half_life)), memory_id)
            )
        ranked.sort()
        if not complete:
            bound = cheapest[-1][1] + recency(ctx.now, oldest[-1][1], half_life)
            if ranked[excess - 1][0] > bound:  # an unseen memory might rank lower: widen the sample
                sample *= 2
                continue
        victims = [memory_id for _, memory_id in ranked]
        (reply,) = yield batch([_delete_call(ctx, tag, victims[: excess + 16], keep=capacity, limit=excess)])
        reply = expect(reply)
        removed_total += len(reply[1])
        yield from _released(ctx, [(tag, reply)])
    return removed_total


def _delete_call(ctx: Context, tag: str, ids: Sequence[str], keep: int, limit: int = -1) -> ScriptCall:
    keys = ctx.keys
    script_keys = list(keys.bookkeeping(tag))
    for memory_id in ids:
        script_keys += [keys.memory(memory_id), keys.stats(memory_id)]
    return ScriptCall(DELETE, tuple(script_keys), (format_number(ctx.now), keep, limit, *ids))


def forget_flow(ctx: Context, ids: Sequence[str]) -> Flow[int]:
    """Delete memories by id (agentmem's or the caller's; grouped per scope). Returns how many existed."""
    internal = yield from resolve_flow(ctx, ids)
    by_scope: dict[str, list[str]] = {}
    for memory_id in internal:
        if memory_id is None:
            continue
        group = by_scope.setdefault(memory_id[:16], [])
        if memory_id not in group:
            group.append(memory_id)
    if not by_scope:
        return 0
    calls = [_delete_call(ctx, tag, group, keep=-1) for tag, group in by_scope.items()]
    replies = [expect(r) for r in (yield batch(calls))]
    yield from _released(ctx, zip(by_scope, replies))
    emptied = [tag for tag, reply in zip(by_scope, replies) if int(reply[0]) == 0]
    if emptied:  # a scope that lost its last memory leaves the registry (and list_namespaces)
        (raw,) = yield batch([Call(("HMGET", ctx.keys.scopes, *emptied))])
        for descriptor in expect(raw):
            if descriptor is not None:
                yield from unregister_if_empty(ctx, ScopeKey.from_descriptor(json.loads(as_text(descriptor))))
    return sum(len(reply[1]) for reply in replies)


def _released(ctx: Context, deletions: Iterable[tuple[str, Any]]) -> Flow[None]:
    """Release the caller ids of deleted memories (DELETE replies per scope tag), in one round trip."""
    calls = [
        ScriptCall(ALIAS_RELEASE, (ctx.keys.aliases,), (tag, *(as_text(e) for e in reply[2])))
        for tag, reply in deletions
        if len(reply) > 2 and reply[2]
    ]
    if calls:
        for reply in (yield batch(calls)):
            expect(reply)


def forget_by_scope_flow(ctx: Context, flt: MemoryFilter, batch_size: int = 500) -> Flow[int]:
    """Delete every memory matching the filter, scope by scope, ``batch_size`` ids per script call.

    Each call touches one scope (one slot), so this is cluster-safe; nothing outside the filter is
    touched because candidates come from the matching scopes and are re-checked against the filter.
    """
    if flt.is_unsatisfiable():
        return 0
    scopes = yield from scopes_flow(ctx, flt)
    whole_scope = flt.is_scope_only()
    deleted = 0
    for scope in scopes:
        offset = 0
        while True:
            key = ctx.keys.created(scope.tag)
            (members,) = yield batch([Call(("ZRANGE", key, offset, offset + batch_size - 1))])
            ids = [as_text(m) for m in expect(members)]
            if not ids:
                break
            if whole_scope:
                victims = ids
                counted = set(ids)
            else:
                memories = yield from get_many_flow(ctx, ids)
                # internal ids: Memory.id is the caller's id when it has one
                counted = {i for i, m in zip(ids, memories) if m is not None and flt.matches(m, ctx.now)}
                # Entries whose memory is gone or expired go too (their bookkeeping is stale), so every
                # entry of this page either leaves the ZSET or is a live non-match the offset skips:
                # the next page starts exactly after this one, however many entries were stale.
                victims = [i for i, m in zip(ids, memories) if m is None or i in counted]
                offset += len(ids) - len(victims)
            if victims:
                (reply,) = yield batch([_delete_call(ctx, scope.tag, victims, keep=-1)])
                reply = expect(reply)
                deleted += sum(1 for i in reply[1] if as_text(i) in counted)
                yield from _released(ctx, [(scope.tag, reply)])
            if len(ids) < batch_size:
                break
        yield from unregister_if_empty(ctx, scope)
    return deleted


def unregister_if_empty(ctx: Context, scope: ScopeKey) -> Flow[None]:
    # HDEL, then re-check: a concurrent writer registers *after* its insert, so re-adding on a non-empty
    # scope closes the race without a cross-slot transaction.
    key = ctx.keys.created(scope.tag)
    (count,) = yield batch([Call(("ZCARD", key))])
    if int(expect(count)) > 0:
        return
    replies = yield batch([*_unregister_calls(ctx, scope), Call(("ZCARD", key))])
    for reply in replies[:-1]:
        expect(reply)
    if int(expect(replies[-1])) > 0:
        for again in (yield batch(register_calls(ctx, scope))):
            expect(again)


def update_flow(
    ctx: Context,
    memory_id: str,
    *,
    content: str | None,
    importance: float | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    kind: str | None,
    ttl: float | None,
) -> Flow[Memory]:
    """Change a memory in place (scope and id unchanged), atomically; re-embeds only when content changes.

    The change is applied by one script that checks the memory still exists: two writers changing
    different attributes both keep their change, and a concurrent delete is a clean "not found". The
    updated memory comes back in the same round trip.

    Raises:
        NotFoundError: when the memory does not exist (or expired).
    """
    (internal,) = yield from resolve_flow(ctx, [memory_id])
    if internal is None:
        raise NotFoundError(f"memory {memory_id} does not exist")
    caller_id, memory_id = memory_id, internal
    patch = prepare_patch(
        ctx.config,
        ctx.now,
        content=content,
        importance=importance,
        tags=tags,
        metadata=metadata,
        kind=kind,
        ttl=ttl,
    )  # fmt: skip  (validates everything before any I/O)
    key = ctx.keys.memory(memory_id)
    fields = dict(patch.set_fields)
    removed = list(patch.removed)
    extra: list[str | bytes] = []
    if patch.content is not None:
        (current,) = yield batch([Call(("HMGET", key, F.CONTENT, F.OPT))])
        content_now, opt = expect(current)
        if content_now is None:
            raise NotFoundError(f"memory {caller_id} does not exist")
        embedded = unpack_opt(opt)[2]
        from_texts = opt_from_texts(opt)  # its vectors are of texts: the content's words change alone
        check_content(patch.content, ctx.config, embedded=embedded and not from_texts)
        if as_text(content_now) != patch.content:  # the same text keeps its vector and terms
            part, gone = content_fields(patch.content, embedded=embedded)
            fields.update(part)
            removed.extend(gone)
            if embedded and not from_texts:
                raw = yield Embed((patch.content,))
                extra = [
                    F.EMBEDDING,
                    vector_to_bytes(validate_vectors(raw, ctx.spec.config.dims, expected=1)[0]),
                ]
    flat: list[str | bytes] = []
    for name, value in fields.items():
        flat += [name, value]
    flat += extra
    tag = memory_id[:16]
    call = ScriptCall(
        UPDATE,
        (key, ctx.keys.stats(memory_id), *ctx.keys.bookkeeping(tag)),
        (
            format_number(ctx.now), memory_id, patch.kind.value if patch.kind else "",
            patch.importance or "", "" if patch.ttl_ms is None else patch.ttl_ms, patch.expires_text or "",
            "" if patch.ttl_ms is None else format_number(patch.ttl_ms / 1000),
            len(flat) // 2, *flat, *removed,
        ),
    )  # fmt: skip
    # same hash slot: the reads run after the script, on the same node, in order
    replies = yield batch([call, *get_commands(ctx, [memory_id])])
    if int(expect(replies[0])) < 0:
        raise NotFoundError(f"memory {caller_id} does not exist")
    (memory,) = decode_gets(ctx, [memory_id], replies[1:])
    if memory is None:
        raise NotFoundError(f"memory {caller_id} was deleted while it was being updated")
    return memory


def touch_flow(ctx: Context, ids: Sequence[str]) -> Flow[int]:
    """Reinforce memories as a recall returning them would: ``access_count`` + 1, ``last_accessed_at`` now.

    For callers that surface memories by other means (CrewAI's ``touch_records``). Returns how many exist.
    """
    internal = yield from resolve_flow(ctx, ids)
    known = list(dict.fromkeys(i for i in internal if i is not None))
    if not known:
        return 0
    groups: dict[str, list[str]] = {}
    for memory_id in known:  # FETCH: one call per scope (hash slot) on a cluster, one in all otherwise
        groups.setdefault(memory_id[:16] if ctx.cluster else "", []).extend(
            (ctx.keys.memory(memory_id), ctx.keys.stats(memory_id))
        )
    now = format_number(ctx.now)
    replies = yield batch([ScriptCall(FETCH, tuple(keys), ("1", now)) for keys in groups.values()])
    return sum(1 for reply in replies for value in expect(reply) if isinstance(value, (list, tuple)))


def move_flow(ctx: Context, memory_id: str, scope: ScopeKey, registered: set[str]) -> Flow[str]:
    """Move a memory to another scope, and return the id to use from now on.

    It is written there (vector, times, counters and caller id kept), then the original is deleted.
    agentmem's ids name their scope, so they change; a caller's id stays.

    Two scopes are two hash slots, so the move is two steps: a crash between them leaves both copies
    (never neither), and the caller id already names the new one.

    Raises:
        NotFoundError: when the memory does not exist (or expired).
    """
    (old,) = yield from resolve_flow(ctx, [memory_id])
    if old is None:
        raise NotFoundError(f"memory {memory_id} does not exist")
    replies = yield batch([
        *get_commands(ctx, [old], vectors=True),
        Call(("HGETALL", ctx.keys.stats(old))),
        Call(("HMGET", ctx.keys.memory(old), F.LEX, F.X_TERMS)),  # its words move as they are
    ])  # fmt: skip
    (memory,) = decode_gets(ctx, [old], replies[:2])
    if memory is None:
        raise NotFoundError(f"memory {memory_id} does not exist")
    lex, terms = expect(replies[3])
    from_texts = opt_from_texts(dict(zip(STORED_FIELDS, expect(replies[0]))).get(F.OPT))
    here = ScopeKey(memory.namespace, memory.thread_id, memory.agent_id, memory.user_id)
    if here == scope:
        return memory.id
    external = None if is_memory_id(memory.id) else memory.id
    remaining = None if memory.expires_at is None else max(0.001, memory.expires_at - ctx.now)
    item = prepare(
        MemoryInput(
            content=memory.content, importance=memory.importance, tags=memory.tags, kind=memory.kind,
            source=memory.source, metadata=memory.metadata, ttl=remaining, thread_id=scope.thread_id,
            agent_id=scope.agent_id, namespace=scope.namespace, user_id=scope.user_id,
            created_at=memory.created_at, key=memory.key, id=external, embed=memory.embedded,
            texts=("moved",) if from_texts else None,  # (its vectors move; nothing is embedded)
        ),
        ctx.config,
        ctx.now,
    )  # fmt: skip
    fields = {name: value for name, value in item.fields.items() if name not in (F.LEX, F.X_TERMS)}
    if lex is not None and terms is not None:
        fields[F.LEX], fields[F.X_TERMS] = as_text(lex), as_text(terms)
    item = replace(item, fields=fields)
    if remaining is None:  # a memory that never expired keeps never expiring (no default TTL of its kind)
        item = replace(
            item, expires_at=None, ttl_ms=0,
            opt_rest=pack_opt_rest(None, memory.embedded, external, from_texts),
            fields={**item.fields, F.EXPIRES_AT: _NEVER, F.X_EXPIRES_AT: _NEVER},
        )  # fmt: skip
    if external is not None:
        yield from _claim_ids(ctx, [item], moving={external: old[:16]})
    blobs = [np.asarray(v, dtype="<f4").tobytes() for v in memory.vectors or ()]
    counters = pairs(expect(replies[2]))
    commands: list[Command] = []
    if scope.tag not in registered:
        commands.extend(register_calls(ctx, scope))
    commands.append(_write_call(ctx, item, blobs))
    if counters:  # its access history moves with it
        flat = [x for name, value in counters.items() for x in (name, value)]
        commands.append(Call(("HSET", ctx.keys.stats(item.id), *flat)))
    for reply in (yield batch(commands)):
        expect(reply)
    registered.add(scope.tag)
    (reply,) = yield batch([_delete_call(ctx, old[:16], [old], keep=-1)])
    reply = expect(reply)
    yield from _released(ctx, [(old[:16], reply)])  # a no-op for the moved caller id: it names the new copy
    if int(reply[0]) == 0:
        yield from unregister_if_empty(ctx, here)
    return external or item.id
