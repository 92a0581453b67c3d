"""One generator flow per StorageBackend method: every decision of the adapter, no I/O.

A flow yields :class:`CoreCall` (a method of the core store with its arguments) and receives the reply;
``storage.py`` drives it over a sync :class:`~agentmem_core.MemoryStore` or an
:class:`~agentmem_core.AsyncMemoryStore`, so sync and async calls behave the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from crewai.memory.types import MemoryRecord, ScopeInfo

from agentmem_core import Memory, MemoryFilter, Page, RecallResult, ScopeKey
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.types import Facets
from agentmem_crewai._mapping import (
    MATCH_ALL,
    PrivateRule,
    check_dims,
    client_matches,
    distance_gate,
    from_timestamp,
    metadata_conditions,
    namespace_to_scope,
    record_input,
    record_of,
    scope_filter,
    scope_to_namespace,
    score_of,
    search_filters,
    to_timestamp,
)

__all__ = [
    "CoreCall",
    "Flow",
    "Settings",
    "count_flow",
    "delete_flow",
    "get_record_flow",
    "list_categories_flow",
    "list_records_flow",
    "list_scopes_flow",
    "reset_flow",
    "save_flow",
    "scope_info_flow",
    "search_flow",
    "touch_flow",
    "update_flow",
]

T = TypeVar("T")

CoreMethod = Literal[
    "remember_many", "get", "get_many", "update", "forget_many", "forget_by_scope", "recall_by_vector",
    "list", "count", "facets", "list_namespaces", "touch",
]  # fmt: skip

MAX_PAGE = 10_000
"""The deepest the core pages (``k``, ``limit`` and ``offset`` of one call)."""

_AGENTMEM_ID = re.compile(r"[0-9a-f]{32}")  # the core's own id shape (a caller id never has it)
_SIMILARITY_ONLY = {"similarity": 1.0, "recency": 0.0, "importance": 0.0}
_CLIENT_OVERSAMPLE = 3  # candidates per wanted hit when a metadata condition runs here (LanceDB's factor)


@dataclass(frozen=True, slots=True)
class CoreCall:
    """Call ``method`` of the core store (sync or async) with ``args`` and ``kwargs``."""

    method: CoreMethod
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()


Flow = Generator[CoreCall, Any, T]


@dataclass(frozen=True)
class Settings:
    """What a flow needs to know about its storage.

    Attributes:
        dims: the embedding dimension of the store.
        private_rule: pushed into every search when set (a storage bound to a viewer).
    """

    dims: int
    private_rule: PrivateRule | None = None


# -- writes -----------------------------------------------------------------------------------------------
def save_flow(settings: Settings, records: Sequence[MemoryRecord]) -> Flow[None]:
    """Write records (a record with an existing id replaces it); all are validated before any write.

    Raises:
        StorageDimensionMismatchError: an embedding's length differs from the store's dimension.
        InvalidMemoryError: a record the core cannot hold (nothing is written then).
    """
    if not records:
        return
    items = []
    vectors = []
    for record in records:
        item, vector = record_input(record, settings.dims)
        items.append(item)
        if vector is not None:
            vectors.append(vector)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidMemoryError("a save holds the same record id twice")
    yield CoreCall("remember_many", {"vectors": vectors or None}, (items,))


def update_flow(settings: Settings, record: MemoryRecord) -> Flow[None]:
    """Replace the record with the same id (created when missing, as LanceDB does); a scope change moves it.

    The move is the core's ``update(scope=...)`` (written in the new scope, then deleted from the old),
    then the record is written over it: its vector, times and counters stay with it.

    Raises:
        StorageDimensionMismatchError: the embedding's length differs from the store's dimension.
        InvalidMemoryError: a record the core cannot hold.
    """
    if _AGENTMEM_ID.fullmatch(str(record.id)):
        raise InvalidMemoryError(
            f"record {record.id!r} was written through agentmem without a caller id: ValkeyStorage can read, "
            "search and delete it, but not replace it (save a copy under a uuid instead)"
        )
    item, vector = record_input(record, settings.dims)
    existing: Memory | None = yield CoreCall("get", {}, (record.id,))
    target = scope_to_namespace(record.scope)
    if existing is not None and existing.namespace != target:
        scope = ScopeKey(target, existing.thread_id, existing.agent_id, existing.user_id)
        yield CoreCall("update", {"scope": scope}, (record.id,))
    yield CoreCall("remember_many", {"vectors": None if vector is None else [vector]}, ([item],))


def touch_flow(record_ids: Sequence[str]) -> Flow[None]:
    """Set ``last_accessed`` of the records to now (the core's reinforcement)."""
    ids = [str(i) for i in record_ids]
    if ids:
        yield CoreCall("touch", {}, (ids,))


def delete_flow(
    scope_prefix: str | None,
    categories: Sequence[str] | None,
    record_ids: Sequence[str] | None,
    older_than: datetime | None,
    metadata_filter: Mapping[str, Any] | None,
) -> Flow[int]:
    """Delete the records matching ALL the given criteria; with none, every record. Returns how many.

    ``record_ids=[]`` deletes nothing (LanceDB deletes everything then, and ignores the other criteria
    whenever ids are given without categories or metadata).

    Raises:
        InvalidMemoryError: for invalid criteria (nothing is deleted then).
    """
    metadata, rule, client = metadata_conditions(metadata_filter)
    if rule is not None:
        raise InvalidMemoryError("the visibility key filters searches, not deletes")
    args = search_filters(scope_prefix, categories, metadata, None)
    if older_than is not None:
        args["created_before"] = to_timestamp(older_than)
    if record_ids is not None:
        ids = [str(i) for i in record_ids]
        if not ids:
            return 0
        if not args and not client:
            return int((yield CoreCall("forget_many", {}, (ids,))))
        flt = MemoryFilter.build(**args)
        found: list[Memory | None] = yield CoreCall("get_many", {}, (ids,))
        chosen = [
            m.id for m in found
            if m is not None and flt.matches(m, -math.inf) and client_matches(record_of(m), client)
        ]  # fmt: skip
        return int((yield CoreCall("forget_many", {}, (chosen,)))) if chosen else 0
    if client:
        # CrewAI's equality on keys the core reads differently: list the candidates, check, delete by id.
        chosen = []
        cursor = None
        while True:
            page: Page = yield CoreCall("list", {"limit": MAX_PAGE, "cursor": cursor, **args})
            chosen += [m.id for m in page.memories if client_matches(record_of(m), client)]
            cursor = page.next_cursor
            if cursor is None:
                break
        return int((yield CoreCall("forget_many", {}, (chosen,)))) if chosen else 0
    return int((yield CoreCall("forget_by_scope", dict(args or MATCH_ALL))))


def reset_flow(scope_prefix: str | None) -> Flow[None]:
    """Delete every record in the scope and below it (every record for ``None`` or ``"/"``)."""
    yield CoreCall("forget_by_scope", dict(scope_filter(scope_prefix) or MATCH_ALL))


# -- reads ------------------------------------------------------------------------------------------------
def get_record_flow(record_id: str) -> Flow[MemoryRecord | None]:
    """The record with this id (with its embedding), or ``None``."""
    memory: Memory | None = yield CoreCall("get", {"with_vector": True}, (str(record_id),))
    return None if memory is None else record_of(memory)


def search_flow(
    settings: Settings,
    query_embedding: Sequence[float],
    scope_prefix: str | None,
    categories: Sequence[str] | None,
    metadata_filter: Mapping[str, Any] | None,
    limit: int,
    min_score: float,
) -> Flow[list[tuple[MemoryRecord, float]]]:
    """The ``limit`` records nearest the query, best first, each with its score in ``[0, 1]``.

    Every filter, the minimum score and (for a storage bound to a viewer, or the visibility key) the
    private rule run inside the core's query; records come without their embedding.

    Raises:
        StorageDimensionMismatchError: the query's length differs from the store's dimension.
        InvalidMemoryError: for invalid arguments.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidMemoryError(f"limit must be an int, got {limit!r}")
    gate = distance_gate(min_score)
    if not query_embedding:
        raise InvalidMemoryError("query_embedding is empty")
    check_dims(query_embedding, settings.dims)
    if limit <= 0:
        return []
    metadata, rule, client = metadata_conditions(metadata_filter)
    rule = rule or settings.private_rule
    args = search_filters(scope_prefix, categories, metadata, rule)
    k = min(MAX_PAGE, limit * _CLIENT_OVERSAMPLE if client else limit)
    result: RecallResult = yield CoreCall(
        "recall_by_vector",
        {"k": k, "threshold": gate, "weights": _SIMILARITY_ONLY, "reinforce": False, **args},
        ([float(x) for x in query_embedding],),
    )
    out: list[tuple[MemoryRecord, float]] = []
    for hit in result.hits:
        score = score_of(hit.distance)
        if score < min_score:  # the gate's float rounding, made exact
            continue
        record = record_of(hit.memory)
        if client and not client_matches(record, client):
            continue
        out.append((record, score))
    return out[:limit]


def list_records_flow(scope_prefix: str | None, limit: int, offset: int) -> Flow[list[MemoryRecord]]:
    """Records in the scope and below, newest first (``created_at`` ties in write order), paged.

    The core pages at most 10,000 deep per call; deeper offsets walk there by cursor.
    """
    if limit <= 0 or offset < 0:
        return []
    args = scope_filter(scope_prefix)
    cursor: str | None = None
    skip = offset
    while skip > MAX_PAGE:  # jump MAX_PAGE records per call: one listed, its cursor kept
        page: Page = yield CoreCall(
            "list", {"limit": 1, "offset": MAX_PAGE - 1, "cursor": cursor, "order": "newest", **args}
        )
        if page.next_cursor is None:
            return []
        cursor, skip = page.next_cursor, skip - MAX_PAGE
    out: list[MemoryRecord] = []
    while len(out) < limit:
        want = min(MAX_PAGE, limit - len(out))
        page = yield CoreCall(
            "list", {"limit": want, "offset": skip, "cursor": cursor, "order": "newest", **args}
        )
        out += [record_of(m) for m in page.memories]
        cursor, skip = page.next_cursor, 0
        if cursor is None:
            break
    return out


def count_flow(scope_prefix: str | None) -> Flow[int]:
    """How many records the scope and the scopes below it hold (exact)."""
    return int((yield CoreCall("count", scope_filter(scope_prefix))))


def list_categories_flow(scope_prefix: str | None) -> Flow[dict[str, int]]:
    """Each category of the records in the scope and below, with how many records carry it."""
    facets: Facets = yield CoreCall("facets", scope_filter(scope_prefix))
    return dict(facets.by_tag)


def list_scopes_flow(parent: str | None) -> Flow[list[str]]:
    """The immediate child scopes of ``parent`` that hold records (themselves or below), sorted.

    The core's namespace listing reads ``"*"`` as a wildcard label, so the prefix sent stops before
    the first ``"*"`` of the parent and the rest is compared here (a label never widens the listing).
    """
    base = scope_to_namespace(parent)
    fixed = base[: base.index("*")] if "*" in base else base
    depth = len(base) + 1
    children: set[tuple[str, ...]] = set()
    offset = 0
    while True:
        page: list[tuple[str, ...]] = yield CoreCall(
            "list_namespaces",
            {"prefix": fixed or None, "max_depth": depth, "limit": MAX_PAGE, "offset": offset},
        )
        children.update(ns for ns in page if len(ns) == depth and ns[: len(base)] == base)
        offset += len(page)
        if len(page) < MAX_PAGE or offset > MAX_PAGE:  # the core skips at most 10,000 namespaces
            break
    return sorted(namespace_to_scope(ns) for ns in children)


def scope_info_flow(scope: str) -> Flow[ScopeInfo]:
    """Counts, categories, date range and immediate children of the scope (records in it and below)."""
    path = namespace_to_scope(scope_to_namespace(scope))
    facets: Facets = yield CoreCall("facets", scope_filter(scope))
    children: list[str] = []
    if facets.total:
        children = yield from list_scopes_flow(scope)
    return ScopeInfo(
        path=path,
        record_count=facets.total,
        categories=sorted(facets.by_tag),
        oldest_record=None if facets.oldest is None else from_timestamp(facets.oldest),
        newest_record=None if facets.newest is None else from_timestamp(facets.newest),
        child_scopes=children,
    )
