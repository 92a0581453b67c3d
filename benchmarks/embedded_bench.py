"""Embedded backend benchmark: agentmem on SQLite (no server) vs agentmem on Valkey, LangGraph, CrewAI.

In one run, at each size N, four systems (and the floor below) get the same data and the same operations:

* **agentmem embedded**: ``MemoryStore.from_url("sqlite:///<temp dir>/bench.db")`` (SQLite file, WAL);
* **agentmem Valkey**: the same store on a throwaway ``valkey-search`` server
  (``agentmem_core.testing.server.ValkeyServer(search=True)``) with the default ``IndexConfig`` (HNSW);
* **LangGraph InMemoryStore** (``langgraph.store.memory``, ``index={"dims", "embed", "fields": ["text"]}``:
  numpy cosine over every item under the namespace prefix);
* **CrewAI LanceDBStorage** (``crewai.memory.storage.lancedb_storage``, in a temp dir, ``compact_every=0``
  and ``optimize()`` after the load; CrewAI creates no ANN index, so its search is a scan).

Data: N memories ``i`` with content ``"memory i about topic i % 97 and word i % 13"`` (and a unique
``wordNNNN``), all in one user's scope (``user_id="u"``), agent ``a{i % 10}`` (a scope of N / 10); the same
scopes for the peers (LangGraph namespace ``("u", "a3")``, CrewAI scope ``/u/a3``). Vectors are
precomputed seeded random unit vectors (384-d); every embed function looks them up by text and raises for
an unknown one, so embedding cost is excluded and every system ranks the same vectors.

Measured (per call p50 / p95 ms; ``--queries`` timed calls after 5 untimed, fewer when a series would take
over 20 s, at least 3):

* ``remember``: one new memory per call (agentmem ``remember``, LangGraph ``put``, CrewAI ``save([one])``);
* ``remember_many/500``: the load itself, 500 memories per call (agentmem ``remember_many``, LangGraph
  ``batch`` of 500 ``PutOp``, CrewAI ``save(500)``), reported as memories per second (rate column);
* ``vector``: ``recall_by_vector(q, k=10, reinforce=False)`` with similarity-only weights (the exact
  nearest neighbours are then the answer) unfiltered, in the user's scope (matches all N) and in one
  agent's scope (N / 10); LangGraph ``search(prefix, query=text, limit=10)`` (it embeds the query text
  by lookup) over ``()`` / ``("u",)`` / ``("u", "a3")``; CrewAI ``search(q, scope_prefix=None / "/u" /
  "/u/a3", limit=10)``;
* the **floor**: numpy's exact scan of the same float32 matrix (``1 - m @ q`` and ``argpartition``; the
  agent scope gathers its rows first): what any exact search costs before ids, filters and ranking;
* ``text``: ``recall(text, k=10, user_id="u", reinforce=False)`` (hybrid: KNN + lexical) — agentmem only;
* ``list``: a page of 50 in the user's scope (agentmem ``list(user_id="u", limit=50)``, LangGraph
  ``search(("u",), limit=50)`` without a query, CrewAI ``list_records(scope_prefix="/u", limit=50)``).

Checks: every vector search returns 10 hits and every list a full page of 50, all inside the asked scope;
agentmem's vector hits are compared with numpy's exact top 10 over the same scope (``recall@10``: 1.0 for
the embedded backend's exact search; the Valkey HNSW row shows its approximation). Ratios: each peer's p50
over agentmem embedded's (above 1: embedded is faster). The machine may be shared: compare ratios from one
run, not absolute times across runs.

Usage::

    python benchmarks/embedded_bench.py [--sizes 1000,10000] [--queries 200] [--systems all]
        [--json OUT] [--markdown OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # crewai.rag's module wrapper warns on import
    from crewai.memory.storage.lancedb_storage import LanceDBStorage
    from crewai.memory.types import MemoryRecord
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from agentmem_core import MemoryInput, MemoryStore
from agentmem_core.testing.server import ValkeyServer

DIMS = 384
BATCH = 500
K = 10
PAGE = 50
AGENTS = 10
AGENT = "a3"
SERIES_BUDGET_S = 20.0
MIN_SAMPLES = 3
SIMILARITY = {"similarity": 1.0, "recency": 0.0, "importance": 0.0}
EMBEDDED, VALKEY, LANGGRAPH, CREWAI, FLOOR = (
    "agentmem embedded", "agentmem Valkey (HNSW)", "LangGraph InMemoryStore", "CrewAI LanceDBStorage",
    "floor: numpy exact scan",
)  # fmt: skip
SYSTEMS = (EMBEDDED, VALKEY, LANGGRAPH, CREWAI, FLOOR)
BASE = datetime(2026, 1, 1)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Row:
    size: int
    system: str
    op: str
    p50: float | None = None  # ms per call
    p95: float | None = None
    rate: float | None = None  # memories per second (remember_many)
    samples: int = 0
    note: str = ""


@dataclass
class Data:
    """N memories + spare ones for single remembers, and query vectors; texts map to vectors."""

    n: int
    queries: int
    seed: int
    vectors: np.ndarray = field(init=False)
    texts: list[str] = field(init=False)
    lookup: dict[str, int] = field(init=False)
    unknown: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        spare = self.queries + 10
        total = self.n + spare + self.queries + 10
        rng = np.random.default_rng(self.seed)
        v = rng.standard_normal((total, DIMS)).astype(np.float32)
        self.vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
        self.texts = [f"memory {i} about topic {i % 97} and word{i % 13} word{i:07d}" for i in range(total)]
        self.lookup = {t: i for i, t in enumerate(self.texts)}

    def agent(self, i: int) -> str:
        return f"a{i % AGENTS}"

    @property
    def spare(self) -> range:  # memories remembered one by one (timed)
        return range(self.n, self.n + self.queries + 10)

    @property
    def query_rows(self) -> range:  # query vectors (never stored)
        start = self.n + self.queries + 10
        return range(start, start + self.queries + 10)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for t in texts:
            i = self.lookup.get(t)
            if i is None:
                self.unknown.append(t)
                raise KeyError(f"embed() asked for an unknown text: {t!r}")
            out.append(self.vectors[i].tolist())
        return out

    def embed_np(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for t in texts:
            i = self.lookup.get(t)
            if i is None:
                self.unknown.append(t)
                raise KeyError(f"embed() asked for an unknown text: {t!r}")
            rows.append(i)
        return self.vectors[rows]

    def truth(self, q: int, scope: str | None) -> list[int]:
        """Exact top-K rows among the stored memories (scope: None, "u" or the agent)."""
        m = self.vectors[: self.n]
        d = 1.0 - m @ self.vectors[q]
        if scope == AGENT:
            d = d.copy()
            d[np.arange(self.n) % AGENTS != int(AGENT[1:])] = np.inf
        return [int(i) for i in np.argsort(d, kind="stable")[:K]]


def pct(samples: Sequence[float]) -> tuple[float, float]:
    s = sorted(samples)
    return 1000 * s[len(s) // 2], 1000 * s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.queries: int = args.queries
        self.seed: int = args.seed
        self.systems: list[str] = [
            s for s in SYSTEMS if args.systems == "all" or s in args.systems.split(",")
        ]
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.checks: dict[str, Any] = {}
        self.server: ValkeyServer | None = None
        self.tmp = tempfile.mkdtemp(prefix="embedded_bench_")

    def problem(self, msg: str) -> None:
        self.problems.append(msg)
        progress("PROBLEM: " + msg)

    def series(
        self, size: int, system: str, op: str, fn: Callable[[int], Any], check: Callable[[int, Any], None]
    ) -> None:
        for j in range(5):
            check(j, fn(j))
        samples: list[float] = []
        budget = time.perf_counter() + SERIES_BUDGET_S
        for j in range(self.queries):
            if j >= MIN_SAMPLES and time.perf_counter() > budget:
                break
            t = time.perf_counter()
            result = fn(5 + j)
            samples.append(time.perf_counter() - t)
            check(5 + j, result)
        p50, p95 = pct(samples)
        note = "" if len(samples) == self.queries else f"{len(samples)} calls (20 s budget)"
        self.rows.append(Row(size, system, op, p50, p95, samples=len(samples), note=note))
        progress(f"  N={size} {system} {op}: p50 {p50:.2f} ms p95 {p95:.2f} ms")

    # -- one size -------------------------------------------------------------------------------------
    def run_size(self, n: int) -> None:
        data = Data(n, self.queries, self.seed)
        for system in self.systems:
            progress(f"N={n}: {system}")
            runner = {EMBEDDED: self.agentmem, VALKEY: self.agentmem, LANGGRAPH: self.langgraph,
                      CREWAI: self.crewai, FLOOR: self.floor}[system]  # fmt: skip
            runner(n, data, system)
        if data.unknown:
            self.problem(
                f"N={n}: embed() was asked for {len(data.unknown)} unknown texts: {data.unknown[:3]}"
            )

    def _load_rate(self, n: int, system: str, seconds: float, note: str = "") -> None:
        self.rows.append(
            Row(n, system, f"remember_many/{BATCH}", rate=n / seconds, samples=n // BATCH, note=note)
        )
        progress(f"  N={n} {system} load: {n / seconds:.0f} memories/s")

    def agentmem(self, n: int, data: Data, system: str) -> None:
        name = "eb" + uuid.uuid4().hex[:8]
        if system == EMBEDDED:
            path = os.path.join(self.tmp, f"{name}.db")
            store = MemoryStore.from_url(f"sqlite:///{path}", name=name, embedder=data.embed_np, dims=DIMS)
        else:
            if self.server is None:
                self.server = ValkeyServer(search=True).start()
            store = MemoryStore.from_url(self.server.url, name=name, embedder=data.embed_np, dims=DIMS)
        store.setup()
        ids: list[str] = []
        t = time.perf_counter()
        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            items = [
                MemoryInput(content=data.texts[i], user_id="u", agent_id=data.agent(i)) for i in range(lo, hi)
            ]
            ids.extend(store.remember_many(items, vectors=data.vectors[lo:hi]))
        self._load_rate(n, system, time.perf_counter() - t)
        row_of = {memory_id: i for i, memory_id in enumerate(ids)}
        queries = list(data.query_rows)
        scopes: dict[str, dict[str, str]] = {
            "unfiltered": {}, "user (N)": {"user_id": "u"},
            f"agent (N/{AGENTS})": {"user_id": "u", "agent_id": AGENT},
        }  # fmt: skip
        for label, flt in scopes.items():
            agree: list[float] = []
            truth_scope = AGENT if "agent_id" in flt else None

            def check(
                j: int, result: Any, truth_scope: str | None = truth_scope, label: str = label,
                agree: list[float] = agree,
            ) -> None:  # fmt: skip
                hits = result.hits
                if len(hits) != K:
                    self.problem(f"N={n} {system} vector {label}: {len(hits)} hits")
                got = [row_of.get(h.memory.id, -1) for h in hits]
                want = data.truth(queries[j], truth_scope)
                agree.append(len(set(got) & set(want)) / K)

            def search(j: int, flt: dict[str, str] = flt) -> Any:
                q = data.vectors[queries[j]]
                return store.recall_by_vector(q, k=K, reinforce=False, weights=SIMILARITY, **flt)

            self.series(n, system, f"vector k=10, {label}", search, check)
            self.checks[f"{n} {system} vector {label} recall@10"] = float(np.mean(agree))
            self.rows[-1].note = (self.rows[-1].note + f" recall@10 {np.mean(agree):.3f}").strip()
        words = [f"topic {i % 97} word{i % 13}" for i in range(len(queries))]
        for j, text in enumerate(words):  # hybrid recall embeds the query text: map it to a query vector
            data.lookup.setdefault(text, queries[j])

        def text_check(j: int, result: Any) -> None:
            if len(result.hits) != K:
                self.problem(f"N={n} {system} text: {len(result.hits)} hits")

        self.series(n, system, "text k=10 (hybrid), user", lambda j: store.recall(
            words[j], k=K, user_id="u", reinforce=False), text_check)  # fmt: skip

        def list_check(j: int, page: Any) -> None:
            if len(page.memories) != PAGE:
                self.problem(f"N={n} {system} list: {len(page.memories)} items")

        self.series(n, system, "list 50, user", lambda j: store.list(user_id="u", limit=PAGE), list_check)
        spare = list(data.spare)

        def remember(j: int) -> Any:
            i = spare[j]
            return store.remember(data.texts[i], user_id="u", agent_id=data.agent(i))

        self.series(n, system, "remember (1)", remember, lambda j, r: None)
        store.close()

    def floor(self, n: int, data: Data, system: str) -> None:
        """What any exact search must do at least: score every vector of the scope, keep the best ``2k``.

        The matrix is resident float32 (as the embedded backend's cache is); the agent scope gathers its
        rows first, as the backend does for a small share. No ids, no SQLite, no ranking.
        """
        m = np.ascontiguousarray(data.vectors[:n])
        queries = list(data.query_rows)
        pool = 2 * K
        agent_rows = np.flatnonzero(np.arange(n) % AGENTS == int(AGENT[1:]))
        for label, rows in (("unfiltered", None), ("user (N)", None), (f"agent (N/{AGENTS})", agent_rows)):

            def search(j: int, rows: Any = rows) -> Any:
                q = data.vectors[queries[j]]
                scores = np.float32(1.0) - (m @ q if rows is None else m[rows] @ q)
                return np.argpartition(scores, pool - 1)[:pool]

            self.series(n, system, f"vector k=10, {label}", search, lambda j, r: None)

    def langgraph(self, n: int, data: Data, system: str) -> None:
        store = InMemoryStore(index={"dims": DIMS, "embed": data.embed, "fields": ["text"]})  # type: ignore[typeddict-item]
        t = time.perf_counter()
        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            store.batch([PutOp(("u", data.agent(i)), str(i), {"text": data.texts[i]}) for i in range(lo, hi)])
        self._load_rate(n, system, time.perf_counter() - t)
        queries = list(data.query_rows)
        for label, prefix in (
            ("unfiltered", ()),
            ("user (N)", ("u",)),
            (f"agent (N/{AGENTS})", ("u", AGENT)),
        ):
            words = [f"q{j} {data.texts[queries[j]]}" for j in range(len(queries))]
            for j, text in enumerate(words):
                data.lookup.setdefault(text, queries[j])

            def check(j: int, result: Any, prefix: tuple[str, ...] = prefix, label: str = label) -> None:
                if len(result) != K or any(tuple(r.namespace[: len(prefix)]) != prefix for r in result):
                    self.problem(f"N={n} {system} vector {label}: {len(result)} hits / out of scope")

            def lg_search(j: int, prefix: tuple[str, ...] = prefix, words: list[str] = words) -> Any:
                return store.search(prefix, query=words[j], limit=K)

            self.series(n, system, f"vector k=10, {label}", lg_search, check)

        def list_check(j: int, result: Any) -> None:
            if len(result) != PAGE:
                self.problem(f"N={n} {system} list: {len(result)} items")

        self.series(n, system, "list 50, user", lambda j: store.search(("u",), limit=PAGE), list_check)
        spare = list(data.spare)

        def remember(j: int) -> Any:
            i = spare[j]
            return store.put(("u", data.agent(i)), str(i), {"text": data.texts[i]})

        self.series(n, system, "remember (1)", remember, lambda j, r: None)

    def crewai(self, n: int, data: Data, system: str) -> None:
        path = os.path.join(self.tmp, "lance_" + uuid.uuid4().hex[:8])
        storage = LanceDBStorage(path=path, vector_dim=DIMS, compact_every=0)

        def record(i: int) -> MemoryRecord:
            return MemoryRecord(
                id=str(uuid.UUID(int=i + 1)), content=data.texts[i], scope=f"/u/{data.agent(i)}",
                categories=["fact"], importance=0.5, created_at=BASE + timedelta(seconds=i),
                last_accessed=BASE + timedelta(seconds=i), embedding=data.vectors[i].tolist(),
            )  # fmt: skip

        t = time.perf_counter()
        for lo in range(0, n, BATCH):
            storage.save([record(i) for i in range(lo, min(n, lo + BATCH))])
        self._load_rate(n, system, time.perf_counter() - t, "optimize() after the load, untimed")
        storage.optimize()
        queries = list(data.query_rows)
        for label, prefix in (
            ("unfiltered", None),
            ("user (N)", "/u"),
            (f"agent (N/{AGENTS})", f"/u/{AGENT}"),
        ):

            def check(j: int, result: Any, prefix: str | None = prefix, label: str = label) -> None:
                if len(result) != K or (prefix and any(not r.scope.startswith(prefix) for r, _ in result)):
                    self.problem(f"N={n} {system} vector {label}: {len(result)} hits / out of scope")

            self.series(n, system, f"vector k=10, {label}", lambda j, prefix=prefix: storage.search(
                data.vectors[queries[j]].tolist(), scope_prefix=prefix, limit=K), check)  # fmt: skip

        def list_check(j: int, result: Any) -> None:
            if len(result) != PAGE:
                self.problem(f"N={n} {system} list: {len(result)} items")

        self.series(n, system, "list 50, user", lambda j: storage.list_records(scope_prefix="/u", limit=PAGE),
                    list_check)  # fmt: skip
        spare = list(data.spare)
        self.series(n, system, "remember (1)", lambda j: storage.save([record(spare[j])]), lambda j, r: None)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- output ----------------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def render(rows: list[Row]) -> str:
    lines = ["| N | op | system | p50 ms | p95 ms | rate /s | vs embedded (p50) | note |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    base = {(r.size, r.op): r for r in rows if r.system == EMBEDDED}
    order = {s: i for i, s in enumerate(SYSTEMS)}
    for r in sorted(rows, key=lambda r: (r.size, r.op, order[r.system])):
        ref = base.get((r.size, r.op))
        ratio = "-"
        if ref is not None and r.system != EMBEDDED:
            if r.p50 is not None and ref.p50:
                ratio = f"{r.p50 / ref.p50:.1f}x"
            elif r.rate is not None and ref.rate:
                ratio = f"{ref.rate / r.rate:.1f}x"
        lines.append(
            f"| {r.size} | {r.op} | {r.system} | {_fmt(r.p50)} | {_fmt(r.p95)} | "
            f"{'-' if r.rate is None else f'{r.rate:.0f}'} | {ratio} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated N (100000 for the long run)")
    ap.add_argument("--queries", type=int, default=200, help="timed operations per latency series")
    ap.add_argument("--systems", default="all", help=f"'all' or a comma-separated subset of {SYSTEMS}")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write all rows and check results to this file")
    ap.add_argument("--markdown", help="write the table (and the command) to this file")
    args = ap.parse_args(argv)
    bench = Bench(args)
    try:
        for n in sorted(int(s) for s in args.sizes.split(",")):
            bench.run_size(n)
    finally:
        bench.close()
    table = render(bench.rows)
    command = "python benchmarks/embedded_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = (
        f"Command: `{command}`\n\nPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"numpy {np.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end.\n"
    )
    print(header)
    print(table)
    if bench.problems:
        print("\nProblems:\n" + "\n".join(f"- {p}" for p in bench.problems))
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(header + "\n" + table + "\n")
            if bench.problems:
                out.write("\nProblems:\n" + "\n".join(f"- {p}" for p in bench.problems) + "\n")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rows": [asdict(r) for r in bench.rows], "checks": bench.checks,
                       "problems": bench.problems}, out, indent=1)  # fmt: skip
    return 1 if bench.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
