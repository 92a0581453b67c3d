"""The agentmem error tree.

Every error agentmem raises derives from :class:`AgentMemError`; Valkey client errors are translated at
the boundary (:func:`translate_backend_error`) and chained with ``from``, never swallowed::

    AgentMemError
    ├── ConfigurationError            bad configuration, URL or environment
    ├── InvalidMemoryError            bad user input: content, importance, kind, scope, sizes, filters
    │   └── InvalidVectorError        wrong dimension, NaN/inf, zero vector
    ├── EmbeddingError                the embedder failed or returned something unusable
    ├── ModelError                    a language model (summarizer, fact extractor) failed or
    │                                 returned something unusable
    ├── SchemaMismatchError           an existing index disagrees with the configured one
    │   └── DimensionMismatchError    ... on the vector dimension (names both)
    ├── SearchModuleUnavailableError  the server has no search module (FT.* unknown)
    ├── QueryTooComplexError          a filter needs more predicates than the portable budget
    ├── NotFoundError                 an update of a memory that does not exist
    └── BackendError                  any other server / connection failure
        ├── BackendConnectionError    cannot reach the server / timed out
        └── IndexNotFoundError        the index is missing (setup() not run, or dropped)
"""

from __future__ import annotations

__all__ = [
    "AgentMemError",
    "BackendConnectionError",
    "BackendError",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "IndexNotFoundError",
    "InvalidMemoryError",
    "InvalidVectorError",
    "ModelError",
    "NotFoundError",
    "QueryTooComplexError",
    "SchemaMismatchError",
    "SearchModuleUnavailableError",
    "is_index_missing_message",
    "translate_backend_error",
]


class AgentMemError(Exception):
    """Root of every error raised by agentmem."""


class ConfigurationError(AgentMemError):
    """Invalid configuration, connection URL or environment."""


class InvalidMemoryError(AgentMemError, ValueError):
    """User input that cannot be stored or queried; nothing was written."""


class InvalidVectorError(InvalidMemoryError):
    """A vector with the wrong dimension, non-finite values or zero norm."""


class EmbeddingError(AgentMemError):
    """The embedder failed or returned an unusable result."""


class ModelError(AgentMemError):
    """A language model (a summarizer or a fact extractor) failed or returned an unusable result.

    Raised after the provider's retries are spent; nothing was written by the operation that called it.
    """


class SchemaMismatchError(AgentMemError):
    """An existing index was created with a different schema."""


class DimensionMismatchError(SchemaMismatchError):
    """The existing index has a different vector dimension than the store's embedder.

    Attributes:
        existing: the dimension of the index on the server.
        configured: the dimension the store was configured with.
    """

    def __init__(self, index: str, existing: int, configured: int) -> None:
        super().__init__(
            f"index {index!r} on the server has vector dimension {existing}, but this store is configured "
            f"for dimension {configured}; use another store name or drop the index"
        )
        self.existing = existing
        self.configured = configured


class SearchModuleUnavailableError(AgentMemError):
    """The server has no search module (valkey-search or RediSearch)."""


class QueryTooComplexError(InvalidMemoryError):
    """A filter needs more predicates than the portable FT.SEARCH budget allows."""


class NotFoundError(AgentMemError, KeyError):
    """The memory does not exist (raised by operations that require it, e.g. ``update``)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "not found"


class BackendError(AgentMemError):
    """A server or connection failure."""


class BackendConnectionError(BackendError):
    """The server could not be reached, or a call timed out."""


class IndexNotFoundError(BackendError):
    """The search index does not exist: call ``setup()`` first."""


def is_index_missing_message(message: str) -> bool:
    """Whether a server error text means "no such index" (RediSearch and valkey-search wordings)."""
    text = message.lower()
    return "unknown index" in text or "no such index" in text or ("not found" in text and "index" in text)


def is_unknown_command_message(message: str) -> bool:
    """Whether a server error text means the command (e.g. ``FT.SEARCH``) does not exist."""
    text = message.lower()
    return "unknown command" in text or "err unknown" in text


def translate_backend_error(exc: BaseException) -> AgentMemError:
    """Map a valkey-py exception to the agentmem tree (the caller raises it ``from exc``)."""
    # Imported here so that this module stays importable without valkey for docs tooling.
    import valkey.exceptions as vex

    if isinstance(exc, AgentMemError):
        return exc
    if isinstance(exc, (vex.ConnectionError, vex.TimeoutError)):
        return BackendConnectionError(f"cannot reach Valkey: {exc}")
    message = str(exc)
    if isinstance(exc, vex.ResponseError):
        if is_index_missing_message(message):
            return IndexNotFoundError(f"search index missing (run setup()): {message}")
        if is_unknown_command_message(message) and "ft." in message.lower():
            return SearchModuleUnavailableError(
                "the server has no search module (valkey-search or RediSearch): " + message
            )
    return BackendError(f"Valkey error: {type(exc).__name__}: {message}")
