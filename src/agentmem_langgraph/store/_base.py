"""Configuration shared by :class:`ValkeyMemoryStore` and :class:`AsyncValkeyMemoryStore` (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, IndexConfig, TTLConfig, ensure_embeddings

from agentmem_core import IndexConfig as CoreIndexConfig
from agentmem_langgraph.store._plan import Ranking, Settings, tokenized_fields

__all__ = ["ValkeyMemoryStoreBase"]

_RESERVED = ("name", "embedder", "dims", "client", "owns_client")


class ValkeyMemoryStoreBase(BaseStore):
    """What both stores hold: the LangGraph index and TTL configuration, and the flow settings."""

    supports_ttl = True

    def __init__(
        self,
        *,
        index: IndexConfig | None,
        ttl: TTLConfig | None,
        ranking: Ranking,
        context_fields: Sequence[str] | None = ("context",),
    ) -> None:
        if ranking not in get_args(Ranking):
            raise ValueError(f"ranking must be 'composite' or 'similarity', got {ranking!r}")
        self.index_config = None if index is None else dict(index)
        self.ttl_config = ttl
        self.ranking: Ranking = ranking
        self.embeddings: Embeddings | None = None
        self._dims: int | None = None
        fields = None
        if index is not None:
            if "dims" not in index:
                raise ValueError("index needs 'dims' (the embedding dimension)")
            self._dims = int(index["dims"])
            self.embeddings = ensure_embeddings(index.get("embed"))
            fields = tokenized_fields(index.get("fields"))
        if isinstance(context_fields, str):
            raise ValueError("context_fields must be a sequence of paths, e.g. ['context']")
        context = tokenized_fields(context_fields) if context_fields else ()
        if any(path == "$" for path, _ in context):
            raise ValueError("context_fields cannot be '$' (the whole value is the item, not its context)")
        self._settings = Settings(fields=fields, ranking=ranking, context=context)

    def _core_kwargs(self, core_options: Mapping[str, Any] | None, *, sync: bool) -> dict[str, Any]:
        """The core store's keyword arguments: the embedder and its dimension, plus ``core_options``."""
        options = dict(core_options or {})
        reserved = sorted(set(options) & set(_RESERVED))
        if reserved:
            raise ValueError(f"core_options cannot set {reserved}: the store sets them")
        if self.embeddings is None or self._dims is None:
            # Nothing is ever embedded (every put is stored with embed=False), but the core needs an
            # embedder and a dimension: a constant one-dimensional stand-in (or the given index's).
            core_index = options.get("index")
            dims = core_index.dims if isinstance(core_index, CoreIndexConfig) else 1

            def never_called(texts: list[str]) -> list[list[float]]:
                return [[1.0] * dims for _ in texts]

            return {**options, "embedder": never_called, "dims": dims}
        embedder = self.embeddings.embed_documents if sync else self.embeddings.aembed_documents
        return {**options, "embedder": embedder, "dims": self._dims}
