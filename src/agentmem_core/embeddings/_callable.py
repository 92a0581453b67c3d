"""Plain batch functions as embedders: :class:`CallableEmbedder`, and :func:`ensure_embedder` for stores.

A store takes a function wherever it takes an :class:`~agentmem_core.embeddings.Embedder`::

    def embed(texts: list[str]) -> list[list[float]]:  # or -> np.ndarray, or async def
        ...

    store = MemoryStore(client, name="notes", embedder=embed)  # the dimension: one probe in setup()
    store = MemoryStore(client, name="notes", embedder=embed, dims=384)  # no probe; checked on use
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from agentmem_core.embeddings._base import Embedder, check_dims
from agentmem_core.errors import AgentMemError, ConfigurationError, EmbeddingError

__all__ = ["AsyncEmbedFn", "CallableEmbedder", "EmbedFn", "EmbedderLike", "ensure_embedder"]

RawVectors = Sequence[Sequence[float]] | npt.NDArray[np.floating]
"""What an embedding function returns: one vector per text (a list of lists or a 2-D array)."""

# The parameter is list[str], not Sequence[str]: functions are always called with a list, and a user's
# ``def embed(texts: list[str])`` would not match a Callable taking any Sequence (parameters are
# contravariant).
EmbedFn = Callable[[list[str]], RawVectors]
"""A batch embedding function: texts in, one vector per text out, in order."""

AsyncEmbedFn = Callable[[list[str]], Awaitable[RawVectors]]
"""The async form of :data:`EmbedFn`."""

EmbedderLike = Embedder | EmbedFn | AsyncEmbedFn
"""What a store accepts as ``embedder=``: an :class:`Embedder`, or a sync or async batch function."""


def _is_async(fn: object) -> bool:
    # An ``async def`` (also behind functools.partial), or an object whose __call__ is one.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _failed(exc: Exception) -> EmbeddingError:
    return EmbeddingError(f"embedding function failed: {type(exc).__name__}: {exc}")


def _shape(raw: object) -> tuple[int, int]:
    """``(vectors, dims)`` of a function's result, reading only its shape (values are checked on use).

    A flat vector counts as one vector, as :func:`~agentmem_core.embeddings.validate_vectors` accepts it.

    Raises:
        EmbeddingError: the result is not a list of vectors.
    """
    shape: tuple[int, ...]
    if isinstance(raw, np.ndarray):
        shape = raw.shape
    elif isinstance(raw, Sequence) and not isinstance(raw, (str, bytes)):
        first = raw[0] if raw else None
        if isinstance(first, (Sequence, np.ndarray)) and not isinstance(first, (str, bytes)):
            shape = (len(raw), len(first))
        else:
            shape = (len(raw),)
    else:
        raise EmbeddingError(
            f"an embedding function must return one vector per text (a list of lists or a 2-D array), "
            f"got {type(raw).__name__}"
        )
    if len(shape) == 1:
        return (1, shape[0]) if shape[0] else (0, 0)
    if len(shape) != 2:
        raise EmbeddingError(f"an embedding function must return a 2-D array, got shape {shape}")
    return shape[0], shape[1]


class CallableEmbedder:
    """Adapts plain batch functions, sync or async, to the :class:`~agentmem_core.embeddings.Embedder` seam.

    ``fn`` may be a plain function, a lambda, an ``async def`` or an object with an async ``__call__``.
    :meth:`embed` calls a sync function; :meth:`aembed` awaits an async one, or runs a sync one in a
    worker thread (:func:`asyncio.to_thread`) so the event loop stays free. A sync function that returns
    an awaitable (``lambda texts: client.aembed(texts)``) is awaited by :meth:`aembed`.

    The dimension is either given (``dims``) or learnt: the first non-empty result fixes it (a store
    without ``dims=`` does this with one probe call in ``setup()``). Either way every result is checked
    against it, and a result with the wrong number of vectors or the wrong dimension raises
    :class:`~agentmem_core.errors.EmbeddingError` before anything is stored. Exceptions from the functions
    are raised as :class:`~agentmem_core.errors.EmbeddingError` (chained); agentmem's own errors pass
    through unchanged.

    Args:
        fn: the batch function: texts in, one vector per text out (a list of lists or a 2-D array).
        dims: the dimension of the vectors (``None``: learnt from the first result; until then
            :attr:`dims` raises, and so does ``isinstance(e, Embedder)`` on Python < 3.12, which reads
            every protocol member: stores use :func:`ensure_embedder` instead).
        afn: an async batch function for :meth:`aembed`, next to a sync ``fn``.

    Raises:
        ConfigurationError: a function that is not callable, ``dims`` not a positive integer, or ``afn``
            next to an ``fn`` that is async already.
    """

    def __init__(
        self, fn: EmbedFn | AsyncEmbedFn, dims: int | None = None, *, afn: AsyncEmbedFn | None = None
    ) -> None:
        if not callable(fn) or (afn is not None and not callable(afn)):
            raise ConfigurationError(f"embedding functions must be callable, got {fn!r} / {afn!r}")
        self._fn: EmbedFn | None
        self._afn: AsyncEmbedFn | None
        if _is_async(fn):
            if afn is not None:
                raise ConfigurationError("fn is async already: pass afn= only next to a sync fn")
            self._fn, self._afn = None, cast(AsyncEmbedFn, fn)
        else:
            self._fn, self._afn = cast(EmbedFn, fn), afn
        self._dims = None if dims is None else check_dims(dims)

    @property
    def dims(self) -> int:
        """The vector dimension.

        Raises:
            ConfigurationError: it was not given and no embedding has been made yet.
        """
        if self._dims is None:
            raise ConfigurationError(
                f"the dimension of {_name(self._fn or self._afn)} is not known before its first embedding: "
                "call the store's setup() (or asetup()) first, or pass dims="
            )
        return self._dims

    @property
    def known_dims(self) -> int | None:
        """The vector dimension, or ``None`` while it is still to be learnt from the first embedding."""
        return self._dims

    @property
    def supports_sync(self) -> bool:
        """Whether :meth:`embed` can run (there is a sync function, not only an async one)."""
        return self._fn is not None

    def __repr__(self) -> str:
        return f"CallableEmbedder({self._fn or self._afn!r}, dims={self._dims})"

    def embed(self, texts: Sequence[str]) -> RawVectors:
        """Call the sync function once with the whole batch.

        Raises:
            ConfigurationError: there is only an async function, or the function returned an awaitable.
            EmbeddingError: the function raised, or returned the wrong number or dimension of vectors.
        """
        if self._fn is None:
            raise ConfigurationError(_async_only(self._afn))
        texts = list(texts)
        raw = self._call(self._fn, texts)
        if inspect.isawaitable(raw):
            if inspect.iscoroutine(raw):
                raw.close()  # never awaited: close it, or Python warns about it at garbage collection
            raise ConfigurationError(_async_only(self._fn))
        return self._checked(raw, len(texts))

    async def aembed(self, texts: Sequence[str]) -> RawVectors:
        """Await the async function with the whole batch, or run the sync one in a worker thread.

        Raises:
            EmbeddingError: the function raised, or returned the wrong number or dimension of vectors.
        """
        texts = list(texts)
        if self._afn is not None:
            raw: Any = self._call(self._afn, texts)
        else:
            assert self._fn is not None  # one of the two is always set
            raw = await asyncio.to_thread(self._call, self._fn, texts)
        if inspect.isawaitable(raw):
            try:
                raw = await raw
            except AgentMemError:
                raise
            except Exception as exc:  # a user function may raise anything; keep it as the cause
                raise _failed(exc) from exc
        return self._checked(raw, len(texts))

    def _call(self, fn: Callable[[list[str]], Any], texts: list[str]) -> Any:
        try:
            return fn(texts)
        except AgentMemError:
            raise
        except Exception as exc:  # a user function may raise anything; keep it as the cause
            raise _failed(exc) from exc

    def _checked(self, raw: Any, expected: int) -> RawVectors:
        count, dims = _shape(raw)
        if count != expected:
            raise EmbeddingError(f"embedding function returned {count} vectors for {expected} texts")
        if count:
            if dims < 1:
                raise EmbeddingError("embedding function returned empty vectors")
            if self._dims is None:
                self._dims = dims
            elif dims != self._dims:
                raise EmbeddingError(
                    f"embedding function {_name(self._fn or self._afn)} returned {dims}-dimensional vectors; "
                    f"expected {self._dims}"
                )
        return cast(RawVectors, raw)

    def _pinned(self, dims: int) -> CallableEmbedder:
        # A copy, so a store's dims never leak into an object the caller may share with other stores.
        clone = copy.copy(self)
        clone._dims = check_dims(dims)
        return clone


def _async_only(fn: object) -> str:
    return (
        f"{_name(fn)} is async (or returns an awaitable), but this store embeds synchronously: use "
        "AsyncMemoryStore, or pass a sync function (or CallableEmbedder(sync_fn, afn=async_fn))"
    )


def ensure_embedder(embedder: EmbedderLike, *, dims: int | None = None, sync: bool = False) -> Embedder:
    """The :class:`Embedder` a store uses for what it was given.

    An :class:`Embedder` is returned as is; a plain function is wrapped in a :class:`CallableEmbedder`.
    Nothing is called here (a function's dimension, if unknown, is found later by the store's
    ``setup()``).

    Args:
        embedder: an :class:`Embedder`, or a sync or async batch function.
        dims: the store's vector dimension, when known: a function is checked against it (and a
            :class:`CallableEmbedder` that has not learnt its dimension yet is copied with it).
        sync: the store embeds synchronously (``MemoryStore``), so an async-only function is refused now
            rather than at its first use.

    Raises:
        ConfigurationError: neither an :class:`Embedder` nor a callable, or an async-only function for a
            sync store.
    """
    wrapped: CallableEmbedder
    # CallableEmbedder first: its dims property raises until learnt, and isinstance() against a runtime
    # protocol reads every member on Python < 3.12.
    if isinstance(embedder, CallableEmbedder):
        wrapped = embedder if dims is None or embedder.known_dims is not None else embedder._pinned(dims)
    elif isinstance(embedder, Embedder):
        return embedder
    elif callable(embedder):
        wrapped = CallableEmbedder(embedder, dims)
    else:
        raise ConfigurationError(
            "embedder must implement the Embedder protocol (dims, embed, aembed) or be a batch function "
            f"(texts: list[str]) -> list of vectors, sync or async; got {type(embedder).__name__}"
        )
    if sync and not wrapped.supports_sync:
        raise ConfigurationError(_async_only(wrapped._afn))
    return wrapped
