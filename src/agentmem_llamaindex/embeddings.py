"""LlamaIndex embeddings for the core: a ``BaseEmbedding`` wrapped once into the core's embedder protocol."""

from __future__ import annotations

from llama_index.core.base.embeddings.base import BaseEmbedding

from agentmem_core import ConfigurationError
from agentmem_core.embeddings import AsyncEmbedFn

__all__ = ["llamaindex_embedder"]


def llamaindex_embedder(embed_model: BaseEmbedding) -> AsyncEmbedFn:
    """The core embedder of a LlamaIndex embedding model: an async batch function over its text embeddings.

    Pass it as ``AsyncMemoryStore(..., embedder=llamaindex_embedder(model))``; the core learns the
    dimension with one call in ``setup()`` unless ``dims=`` is given. Documents go through
    ``aget_text_embedding_batch`` (batched as the model is configured to); queries of
    :class:`~agentmem_llamaindex.ValkeyMemoryBlock` use the model's ``aget_query_embedding``.

    Raises:
        ConfigurationError: for something that is not a ``BaseEmbedding``.
    """
    if not isinstance(embed_model, BaseEmbedding):
        raise ConfigurationError(f"expected a llama_index BaseEmbedding, got {type(embed_model).__name__}")

    async def embed(texts: list[str]) -> list[list[float]]:
        vectors = await embed_model.aget_text_embedding_batch(list(texts))
        return [list(vector) for vector in vectors]

    embed.__name__ = embed.__qualname__ = f"llamaindex_embedder[{type(embed_model).__name__}]"
    return embed
