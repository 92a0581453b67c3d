"""PII redaction (``redact=``): nothing the callback removes reaches the embedder or the storage.

Checked on every backend, sync and async, down to the bytes stored (Valkey: every key of the store,
read by type; SQLite: the database file and its write-ahead log).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import valkey
from _support import Facade  # tests/integration is on sys.path

from agentmem_core import RedactionError
from agentmem_core.connection import sqlite_path
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.redaction import PatternRedactor

pytestmark = pytest.mark.integration

EMAIL, PHONE, CARD = "ana.silva@example.com", "+351 912 345 678", "4111 1111 1111 1111"
SECRETS = (EMAIL, PHONE, CARD, "TP-884213")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pii_redaction.py"


class Recording(HashingEmbedder):
    """Keeps every text it embeds."""

    def __init__(self) -> None:
        super().__init__(64)
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed(texts)


def _redactor() -> PatternRedactor:
    return PatternRedactor(extra=[("[LOYALTY]", r"\bTP-\d{6}\b")])


async def _open(mem: Facade, name: str, embedder: HashingEmbedder, redact: Any) -> Facade:
    assert mem.url_for is not None
    cls = type(mem.store)
    store = Facade(cls.from_url(mem.url_for(name), name=name, embedder=embedder, redact=redact), mem.backend)
    await store.setup()
    return store


def _stored_bytes(url: str, name: str) -> bytes:
    """Every byte the backend holds for store ``name``."""
    path = sqlite_path(url)
    if path is not None:
        return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))
    client = valkey.Valkey.from_url(url)
    out: list[bytes] = []
    try:
        for key in client.scan_iter(match=f"am:{name}:*", count=1000):
            kind = client.type(key)
            if kind == b"hash":
                out += [b for pair in client.hgetall(key).items() for b in pair]
            elif kind == b"zset":
                out += list(client.zrange(key, 0, -1))
            elif kind == b"stream":
                out += [b for _, fields in client.xrange(key) for pair in fields.items() for b in pair]
            elif kind == b"string":
                out.append(client.get(key) or b"")
            elif kind == b"set":
                out += list(client.smembers(key))
            else:
                raise AssertionError(f"unexpected key type {kind!r} at {key!r}")
    finally:
        client.close()
    return b"\x00".join(out)


async def test_nothing_redacted_reaches_the_embedder_or_the_storage(mem: Facade, unique_name: str) -> None:
    name = unique_name + "_pii"
    embedder = Recording()
    store = await _open(mem, name, embedder, _redactor())
    try:
        first = await store.remember(
            f"Ana's e-mail is {EMAIL} and her phone is {PHONE}",
            user_id="ana",
            metadata={"card": CARD, "loyalty": {"tap": "TP-884213"}, "seats": ["window", EMAIL]},
        )
        await store.remember_many(
            [{"content": f"card on file: {CARD}", "user_id": "ana", "metadata": {"ids": ["TP-884213"]}}]
        )
        await store.remember("multi", user_id="ana", texts=[f"reach her at {EMAIL}", "aisle"])
        await store.update(first, content=f"Ana's new e-mail is {EMAIL}", metadata={"note": PHONE})
        hits = await store.recall(f"what is {EMAIL}?", user_id="ana", k=3)
        assert hits.hits, "the redacted query finds the redacted memory"
        memory = await store.get(first)
        assert memory.content == "Ana's new e-mail is [EMAIL]" and memory.metadata == {"note": "[PHONE]"}
        assert "[EMAIL]" in embedder.seen[-1]  # the recall query was redacted before it was embedded
        assert not [s for s in SECRETS if any(s in text for text in embedder.seen)]
        if mem.backend == "sqlite":
            await store.close()  # checkpoints nothing away: the WAL is read too
        raw = _stored_bytes(mem.url_for(name), name)  # type: ignore[misc]
        assert b"[EMAIL]" in raw
        assert not [s for s in SECRETS if s.encode() in raw]
    finally:
        await store.close()


async def test_without_a_redactor_the_same_bytes_are_there(mem: Facade, unique_name: str) -> None:
    # the scan above can see a secret: without redact= it finds it in the stored bytes
    name = unique_name + "_raw"
    store = await _open(mem, name, HashingEmbedder(64), None)
    try:
        await store.remember(f"Ana's e-mail is {EMAIL}", user_id="ana", metadata={"card": CARD})
        raw = _stored_bytes(mem.url_for(name), name)  # type: ignore[misc]
        assert EMAIL.encode() in raw and CARD.encode() in raw
    finally:
        await store.close()


async def test_a_failing_redactor_raises_a_typed_error_and_writes_nothing(
    mem: Facade, unique_name: str
) -> None:
    def refuses(text: str) -> str:
        if "secret" in text:
            raise RuntimeError("vault unavailable")
        return text

    store = await _open(mem, unique_name + "_fail", HashingEmbedder(64), refuses)
    try:
        with pytest.raises(RedactionError, match="content.*vault unavailable") as caught:
            await store.remember_many(["fine", "a secret"])
        assert isinstance(caught.value.__cause__, RuntimeError)
        with pytest.raises(RedactionError, match=r"metadata\['k'\]"):
            await store.remember("fine", metadata={"k": "secret"})
        assert await store.count() == 0  # all are checked before any write
        with pytest.raises(RedactionError, match="query"):
            await store.recall("a secret")
    finally:
        await store.close()


async def test_a_redactor_must_return_text(mem: Facade, unique_name: str) -> None:
    store = await _open(mem, unique_name + "_type", HashingEmbedder(64), lambda text: None)
    try:
        with pytest.raises(RedactionError, match="must return a str"):
            await store.remember("anything")
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["embedded", "valkey"])
def test_the_example_runs_and_leaks_nothing(backend: str, valkey_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AGENTMEM_URL"}
    if backend == "valkey":
        env["AGENTMEM_URL"] = valkey_url
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "stored content:  Ana's e-mail is [EMAIL] and her phone is [PHONE]" in done.stdout
    assert "secrets that reached the embedder or the store: none" in done.stdout
