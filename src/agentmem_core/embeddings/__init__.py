"""Embedders: the protocol, vector validation and the providers (OpenAI, local, functions, hashing).

Every provider imports its optional dependency lazily, on first use: importing this package needs only
numpy. A missing extra is reported as :class:`~agentmem_core.errors.ConfigurationError` naming the
``pip install agentmem[...]`` command.
"""

from __future__ import annotations

from agentmem_core.embeddings._base import Embedder, Vectors, validate_vectors, vector_to_bytes
from agentmem_core.embeddings._callable import (
    AsyncEmbedFn,
    CallableEmbedder,
    EmbedderLike,
    EmbedFn,
    ensure_embedder,
)
from agentmem_core.embeddings._local import SentenceTransformerEmbedder, default_local_model_path
from agentmem_core.embeddings._openai import OpenAIEmbedder
from agentmem_core.embeddings._simple import HashingEmbedder

__all__ = [
    "AsyncEmbedFn",
    "CallableEmbedder",
    "EmbedFn",
    "Embedder",
    "EmbedderLike",
    "HashingEmbedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "Vectors",
    "default_local_model_path",
    "ensure_embedder",
    "validate_vectors",
    "vector_to_bytes",
]
