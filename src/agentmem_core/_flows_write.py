"""Write flows: remember (batch embed, dedup, pipelined writes, capacity eviction), update, forget."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey, encode_tag, is_memory_id, local_id_for_caller_id
from agentmem_core._flows_read import (
    decode_gets,
    get_many_flow,
    get_op,
    resolve_flow,
    scope_selection,
    scopes_flow,
)
from agentmem_core._parse import as_text
from agentmem_core._plan import Embed, Flow, batch, expect
from agentmem_core._records import (
    MemoryInput,
    PreparedMemory,
    memory_scope,
    prepare,
)
from agentmem_core._scope_index import scope_members
from agentmem_core.audit import Logged, audit_op
from agentmem_core.embeddings import Vectors, validate_vectors, vector_to_bytes
from agentmem_core.errors import BackendError, InvalidMemoryError, InvalidVectorError, NotFoundError
from agentmem_core.ops import (
    AuditAppend,
    ClaimId,
    Delete,
    Deleted,
    EvictionSample,
    Exists,
    Fetch,
    Knn,
    Merge,
    ReadCounters,
    ReadMemories,
    Register,
    ReleaseIds,
    ScopeDescriptors,
    ScopeMembers,
    ScopeSize,
    Unregister,
    Write,
    WriteCounters,
    WriteMany,
)
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import (
    NEVER,
    F,
    format_number,
    opt_from_texts,
    pack_opt_rest,
)
from agentmem_core.scoring import eviction_priority, recency

__all__ = ["forget_by_scope_flow", "forget_flow", "remember_flow"]

_NEVER = format_number(NEVER)

_DEDUP_POOL = 4
"""Nearest memories a write-time dedup search reads (memories of texts among them are skipped)."""

PIPELINE_CHUNK = 512
"""Commands per round trip for bulk writes (bounded so one huge batch cannot stall the server)."""

WRITE_MANY_MAX = 64
"""Writes of one scope sent as one call at most (one script call blocks the server while it runs)."""


def write_op(item: PreparedMemory, vectors: Sequence[bytes], count_up_to: int | None = None) -> Write:
    """The Write of one prepared memory; ``vectors``: its blobs (none when it is not embedded).

    ``count_up_to``: how far the scope's size must be exact in the reply (``None``: exactly).
    """
    return Write(
        id=item.id,
        tag=item.scope.tag,
        now=item.fields[F.UPDATED_AT],  # = now, formatted once by prepare
        created_at="" if item.keeps_created else item.fields[F.CREATED_AT],
        ttl_ms=item.ttl_ms,
        expires_at=item.fields[F.EXPIRES_AT] if item.expires_at is not None else "0",
        kind=item.kind.value,
        importance=item.fields[F.IMPORTANCE],
        opt_rest=item.opt_rest,
        fields=item.fields,
        vectors=tuple(vectors),
        count_up_to=count_up_to,
    )


def coalesce_writes(requests: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """``requests`` with each run of consecutive writes to one scope sent as one :class:`WriteMany`.

    Returns the requests to send and, for each, how many of ``requests`` it stands for (a run of
    :data:`WRITE_MANY_MAX` at most); :func:`expand_replies` gives every request its own reply back.
    """
    sent: list[Any] = []
    sizes: list[int] = []
    run: list[Write] = []

    def flush() -> None:
        if len(run) == 1:
            sent.append(run[0])
        elif run:
            sent.append(WriteMany(tuple(run)))
        if run:
            sizes.append(len(run))
            run.clear()

    for request in requests:
        if isinstance(request, Write):
            if run and (run[0].tag != request.tag or len(run) == WRITE_MANY_MAX):
                flush()
            run.append(request)
            continue
        flush()
        sent.append(request)
        sizes.append(1)
    flush()
    return sent, sizes


def expand_replies(replies: Sequence[Any], sizes: Sequence[int]) -> list[Any]:
    """One reply per request again: a :class:`WriteMany`'s results in order (its error for each write)."""
    out: list[Any] = []
    for reply, size in zip(replies, sizes):
        if size == 1:
            out.append(reply)
        elif isinstance(reply, BaseException):
            out += [reply] * size
        else:
            out += list(reply)
    return out


def _merge_op(ctx: Context, existing_id: str, item: PreparedMemory) -> Merge:
    tags = tuple((json.dumps(tag, ensure_ascii=False), encode_tag(tag)) for tag in item.tags)
    return Merge(existing_id, format_number(ctx.now), tags)


def _scope_filter(scope: ScopeKey) -> MemoryFilter:
    return MemoryFilter(
        namespace=scope.namespace, thread_id=scope.thread_id, agent_id=scope.agent_id, user_id=scope.user_id
    )


