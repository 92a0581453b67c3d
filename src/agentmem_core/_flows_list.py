"""Listing memories across scopes in creation order, paged by an opaque cursor (``list()``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_read import decode_gets, scopes_ahead_flow
from agentmem_core._limits import MAX_K
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._refresh import refresh_flow, refreshed
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.ops import ReadMemories, ScopeByTime, ScopePage
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import STORED_FIELDS, F, format_number, unpack_opt
from agentmem_core.types import Memory, Page

__all__ = ["Order", "list_flow"]

Order = Literal["newest", "oldest"]
_ORDERS = ("newest", "oldest")


def _order_key(memory: Memory) -> tuple[float, int, str]:
    """Oldest first: creation time, then the scope's write sequence (exact insertion order), then id."""
    return (memory.created_at, memory.sequence, memory.id)


def _parse_cursor(cursor: str | None, order: Order) -> tuple[float, int, str] | None:
    if cursor is None:
        return None
    try:
        tag, created, sequence, memory_id = cursor.split(":", 3)  # a caller id may hold ":" itself
        if tag != order[0]:
            raise ValueError("the cursor belongs to a listing in the other order")
        if not memory_id:
            raise ValueError("no memory id")
        position = (float(created), int(sequence), memory_id)
    except (ValueError, InvalidMemoryError) as exc:
        raise InvalidMemoryError(f"invalid list cursor {cursor!r}: {exc}") from exc
    if not math.isfinite(position[0]):
        raise InvalidMemoryError(f"invalid list cursor {cursor!r}")
    return position


def _cursor(memory: Memory, order: Order) -> str:
    return f"{order[0]}:{format_number(memory.created_at)}:{memory.sequence}:{memory.id}"


