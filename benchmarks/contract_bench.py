"""Core-contract harness: filtered recall, namespace listing and keyed reads next to raw Valkey floors.

Against ONE server in one run, at each size N it measures (p50/p95 ms, counts, ratios):

1. **Filtered recall, a metadata range matching 1% of a scope of N memories.** One scope (``user_id="u"``)
   holds N memories with metadata ``{"n": i}``. ``recall_by_vector(v, k=10, user_id="u")`` unfiltered vs
   with ``metadata={"n": {"$gte": a, "$lt": a + N // 100}}`` (random ``a``), reinforce off. Two stores
   when ``StoreConfig.numeric_fields`` exists: without the declaration (the range runs on the client,
   recall widens its KNN pool until 10 pass) and with ``numeric_fields=("n",)`` (the range is pushed into
   the index). Floors: raw FT.SEARCH KNN-10 with agentmem's rendered filter text (scope tag; plus the
   NUMERIC range on the declaring store's index), returning agentmem's stored fields.
2. **list_namespaces at N namespaces** ``("tenant", f"t{i:06d}", "notes")``: four listings (the first 10;
   10 at ``offset=N // 2`` with and without ``max_depth=2``, or at the largest offset the API takes when
   that is beyond it; ``max_depth=1``) next to one ``ZRANGEBYLEX`` of 10 members of the scope index and
   one ``HGETALL`` of the scope registry (what a registry read costs at N).
3. **get_by_key vs a bare HGETALL** of the same memory's hash, over N keyed memories in ``("kv",)``.

The stores of 2 and 3 index their vectors FLAT (no HNSW inserts to wait for; neither reads the index).

The rows of ``core_bench.py`` (remember, recall, forget_by_scope, memory) are not repeated here.

Embedding cost is excluded: vectors are precomputed (seeded random unit vectors, 384-d) and handed over via
``remember_many(vectors=...)`` and ``recall_by_vector``; the embedder raises if it is ever called. Series
of one step run round-robin per argument (same background load); a series whose ``--queries`` calls would
take over 20 s is timed fewer times (at least 3 calls, or as many as fit 180 s; the note says so). Every
result is checked (hit counts, ranges, namespace lists, keys); a failed check is printed with its
reproduction.

Usage::

    python benchmarks/contract_bench.py [--valkey-url URL] [--sizes 10000] [--queries 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import valkey
from valkey.utils import LIBVALKEY_AVAILABLE

from agentmem_core import MemoryInput, MemoryStore
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.embeddings import CallableEmbedder
from agentmem_core.query import MemoryFilter, render_query
from agentmem_core.schema import DISTANCE_ALIAS, STORED_FIELDS, F, rank_fields

DIMS = 384
BATCH = 500  # remember_many batch
K = 10
USER = "u"
SERIES_BUDGET_S = 20.0  # a series slower than this over --queries calls is timed fewer times (>= MIN_SAMPLES)
MIN_SAMPLES = 3
SLOW_SERIES_BUDGET_S = 180.0  # ... but a series of calls slower than SERIES_BUDGET_S / MIN_SAMPLES gets this
SLOW_CALL_S = 1.0  # a warm-up call slower than this ends the warm-up and counts as the first sample
# Listing and keyed reads never touch the vector index, so those stores index vectors FLAT: the hashes
# (and the HGETALL floor) still carry the 384-d vector, but loading skips the HNSW inserts, which make a
# 100k load server-bound.
FLAT = IndexConfig(dims=DIMS, algorithm="FLAT")
HAS_NUMERIC_FIELDS = "numeric_fields" in {f.name for f in dataclasses.fields(StoreConfig)}


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


def _no_embed(texts: Sequence[str]) -> Any:
    raise RuntimeError(f"the benchmark passes vectors; the embedder was called for {len(texts)} texts")


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    v = rng.standard_normal((count, DIMS), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


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
        self.checked = 0
        self.took: dict[int, float] = {}
        self.admin = valkey.Valkey.from_url(url, protocol=2, decode_responses=False)
        self.stores: list[MemoryStore] = []

    def log(self, msg: str) -> None:
        if self.progress:
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"  [{time.strftime('%H:%M:%S')}] {msg} (load avg {load})", file=sys.stderr, flush=True)

    def problem(self, msg: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(msg)
        self.log(f"CHECK FAILED: {msg}")

    def store(self, n: int, label: str, **options: Any) -> MemoryStore:
        name = f"cb{self.run_id}n{n}{label}"
        store = MemoryStore.from_url(
            self.url,
            name=name,
            embedder=CallableEmbedder(_no_embed, DIMS),
            live_config_seconds=None,
            **options,
        )
        store.setup()
        self.stores.append(store)
        return store

    # -- timing ----------------------------------------------------------------------------------------
    def interleave(self, size: int, series: list[Series], args: Sequence[Any], warmup: int = 5) -> None:
        """Round-robin the series over ``args``; a slow series is capped so it fits ``SERIES_BUDGET_S``."""
        for s in series:  # the warm-up doubles as the probe that sizes each series' sample count
            calls, t0 = 0, time.perf_counter()
            for a in args[:warmup]:
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
            for a in args:
                for s in series:
                    if len(s.samples) >= s.cap:
                        continue
                    t0 = time.perf_counter_ns()
                    result = s.fn(a)
                    s.samples.append((time.perf_counter_ns() - t0) / 1e6)
                    if s.check is not None:
                        s.check(a, result)
        finally:
            gc.enable()
        for s in series:
            p50, p95 = pct(s.samples)
            extra = {"p99": float(np.percentile(s.samples, 99)), "max": max(s.samples)}
            note = "" if len(s.samples) == len(args) else f"{len(s.samples)} calls (time-capped)"
            self.rows.append(Row(size, s.system, s.op, p50, p95, len(s.samples), s.floor, note, extra))

    def load(
        self,
        size: int,
        jobs: list[tuple[str, MemoryStore, Callable[[int, int], list[Any]]]],
        vectors: np.ndarray,
    ) -> None:
        """Load every store with N items, batch by batch interleaved across stores; one row per store."""
        took: dict[str, list[float]] = {label: [] for label, _, _ in jobs}
        for lo in range(0, size, BATCH):
            hi = min(size, lo + BATCH)
            for label, store, items in jobs:
                batch = items(lo, hi)
                t0 = time.perf_counter()
                ids = store.remember_many(batch, vectors=vectors[lo:hi])
                took[label].append((time.perf_counter() - t0) * 1000)
                if len(ids) != hi - lo:
                    self.problem(
                        f"N={size} {label}: remember_many returned {len(ids)} ids for {hi - lo} items"
                    )
            if lo and lo % (10 * BATCH) == 0 or hi == size:
                self.log(f"N={size}: loaded {hi:,} per store")
        for label, _, _ in jobs:
            p50, p95 = pct(took[label])
            rate = size / (sum(took[label]) / 1000)
            self.rows.append(
                Row(
                    size,
                    label,
                    f"remember_many ({BATCH}/call, vectors given)",
                    p50,
                    p95,
                    len(took[label]),
                    note=f"{rate:,.0f} items/s",
                )
            )

    # -- one size --------------------------------------------------------------------------------------
    def run_size(self, n: int) -> None:
        if self.owned:
            self.admin.flushall()
        rng = np.random.default_rng(self.seed + n)
        vectors = unit_vectors(rng, n)
        t0 = time.perf_counter()
        try:
            self.filtered_recall(n, vectors, rng)
            self.namespaces(n, vectors)
            self.keyed(n, vectors, rng)
        finally:
            for store in self.stores:
                if not self.owned:
                    self.drop(store)
                store.close()
            self.stores = []
        self.took[n] = time.perf_counter() - t0
        self.log(f"N={n}: done in {self.took[n]:.0f} s")

    def drop(self, store: MemoryStore) -> None:
        try:
            self.admin.execute_command("FT.DROPINDEX", store.spec.name, "DD")
        except valkey.ResponseError:
            pass
        batch: list[bytes] = []
        for key in self.admin.scan_iter(match=f"am:{store.keys.store}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.admin.delete(*batch)
                batch = []
        if batch:
            self.admin.delete(*batch)

    # -- 1. filtered recall ----------------------------------------------------------------------------
    def filtered_recall(self, n: int, vectors: np.ndarray, rng: np.random.Generator) -> None:
        width = n // 100
        plain = self.store(n, "f")
        systems = [("agentmem (range on the client)", plain)]
        numeric = None
        if HAS_NUMERIC_FIELDS:
            numeric = self.store(n, "fn", numeric_fields=("n",))
            systems.append(('agentmem (numeric_fields=("n",))', numeric))

        def items(lo: int, hi: int) -> list[Any]:
            return [{"content": f"note {i}", "user_id": USER, "metadata": {"n": i}} for i in range(lo, hi)]

        self.log(f"N={n}: loading the filtered-recall store(s)")
        self.load(n, [(label, store, items) for label, store in systems], vectors)
        queries = [(q, int(rng.integers(0, n - width + 1))) for q in unit_vectors(rng, self.nq)]

        def metadata(a: int) -> dict[str, Any]:
            return {"n": {"$gte": a, "$lt": a + width}}

        def floor_cmd(store: MemoryStore, flt: MemoryFilter, q: np.ndarray) -> tuple[Any, ...]:
            text = render_query(flt.scope_leaves(), max_leaves=store.engine.max_leaves)
            ret = (DISTANCE_ALIAS, *STORED_FIELDS)
            return (
                "FT.SEARCH",
                store.spec.name,
                f"({text})=>[KNN {K} @{F.EMBEDDING} $vec AS {DISTANCE_ALIAS}]",
                "PARAMS",
                2,
                "vec",
                q.astype("<f4").tobytes(),
                "RETURN",
                len(ret),
                *ret,
                "LIMIT",
                0,
                K,
                "DIALECT",
                2,
            )

        scope = MemoryFilter.build(user_id=USER)
        # one unfiltered floor per index (two HNSW graphs of the same vectors differ a little)
        floor_unf = {id(plain): "FT.SEARCH KNN-10 + scope tag, on the plain index (unfiltered floor)"}
        if numeric is not None:
            floor_unf[id(numeric)] = (
                "FT.SEARCH KNN-10 + scope tag, on the numeric-field index (unfiltered floor)"
            )
        floor_flt = "FT.SEARCH KNN-10 + scope tag + NUMERIC range (filtered floor)"
        hits: dict[str, list[int]] = {}

        def checker(label: str, a_range: bool, want: int = K) -> Callable[[Any, Any], None]:
            hits[label] = []

            def check(arg: tuple[np.ndarray, int], result: Any) -> None:
                self.checked += 1
                count = len(result) if not isinstance(result, list) else (len(result) - 1) // 2
                hits[label].append(count)
                if count != want:
                    self.problem(
                        f"N={n} {label}: {count} hits (want {want}) for a={arg[1]} (range "
                        f"[{arg[1]}, {arg[1] + width}), {width} of {n} memories in scope)"
                    )
                if a_range and not isinstance(result, list):
                    bad = [
                        h.memory.metadata.get("n")
                        for h in result
                        if not arg[1] <= h.memory.metadata.get("n", -1) < arg[1] + width
                    ]
                    if bad:
                        self.problem(f"N={n} {label}: hits outside [{arg[1]}, {arg[1] + width}): {bad[:5]}")

            return check

        series = [
            Series(
                "floor",
                floor_unf[id(store)],
                lambda q, s=store: self.admin.execute_command(*floor_cmd(s, scope, q[0])),
                check=checker(f"floor unfiltered {label}", False),
            )
            for label, store in systems
        ]
        # ... and the search agentmem itself sends for that recall (its pool of k x candidate_multiplier
        # nearest, ranking fields only): the engine may plan a KNN-20 differently from a KNN-10
        ctx = plain._context()
        pool = K * ctx.config.candidate_multiplier
        translation = plain._valkey_ops()
        series.append(
            Series(
                "floor",
                f"FT.SEARCH as agentmem sends it (KNN-{pool}, ranking fields), plain index",
                lambda q: self.admin.execute_command(
                    *translation.knn_command(
                        scope.scope_leaves(), q[0].astype("<f4").tobytes(), pool, rank_fields(lexical=False)
                    ).args
                ),
                check=checker("floor agentmem's KNN command", False, want=pool),
            )
        )
        if numeric is not None:
            series.append(
                Series(
                    "floor",
                    floor_flt,
                    lambda q: self.admin.execute_command(
                        *floor_cmd(
                            numeric,
                            MemoryFilter.build(user_id=USER, metadata=metadata(q[1])).with_numeric(("n",)),
                            q[0],
                        )
                    ),
                    check=checker("floor filtered", False),
                )
            )
        for label, store in systems:
            series += [
                Series(
                    label,
                    "recall_by_vector k=10 (unfiltered)",
                    lambda q, s=store: s.recall_by_vector(q[0], k=K, user_id=USER, reinforce=False),
                    floor=floor_unf[id(store)],
                    check=checker(f"{label} unfiltered", False),
                ),
                Series(
                    label,
                    "recall_by_vector k=10 + metadata range (1% of scope)",
                    lambda q, s=store: s.recall_by_vector(
                        q[0], k=K, user_id=USER, metadata=metadata(q[1]), reinforce=False
                    ),
                    floor=floor_flt if numeric is not None else None,  # both: vs the pushed-down range
                    check=checker(f"{label} filtered", True),
                ),
            ]
        self.log(f"N={n}: filtered recall ({len(series)} series)")
        self.interleave(n, series, queries)
        rows = self.rows[-len(series) :]
        for row, label in zip(rows, hits):  # checker() was called once per series, in series order
            got = hits[label]
            row.extra["hits_min"], row.extra["hits_mean"] = min(got), float(np.mean(got))
            row.note = ", ".join(x for x in (f"hits min/mean {min(got)}/{np.mean(got):.1f}", row.note) if x)
        for label, _ in systems:
            unf = next(r for r in rows if r.system == label and "unfiltered" in r.op)
            flt = next(r for r in rows if r.system == label and "range" in r.op)
            assert unf.p50 and flt.p50
            ratio = flt.p50 / unf.p50
            flt.extra["filtered_over_unfiltered_p50"] = ratio
            flt.note = f"filtered/unfiltered p50 **{ratio:.2f}x**, " + flt.note
        if numeric is None:
            self.rows.append(
                Row(
                    n,
                    "agentmem",
                    "numeric_fields",
                    note="StoreConfig has no numeric_fields "
                    "field in this tree: only the client-side range path was measured",
                )
            )

    # -- 2. list_namespaces ----------------------------------------------------------------------------
    def namespaces(self, n: int, vectors: np.ndarray) -> None:
        store = self.store(n, "ns", index=FLAT)

        def items(lo: int, hi: int) -> list[Any]:
            return [
                {"content": f"note {i}", "namespace": ("tenant", f"t{i:06d}", "notes")} for i in range(lo, hi)
            ]

        self.log(f"N={n}: loading {n:,} namespaces")
        self.load(n, [("agentmem (namespaces)", store, items)], vectors)
        max_list = 10_000  # list_namespaces' documented offset bound (MAX_LIST)
        offset = n // 2
        offset_note = ""
        try:  # arguments are validated before any I/O: probe the bound on an empty prefix
            store.list_namespaces(prefix=("no-such-prefix",), max_depth=2, limit=10, offset=offset)
        except Exception as exc:  # the contract's bound on offset: record it and time the largest allowed
            offset_note = (
                f"offset={offset:,} raises {type(exc).__name__}: {exc}; timed at offset={max_list:,}"
            )
            self.log(f"N={n}: list_namespaces offset={offset:,}: {type(exc).__name__}: {exc}")
            offset = max_list
        scope_index, scopes = store.keys.scope_index, store.keys.scopes
        first10 = [("tenant", f"t{i:06d}", "notes") for i in range(10)]
        paged = [("tenant", f"t{i:06d}") for i in range(offset, offset + 10)]

        def expect(label: str, want: Any) -> Callable[[Any, Any], None]:
            def check(_arg: Any, got: Any) -> None:
                self.checked += 1
                if got != want:
                    self.problem(
                        f"N={n} {label}: got {got[:3]!r}... ({len(got)}), want {want[:3]!r}... ({len(want)})"
                    )

            return check

        def hgetall_check(_arg: Any, got: Any) -> None:
            self.checked += 1
            if len(got) != n:
                self.problem(f"N={n} HGETALL scopes: {len(got)} entries, want {n}")

        def zcheck(_arg: Any, got: Any) -> None:
            self.checked += 1
            if len(got) != 10:
                self.problem(f"N={n} ZRANGEBYLEX scope index: {len(got)} members, want 10")

        zfloor = "ZRANGEBYLEX scope index, 10 members"
        zrange = ("ZRANGEBYLEX", scope_index, b"[n\x00", b"(n\x00\xff", "LIMIT", 0, 10)
        series = [
            Series("floor", zfloor, lambda _: self.admin.execute_command(*zrange), check=zcheck),
            Series(
                "floor",
                f"HGETALL scope registry ({n:,} scopes)",
                lambda _: self.admin.hgetall(scopes),
                check=hgetall_check,
            ),
            Series(
                "agentmem",
                'list_namespaces(prefix=("tenant",), limit=10)',
                lambda _: store.list_namespaces(prefix=("tenant",), limit=10),
                floor=zfloor,
                check=expect("list_namespaces(prefix)", first10),
            ),
            Series(
                "agentmem",
                f'list_namespaces(prefix=("tenant",), max_depth=2, limit=10, offset={offset:,})',
                lambda _: store.list_namespaces(prefix=("tenant",), max_depth=2, limit=10, offset=offset),
                floor=zfloor,
                check=expect("list_namespaces(max_depth=2, offset)", paged),
            ),
            Series(
                "agentmem",
                f'list_namespaces(prefix=("tenant",), limit=10, offset={offset:,})',
                lambda _: store.list_namespaces(prefix=("tenant",), limit=10, offset=offset),
                floor=zfloor,
                check=expect("list_namespaces(offset)", [(*ns, "notes") for ns in paged]),
            ),
            Series(
                "agentmem",
                "list_namespaces(max_depth=1)",
                lambda _: store.list_namespaces(max_depth=1),
                floor=zfloor,
                check=expect("list_namespaces(max_depth=1)", [("tenant",)]),
            ),
        ]
        self.log(f"N={n}: list_namespaces")
        self.interleave(n, series, list(range(self.nq)), warmup=2)
        if offset_note:
            for row in self.rows[-3:-1]:
                row.note = ", ".join(x for x in (offset_note, row.note) if x)

    # -- 3. get_by_key ---------------------------------------------------------------------------------
    def keyed(self, n: int, vectors: np.ndarray, rng: np.random.Generator) -> None:
        store = self.store(n, "kv", index=FLAT)

        def items(lo: int, hi: int) -> list[Any]:
            return [MemoryInput(content=f"value {i}", key=f"k{i}", namespace=("kv",)) for i in range(lo, hi)]

        self.log(f"N={n}: loading {n:,} keyed memories")
        self.load(n, [("agentmem (keyed)", store, items)], vectors)
        picks = [int(j) for j in rng.integers(0, n, self.nq)]
        # the hash key of each picked memory, from its id (read once, before timing)
        found = {j: store.get_by_key(f"k{j}", namespace=("kv",)) for j in set(picks)}
        missing = sorted(j for j, m in found.items() if m is None)
        if missing:
            self.problem(
                f"N={n}: get_by_key('k{missing[0]}', namespace=('kv',)) returned None "
                f"({len(missing)} of {len(found)} picked keys)"
            )
            picks = [j for j in picks if found[j] is not None]
        keys = {j: store.keys.memory(m.id) for j, m in found.items() if m is not None}

        def check(j: int, got: Any) -> None:
            self.checked += 1
            if got is None or got.key != f"k{j}" or got.content != f"value {j}" or got.namespace != ("kv",):
                self.problem(f"N={n}: get_by_key('k{j}', namespace=('kv',)) returned {got!r}")

        def hcheck(j: int, got: Any) -> None:
            self.checked += 1
            if not got:
                self.problem(f"N={n}: HGETALL {keys.get(j)!r} is empty")

        floor = "HGETALL of the memory's hash"
        series = [
            Series("floor", floor, lambda j: self.admin.hgetall(keys[j]), check=hcheck),
            Series(
                "agentmem",
                'get_by_key(f"k{j}", namespace=("kv",))',
                lambda j: store.get_by_key(f"k{j}", namespace=("kv",)),
                floor=floor,
                check=check,
            ),
        ]
        self.log(f"N={n}: get_by_key")
        self.interleave(n, series, picks)
        size = len(self.admin.hgetall(keys[picks[0]]))
        self.rows[-2].note = f"{size} fields incl. the {DIMS}-d vector"


# -- report ----------------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3f}"


def render(rows: list[Row]) -> str:
    lines = []
    for size in sorted({r.size for r in rows}):
        lines.append(f"\n### N = {size:,}\n")
        lines.append("| system | operation | p50 ms | p95 ms | vs floor | note |")
        lines.append("|---|---|--:|--:|--:|---|")
        for r in rows:
            if r.size != size:
                continue
            ratio = ""
            base = next((b for b in rows if b.size == size and b.op == r.floor), None) if r.floor else None
            if base is not None and base.p50 and r.p50:
                x = r.p50 / base.p50
                ratio = f"{x:,.0f}x" if x >= 100 else f"{x:.2f}x"
                r.extra["vs_floor_p50"] = r.p50 / base.p50
            lines.append(f"| {r.system} | {r.op} | {_fmt(r.p50)} | {_fmt(r.p95)} | {ratio} | {r.note} |")
    return "\n".join(lines)


def server_description(client: valkey.Valkey) -> str:
    info = client.info("server")
    names = []
    for m in client.execute_command("MODULE", "LIST"):
        d = {m[i].decode(): m[i + 1] for i in range(0, len(m) - 1, 2)}
        name = d["name"].decode() if isinstance(d["name"], bytes) else d["name"]
        ver = int(d["ver"])
        names.append(f"{name} {ver // 10000}.{ver // 100 % 100}.{ver % 100}")
    version = info.get("valkey_version") or info.get("redis_version")
    return f"Valkey {version} + {', '.join(names) or 'no modules'}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--valkey-url", help="use this server (default: start a throwaway valkey-server + search)"
    )
    ap.add_argument("--sizes", default="10000", help="comma-separated N (100000 for the long run)")
    ap.add_argument("--queries", type=int, default=200, help="timed operations per latency series")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write all rows and check results to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(s < 1000 for s in sizes):
        ap.error("sizes must be >= 1000 (a 1% range must hold at least 10 memories)")

    server = None
    url = args.valkey_url
    if url is None:
        from agentmem_core.testing.server import ValkeyServer

        server = ValkeyServer(search=True).start()
        url = server.url
    try:
        bench = Bench(url, server is not None, args.queries, args.seed, not args.quiet)
        desc = server_description(bench.admin)
        print(
            f"# agentmem contract bench: {desc}; {platform.machine()} {os.cpu_count()} cpu; "
            f"python {platform.python_version()}; valkey-py {valkey.__version__}; "
            f"libvalkey {'yes' if LIBVALKEY_AVAILABLE else 'no'}; "
            f"StoreConfig.numeric_fields {'present' if HAS_NUMERIC_FIELDS else 'ABSENT'}; "
            f"load avg at start {os.getloadavg()[0]:.2f}"
        )
        t0 = time.perf_counter()
        for n in sizes:
            bench.run_size(n)
        print(render(bench.rows))
        print(f"\n### Checks\n\n{bench.checked:,} results checked; {len(bench.problems)} problems")
        for p in bench.problems:
            print(f"* {p}")
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
                        "numeric_fields": HAS_NUMERIC_FIELDS,
                        "rows": [r.__dict__ for r in bench.rows],
                        "checked": bench.checked,
                        "problems": bench.problems,
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
