"""Result types returned by the store. All are immutable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agentmem_core.config import Kind

__all__ = [
    "Facets",
    "Health",
    "Memory",
    "NearMiss",
    "Page",
    "RecallHit",
    "RecallResult",
    "ScopeStats",
    "ScoreBreakdown",
    "Stats",
]


@dataclass(frozen=True)
class Memory:
    """One stored memory.

    Attributes:
        id: opaque id (32 hex characters; the first 16 identify the scope).
        content: the remembered text.
        kind: what the memory is.
        importance: caller-assigned importance in ``[0, 1]``.
        tags: caller tags (as given).
        namespace: hierarchical namespace path (``()`` when none).
        thread_id: conversation / session scope, if any.
        agent_id: agent scope, if any.
        user_id: user scope, if any.
        source: who wrote it (e.g. an agent role), if any.
        key: the caller's stable key for upserts, if one was given.
        metadata: caller JSON metadata.
        created_at: when it happened (Unix seconds; may be back-dated by the caller).
        updated_at: last write (Unix seconds).
        expires_at: when it expires (Unix seconds), or ``None``.
        access_count: how many recalls returned it with reinforcement on; ``None`` from a read that skipped
            the counters (``counters=False``).
        last_accessed_at: last reinforced recall (``created_at`` if never); ``None`` from a read that
            skipped the counters.
        duplicate_count: how many near-duplicate writes were merged into it; ``None`` from a read that
            skipped the counters.
        sequence: its place in its scope's write order (increasing per write; a re-put key keeps its
            place): ``list`` breaks ``created_at`` ties by it, so a chat history keeps its exact order.
        embedded: whether its content was embedded (``False``: listed and filtered, never recalled).
        ttl: the lifetime in seconds it was (last) given, or ``None``; reads with ``refresh_ttl=True``
            restart it from the read.
        vector: its stored embedding (unit length, float32 precision), only from reads that ask for it
            (``get(..., with_vector=True)``); ``None`` otherwise and for memories that are not embedded.
            With several vectors (``remember(texts=...)``) it is the first.
        vectors: every stored embedding, in the order of the texts they embed, from the same reads as
            ``vector`` (one for a memory of its content); ``None`` when ``vector`` is.
        subject: a fact's normalised subject (``remember(..., subject=...)``), ``None`` for other memories.
            A fact holds from its ``created_at`` (when it was stated).
        valid_until: when a fact stopped holding: a newer statement of its subject superseded it, or it was
            retracted; ``None`` while it is current (and for memories that are no fact).
        superseded_by: the id of the fact that superseded it (``None`` while current, or when retracted).
        derived_from: the ids of the memories a fact was distilled from (``consolidate_facts``); recall
            returns the fact in their place when both would be hits.
    """

    id: str
    content: str
    kind: Kind
    importance: float
    tags: tuple[str, ...]
    namespace: tuple[str, ...]
    thread_id: str | None
    agent_id: str | None
    user_id: str | None
    source: str | None
    key: str | None
    metadata: Mapping[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None
    access_count: int | None = 0
    last_accessed_at: float | None = None
    duplicate_count: int | None = 0
    sequence: int = 0
    embedded: bool = True
    ttl: float | None = None
    vector: tuple[float, ...] | None = None
    vectors: tuple[tuple[float, ...], ...] | None = None
    subject: str | None = None
    valid_until: float | None = None
    superseded_by: str | None = None
    derived_from: tuple[str, ...] = ()

    @property
    def current(self) -> bool:
        """Whether it holds now: ``False`` only for a fact that was superseded or retracted."""
        return self.valid_until is None


_T = TypeVar("_T")


def build_frozen(cls: type[_T], **values: Any) -> _T:
    """``cls(**values)`` for a frozen dataclass given every field, without its ``__init__``.

    A frozen dataclass ``__init__`` pays one ``object.__setattr__`` per field (a third of decoding a recall
    hit); the instance built here is the same value and just as immutable. Internal: the caller passes
    every field (a unit test checks the decoders do).
    """
    return frozen_from(cls, values)


def frozen_from(cls: type[_T], values: dict[str, Any]) -> _T:
    """:func:`build_frozen` from a dict of every field (a decoder's dict literal, without a keyword call)."""
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


@dataclass(frozen=True)
class ScoreBreakdown:
    """How a recall hit was ranked (every component is higher-is-better, in ``[0, 1]``).

    Attributes:
        similarity: ``1 - distance / 2`` (cosine distance mapped to ``[0, 1]``).
        recency: ``0.5 ** (seconds since last access / half_life)``.
        importance: the memory's importance.
        score: the weighted composite (what hits are sorted by, unless a reranker reordered them):
            ``(w_s·relevance + w_r·recency + w_i·importance) / (w_s + w_r + w_i)``.
        relevance: how well the memory matches the query: ``similarity`` in vector-only recall; in hybrid
            recall, the fusion of the vector and lexical channels (each min-max scaled over its candidates).
        lexical: the scaled lexical (BM25) match in hybrid recall; ``0`` otherwise.
        time: how well the memory's ``created_at`` fits the dates a text query names (1 inside them,
            decaying outside); ``None`` when the query names none. With a value, the score's sum also
            weighs it: ``(... + w_t·time) / (w_s + w_r + w_i + w_t)``.
        rerank: the store's reranker's score (higher is better; its own scale) when one reordered the
            recall: hits are then in this order, and ``score`` is the composite they had before it.
    """

    similarity: float
    recency: float
    importance: float
    score: float
    relevance: float
    lexical: float = 0.0
    time: float | None = None
    rerank: float | None = None


@dataclass(frozen=True)
class RecallHit:
    """A recalled memory with its cosine ``distance`` (lower is closer) and score breakdown."""

    memory: Memory
    distance: float
    scores: ScoreBreakdown

    @property
    def score(self) -> float:
        """The composite score (higher is better)."""
        return self.scores.score


@dataclass(frozen=True)
class NearMiss:
    """The closest candidate a configured ``threshold`` rejected (diagnostic for tuning the gate)."""

    memory_id: str
    distance: float
    threshold: float


@dataclass(frozen=True)
class RecallResult:
    """Hits of one recall, best first. Iterable and sized like a list of :class:`RecallHit`.

    Attributes:
        hits: the hits.
        nearest_miss: set when a threshold rejected every candidate.
    """

    hits: tuple[RecallHit, ...]
    nearest_miss: NearMiss | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, index: int) -> RecallHit:
        return self.hits[index]

    @property
    def memories(self) -> list[Memory]:
        """Just the memories, best first."""
        return [h.memory for h in self.hits]


