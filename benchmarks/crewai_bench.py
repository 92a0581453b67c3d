"""CrewAI storage benchmark: ValkeyStorage (Valkey, and the embedded core backend) vs LanceDBStorage.

In one run, for each size N (records already stored), every backend gets the same operations:

* save: ``storage.save(batch)`` with batches of 10 new records (what ``Memory.remember_many`` hands
  over), ``--ops`` timed calls;
* the save floor: on Valkey, ``batch`` stored memory hashes HSET to new keys the index covers, one
  pipeline, nothing else: the server's own cost of inserting them into the index (the fastest any save
  of that index can be; an HNSW graph insertion is most of it); on the embedded backend, ``batch``
  stored memories' rows (fields, vector, index entries, sorted-set entries) copied to new ids in one
  transaction on a second connection: what SQLite pays to write them in this file format (mostly the
  B-tree pages the commit writes to the WAL);
* search: ``storage.search(query, limit=10)`` over the whole store, and with ``scope_prefix`` selecting
  a quarter of it (what ``Memory.recall`` sends under a ``root_scope``), ``--ops`` timed calls each.

Stores are filled to each size with untimed bulk saves (batches of 1,000); LanceDB is then compacted
(``optimize()``, what its background compaction does every 100 saves), so it is measured at its best.
LanceDBStorage has no ANN index (CrewAI never creates one): its search is a scan on local disk, which is
what CrewAI users run. ValkeyStorage searches the core's index (FLAT, its default, or HNSW). Vectors are
seeded random unit vectors (``--dims``); embedding cost is excluded. Latencies are per call, p50 / p95 in
ms, and every ratio is LanceDB / ValkeyStorage (above 1: ValkeyStorage is faster).

The machine may be shared: numbers are noisy; compare ratios from one run, not absolute times across runs.

Usage::

    python benchmarks/crewai_bench.py [--sizes 10000,100000] [--ops 200] [--dims 384]
        [--valkey-url URL] [--embedded-url sqlite:///tmp/crewai_bench.db] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", ImportWarning)  # crewai.rag's module wrapper warns on import
    from crewai.memory.storage.lancedb_storage import LanceDBStorage
    from crewai.memory.types import MemoryRecord

from agentmem_core import IndexConfig
from agentmem_core.errors import AgentMemError
from agentmem_core.testing.server import ValkeyServer
from agentmem_crewai import ValkeyStorage

SCOPES = ["/crew/s0", "/crew/s1", "/crew/s2", "/crew/s3"]
CATEGORIES = ["fact", "decision", "preference", "lesson", "observation"]
BASE = datetime(2026, 1, 1)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Corpus:
    """Seeded records: record ``i`` always has the same vector, scope and categories.

    Vectors have a low intrinsic dimension, like sentence embeddings (random isotropic vectors in 384
    dimensions are nearly equidistant, which no embedding model produces): a seeded linear map of a
    ``latent``-dimensional Gaussian, plus a little isotropic noise, normalised. Queries are records'
    latent points moved a little: "recall something close to what was stored".
    """

    def __init__(self, dims: int, seed: int, latent: int = 24) -> None:
        self.dims = dims
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        self.basis = rng.standard_normal((latent, dims)).astype(np.float32)

    def _embed(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        v = z @ self.basis + 0.1 * rng.standard_normal((len(z), self.dims)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)  # type: ignore[no-any-return]

    def latents(self, start: int, count: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1, start])
        return rng.standard_normal((count, self.basis.shape[0])).astype(np.float32)

    def vectors(self, start: int, count: int) -> np.ndarray:
        return self._embed(self.latents(start, count), np.random.default_rng([self.seed, 2, start]))

    def records(self, start: int, count: int) -> list[MemoryRecord]:
        vectors = self.vectors(start, count).tolist()
        out = []
        for n, vector in enumerate(vectors):
            i = start + n
            out.append(
                MemoryRecord(
                    id=str(uuid.UUID(int=i + 1)),
                    content=f"memory {i}: a short fact about topic {i % 997}",
                    scope=SCOPES[i % len(SCOPES)],
                    categories=[CATEGORIES[i % len(CATEGORIES)]],
                    metadata={"i": i},
                    importance=(i % 10) / 10,
                    created_at=BASE + timedelta(seconds=i),
                    last_accessed=BASE + timedelta(seconds=i),
                    embedding=vector,
                )
            )
        return out

    def queries(self, count: int, stored: int) -> list[list[float]]:
        rng = np.random.default_rng([self.seed, 3, stored])
        picks = rng.integers(0, stored, count)
        z = np.stack([self.latents(int(i), 1)[0] for i in picks])
        z += 0.3 * rng.standard_normal(z.shape).astype(np.float32)
        return self._embed(z, rng).tolist()  # type: ignore[no-any-return]


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean())}


class Backend:
    """One storage under test and how many records it holds."""

    def __init__(self, label: str, storage: Any, after_load: Callable[[], None] = lambda: None) -> None:
        self.label = label
        self.storage = storage
        self.after_load = after_load
        self.size = 0


def fill(backend: Backend, corpus: Corpus, upto: int, chunk: int = 1000) -> float:
    t0 = time.perf_counter()
    while backend.size < upto:
        count = min(chunk, upto - backend.size)
        backend.storage.save(corpus.records(backend.size, count))
        backend.size += count
    backend.after_load()
    return time.perf_counter() - t0


def measure(backend: Backend, corpus: Corpus, ops: int, batch: int) -> dict[str, Any]:
    queries = corpus.queries(ops, backend.size)
    answers: list[list[int]] = []

    def search(q: list[float]) -> None:
        answers.append([int(uuid.UUID(r.id)) - 1 for r, _ in backend.storage.search(q, limit=10)])

    it: Iterator[list[float]] = iter(queries)
    search_all = timed(lambda: search(next(it)), ops)
    it = iter(queries)
    search_scope = timed(lambda: backend.storage.search(next(it), scope_prefix=SCOPES[1], limit=10), ops)
    start = 10_000_000 + backend.size  # ids no bulk fill reaches
    batches = [corpus.records(start + n * batch, batch) for n in range(ops)]
    feed = iter(batches)
    save = timed(lambda: backend.storage.save(next(feed)), ops)
    # remove the timed saves again, so every backend holds exactly N records at each size
    backend.storage.delete(record_ids=[r.id for b in batches for r in b])
    floor = (
        hset_floor(backend.storage, ops, batch)
        if backend.label.startswith("ValkeyStorage (Valkey")
        else sqlite_floor(backend.storage, ops, batch)
        if backend.label == "ValkeyStorage (embedded)"
        else None
    )
    return {
        "save_floor_10": None if floor is None else stats(floor),
        "save_batch_10": stats(save),
        "search": stats(search_all),
        "search_scope": stats(search_scope),
        "recall_at_10": recall_at_10(corpus, backend.size, queries, answers),
    }


def hset_floor(storage: ValkeyStorage, ops: int, batch: int) -> list[float]:
    """The server's own cost of a save: ``batch`` stored memory hashes copied to new keys the index covers.

    One pipelined HSET per hash, nothing else (no script, no alias, no scope bookkeeping, no client
    work): what inserting ``batch`` documents into this index costs the server, so no save of this
    index can be faster. The copies are deleted afterwards.
    """
    client = storage.core.client
    prefix = storage.core.keys.memory_prefix
    keys = [k for _, k in zip(range(batch), client.scan_iter(match=f"{prefix}*", count=1000))]
    hashes = [client.hgetall(k) for k in keys]
    made: list[bytes] = []

    def insert(n: int) -> None:
        pipe = client.pipeline(transaction=False)
        for k, fields in zip(keys, hashes):
            made.append(k + f"f{n}".encode())
            pipe.hset(made[-1], mapping=fields)
        pipe.execute()

    runs = iter(range(ops))
    out = timed(lambda: insert(next(runs)), ops)
    for start in range(0, len(made), 500):
        client.unlink(*made[start : start + 500])
    return out


_FLOOR_PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA busy_timeout = 5000")


def sqlite_floor(storage: ValkeyStorage, ops: int, batch: int) -> list[float]:
    """The file's own cost of a save: ``batch`` stored memories' rows copied to new ids, one transaction.

    The rows a new memory has in the store's tables (its fields, vector, TAG and NUMERIC index entries,
    and its entries in the scope's sorted sets), copied as they are to new ids in the originals'
    scopes (and new row numbers, which the postings hold), on a second connection with the store's
    pragmas (WAL, ``synchronous = NORMAL``), and committed: nothing else (no reads, no scope bookkeeping,
    no client work). What writing ``batch`` memories in this file format costs SQLite (mostly the B-tree
    pages the commit writes to the WAL), so no save of this format can be faster. The copies are deleted
    afterwards.
    """
    path = storage.core._driver.backend.path  # the embedded backend's file
    store = storage.core.keys.store
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in _FLOOR_PRAGMAS:
        conn.execute(pragma)

    def table(t: str) -> str:
        return f'"am_{store}_{t}"'

    mems = conn.execute(f"SELECT rid, id, fields, deadline FROM {table('mem')} LIMIT ?", (batch,)).fetchall()
    ids, rids = [m[1] for m in mems], [m[0] for m in mems]
    marks = ",".join("?" * len(ids))

    def rows(columns: str, t: str, key: str, values: list[Any]) -> list[Any]:
        return conn.execute(f"SELECT {columns} FROM {table(t)} WHERE {key} IN ({marks})", values).fetchall()

    vec = rows("id, n, v", "vec", "id", ids)
    tok = rows("field, token, rid, id", "tok", "rid", rids)
    num = rows("field, value, rid, id", "num", "rid", rids)
    zs = rows("k, tag, member, score", "zs", "member", ids)
    made: list[tuple[str, int]] = []

    def copy(_: int) -> None:
        # a new id in the original's scope (its tag, then a random part), as a save of a new memory makes:
        # its entries land where a new memory's would, not next to the original's
        fresh = {i: i[:16] + uuid.uuid4().hex[:16] for i in ids}
        conn.execute("BEGIN IMMEDIATE")
        row = {}
        for rid, i, fields, deadline in mems:
            (row[rid],) = conn.execute(f"INSERT INTO {table('mem')} (id, fields, deadline) VALUES (?, ?, ?) "
                                       "RETURNING rid", (fresh[i], fields, deadline)).fetchone()  # fmt: skip
            made.append((fresh[i], row[rid]))
        three, four = "VALUES (?, ?, ?)", "VALUES (?, ?, ?, ?)"
        conn.executemany(f"INSERT INTO {table('vec')} {three}", [(fresh[i], n, v) for i, n, v in vec])
        for t, found in (("tok", tok), ("num", num)):
            copies = [(f, x, row[r], fresh[i]) for f, x, r, i in found]
            conn.executemany(f"INSERT INTO {table(t)} {four}", copies)
        conn.executemany(f"INSERT INTO {table('zs')} (k, tag, member, score) VALUES (?, ?, ?, ?)",
                         [(k, tag, fresh[m], sc) for k, tag, m, sc in zs])  # fmt: skip
        conn.execute("COMMIT")

    runs = iter(range(ops))
    out = timed(lambda: copy(next(runs)), ops)
    conn.execute("BEGIN IMMEDIATE")
    for start in range(0, len(made), 500):
        part = made[start : start + 500]
        marks = ",".join("?" * len(part))
        copies, numbers = [i for i, _ in part], [r for _, r in part]
        for t, column, keys in (("mem", "id", copies), ("vec", "id", copies), ("tok", "rid", numbers),
                                ("num", "rid", numbers), ("zs", "member", copies)):  # fmt: skip
            conn.execute(f"DELETE FROM {table(t)} WHERE {column} IN ({marks})", keys)
    conn.execute("COMMIT")
    conn.close()
    return out


def recall_at_10(corpus: Corpus, size: int, queries: list[list[float]], answers: list[list[int]]) -> float:
    """Share of the exact 10 nearest records (cosine) that the search returned."""
    stored = np.concatenate([corpus.vectors(i, min(1000, size - i)) for i in range(0, size, 1000)])
    scores = np.asarray(queries, dtype=np.float32) @ stored.T
    exact = np.argpartition(-scores, 10, axis=1)[:, :10]
    return float(np.mean([len(set(e.tolist()) & set(a)) / 10 for e, a in zip(exact, answers)]))


def valkey_backend(url: str, dims: int, algorithm: str) -> Backend:
    index = IndexConfig(dims=dims, algorithm="FLAT" if algorithm == "flat" else "HNSW")
    name = "crewai_bench_" + uuid.uuid4().hex[:8]
    storage = ValkeyStorage.from_url(url, name=name, dims=dims, core_options={"index": index})
    storage.setup()
    return Backend(f"ValkeyStorage (Valkey, {index.algorithm})", storage)


def embedded_backend(url: str | None, dims: int) -> Backend | None:
    if url is None:
        return None
    try:
        storage = ValkeyStorage.from_url(url, name="crewai_bench", dims=dims)
        storage.setup()
    except AgentMemError as exc:
        progress(f"embedded backend {url!r} not available in this core: {exc} (skipped)")
        return None
    return Backend("ValkeyStorage (embedded)", storage)


def lance_backend(path: str) -> Backend:
    storage = LanceDBStorage(path=path, compact_every=0)  # compaction runs after each fill, not mid-timing
    return Backend("LanceDBStorage (local disk)", storage, after_load=storage.optimize)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    corpus = Corpus(args.dims, args.seed)
    server = None
    url = args.valkey_url
    if url is None:
        server = ValkeyServer(search=True).start()
        url = server.url
    tmp = tempfile.TemporaryDirectory(prefix="crewai_bench_")
    backends = [valkey_backend(url, args.dims, a) for a in args.index.split(",")]
    embedded = embedded_backend(args.embedded_url, args.dims)
    if embedded is not None:
        backends.append(embedded)
    backends.append(lance_backend(os.path.join(tmp.name, "lance")))
    rows: dict[str, Any] = {}
    try:
        for size in sizes:
            for b in backends:
                seconds = fill(b, corpus, size)
                progress(f"{b.label}: filled to {size} in {seconds:.1f}s")
                result = measure(b, corpus, args.ops, 10)
                result["count"] = b.storage.count()
                assert result["count"] == size, (b.label, result["count"])
                rows.setdefault(str(size), {})[b.label] = result
    finally:
        for b in backends:
            if isinstance(b.storage, ValkeyStorage):
                b.storage.reset()
                b.storage.close()
        tmp.cleanup()
        if server is not None:
            server.stop()
    return rows


def report(rows: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"# CrewAI storage benchmark ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, dims {args.dims}, {args.ops} ops per series)",
        "",
        "| N | backend | save x10 p50 | p95 | save x10 floor p50 | search p50 | p95 | scoped search p50 "
        "| p95 | recall@10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, per in rows.items():
        for label, r in per.items():
            floor = r.get("save_floor_10")
            lines.append(
                f"| {size} | {label} | {r['save_batch_10']['p50']:.2f} | {r['save_batch_10']['p95']:.2f} | "
                f"{'-' if floor is None else format(floor['p50'], '.2f')} | "
                f"{r['search']['p50']:.2f} | {r['search']['p95']:.2f} | "
                f"{r['search_scope']['p50']:.2f} | {r['search_scope']['p95']:.2f} | {r['recall_at_10']:.3f} |"
            )
    lines += ["", "Ratios LanceDB / ValkeyStorage at p50 (above 1: ValkeyStorage is faster):", ""]
    for size, per in rows.items():
        lance = next(r for k, r in per.items() if k.startswith("LanceDB"))
        for label, r in per.items():
            if label.startswith("LanceDB"):
                continue
            ratios = {m: lance[m]["p50"] / r[m]["p50"] for m in ("save_batch_10", "search", "search_scope")}
            floor = r.get("save_floor_10")
            bound = (
                "" if floor is None else f" (its floor: x{lance['save_batch_10']['p50'] / floor['p50']:.2f})"
            )
            lines.append(
                f"- N={size}, {label}: save x{ratios['save_batch_10']:.2f}{bound}, "
                f"search x{ratios['search']:.2f}, scoped search x{ratios['search_scope']:.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated record counts")
    ap.add_argument("--ops", type=int, default=200, help="timed calls per series")
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--index", default="hnsw,flat", help="ValkeyStorage index algorithms to run: hnsw, flat")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--valkey-url", help="a running Valkey with a search module (default: start one)")
    ap.add_argument("--embedded-url", help="a core URL of the embedded backend, e.g. sqlite:///tmp/bench.db")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    rows = run(args)
    print(report(rows, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
