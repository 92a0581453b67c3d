"""Read flows other than recall (``_flows_recall``) and listing (``_flows_list``): get, stats, scopes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agentmem_core._context import Context
from agentmem_core._counts import live_count, live_count_ops
from agentmem_core._encoding import ScopeKey, is_memory_id, local_id_for_caller_id
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._records import check_caller_id, check_key, keyed_id
from agentmem_core._refresh import refresh_flow, refreshed
from agentmem_core._scope_index import dimension_range, namespace_range, tag_of
from agentmem_core.errors import IndexNotFoundError, InvalidMemoryError
from agentmem_core.ops import (
    AllScopes,
    Probe,
    Probed,
    ReadMemories,
    ResolveIds,
    ScopeCounts,
    ScopeDescriptors,
    ScopeIndexRange,
    ScopeMembers,
)
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import STORED_FIELDS, F, decode_values, format_number
from agentmem_core.types import Facets, Memory, ScopeStats, Stats

__all__ = ["get_many_flow", "health_flow", "scopes_flow", "stats_flow"]


def get_op(ids: Sequence[str], vectors: bool = False, counters: bool = True) -> ReadMemories:
    """Read the stored fields (and the vectors, when asked) and, when asked, the counters of each id."""
    fields = (*STORED_FIELDS, F.EMBEDDING, F.VX) if vectors else STORED_FIELDS
    return ReadMemories(tuple(ids), fields, counters=counters)


def decode_gets(ctx: Context, ids: Sequence[str], result: Any) -> list[Memory | None]:
    """Decode a :func:`get_op` result (``None`` for missing or expired memories)."""
    out: list[Memory | None] = []
    for memory_id, (values, counters) in zip(ids, expect(result)):
        if values is None:
            out.append(None)
            continue
        memory = decode_values(memory_id, values, counters)
        if memory.expires_at is not None and memory.expires_at <= ctx.now:
            out.append(None)
            continue
        if len(values) > len(STORED_FIELDS) and isinstance(blob := values[-2], bytes):  # the vectors
            rows = [np.frombuffer(blob, dtype="<f4")]
            if isinstance(extra := values[-1], bytes) and extra:
                rows.extend(np.frombuffer(extra, dtype="<f4").reshape(-1, len(rows[0])))
            every = tuple(tuple(row.tolist()) for row in rows)
            memory = replace(memory, vector=every[0], vectors=every)
        out.append(memory)
    return out


def resolve_flow(ctx: Context, ids: Sequence[str]) -> Flow[list[str | None]]:
    """The internal id of each id a caller passed (``None`` for a caller id nobody holds).

    agentmem's own ids (32 lowercase hex) are used as they are; any other text is a caller's global id
    (``remember(id=...)``), looked up in the alias hash in one round trip.

    Raises:
        InvalidMemoryError: for a value that is no id at all (not text, empty, too long).
    """
    out: list[str | None] = [None] * len(ids)
    lookup: list[int] = []
    for n, value in enumerate(ids):
        if is_memory_id(value):
            out[n] = value
        else:
            check_caller_id(value)
            lookup.append(n)
    if lookup:
        (tags,) = yield batch([ResolveIds(tuple(ids[n] for n in lookup))])
        for n, tag in zip(lookup, expect(tags)):
            if tag is not None:
                out[n] = tag + local_id_for_caller_id(ids[n])
    return out


def get_many_flow(
    ctx: Context, ids: Sequence[str], refresh: bool = False, vectors: bool = False, counters: bool = True
) -> Flow[list[Memory | None]]:
    """Fetch memories by id (agentmem's or the caller's) in one round trip, two with caller ids.

    ``refresh`` restarts the lifetime of the found memories that have a TTL (one more round trip);
    ``vectors`` also reads their stored embeddings; ``counters=False`` leaves their counters unread.
    """
    internal = yield from resolve_flow(ctx, ids)
    known = [i for i in internal if i is not None]
    if not known:
        return [None] * len(ids)
    (result,) = yield batch([get_op(known, vectors, counters)])
    found = iter(decode_gets(ctx, known, result))
    memories = [None if i is None else next(found) for i in internal]
    if refresh:
        yield from refresh_flow(ctx, memories, internal)
        memories = [refreshed(ctx, m) for m in memories]
    return memories


# -- scopes --------------------------------------------------------------------------------------------
def scope_matches(scope: ScopeKey, flt: MemoryFilter) -> bool:
    """Whether a scope can hold memories matching the filter's scope fields."""
    if flt.namespace is not None and scope.namespace != flt.namespace:
        return False
    if flt.namespace_prefix and scope.namespace[: len(flt.namespace_prefix)] != flt.namespace_prefix:
        return False
    for want, have in ((flt.thread_id, scope.thread_id), (flt.agent_id, scope.agent_id),
                       (flt.user_id, scope.user_id)):  # fmt: skip
        if want is not None and want != have:
            return False
    return True