@dataclass(frozen=True)
class Page:
    """One page of :meth:`MemoryStore.list` (newest first).

    Attributes:
        memories: the page.
        next_cursor: pass to ``list(cursor=...)`` for the next page; ``None`` at the end.
    """

    memories: tuple[Memory, ...]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ScopeStats:
    """Counts of one scope."""

    namespace: tuple[str, ...]
    thread_id: str | None
    agent_id: str | None
    user_id: str | None
    total: int
    by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    """Counts per scope and kind."""

    total: int
    by_kind: Mapping[str, int]
    scopes: tuple[ScopeStats, ...]


@dataclass(frozen=True)
class Facets:
    """What the memories a filter matches hold (``MemoryStore.facets``): CrewAI's scope info and categories.

    Attributes:
        total: how many memories match.
        by_tag: how many carry each tag, most frequent first (ties by tag).
        by_kind: how many there are of each kind.
        oldest: the earliest ``created_at`` among them (``None`` when there are none).
        newest: the latest ``created_at`` among them.
    """

    total: int
    by_tag: Mapping[str, int]
    by_kind: Mapping[str, int]
    oldest: float | None
    newest: float | None


@dataclass(frozen=True)
class Health:
    """What ``MemoryStore.health()`` found: whether the store can serve calls now, and why not.

    Attributes:
        ok: the backend answered, the index exists and serves every document (``error`` is ``None``).
        backend: ``"valkey"`` or ``"sqlite"``.
        latency_ms: how long the check took, retries included.
        index: the store's index exists (``False`` before ``setup()``, or after it was dropped).
        ready: the index serves every document (``False`` while it backfills: searches see a subset).
        documents: how many documents the index holds (on a cluster, the node asked), when known.
        indexing_failures: records the index could not take (a schema or data problem to look into).
        error: the typed error when the backend could not be reached or refused the check, else ``None``.
    """

    ok: bool
    backend: str
    latency_ms: float
    index: bool
    ready: bool
    documents: int | None = None
    indexing_failures: int = 0
    error: Exception | None = None
