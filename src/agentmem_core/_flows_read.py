"""Read flows other than recall (``_flows_recall``): get, list, stats, scope listing."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

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
Order = Literal["newest", "oldest"]
_ORDERS = ("newest", "oldest")


def _order_key(memory: Memory) -> tuple[float, int, str]:
    """Oldest first: creation time, then the scope's write sequence (exact insertion order), then id."""
    return (memory.created_at, memory.sequence, memory.id)


def _parse_cursor(cursor: str | None, order: Order) -> tuple[float, int, str] | None:
    if cursor is None:
        return None
    try:
        tag, created, sequence, memory_id = cursor.split(":", 3)
        if tag != order[0]:
            raise ValueError("the cursor belongs to a listing in the other order")
        parse_id(memory_id)
        position = (float(created), int(sequence), memory_id)
    except (ValueError, InvalidMemoryError) as exc:
        raise InvalidMemoryError(f"invalid list cursor {cursor!r}: {exc}") from exc
    if not math.isfinite(position[0]):
        raise InvalidMemoryError(f"invalid list cursor {cursor!r}")
    return position


def _cursor(memory: Memory, order: Order) -> str:
    return f"{order[0]}:{format_number(memory.created_at)}:{memory.sequence}:{memory.id}"


def list_flow(
    ctx: Context, flt: MemoryFilter, limit: int, cursor: str | None, order: Order = "newest", offset: int = 0
) -> Flow[Page]:
    """Memories across the matching scopes in ``order``, ``offset`` skipped, paged by an opaque cursor.

    Exact: a page is never short because the filter ran on the client (the scopes' ZSETs are read
    further until the page is full or they are exhausted). Ties of ``created_at`` keep the scope's
    write order (``Memory.sequence``), so a chat history lists exactly as it was written.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_K:
        raise InvalidMemoryError(f"limit must be an int in 1..{MAX_K}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_K:
        raise InvalidMemoryError(f"offset must be an int in 0..{MAX_K}, got {offset!r}")
    if order not in _ORDERS:
        raise InvalidMemoryError(f"order must be one of {_ORDERS}, got {order!r}")
    position = _parse_cursor(cursor, order)
    if flt.is_unsatisfiable():
        return Page(())
    scopes = yield from scopes_flow(ctx, flt)
    if not scopes:
        return Page(())
    newest = order == "newest"
    bound = format_number(position[0]) if position is not None else ("+inf" if newest else "-inf")
    need = offset + limit
    fetch = need + 1
    while True:
        command = "ZREVRANGEBYSCORE" if newest else "ZRANGEBYSCORE"
        far = "-inf" if newest else "+inf"
        replies = yield batch(
            [Call((command, ctx.keys.created(s.tag), bound, far, "LIMIT", 0, fetch)) for s in scopes]
        )
        id_lists = [[as_text(x) for x in expect(r)] for r in replies]
        more = any(len(ids) >= fetch for ids in id_lists)
        memories = yield from get_many_flow(ctx, [i for ids in id_lists for i in ids])
        found = [m for m in memories if m is not None and flt.matches(m, ctx.now)]
        if position is not None:
            found = [m for m in found if (_order_key(m) < position if newest else _order_key(m) > position)]
        found.sort(key=_order_key, reverse=newest)
        if len(found) > need or not more:
            page = tuple(found[offset:need])
            has_next = len(found) > need or (more and len(page) == limit)
            return Page(page, _cursor(page[-1], order) if page and has_next else None)
        fetch *= 4


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
        # the count hash also holds the scope's write sequence ("#seq"), which is not a kind
        kinds = {
            k: int(as_text(v))
            for k, v in pairs(raw_kinds).items()
            if not k.startswith("#") and int(as_text(v)) > 0
        }
        for kind, n in kinds.items():
            totals[kind] = totals.get(kind, 0) + n
        if int(count) > 0:
            per_scope.append(
                ScopeStats(scope.namespace, scope.thread_id, scope.agent_id, scope.user_id, int(count), kinds)
            )
    return Stats(sum(s.total for s in per_scope), totals, tuple(per_scope))