def _find_duplicates(
    ctx: Context, items: Sequence[PreparedMemory], vectors: Vectors, threshold: float
) -> Flow[list[str | None]]:
    """For each item, the id of an existing (or earlier in-batch) memory within ``threshold``, if any."""
    searches = [
        Knn(
            tuple(_scope_filter(item.scope).leaves(ctx.now)), vector_to_bytes(vector), _DEDUP_POOL,
            (F.EXPIRES_AT, F.OPT, F.FACT),
        )
        for item, vector in zip(items, vectors)
    ]  # fmt: skip
    replies = yield batch(searches)
    found: list[str | None] = []
    for n, (item, reply) in enumerate(zip(items, replies)):
        # a memory of texts is no merge target either: its content is not what its vectors embed; nor is a
        # fact (a write merged into a fact that a newer statement superseded would vanish into history)
        rows = [
            r
            for r in expect(reply).rows
            if not opt_from_texts(r.fields.get(F.OPT)) and F.FACT not in r.fields
        ]
        match = None
        named = item.fields.get(F.KEY) is not None or item.external_id is not None  # never merged away
        if rows and rows[0].distance <= threshold and not named:
            match = rows[0].id
        if match is None and not named:
            # an earlier item of the same batch and scope (cosine distance = 1 - dot of unit vectors)
            for m in range(n):
                if found[m] is None and items[m].scope == item.scope:
                    if 1.0 - float(np.dot(vectors[m], vectors[n])) <= threshold:
                        match = items[m].id
                        break
        found.append(match)
    return found


