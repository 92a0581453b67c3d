"""PII redaction: the embedder and the storage never see an e-mail address, phone or card number.

Run with ``python examples/pii_redaction.py``. By default it runs on the embedded backend (a SQLite file
in a temporary directory); ``AGENTMEM_URL=valkey://host:port`` runs it on a Valkey with a search module.
A store given ``redact=`` passes every text through it before embedding and storage (content, texts,
metadata values, updates and recall queries: see ``agentmem_core.redaction``). Here the ready-made
``PatternRedactor`` is extended with one more pattern (a loyalty number), and a wrapper around the
embedder records every text it was asked to embed, so the script can show what left the process.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence

import numpy as np

from agentmem_core import MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.redaction import PatternRedactor


class RecordingEmbedder(HashingEmbedder):
    """A keyless embedder that keeps every text it embeds (a stand-in for a hosted embedding API)."""

    def __init__(self, dims: int) -> None:
        super().__init__(dims)
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed(texts)


SECRETS = ["ana.silva@example.com", "+351 912 345 678", "4111 1111 1111 1111", "TP-884213"]


def main() -> None:
    redactor = PatternRedactor(extra=[("[LOYALTY]", r"\bTP-\d{6}\b")])
    embedder = RecordingEmbedder(dims=256)
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("AGENTMEM_URL") or f"sqlite:///{tmp}/pii.db"
        name = "pii_" + uuid.uuid4().hex[:8]
        with MemoryStore.from_url(url, name=name, embedder=embedder, redact=redactor) as store:
            store.setup()
            store.remember(
                "Ana's e-mail is ana.silva@example.com and her phone is +351 912 345 678",
                user_id="ana",
                metadata={"card": "4111 1111 1111 1111", "loyalty": {"tap": "TP-884213"}},
            )
            store.remember("Ana prefers a window seat on TAP flights", user_id="ana")
            hits = store.recall("what is ana.silva@example.com's contact?", user_id="ana", k=1)
            memory = hits.hits[0].memory
            print("stored content: ", memory.content)
            print("stored metadata:", memory.metadata)
            print("embedder saw:   ", embedder.seen)
            leaked = [s for s in SECRETS if any(s in text for text in embedder.seen)]
            leaked += [s for s in SECRETS if s in memory.content or s in str(memory.metadata)]
            print("secrets that reached the embedder or the store:", leaked or "none")
            if leaked:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
