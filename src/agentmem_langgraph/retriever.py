"""``ValkeyMemoryRetriever``: a LangChain ``BaseRetriever`` over agentmem's core recall.

It is a thin translation of :meth:`agentmem_core.MemoryStore.recall` (and the async twin): the query is
recalled within the retriever's scope and every hit becomes a ``Document``::

    from agentmem_core import MemoryStore
    from agentmem_langgraph import ValkeyMemoryRetriever

    with MemoryStore.from_url("valkey://localhost:6379", name="travel", embedder=embed) as core:
        core.setup()
        retriever = ValkeyMemoryRetriever(store=core, user_id="ana", k=5)
        docs = retriever.invoke("seat preference")            # or: retriever.invoke(q, k=2)

The ranking is the core's composite score (similarity, recency, importance; hybrid lexical relevance
when the store has it on), hits are reinforced unless ``reinforce=False``, and expired memories never
come back. Over the items of a LangGraph ``ValkeyMemoryStore``, pass ``store=lg_store`` (its core is
used) and scope it with ``namespace_prefix``: an item's ``page_content`` is then the text at the
store's index fields and ``metadata["metadata"]`` its value.

Each ``Document`` carries ``id`` (the memory id), ``page_content`` (the memory's content) and
``metadata``: ``id``, ``key``, ``namespace`` (a list of labels), ``user_id``, ``agent_id``,
``thread_id``, ``source``, ``kind``, ``tags``, ``importance``, ``created_at``, ``updated_at``,
``expires_at`` (Unix seconds), ``access_count``, ``metadata`` (the memory's own metadata), ``distance``
(cosine distance, lower is closer), ``score`` (the composite, higher is better) and ``scores`` (the
breakdown: ``similarity``, ``recency``, ``importance``, ``relevance``, ``lexical``, ``score``, and ``time``
when the query named a date, ``rerank`` when the store has a reranker).

Keyword arguments of ``invoke`` / ``ainvoke``: ``k``, ``offset``, ``threshold``, ``weights``,
``half_life_seconds``, ``reinforce``, ``refresh_ttl``, and the scope fields (``namespace``,
``namespace_prefix``, ``thread_id``, ``agent_id``, ``user_id``, ``source``, ``tag_filter``, ``kinds``,
``created_after``, ``created_before``, ``metadata_filter``), which can only *narrow*
the retriever's own scope (a value for a field the retriever leaves open, the same value, a longer
``namespace_prefix``, a subset of ``tag_filter`` / ``kinds``, more ``metadata_filter`` keys, a later
``created_after`` or earlier ``created_before``); anything that would widen it raises
:class:`~agentmem_core.errors.InvalidMemoryError` before any query is sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import Self

from agentmem_core import AsyncMemoryStore, Kind, MemoryFilter, MemoryStore, RecallHit, RecallResult
from agentmem_core.embeddings import EmbedderLike
from agentmem_core.errors import ConfigurationError, InvalidMemoryError
from agentmem_langgraph.store import AsyncValkeyMemoryStore, ValkeyMemoryStore

__all__ = ["ValkeyMemoryRetriever", "hit_to_document", "narrow", "recall_arguments", "scope_of"]

SCOPE_FIELDS = {
    "namespace": "namespace", "namespace_prefix": "namespace_prefix", "thread_id": "thread_id",
    "agent_id": "agent_id", "user_id": "user_id", "source": "source", "tag_filter": "tags",
    "kinds": "kinds", "created_after": "created_after", "created_before": "created_before",
    "metadata_filter": "metadata",
}  # fmt: skip
"""The fields that choose which memories the retriever sees, and the core filter each one sets.

