"""The decisions of :class:`~agentmem_llamaindex.ValkeyMemoryBlock`, pure (no I/O).

Which messages become which memories, which scope a recall reads, how hits are formatted, and how
the formatted block is cut to a token budget.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, TextBlock

from agentmem_core import InvalidMemoryError, Kind, MemoryInput, RecallHit

__all__ = [
    "BLOCK_NAMESPACE",
    "DEFAULT_TEMPLATE",
    "SESSION_KEY",
    "BlockSettings",
    "check_template",
    "format_hits",
    "memory_inputs",
    "message_text",
    "query_text",
    "recall_scope",
    "truncate",
]

BLOCK_NAMESPACE: tuple[str, ...] = ("llamaindex", "memory")
"""The default core namespace of the block's memories."""

SESSION_KEY = "session_id"
"""The ``additional_kwargs`` key ``BaseMemoryBlock.aput`` writes the session id of a flushed message to."""

DEFAULT_TEMPLATE = "- {content}"
"""One recalled memory per line; ``{content}`` is ``"<role>: <text>"``."""

TEMPLATE_FIELDS = frozenset(
    ("content", "text", "role", "session_id", "score", "similarity", "recency", "importance", "relevance",
     "lexical", "created_at", "id")
)  # fmt: skip
"""The placeholders a template may use."""


@dataclass(frozen=True)
class BlockSettings:
    """What the block's flows need to know.

    Attributes:
        namespace: the core namespace of the block's memories.
        user_id: the user scope shared across sessions (``None``: none).
        agent_id: the agent scope shared across sessions (``None``: none).
        share_across_sessions: recall every session of the user / agent scope, not only the current one.
        importance: the importance of a stored message.
        kind: the core kind of a stored message.
        ttl: its lifetime in seconds (``None``: the core's default for the kind).
        roles: the roles whose messages are stored (``None``: every role).
        context_window: how many messages before a stored one (of any role, same session) become its
            core ``context``: the question a short reply answers (``0``: none).
    """

    namespace: tuple[str, ...] = BLOCK_NAMESPACE
    user_id: str | None = None
    agent_id: str | None = None
    share_across_sessions: bool = True
    importance: float = 0.5
    kind: Kind = Kind.SEMANTIC
    ttl: float | None = None
    roles: frozenset[str] | None = None
    context_window: int = 1

    @property
    def shared(self) -> bool:
        """Whether recall reads the user / agent scope (every session of it)."""
        return self.share_across_sessions and (self.user_id is not None or self.agent_id is not None)


def message_text(message: ChatMessage) -> str:
    """The text of a message: its text blocks, joined by newlines (images and tool calls are not text)."""
    return "\n".join(block.text for block in message.blocks if isinstance(block, TextBlock)).strip()


def _session_of(message: ChatMessage, default: str | None) -> str | None:
    value = message.additional_kwargs.get(SESSION_KEY, default)
    if value is not None and not isinstance(value, str):
        raise InvalidMemoryError(f"a message's session_id must be a string, got {value!r}")
    return value or None


def memory_inputs(
    settings: BlockSettings, messages: Sequence[ChatMessage], session_id: str | None = None
) -> list[MemoryInput]:
    """The memories of flushed messages: one per message with text, ``"<role>: <text>"``, embedded.

    Each is scoped to its session (the ``session_id`` ``BaseMemoryBlock.aput`` put in its
    ``additional_kwargs``, else ``session_id``) and to the configured user / agent.

    Raises:
        InvalidMemoryError: for a message without any scope (no session, no user, no agent).
    """
    if isinstance(messages, (str, bytes, ChatMessage)) or not isinstance(messages, Sequence):
        raise InvalidMemoryError("messages must be a list of ChatMessage")
    out: list[MemoryInput] = []
    before: dict[str | None, list[str]] = {}  # per session: the earlier messages of this flush
    for message in messages:
        if not isinstance(message, ChatMessage):
            raise InvalidMemoryError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
        role = message.role.value
        text = message_text(message)
        if not text:
            continue
        session = _session_of(message, session_id)
        previous = before.setdefault(session, [])
        context = "\n".join(previous[-settings.context_window :]) if settings.context_window else ""
        previous.append(f"{role}: {text}")
        if settings.roles is not None and role not in settings.roles:
            continue
        if session is None and settings.user_id is None and settings.agent_id is None:
            raise InvalidMemoryError(
                "a memory block message needs a scope: a session_id (Memory passes it), or the block's "
                "user_id / agent_id"
            )
        out.append(
            MemoryInput(
                content=f"{role}: {text}", importance=settings.importance, kind=settings.kind, source=role,
                ttl=settings.ttl, namespace=settings.namespace, thread_id=session, user_id=settings.user_id,
                agent_id=settings.agent_id, metadata={"role": role}, context=context or None,
            )
        )  # fmt: skip
    return out


