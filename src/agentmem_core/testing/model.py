"""A reference model of the store's documented semantics: plain Python, in process, no Valkey.

:class:`ReferenceModel` keeps memories in dictionaries and answers every public read and write of
:class:`~agentmem_core.store.MemoryStore` (vector-only recall over exact cosine distances) the way the
docstrings and the README describe them. It is the oracle of the model-based property test
(``tests/integration/test_model_based.py``), which runs random operation sequences against a real store and
the model and compares the results; an embedded backend and the conformance suite can reuse it.

What it models, and the rules it follows (each is documented on the store):

* **Identity.** ``remember(key=...)`` upserts by a key unique in its scope; ``remember(id=...)`` names a
  memory by a global id of the caller's, and an id held by a live memory of another scope is an error.
  Re-putting a key or an id keeps the memory's ``created_at`` and its place in the write order (unless the
  caller gives ``created_at``), and its access counters.
* **Time.** An injected clock; a memory whose ``expires_at`` has passed does not exist for any operation.
* **Listing.** Oldest first is ``(created_at, sequence, id)``, where ``sequence`` counts the writes of the
  memory's scope; newest first is the reverse; cursors resume strictly after the last memory returned.
* **Recall.** Every live memory matching the filter is a candidate (the store ranks its
  ``k × candidate_multiplier`` nearest: choose a multiplier that covers the store, as the property test
  does); the score is :func:`~agentmem_core.scoring.composite` of the similarity, the recency of the last
  reinforced access (or of the creation) and the importance; ties go to the closer memory, then the smaller
  internal id. A reinforced recall bumps ``access_count`` and sets ``last_accessed_at`` of its hits.
* **Capacity** (optional). After each write call, every scope above ``max_items_per_scope`` loses its
  lowest ``importance + recency(max(created_at, last access))`` memories (ties: the smaller internal id).
* **Filters.** Parsed and validated by :meth:`MemoryFilter.build <agentmem_core.query.MemoryFilter.build>`,
  evaluated by this module's own :func:`filter_matches` (not ``MemoryFilter.matches``): every path of the
  store, its index pushdown and its Python predicate alike, is checked against an independent statement of
  the documented semantics.

Not modelled: write-time dedup, hybrid (lexical) recall, distance thresholds, live config, and the
newer ``update(scope=...)``, ``refresh_ttl=``, ``touch``, ``with_vector=`` and ``remember(embed=False)``.

Scores computed here use float64 vectors while a server computes float32 distances, so compare recall
results with :func:`recall_page_problems`, which accepts any order among near-ties.
"""

from __future__ import annotations

import builtins
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from typing_extensions import Unpack

from agentmem_core._encoding import ScopeKey, is_memory_id, local_id_for_caller_id, new_local_id
from agentmem_core._records import (
    MemoryInput,
    check_caller_id,
    check_importance,
    check_key,
    check_ttl,
    keyed_id,
    normalise_namespace,
    scope_of,
    scope_value,
)
from agentmem_core._timeref import find_time_window, time_fit
from agentmem_core.config import DAY, Kind, ScoringConfig, ScoringWeights
from agentmem_core.errors import InvalidMemoryError, NotFoundError
from agentmem_core.query import FilterArgs, MemoryFilter, to_filter
from agentmem_core.schema import format_number
from agentmem_core.scoring import composite, eviction_priority, recency, similarity_from_distance
from agentmem_core.types import (
    Facets,
    Memory,
    Page,
    RecallHit,
    RecallResult,
    ScopeStats,
    ScoreBreakdown,
    Stats,
)

__all__ = [
    "ReferenceModel",
    "Scored",
    "TextEmbedder",
    "condition_matches",
    "filter_matches",
    "recall_page_problems",
]

Order = Literal["newest", "oldest"]
MAX_K = 10_000
"""Largest ``k + offset`` of a recall and ``limit`` / ``offset`` of a listing (the store's bound)."""
MAX_NAMESPACES = 10_000


class TextEmbedder(Protocol):
    """What the model needs of an embedder: a sync batch ``embed`` (e.g. ``HashingEmbedder``)."""

    def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]] | npt.NDArray[np.floating]:
        """One vector per text, in order."""
        ...


def _default_ttls() -> dict[Kind, float | None]:
    return {Kind.EPISODIC: 7 * DAY, Kind.SEMANTIC: None, Kind.PROCEDURAL: None, Kind.SUMMARY: None}


