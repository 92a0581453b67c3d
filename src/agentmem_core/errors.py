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
        ├── BackendConnectionError    cannot reach the server, or the connection failed (retryable)
        │   ├── BackendTimeoutError   a call timed out
        │   └── WriteOutcomeUnknownError  the connection failed after a write that is not safe to
        │                             send twice was sent: it may or may not have applied
        ├── BackendBusyError          the server refused for now (LOADING, TRYAGAIN, CLUSTERDOWN,
        │                             READONLY, MASTERDOWN, BUSY): nothing was applied
        ├── BackendAuthError          wrong password / user, or an ACL user missing a permission
        │                             (the message names the command or key)
        └── IndexNotFoundError        the index is missing (setup() not run, or dropped)

Each error class says whether the same call may simply be made again (``retryable``). The store does
not retry by itself yet: a caller may repeat a call whose error is ``retryable``.
"""

from __future__ import annotations

__all__ = [
    "AgentMemError",
    "BackendAuthError",
    "BackendBusyError",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "IndexNotFoundError",
    "InvalidMemoryError",
    "InvalidVectorError",
    "ModelError",
    "NotFoundError",
    "QueryTooComplexError",
    "RedactionError",
    "SchemaMismatchError",
    "SearchModuleUnavailableError",
    "WriteOutcomeUnknownError",
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


class RedactionError(AgentMemError):
    """The store's ``redact`` callback failed or returned something other than text; nothing was written."""


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
    """A server or connection failure.

    Attributes:
        retryable: whether making the same call again is safe and may succeed.
    """

    retryable: bool = False


class BackendConnectionError(BackendError):
    """The server could not be reached, or the connection failed during a call that is safe to repeat."""

    retryable = True


class BackendTimeoutError(BackendConnectionError):
    """A call timed out (``socket_timeout``) or connecting timed out (``socket_connect_timeout``)."""


class WriteOutcomeUnknownError(BackendConnectionError):
    """The connection failed after a write that is not safe to send twice had been sent.

    The write may or may not have been applied. Writes with a caller key (``remember(key=...)``) and
    forgets are safe to repeat; a repeated near-duplicate merge counts the duplicate twice. (Reserved for
    the store's own retries, which decide what is safe to send twice; nothing raises it yet.)
    """

    retryable = False


class BackendBusyError(BackendError):
    """The server refused the call for now (LOADING, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, READONLY).

    Nothing was applied; the same call may succeed a little later.
    """

    retryable = True


class BackendAuthError(BackendError):
    """Authentication failed, or the ACL user lacks a permission the store needs (named in the message)."""


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


_BUSY_PREFIXES = ("LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "BUSY ")


def is_busy_message(message: str) -> bool:
    """Whether a server error refuses for now, with nothing applied (a retry with backoff may succeed).

    ``BUSY`` is a script running past ``busy-reply-threshold``; ``READONLY`` a write sent to a replica
    (after a failover); the others a server loading its data set or a cluster resharding or failing over.
    """
    return message.startswith(_BUSY_PREFIXES)


def is_auth_message(message: str) -> bool:
    """Whether a server error text refuses the connection's credentials."""
    return message.startswith(("NOAUTH", "WRONGPASS", "invalid username-password"))


def translate_backend_error(exc: BaseException) -> AgentMemError:
    """Map a valkey-py exception to the agentmem tree (the caller raises it ``from exc``)."""
    # Imported here so that this module stays importable without valkey for docs tooling.
    import valkey.exceptions as vex

    if isinstance(exc, AgentMemError):
        return exc
    message = str(exc)
    if isinstance(exc, (vex.AuthenticationError, vex.AuthorizationError)) or is_auth_message(message):
        return BackendAuthError(f"Valkey refused the credentials: {message}")
    # a command a script runs is checked too; its refusal comes back as a script error without NOPERM
    if (
        isinstance(exc, vex.NoPermissionError)
        or message.startswith("NOPERM")
        or "ACL failure in script" in message
    ):
        return BackendAuthError(
            f"the Valkey user lacks a permission agentmem needs ({message}); grant the store's keys "
            "(am:<store>:*), its index name and the commands it sends"
        )
    # valkey-py strips the code from the errors it has classes for (READONLY, LOADING): match those by type
    if isinstance(exc, (vex.BusyLoadingError, vex.ReadOnlyError)) or is_busy_message(message):
        return BackendBusyError(f"Valkey is not serving this call yet: {message}")
    if isinstance(exc, vex.TimeoutError):
        return BackendTimeoutError(f"Valkey timed out: {exc}")
    if isinstance(exc, vex.ConnectionError):
        return BackendConnectionError(f"cannot reach Valkey: {exc}")
    if isinstance(exc, TimeoutError):  # asyncio's, under the async client
        return BackendTimeoutError(f"Valkey timed out: {exc or type(exc).__name__}")
    if isinstance(exc, OSError):
        return BackendConnectionError(f"the connection to Valkey failed: {exc}")
    if isinstance(exc, vex.ValkeyClusterException):  # the cluster client's own refusal: nothing was sent
        return BackendError(f"the Valkey cluster client cannot route this call: {message}")
    if isinstance(exc, vex.ResponseError):
        if is_index_missing_message(message):
            return IndexNotFoundError(f"search index missing (run setup()): {message}")
        if is_unknown_command_message(message) and "ft." in message.lower():
            return SearchModuleUnavailableError(
                "the server has no search module (valkey-search or RediSearch): " + message
            )
    return BackendError(f"Valkey error: {type(exc).__name__}: {message}")