def _index_range(flt: MemoryFilter) -> tuple[bytes, bytes] | None:
    """The narrowest scope-index range a filter's scope fields select (``None``: no scope field set)."""
    if flt.namespace is not None:
        start, _ = namespace_range(flt.namespace)
        return start, b"(" + start[1:] + b"\x00\xff"  # exactly this namespace: its labels, then the end mark
    for dimension in ("user_id", "thread_id", "agent_id"):
        value = getattr(flt, dimension)
        if value is not None:
            return dimension_range(dimension, value)
    if flt.namespace_prefix:
        return namespace_range(flt.namespace_prefix)
    return None


def scopes_flow(ctx: Context, flt: MemoryFilter | None = None) -> Flow[list[ScopeKey]]:
    """Scopes in the registry (optionally only those a filter can match).

    A filter with a scope field reads only the scope index range it selects and those scopes'
    descriptors, so listing one user's memories costs the same with 10 or 100,000 scopes.
    """
    bounds = None if flt is None else _index_range(flt)
    if bounds is None:
        (registry,) = yield batch([AllScopes()])
        return _matching_scopes(ctx, flt, expect(registry), [])
    (members,) = yield batch([ScopeIndexRange(*bounds)])
    assert flt is not None
    return (yield from indexed_scopes(ctx, flt, members))


def scopes_ahead_flow(
    ctx: Context, flt: MemoryFilter, ahead: Callable[[Sequence[ScopeKey]], list[Any]]
) -> Flow[tuple[list[ScopeKey], list[Any] | None]]:
    """:func:`scopes_flow`, with the requests ``ahead(scopes)`` read ahead when it can.

    When the scopes this filter matched last time are known, those requests go in the same round trip
    as the index read; their replies come back when the index says those are still exactly the filter's
    scopes, else ``None`` (send them yourself, for the scopes returned).
    """
    read = scope_read(ctx, flt)
    index_read, guess = read if read is not None else (None, None)
    if index_read is None or guess is None:
        return (yield from scopes_flow(ctx, flt)), None
    members, *replies = yield batch([index_read, *ahead(guess)])
    scopes = yield from indexed_scopes(ctx, flt, members)
    return scopes, (replies if same_scopes(scopes, guess) else None)


def same_scopes(scopes: Sequence[ScopeKey], guess: Sequence[ScopeKey]) -> bool:
    """Whether an index read confirmed a guess: exactly the guessed scopes, in the same order."""
    return [s.tag for s in scopes] == [s.tag for s in guess]


def scope_read(
    ctx: Context, flt: MemoryFilter
) -> tuple[ScopeIndexRange, tuple[ScopeKey, ...] | None] | None:
    """The index read that finds a filter's scopes, and the scopes it matched last time (or ``None``).

    ``None`` when the filter sets no scope field or the store keeps no scope cache. Send the read and
    give its reply to :func:`indexed_scopes`: that confirms the guess, and makes one next time.
    """
    bounds = _index_range(flt)
    if bounds is None or ctx.scopes is None:
        return None
    return ScopeIndexRange(*bounds), ctx.scopes.guess(_selection(flt))


def _selection_key(
    namespace: Any, namespace_prefix: Any, thread_id: Any, agent_id: Any, user_id: Any
) -> tuple[Any, ...]:
    # the one shape of a selection key: a filter's scope fields, or a scope's own (scope_selection)
    return (namespace, namespace_prefix, thread_id, agent_id, user_id)


