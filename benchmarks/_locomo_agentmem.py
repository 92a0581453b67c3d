"""The agentmem-backed LoCoMo retriever: the real store, default configuration, on a real Valkey.

One namespace per conversation; every turn is one memory ("Speaker: text") with its session time as
``created_at`` and its dialogue id as the memory ``key``. Recall runs with the store's defaults except
``reinforce=False``: reinforcement refreshes "last access", which would make the score depend on the order
in which questions are asked. "Now" is one day after the conversation's last session.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmem_core import MemoryStore
from agentmem_core.embeddings import CallableEmbedder
from agentmem_core.testing.server import ValkeyServer


@dataclass(frozen=True)
class Hit:
    dia_id: str
    score: float
    similarity: float | None = None


class AgentmemRetriever:
    name = "agentmem"

    def __init__(
        self, cache: Any, valkey_url: str | None, *, context: bool = True, **store_options: Any
    ) -> None:
        self.cache = cache
        self.context = context  # remember(context=<the previous turn of the same session>)
        self.server: ValkeyServer | None = None
        if valkey_url is None:
            self.server = ValkeyServer(search=True).start()
            valkey_url = self.server.url
        self.now = 0.0
        self.nows: dict[str, float] = {}
        embedder = CallableEmbedder(lambda texts: np.asarray(self.cache.embed(list(texts))), dims=384)
        self.store = MemoryStore.from_url(
            valkey_url,
            name="locomo_" + uuid.uuid4().hex[:8],
            embedder=embedder,
            clock=lambda: self.now,
            **store_options,
        )
        self.store.setup()

    def add(self, conversation: Any) -> None:
        self.nows[conversation.namespace] = conversation.now
        self.now = conversation.now
        items = [
            {
                "content": m.content,
                "created_at": m.created_at,
                "key": m.dia_id,
                "namespace": ("locomo", conversation.namespace),
                "kind": "semantic",
                "context": m.context if self.context else None,
            }
            for m in conversation.memories
        ]
        for start in range(0, len(items), 500):
            self.store.remember_many(items[start : start + 500])

    def recall(self, question: Any, k: int) -> list[Any]:
        self.now = self.nows[question.conversation]
        result = self.store.recall(
            question.question, k=k, namespace=("locomo", question.conversation), reinforce=False
        )
        return [Hit(h.memory.key or "", h.score, h.scores.similarity) for h in result]

    def close(self) -> None:
        self.store.forget_by_scope(namespace_prefix=("locomo",))
        self.store.close()
        if self.server is not None:
            self.server.stop()


def make(cache: Any, valkey_url: str | None, options: Sequence[str] = ()) -> AgentmemRetriever:
    return AgentmemRetriever(cache, valkey_url)
