"""Read flows other than recall (``_flows_recall``): get, list, stats, scope listing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey, parse_id
from agentmem_core._flows_recall import MAX_K
from agentmem_core._parse import as_text, pairs
from agentmem_core._plan import Call, Flow, ScriptCall, batch, expect
from agentmem_core._scripts import SCOPE_STATS
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import STATS_FIELDS, STORED_FIELDS, decode_memory, format_number
from agentmem_core.types import Memory, Page, ScopeStats, Stats

__all__ = ["get_many_flow", "list_flow", "scopes_flow", "stats_flow"]


def get_commands(ctx: Context, ids: Sequence[str]) -> list[Call]:
    """HMGET of the stored fields and the counters of each id."""
    commands: list[Call] = []
    for memory_id in ids:
        commands.append(Call(("HMGET", ctx.keys.memory(memory_id), *STORED_FIELDS)))
        commands.append(Call(("HMGET", ctx.keys.stats(memory_id), *STATS_FIELDS)))
    return commands


def decode_gets(ctx: Context, ids: Sequence[str], replies: Sequence[Any]) -> list[Memory | None]:
    """Decode :func:`get_commands` replies (``None`` for missing or expired memories)."""
    out: list[Memory | None] = []
    for n, memory_id in enumerate(ids):
        values = expect(replies[2 * n])
        counters = expect(replies[2 * n + 1])
        if values is None or all(v is None for v in values):
            out.append(None)
            continue
        memory = decode_memory(memory_id, dict(zip(STORED_FIELDS, values)), counters)
        if memory.expires_at is not None and memory.expires_at <= ctx.now:
            out.append(None)
            continue
        out.append(memory)
    return out


def get_many_flow(ctx: Context, ids: Sequence[str]) -> Flow[list[Memory | None]]:
    """Fetch memories by id in one round trip."""
    for memory_id in ids:
        parse_id(memory_id)
    if not ids:
        return []
    replies = yield batch(get_commands(ctx, ids))
    return decode_gets(ctx, ids, replies)


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


def scopes_flow(ctx: Context, flt: MemoryFilter | None = None) -> Flow[list[ScopeKey]]:
    """Scopes in the registry (optionally only those a filter can match)."""
    (raw,) = yield batch([Call(("HGETALL", ctx.keys.scopes))])
    scopes = []
    for tag, descriptor in pairs(expect(raw)).items():
        scope = ScopeKey.from_descriptor(json.loads(as_text(descriptor)))
        if scope.tag != tag:
            continue
        if flt is None or scope_matches(scope, flt):
            scopes.append(scope)
    scopes.sort(key=lambda s: (s.namespace, s.thread_id or "", s.agent_id or "", s.user_id or ""))
    return scopes


# -- list ----------------------------------------------------------------------------------------------
def _parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    if cursor is None:
        return None
    try:
        created, memory_id = cursor.split(":", 1)
        parse_id(memory_id)
        return float(created), memory_id
    except (ValueError, InvalidMemoryError) as exc:
        raise InvalidMemoryError(f"invalid list cursor {cursor!r}") from exc


def _after(memory: Memory, cursor: tuple[float, str] | None) -> bool:
    if cursor is None:
        return True
    created, memory_id = cursor
    return memory.created_at < created or (memory.created_at == created and memory.id < memory_id)


def list_flow(ctx: Context, flt: MemoryFilter, limit: int, cursor: str | None) -> Flow[Page]:
    """Newest first across the matching scopes, paginated by an opaque cursor; exact (refills on filter)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_K:
        raise InvalidMemoryError(f"limit must be an int in 1..{MAX_K}, got {limit!r}")
    position = _parse_cursor(cursor)
    if flt.is_unsatisfiable():
        return Page(())
    scopes = yield from scopes_flow(ctx, flt)
    if not scopes:
        return Page(())
    upper = "+inf" if position is None else format_number(position[0])
    fetch = limit + 1
    while True:
        replies = yield batch([
            Call(("ZREVRANGEBYSCORE", ctx.keys.created(s.tag), upper, "-inf", "LIMIT", 0, fetch))
            for s in scopes
        ])  # fmt: skip
        id_lists = [[as_text(x) for x in expect(r)] for r in replies]
        more = any(len(ids) >= fetch for ids in id_lists)
        ids = [i for ids in id_lists for i in ids]
        memories = yield from get_many_flow(ctx, ids)
        found = [m for m in memories if m is not None and _after(m, position) and flt.matches(m, ctx.now)]
        found.sort(key=lambda m: (-m.created_at, _desc(m.id)))
        if len(found) > limit or not more:
            page = tuple(found[:limit])
            has_next = len(found) > limit or (more and len(page) == limit)
            next_cursor = f"{format_number(page[-1].created_at)}:{page[-1].id}" if page and has_next else None
            return Page(page, next_cursor)
        fetch *= 4


def _desc(memory_id: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in memory_id)


def stats_flow(ctx: Context, flt: MemoryFilter | None = None) -> Flow[Stats]:
    """Counts per scope and kind (expired memories are purged from the bookkeeping first)."""
    scopes = yield from scopes_flow(ctx, flt)
    now = format_number(ctx.now)
    replies = yield batch([
        ScriptCall(SCOPE_STATS, ctx.keys.bookkeeping(s.tag), (now,))
        for s in scopes
    ])  # fmt: skip
    per_scope: list[ScopeStats] = []
    totals: dict[str, int] = {}
    for scope, reply in zip(scopes, replies):
        count, raw_kinds = expect(reply)
        kinds = {k: int(as_text(v)) for k, v in pairs(raw_kinds).items() if int(as_text(v)) > 0}
        for kind, n in kinds.items():
            totals[kind] = totals.get(kind, 0) + n
        if int(count) > 0:
            per_scope.append(
                ScopeStats(scope.namespace, scope.thread_id, scope.agent_id, scope.user_id, int(count), kinds)
            )
    return Stats(sum(s.total for s in per_scope), totals, tuple(per_scope))
