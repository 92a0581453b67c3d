"""The decisions of :class:`~agentmem_llamaindex.ValkeyChatStore`, pure (no I/O).

How a session and a message map onto core memories, how statuses become filters, and how the
arguments LlamaIndex passes are validated: the store itself only sends these to the core.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.base_db import MessageStatus

from agentmem_core import InvalidMemoryError, Kind, Memory, MemoryInput

__all__ = [
    "CHAT_NAMESPACE",
    "MAX_PAGE",
    "STATUS_KEY",
    "ChatSettings",
    "check_count",
    "check_message_id",
    "check_page",
    "decode_message",
    "encode_message",
    "key_of_namespace",
    "message_inputs",
    "next_timestamp",
    "status_filter",
    "status_value",
]

CHAT_NAMESPACE: tuple[str, ...] = ("llamaindex", "chat")
"""The default namespace prefix of the chat store: session ``key`` lives in ``(*prefix, key)``."""

STATUS_KEY = "status"
"""The metadata key holding a message's :class:`MessageStatus` value (an indexed, pushed-down filter)."""

MAX_PAGE = 10_000
"""The most memories one core ``list`` call returns (the core's ``limit`` bound)."""

_TIME_STEP = 1e-6
"""The core keeps times to the microsecond: consecutive batches of one store differ by at least this."""


@dataclass(frozen=True)
class ChatSettings:
    """What the store's flows need to know.

    Attributes:
        prefix: the namespace labels before the session key.
        ttl: seconds each message lives after its write (``None``: forever).
        refresh_ttl: reads restart the lifetime of the messages they return.
    """

    prefix: tuple[str, ...] = CHAT_NAMESPACE
    ttl: float | None = None
    refresh_ttl: bool = False

    def namespace(self, key: str) -> tuple[str, ...]:
        """The core namespace of a session key (the core validates the label).

        Raises:
            InvalidMemoryError: for a key that is not a non-empty string.
        """
        if not isinstance(key, str) or key == "":
            raise InvalidMemoryError(f"a chat store key must be a non-empty string, got {key!r}")
        return (*self.prefix, key)


def key_of_namespace(prefix: Sequence[str], namespace: Sequence[str]) -> str | None:
    """The session key of a listed namespace (``None`` for one that is not a session of ``prefix``)."""
    if len(namespace) != len(prefix) + 1 or tuple(namespace[: len(prefix)]) != tuple(prefix):
        return None
    return namespace[-1]


def status_value(status: MessageStatus | str | None, *, optional: bool = True) -> str | None:
    """The stored value of a status (``None`` = any status, where allowed).

    Raises:
        InvalidMemoryError: for an unknown status, or ``None`` where a status is required.
    """
    if status is None:
        if optional:
            return None
        raise InvalidMemoryError("a message needs a status (MessageStatus.ACTIVE or ARCHIVED)")
    try:
        return MessageStatus(status).value
    except ValueError:
        known = ", ".join(s.value for s in MessageStatus)
        raise InvalidMemoryError(f"unknown message status {status!r}; expected one of: {known}") from None


def status_filter(status: MessageStatus | str | None) -> dict[str, Any]:
    """The core ``metadata`` filter of a status (``{}`` = every status)."""
    value = status_value(status)
    return {} if value is None else {"metadata": {STATUS_KEY: value}}


def encode_message(message: ChatMessage) -> str:
    """A message as the JSON text stored as the memory's content (LlamaIndex's own JSON dump).

    Raises:
        InvalidMemoryError: for something that is not a ``ChatMessage`` or cannot be serialised.
    """
    if not isinstance(message, ChatMessage):
        raise InvalidMemoryError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
    try:
        data = message.model_dump(mode="json")
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:  # pydantic's serialisation errors are ValueErrors
        raise InvalidMemoryError(f"the message cannot be serialised to JSON: {exc}") from exc


def decode_message(memory: Memory) -> ChatMessage:
    """The message a memory holds (the inverse of :func:`encode_message`)."""
    return ChatMessage.model_validate_json(memory.content)


def next_timestamp(last: float, now: float) -> float:
    """The creation time of the next batch: ``now``, but strictly after the previous batch of this store.

    Every message of a batch shares one time (the core keeps their order by its write sequence), and
    one store's batches never share or go back in time (a wall clock stepping back, two batches in one
    microsecond), so one process's writes list in exactly the order they were made, batch by batch.
    """
    if not math.isfinite(now):
        raise InvalidMemoryError(f"the clock returned {now!r}")
    return round(max(now, last + _TIME_STEP), 6)


def message_inputs(
    settings: ChatSettings,
    key: str,
    messages: Sequence[ChatMessage],
    status: MessageStatus | str,
    created_at: float,
) -> list[MemoryInput]:
    """The core memories of a batch of messages: not embedded (never in KNN), one time, in order.

    Raises:
        InvalidMemoryError: for a bad key, status or message (before anything is written).
    """
    if isinstance(messages, (str, bytes, ChatMessage, Mapping)) or not isinstance(messages, Sequence):
        raise InvalidMemoryError("messages must be a list of ChatMessage")
    namespace = settings.namespace(key)
    metadata = {STATUS_KEY: status_value(status, optional=False)}
    return [
        MemoryInput(
            content=encode_message(message),
            embed=False,
            kind=Kind.SEMANTIC,  # the kind whose default TTL is "never": history expires only with ttl=
            namespace=namespace,
            metadata=metadata,
            ttl=settings.ttl,
            created_at=created_at,
        )
        for message in messages
    ]


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidMemoryError(f"{name} must be an int {bound}, got {value!r}")
    return value


def check_page(limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """Validate ``get_messages``' ``limit`` and ``offset`` (``None``: all / none).

    Raises:
        InvalidMemoryError: for negative or non-integer values (SQLite would read ``-1`` as "no limit").
    """
    return (
        None if limit is None else _check_int("limit", limit, 0),
        0 if offset is None else _check_int("offset", offset, 0),
    )


def check_count(n: int) -> int:
    """Validate the ``n`` of ``delete_oldest_messages`` / ``archive_oldest_messages``.

    Raises:
        InvalidMemoryError: for a negative or non-integer ``n``.
    """
    return _check_int("n", n, 0)


def check_message_id(idx: int) -> int:
    """Validate a message id of ``delete_message`` (its place in its session's write order).

    An integer that names no message is no error (``delete_message`` returns ``None`` for it).

    Raises:
        InvalidMemoryError: for anything but an integer.
    """
    if isinstance(idx, bool) or not isinstance(idx, int):
        raise InvalidMemoryError(f"a message id must be an int, got {idx!r}")
    return idx
