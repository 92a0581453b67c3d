"""LlamaIndex adapter: ValkeyChatStore vs SQLAlchemyChatStore on SQLite, and a Memory.aget turn, in one run.

Rows (p50 / p95 milliseconds over ``--rounds`` sessions, each a fresh session key):

1. ``add x50``: a 50-message session written one ``add_message`` at a time (what ``Memory.aput`` does);
2. ``add_messages(50)``: the same 50 messages as one batch;
3. ``get 50``: ``get_messages`` of a 50-message session just written (the first read of it);
4. ``get 50 again``: the same read once more (what every later ``Memory.aget`` of a session reads first);
5. ``count``: ``count_messages`` of it;
6. ``archive 10``: ``archive_oldest_messages(key, 10)`` (a queue flush);
7. ``Memory.aget turn``: on a 50-message session, ``Memory.aget(input=...)`` with a
   ``ValkeyMemoryBlock`` (the same block, holding 200 flushed messages of the user, for both stores) --
   so the row isolates what the chat store costs in a turn.

SQLite runs through ``sqlite+aiosqlite`` twice: a file in a temporary directory (SQLite's defaults: each
commit is synced to disk) and ``:memory:`` (``SQLAlchemyChatStore``'s default URI). Valkey is a throwaway
``valkey-server`` with the search module on loopback (or ``--valkey-url``), started without RDB or AOF
persistence: it writes nothing to disk, like ``:memory:``, so ``:memory:`` is the like-for-like column and
the file the one a durable deployment pays. Embeddings are the deterministic hashing model (no model
cost). Every read is checked (message counts and order). Ratios are SQLite time / Valkey time (> 1: Valkey
faster).

Usage::

    python benchmarks/llamaindex_bench.py [--valkey-url URL] [--rounds 30] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.server import ValkeyServer
from agentmem_llamaindex import ValkeyChatStore, ValkeyMemoryBlock

SESSION = 50
DIMS = 64


class HashEmbedding(BaseEmbedding):
    """The core's deterministic HashingEmbedder as a LlamaIndex embedding model."""

    _hasher: HashingEmbedder = PrivateAttr()

    def __init__(self) -> None:
        super().__init__(model_name="hash")
        self._hasher = HashingEmbedder(DIMS)

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._hasher.embed([query])[0]]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)


def messages(n: int, tag: str) -> list[ChatMessage]:
    roles = ("user", "assistant")
    return [
        ChatMessage(role=roles[i % 2], content=f"{tag} message {i}: a sentence of ordinary chat length here.")
        for i in range(n)
    ]


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000, "n": len(ordered)}


async def chat_rows(store: AsyncDBChatStore, rounds: int) -> dict[str, dict[str, float]]:
    series: dict[str, list[float]] = {
        k: [] for k in ("add x50", "add_messages(50)", "get 50", "get 50 again", "count", "archive 10")
    }
    run = uuid.uuid4().hex[:8]
    clock = time.perf_counter
    for r in range(rounds):
        batch = messages(SESSION, f"r{r}")
        single, multi = f"{run}-single-{r}", f"{run}-batch-{r}"
        start = clock()
        for message in batch:
            await store.add_message(single, message)
        series["add x50"].append(clock() - start)
        start = clock()
        await store.add_messages(multi, batch)
        series["add_messages(50)"].append(clock() - start)
        start = clock()
        got = await store.get_messages(single)
        series["get 50"].append(clock() - start)
        assert [m.content for m in got] == [m.content for m in batch], "get_messages order"
        start = clock()
        again = await store.get_messages(single)
        series["get 50 again"].append(clock() - start)
        assert again == got
        start = clock()
        counted = await store.count_messages(single)
        series["count"].append(clock() - start)
        assert counted == SESSION
        start = clock()
        archived = await store.archive_oldest_messages(single, 10)
        series["archive 10"].append(clock() - start)
        assert [m.content for m in archived] == [m.content for m in batch[:10]]
    return {name: summary(values) for name, values in series.items()}