def list_flow(
    ctx: Context,
    flt: MemoryFilter,
    limit: int,
    cursor: str | None,
    order: Order = "newest",
    offset: int = 0,
    refresh: bool = False,
    counters: bool = True,
) -> Flow[Page]:
    """Memories across the matching scopes in ``order``, ``offset`` skipped, paged by an opaque cursor.

    Exact: a page is never short because the filter ran on the client (the scopes' ZSETs are read
    further until the page is full or they are exhausted). Ties of ``created_at`` keep the scope's
    write order (``Memory.sequence``), so a chat history lists exactly as it was written.

    Each scope is read in one step (ids and fields). When that would read many more memories than the
    page needs (:data:`SPARED_READS`), the scopes are read by id and creation time first, then only the
    memories that can make the page are read whole (:func:`_merged`): one more round trip, and a page's
    worth of memories read and decoded instead of a page's worth per scope. ``counters=False`` leaves the
    memories' counters unread (``None``).
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
    newest = order == "newest"
    bound = position[0] if position is not None else None
    need = offset + limit
    fetch = need + 1

    def first_reads(scopes: Sequence[ScopeKey]) -> list[Any]:
        # each scope's ids and their fields at once; over many scopes, their ids first (see _merged)
        if not _by_id_first(len(scopes), fetch):
            return [ScopePage(s.tag, newest, bound, fetch, STORED_FIELDS, counters=counters) for s in scopes]
        return [ScopeByTime(s.tag, newest, bound, fetch) for s in scopes]

    # the scopes' first reads go with the index read when the filter's scopes are known from last time
    scopes, ahead = yield from scopes_ahead_flow(ctx, flt, first_reads)
    if not scopes:
        return Page(())
    while True:
        replies = ahead if ahead is not None else (yield batch(first_reads(scopes)))
        ahead = None
        listings = [expect(reply) for reply in replies]
        # A full page of a scope says nothing about what lies at or past its last score: the scope orders
        # ties by id, not by write sequence. Only memories strictly before the nearest such edge are
        # certain to be in their final order.
        edge: float | None = None
        for listed in listings:
            if len(listed) >= fetch:
                last = listed[-1][1]
                edge = last if edge is None else (max(edge, last) if newest else min(edge, last))
        cut: float | None = None
        if not _by_id_first(len(scopes), fetch):
            ids = [row[0] for listed in listings for row in listed]
            reads: Any = [(values, counters) for listed in listings for _, _, values, counters in listed]
        else:
            ids, cut, tied = _merged(listings, fetch, newest)
            if tied:  # too many tied at the cut to read whole: their write order picks the ones to read
                (opts,) = yield batch([ReadMemories(tuple(tied), (F.OPT,))])
                assert cut is not None
                ids += _first_written(tied, expect(opts), fetch - len(ids), newest, cut, position)
            (reads,) = yield batch([ReadMemories(tuple(ids), STORED_FIELDS, counters=counters)])
        memories = decode_gets(ctx, ids, reads)
        internal_of = {
            m.id: i for m, i in zip(memories, ids) if m is not None
        }  # Memory.id may be a caller id
        found = [m for m in memories if m is not None and flt.matches(m, ctx.now)]
        if position is not None:
            found = [m for m in found if (_order_key(m) < position if newest else _order_key(m) > position)]
        if edge is not None:
            found = [m for m in found if (m.created_at > edge if newest else m.created_at < edge)]
        found.sort(key=_order_key, reverse=newest)
        if len(found) > need or (edge is None and cut is None):
            page = tuple(found[offset:need])
            more = edge is not None or cut is not None
            has_next = len(found) > need or (more and len(page) == limit)
            cursor = _cursor(page[-1], order) if page and has_next else None
            if refresh and page:
                yield from refresh_flow(ctx, page, [internal_of[m.id] for m in page])
                page = tuple(refreshed(ctx, m) or m for m in page)
            return Page(page, cursor)
        fetch *= 4


SPARED_READS = 64
"""Listing ids first pays one more round trip; it is taken when it spares reading at least this many
memories whole (``(scopes - 1) * fetch``: 10 scopes, 50 listed -> 459), each about 10-15 µs of server time
and as much of decoding, so a near server never loses and a far one (an ~1 ms round trip) rarely."""


def _by_id_first(scopes: int, fetch: int) -> bool:
    """Whether a listing of ``fetch`` per scope over ``scopes`` scopes reads ids first (:func:`_merged`)."""
    return (scopes - 1) * fetch >= SPARED_READS


def _merged(listings: Sequence[Any], fetch: int, newest: bool) -> tuple[list[str], float | None, list[str]]:
    """Which listed memories of several scopes' ``(id, created_at)`` listings to read whole.

    ``(ids, cut, tied)``: the ``fetch`` first by creation time across the scopes, with every listed
    memory tied with the last of them, are ``ids``; the cut is that creation time when listed memories
    past it were left out, else ``None``. Reading only these, not every scope's ``fetch`` memories,
    keeps a listing over many scopes at one page of reads (10 scopes, 50 newest: 51 memories read
    whole, not 510). Every memory past the cut comes after every memory read, so what is read, minus
    what lies past a scope's own edge, is a prefix of the listing. When more than ``2 * fetch`` are
    tied at the cut (a batch written at one instant), ``ids`` holds only those strictly before it and
    ``tied`` the tied ones, for :func:`_first_written` to pick from by write order.
    """
    entries = sorted(
        ((float(score), memory_id) for listed in listings for memory_id, score in listed),
        key=lambda e: e[0],
        reverse=newest,
    )
    if len(entries) <= fetch:
        return [memory_id for _, memory_id in entries], None, []
    last = entries[fetch - 1][0]
    before = [memory_id for score, memory_id in entries if (score > last if newest else score < last)]
    tied = [memory_id for score, memory_id in entries if score == last]
    cut = last if len(before) + len(tied) < len(entries) else None
    if len(before) + len(tied) <= 2 * fetch:
        return before + tied, cut, []
    return before, last, tied


def _first_written(
    tied: Sequence[str], opts: Sequence[Any], count: int, newest: bool, created: float,
    position: tuple[float, int, str] | None,
) -> list[str]:  # fmt: skip
    """The ``count`` of memories created at ``created`` that come first in the listing's order.

    Ties keep the write order: ``(sequence, id)`` (the id a caller gave, if any), as ``_order_key``
    orders them; memories that are gone, or not past the cursor's ``position``, are left out.
    """
    keyed: list[tuple[int, str, str]] = []
    for memory_id, (values, _) in zip(tied, opts):
        if values is None:
            continue
        sequence, _, _, external = unpack_opt(values[0])
        keyed.append((sequence, external or memory_id, memory_id))
    if position is not None and position[0] == created:
        after = position[1:]
        keyed = [k for k in keyed if (k[:2] < after if newest else k[:2] > after)]
    keyed.sort(reverse=newest)
    return [memory_id for _, _, memory_id in keyed[:count]]
