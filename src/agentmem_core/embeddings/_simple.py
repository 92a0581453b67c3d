"""Dependency-free embedders: plain callables, and a deterministic hashing embedder for tests and demos."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import numpy.typing as npt

from agentmem_core.embeddings._base import Vectors
from agentmem_core.errors import AgentMemError, ConfigurationError, EmbeddingError

__all__ = ["AsyncEmbedFn", "CallableEmbedder", "EmbedFn", "HashingEmbedder"]

EmbedFn = Callable[[Sequence[str]], Sequence[Sequence[float]] | npt.NDArray[np.floating]]
"""A batch embedding function: texts in, one vector per text out."""

AsyncEmbedFn = Callable[[Sequence[str]], Awaitable[Sequence[Sequence[float]] | npt.NDArray[np.floating]]]
"""The async form of :data:`EmbedFn`."""


def _check_dims(dims: object) -> int:
    if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
        raise ConfigurationError(f"dims must be a positive integer, got {dims!r}")
    return dims


class CallableEmbedder:
    """Adapts plain batch functions to the :class:`~agentmem_core.embeddings.Embedder` protocol.

    Exceptions from the functions are raised as :class:`~agentmem_core.errors.EmbeddingError` (chained);
    agentmem's own errors pass through unchanged.

    Args:
        fn: the sync batch function.
        dims: the dimension of the vectors ``fn`` returns.
        afn: an async batch function (``None``: :meth:`aembed` runs ``fn`` in a worker thread).

    Raises:
        ConfigurationError: ``dims`` is not a positive integer.
    """

    def __init__(self, fn: EmbedFn, dims: int, *, afn: AsyncEmbedFn | None = None) -> None:
        self._fn = fn
        self._afn = afn
        self._dims = _check_dims(dims)

    @property
    def dims(self) -> int:
        """The vector dimension this embedder produces."""
        return self._dims

    def __repr__(self) -> str:
        return f"CallableEmbedder({self._fn!r}, dims={self._dims})"

    def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]] | npt.NDArray[np.floating]:
        """Call ``fn`` once with the whole batch.

        Raises:
            EmbeddingError: ``fn`` raised.
        """
        try:
            return self._fn(list(texts))
        except AgentMemError:
            raise
        except Exception as exc:  # a user function may raise anything; keep it as the cause
            raise EmbeddingError(f"embedding function failed: {type(exc).__name__}: {exc}") from exc

    async def aembed(self, texts: Sequence[str]) -> Sequence[Sequence[float]] | npt.NDArray[np.floating]:
        """Await ``afn`` with the whole batch, or run ``fn`` in a worker thread when there is no ``afn``.

        Raises:
            EmbeddingError: the function raised.
        """
        if self._afn is None:
            return await asyncio.to_thread(self.embed, list(texts))
        try:
            return await self._afn(list(texts))
        except AgentMemError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"embedding function failed: {type(exc).__name__}: {exc}") from exc


_WORD = re.compile(r"\w+")
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5


class HashingEmbedder:
    """A deterministic, keyless embedder for tests and demos (the hashing trick; not a semantic model).

    Each text becomes a bag of features: its lowercase word tokens, and the character trigrams of each
    word (padded with spaces, so short words count too). Each feature is hashed with seeded BLAKE2b into
    one of ``dims`` buckets with a sign, and the signed counts are summed. Texts that share words or word
    stems therefore point the same way, while unrelated texts are close to orthogonal (cosine around
    ``±1/sqrt(dims)``). The same text, ``dims`` and ``seed`` always give the same vector, on any machine.
    Rows are L2-normalised and never zero: a text with no features (e.g. empty) maps to a fixed unit
    vector.

    Args:
        dims: the vector dimension.
        seed: selects an independent hash family (different seeds give unrelated embeddings).

    Raises:
        ConfigurationError: ``dims`` is not a positive integer, or ``seed`` is not an integer.
    """

    def __init__(self, dims: int = 64, *, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigurationError(f"seed must be an integer, got {seed!r}")
        self._dims = _check_dims(dims)
        self._seed = seed
        key = str(seed).encode()
        if len(key) > 64:  # BLAKE2b keys are at most 64 bytes
            raise ConfigurationError("seed must have at most 64 digits")
        self._key = key

    @property
    def dims(self) -> int:
        """The vector dimension this embedder produces."""
        return self._dims

    def __repr__(self) -> str:
        return f"HashingEmbedder(dims={self._dims}, seed={self._seed})"

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts, one L2-normalised row per text, in order."""
        texts = list(texts)
        out = np.zeros((len(texts), self._dims), dtype=np.float64)
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                bucket, sign = self._hash(feature)
                out[row, bucket] += sign * weight
        norms = np.linalg.norm(out, axis=1)
        # No features (or signed counts that cancel exactly): a fixed vector keeps every row non-zero.
        empty = norms == 0
        out[empty, 0] = 1.0
        norms[empty] = 1.0
        vectors: Vectors = (out / norms[:, None]).astype(np.float32)
        return vectors

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Async twin of :meth:`embed` (computed inline: it is pure CPU and fast)."""
        return self.embed(texts)

    def _hash(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8, key=self._key).digest()
        value = int.from_bytes(digest, "little")
        return value % self._dims, (1.0 if value >> 63 else -1.0)


def _features(text: str) -> list[tuple[str, float]]:
    features: list[tuple[str, float]] = []
    for word in _WORD.findall(text.lower()):
        features.append(("w:" + word, _WORD_WEIGHT))
        padded = f" {word} "
        features.extend(("c:" + padded[i : i + 3], _TRIGRAM_WEIGHT) for i in range(len(padded) - 2))
    return features
