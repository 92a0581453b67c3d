"""A dependency-free, deterministic hashing embedder for tests and demos (functions: see ``_callable``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from agentmem_core.embeddings._base import Vectors, check_dims
from agentmem_core.errors import ConfigurationError

__all__ = ["HashingEmbedder"]

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
        self._dims = check_dims(dims)
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
