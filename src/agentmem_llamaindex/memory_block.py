"""``ValkeyMemoryBlock``: a scored long-term memory block (``BaseMemoryBlock[str]``) for ``Memory``.

Messages ``Memory`` flushes from its short-term queue become core memories, one per message with text
(``"<role>: <text>"``, embedded), in the namespace ``("llamaindex", "memory")`` (``namespace=``), scoped to
the session they came from (core ``thread_id``) and, when set, to the block's ``user_id`` / ``agent_id``.
On ``Memory.aget`` the block recalls the ``similarity_top_k`` best memories for the latest messages by the
core's composite score (similarity, recency, importance; hybrid lexical relevance where the core has it)
and formats them one per line, best first. With a ``user_id`` (or ``agent_id``) and
``share_across_sessions=True`` (the default) a new session of the same user recalls what earlier sessions
flushed; otherwise a session recalls only its own memories. A recall never reads the whole namespace.

``atruncate`` drops the weakest lines until the requested number of tokens is saved; ``priority`` is
LlamaIndex's (0: never truncated, the default of ``BaseMemoryBlock``; higher: truncated later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.utils import get_tokenizer

from agentmem_core import (
    AgentMemError,
    AsyncMemoryStore,
    ConfigurationError,
    EmbeddingError,
    EngineInfo,
    InvalidMemoryError,
    Kind,
    MemoryFilter,
    RecallResult,
)
from agentmem_core.embeddings import EmbedderLike
from agentmem_llamaindex._block_plan import (
    BLOCK_NAMESPACE,
    DEFAULT_TEMPLATE,
    BlockSettings,
    check_template,
    format_hits,
    memory_inputs,
    query_text,
    recall_scope,
    truncate,
)
from agentmem_llamaindex.embeddings import llamaindex_embedder

__all__ = ["ValkeyMemoryBlock"]


class ValkeyMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memory for LlamaIndex ``Memory`` on an agentmem core store, recalled by composite score.

    Example::

        block = ValkeyMemoryBlock.from_url("valkey://localhost:6379", name="memories",
                                           embed_model=embed_model, user_id="ana")
        await block.asetup()
        memory = Memory.from_defaults(session_id="ana-2", token_limit=4000, memory_blocks=[block],
                                      chat_store=chat_store)

    Pass a core ``AsyncMemoryStore`` (any backend, any core embedder) as ``store``, or a URL to
    :meth:`from_url`. Give ``embed_model`` (a LlamaIndex ``BaseEmbedding``) to embed queries with its
    ``aget_query_embedding``; without it the core's embedder embeds them. Call :meth:`asetup` once.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = Field(default="ValkeyMemory", description="The name of the memory block.")
    namespace: tuple[str, ...] = Field(default=BLOCK_NAMESPACE, description="Core namespace of the memories.")
    user_id: str | None = Field(default=None, description="User scope shared across sessions.")
    agent_id: str | None = Field(default=None, description="Agent scope shared across sessions.")
    share_across_sessions: bool = Field(
        default=True, description="Recall every session of the user / agent scope, not only the current one."
    )
    similarity_top_k: int = Field(default=5, ge=1, le=1000, description="How many memories to recall.")
    retrieval_context_window: int = Field(
        default=5, ge=1, description="How many of the latest messages make the recall query."
    )
    threshold: float | None = Field(
        default=None, description="Maximum cosine distance of a hit (None: the core store's setting)."
    )
    weights: dict[str, float] | None = Field(
        default=None, description="Composite weights (similarity, recency, importance) for recalls."
    )
    importance: float = Field(default=0.5, ge=0.0, le=1.0, description="Importance of stored messages.")
    kind: str = Field(default=Kind.SEMANTIC.value, description="Core kind of stored messages.")
    ttl: float | None = Field(default=None, gt=0, description="Lifetime of stored messages in seconds.")
    roles: list[str] | None = Field(default=None, description="Roles whose messages are stored (None: all).")
    context_window: int = Field(
        default=1, ge=0, le=20, description="Earlier messages that situate a stored one in recall (0: none)."
    )
    template: str = Field(default=DEFAULT_TEMPLATE, description="Format of one recalled memory.")
    separator: str = Field(default="\n", min_length=1, description="Between recalled memories.")
    show_scores: bool = Field(default=False, description="Append each memory's score breakdown.")
    reinforce: bool = Field(default=True, description="Recalls reinforce the memories they return.")
    tokenizer_fn: Callable[[str], Sequence[Any]] | None = Field(
        default=None, exclude=True, description="Tokenizer for atruncate (default: LlamaIndex's)."
    )

    _core: AsyncMemoryStore = PrivateAttr()
    _embed_model: BaseEmbedding | None = PrivateAttr(default=None)
    _settings: BlockSettings = PrivateAttr()

    def __init__(
        self, store: AsyncMemoryStore, *, embed_model: BaseEmbedding | None = None, **fields: Any
    ) -> None:
        """Wrap a core store (no I/O).

        Args:
            store: the core ``AsyncMemoryStore``.
            embed_model: a LlamaIndex embedding model for queries (its dimension must be the store's).
            **fields: the block's fields (``name``, ``user_id``, ``similarity_top_k``, ``priority``, ...).

        Raises:
            ConfigurationError: for a bad store, embedding model, scope, kind or template.
        """
        if not isinstance(store, AsyncMemoryStore):
            raise ConfigurationError(
                f"store must be an agentmem_core.AsyncMemoryStore, got {type(store).__name__}"
            )
        if embed_model is not None and not isinstance(embed_model, BaseEmbedding):
            raise ConfigurationError(f"embed_model must be a BaseEmbedding, got {type(embed_model).__name__}")
        super().__init__(**fields)
        try:
            MemoryFilter.build(namespace=self.namespace, user_id=self.user_id, agent_id=self.agent_id)
            kind = Kind.parse(self.kind)
            check_template(self.template)
        except (InvalidMemoryError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self._core = store
        self._embed_model = embed_model
        self._settings = BlockSettings(
            namespace=tuple(self.namespace), user_id=self.user_id, agent_id=self.agent_id,
            share_across_sessions=self.share_across_sessions, importance=self.importance, kind=kind,
            ttl=self.ttl, roles=None if self.roles is None else frozenset(self.roles),
            context_window=self.context_window,
        )  # fmt: skip

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str = "llamaindex_memory",
        embed_model: BaseEmbedding | None = None,
        embedder: EmbedderLike | None = None,
        dims: int | None = None,
        cluster: bool = False,
        core_options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> ValkeyMemoryBlock:
        """A block on its own core store (``AsyncMemoryStore.from_url``), which :meth:`aclose` closes.

        Args:
            url: the core store URL.
            name: the core store name (the block's own name is the ``name`` field: pass it in ``fields``
                as ``block_name=``).
            embed_model: a LlamaIndex embedding model (wrapped once into the core embedder).
            embedder: a core embedder or batch function instead of ``embed_model``.
            dims: the vector dimension (else the core finds it with one call in ``asetup``).
            cluster: connect with the cluster client.
            core_options: more core store options.
            **fields: the block's fields; ``block_name`` sets its ``name``.

        Raises:
            ConfigurationError: for neither or both of ``embed_model`` and ``embedder``.
        """
        if (embed_model is None) == (embedder is None):
            raise ConfigurationError(
                "give exactly one of embed_model (a BaseEmbedding) or embedder (a core one)"
            )
        core_embedder: EmbedderLike
        if embed_model is not None:
            core_embedder = llamaindex_embedder(embed_model)
        else:
            assert embedder is not None  # exactly one of the two, checked above
            core_embedder = embedder
        if "block_name" in fields:
            fields["name"] = fields.pop("block_name")
        core = AsyncMemoryStore.from_url(
            url, name=name, embedder=core_embedder, dims=dims, cluster=cluster, **dict(core_options or {})
        )
        return cls(core, embed_model=embed_model, **fields)

    @property
    def core(self) -> AsyncMemoryStore:
        """The core store underneath."""
        return self._core

    async def asetup(self) -> EngineInfo:
        """Create the core's index (or check the existing one); idempotent."""
        return await self._core.setup()

    async def aclose(self) -> None:
        """Close the core store's client if the core store owns it (blocks made by :meth:`from_url`)."""
        await self._core.close()

    # -- BaseMemoryBlock -------------------------------------------------------------------------------
    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Store flushed messages (one memory per message with text) in one embedding call.

        Raises:
            InvalidMemoryError: for a message the core refuses or one without a scope (nothing is stored).
        """
        items = memory_inputs(self._settings, messages)
        if items:
            await self._core.remember_many(items)

    async def _aget(
        self, messages: list[ChatMessage] | None = None, session_id: str | None = None, **block_kwargs: Any
    ) -> str:
        """The memories most relevant to the latest messages, formatted, best first (``""``: none)."""
        query = query_text(messages, self.retrieval_context_window)
        scope = recall_scope(self._settings, session_id)
        if not query or scope is None:
            return ""
        result = await self.arecall(query, scope)
        return format_hits(result.hits, self.template, self.show_scores, self.separator)

    async def arecall(self, query: str, scope: Mapping[str, Any]) -> RecallResult:
        """Recall for a query text within a core scope, with the block's settings."""
        options: dict[str, Any] = {"k": self.similarity_top_k, "reinforce": self.reinforce, **scope}
        if self.threshold is not None:
            options["threshold"] = self.threshold
        if self.weights is not None:
            options["weights"] = self.weights
        if self._embed_model is None:
            return await self._core.recall(query, **options)
        try:
            vector = await self._embed_model.aget_query_embedding(query)
        except AgentMemError:
            raise
        except Exception as exc:  # an embedding model is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embed_model failed: {type(exc).__name__}: {exc}") from exc
        return await self._core.recall_by_vector(vector, **options)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the weakest recalled memories until ``tokens_to_truncate`` tokens are saved."""
        if not content or not isinstance(content, str):
            return None
        tokenizer = self.tokenizer_fn or get_tokenizer()
        return truncate(content, tokens_to_truncate, tokenizer, self.separator)
