"""Rerankers: an optional second opinion on recall's best candidates (off unless a store is given one).

A reranker scores ``(query, memory text)`` pairs, higher is better. The store asks it about the
``rerank_depth`` best candidates of a text recall (by the composite score) and returns them in its
order; ``ScoreBreakdown.rerank`` carries its score, the composite ``score`` stays what it was. Any
function ``(query, texts) -> scores`` works (:class:`CallableReranker` wraps it);
:class:`CrossEncoderReranker` runs a sentence-transformers cross-encoder on the machine, offline when the
model is a local path or already cached.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from agentmem_core.errors import ConfigurationError, ModelError

__all__ = ["CallableReranker", "CrossEncoderReranker", "Reranker", "check_scores", "ensure_reranker"]

RerankFn = Callable[[str, list[str]], Sequence[float]]
AsyncRerankFn = Callable[[str, list[str]], Awaitable[Sequence[float]]]


@runtime_checkable
class Reranker(Protocol):
    """Scores memory texts against a query (higher is better), one score per text, in order."""

    def rerank(self, query: str, texts: Sequence[str]) -> Sequence[float]:
        """The scores of ``texts`` for ``query``."""
        ...

    async def arerank(self, query: str, texts: Sequence[str]) -> Sequence[float]:
        """The async twin of :meth:`rerank`."""
        ...


class CallableReranker:
    """A reranker from a function ``(query, texts) -> scores`` (sync or async).

    The async store runs a sync function in a worker thread; the sync store refuses an async one.
    """

    def __init__(self, fn: RerankFn | AsyncRerankFn) -> None:
        if not callable(fn):
            raise ConfigurationError("a reranker must be a callable (query, texts) -> scores or a Reranker")
        self._fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        """Whether the function is a coroutine function."""

    def rerank(self, query: str, texts: Sequence[str]) -> Sequence[float]:
        """Call the function (an async one cannot run here)."""
        if self.is_async:
            raise ConfigurationError("an async rerank function needs the async store")
        return self._fn(query, list(texts))  # type: ignore[return-value]

    async def arerank(self, query: str, texts: Sequence[str]) -> Sequence[float]:
        """Await the function, or run a sync one in a worker thread."""
        if self.is_async:
            return await self._fn(query, list(texts))  # type: ignore[no-any-return,misc]
        return await asyncio.to_thread(self._fn, query, list(texts))  # type: ignore[arg-type]


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` (``pip install sentence-transformers``), loaded at first use.

    Args:
        model: a model name or local path (offline: a path, or a name already in the Hugging Face cache
            with ``HF_HUB_OFFLINE=1``), or a loaded ``CrossEncoder``.
        batch_size: pairs per forward pass.
        device: where it runs (``None``: sentence-transformers' choice).
    """

    def __init__(self, model: str | Any, *, batch_size: int = 32, device: str | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self._model = model
        self.batch_size = batch_size
        self.device = device

    def _loaded(self) -> Any:
        if isinstance(self._model, str):
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:
                raise ConfigurationError(
                    "CrossEncoderReranker needs the sentence-transformers package: "
                    "pip install sentence-transformers"
                ) from exc
            self._model = CrossEncoder(self._model, device=self.device)
        return self._model

    def rerank(self, query: str, texts: Sequence[str]) -> Sequence[float]:
        """The cross-encoder's scores of ``(query, text)`` pairs."""
        if not texts:
            return []
        scores = self._loaded().predict(
            [(query, text) for text in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]

    async def arerank(self, query: str, texts: Sequence[str]) -> Sequence[float]:
        """:meth:`rerank` in a worker thread (the model is CPU or GPU work, not I/O)."""
        return await asyncio.to_thread(self.rerank, query, texts)


def ensure_reranker(value: Reranker | RerankFn | AsyncRerankFn | None) -> Reranker | None:
    """A :class:`Reranker` from what a store was given (``None``: no reranking).

    Raises:
        ConfigurationError: neither a reranker nor a callable.
    """
    if value is None or isinstance(value, Reranker):
        return value
    return CallableReranker(value)


def check_scores(raw: Any, expected: int) -> list[float]:
    """A reranker's reply as ``expected`` finite floats.

    Raises:
        ModelError: another count, or a value that is not a finite number.
    """
    try:
        scores = [float(s) for s in raw]
    except (TypeError, ValueError) as exc:
        raise ModelError(f"reranker returned {type(raw).__name__}, not a sequence of numbers") from exc
    if len(scores) != expected:
        raise ModelError(f"reranker returned {len(scores)} scores for {expected} texts")
    if not all(math.isfinite(s) for s in scores):
        raise ModelError("reranker returned a score that is not a finite number")
    return scores