@dataclass
class _Entry:
    """One live memory (mutable: updates and reinforcement change it in place)."""

    internal_id: str
    scope: ScopeKey
    external_id: str | None
    content: str
    kind: Kind
    importance: float
    tags: tuple[str, ...]
    source: str | None
    key: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None
    access_count: int
    accessed_at: float | None  # the last reinforced recall; None: never
    duplicate_count: int
    sequence: int
    vector: npt.NDArray[np.float64]

    @property
    def public_id(self) -> str:
        return self.external_id or self.internal_id

    def view(self) -> Memory:
        return Memory(
            id=self.public_id,
            content=self.content,
            kind=self.kind,
            importance=self.importance,
            tags=self.tags,
            namespace=self.scope.namespace,
            thread_id=self.scope.thread_id,
            agent_id=self.scope.agent_id,
            user_id=self.scope.user_id,
            source=self.source,
            key=self.key,
            metadata=json.loads(json.dumps(self.metadata)),  # a copy: callers cannot change the model
            created_at=self.created_at,
            updated_at=self.updated_at,
            expires_at=self.expires_at,
            access_count=self.access_count,
            last_accessed_at=self.accessed_at if self.accessed_at is not None else self.created_at,
            duplicate_count=self.duplicate_count,
            sequence=self.sequence,
        )


@dataclass(frozen=True)
class Scored:
    """One recall candidate as the model ranks it.

    Attributes:
        memory: the memory before this recall's reinforcement.
        internal_id: the id ties are broken by (agentmem's id; for a caller id, the one it maps to).
        distance: cosine distance to the query (float64).
        similarity: ``1 - distance / 2``, clamped to ``[0, 1]``.
        recency: the recency of the last access (or of the creation).
        score: the composite score.
        similarity_weight: the similarity's weight in the score (``0``: the score ignores the distance).
        time: how the memory's ``created_at`` fits the dates a text query names (``None``: none named).
    """

    memory: Memory
    internal_id: str
    distance: float
    similarity: float
    recency: float
    score: float
    similarity_weight: float = 1.0
    time: float | None = None


@dataclass(frozen=True)
class _Prepared:
    internal_id: str
    scope: ScopeKey
    external_id: str | None
    content: str
    kind: Kind
    importance: float
    tags: tuple[str, ...]
    source: str | None
    key: str | None
    metadata: dict[str, Any]
    created_at: float
    expires_at: float | None
    keeps_created: bool


def _check_content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise InvalidMemoryError("content must be a non-empty string")
    return content


