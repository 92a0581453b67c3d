"""OpenAI (and OpenAI-compatible server) embeddings through the ``openai`` package, imported lazily."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem_core.embeddings._base import Vectors
from agentmem_core.errors import ConfigurationError, EmbeddingError

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIEmbedder"]

_KNOWN_DIMS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# Only the text-embedding-3 family accepts the ``dimensions`` request parameter (Matryoshka truncation).
_SHORTENABLE = frozenset({"text-embedding-3-small", "text-embedding-3-large"})
# The embeddings endpoint accepts at most 2048 inputs per request.
_MAX_BATCH = 2048
_MISSING = "the OpenAI embedder needs the openai package: pip install agentmem[openai]"


def import_openai(missing: str = _MISSING) -> Any:
    """The ``openai`` module, imported on first use (``ConfigurationError`` saying ``missing`` without it)."""
    try:
        import openai
    except ImportError as exc:
        raise ConfigurationError(missing) from exc
    return openai


class OpenAIEmbedder:
    """Embeds texts with the OpenAI embeddings API, or any server that speaks it.

    Nothing is imported, created or sent at construction: the ``openai`` clients are made on first use
    (unless passed in), so a store can be configured on a machine without network access or a key.

    Args:
        model: the embedding model name.
        dims: the vector dimension. Optional for the known OpenAI models (1536 for
            ``text-embedding-3-small`` and ``text-embedding-ada-002``, 3072 for ``text-embedding-3-large``);
            required for any other model. For the ``text-embedding-3`` models a ``dims`` below the default
            is sent as the ``dimensions`` request parameter (shortened embeddings).
        base_url: the API base URL, e.g. ``http://localhost:8000/v1`` for an OpenAI-compatible server
            (``None``: the ``openai`` default, which honours ``OPENAI_BASE_URL``).
        api_key: the API key (``None``: the ``OPENAI_API_KEY`` environment variable).
        client: an ``openai.OpenAI`` client to use for :meth:`embed` (``base_url``/``api_key`` are then
            ignored for sync calls).
        async_client: an ``openai.AsyncOpenAI`` client to use for :meth:`aembed`.
        batch_size: the most texts sent in one request (1 to 2048).
        send_dimensions: whether to send ``dims`` as the ``dimensions`` parameter (``None``: only for the
            ``text-embedding-3`` models when ``dims`` differs from their default; many OpenAI-compatible
            servers reject the parameter).
        timeout: the request timeout in seconds for clients created here (``None``: the openai default).
        max_retries: retries for clients created here (connection errors, 429 and 5xx).

    Raises:
        ConfigurationError: an unknown model without ``dims``, a bad ``dims``/``batch_size``, or a
            ``dimensions`` request the model cannot honour.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dims: int | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
        batch_size: int = 512,
        send_dimensions: bool | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
    ) -> None:
        default = _KNOWN_DIMS.get(model)
        if dims is None:
            if default is None:
                raise ConfigurationError(f"unknown embedding model {model!r}: pass dims=")
            dims = default
        if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
            raise ConfigurationError(f"dims must be a positive integer, got {dims!r}")
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= _MAX_BATCH
        ):
            raise ConfigurationError(f"batch_size must be between 1 and {_MAX_BATCH}, got {batch_size!r}")
        if default is not None and (dims > default or (dims != default and model not in _SHORTENABLE)):
            raise ConfigurationError(
                f"{model!r} returns {default}-dimensional vectors; it cannot return {dims}"
            )
        if send_dimensions is None:
            send_dimensions = model in _SHORTENABLE and dims != default
        if send_dimensions and default is not None and model not in _SHORTENABLE:
            raise ConfigurationError(f"{model!r} does not accept the dimensions parameter")
        self._model = model
        self._dims = dims
        self._base_url = base_url
        self._api_key = api_key
        self._client = client
        self._async_client = async_client
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._batch_size = batch_size
        self._send_dimensions = send_dimensions
        self._timeout = timeout
        self._max_retries = max_retries
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        """The vector dimension this embedder produces."""
        return self._dims

    @property
    def model(self) -> str:
        """The embedding model name."""
        return self._model

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self._model!r}, dims={self._dims}, base_url={self._base_url!r})"

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts in as few requests as ``batch_size`` allows, one vector per text, in order.

        Raises:
            ConfigurationError: ``openai`` is not installed, or no API key is configured.
            EmbeddingError: the API call failed or returned an unusable answer.
        """
        texts = list(texts)
        if not texts:
            return np.empty((0, self._dims), dtype=np.float32)
        client = self._sync_client()
        oai = import_openai()
        rows: list[Sequence[float]] = []
        for batch in self._batches(texts):
            try:
                response = client.embeddings.create(input=batch, model=self._model, **self._extra())
            except oai.OpenAIError as exc:
                raise EmbeddingError(f"OpenAI embedding request failed: {type(exc).__name__}: {exc}") from exc
            rows.extend(self._rows(response, len(batch)))
        return np.asarray(rows, dtype=np.float32)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Async twin of :meth:`embed`, using ``openai.AsyncOpenAI``."""
        texts = list(texts)
        if not texts:
            return np.empty((0, self._dims), dtype=np.float32)
        client = self._async()
        oai = import_openai()
        rows: list[Sequence[float]] = []
        for batch in self._batches(texts):
            try:
                response = await client.embeddings.create(input=batch, model=self._model, **self._extra())
            except oai.OpenAIError as exc:
                raise EmbeddingError(f"OpenAI embedding request failed: {type(exc).__name__}: {exc}") from exc
            rows.extend(self._rows(response, len(batch)))
        return np.asarray(rows, dtype=np.float32)

    def close(self) -> None:
        """Close the sync client if this embedder created it (a passed-in client is the caller's)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client if this embedder created it (a passed-in client is the caller's)."""
        if self._owns_async_client and self._async_client is not None:
            await self._async_client.close()
            self._async_client = None

    def _batches(self, texts: list[str]) -> list[list[str]]:
        return [texts[i : i + self._batch_size] for i in range(0, len(texts), self._batch_size)]

    def _extra(self) -> dict[str, Any]:
        return {"dimensions": self._dims} if self._send_dimensions else {}

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"base_url": self._base_url, "api_key": self._api_key}
        kwargs["max_retries"] = self._max_retries
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        return kwargs

    def _sync_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                oai = import_openai()
                try:
                    self._client = oai.OpenAI(**self._client_kwargs())
                except oai.OpenAIError as exc:  # e.g. no api_key and no OPENAI_API_KEY
                    raise ConfigurationError(f"cannot create the OpenAI client: {exc}") from exc
            return self._client

    def _async(self) -> openai.AsyncOpenAI:
        with self._lock:
            if self._async_client is None:
                oai = import_openai()
                try:
                    self._async_client = oai.AsyncOpenAI(**self._client_kwargs())
                except oai.OpenAIError as exc:
                    raise ConfigurationError(f"cannot create the OpenAI client: {exc}") from exc
            return self._async_client

    def _rows(self, response: Any, expected: int) -> list[Sequence[float]]:
        # The API documents ``index`` on each item; order by it rather than trust the list order.
        try:
            items = sorted(response.data, key=lambda item: item.index)
            rows: list[Sequence[float]] = [item.embedding for item in items]
        except (AttributeError, TypeError) as exc:
            raise EmbeddingError(f"unexpected embeddings response from {self._model!r}: {exc}") from exc
        if len(rows) != expected:
            raise EmbeddingError(f"{self._model!r} returned {len(rows)} embeddings for {expected} texts")
        for row in rows:
            if len(row) != self._dims:
                raise EmbeddingError(
                    f"{self._model!r} returned a {len(row)}-dimensional embedding; expected {self._dims}"
                )
        return rows