def _selection(flt: MemoryFilter) -> tuple[Any, ...]:
    """What decides which scopes a filter matches (its scope fields)."""
    return _selection_key(flt.namespace, flt.namespace_prefix, flt.thread_id, flt.agent_id, flt.user_id)


def scope_selection(scope: ScopeKey) -> tuple[Any, ...]:
    """The selection of a filter naming exactly this scope's fields (``_selection`` of that filter)."""
    return _selection_key(scope.namespace, None, scope.thread_id, scope.agent_id, scope.user_id)


def indexed_scopes(ctx: Context, flt: MemoryFilter, members: Any) -> Flow[list[ScopeKey]]:
    """The scopes of an index range read (descriptors read only for tags not seen before)."""
    raw = tuple(expect(members))
    selection = _selection(flt)
    if ctx.scopes is not None and (same := ctx.scopes.same_read(selection, raw)) is not None:
        return list(same)
    tags = list(dict.fromkeys(tag_of(m) for m in raw))
    known = {tag: ctx.scopes.get(tag) for tag in tags} if ctx.scopes is not None else {}
    unknown = [tag for tag in tags if known.get(tag) is None]
    found: dict[str, Any] = {}
    if unknown:  # a scope read before is not read again: a tag always stands for the same scope
        (descriptors,) = yield batch([ScopeDescriptors(tuple(unknown))])
        found = {tag: d for tag, d in zip(unknown, expect(descriptors)) if d is not None}
    scopes = _matching_scopes(ctx, flt, found, [s for s in known.values() if s is not None])
    if ctx.scopes is not None:
        # The members are kept only when every tag's scope was read: a descriptor missing now (a scope
        # being registered) is read again next time, not taken as absent for as long as the index holds.
        ctx.scopes.matched(selection, scopes, raw if _all_read(ctx, tags) else None)
    return scopes


def _all_read(ctx: Context, tags: Sequence[str]) -> bool:
    """Whether the scope cache now holds the scope of every tag (each was known or read, and well-formed)."""
    assert ctx.scopes is not None
    return all(ctx.scopes.peek(tag) is not None for tag in tags)


def _matching_scopes(
    ctx: Context, flt: MemoryFilter | None, found: Mapping[str, Any], known: Sequence[ScopeKey]
) -> list[ScopeKey]:
    """The scopes (read from the registry, or ``known``) a filter can match, in a stable order."""
    scopes = []
    for scope in known:
        if flt is None or scope_matches(scope, flt):
            scopes.append(scope)
    for tag, descriptor in found.items():
        scope = ScopeKey.from_descriptor(descriptor)
        if scope.tag != tag:
            continue
        if ctx.scopes is not None:
            ctx.scopes.put(scope)
        if flt is None or scope_matches(scope, flt):
            scopes.append(scope)
    scopes.sort(key=lambda s: (s.namespace, s.thread_id or "", s.agent_id or "", s.user_id or ""))
    return scopes


def health_flow() -> Flow[Probed | None]:
    """Probe the backend: what its index reports, or ``None`` when the store has no index (not set up).

    Any other failure (unreachable, refused, timed out) raises its typed error: the caller reports it.
    """
    (probed,) = yield batch([Probe()])
    if isinstance(probed, IndexNotFoundError):
        return None
    result: Probed = expect(probed)
    return result


def stats_flow(ctx: Context, flt: MemoryFilter | None = None) -> Flow[Stats]:
    """Counts per scope and kind (expired memories are purged from the bookkeeping first)."""
    scopes = yield from scopes_flow(ctx, flt)
    now = format_number(ctx.now)
    replies = yield batch([ScopeCounts(s.tag, now) for s in scopes])
    per_scope: list[ScopeStats] = []
    totals: dict[str, int] = {}
    for scope, reply in zip(scopes, replies):
        count, all_kinds = expect(reply)
        kinds = {k: n for k, n in all_kinds.items() if n > 0}
        for kind, n in kinds.items():
            totals[kind] = totals.get(kind, 0) + n
        if int(count) > 0:
            per_scope.append(
                ScopeStats(scope.namespace, scope.thread_id, scope.agent_id, scope.user_id, int(count), kinds)
            )
    return Stats(sum(s.total for s in per_scope), totals, tuple(per_scope))