def query_text(messages: Sequence[ChatMessage] | None, window: int) -> str:
    """The recall query: the text of the last ``window`` messages, oldest first, one per line."""
    if not messages:
        return ""
    texts = [message_text(m) for m in list(messages)[-max(1, window) :]]
    return "\n".join(t for t in texts if t)


def recall_scope(settings: BlockSettings, session_id: str | None) -> dict[str, Any] | None:
    """The core filter a recall reads (``None``: no scope to read, so nothing is recalled).

    Shared: the user / agent scope, every session of it. Otherwise the current session only. A recall
    never reads the whole namespace.
    """
    scope: dict[str, Any] = {"namespace": settings.namespace}
    if settings.shared:
        if settings.user_id is not None:
            scope["user_id"] = settings.user_id
        if settings.agent_id is not None:
            scope["agent_id"] = settings.agent_id
        return scope
    if session_id is None:
        return None
    scope["thread_id"] = session_id
    if settings.user_id is not None:
        scope["user_id"] = settings.user_id
    if settings.agent_id is not None:
        scope["agent_id"] = settings.agent_id
    return scope


def check_template(template: str) -> str:
    """Validate a hit template (``str.format`` placeholders from :data:`TEMPLATE_FIELDS`).

    Raises:
        ValueError: for a template that is no string or names an unknown placeholder.
    """
    if not isinstance(template, str):
        raise ValueError(f"template must be a string, got {type(template).__name__}")
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in TEMPLATE_FIELDS:
            raise ValueError(f"unknown template placeholder {{{name}}}; known: {sorted(TEMPLATE_FIELDS)}")
    return template


def _fields(hit: RecallHit) -> Mapping[str, Any]:
    memory, scores = hit.memory, hit.scores
    role = str(memory.metadata.get("role", memory.source or ""))
    content = memory.content
    prefix = f"{role}: "
    return {
        "content": content,
        "text": content[len(prefix) :] if role and content.startswith(prefix) else content,
        "role": role,
        "session_id": memory.thread_id or "",
        "score": f"{scores.score:.3f}",
        "similarity": f"{scores.similarity:.3f}",
        "recency": f"{scores.recency:.3f}",
        "importance": f"{scores.importance:.3f}",
        "relevance": f"{scores.relevance:.3f}",
        "lexical": f"{scores.lexical:.3f}",
        "created_at": f"{memory.created_at:.0f}",
        "id": memory.id,
    }


def format_hits(hits: Sequence[RecallHit], template: str, show_scores: bool, separator: str) -> str:
    """The block text: one entry per hit, best first, joined by ``separator``.

    An entry never contains the separator (it is replaced by a space), so :func:`truncate` can cut the
    text back into its entries. ``show_scores`` appends the score breakdown to each entry.
    """
    entries: list[str] = []
    for hit in hits:
        fields = _fields(hit)
        entry = template.format(**fields)
        if show_scores:
            entry += (
                f" (score {fields['score']}: similarity {fields['similarity']}, recency {fields['recency']}, "
                f"importance {fields['importance']})"
            )
        entries.append(entry.replace(separator, " ") if separator else entry)
    return separator.join(entries)


def truncate(
    content: str, tokens: int, tokenizer: Callable[[str], Sequence[Any]], separator: str
) -> str | None:
    """Drop the weakest entries (the last ones) until at least ``tokens`` tokens are saved.

    Returns:
        What is left, or ``None`` when nothing is (the whole block goes).
    """
    if tokens <= 0:
        return content or None
    entries = content.split(separator) if separator else [content]
    total = len(tokenizer(content))
    while entries:
        entries.pop()
        left = separator.join(entries)
        if total - len(tokenizer(left)) >= tokens:
            break
    return separator.join(entries) or None
