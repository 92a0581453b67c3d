"""Store configuration: small, frozen, validated dataclasses. Nothing here does I/O.

The defaults are chosen by measurement on LoCoMo (see ``benchmarks/README.md``):

* **No default distance gate.** A fixed cosine-distance gate of 0.33 drops LoCoMo evidence recall@10
  from 45% to 8% with all-MiniLM-L6-v2 and returns nothing for 71% of answerable questions, so
  ``threshold`` is ``None`` unless you set it; when a threshold empties a recall the result carries the
  nearest miss (:attr:`RecallResult.nearest_miss`) so the gate can be tuned.
* **Recency is a tie-breaker, not a filter.** With real conversation timestamps spread over months,
  betterdb's 0.6/0.25/0.15 weights with a 7-day half-life drop LoCoMo recall@10 by 19 points (dense) and
  4 points (hybrid). The defaults (similarity 0.83, recency 0.02, importance 0.15, half-life 7 days) cost
  0.2 points of hybrid and 0.4 of dense recall@10, while a newer near-equal memory still ranks first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timezone, tzinfo
from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentmem_core.errors import ConfigurationError

__all__ = [
    "DAY",
    "IndexConfig",
    "Kind",
    "RetryPolicy",
    "ScoringConfig",
    "ScoringWeights",
    "StoreConfig",
]

DAY = 86_400.0
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,48}")  # always fullmatch ("$" matches before a trailing "\n")


class Kind(str, Enum):
    """What a memory is. Each kind has its own default TTL (:attr:`StoreConfig.ttl_by_kind`)."""

    EPISODIC = "episodic"
    """Something that happened (an event, a conversation turn). Expires after 7 days by default."""
    SEMANTIC = "semantic"
    """A fact or preference. Kept until forgotten by default."""
    PROCEDURAL = "procedural"
    """How to do something (instructions, learned procedures)."""
    SUMMARY = "summary"
    """A consolidated summary of other memories."""

    @classmethod
    def parse(cls, value: Kind | str) -> Kind:
        """Return the :class:`Kind` for ``value``.

        Raises:
            InvalidMemoryError: for an unknown kind.
        """
        from agentmem_core.errors import InvalidMemoryError

        if isinstance(value, Kind):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            known = ", ".join(k.value for k in cls)
            raise InvalidMemoryError(f"unknown memory kind {value!r}; expected one of: {known}") from None


@dataclass(frozen=True)
class ScoringWeights:
    """Weights of the composite recall score ``w_s·similarity + w_r·recency + w_i·importance``.

    Each component is in ``[0, 1]``; the weights must be non-negative and not all zero. They are not
    required to sum to 1 (the score is divided by their sum, so it stays in ``[0, 1]``).

    ``time`` weighs how well a memory's ``created_at`` fits the dates a text query names ("in May 2023",
    "last week"); it joins the sum only for such a query (``0`` turns time-aware recall off).
    """

    similarity: float = 0.83
    recency: float = 0.02
    importance: float = 0.15
    time: float = 0.5

    def __post_init__(self) -> None:
        for name in ("similarity", "recency", "importance", "time"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"weight {name} must be a finite number >= 0, got {value!r}")
        if self.similarity + self.recency + self.importance <= 0:
            raise ConfigurationError("at least one scoring weight must be > 0")

    @property
    def total(self) -> float:
        """The sum of the weights."""
        return self.similarity + self.recency + self.importance


@dataclass(frozen=True)
class ScoringConfig:
    """How recall ranks candidates.

    Attributes:
        weights: the composite weights.
        half_life_seconds: recency halves every this many seconds since the memory was last accessed
            (or created, if never recalled).
        time_zone: the IANA zone in which a query's dates are read ("on 7 July" is that day there).
    """

    weights: ScoringWeights = field(default_factory=ScoringWeights)
    half_life_seconds: float = 7 * DAY
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        hl = self.half_life_seconds
        if isinstance(hl, bool) or not isinstance(hl, (int, float)) or not math.isfinite(hl) or hl <= 0:
            raise ConfigurationError(f"half_life_seconds must be > 0, got {self.half_life_seconds!r}")
        self.tz  # noqa: B018 -- validates the zone name now, not at the first recall

    @property
    def tz(self) -> tzinfo:
        """The :attr:`time_zone` as a ``tzinfo``."""
        if self.time_zone == "UTC":
            return timezone.utc
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"time_zone must be an IANA zone name, got {self.time_zone!r}") from exc


@dataclass(frozen=True)
class IndexConfig:
    """The vector index. Only the portable subset of FT.CREATE options is exposed.

    Attributes:
        dims: vector dimension (1..32767, the portable range).
        algorithm: ``HNSW`` (approximate, fast) or ``FLAT`` (exact); ``None`` (the default):
            ``default_algorithm`` when ``setup()`` creates the index, and an existing index's own
            algorithm otherwise (so stores of several adapters can share one index). A value given must
            be the existing index's (``setup()`` raises ``SchemaMismatchError`` otherwise: an exact store
            never searches an approximate index unknowingly). The embedded (SQLite) backend always
            searches exactly, whatever this says.
        default_algorithm: what ``setup()`` creates when ``algorithm`` is ``None``.
        m: HNSW graph degree (2..512).
        ef_construction: HNSW build-time beam (1..4096).
        ef_runtime: HNSW query-time beam (1..4096); ``None`` uses ``max(k, 64)`` per query. Sent only
            when the index is known to be HNSW (``algorithm="HNSW"``, or found or made by ``setup()``): a
            store used before ``setup()`` searches with the engine's own beam.
    """

    dims: int
    algorithm: Literal["HNSW", "FLAT"] | None = None
    default_algorithm: Literal["HNSW", "FLAT"] = "HNSW"
    m: int = 16
    ef_construction: int = 200
    ef_runtime: int | None = None

    @property
    def created_algorithm(self) -> Literal["HNSW", "FLAT"]:
        """The algorithm an index made from this config has (``algorithm``, else ``default_algorithm``)."""
        return self.algorithm or self.default_algorithm

    def __post_init__(self) -> None:
        if not isinstance(self.dims, int) or not 1 <= self.dims <= 32767:
            raise ConfigurationError(f"dims must be an int in 1..32767, got {self.dims!r}")
        if self.algorithm not in ("HNSW", "FLAT", None):
            raise ConfigurationError(f"algorithm must be 'HNSW', 'FLAT' or None, got {self.algorithm!r}")
        if self.default_algorithm not in ("HNSW", "FLAT"):
            raise ConfigurationError(
                f"default_algorithm must be 'HNSW' or 'FLAT', got {self.default_algorithm!r}"
            )
        if not 2 <= self.m <= 512:
            raise ConfigurationError(f"m must be in 2..512, got {self.m!r}")
        if not 1 <= self.ef_construction <= 4096:
            raise ConfigurationError(f"ef_construction must be in 1..4096, got {self.ef_construction!r}")
        if self.ef_runtime is not None and not 1 <= self.ef_runtime <= 4096:
            raise ConfigurationError(f"ef_runtime must be in 1..4096, got {self.ef_runtime!r}")


def _default_ttls() -> Mapping[Kind, float | None]:
    return {Kind.EPISODIC: 7 * DAY, Kind.SEMANTIC: None, Kind.PROCEDURAL: None, Kind.SUMMARY: None}


@dataclass(frozen=True)
class RetryPolicy:
    """How a store retries a call the server could not serve (the Valkey backend).

    Retried, with exponential backoff and full jitter: a connection that could not be opened (nothing was
    sent), a server refusing for now (``LOADING``, ``TRYAGAIN``, ``CLUSTERDOWN``, ``MASTERDOWN``,
    ``READONLY`` after a failover, ``BUSY``: nothing was applied), and a connection lost or timed out
    mid-call when every operation of the batch is safe to send twice. Safe to send twice: reads, writes
    of a client-chosen id (a replayed write replaces the memory with itself), updates, forgets, TTL
    refreshes, bookkeeping sets; a reinforced fetch is sent again as a plain read (a recall's access is
    then counted at most once, never twice); an audit entry is sent again (at least once). Not sent
    again: a near-duplicate merge (it counts the duplicate): its call raises
    :class:`~agentmem_core.errors.WriteOutcomeUnknownError`. Logical errors are never retried.

    Attributes:
        retries: how many times a call is retried after its first try (``0``: never).
        backoff: the base delay in seconds: retry ``k`` (from 0) waits between half and all of
            ``backoff * 2**k``, at most ``max_backoff``.
        max_backoff: the longest single wait in seconds.
        follow_primary: on ``READONLY`` (the server became a replica, as after ``FAILOVER``), ask it for
            its primary (``ROLE``) and send there from then on (standalone clients; a cluster client
            follows ``MOVED`` by itself).
    """

    retries: int = 3
    backoff: float = 0.05
    max_backoff: float = 2.0
    follow_primary: bool = True

    def __post_init__(self) -> None:
        retries = self.retries
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise ConfigurationError("retries must be an int in 0..100")
        for label, value in (("backoff", self.backoff), ("max_backoff", self.max_backoff)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and 0 <= value <= 600)
            ):
                raise ConfigurationError(f"{label} must be a number of seconds in [0, 600]")
        if self.max_backoff < self.backoff:
            raise ConfigurationError("max_backoff must be >= backoff")
        if not isinstance(self.follow_primary, bool):
            raise ConfigurationError("follow_primary must be True or False")

    def delay(self, attempt: int, unit: float) -> float:
        """The wait before retry ``attempt`` (from 0), given ``unit`` drawn uniformly from [0, 1)."""
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * unit)


@dataclass(frozen=True)
class StoreConfig:
    """Everything a memory store needs besides its connection and embedder.

    Attributes:
        name: the store name; it namespaces every key (``am:<name>:``) and the index (``am_<name>_v2``).
        index: vector index settings.
        scoring: composite-score settings (live-reloadable).
        threshold: maximum cosine distance of a recall hit (``0..2``); ``None`` (default) keeps every hit.
        ttl_by_kind: default TTL in seconds per kind (``None``: never expires). ``remember(ttl=...)``
            overrides it per memory.
        max_items_per_scope: capacity per scope (namespace, thread, agent, user); the lowest
            ``importance + recency`` memories are evicted beyond it. ``None``: unlimited.
        dedup_threshold: opt-in write-time dedup: a new memory within this cosine distance of an existing
            one in the same scope bumps that one instead of inserting. ``None``: off.
        candidate_multiplier: recall ranks ``k × candidate_multiplier`` nearest neighbours by the
            composite score before cutting to ``k``.
        max_content_chars: longest accepted content.
        max_metadata_bytes: largest accepted metadata (JSON-encoded).
        max_tags: most tags per memory.
        live_config_seconds: how often live config (threshold, weights, half-life, capacity) is re-read
            from Valkey; ``None`` disables live config.
        timeout_ms: FT.SEARCH ``TIMEOUT`` (1..60000).
        hybrid: add a lexical (BM25) channel to text recalls. BM25 is computed on the client over a
            portable TAG field of analysed terms, so it needs only filter-only queries (RediSearch,
            valkey-search >= 1.1); on older engines recall is vector-only.
        lexical_weight: share of the lexical channel in the fused relevance (``0..1``).
        hybrid_pool: candidates per channel in hybrid recall (at least ``k × candidate_multiplier``).
        lexical_term_pool: a query term held by at most this many memories under the recall's filter is
            enumerated (its memories are lexical candidates); a more common one is only counted (its
            BM25 weight still scores every candidate). See ``agentmem_core._lexical``.
        numeric_fields: top-level metadata keys whose numeric values the index keeps in NUMERIC fields,
            so ``$gt $gte $lt $lte`` on them run inside the search (a range matching 1% of a scope
            costs about what an unfiltered recall does) instead of on the client. Declare them before
            the index is created: ``setup()`` refuses an existing index that lacks one.
        audit: keep the audit trail: every remember, update, forget, eviction, supersession, retraction,
            consolidation and import appends an entry to a capped per-store log (``MemoryStore.audit``;
            a Valkey stream, a table on the embedded backend). Costs one pipelined command per write.
        audit_max_entries: how many entries the log keeps (the oldest go first; on Valkey the cap is
            approximate, trimmed by whole stream nodes).
        actor: who this store writes as, recorded in audit entries (an agent or service name).
        rerank_depth: how many of a text recall's best candidates a store's reranker scores (at least
            the page); only with ``reranker=`` on the store.
        query_cache_size: query embeddings kept per store (an LRU by exact query text), so a recall
            repeating a query makes no embedding call; ``0`` turns it off. ``store.query_cache_stats()``
            reports hits and misses.
        retry: how calls the server could not serve are retried (:class:`RetryPolicy`).
    """

    name: str
    index: IndexConfig
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    threshold: float | None = None
    ttl_by_kind: Mapping[Kind, float | None] = field(default_factory=_default_ttls)
    max_items_per_scope: int | None = None
    dedup_threshold: float | None = None
    candidate_multiplier: int = 2
    max_content_chars: int = 32_768
    max_metadata_bytes: int = 32_768
    max_tags: int = 64
    live_config_seconds: float | None = 5.0
    timeout_ms: int = 10_000
    hybrid: bool = True
    lexical_weight: float = 0.6
    hybrid_pool: int = 50
    lexical_term_pool: int = 20
    numeric_fields: tuple[str, ...] = ()
    audit: bool = True
    audit_max_entries: int = 100_000
    actor: str | None = None
    query_cache_size: int = 1024
    rerank_depth: int = 20
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise ConfigurationError(
                f"store name must match [A-Za-z0-9_-]{{1,48}} (it becomes part of keys), got {self.name!r}"
            )
        for label, value in (("threshold", self.threshold), ("dedup_threshold", self.dedup_threshold)):
            if value is not None and not (math.isfinite(value) and 0 <= value <= 2):
                raise ConfigurationError(f"{label} is a cosine distance in [0, 2], got {value!r}")
        if self.max_items_per_scope is not None and self.max_items_per_scope < 1:
            raise ConfigurationError("max_items_per_scope must be >= 1 or None")
        if not 1 <= self.candidate_multiplier <= 50:
            raise ConfigurationError("candidate_multiplier must be in 1..50")
        if not 1 <= self.timeout_ms <= 60_000:
            raise ConfigurationError("timeout_ms must be in 1..60000 (the portable TIMEOUT range)")
        if not (math.isfinite(self.lexical_weight) and 0 <= self.lexical_weight <= 1):
            raise ConfigurationError("lexical_weight must be in [0, 1]")
        rd = self.rerank_depth
        if isinstance(rd, bool) or not isinstance(rd, int) or not 1 <= rd <= 10_000:
            raise ConfigurationError(f"rerank_depth must be an int in 1..10000, got {rd!r}")
        if not 1 <= self.hybrid_pool <= 10_000:
            raise ConfigurationError("hybrid_pool must be in 1..10000")
        if not 1 <= self.lexical_term_pool <= 10_000:
            raise ConfigurationError("lexical_term_pool must be in 1..10000")
        if self.live_config_seconds is not None and self.live_config_seconds < 0:
            raise ConfigurationError("live_config_seconds must be >= 0 or None")
        numeric = self.numeric_fields
        if isinstance(numeric, str) or not isinstance(numeric, (tuple, list)):
            raise ConfigurationError("numeric_fields must be a tuple of metadata keys")
        if len(numeric) > 16 or any(not isinstance(k, str) or not k or len(k) > 256 for k in numeric):
            raise ConfigurationError("numeric_fields takes at most 16 non-empty metadata keys (<= 256 chars)")
        if len(set(numeric)) != len(numeric):
            raise ConfigurationError("numeric_fields lists a key twice")
        object.__setattr__(self, "numeric_fields", tuple(numeric))
        if not isinstance(self.audit, bool):
            raise ConfigurationError("audit must be True or False")
        if (
            isinstance(self.audit_max_entries, bool)
            or not isinstance(self.audit_max_entries, int)
            or not (1 <= self.audit_max_entries <= 100_000_000)
        ):
            raise ConfigurationError("audit_max_entries must be an int in 1..100000000")
        if self.actor is not None and (
            not isinstance(self.actor, str)
            or not 1 <= len(self.actor) <= 256
            or any(ord(c) < 32 or ord(c) == 127 for c in self.actor)
        ):
            raise ConfigurationError("actor must be 1..256 printable characters or None")
        if (
            isinstance(self.query_cache_size, bool)
            or not isinstance(self.query_cache_size, int)
            or not (0 <= self.query_cache_size <= 1_000_000)
        ):
            raise ConfigurationError("query_cache_size must be an int in 0..1000000")
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError("retry must be a RetryPolicy")
        ttls = {Kind.parse(k): v for k, v in self.ttl_by_kind.items()}
        for kind, ttl in ttls.items():
            if ttl is not None and not (math.isfinite(ttl) and ttl > 0):
                raise ConfigurationError(f"ttl for {kind.value} must be > 0 seconds or None")
        object.__setattr__(self, "ttl_by_kind", {**_default_ttls(), **ttls})

    def with_live(self, live: LiveSettings) -> StoreConfig:
        """Return the config with live overrides applied."""
        return replace(
            self,
            scoring=live.scoring if live.scoring is not None else self.scoring,
            threshold=live.threshold if live.has_threshold else self.threshold,
            max_items_per_scope=(live.max_items_per_scope if live.has_capacity else self.max_items_per_scope),
        )


@dataclass(frozen=True)
class LiveSettings:
    """Overrides read from the store's live-config hash (see ``MemoryStore.set_live_config``)."""

    scoring: ScoringConfig | None = None
    threshold: float | None = None
    has_threshold: bool = False
    max_items_per_scope: int | None = None
    has_capacity: bool = False