# -- keys, counts and facets ------------------------------------------------------------------------------
def get_by_key_flow(
    ctx: Context, key: str, scope: ScopeKey, refresh: bool = False, counters: bool = True
) -> Flow[Memory | None]:
    """The memory a caller's key names in a scope (``remember(key=...)``), or ``None``."""
    (memory,) = yield from get_many_by_key_flow(ctx, [key], scope, refresh, counters)
    return memory


def keyed_ids(scope: ScopeKey, keys: Sequence[str]) -> list[str]:
    """The ids the caller's keys name in a scope (every key validated first).

    Raises:
        InvalidMemoryError: ``keys`` is a single string (a common slip) or a key is invalid.
    """
    if isinstance(keys, (str, bytes)):
        raise InvalidMemoryError("keys must be a sequence of keys, not one string")
    return [keyed_id(scope, check_key(key)) for key in keys]


def get_many_by_key_flow(
    ctx: Context, keys: Sequence[str], scope: ScopeKey, refresh: bool = False, counters: bool = True
) -> Flow[list[Memory | None]]:
    """The memories the caller's keys name in a scope, in order (``None`` where missing), one round trip."""
    return (yield from get_many_flow(ctx, keyed_ids(scope, keys), refresh, counters=counters))


SCAN_PAGE = 500
"""Memories read per round trip when a count or facet has to look at every matching memory."""


def scope_pages_flow(
    ctx: Context, flt: MemoryFilter, visit: Callable[[list[str]], Flow[None]], page: int = SCAN_PAGE
) -> Flow[None]:
    """Hand ``visit`` the ids of every scope the filter can match, ``page`` per round trip, oldest first.

    The walk a count, a facet, an exhaustive recall and an export share; ``visit`` reads and judges each
    page (one or more round trips of its own) before the next page is read.
    """
    if flt.is_unsatisfiable():
        return
    scopes = yield from scopes_flow(ctx, flt)
    for scope in scopes:
        start = 0
        while True:
            (members,) = yield batch([ScopeMembers(scope.tag, start, start + page - 1)])
            ids: list[str] = expect(members)
            if ids:
                yield from visit(ids)
            if len(ids) < page:
                break
            start += len(ids)


def matching_flow(ctx: Context, flt: MemoryFilter) -> Flow[list[Memory]]:
    """Every live memory matching the filter, scope by scope (exact; reads each matching scope once)."""
    out: list[Memory] = []

    def keep(ids: list[str]) -> Flow[None]:
        memories = yield from get_many_flow(ctx, ids)
        out.extend(m for m in memories if m is not None and flt.matches(m, ctx.now))

    yield from scope_pages_flow(ctx, flt, keep)
    return out


def count_flow(ctx: Context, flt: MemoryFilter) -> Flow[int]:
    """How many live memories match the filter, exactly.

    When the index can evaluate the whole filter (and the engine takes filter-only queries), one
    FT.SEARCH count answers; otherwise the matching scopes are read and the filter runs here.
    """
    if flt.is_unsatisfiable():
        return 0
    flt = flt.with_numeric(ctx.config.numeric_fields)
    if ctx.engine.filter_only_queries and flt.client_predicate() is None:
        replies = yield batch(list(live_count_ops(flt.scope_leaves(), ctx.now)))
        return live_count(replies)
    return len((yield from matching_flow(ctx, flt)))


def facets_flow(ctx: Context, flt: MemoryFilter) -> Flow[Facets]:
    """Counts per tag and per kind, and the oldest and newest creation time of the matching memories."""
    memories = yield from matching_flow(ctx, flt)
    by_tag: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for memory in memories:
        for tag in memory.tags:
            by_tag[tag] = by_tag.get(tag, 0) + 1
        by_kind[memory.kind.value] = by_kind.get(memory.kind.value, 0) + 1
    created = [m.created_at for m in memories]
    return Facets(
        total=len(memories),
        by_tag=dict(sorted(by_tag.items(), key=lambda kv: (-kv[1], kv[0]))),
        by_kind=dict(sorted(by_kind.items())),
        oldest=min(created) if created else None,
        newest=max(created) if created else None,
    )