``tag_filter`` and ``metadata_filter`` are named so because ``BaseRetriever`` already has ``tags``
and ``metadata`` (its tracing tags). Keyword arguments of ``invoke`` use the same names, and can only
narrow these fields."""

TUNING_FIELDS = ("k", "offset", "threshold", "weights", "half_life_seconds", "reinforce", "refresh_ttl")
"""Fields that tune one recall (invoke kwargs replace them)."""

_LABEL_FIELDS = frozenset({"namespace", "namespace_prefix", "tag_filter", "kinds"})
_IGNORED_KWARGS = frozenset({"verbose"})  # BaseRetriever.invoke reads it and passes it on


class ValkeyMemoryRetriever(BaseRetriever):
    """Retrieve agentmem memories as LangChain ``Document`` objects (sync and async).

    Give a sync core store (``store``), an async one (``async_store``), or both; a LangGraph
    ``ValkeyMemoryStore`` / ``AsyncValkeyMemoryStore`` is accepted in their place (its core is used).
    ``invoke`` needs ``store``; ``ainvoke`` uses ``async_store``, or else runs ``store`` in a worker
    thread. The constructor does no I/O; the stores must be set up (``setup()``).

    Attributes:
        store: the sync core store.
        async_store: the async core store.
        k: how many documents a call returns (at most).
        offset: skip this many of the best hits.
        threshold: the maximum cosine distance; ``None`` keeps the store's configured gate.
        weights: composite weights for this retriever (``similarity``, ``recency``, ``importance``).
        half_life_seconds: the recency half-life for this retriever.
        reinforce: count the hits as accessed (the core's reinforcement; ``False`` for read-only use).
        refresh_ttl: restart the lifetime of returned memories that have a TTL.
        namespace: only memories in exactly this namespace.
        namespace_prefix: only memories whose namespace starts with these labels.
        thread_id: only this thread's memories.
        agent_id: only this agent's memories.
        user_id: only this user's memories.
        source: only memories written by this source.
        tag_filter: only memories carrying at least one of these tags (the core's ``tags`` filter).
        kinds: only memories of these kinds.
        created_after: only memories created at or after this Unix time.
        created_before: only memories created before this Unix time.
        metadata_filter: metadata conditions (the core's filter language: a value, or ``$eq $ne $gt $gte $lt
            $lte $in $nin $exists $contains``; dotted paths reach into nested metadata).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: MemoryStore | None = None
    async_store: AsyncMemoryStore | None = None
    k: int = Field(default=4, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0)
    threshold: float | None = None
    weights: dict[str, float] | None = None
    half_life_seconds: float | None = None
    reinforce: bool = True
    refresh_ttl: bool = False
    namespace: tuple[str, ...] | None = None
    namespace_prefix: tuple[str, ...] | None = None
    thread_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    source: str | None = None
    tag_filter: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    created_after: float | None = None
    created_before: float | None = None
    metadata_filter: dict[str, Any] | None = None

    _owned: tuple[MemoryStore | AsyncMemoryStore, ...] = PrivateAttr(default=())

    @model_validator(mode="before")
    @classmethod
    def _unwrap_stores(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        store, async_store = data.get("store"), data.get("async_store")
        if isinstance(store, ValkeyMemoryStore):
            data["store"] = store.core
        elif isinstance(store, (AsyncMemoryStore, AsyncValkeyMemoryStore)):
            raise ConfigurationError("store= takes a sync store; pass an async one as async_store=")
        if isinstance(async_store, AsyncValkeyMemoryStore):
            data["async_store"] = async_store.core
        elif isinstance(async_store, (MemoryStore, ValkeyMemoryStore)):
            raise ConfigurationError("async_store= takes an async store; pass a sync one as store=")
        for name in _LABEL_FIELDS:
            if data.get(name) is not None:
                data[name] = _labels(data[name], name)
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.store is None and self.async_store is None:
            raise ConfigurationError("ValkeyMemoryRetriever needs store= (sync) or async_store= (async)")
        try:
            _filter_of(scope_of(self))
        except InvalidMemoryError as exc:  # a bad scope is a configuration error of the retriever
            raise ConfigurationError(f"invalid retriever scope: {exc}") from exc
        return self

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str,
        embedder: EmbedderLike,
        mode: Literal["sync", "async", "both"] = "both",
        store_options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> ValkeyMemoryRetriever:
        """A retriever over core stores it creates (``MemoryStore.from_url``, ``AsyncMemoryStore.from_url``).

        Args:
            url: any URL the core accepts (``valkey://`` / ``valkeys://``; other backends as they come).
            name: the core store name.
            embedder: the core store's embedder (an ``Embedder`` or a batch function).
            mode: which stores to create: ``"sync"``, ``"async"`` or ``"both"``.
            store_options: more core store options (``dims=``, ``threshold=``, ...).
            **fields: the retriever's fields (``k``, ``user_id``, ...).

        The retriever owns the stores: call :meth:`close` / :meth:`aclose` (or use it as a context
        manager). Call :meth:`setup` / :meth:`asetup` before the first query if the index may not exist.
        """
        options = dict(store_options or {})
        store = (
            MemoryStore.from_url(url, name=name, embedder=embedder, **options) if mode != "async" else None
        )
        async_store = (
            AsyncMemoryStore.from_url(url, name=name, embedder=embedder, **options)
            if mode != "sync"
            else None
        )
        retriever = cls(store=store, async_store=async_store, **fields)
        retriever._owned = tuple(s for s in (store, async_store) if s is not None)
        return retriever

    # -- lifecycle ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create (or check) the index through the sync store."""
        self._sync_store().setup()

    async def asetup(self) -> None:
        """Create (or check) the index through the async store (else the sync one in a thread)."""
        if self.async_store is not None:
            await self.async_store.setup()
        else:
            await asyncio.get_running_loop().run_in_executor(None, self._sync_store().setup)

    def close(self) -> None:
        """Close the sync store this retriever created (``aclose`` closes both)."""
        for store in self._owned:
            if isinstance(store, MemoryStore):
                store.close()

    async def aclose(self) -> None:
        """Close every store this retriever created."""
        for store in self._owned:
            if isinstance(store, AsyncMemoryStore):
                await store.close()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- retrieval ---------------------------------------------------------------------------------------
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        arguments = recall_arguments(self, kwargs)
        result: RecallResult = self._sync_store().recall(query, **arguments)
        return [hit_to_document(hit) for hit in result]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        arguments = recall_arguments(self, kwargs)
        if self.async_store is not None:
            result = await self.async_store.recall(query, **arguments)
        else:
            store = self._sync_store()
            result = await asyncio.get_running_loop().run_in_executor(
                None, lambda: store.recall(query, **arguments)
            )
        return [hit_to_document(hit) for hit in result]

    def _sync_store(self) -> MemoryStore:
        if self.store is None:
            raise ConfigurationError(
                "this retriever has only an async store: use ainvoke (or pass a sync store as store=)"
            )
        return self.store


# -- pure decisions ----------------------------------------------------------------------------------------
def scope_of(retriever: ValkeyMemoryRetriever) -> dict[str, Any]:
    """The retriever's scope fields that are set (by field name)."""
    return {name: getattr(retriever, name) for name in SCOPE_FIELDS if getattr(retriever, name) is not None}


def _filter_of(scope: Mapping[str, Any]) -> MemoryFilter:
    return MemoryFilter.build(**_core_filters(scope))


def _core_filters(scope: Mapping[str, Any]) -> dict[str, Any]:
    return {SCOPE_FIELDS[name]: value for name, value in scope.items()}


def recall_arguments(retriever: ValkeyMemoryRetriever, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The core ``recall`` keyword arguments for one call: the retriever's, tuned and narrowed by ``kwargs``.

    Raises:
        InvalidMemoryError: an unknown keyword, a bad value, or a scope value that would widen the
            retriever's scope.
    """
    extra = {k: v for k, v in kwargs.items() if k not in _IGNORED_KWARGS}
    unknown = sorted(set(extra) - set(SCOPE_FIELDS) - set(TUNING_FIELDS))
    if unknown:
        raise InvalidMemoryError(
            f"unknown retriever arguments {unknown}; use {sorted((*TUNING_FIELDS, *SCOPE_FIELDS))}"
        )
    tuning = {name: extra.get(name, getattr(retriever, name)) for name in TUNING_FIELDS}
    k, offset = tuning["k"], tuning["offset"]
    for label, value, low in (("k", k, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidMemoryError(f"{label} must be an integer >= {low}, got {value!r}")
    scope = narrow(scope_of(retriever), {n: extra[n] for n in SCOPE_FIELDS if n in extra})
    _filter_of(scope)  # validate before anything is sent
    arguments: dict[str, Any] = {**_core_filters(scope), "k": k, "offset": offset}
    arguments["reinforce"] = bool(tuning["reinforce"])
    arguments["refresh_ttl"] = bool(tuning["refresh_ttl"])
    for name in ("threshold", "weights", "half_life_seconds"):
        if tuning[name] is not None:  # None: the store's own setting
            arguments[name] = tuning[name]
    return arguments


def narrow(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` scope with ``extra`` applied, where ``extra`` may only narrow it.

    Raises:
        InvalidMemoryError: when a value of ``extra`` would widen (or replace) a value of ``base``.
    """
    given = {
        name: _labels(value, name) if name in _LABEL_FIELDS else value
        for name, value in extra.items()
        if value is not None
    }
    _filter_of(given)  # each value valid on its own before it is compared with the retriever's
    out = dict(base)
    for name, value in given.items():
        current = base.get(name)
        if current is None:
            out[name] = value
        elif name == "metadata_filter":
            out[name] = _merged_metadata(current, value)
        elif name == "namespace_prefix" and value[: len(current)] == current:
            out[name] = value
        elif name == "created_after":
            out[name] = max(current, value)
        elif name == "created_before":
            out[name] = min(current, value)
        elif name in ("tag_filter", "kinds") and set(value) <= set(current):
            out[name] = value
        elif value != current:
            raise InvalidMemoryError(
                f"{name}={value!r} would widen the retriever's {name}={current!r}: invoke arguments "
                "can only narrow the retriever's scope"
            )
    return out


def _labels(value: Any, name: str = "namespace") -> tuple[str, ...]:
    if isinstance(value, (str, Kind)):
        value = (value,)
    if not isinstance(value, Sequence):
        raise InvalidMemoryError(f"{name} must be a string or a sequence of strings, got {value!r}")
    return tuple(v.value if isinstance(v, Kind) else v for v in value)


def _merged_metadata(current: Mapping[str, Any], extra: Any) -> dict[str, Any]:
    if not isinstance(extra, Mapping):
        raise InvalidMemoryError(f"metadata must be a mapping of conditions, got {extra!r}")
    merged = dict(current)
    for key, condition in extra.items():
        if key in merged and _canon(merged[key]) != _canon(condition):
            raise InvalidMemoryError(
                f"metadata[{key!r}]={condition!r} would replace the retriever's condition {merged[key]!r}: "
                "invoke arguments can only narrow the retriever's scope"
            )
        merged[key] = condition
    return merged


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def hit_to_document(hit: RecallHit) -> Document:
    """A recall hit as a ``Document``: the memory's content, its fields and the score breakdown."""
    memory = hit.memory
    return Document(
        id=memory.id,
        page_content=memory.content,
        metadata={
            "id": memory.id,
            "key": memory.key,
            "namespace": list(memory.namespace),
            "user_id": memory.user_id,
            "agent_id": memory.agent_id,
            "thread_id": memory.thread_id,
            "source": memory.source,
            "kind": memory.kind.value,
            "tags": list(memory.tags),
            "importance": memory.importance,
            "created_at": memory.created_at,
            "updated_at": memory.updated_at,
            "expires_at": memory.expires_at,
            "access_count": memory.access_count,
            "metadata": dict(memory.metadata),
            "distance": hit.distance,
            "score": hit.scores.score,
            # the signals this recall had: ``time`` only when the query named a date, ``rerank`` only
            # when the store's reranker ran
            "scores": {name: v for name, v in asdict(hit.scores).items() if v is not None},
        },
    )
