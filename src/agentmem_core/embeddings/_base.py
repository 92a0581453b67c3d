"""The embedder seam: a small protocol with batch sync and async methods, plus vector validation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from agentmem_core.errors import ConfigurationError, EmbeddingError, InvalidVectorError

__all__ = ["Embedder", "Vectors", "check_dims", "validate_vectors", "vector_to_bytes"]

Vectors = npt.NDArray[np.float32]
"""A ``(n, dims)`` float32 matrix of L2-normalised rows."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors, in batches.

    Implementations return one vector per input text, in order. They need not normalise: the store
    validates (dimension, finite, non-zero) and L2-normalises every vector itself.

    Models that embed a search query differently from a document (e5 and nomic prefixes, LangChain's
    ``embed_query``, LlamaIndex's ``get_query_embedding``) may also define ``embed_queries(texts)`` and
    ``aembed_queries(texts)`` with the same shape: recall embeds its query text with them when present
    (the sync store calls ``embed_queries``, the async one ``aembed_queries``), and everything stored
    with ``embed`` / ``aembed``.
    """

    @property
    def dims(self) -> int:
        """The vector dimension this embedder produces."""
        ...

    def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]] | npt.NDArray[np.floating]:
        """Embed a batch of texts (one call, however many texts)."""
        ...

    async def aembed(self, texts: Sequence[str]) -> Sequence[Sequence[float]] | npt.NDArray[np.floating]:
        """Async twin of :meth:`embed`."""
        ...


def check_dims(dims: object) -> int:
    """Return ``dims`` if it is a positive integer (an embedder's dimension).

    Raises:
        ConfigurationError: anything else, including ``True``.
    """
    if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
        raise ConfigurationError(f"dims must be a positive integer, got {dims!r}")
    return dims


def validate_vectors(
    raw: Sequence[Sequence[float]] | npt.NDArray[np.floating], dims: int, *, expected: int | None = None
) -> Vectors:
    """Check vectors and return them as an L2-normalised float32 matrix.

    Args:
        raw: vectors from an embedder or a caller.
        dims: the required dimension.
        expected: the number of vectors required (``None``: any).

    Raises:
        InvalidVectorError: wrong dimension, NaN/inf, or a zero vector.
        EmbeddingError: the embedder returned the wrong number of vectors.
    """
    if expected == 1:  # a recall's query vector: the common case, checked and normalised cheaply
        one = raw[0] if isinstance(raw, (list, np.ndarray)) and len(raw) == 1 else None
        if isinstance(one, np.ndarray):
            fast = _one_vector(one, dims)
            if fast is not None:
                return fast
    try:
        matrix = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorError(f"vectors must be numeric arrays of dimension {dims}: {exc}") from exc
    if matrix.ndim == 1 and expected in (None, 1) and matrix.size:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2:
        raise InvalidVectorError(f"expected a list of vectors of dimension {dims}, got shape {matrix.shape}")
    if expected is not None and matrix.shape[0] != expected:
        raise EmbeddingError(f"embedder returned {matrix.shape[0]} vectors for {expected} texts")
    if matrix.shape[1] != dims:
        raise InvalidVectorError(f"vector dimension {matrix.shape[1]} does not match the store's {dims}")
    if not np.all(np.isfinite(matrix)):
        raise InvalidVectorError("vectors must be finite (found NaN or inf)")
    # Scale each row by its largest magnitude first, so the norm cannot overflow for huge finite values.
    peaks = np.max(np.abs(matrix), axis=1)
    if np.any(peaks == 0):
        raise InvalidVectorError("zero vectors cannot be stored or queried (cosine distance is undefined)")
    scaled = matrix / peaks[:, None]
    norms = np.linalg.norm(scaled, axis=1)
    normalised: Vectors = (scaled / norms[:, None]).astype(np.float32)
    return normalised


def _one_vector(vector: npt.NDArray[Any], dims: int) -> Vectors | None:
    """Normalise one well-formed vector with a few array operations; ``None`` sends it the full path.

    A largest magnitude in ``(1e-150, 1e150)`` proves every element finite (NaN and inf fail the test) and
    the vector non-zero, and keeps the squared norm away from float64 overflow and underflow: exactly when
    the full checks would pass. Anything else (wrong shape, NaN, inf, zero, extreme values) goes through
    them for its precise error.
    """
    if vector.shape != (dims,) or vector.dtype.kind != "f":
        return None
    as64 = vector.astype(np.float64)
    peak = float(np.abs(as64).max())
    if not 1e-150 < peak < 1e150:
        return None
    normalised: Vectors = (as64 / math.sqrt(float(as64 @ as64))).astype(np.float32).reshape(1, dims)
    return normalised


def vector_to_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    """Little-endian float32 bytes, as the search module expects (never native order)."""
    return vector.astype("<f4", copy=False).tobytes()
