"""Travel-assistant demo: remember a traveller's preferences in one session, recall them in the next.

Run with ``make demo``. By default it runs on the embedded backend (a SQLite file in a temporary
directory: no server). ``AGENTMEM_URL=valkey://host:port`` runs the same demo on a Valkey with a search
module, and ``AGENTMEM_URL=valkey`` on a throwaway local one it starts. It embeds with the local
all-MiniLM-L6-v2 model (offline), or with a keyless hashing embedder when ``AGENTMEM_EMBEDDER=hashing``.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid

from agentmem_core import DAY, Kind, MemoryStore
from agentmem_core.embeddings import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from agentmem_core.testing.server import ValkeyServer


def make_embedder() -> Embedder:
    if os.environ.get("AGENTMEM_EMBEDDER") == "hashing":
        return HashingEmbedder(dims=256)
    return SentenceTransformerEmbedder()


def session_one(store: MemoryStore, user: str) -> None:
    print("\n== Session 1: the traveller chats with the assistant ==")
    now = time.time()
    facts = [
        ("I always want a window seat on flights.", 0.9, ["flights", "seating"], Kind.SEMANTIC, 40),
        ("I'm vegetarian, so no meat in restaurant picks please.", 1.0, ["food"], Kind.SEMANTIC, 30),
        ("My budget for hotels is around 150 euros a night.", 0.7, ["hotels", "budget"], Kind.SEMANTIC, 20),
        ("Last trip I loved the jazz bars in Lisbon.", 0.5, ["nightlife"], Kind.EPISODIC, 10),
        ("I get motion sickness on long bus rides.", 0.8, ["transport"], Kind.SEMANTIC, 5),
    ]
    thread = "session-1"
    for text, importance, tags, kind, days_ago in facts:
        store.remember(
            text, user_id=user, thread_id=thread, importance=importance, tags=tags, kind=kind,
            source="user", created_at=now - days_ago * DAY,
        )  # fmt: skip
        print(f"  remembered: {text}")


def session_two(store: MemoryStore, user: str) -> None:
    print("\n== Session 2 (a new conversation): the assistant plans a trip to Porto ==")
    questions = [
        "Book me a flight to Porto",
        "Find somewhere to eat dinner tonight",
        "How should I get from the airport to the old town?",
    ]
    for question in questions:
        print(f"\n  user asks: {question!r}")
        result = store.recall(question, user_id=user, k=2)
        for hit in result:
            s = hit.scores
            print(
                f"    -> {hit.memory.content}\n"
                f"       score={s.score:.3f} (similarity={s.similarity:.3f}, recency={s.recency:.3f}, "
                f"importance={s.importance:.2f}; distance={hit.distance:.3f}, "
                f"recalled {hit.memory.access_count}x)"
            )


def main() -> None:
    server = None
    workdir = tempfile.TemporaryDirectory(prefix="agentmem-demo-")
    url = os.environ.get("AGENTMEM_URL") or f"sqlite:///{os.path.join(workdir.name, 'travel_demo.db')}"
    if url == "valkey":
        server = ValkeyServer(search=True).start()
        url = server.url
        print(f"started a local Valkey with the search module at {url}")
    print(f"store: {url}")
    user = "traveller-" + uuid.uuid4().hex[:6]
    try:
        with MemoryStore.from_url(url, name="travel_demo", embedder=make_embedder()) as store:
            engine = store.setup()
            print(f"search engine: {engine.kind} {'.'.join(map(str, engine.version))}")
            session_one(store, user)
        # A brand-new store object = a new session / process: nothing is kept in Python memory.
        with MemoryStore.from_url(url, name="travel_demo", embedder=make_embedder()) as store:
            store.setup()
            session_two(store, user)
            stats = store.stats(user_id=user)
            print(f"\n{stats.total} memories for {user}: {dict(stats.by_kind)}")
            store.forget_by_scope(user_id=user)
    finally:
        if server is not None:
            server.stop()
        workdir.cleanup()


if __name__ == "__main__":
    main()
