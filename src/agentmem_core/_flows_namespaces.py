"""Namespace listing over the scope index (LangGraph's ``list_namespaces``), without reading the registry.

The index keeps namespaces in label-tuple order, so a listing walks a lexicographic range in chunks:
the prefix's labels before its first wildcard narrow the range, the rest of the pattern and the suffix
are checked here, and a ``max_depth`` cut jumps past everything below a namespace it has emitted.
Before a namespace is listed, its scope is checked for live memories (the check purges expired ones),
so a namespace whose last memory was forgotten, evicted or expired is not listed, and leaves the index.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentmem_core._context import Context
from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_write import unregister_if_empty
from agentmem_core._plan import Flow, batch, expect
from agentmem_core._records import normalise_namespace
from agentmem_core._scope_index import (
    decode_namespace_member,
    fixed_part,
    matches_pattern,
    namespace_range,
    skip_past,
)
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.ops import DropScopeIndexMembers, ScopeCounts, ScopeDescriptors, ScopeIndexRange
from agentmem_core.schema import format_number

__all__ = ["list_namespaces_flow"]

MAX_LIST = 10_000


def _pattern(name: str, value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    try:
        return normalise_namespace(value)
    except InvalidMemoryError as exc:
        raise InvalidMemoryError(f"{name}: {exc}") from exc


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidMemoryError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


def list_namespaces_flow(
    ctx: Context,
    *,
    prefix: Sequence[str] | None,
    suffix: Sequence[str] | None,
    max_depth: int | None,
    limit: int,
    offset: int,
) -> Flow[list[tuple[str, ...]]]:
    """Distinct namespaces holding live memories, sorted, ``offset`` skipped, at most ``limit``.

    Args:
        ctx: the operation's context.
        prefix: labels a namespace must start with (``*`` matches any one label).
        suffix: labels a namespace must end with (``*`` matches any one label).
        max_depth: namespaces deeper than this are listed cut to this many labels (once each).
        limit: most namespaces returned.
        offset: how many to skip first.

    Raises:
        InvalidMemoryError: for invalid labels or bounds.
    """
    head = _pattern("prefix", prefix)
    tail = _pattern("suffix", suffix)
    depth = None if max_depth is None else _check_int("max_depth", max_depth, 1, 1_000)
    _check_int("limit", limit, 1, MAX_LIST)
    _check_int("offset", offset, 0, MAX_LIST)
    start, end = namespace_range(fixed_part(head or ()))
    chunk = min(512, max(32, 2 * (offset + limit)))
    found: list[tuple[str, ...]] = []
    want = offset + limit
    while len(found) < want:
        (raw,) = yield batch([ScopeIndexRange(start, end, chunk)])
        members = expect(raw)
        if not members:
            break
        # Consecutive members that list as the same namespace (several scopes, or everything below a
        # max_depth cut) form one group; one live scope per group is enough, so liveness is checked for
        # the first member of each group, and for the others of a group only when that one was empty.
        groups: list[tuple[tuple[str, ...], list[tuple[str, bytes]]]] = []
        for member in members:
            namespace, tag = decode_namespace_member(member)
            if not namespace:  # memories without a namespace are not listed
                continue
            if head is not None and not matches_pattern(namespace, head):
                continue
            if tail is not None and not matches_pattern(namespace, tail, suffix=True):
                continue
            listed = namespace[:depth] if depth is not None else namespace
            if found and found[-1] == listed:  # listed already (from the previous chunk)
                continue
            if groups and groups[-1][0] == listed:
                groups[-1][1].append((tag, member))
            else:
                groups.append((listed, [(tag, member)]))
        alive = yield from _alive(ctx, [g[1][0] for g in groups])
        dead = [g for g in groups if not alive[g[1][0][0]] and len(g[1]) > 1]
        if dead:
            alive.update((yield from _alive(ctx, [c for g in dead for c in g[1][1:]])))
        for listed, candidates in groups:
            if any(alive[tag] for tag, _ in candidates):
                found.append(listed)
                if len(found) >= want:
                    break
        if len(members) < chunk:
            break
        last, _ = decode_namespace_member(members[-1])
        cut = last[:depth] if depth is not None else last
        # everything else below a namespace cut by max_depth would list as it again: jump past it
        start = skip_past(cut) if found and found[-1] == cut and len(cut) < len(last) else b"(" + members[-1]
    return found[offset:want]


def _alive(ctx: Context, candidates: Sequence[tuple[str, bytes]]) -> Flow[dict[str, bool]]:
    """Whether each candidate's scope (``(tag, index member)``) holds a live memory.

    Empty scopes leave the registry and the index; an index member whose registry entry is gone is
    dropped on its own.
    """
    members = dict(candidates)
    if not members:
        return {}
    now = format_number(ctx.now)
    tags = list(members)
    replies = yield batch([ScopeCounts(tag, now) for tag in tags])
    alive = {tag: expect(reply)[0] > 0 for tag, reply in zip(tags, replies)}
    empty = [tag for tag, live in alive.items() if not live]
    if empty:
        (raw,) = yield batch([ScopeDescriptors(tuple(empty))])
        descriptors = expect(raw)
        stale = [members[tag] for tag, descriptor in zip(empty, descriptors) if descriptor is None]
        if stale:
            (dropped,) = yield batch([DropScopeIndexMembers(tuple(stale))])
            expect(dropped)
        for descriptor in descriptors:
            if descriptor is not None:
                yield from unregister_if_empty(ctx, ScopeKey.from_descriptor(descriptor))
    return alive
