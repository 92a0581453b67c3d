"""What the sync and async stores share: configuration, context, and one flow builder per operation.

Public methods of :class:`~agentmem_core.store.MemoryStore` and :class:`~agentmem_core.aio.AsyncMemoryStore`
are one-liners over these builders, so every decision exists once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from agentmem_core._context import CommonTerms, Context, ScopeCache
from agentmem_core._encoding import Keys, ScopeKey
from agentmem_core._flows_admin import SetupResult, live_config_op, refresh_live_flow
from agentmem_core._flows_consolidate import ConsolidationResult, consolidate_flow, selection
from agentmem_core._flows_distil import FactsResult, consolidate_facts_flow
from agentmem_core._flows_facts import history_flow, remember_facts_flow, retract_flow
from agentmem_core._flows_list import Order, list_flow
from agentmem_core._flows_namespaces import list_namespaces_flow
from agentmem_core._flows_read import (
    count_flow,
    facets_flow,
    get_by_key_flow,
    get_many_by_key_flow,
    get_many_flow,
    health_flow,
    keyed_ids,
    scopes_flow,
    stats_flow,
)
from agentmem_core._flows_recall import recall_flow
from agentmem_core._flows_transfer import ImportResult, RecordSink, export_flow, import_flow, record_sink
from agentmem_core._flows_update import update_flow, update_many_flow
from agentmem_core._flows_write import (
    forget_by_scope_flow,
    forget_each_flow,
    forget_flow,
    move_flow,
    touch_flow,
)
from agentmem_core._knn_plan import KnnPlanner
from agentmem_core._plan import Embed, Flow, batch, expect
from agentmem_core._query_cache import QueryCache, QueryCacheStats
from agentmem_core._records import MemoryInput, check_importance, scope_of
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import (
    IndexConfig,
    Kind,
    LiveSettings,
    RetryPolicy,
    ScoringConfig,
    ScoringWeights,
    StoreConfig,
)
from agentmem_core.connection import is_cluster
from agentmem_core.consolidation.providers import extractor_from, summarizer_from
from agentmem_core.embeddings import CallableEmbedder, EmbedderLike, ensure_embedder
from agentmem_core.engine import PORTABLE, EngineInfo
from agentmem_core.errors import (
    AgentMemError,
    ConfigurationError,
    EmbeddingError,
    InvalidMemoryError,
    SchemaMismatchError,
)
from agentmem_core.ops import Probed, Setup
from agentmem_core.query import MemoryFilter
from agentmem_core.redaction import Redactor, redact_input, redact_metadata, redact_text
from agentmem_core.rerank import AsyncRerankFn, CallableReranker, Reranker, RerankFn, ensure_reranker
from agentmem_core.schema import IndexSpec
from agentmem_core.telemetry import NoopTelemetry, Telemetry
from agentmem_core.types import Facets, Health, Memory, Page, RecallResult, Stats

__all__ = ["StoreBase"]

# The text embedded once by setup() to learn the dimension of an embedding function given without dims=.
_PROBE_TEXT = "agentmem dimension probe"


def _is_backend(candidate: Any) -> bool:
    """Whether ``candidate`` is a storage backend (``execute`` / ``aexecute``) rather than a valkey client."""
    if hasattr(candidate, "get_connection_kwargs"):
        return False
    return callable(getattr(candidate, "execute", None)) or callable(getattr(candidate, "aexecute", None))


def _check_client(client: Any) -> None:
    # Every valkey-py client, standalone or cluster, sync or async, answers get_connection_kwargs(); a
    # cluster client has no connection_pool, so reading the pool would let a cluster slip through.
    getter = getattr(client, "get_connection_kwargs", None)
    if getter is None:
        raise ConfigurationError(
            f"expected a valkey-py client (valkey.Valkey, valkey.ValkeyCluster or their asyncio twins), "
            f"got {type(client).__name__}"
        )
    kwargs: Mapping[str, Any] = getter() or {}
    if kwargs.get("decode_responses"):
        raise ConfigurationError("pass a client with decode_responses=False (vectors are binary)")
    if str(kwargs.get("protocol", 2)) not in ("2", "None"):
        raise ConfigurationError("pass a client with protocol=2 (RESP2): FT.* replies differ under RESP3")


class StoreBase:
    """Shared state and flow builders. Not used directly."""

    _embeds_async: ClassVar[bool] = False
    """Whether the store's driver awaits ``aembed`` (else it calls ``embed``, so it needs a sync function)."""

    def __init__(
        self,
        client: Any,
        *,
        name: str,
        embedder: EmbedderLike,
        dims: int | None = None,
        config: StoreConfig | None = None,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.time,
        owns_client: bool = False,
        redact: Redactor | None = None,
        reranker: Reranker | RerankFn | AsyncRerankFn | None = None,
        **options: Any,
    ) -> None:
        """Create a store. No I/O happens here (the embedder is not called either): call ``setup()`` once.

        Args:
            client: a valkey client (RESP2, ``decode_responses=False``), or a storage backend
                (``agentmem_core.backends``; ``from_url("sqlite:///...")`` builds the embedded one).
            name: the store name (prefixes every key; see :class:`StoreConfig`).
            embedder: an :class:`~agentmem_core.embeddings.Embedder` (its ``dims`` sizes the index), or a
                batch function ``(texts: list[str]) -> vectors`` returning a list of lists or a 2-D numpy
                array, sync or async (async only for the async store; the async store runs a sync one in
                a worker thread). A function's dimension is ``dims``, or else is found by ``setup()``
                with one embedding call; until then every operation raises ``ConfigurationError``.
            dims: the vector dimension (optional; must agree with the embedder's and ``index``'s). With
                a function it skips the probe, and every embedding is checked against it.
            config: a full :class:`StoreConfig`; or give its fields as keyword ``options``.
            telemetry: spans/metrics hooks (default: none).
            clock: the time source (tests inject one).
            owns_client: close the client (or backend) in ``close()``.
            redact: a PII redaction callback ``(text) -> text`` applied before anything is embedded or
                stored: content, ``texts``, metadata string values, ``update`` changes and recall queries
                (see :mod:`agentmem_core.redaction`; :class:`~agentmem_core.redaction.PatternRedactor` is a
                ready-made one). Its failures raise ``RedactionError`` and nothing is written.
            reranker: reorders the ``rerank_depth`` best candidates of every text recall: a
                :class:`~agentmem_core.rerank.Reranker` (``CrossEncoderReranker`` runs a local
                cross-encoder) or a function ``(query, texts) -> scores``, higher is better (async only
                for the async store). Off by default; its failures raise ``ModelError``.
            **options: :class:`StoreConfig` fields (``threshold=...``, ``max_items_per_scope=...``), plus
                ``weights`` / ``half_life_seconds`` shortcuts.

        Raises:
            ConfigurationError: invalid configuration or client settings, dimensions that disagree, or an
                async function for the sync store.
        """
        backend = client if _is_backend(client) else None
        if backend is None:
            _check_client(client)
        if redact is not None and not callable(redact):
            raise ConfigurationError(f"redact must be a callable (text) -> text, got {type(redact).__name__}")
        self._redact = redact
        if config is not None and options:
            raise ConfigurationError("pass either config= or individual options, not both")
        index = config.index if config is not None else options.pop("index", None)
        if index is not None and not isinstance(index, IndexConfig):
            raise ConfigurationError(f"index must be an IndexConfig, got {type(index).__name__}")
        if dims is not None:
            if isinstance(dims, bool) or not isinstance(dims, int):
                raise ConfigurationError(f"dims must be an integer, got {dims!r}")
            if index is None:
                index = IndexConfig(dims=dims)
            elif index.dims != dims:
                raise ConfigurationError(f"dims={dims} differs from the index config's dims {index.dims}")
        embedder = ensure_embedder(
            embedder, dims=None if index is None else index.dims, sync=not self._embeds_async
        )
        embedder_dims = embedder.known_dims if isinstance(embedder, CallableEmbedder) else embedder.dims
        if index is None and embedder_dims is not None:
            index = IndexConfig(dims=embedder_dims)
        if index is not None and embedder_dims is not None and index.dims != embedder_dims:
            raise ConfigurationError(
                f"index dims {index.dims} differ from the embedder's dims {embedder_dims}"
            )
        if config is None:
            weights = options.pop("weights", None)
            half_life = options.pop("half_life_seconds", None)
            scoring = options.pop("scoring", None) or ScoringConfig(
                weights=_weights(weights) if weights is not None else ScoringWeights(),
                half_life_seconds=half_life if half_life is not None else ScoringConfig().half_life_seconds,
            )
            try:
                # Dimension unknown (a function without dims=): validate every other field now against a
                # placeholder index, which setup() replaces once its probe has found the dimension.
                index_or_placeholder = index or IndexConfig(dims=1)
                config = StoreConfig(name=name, index=index_or_placeholder, scoring=scoring, **options)
            except TypeError as exc:
                raise ConfigurationError(str(exc)) from exc
        self.client = None if backend is not None else client
        """The valkey client (``None`` on another backend)."""
        self._given_backend = backend
        self.embedder = embedder
        # While the dimension is unknown, _config, _spec and _effective are None and _pending holds the
        # placeholder config; the config / spec / effective_config properties raise until setup().
        self._pending: StoreConfig | None = config if index is None else None
        self._config: StoreConfig | None = None if index is None else config
        self.keys = Keys(config.name)
        self._spec: IndexSpec | None = (
            None if index is None else IndexSpec(self.keys, config.index, config.numeric_fields)
        )
        self.telemetry = telemetry or NoopTelemetry()
        self.engine: EngineInfo = PORTABLE
        self._lexical = False
        self._clock = clock
        self._owns_client = owns_client
        self._live = LiveSettings()
        self._live_read_at: float | None = None
        self._effective: StoreConfig | None = self._config
        self._registered: set[str] = set()
        self._unusable: AgentMemError | None = None
        self._cluster = backend is None and is_cluster(client)
        self._translation: ValkeyOps | None = None
        self._queries = QueryCache(config.query_cache_size)
        self._knn_plan = KnnPlanner()
        self._scope_cache = ScopeCache()
        self._common_terms = CommonTerms()
        self._reranker = ensure_reranker(reranker)
        async_fn = isinstance(self._reranker, CallableReranker) and self._reranker.is_async
        if async_fn and not self._embeds_async:
            raise ConfigurationError("an async rerank function needs the async store (AsyncMemoryStore)")

    def _retry_policy(self) -> RetryPolicy:
        """The configured retry policy (known before setup: only the index dimension may be pending)."""
        config = self._config or self._pending
        assert config is not None
        return config.retry

    # -- context ---------------------------------------------------------------------------------------
    def _valkey_ops(self) -> ValkeyOps:
        """The Valkey translation of operations for the store as it is now.

        Built on first use and dropped whenever the spec, the engine or the effective config changes
        (setup, a live-config read), so a batch pays one attribute read for it.
        """
        cached = self._translation
        if cached is None:
            config = self.effective_config
            cached = ValkeyOps(self.keys, self.spec, self.engine, config.timeout_ms, self._cluster)
            self._translation = cached
        return cached

    def _context(self) -> Context:
        if self._unusable is not None:
            # A store whose index disagrees with its config must not write hashes that index cannot read.
            raise SchemaMismatchError(f"setup() failed, so this store is unusable: {self._unusable}") from (
                self._unusable
            )
        config = self.effective_config
        hnsw = self.spec is not None and self.spec.config.algorithm == "HNSW"  # known, not assumed
        planned = hnsw and self.engine.kind == "redisearch"
        return Context(
            self.keys, self.spec, config, self.engine, self._clock(), self._lexical, self._cluster,
            self._knn_plan if planned else None, self._reranker, self._scope_cache, self._common_terms,
        )  # fmt: skip

    def _live_due(self) -> bool:
        interval = self.config.live_config_seconds
        if interval is None:
            return False
        return self._live_read_at is None or time.monotonic() - self._live_read_at >= interval

    def _live_loaded(self, live: LiveSettings) -> None:
        if live != self._live:
            self._effective = self.config.with_live(live)
            self._translation = None
        self._live = live
        self._live_read_at = time.monotonic()

    def _refresh_flow(self) -> Flow[LiveSettings]:
        return refresh_live_flow(self.config)

    @property
    def effective_config(self) -> StoreConfig:
        """The configuration in force (static config plus the last live config read).

        Raises:
            ConfigurationError: the embedding dimension is not known yet (call ``setup()``).
        """
        if self._effective is None:
            raise self._dims_unknown()
        return self._effective

    # -- the embedding dimension -----------------------------------------------------------------------
    @property
    def config(self) -> StoreConfig:
        """The static configuration.

        Raises:
            ConfigurationError: the embedding dimension is not known yet (call ``setup()``).
        """
        if self._config is None:
            raise self._dims_unknown()
        return self._config

    @property
    def spec(self) -> IndexSpec:
        """The index spec.

        Raises:
            ConfigurationError: the embedding dimension is not known yet (call ``setup()``).
        """
        if self._spec is None:
            raise self._dims_unknown()
        return self._spec

    @spec.setter
    def spec(self, spec: IndexSpec) -> None:
        self._spec = spec
        self._translation = None

    def _dims_unknown(self) -> ConfigurationError:
        return ConfigurationError(
            f"store {self.keys.store!r} does not know its embedding dimension yet (the embedder is a "
            "function given without dims=): call setup() (or asetup()) first, which finds it with one "
            "embedding call"
        )

    def _probe_dims(self) -> Flow[None]:
        # One call with one text; CallableEmbedder checks the reply's shape and learns its dimension.
        yield Embed((_PROBE_TEXT,))
        if self._pending is None:  # a concurrent asetup() resolved it while this probe ran
            return
        assert isinstance(self.embedder, CallableEmbedder)  # the only embedder that can lack dims
        dims = self.embedder.known_dims
        if dims is None:  # only a misbehaving subclass gets here: the adapter requires one vector
            raise EmbeddingError("the embedding function returned no vector for the dimension probe")
        config = replace(self._pending, index=IndexConfig(dims=dims))
        self._config = self._effective = config
        self._spec = IndexSpec(self.keys, config.index, config.numeric_fields)
        self._translation = None
        self._pending = None

    # -- flow builders (one per public operation) ---------------------------------------------------------
    # Each is a generator, so nothing (not even the context's clock and live config) is read until the
    # driver starts it, after any live-config refresh.
    def _setup(self) -> Flow[EngineInfo]:
        if self._pending is not None:
            yield from self._probe_dims()
        try:
            (reply,) = yield batch([Setup(self.spec, self.config.hybrid)])
            result: SetupResult = expect(reply)
        except SchemaMismatchError as exc:  # incl. DimensionMismatchError
            self._unusable = exc
            raise
        self._unusable = None
        self.engine, self.spec, self._lexical = result.engine, result.spec, result.lexical
        self._translation = None
        return result.engine

    def query_cache_stats(self) -> QueryCacheStats:
        """Hits and misses of the query-embedding cache (``StoreConfig.query_cache_size``)."""
        return self._queries.stats()

    def now(self) -> float:
        """The store's time (Unix seconds): its injected ``clock``, else the real time.

        Adapters stamp what they write with it, so a clock given to the store moves them too.
        """
        return float(self._clock())

    @property
    def hybrid_enabled(self) -> bool:
        """Whether text recalls use the lexical (BM25) channel next to the vector channel."""
        return self._lexical

    def _remember(self, items: Sequence[MemoryInput], vectors: Any = None) -> Flow[list[str]]:
        if self._redact is not None:  # before validation, embedding and storage; raises before any I/O
            items = [redact_input(self._redact, item) for item in items]
        return (yield from remember_facts_flow(self._context(), items, vectors, self._registered))

    def _consolidate(
        self, summarizer: Any, args: Mapping[str, Any], *, delete_sources: bool, summary_importance: float,
        min_sources: int,
    ) -> Flow[ConsolidationResult]:  # fmt: skip
        ctx = self._context()
        where, chosen = selection(ctx.now, args)
        check_importance(summary_importance)
        if isinstance(min_sources, bool) or not isinstance(min_sources, int) or min_sources < 1:
            raise InvalidMemoryError(f"min_sources must be a positive integer, got {min_sources!r}")
        if not isinstance(delete_sources, bool):
            raise InvalidMemoryError(f"delete_sources must be True or False, got {delete_sources!r}")
        return (
            yield from consolidate_flow(
                ctx,
                summarizer_from(summarizer),
                chosen,
                where,
                delete_sources=delete_sources,
                summary_importance=summary_importance,
                min_sources=min_sources,
                registered=self._registered,
            )  # fmt: skip
        )

    def _consolidate_facts(
        self, extractor: Any, args: Mapping[str, Any], *, fact_importance: float, delete_sources: bool,
        reprocess: bool,
    ) -> Flow[FactsResult]:  # fmt: skip
        ctx = self._context()
        where, chosen = selection(ctx.now, args)
        check_importance(fact_importance)
        for label, flag in (("delete_sources", delete_sources), ("reprocess", reprocess)):
            if not isinstance(flag, bool):
                raise InvalidMemoryError(f"{label} must be True or False, got {flag!r}")
        return (
            yield from consolidate_facts_flow(
                ctx,
                extractor_from(extractor),
                chosen,
                where,
                fact_importance=fact_importance,
                delete_sources=delete_sources,
                reprocess=reprocess,
                registered=self._registered,
            )  # fmt: skip
        )

    def _retract(self, subject: str, scope: ScopeKey, at: float | None) -> Flow[str | None]:
        return (yield from retract_flow(self._context(), scope, subject, at))

    def _history(self, subject: str, scope: ScopeKey) -> Flow[list[Memory]]:
        return (yield from history_flow(self._context(), scope, subject))

    def _recall(
        self,
        query: str | Sequence[float] | np.ndarray,
        *,
        k: int,
        threshold: float | None | _Default,
        weights: ScoringWeights | Mapping[str, float] | None,
        half_life_seconds: float | None,
        reinforce: bool,
        flt: MemoryFilter,
        offset: int = 0,
        refresh_ttl: bool = False,
        rerank: bool = True,
        counters: bool = True,
    ) -> Flow[RecallResult]:
        if self._redact is not None and isinstance(query, str):  # redacted alike the memories it finds
            query = redact_text(self._redact, query, "query")
        if not isinstance(rerank, bool):
            raise InvalidMemoryError(f"rerank must be True or False, got {rerank!r}")
        _check_counters(counters)
        ctx = self._context()
        if not rerank and ctx.reranker is not None:  # this call ranks by the composite alone
            ctx = replace(ctx, reranker=None)
        scoring = ctx.config.scoring
        if weights is not None or half_life_seconds is not None:
            try:
                scoring = replace(
                    scoring,
                    weights=_weights(weights) if weights is not None else scoring.weights,
                    half_life_seconds=(
                        scoring.half_life_seconds if half_life_seconds is None else half_life_seconds
                    ),
                )
            except ConfigurationError as exc:  # a per-call argument: bad input, not bad configuration
                raise InvalidMemoryError(str(exc)) from exc
        gate = ctx.config.threshold if isinstance(threshold, _Default) else threshold
        return (
            yield from recall_flow(
                ctx,
                query,
                k=k,
                flt=flt,
                threshold=gate,
                scoring=scoring,
                reinforce=reinforce,
                offset=offset,
                refresh_ttl=refresh_ttl,
                counters=counters,
            )
        )

    def _get_many(
        self, ids: Sequence[str], refresh_ttl: bool = False, with_vector: bool = False, counters: bool = True
    ) -> Flow[list[Memory | None]]:
        _check_counters(counters)
        return (yield from get_many_flow(self._context(), list(ids), refresh_ttl, with_vector, counters))

    def _touch(self, ids: Sequence[str]) -> Flow[int]:
        return (yield from touch_flow(self._context(), list(ids)))

    def _update(self, memory_id: str, scope: ScopeKey | None = None, **changes: Any) -> Flow[Memory]:
        if self._redact is not None:
            if isinstance(changes.get("content"), str):
                changes["content"] = redact_text(self._redact, changes["content"], "content")
            changes["metadata"] = redact_metadata(self._redact, changes.get("metadata"))
        ctx = self._context()
        if scope is not None:
            if not isinstance(scope, ScopeKey):
                raise InvalidMemoryError(f"scope must be a ScopeKey, got {type(scope).__name__}")
            target = scope_of(scope.namespace, scope.thread_id, scope.agent_id, scope.user_id)
            memory_id = yield from move_flow(ctx, memory_id, target, self._registered)
        return (yield from update_flow(ctx, memory_id, **changes))

    def _update_many(self, memory_ids: Sequence[str], **changes: Any) -> Flow[list[Memory | None]]:
        if self._redact is not None:
            changes["metadata"] = redact_metadata(self._redact, changes.get("metadata"))
        return (yield from update_many_flow(self._context(), memory_ids, **changes))

    def _list(
        self,
        flt: MemoryFilter,
        limit: int,
        cursor: str | None,
        order: Order = "newest",
        offset: int = 0,
        refresh_ttl: bool = False,
        counters: bool = True,
    ) -> Flow[Page]:
        _check_counters(counters)
        return (
            yield from list_flow(self._context(), flt, limit, cursor, order, offset, refresh_ttl, counters)
        )

    def _get_by_key(
        self, key: str, scope: ScopeKey, refresh_ttl: bool = False, counters: bool = True
    ) -> Flow[Memory | None]:
        _check_counters(counters)
        return (yield from get_by_key_flow(self._context(), key, scope, refresh_ttl, counters))

    def _get_many_by_key(
        self, keys: Sequence[str], scope: ScopeKey, refresh_ttl: bool = False, counters: bool = True
    ) -> Flow[list[Memory | None]]:
        _check_counters(counters)
        return (yield from get_many_by_key_flow(self._context(), keys, scope, refresh_ttl, counters))

    def _forget_keys(self, keys: Sequence[str], scope: ScopeKey) -> Flow[int]:
        ctx = self._context()
        return (yield from forget_flow(ctx, keyed_ids(scope, keys)))

    def _count(self, flt: MemoryFilter) -> Flow[int]:
        return (yield from count_flow(self._context(), flt))

    def _facets(self, flt: MemoryFilter) -> Flow[Facets]:
        return (yield from facets_flow(self._context(), flt))

    def _list_namespaces(
        self,
        prefix: Sequence[str] | None,
        suffix: Sequence[str] | None,
        max_depth: int | None,
        limit: int,
        offset: int,
    ) -> Flow[list[tuple[str, ...]]]:
        return (
            yield from list_namespaces_flow(
                self._context(), prefix=prefix, suffix=suffix, max_depth=max_depth, limit=limit, offset=offset
            )
        )

    def _forget(self, ids: Sequence[str]) -> Flow[int]:
        return (yield from forget_flow(self._context(), list(ids)))

    def _forget_each(self, ids: Sequence[str]) -> Flow[list[bool]]:
        return (yield from forget_each_flow(self._context(), list(ids)))

    def _forget_by_scope(self, flt: MemoryFilter) -> Flow[int]:
        if flt == MemoryFilter():
            raise InvalidMemoryError("forget_by_scope needs at least one scope or filter value")
        return (yield from forget_by_scope_flow(self._context(), flt))

    def _health(self) -> Flow[Probed | None]:
        return (yield from health_flow())

    def _health_report(self, probed: Probed | None, started: float, error: AgentMemError | None) -> Health:
        """The :class:`Health` of one check that began at ``started`` (``time.perf_counter()``)."""
        latency_ms = (time.perf_counter() - started) * 1000.0
        given = self._given_backend
        backend = "valkey" if given is None else str(getattr(given, "kind", type(given).__name__))
        if error is not None or probed is None:
            return Health(False, backend, latency_ms, index=probed is not None, ready=False, error=error)
        return Health(
            probed.ready, backend, latency_ms, index=True, ready=probed.ready, documents=probed.documents,
            indexing_failures=probed.failures,
        )  # fmt: skip

    def _stats(self, flt: MemoryFilter | None) -> Flow[Stats]:
        if flt is not None and not flt.is_scope_only():
            raise InvalidMemoryError(
                "stats() counts whole scopes: filter it by namespace, namespace_prefix, thread_id, agent_id "
                "or user_id only"
            )
        return (yield from stats_flow(self._context(), flt))

    def _scopes(self, flt: MemoryFilter | None) -> Flow[list[Any]]:
        return (yield from scopes_flow(self._context(), flt))

    def _export(
        self,
        sink: RecordSink,
        flt: MemoryFilter,
        page_size: int,
        progress: Callable[[int], object] | None,
    ) -> Flow[int]:
        emit = record_sink(sink)  # validated before any I/O
        return (yield from export_flow(self._context(), flt, emit, page_size, progress))

    def _import(
        self,
        records: Iterable[str | bytes | Mapping[str, Any]],
        chunk_size: int,
        dry_run: bool,
        progress: Callable[[int], object] | None,
    ) -> Flow[ImportResult]:
        ctx = self._context()
        return (yield from import_flow(ctx, records, self._registered, chunk_size, dry_run, progress))

    def _set_live(self, values: dict[str, Any]) -> Flow[None]:
        op = live_config_op(values, self.config)
        if op is not None:
            (reply,) = yield batch([op])
            expect(reply)
        self._live_read_at = None  # re-read on next operation