def _check_tags(tags: Sequence[str] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise InvalidMemoryError(f"tags must be a sequence of strings, got {tags!r}")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or tag == "":
            raise InvalidMemoryError(f"tags must be non-empty strings, got {tag!r}")
        if tag not in out:  # tags are a set kept in the order given
            out.append(tag)
    return tuple(out)


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise InvalidMemoryError("metadata must be a mapping with string keys")
    try:
        # what a JSON round trip keeps is what a reader gets back
        decoded: dict[str, Any] = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidMemoryError(f"metadata must be JSON-serialisable: {exc}") from exc
    return decoded


def _check_bound(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidMemoryError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


def _matches_pattern(namespace: tuple[str, ...], pattern: tuple[str, ...], *, suffix: bool) -> bool:
    if len(pattern) > len(namespace):
        return False
    part = namespace[len(namespace) - len(pattern) :] if suffix else namespace[: len(pattern)]
    return all(want in ("*", have) for want, have in zip(pattern, part))


def _same(a: Any, b: Any) -> bool:
    """Filter equality: ``1 == 1.0`` but ``True != 1``; lists element by element, objects key by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _lookup(metadata: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """A top-level key, else a dotted path into nested objects."""
    if key in metadata:
        return True, metadata[key]
    node: Any = metadata
    for part in key.split(".") if "." in key else [None]:
        if part is None or not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _ordered(actual: Any, op: str, bound: Any) -> bool:
    """A range condition: numbers with numbers, strings with strings, anything else never matches."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (actual, bound))
    if not numbers and not (isinstance(actual, str) and isinstance(bound, str)):
        return False
    if op == "$gt":
        return bool(actual > bound)
    if op == "$gte":
        return bool(actual >= bound)
    if op == "$lt":
        return bool(actual < bound)
    return bool(actual <= bound)


def condition_matches(op: str, expected: Any, present: bool, actual: Any) -> bool:
    """One metadata condition (the semantics documented on ``MetadataCondition``), written independently."""
    if op == "$exists":
        return present == bool(expected)
    if op in ("$eq", "$ne"):
        return (present and _same(actual, expected)) == (op == "$eq")
    if op in ("$in", "$nin"):
        return (present and any(_same(actual, v) for v in expected)) == (op == "$in")
    if op == "$contains":
        return isinstance(actual, list) and any(_same(x, expected) for x in actual)
    return present and _ordered(actual, op, expected)


def filter_matches(flt: MemoryFilter, memory: Memory, now: float) -> bool:
    """Whether a live memory matches a parsed filter.

    The model's own predicate: it reads the filter's fields but not its ``matches``, so the store's Python
    semantics are checked against this independent statement of the documented ones.
    """
    if memory.expires_at is not None and memory.expires_at <= now:
        return False
    checks = (
        flt.namespace is None or memory.namespace == flt.namespace,
        not flt.namespace_prefix or memory.namespace[: len(flt.namespace_prefix)] == flt.namespace_prefix,
        flt.thread_id is None or memory.thread_id == flt.thread_id,
        flt.agent_id is None or memory.agent_id == flt.agent_id,
        flt.user_id is None or memory.user_id == flt.user_id,
    )
    return (
        all(checks)
        and _group_matches(flt, memory)
        and (not flt.any_of or any(_group_matches(g, memory) for g in flt.any_of))
    )


def _group_matches(flt: MemoryFilter, memory: Memory) -> bool:
    """The non-scope conditions of a filter (what an ``any_of`` group may hold)."""
    if flt.source is not None and memory.source != flt.source:
        return False
    if flt.tags is not None and not any(tag in memory.tags for tag in flt.tags):
        return False
    if flt.kinds is not None and memory.kind not in flt.kinds:
        return False
    if flt.created_after is not None and memory.created_at < flt.created_after:
        return False
    if flt.created_before is not None and memory.created_at >= flt.created_before:
        return False
    return all(condition_matches(c.op, c.value, *_lookup(memory.metadata, c.key)) for c in flt.metadata)


def _unit(vector: Sequence[float] | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    array = np.asarray(vector, dtype=np.float64).reshape(-1)
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidMemoryError("a vector must be a non-empty finite array")
    norm = float(np.linalg.norm(array))
    if norm == 0:
        raise InvalidMemoryError("zero vectors have no cosine distance")
    unit: npt.NDArray[np.float64] = array / norm
    return unit


class ReferenceModel:
    """The store's semantics in memory (sync; the same method names and arguments as ``MemoryStore``).

    Args:
        embedder: embeds contents and text queries (vectors are normalised here).
        clock: the time source, shared with the store under test.
        scoring: the default recall scoring (weights and half-life).
        ttl_by_kind: default TTL per kind (default: the store's, episodic memories live 7 days).
        max_items_per_scope: capacity per scope (``None``: unlimited).
        id_source: makes the id of a memory written without key or caller id (default: the scope tag
            plus 16 random hex digits, agentmem's shape). A property test passes the ids the store chose.
    """

    def __init__(
        self,
        *,
        embedder: TextEmbedder,
        clock: Callable[[], float] = time.time,
        scoring: ScoringConfig | None = None,
        ttl_by_kind: Mapping[Kind, float | None] | None = None,
        max_items_per_scope: int | None = None,
        id_source: Callable[[ScopeKey], str] | None = None,
    ) -> None:
        """Create an empty model."""
        self._embedder = embedder
        self._clock = clock
        self.scoring = scoring or ScoringConfig()
        self._ttls = {**_default_ttls(), **(ttl_by_kind or {})}
        self.max_items_per_scope = max_items_per_scope
        self._id_source = id_source or (lambda scope: scope.tag + new_local_id())
        self._entries: dict[str, _Entry] = {}  # internal id -> live memory
        self._sequences: dict[str, int] = {}  # scope tag -> last write sequence (never reset)

    # -- state -------------------------------------------------------------------------------------------
    def _now(self) -> float:
        """Read the clock once per operation and forget what expired by then."""
        now = self._clock()
        for internal_id in [
            i for i, e in self._entries.items() if e.expires_at is not None and e.expires_at <= now
        ]:
            del self._entries[internal_id]
        return now

    def memories(self) -> builtins.list[Memory]:
        """Every live memory (any order): what a test draws ids and scopes from."""
        self._now()
        return [e.view() for e in self._entries.values()]

    def internal_id(self, memory_id: str) -> str | None:
        """The agentmem id a (caller or agentmem) id names among live memories, or ``None``."""
        self._now()
        entry = self._resolve(memory_id)
        return None if entry is None else entry.internal_id

    def _resolve(self, memory_id: str) -> _Entry | None:
        if is_memory_id(memory_id):
            return self._entries.get(memory_id)
        check_caller_id(memory_id)
        for entry in self._entries.values():
            if entry.external_id == memory_id:
                return entry
        return None

    def _live(self, flt: MemoryFilter, now: float) -> builtins.list[_Entry]:
        return [e for e in self._entries.values() if filter_matches(flt, e.view(), now)]

    # -- writes ------------------------------------------------------------------------------------------
    def remember(self, content: str, **fields: Any) -> str:
        """Store one memory and return its id (the keywords of ``MemoryStore.remember``)."""
        (memory_id,) = self.remember_many([MemoryInput(content, **fields)])
        return memory_id

    def remember_many(self, items: Sequence[MemoryInput]) -> builtins.list[str]:
        """Store memories in order, all validated first; then apply capacity once.

        Raises:
            InvalidMemoryError: invalid input, or a caller id held by a live memory of another scope (or
                given to two scopes in this call); nothing is written then.
        """
        now = self._now()
        prepared = [self._prepare(item, now) for item in items]
        wanted: dict[str, ScopeKey] = {}
        for p in prepared:
            if p.external_id is not None and wanted.setdefault(p.external_id, p.scope) != p.scope:
                raise InvalidMemoryError(
                    f"id {p.external_id!r} is given to memories of two scopes in one call"
                )
        for external, scope in wanted.items():
            holder = self._resolve(external)
            if holder is not None and holder.scope != scope:
                raise InvalidMemoryError(f"id {external!r} already names a memory in another scope")
        vectors = self._embed([p.content for p in prepared]) if prepared else []
        ids: builtins.list[str] = []
        touched: dict[str, ScopeKey] = {}
        for p, vector in zip(prepared, vectors):
            internal_id = p.internal_id or self._id_source(p.scope)
            old = self._entries.get(internal_id)
            keep = p.keeps_created and old is not None
            self._entries[internal_id] = _Entry(
                internal_id=internal_id,
                scope=p.scope,
                external_id=p.external_id,
                content=p.content,
                kind=p.kind,
                importance=p.importance,
                tags=p.tags,
                source=p.source,
                key=p.key,
                metadata=p.metadata,
                created_at=old.created_at if keep and old is not None else p.created_at,
                updated_at=now,
                expires_at=p.expires_at,
                # a replaced memory keeps its counters (the store keeps its counter hash)
                access_count=old.access_count if old is not None else 0,
                accessed_at=old.accessed_at if old is not None else None,
                duplicate_count=old.duplicate_count if old is not None else 0,
                sequence=old.sequence if keep and old is not None else self._next_sequence(p.scope),
                vector=vector,
            )
            ids.append(p.external_id or internal_id)
            touched[p.scope.tag] = p.scope
        if self.max_items_per_scope is not None:
            for scope in touched.values():
                self._evict(scope, self.max_items_per_scope, now)
        return ids

    def _next_sequence(self, scope: ScopeKey) -> int:
        self._sequences[scope.tag] = self._sequences.get(scope.tag, 0) + 1
        return self._sequences[scope.tag]

    def _prepare(self, item: MemoryInput, now: float) -> _Prepared:
        content = _check_content(item.content)
        importance = check_importance(item.importance)
        kind = Kind.parse(item.kind)
        scope = scope_of(item.namespace, item.thread_id, item.agent_id, item.user_id)
        source = scope_value("source", item.source)
        tags = _check_tags(item.tags)
        metadata = _check_metadata(item.metadata)
        created_at = now if item.created_at is None else item.created_at
        if (
            isinstance(created_at, bool)
            or not isinstance(created_at, (int, float))
            or not math.isfinite(created_at)
        ):
            raise InvalidMemoryError(f"created_at must be a Unix timestamp, got {item.created_at!r}")
        ttl = item.ttl if item.ttl is not None else self._ttls.get(kind)
        # a TTL counts from the write, not from a back-dated created_at
        expires_at = None if ttl is None else now + check_ttl(ttl)
        key = None if item.key is None else check_key(item.key)
        external = None if item.id is None else check_caller_id(item.id)
        if key is not None and external is not None:
            raise InvalidMemoryError("give a memory either a key or an id, not both")
        if external is not None:
            internal_id = scope.tag + local_id_for_caller_id(external)
        elif key is not None:
            internal_id = keyed_id(scope, key)
        else:
            internal_id = ""  # chosen at write time by id_source
        return _Prepared(
            internal_id=internal_id, scope=scope, external_id=external, content=content, kind=kind,
            importance=importance, tags=tags, source=source, key=key, metadata=metadata,
            created_at=float(created_at), expires_at=expires_at,
            keeps_created=(key is not None or external is not None) and item.created_at is None,
        )  # fmt: skip

    def _embed(self, texts: Sequence[str]) -> builtins.list[npt.NDArray[np.float64]]:
        raw = self._embedder.embed(list(texts))
        return [_unit(row) for row in np.asarray(raw, dtype=np.float64)]

    def _evict(self, scope: ScopeKey, capacity: int, now: float) -> None:
        members = [e for e in self._entries.values() if e.scope == scope]
        excess = len(members) - capacity
        if excess <= 0:
            return
        half_life = self.scoring.half_life_seconds

        def priority(entry: _Entry) -> tuple[float, str]:
            seen = entry.created_at if entry.accessed_at is None else max(entry.created_at, entry.accessed_at)
            return (eviction_priority(entry.importance, recency(now, seen, half_life)), entry.internal_id)

        for victim in sorted(members, key=priority)[:excess]:
            del self._entries[victim.internal_id]

    def update(
        self,
        memory_id: str,
        *,
        content: str | None = None,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        kind: Kind | str | None = None,
        ttl: float | None = None,
    ) -> Memory:
        """Change the given attributes (``None`` keeps one); ``ttl`` restarts the lifetime from now.

        Raises:
            NotFoundError: no live memory has this id.
            InvalidMemoryError: an invalid change (nothing changes then).
        """
        now = self._now()
        entry = self._resolve(memory_id)
        if entry is None:
            raise NotFoundError(f"memory {memory_id} does not exist")
        new_content = None if content is None else _check_content(content)
        new_importance = None if importance is None else check_importance(importance)
        new_tags = None if tags is None else _check_tags(tags)
        new_metadata = None if metadata is None else _check_metadata(metadata)
        new_kind = None if kind is None else Kind.parse(kind)
        new_ttl = None if ttl is None else check_ttl(ttl)
        if new_content is not None and new_content != entry.content:
            entry.content = new_content
            (entry.vector,) = self._embed([new_content])
        if new_importance is not None:
            entry.importance = new_importance
        if new_tags is not None:
            entry.tags = new_tags
        if new_metadata is not None:
            entry.metadata = new_metadata
        if new_kind is not None:
            entry.kind = new_kind  # the kind's default TTL applies to writes only, not to a kind change
        if new_ttl is not None:
            entry.expires_at = now + new_ttl
        entry.updated_at = now
        return entry.view()

    def forget(self, memory_id: str) -> bool:
        """Delete one memory; ``False`` if no live memory has this id."""
        return self.forget_many([memory_id]) == 1

    def forget_many(self, memory_ids: Sequence[str]) -> int:
        """Delete memories by id; returns how many distinct live memories were deleted."""
        self._now()
        found = {e.internal_id for e in (self._resolve(i) for i in memory_ids) if e is not None}
        for internal_id in found:
            del self._entries[internal_id]
        return len(found)

    def forget_by_scope(self, **filters: Unpack[FilterArgs]) -> int:
        """Delete every live memory matching the filters; returns how many.

        Raises:
            InvalidMemoryError: no filter at all (it would delete everything), or invalid filters.
        """
        flt = to_filter(filters)
        if flt == MemoryFilter():
            raise InvalidMemoryError("forget_by_scope needs at least one scope or filter value")
        now = self._now()
        victims = self._live(flt, now)
        for entry in victims:
            del self._entries[entry.internal_id]
        return len(victims)

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, memory_id: str) -> Memory | None:
        """One live memory by id (agentmem's or the caller's), or ``None``."""
        (memory,) = self.get_many([memory_id])
        return memory

    def get_many(self, memory_ids: Sequence[str]) -> builtins.list[Memory | None]:
        """Live memories by id, ``None`` where missing, in order."""
        self._now()
        out: builtins.list[Memory | None] = []
        for memory_id in memory_ids:
            entry = self._resolve(memory_id)
            out.append(None if entry is None else entry.view())
        return out

    def get_by_key(
        self,
        key: str,
        *,
        namespace: str | Sequence[str] | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
    ) -> Memory | None:
        """The live memory written with ``key`` in this scope, or ``None``."""
        scope = scope_of(namespace, thread_id, agent_id, user_id)
        internal_id = keyed_id(scope, check_key(key))
        self._now()
        entry = self._entries.get(internal_id)
        return None if entry is None else entry.view()

    @staticmethod
    def _order_key(entry: _Entry) -> tuple[float, int, str]:
        return (entry.created_at, entry.sequence, entry.public_id)

    def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        order: Order = "newest",
        offset: int = 0,
        **filters: Unpack[FilterArgs],
    ) -> Page:
        """Matching memories ordered by ``(created_at, sequence, id)`` (newest: reversed), paged.

        The cursor (``page.next_cursor``) is this model's own; it resumes strictly after the page's last
        memory, and is ``None`` when nothing follows.

        Raises:
            InvalidMemoryError: for invalid bounds, order, cursor or filters.
        """
        _check_bound("limit", limit, 1, MAX_K)
        _check_bound("offset", offset, 0, MAX_K)
        if order not in ("newest", "oldest"):
            raise InvalidMemoryError(f"order must be 'newest' or 'oldest', got {order!r}")
        position = None if cursor is None else self._parse_cursor(cursor, order)
        flt = to_filter(filters)
        now = self._now()
        newest = order == "newest"
        found = sorted(self._live(flt, now), key=self._order_key, reverse=newest)
        if position is not None:
            found = [
                e
                for e in found
                if (self._order_key(e) < position if newest else self._order_key(e) > position)
            ]
        page = found[offset : offset + limit]
        more = len(found) > offset + limit
        next_cursor = None
        if page and more:
            last = page[-1]
            next_cursor = f"{order[0]}:{format_number(last.created_at)}:{last.sequence}:{last.public_id}"
        return Page(tuple(e.view() for e in page), next_cursor)

    @staticmethod
    def _parse_cursor(cursor: str, order: Order) -> tuple[float, int, str]:
        try:
            tag, created, sequence, memory_id = cursor.split(":", 3)
            if tag != order[0] or not memory_id:
                raise ValueError(cursor)
            return (float(created), int(sequence), memory_id)
        except ValueError as exc:
            raise InvalidMemoryError(f"invalid list cursor {cursor!r}") from exc

    def count(self, **filters: Unpack[FilterArgs]) -> int:
        """How many live memories match the filters."""
        flt = to_filter(filters)
        return len(self._live(flt, self._now()))

    def facets(self, **filters: Unpack[FilterArgs]) -> Facets:
        """Counts per tag (most frequent first, ties by tag) and kind, and the creation time span."""
        flt = to_filter(filters)
        found = self._live(flt, self._now())
        by_tag: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        for entry in found:
            for tag in entry.tags:
                by_tag[tag] = by_tag.get(tag, 0) + 1
            by_kind[entry.kind.value] = by_kind.get(entry.kind.value, 0) + 1
        created = [e.created_at for e in found]
        return Facets(
            total=len(found),
            by_tag=dict(sorted(by_tag.items(), key=lambda kv: (-kv[1], kv[0]))),
            by_kind=dict(sorted(by_kind.items())),
            oldest=min(created) if created else None,
            newest=max(created) if created else None,
        )

    def stats(self, **filters: Unpack[FilterArgs]) -> Stats:
        """Live counts per scope (scopes sorted; empty ones left out) and per kind.

        Raises:
            InvalidMemoryError: a filter that is not scope-only.
        """
        flt = to_filter(filters) if filters else MemoryFilter()
        if not flt.is_scope_only():
            raise InvalidMemoryError("stats() counts whole scopes: filter by scope fields only")
        per_scope: dict[ScopeKey, dict[str, int]] = {}
        for entry in self._live(flt, self._now()):
            kinds = per_scope.setdefault(entry.scope, {})
            kinds[entry.kind.value] = kinds.get(entry.kind.value, 0) + 1
        scopes = sorted(
            per_scope, key=lambda s: (s.namespace, s.thread_id or "", s.agent_id or "", s.user_id or "")
        )
        totals: dict[str, int] = {}
        for kinds in per_scope.values():
            for kind, n in kinds.items():
                totals[kind] = totals.get(kind, 0) + n
        return Stats(
            total=sum(sum(k.values()) for k in per_scope.values()),
            by_kind=totals,
            scopes=tuple(
                ScopeStats(
                    s.namespace, s.thread_id, s.agent_id, s.user_id, sum(per_scope[s].values()), per_scope[s]
                )
                for s in scopes
            ),
        )

    def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[tuple[str, ...]]:
        """Distinct non-empty namespaces of live memories, matched, cut to ``max_depth``, sorted, paged.

        ``prefix`` and ``suffix`` labels match one label each, ``"*"`` any label (LangGraph semantics).
        """
        head = None if prefix is None else normalise_namespace(prefix)
        tail = None if suffix is None else normalise_namespace(suffix)
        if max_depth is not None:
            _check_bound("max_depth", max_depth, 1, 1_000)
        _check_bound("limit", limit, 1, MAX_NAMESPACES)
        _check_bound("offset", offset, 0, MAX_NAMESPACES)
        self._now()
        listed: set[tuple[str, ...]] = set()
        for entry in self._entries.values():
            namespace = entry.scope.namespace
            if not namespace:
                continue
            if head is not None and not _matches_pattern(namespace, head, suffix=False):
                continue
            if tail is not None and not _matches_pattern(namespace, tail, suffix=True):
                continue
            listed.add(namespace[:max_depth] if max_depth is not None else namespace)
        return sorted(listed)[offset : offset + limit]

    # -- recall ------------------------------------------------------------------------------------------
    def rank(
        self,
        query: str | Sequence[float] | npt.NDArray[np.floating],
        *,
        weights: ScoringWeights | Mapping[str, float] | None = None,
        half_life_seconds: float | None = None,
        **filters: Unpack[FilterArgs],
    ) -> builtins.list[Scored]:
        """Every candidate of a recall, best first (what ``recall`` pages through), without reinforcing.

        Raises:
            InvalidMemoryError: an empty query or invalid filters.
        """
        if isinstance(query, str):
            if not query.strip():
                raise InvalidMemoryError("recall query must be a non-empty string")
            (vector,) = self._embed([query])
        else:
            vector = _unit(query)
        scoring = self._scoring(weights, half_life_seconds)
        flt = to_filter(filters)
        now = self._now()
        window = (
            find_time_window(query, now, scoring.tz)
            if isinstance(query, str) and scoring.weights.time > 0
            else None
        )
        out: builtins.list[Scored] = []
        for entry in self._live(flt, now):
            distance = 1.0 - float(np.dot(entry.vector, vector))
            similarity = similarity_from_distance(distance)
            seen = entry.accessed_at if entry.accessed_at is not None else entry.created_at
            rec = recency(now, seen, scoring.half_life_seconds)
            fit = None if window is None else time_fit(entry.created_at, window)
            score = composite(similarity, rec, entry.importance, scoring, fit)
            weight = scoring.weights.similarity
            out.append(Scored(entry.view(), entry.internal_id, distance, similarity, rec, score, weight, fit))
        out.sort(key=lambda s: (-s.score, s.distance, s.internal_id))
        return out

    def _scoring(
        self, weights: ScoringWeights | Mapping[str, float] | None, half_life_seconds: float | None
    ) -> ScoringConfig:
        if weights is None and half_life_seconds is None:
            return self.scoring
        if isinstance(weights, Mapping):
            weights = ScoringWeights(**{k: float(v) for k, v in weights.items()})
        return replace(
            self.scoring,
            weights=weights if weights is not None else self.scoring.weights,
            half_life_seconds=self.scoring.half_life_seconds
            if half_life_seconds is None
            else half_life_seconds,
        )

    def reinforce(self, memory_ids: Sequence[str]) -> None:
        """Record a reinforced recall of these memories now (``access_count + 1``, last access = now)."""
        now = self._now()
        for memory_id in dict.fromkeys(memory_ids):
            entry = self._resolve(memory_id)
            if entry is not None:
                entry.access_count += 1
                entry.accessed_at = now

    def recall(
        self,
        query: str | Sequence[float] | npt.NDArray[np.floating],
        *,
        k: int = 10,
        weights: ScoringWeights | Mapping[str, float] | None = None,
        half_life_seconds: float | None = None,
        reinforce: bool = True,
        offset: int = 0,
        **filters: Unpack[FilterArgs],
    ) -> RecallResult:
        """The hits ``offset .. offset + k`` of :meth:`rank`, reinforced when ``reinforce``.

        Raises:
            InvalidMemoryError: invalid ``k`` / ``offset``, an empty query or invalid filters.
        """
        _check_bound("k", k, 1, MAX_K)
        _check_bound("offset", offset, 0, MAX_K - k)
        page = self.rank(query, weights=weights, half_life_seconds=half_life_seconds, **filters)[
            offset : offset + k
        ]
        if reinforce:
            self.reinforce([s.memory.id for s in page])
        hits = []
        for s in page:
            memory = self.get(s.memory.id) if reinforce else s.memory
            assert memory is not None  # reinforcement does not delete
            breakdown = ScoreBreakdown(
                similarity=s.similarity, recency=s.recency, importance=s.memory.importance, score=s.score,
                relevance=s.similarity, time=s.time,
            )  # fmt: skip
            hits.append(RecallHit(memory=memory, distance=s.distance, scores=breakdown))
        return RecallResult(tuple(hits))

    recall_by_vector = recall
    """Like :meth:`recall`; the query is a vector (normalised here)."""


def _clearly_before(a: Scored, b: Scored, score_tolerance: float, distance_tolerance: float) -> bool:
    """Whether every backend within the tolerances must rank ``a`` above ``b``.

    Scores within the tolerance may come out in either order, even when they are exactly equal here: equal
    scores can come from different inputs (similarity 1 and importance 0.5 against 0.5 and 1), which a
    float32 backend does not reproduce to the last bit, so its tie-break may never run. A tie is reproduced
    exactly everywhere only when the score does not depend on the distance (the similarity weight is 0) or
    the distances are equal too (in practice, the same vector); it goes to the clearly closer memory, then
    to the smaller internal id.
    """
    if a.score - b.score > score_tolerance:
        return True
    if a.score != b.score or (a.distance != b.distance and a.similarity_weight != 0):
        return False
    if b.distance - a.distance > distance_tolerance:
        return True
    if a.distance != b.distance:
        return False
    return a.internal_id < b.internal_id


def recall_page_problems(
    ranking: Sequence[Scored],
    page: Sequence[tuple[str, float, float]],
    *,
    offset: int,
    k: int,
    score_tolerance: float = 1e-5,
    distance_tolerance: float = 1e-5,
) -> list[str]:
    """Why a backend's recall page disagrees with the model's ranking (``[]`` when it agrees).

    The page agrees when it has the right length, each hit's score and distance match the model's for that
    memory within the tolerances, and each hit sits at a rank the model allows: every candidate the model
    ranks clearly above it (see :func:`_clearly_before`) is before it, every one clearly below is after.
    Near-ties may therefore come back in either order, and either of two near-tied memories may make the
    page.

    Args:
        ranking: :meth:`ReferenceModel.rank` for the same query and filters, before the recall.
        page: ``(memory id, score, distance)`` of each hit, best first.
        offset: the recall's ``offset``.
        k: the recall's ``k``.
        score_tolerance: how far a backend's composite score may be from the model's.
        distance_tolerance: how far a backend's cosine distance may be from the model's.
    """
    problems: list[str] = []
    expected = min(k, max(0, len(ranking) - offset))
    if len(page) != expected:
        problems.append(f"{len(page)} hits, expected {expected} ({len(ranking)} candidates, offset {offset})")
    by_id = {s.memory.id: s for s in ranking}
    seen: set[str] = set()
    chosen: list[Scored] = []
    for position, (memory_id, score, distance) in enumerate(page):
        model = by_id.get(memory_id)
        if model is None:
            problems.append(f"hit {position} ({memory_id}) is no candidate")
            continue
        if memory_id in seen:
            problems.append(f"hit {position} ({memory_id}) is returned twice")
        seen.add(memory_id)
        chosen.append(model)
        if abs(score - model.score) > score_tolerance:
            problems.append(f"hit {position} ({memory_id}) scores {score}, expected {model.score}")
        if abs(distance - model.distance) > distance_tolerance:
            problems.append(
                f"hit {position} ({memory_id}) is at distance {distance}, expected {model.distance}"
            )
        tolerances = (score_tolerance, distance_tolerance)
        above = sum(1 for other in ranking if _clearly_before(other, model, *tolerances))
        below = sum(1 for other in ranking if _clearly_before(model, other, *tolerances))
        rank = offset + position
        lowest = len(ranking) - 1 - below
        if not above <= rank <= lowest:
            problems.append(f"hit {position} ({memory_id}) is at rank {rank}, allowed {above}..{lowest}")
    for i, first in enumerate(chosen):
        for second in chosen[i + 1 :]:
            if _clearly_before(second, first, score_tolerance, distance_tolerance):
                problems.append(f"{second.memory.id} must rank above {first.memory.id}")
    return problems