async def memory_turns(store: AsyncDBChatStore, block: ValkeyMemoryBlock, rounds: int) -> dict[str, float]:
    samples = []
    run = uuid.uuid4().hex[:8]
    for r in range(rounds):
        memory = Memory.from_defaults(
            session_id=f"{run}-turn-{r}", token_limit=100_000, memory_blocks=[block], chat_store=store
        )
        await store.add_messages(memory.session_id, messages(SESSION, f"t{r}"))
        start = time.perf_counter()
        out = await memory.aget(input="which seat and meal do I prefer on flights?")
        samples.append(time.perf_counter() - start)
        assert len(out) == SESSION + 1 and out[0].role.value == "system", "block content in the turn"
    return summary(samples)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = None
    url = args.valkey_url
    if url is None:
        server = ValkeyServer(search=True).start()
        url = server.url
    tmp = tempfile.TemporaryDirectory()
    name = "li" + uuid.uuid4().hex[:10]
    valkey_chat = ValkeyChatStore.from_url(url, name=f"{name}c")
    block = ValkeyMemoryBlock.from_url(
        url, name=f"{name}m", embed_model=HashEmbedding(), user_id="ana", similarity_top_k=5
    )
    sqlite_file = SQLAlchemyChatStore(
        table_name="bench", async_database_uri=f"sqlite+aiosqlite:///{Path(tmp.name) / 'chat.db'}"
    )
    sqlite_mem = SQLAlchemyChatStore(table_name="bench", async_database_uri="sqlite+aiosqlite:///:memory:")
    stores: dict[str, AsyncDBChatStore] = {
        "valkey": valkey_chat,
        "sqlite file": sqlite_file,
        "sqlite memory": sqlite_mem,
    }
    try:
        await valkey_chat.asetup()
        await block.asetup()
        await block.aput(messages(200, "earlier"), session_id="ana-earlier")  # what the block recalls from
        for store in stores.values():  # warm-up (connections, tables, scripts)
            await chat_rows(store, 2)
            await memory_turns(store, block, 2)
        # Round-robin: one round of every store at a time, so background load hits all of them alike.
        raw: dict[str, dict[str, list[dict[str, float]]]] = {label: {} for label in stores}
        for _ in range(args.rounds):
            for label, store in stores.items():
                rows = await chat_rows(store, 1)
                rows["Memory.aget turn"] = await memory_turns(store, block, 1)
                for row, sample in rows.items():
                    raw[label].setdefault(row, []).append(sample)
        results = {
            label: {row: summary([s["p50_ms"] / 1000 for s in samples]) for row, samples in rows.items()}
            for label, rows in raw.items()
        }
    finally:
        await valkey_chat.aclose()
        await block.aclose()
        for sql in (sqlite_file, sqlite_mem):
            if sql._async_engine is not None:
                await sql._async_engine.dispose()
        tmp.cleanup()
        if server is not None:
            server.stop()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rounds": args.rounds,
        "session": SESSION,
        "results": results,
    }


def report(data: dict[str, Any]) -> None:
    """Print the rows as a markdown table (p50 / p95 ms; ratios SQLite p50 / Valkey p50)."""
    results = data["results"]
    print(
        f"LlamaIndex chat store, {data['session']}-message sessions, {data['rounds']} rounds (p50 / p95 ms)\n"
    )
    columns = ("valkey", "sqlite file", "sqlite memory")
    print("| operation | " + " | ".join(columns) + " | file / valkey | memory / valkey |")
    print("|---|--:|--:|--:|--:|--:|")
    for row in results["valkey"]:
        cells = [f"{results[c][row]['p50_ms']:.2f} / {results[c][row]['p95_ms']:.2f}" for c in columns]
        ours = results["valkey"][row]["p50_ms"]
        ratios = [f"{results[c][row]['p50_ms'] / ours:.2f}x" for c in columns[1:]]
        print(f"| {row} | " + " | ".join(cells + ratios) + " |")
    print("\nratio = SQLite p50 / Valkey p50 (> 1: Valkey faster); Memory.aget turn includes the block.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--valkey-url", default=None)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", default=None, help="write the results as JSON here")
    options = parser.parse_args()
    outcome = asyncio.run(main(options))
    report(outcome)
    if options.json:
        Path(options.json).write_text(json.dumps(outcome, indent=2))