class _Default:
    """Sentinel: "use the store's configured value"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


def _check_counters(counters: object) -> None:
    if not isinstance(counters, bool):
        raise InvalidMemoryError(f"counters must be True or False, got {counters!r}")


def _weights(value: ScoringWeights | Mapping[str, float]) -> ScoringWeights:
    if isinstance(value, ScoringWeights):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"similarity", "recency", "importance", "time"}
        if unknown:
            raise ConfigurationError(f"unknown weight names: {sorted(unknown)}")
        return ScoringWeights(**{k: float(v) for k, v in value.items()})
    raise ConfigurationError(
        "weights must be ScoringWeights or a mapping of similarity/recency/importance/time"
    )


MemoryLike = MemoryInput | Mapping[str, Any] | str


def as_input(item: MemoryLike) -> MemoryInput:
    """Accept a :class:`MemoryInput`, a mapping of ``remember`` keywords, or plain content.

    Raises:
        InvalidMemoryError: for anything else, or a mapping with unknown or missing keys.
    """
    if isinstance(item, MemoryInput):
        return item
    if isinstance(item, str):
        return memory_input(item)
    if not isinstance(item, Mapping):
        raise InvalidMemoryError(f"a memory must be a string, a mapping or a MemoryInput, got {item!r}")
    try:
        return memory_input(**item)
    except TypeError as exc:
        raise InvalidMemoryError(f"invalid memory fields {sorted(map(str, item))}: {exc}") from exc


def with_neighbour_context(items: Sequence[MemoryInput], window: int) -> list[MemoryInput]:
    """Give each item without a context the content of the ``window`` items before it in its scope.

    For a conversation stored in order (one item per turn): a turn's previous turns situate it.

    Raises:
        InvalidMemoryError: for a window that is not a non-negative integer, or an item's invalid scope.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise InvalidMemoryError(f"context_window must be a non-negative integer, got {window!r}")
    if window == 0:
        return list(items)
    before: dict[ScopeKey, list[str]] = {}
    out: list[MemoryInput] = []
    for item in items:
        scope = scope_of(item.namespace, item.thread_id, item.agent_id, item.user_id)
        previous = before.setdefault(scope, [])
        if item.context is None and item.embed and previous:
            item = replace(item, context="\n".join(previous[-window:]))
        out.append(item)
        if item.embed and isinstance(item.content, str) and item.content.strip():
            previous.append(item.content)
    return out


def memory_input(
    content: str,
    *,
    importance: float = 0.5,
    tags: Sequence[str] | None = None,
    kind: Kind | str = Kind.SEMANTIC,
    source: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    ttl: float | None = None,
    thread_id: str | None = None,
    agent_id: str | None = None,
    namespace: str | Sequence[str] | None = None,
    user_id: str | None = None,
    created_at: float | None = None,
    key: str | None = None,
    id: str | None = None,  # the caller's id, as remember(id=...) names it
    embed: bool = True,
    texts: Sequence[str] | None = None,
    subject: str | None = None,
    context: str | None = None,
) -> MemoryInput:
    """Build a :class:`MemoryInput` (the keyword signature of ``remember``)."""
    return MemoryInput(
        content=content, importance=importance, tags=tags, kind=kind, source=source, metadata=metadata,
        ttl=ttl, thread_id=thread_id, agent_id=agent_id, namespace=namespace, user_id=user_id,
        created_at=created_at, key=key, id=id, embed=embed, texts=texts, subject=subject, context=context,
    )  # fmt: skip
