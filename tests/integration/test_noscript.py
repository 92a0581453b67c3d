"""Scripts lost by the server (SCRIPT FLUSH, a restart, a failover) are reloaded without reordering a batch.

Found by the embedded backend's differential test: after NOSCRIPT, the failed scripts were re-run after
the rest of their batch, so a read placed after a script in one batch (update returns the memory it
changed that way) saw the state before the script.
"""

from __future__ import annotations

import valkey
import valkey.asyncio as avalkey

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.embeddings import HashingEmbedder


def test_a_read_after_a_flushed_script_in_one_batch_sees_the_script(
    valkey_url: str, unique_name: str
) -> None:
    with MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(16)) as store:
        store.setup()
        memory_id = store.remember("tea, always", user_id="u", importance=0.2, tags=["drinks"])
        admin = valkey.Valkey.from_url(valkey_url)
        try:
            admin.script_flush()
            updated = store.update(memory_id, importance=0.9, tags=["drinks", "morning"])
        finally:
            admin.close()
        assert updated.importance == 0.9 and updated.tags == ("drinks", "morning")
        assert store.get(memory_id).importance == 0.9  # type: ignore[union-attr]
        admin = valkey.Valkey.from_url(valkey_url)
        try:
            admin.script_flush()
            hits = store.recall("tea", user_id="u", k=1)  # FETCH reinforces: one access, counted once
        finally:
            admin.close()
        assert hits.hits[0].memory.access_count == 1
        assert store.get(memory_id).access_count == 1  # type: ignore[union-attr]


async def test_the_async_store_reloads_in_order_too(valkey_url: str, unique_name: str) -> None:
    store = AsyncMemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(16))
    await store.setup()
    try:
        memory_id = await store.remember("coffee", user_id="u", importance=0.2)
        admin = avalkey.Valkey.from_url(valkey_url)
        try:
            await admin.script_flush()
            updated = await store.update(memory_id, importance=0.7)
        finally:
            await admin.aclose()
        assert updated.importance == 0.7
    finally:
        await store.close()


def test_an_audit_entry_batched_after_a_flushed_script_is_logged_once(
    valkey_url: str, unique_name: str
) -> None:
    with MemoryStore.from_url(valkey_url, name=unique_name, embedder=HashingEmbedder(16)) as store:
        store.setup()
        memory_id = store.remember("tea", user_id="u", id="caller-1")  # a caller id: forget releases it
        admin = valkey.Valkey.from_url(valkey_url)
        try:
            admin.script_flush()
            assert store.forget(memory_id)  # its ReleaseIds script and the audit XADD share a batch
        finally:
            admin.close()
        assert [e.action for e in store.audit()] == ["forget", "remember"]
