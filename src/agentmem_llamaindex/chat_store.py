"""``ValkeyChatStore``: LlamaIndex's ``AsyncDBChatStore`` (the short-term queue of ``Memory``) on the core.

Mapping onto ``agentmem_core.AsyncMemoryStore``:

* a session ``key`` is the core namespace ``(*namespace_prefix, key)``, by default
  ``("llamaindex", "chat", key)``; nothing of one session is ever read or deleted through another's key;
* a message is one memory stored with ``embed=False`` (never embedded, never in KNN) whose content is the
  message's own JSON (``ChatMessage.model_dump(mode="json")``, as ``SQLAlchemyChatStore`` stores it): text,
  images, tool calls in ``additional_kwargs`` come back as LlamaIndex serialised them;
* its status (``MessageStatus.ACTIVE`` / ``ARCHIVED``) is the metadata ``{"status": ...}``, an indexed
  token, so counts and status filters run in the index;
* order: the core lists a namespace oldest first by creation time, ties in write order. Every message of
  a batch shares one time and one store's batches get strictly increasing times, so messages list exactly
  as they were written (across processes, by the writers' clocks, as ``SQLAlchemyChatStore`` does);
* the message id ``delete_message`` takes is the message's place in its session's write order
  (``Memory.sequence``: 1, 2, 3, ...), as :meth:`ValkeyChatStore.get_messages_with_ids` returns it;
* ``get_keys`` is the core's ``list_namespaces`` under the prefix (no KEYS, no SCAN);
* ``ttl=`` gives each message a lifetime from its write (``refresh_ttl=True`` restarts it on every read).

Concurrency: each message is written by one atomic script (no write is ever lost); the writes of one store
to one session run one at a time, so in one process ``set_messages``, the ``*_oldest_messages`` calls and
adds never interleave. Across processes, each message is deleted by exactly one ``delete_oldest_messages``
(each call returns only the messages it deleted, and tops up to ``n``); two concurrent
``archive_oldest_messages`` may both report a message they both archived (archiving is idempotent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from agentmem_core import (
    AgentMemError,
    AsyncMemoryStore,
    ConfigurationError,
    EngineInfo,
    InvalidMemoryError,
    Memory,
    MemoryFilter,
)
from agentmem_llamaindex._chat_plan import (
    CHAT_NAMESPACE,
    MAX_PAGE,
    STATUS_KEY,
    ChatSettings,
    check_count,
    check_message_id,
    check_page,
    decode_message,
    key_of_namespace,
    message_inputs,
    next_timestamp,
    status_filter,
)
from agentmem_llamaindex._locks import SessionLocks

__all__ = ["DEFAULT_MAX_MESSAGE_CHARS", "ValkeyChatStore"]

DEFAULT_MAX_MESSAGE_CHARS = 4 * 1024 * 1024
"""The longest message JSON a store made by :meth:`ValkeyChatStore.from_url` accepts (images inline)."""

_ROUNDS = 16
"""Top-up rounds of ``delete_oldest_messages`` when concurrent deleters took some of its messages."""

_KEYS_PAGE = 5_000


def _never_called(texts: list[str]) -> list[list[float]]:
    # Messages are stored with embed=False, so the core never embeds anything for a chat store; it still
    # needs an embedder and a dimension.
    return [[1.0] for _ in texts]


def _check_prefix(prefix: Sequence[str]) -> tuple[str, ...]:
    if isinstance(prefix, str) or not isinstance(prefix, Sequence):
        raise ConfigurationError(f"namespace_prefix must be a tuple of labels, got {prefix!r}")
    labels = tuple(prefix)
    try:
        MemoryFilter.build(namespace=labels)  # the core's label validation
    except InvalidMemoryError as exc:
        raise ConfigurationError(f"invalid namespace_prefix {prefix!r}: {exc}") from exc
    return labels


def _check_ttl(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return float(ttl)


class ValkeyChatStore(AsyncDBChatStore):
    """A chat store for LlamaIndex ``Memory`` (``AsyncDBChatStore``) on an agentmem core store.

    Example::

        store = ValkeyChatStore.from_url("valkey://localhost:6379", name="chat")
        await store.asetup()
        memory = Memory.from_defaults(session_id="ana-1", token_limit=4000, chat_store=store)

    Any core backend works: pass an ``AsyncMemoryStore`` (``store=``), or a URL to :meth:`from_url`. Call
    :meth:`asetup` once before use (it creates the core's index, which counts need).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    namespace_prefix: tuple[str, ...] = Field(
        default=CHAT_NAMESPACE, description="Namespace labels before the session key."
    )
    ttl: float | None = Field(default=None, description="Seconds a message lives after its write.")
    refresh_ttl: bool = Field(default=False, description="Reads restart the lifetime of what they return.")

    _core: AsyncMemoryStore = PrivateAttr()
    _settings: ChatSettings = PrivateAttr()
    _locks: SessionLocks = PrivateAttr(default_factory=SessionLocks)
    _last_time: float = PrivateAttr(default=0.0)

    def __init__(
        self,
        store: AsyncMemoryStore,
        *,
        namespace_prefix: Sequence[str] = CHAT_NAMESPACE,
        ttl: float | None = None,
        refresh_ttl: bool = False,
    ) -> None:
        """Wrap a core store (no I/O).

        Args:
            store: the core ``AsyncMemoryStore`` (any embedder: messages are never embedded).
            namespace_prefix: labels before the session key in the core namespace.
            ttl: seconds each message lives after its write (``None``: kept until deleted).
            refresh_ttl: reads restart the lifetime of the messages they return.

        Raises:
            ConfigurationError: for a store that is no ``AsyncMemoryStore``, a bad prefix or TTL.
        """
        if not isinstance(store, AsyncMemoryStore):
            raise ConfigurationError(
                f"store must be an agentmem_core.AsyncMemoryStore, got {type(store).__name__}"
            )
        prefix = _check_prefix(namespace_prefix)
        seconds = _check_ttl(ttl)
        if not isinstance(refresh_ttl, bool):
            raise ConfigurationError(f"refresh_ttl must be True or False, got {refresh_ttl!r}")
        fields: dict[str, Any] = {"namespace_prefix": prefix, "ttl": seconds, "refresh_ttl": refresh_ttl}
        super().__init__(**fields)
        self._core = store
        self._settings = ChatSettings(prefix=prefix, ttl=seconds, refresh_ttl=refresh_ttl)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str = "llamaindex_chat",
        namespace_prefix: Sequence[str] = CHAT_NAMESPACE,
        ttl: float | None = None,
        refresh_ttl: bool = False,
        cluster: bool = False,
        core_options: Mapping[str, Any] | None = None,
    ) -> ValkeyChatStore:
        """A store on its own core store (``AsyncMemoryStore.from_url``), which :meth:`aclose` closes.

        Args:
            url: the core store URL (``valkey://host:port``).
            name: the core store name (its keys and index).
            namespace_prefix: labels before the session key.
            ttl: seconds each message lives after its write.
            refresh_ttl: reads restart the lifetime of the messages they return.
            cluster: connect with the cluster client.
            core_options: more core store options (``max_content_chars`` defaults to
                :data:`DEFAULT_MAX_MESSAGE_CHARS` here, so images fit inline).
        """
        options = {"max_content_chars": DEFAULT_MAX_MESSAGE_CHARS, **dict(core_options or {})}
        for reserved in ("embedder", "dims", "name"):
            if reserved in options:
                raise ConfigurationError(f"core_options cannot set {reserved!r}: the chat store sets it")
        core = AsyncMemoryStore.from_url(
            url, name=name, embedder=_never_called, dims=1, cluster=cluster, **options
        )
        return cls(core, namespace_prefix=namespace_prefix, ttl=ttl, refresh_ttl=refresh_ttl)

    @property
    def core(self) -> AsyncMemoryStore:
        """The core store underneath."""
        return self._core

    @classmethod
    def class_name(cls) -> str:
        """The LlamaIndex class name."""
        return "ValkeyChatStore"

    async def asetup(self) -> EngineInfo:
        """Create the core's index (or check the existing one); idempotent."""
        return await self._core.setup()

    async def aclose(self) -> None:
        """Close the core store's client if the core store owns it (stores made by :meth:`from_url`)."""
        await self._core.close()

    # -- reads -----------------------------------------------------------------------------------------
    async def _list(
        self, key: str, status: MessageStatus | str | None, limit: int | None = None, offset: int = 0
    ) -> list[Memory]:
        """The messages of a session with this status (``None``: any), oldest first, paged by the core."""
        namespace = self._settings.namespace(key)
        flt = status_filter(status)
        if limit == 0:
            return []
        out: list[Memory] = []
        cursor: str | None = None
        skip = offset
        while True:
            # The core skips up to MAX_PAGE itself; a deeper offset is read and dropped here.
            core_offset = min(skip, MAX_PAGE) if cursor is None else 0
            skip -= core_offset
            wanted = MAX_PAGE if limit is None else max(1, min(MAX_PAGE, limit - len(out) + skip))
            page = await self._core.list(
                limit=wanted, cursor=cursor, order="oldest", offset=core_offset,
                refresh_ttl=self._settings.refresh_ttl, counters=False, namespace=namespace, **flt,
            )  # fmt: skip
            memories = list(page.memories)
            dropped = min(skip, len(memories))
            skip -= dropped
            out.extend(memories[dropped:])
            if page.next_cursor is None or (limit is not None and len(out) >= limit):
                return out if limit is None else out[:limit]
            cursor = page.next_cursor

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        """The messages of a session with this status (``None``: every status), oldest first.

        Raises:
            InvalidMemoryError: for a bad key, status, limit or offset.
        """
        return [message for _, message in await self.get_messages_with_ids(key, status, limit, offset)]

    async def get_messages_with_ids(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[tuple[int, ChatMessage]]:
        """Like :meth:`get_messages`, each message with its id (what :meth:`delete_message` takes).

        Raises:
            InvalidMemoryError: for a bad key, status, limit or offset.
        """
        page_limit, page_offset = check_page(limit, offset)
        memories = await self._list(key, status, page_limit, page_offset)
        return [(memory.sequence, decode_message(memory)) for memory in memories]

    async def count_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        """How many messages of this status (``None``: any) the session holds (one index count).

        Raises:
            InvalidMemoryError: for a bad key or status.
        """
        return await self._core.count(namespace=self._settings.namespace(key), **status_filter(status))

    async def get_keys(self) -> list[str]:
        """Every session key holding live messages, sorted (the core's ``list_namespaces``, no key scan).

        Raises:
            AgentMemError: more sessions than the core can page through (its offset bound, 10,000 + a page).
        """
        prefix = self._settings.prefix
        keys: list[str] = []
        offset = 0
        while True:
            namespaces = await self._core.list_namespaces(
                prefix=prefix, max_depth=len(prefix) + 1, limit=_KEYS_PAGE, offset=offset
            )
            keys.extend(k for ns in namespaces if (k := key_of_namespace(prefix, ns)) is not None)
            if len(namespaces) < _KEYS_PAGE:
                return keys
            offset += _KEYS_PAGE
            if offset > MAX_PAGE:
                raise AgentMemError(
                    f"more than {offset} sessions: the core's list_namespaces cannot page further (offset "
                    f"<= {MAX_PAGE})"
                )

    # -- writes ----------------------------------------------------------------------------------------
    def _batch_time(self) -> float:
        self._last_time = next_timestamp(self._last_time, self._core.now())  # the store's clock
        return self._last_time

    def _check_sizes(self, contents: Sequence[str]) -> None:
        # The core validates content as it writes; set_messages checks first, since it replaces history.
        limit = self._core.config.max_content_chars
        for content in contents:
            if len(content) > limit:
                raise InvalidMemoryError(
                    f"a message's JSON is {len(content)} characters; the core store's limit is {limit} "
                    "(max_content_chars)"
                )

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append one message to the session.

        Raises:
            InvalidMemoryError: for a bad key, status or message (nothing is written).
        """
        await self.add_messages(key, [message], status)

    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append messages to the session, in order (an empty list writes nothing).

        Raises:
            InvalidMemoryError: for a bad key, status or message (nothing of the batch is written).
        """
        namespace = self._settings.namespace(key)
        async with self._locks.hold(namespace[-1]):
            items = message_inputs(self._settings, key, messages, status, self._batch_time())
            if items:
                await self._core.remember_many(items)

    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Replace every message of the session (of any status) by ``messages``.

        The new messages are written first, then the old ones deleted: a failure leaves the old history.

        Raises:
            InvalidMemoryError: for a bad key, status or message (nothing is written or deleted).
        """
        namespace = self._settings.namespace(key)
        async with self._locks.hold(namespace[-1]):
            items = message_inputs(self._settings, key, messages, status, self._batch_time())
            self._check_sizes([item.content for item in items])
            old = await self._list(key, None)
            if items:
                await self._core.remember_many(items)
            if old:
                await self._core.forget_many([memory.id for memory in old])

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message with this id (see :meth:`get_messages_with_ids`) and return it, else ``None``.

        Raises:
            InvalidMemoryError: for a bad key or a non-integer id.
        """
        namespace = self._settings.namespace(key)
        check_message_id(idx)
        async with self._locks.hold(namespace[-1]):
            for memory in await self._list(key, None):
                if memory.sequence == idx:
                    return decode_message(memory) if await self._core.forget(memory.id) else None
        return None

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete the session's messages of this status (``None``: all of them).

        Raises:
            InvalidMemoryError: for a bad key or status.
        """
        namespace = self._settings.namespace(key)
        flt = status_filter(status)
        async with self._locks.hold(namespace[-1]):
            await self._core.forget_by_scope(namespace=namespace, **flt)

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the ``n`` oldest active messages and return them, oldest first (fewer if fewer exist).

        Each message is deleted by exactly one call, also across processes: a call returns only what it
        deleted, and reads further when a concurrent call took some of its messages.

        Raises:
            InvalidMemoryError: for a bad key or ``n``.
        """
        namespace = self._settings.namespace(key)
        wanted = check_count(n)
        deleted: list[Memory] = []
        async with self._locks.hold(namespace[-1]):
            for _ in range(_ROUNDS):
                missing = wanted - len(deleted)
                if missing <= 0:
                    break
                oldest = await self._list(key, MessageStatus.ACTIVE, missing)
                # one round trip for all of them; what a concurrent call deleted first is not ours
                won = await self._core.forget_each([m.id for m in oldest])
                deleted.extend(m for m, ok in zip(oldest, won) if ok)
                if len(oldest) < missing:
                    break
        deleted.sort(key=lambda m: (m.created_at, m.sequence))
        return [decode_message(memory) for memory in deleted]

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Mark the ``n`` oldest active messages archived and return them, oldest first.

        Raises:
            InvalidMemoryError: for a bad key or ``n``.
        """
        namespace = self._settings.namespace(key)
        wanted = check_count(n)
        archived: list[Memory] = []
        async with self._locks.hold(namespace[-1]):
            for _ in range(_ROUNDS):
                missing = wanted - len(archived)
                if missing <= 0:
                    break
                oldest = await self._list(key, MessageStatus.ACTIVE, missing)
                # one round trip for all of them; a message deleted meanwhile comes back None
                done = await self._core.update_many(
                    [m.id for m in oldest], metadata={STATUS_KEY: MessageStatus.ARCHIVED.value}
                )
                archived.extend(m for m, now in zip(oldest, done) if now is not None)
                if len(oldest) < missing:
                    break
        archived.sort(key=lambda m: (m.created_at, m.sequence))
        return [decode_message(memory) for memory in archived]
