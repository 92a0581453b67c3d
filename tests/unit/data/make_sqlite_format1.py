"""Writes ``sqlite_format1.db`` and ``sqlite_format1.json`` (run once, at commit c785ec5).

That commit's embedded backend wrote SQLite layout ``"1"`` (TAG and NUMERIC postings keyed by the
memory id). The file is what a user of that version has on disk; the JSON holds what that version
answered on it, so ``test_sqlite_format.py`` can check that a later layout migrates the file and answers
the same. It only makes sense to run this script with that commit's code.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from agentmem_core import MemoryStore
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.embeddings import HashingEmbedder

HERE = Path(__file__).parent
DB = HERE / "sqlite_format1.db"
WEIGHTS = {"similarity": 0.8, "recency": 0.0, "importance": 0.2}
"""No recency: the answers must not depend on when the test runs."""
QUERIES = json.loads((HERE / "sqlite_format1_queries.json").read_text())


def answers(store: MemoryStore) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, spec in QUERIES["lists"].items():
        out[name] = [m.id for m in store.list(**spec, limit=100, counters=False).memories]
    for name, spec in QUERIES["recalls"].items():
        spec = dict(spec)
        hits = store.recall(spec.pop("text"), **spec, weights=WEIGHTS, reinforce=False, threshold=None)
        out[name] = [h.memory.id for h in hits]
    out["count"] = store.count()
    return out


def main() -> None:
    if DB.exists():
        sys.exit(f"{DB} exists")
    store = MemoryStore.from_url(
        f"sqlite:///{DB}", name="legacy", embedder=HashingEmbedder(16),
        config=StoreConfig(name="legacy", index=IndexConfig(dims=16), numeric_fields=("price",)),
    )
    store.setup()
    for user in ("alice", "bob", "carol"):
        for n in range(12):
            store.remember(
                f"{user} note {n}: likes {['tea', 'coffee', 'rome', 'paris'][n % 4]} trips",
                user_id=user, thread_id=f"t{n % 3}", tags=[["food"], ["travel"], ["food", "travel"]][n % 3],
                metadata={"price": n, "city": ["rome", "paris"][n % 2]}, importance=0.1 + 0.07 * n,
                key=f"{user}-k{n}" if n % 5 == 0 else None,
                texts=[f"{user} alt {n}"] if n == 7 else None,
            )
    store.forget(store.list(user_id="carol", limit=1).memories[0].id)
    result = answers(store)
    store.close()
    conn = sqlite3.connect(DB)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("VACUUM")
    conn.close()
    (HERE / "sqlite_format1.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