def _logged(requests: Sequence[Any], scopes: Mapping[str, ScopeKey]) -> list[Logged]:
    """The audit entries of a chunk of writes, by scope: ``remember`` (new ids), ``merge`` (dedup targets)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for request in requests:
        if isinstance(request, Write):
            grouped.setdefault(("remember", request.tag), []).append(request.id)
        elif isinstance(request, Merge):
            grouped.setdefault(("merge", request.id[:16]), []).append(request.id)
    return [(action, scopes.get(tag), ids, None) for (action, tag), ids in grouped.items()]


def register_op(scope: ScopeKey) -> Register:
    """Put a scope in the registry (what it is) and in the scope index (where list and filters find it)."""
    return Register(scope, tuple(scope_members(scope)))


def _unregister_op(scope: ScopeKey) -> Unregister:
    return Unregister(scope, tuple(scope_members(scope)))


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
        replies = yield batch([ClaimId(ext, tag, stale.get(ext, "")) for ext, tag in claims])
        conflicts = {ext: r for (ext, _), r in zip(claims, map(expect, replies)) if r}
        if not conflicts:
            return
        holders = [Exists(other + local_id_for_caller_id(ext)) for ext, other in conflicts.items()]
        alive = yield batch(holders)
        taken = [ext for ext, reply in zip(conflicts, alive) if expect(reply)]
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
            count = len(items[n].texts)
            if count == 1:
                blobs[n] = [vector_to_bytes(matrix[row])]
            else:
                blobs[n] = [vector_to_bytes(v) for v in matrix[row : row + count]]
            row += len(items[n].texts)
        if ctx.config.dedup_threshold is not None:
            # a memory of texts is never merged (which of its vectors would decide?), nor a fact (its
            # statement supersedes; merged, it would not)
            single = [n for n in embedded if not items[n].from_texts and items[n].subject is None]
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
    requests: list[Any] = []
    registering: dict[int, str] = {}  # request index -> scope tag
    pending: set[str] = set()
    for item, blob, duplicate in zip(items, blobs, duplicates):
        if duplicate is not None:
            requests.append(_merge_op(ctx, duplicate, item))
            continue
        if item.scope.tag not in registered and item.scope.tag not in pending:
            pending.add(item.scope.tag)
            registering[len(requests)] = item.scope.tag
            requests.append(register_op(item.scope))
        # the reply's scope size tells a new scope (1) and a scope over capacity: exact up to there
        requests.append(write_op(item, blob, max(1, ctx.config.max_items_per_scope or 0)))
    scopes = {item.scope.tag: item.scope for item in items}
    # A scope registered here is registered again after its writes, in the same round trip: a concurrent
    # forget_by_scope that emptied and unregistered it in between (a new scope's first write then finds
    # it empty) is undone without one more round trip for every new scope.
    again = dict.fromkeys(registering.values())  # each once, in order
    requests.extend(register_op(scopes[tag]) for tag in again)
    replies: list[Any] = []
    logs: list[Any] = []
    if ctx.scopes is not None:  # what a tag stands for, so a read of these scopes skips their descriptors
        for scope in scopes.values():
            ctx.scopes.put(scope)
            ctx.scopes.seed(scope_selection(scope), scope)  # and reads them ahead (a guess, checked)
    for start in range(0, len(requests), PIPELINE_CHUNK):
        chunk = requests[start : start + PIPELINE_CHUNK]
        # the chunk's audit entries travel after its writes, in the same round trip (no extra one on
        # the hot path): an entry records what was sent, and a write that fails raises below
        audit = audit_op(ctx, _logged(chunk, scopes))
        sent, sizes = coalesce_writes(chunk)
        got = yield batch(sent if audit is None else [*sent, audit])
        replies += expand_replies(got[: len(sent)], sizes)
        logs += got[len(sent) :]
    # A scope counts as registered only once the backend confirmed its registry entries: if one is lost,
    # the next write registers again (list, stats and forget_by_scope find scopes there).
    for index, tag in registering.items():
        if not isinstance(replies[index], BaseException):
            registered.add(tag)

    ids: list[str] = []
    over: dict[str, ScopeKey] = {}
    reregister: dict[str, ScopeKey] = {}
    capacity = ctx.config.max_items_per_scope
    reply_iter = iter(zip(requests, replies))
    for item, duplicate in zip(items, duplicates):
        request, reply = next(reply_iter)
        while isinstance(request, Register):  # registry writes
            expect(reply)
            request, reply = next(reply_iter)
        result = expect(reply)
        if duplicate is not None:
            if int(result) < 0:  # the duplicate vanished between search and write: nothing was merged
                raise InvalidMemoryError("near-duplicate target disappeared during the write; retry")
            ids.append(duplicate)
            continue
        ids.append(item.external_id or item.id)
        if result.scope_size == 1 and item.scope.tag not in again:  # emptied since it was registered
            reregister[item.scope.tag] = item.scope
        if capacity is not None and result.scope_size > capacity:
            over[item.scope.tag] = item.scope
    for _request, rest_reply in reply_iter:
        expect(rest_reply)
    for log_reply in logs:
        expect(log_reply)
    if reregister:
        registered.difference_update(reregister)  # until the backend confirms it again
        for reply in (yield batch([register_op(s) for s in reregister.values()])):
            expect(reply)
        registered.update(reregister)
    for scope in over.values():
        yield from evict_flow(ctx, scope, capacity or 0)
    return ids


EVICTION_SAMPLE = 32
"""Lowest-importance and oldest memories read per eviction round (widened only when it cannot prove its
choice; see :func:`evict_flow`)."""


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
    tag = scope.tag
    half_life = ctx.config.scoring.half_life_seconds
    removed_total = 0
    sample = EVICTION_SAMPLE
    for _ in range(24):
        (reply,) = yield batch([EvictionSample(tag, sample)])
        n, indexed, oldest, cheapest = expect(reply)
        if n <= capacity:
            return removed_total
        excess = n - capacity
        complete = sample >= n
        if not complete and (indexed < n or 2 * excess > sample):
            # too many victims for this sample, or memories the importance ZSET does not know yet
            # (written before it existed): look at more, up to the whole scope
            sample = n if indexed < n else max(2 * sample, 2 * excess)
            continue
        ids = list(dict.fromkeys([i for i, _ in oldest] + [i for i, _ in cheapest]))
        (read,) = yield batch([ReadMemories(tuple(ids), (F.IMPORTANCE, F.CREATED_AT), counters=True)])
        ranked: list[tuple[float, str]] = []
        for memory_id, (values, counters) in zip(ids, expect(read)):
            importance, created = values or (None, None)
            last = counters[1] if counters else None
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
        (reply,) = yield batch([_delete_op(ctx, tag, victims[: excess + 16], keep=capacity, limit=excess)])
        deleted = expect(reply)
        removed_total += len(deleted.removed)
        yield from _released([(tag, deleted)], audit_op(ctx, [("evict", scope, deleted.removed, None)]))
    return removed_total


def _delete_op(ctx: Context, tag: str, ids: Sequence[str], keep: int, limit: int = -1) -> Delete:
    return Delete(tag, tuple(ids), format_number(ctx.now), keep, limit)


def forget_flow(ctx: Context, ids: Sequence[str]) -> Flow[int]:
    """Delete memories by id (agentmem's or the caller's; grouped per scope). Returns how many existed."""
    return sum((yield from forget_each_flow(ctx, ids)))


def forget_each_flow(ctx: Context, ids: Sequence[str]) -> Flow[list[bool]]:
    """Delete memories by id; per id, whether this call deleted it (an id given twice: its first place)."""
    internal = yield from resolve_flow(ctx, ids)
    by_scope: dict[str, list[str]] = {}
    for memory_id in internal:
        if memory_id is None:
            continue
        group = by_scope.setdefault(memory_id[:16], [])
        if memory_id not in group:
            group.append(memory_id)
    if not by_scope:
        return [False] * len(ids)
    tags = tuple(by_scope)
    deletes: list[Any] = [_delete_op(ctx, tag, group, keep=-1) for tag, group in by_scope.items()]
    *raw, described = yield batch([*deletes, ScopeDescriptors(tags)])  # the scopes: for the audit entries
    replies: list[Deleted] = [expect(r) for r in raw]
    scopes = {
        tag: ScopeKey.from_descriptor(d) for tag, d in zip(tags, expect(described)) if d is not None
    }  # fmt: skip
    entries = [("forget", scopes.get(tag), reply.removed, None) for tag, reply in zip(tags, replies)]
    yield from _released(zip(tags, replies), audit_op(ctx, entries))
    emptied = [tag for tag, reply in zip(tags, replies) if reply.remaining == 0 and tag in scopes]
    for tag in emptied:  # a scope that lost its last memory leaves the registry (and list_namespaces)
        yield from unregister_if_empty(ctx, scopes[tag])
    removed: set[str | None] = {memory_id for reply in replies for memory_id in reply.removed}
    out = []
    for memory_id in internal:
        out.append(memory_id is not None and memory_id in removed)
        removed.discard(memory_id)  # an id given twice was deleted at its first place
    return out


def _released(deletions: Iterable[tuple[str, Deleted]], audit: AuditAppend | None = None) -> Flow[None]:
    """Release the caller ids of deleted memories (per scope tag) and log the deletions, in one round trip."""
    follow: list[Any] = [
        ReleaseIds(tag, tuple(deleted.external)) for tag, deleted in deletions if deleted.external
    ]
    if audit is not None:
        follow.append(audit)
    if follow:
        for reply in (yield batch(follow)):
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
            (members,) = yield batch([ScopeMembers(scope.tag, offset, offset + batch_size - 1)])
            ids = expect(members)
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
                (reply,) = yield batch([_delete_op(ctx, scope.tag, victims, keep=-1)])
                done = expect(reply)
                deleted += sum(1 for i in done.removed if i in counted)
                gone = [i for i in done.removed if i in counted]
                yield from _released([(scope.tag, done)], audit_op(ctx, [("forget", scope, gone, None)]))
            if len(ids) < batch_size:
                break
        yield from unregister_if_empty(ctx, scope)
    return deleted


def unregister_if_empty(ctx: Context, scope: ScopeKey) -> Flow[None]:
    # HDEL, then re-check: a concurrent writer registers *after* its insert, so re-adding on a non-empty
    # scope closes the race without a cross-slot transaction.
    (count,) = yield batch([ScopeSize(scope.tag)])
    if expect(count) > 0:
        return
    gone, count = yield batch([_unregister_op(scope), ScopeSize(scope.tag)])
    expect(gone)
    if expect(count) > 0:
        (again,) = yield batch([register_op(scope)])
        expect(again)


def touch_flow(ctx: Context, ids: Sequence[str]) -> Flow[int]:
    """Reinforce memories as a recall returning them would: ``access_count`` + 1, ``last_accessed_at`` now.

    For callers that surface memories by other means (CrewAI's ``touch_records``). Returns how many exist.
    """
    internal = yield from resolve_flow(ctx, ids)
    known = list(dict.fromkeys(i for i in internal if i is not None))
    if not known:
        return 0
    (fetched,) = yield batch([Fetch(tuple(known), True, format_number(ctx.now))])
    return len(expect(fetched))


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
    read, counters_read, words = yield batch([
        get_op([old], vectors=True),
        ReadCounters(old),
        ReadMemories((old,), (F.LEX, F.X_TERMS, F.OPT)),  # its words move as they are
    ])  # fmt: skip
    (memory,) = decode_gets(ctx, [old], read)
    if memory is None:
        raise NotFoundError(f"memory {memory_id} does not exist")
    ((raw_words, _),) = expect(words)
    lex, terms, opt = raw_words or (None, None, None)
    from_texts = opt_from_texts(opt)
    here = memory_scope(memory)
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
    counters = expect(counters_read)
    requests: list[Any] = []
    if scope.tag not in registered:
        requests.append(register_op(scope))
    requests.append(write_op(item, blobs))
    if counters:  # its access history moves with it
        requests.append(WriteCounters(item.id, counters))
    for reply in (yield batch(requests)):
        expect(reply)
    registered.add(scope.tag)
    (reply,) = yield batch([_delete_op(ctx, old[:16], [old], keep=-1)])
    deleted = expect(reply)
    yield from _released([(old[:16], deleted)])  # a no-op for the moved caller id: it names the new copy
    if deleted.remaining == 0:
        yield from unregister_if_empty(ctx, here)
    return external or item.id
