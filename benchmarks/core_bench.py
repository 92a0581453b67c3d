"""Core-engine performance harness: agentmem vs raw Valkey floors vs betterdb-agent-memory 0.7.0.

Against ONE server in one run, at each size N it measures (p50/p95 ms, rates, ratios):

* floors: PING; raw HSET of the exact hash agentmem writes into a raw index with agentmem's exact schema;
  raw pipelined HSET load rate; raw FT.SEARCH hybrid KNN-10 with one TAG filter returning agentmem's
  RETURN fields (DIALECT 2) = the recall floor; raw DEL of a 100-key scope.
* agentmem (sync, and async for the peer comparison): remember, remember_many (batches of 500),
  recall_by_vector k=10 with a user scope filter (reinforce off / on), forget_by_scope (100 memories).
* peer: betterdb-agent-memory 0.7.0 (async only; analytics off) remember, sequential load,
  recall_by_vector (reinforce off / on), forget_by_scope.
* memory per stored item: INFO used_memory delta and FT.INFO index sizes.

Recall is measured with both RESP parsers: pure Python (valkey-py ``_RESP2Parser`` + Python command
packer, what you get without ``libvalkey``) and the ``libvalkey`` C parser.

Embedding cost is excluded: vectors are precomputed (seeded random unit vectors, 384-d) and handed over
via ``remember_many(vectors=...)``, ``recall_by_vector`` and a dict-lookup embedder.

Usage::

    python benchmarks/core_bench.py [--valkey-url URL] [--sizes 1000,10000] [--queries 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("BETTERDB_TELEMETRY", "false")  # the peer's documented analytics opt-out

import numpy as np
import valkey
import valkey.asyncio as avalkey
from _order import staggered
from valkey._parsers import _AsyncRESP2Parser, _RESP2Parser
from valkey._parsers.encoders import Encoder
from valkey.connection import PythonRespSerializer
from valkey.utils import LIBVALKEY_AVAILABLE

from agentmem_core import MemoryStore
from agentmem_core._parse import as_text, pairs
from agentmem_core._records import MemoryInput, prepare
from agentmem_core.aio import AsyncMemoryStore
from agentmem_core.backends.valkey_client import _args as command_args
from agentmem_core.embeddings import CallableEmbedder, validate_vectors, vector_to_bytes
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import STATS_FIELDS, STORED_FIELDS, F, decode_memory, rank_fields

DIMS = 384
USERS = 10  # recall filters on one user: N / 10 candidates pass the filter
THREAD_SIZE = 100  # one scope (user, thread) = 100 memories; forget_by_scope deletes one
BATCH = 500  # remember_many / raw pipeline batch
K = 10

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


Sent = list[tuple[Any, ...]]  # the commands of one round trip
Query = tuple[np.ndarray, str, int]  # (query vector, user filter, index of the memory it was drawn from)


# -- data ----------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    n: int
    vectors: np.ndarray  # (n + extra, DIMS) float32 unit rows
    contents: list[str]
    users: list[str]
    threads: list[str]
    extra: int  # rows n..n+extra are for single-write timings

    def item(self, i: int) -> dict[str, Any]:
        return {
            "content": self.contents[i],
            "user_id": self.users[i],
            "thread_id": self.threads[i],
            "tags": ["pref"],
            "importance": 0.5,
        }


def make_dataset(n: int, extra: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    total = n + extra
    vectors = rng.standard_normal((total, DIMS), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    contents, users, threads = [], [], []
    for i in range(total):
        contents.append(f"User {_TOPICS[i % len(_TOPICS)]} (note {i}).")
        if i < n:
            t = i // THREAD_SIZE
            threads.append(f"t{t}")
            users.append(f"u{t % USERS}")
        else:  # single writes go to their own scopes so forget_by_scope scopes stay at exactly 100
            users.append(f"u{i % USERS}")
            threads.append(f"s{i % USERS}")
    return Dataset(n, vectors, contents, users, threads, extra)


def make_queries(ds: Dataset, count: int, seed: int) -> list[Query]:
    """Query vectors near a stored memory of a user (so hits are realistic), with that user as filter."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(count):
        i = int(rng.integers(0, ds.n))
        q = ds.vectors[i] + rng.standard_normal(DIMS).astype(np.float32) * 0.03
        q /= np.linalg.norm(q)
        out.append((q.astype(np.float32), ds.users[i], i))
    return out


# -- stats ---------------------------------------------------------------------------------------------
@dataclass
class Row:
    size: int
    system: str
    op: str
    parser: str
    p50: float | None = None  # ms
    p95: float | None = None
    rate: float | None = None  # items/s
    n: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def pct(samples: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(samples, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


# -- clients -------------------------------------------------------------------------------------------
PARSERS = ("libvalkey", "python") if LIBVALKEY_AVAILABLE else ("python",)


def sync_client(url: str, parser: str) -> valkey.Valkey:
    kwargs: dict[str, Any] = {"protocol": 2, "decode_responses": False}
    if parser == "python":
        kwargs["parser_class"] = _RESP2Parser
        kwargs["command_packer"] = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    return valkey.Valkey.from_url(url, **kwargs)


def async_client(url: str, parser: str) -> avalkey.Valkey:
    kwargs: dict[str, Any] = {"protocol": 2, "decode_responses": False}
    if parser == "python":
        kwargs["parser_class"] = _AsyncRESP2Parser  # the asyncio client always packs commands in Python
    return avalkey.Valkey.from_url(url, **kwargs)


def vec_bytes(v: np.ndarray) -> bytes:
    return v.astype("<f4", copy=False).tobytes()


def used_memory(client: valkey.Valkey) -> int:
    return int(client.info("memory")["used_memory"])


def ft_info_mb(client: valkey.Valkey, index: str) -> dict[str, float]:
    raw = client.execute_command("FT.INFO", index)
    info = {
        raw[i].decode() if isinstance(raw[i], bytes) else str(raw[i]): raw[i + 1]
        for i in range(0, len(raw) - 1, 2)
    }
    out = {}
    for k in (
        "num_docs",
        "vector_index_sz_mb",
        "inverted_sz_mb",
        "offset_vectors_sz_mb",
        "doc_table_size_mb",
        "sortable_values_size_mb",
        "key_table_size_mb",
        "tag_overhead_sz_mb",
        "text_overhead_sz_mb",
        "total_index_memory_sz_mb",
    ):
        if k in info:
            v = info[k]
            try:
                out[k] = float(v.decode() if isinstance(v, bytes) else v)
            except (TypeError, ValueError):
                pass
    return out


def index_mb(info: dict[str, float]) -> float:
    if "total_index_memory_sz_mb" in info:  # RediSearch: excludes the vector index, reported separately
        return info["total_index_memory_sz_mb"] + info.get("vector_index_sz_mb", 0.0)
    return sum(v for k, v in info.items() if k.endswith("_mb"))


# -- the benchmark -------------------------------------------------------------------------------------
async def _timed(fn: Callable[[Any], Awaitable[Any]], arg: Any) -> float:
    t0 = time.perf_counter_ns()
    await fn(arg)
    return (time.perf_counter_ns() - t0) / 1e6


@dataclass
class Series:
    """One latency series; all series of a step run round-robin per argument (same background load)."""

    system: str
    op: str
    parser: str
    fn: Callable[[Any], Any]
    is_async: bool = False
    samples: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, url: str, owned: bool, queries: int, seed: int, run_id: str, progress: bool) -> None:
        self.url = url
        self.owned = owned
        self.nq = queries
        self.seed = seed
        self.run_id = run_id
        self.rows: list[Row] = []
        self.memory: dict[int, dict[str, Any]] = {}
        self.progress = progress
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def log(self, msg: str) -> None:
        if self.progress:
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"  [{time.strftime('%H:%M:%S')}] {msg} (load avg {load})", file=sys.stderr, flush=True)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def lat(self, size: int, system: str, op: str, parser: str, ms: Sequence[float], note: str = "") -> Row:
        p50, p95 = pct(ms)
        return self.add(Row(size, system, op, parser, p50, p95, None, len(ms), note))

    def interleave(
        self, size: int, series: list[Series], args: Sequence[Any], warmup: int, note: str = ""
    ) -> None:
        for a in args[:warmup]:
            for s in series:
                self.run(s.fn(a)) if s.is_async else s.fn(a)
        gc.collect()
        gc.disable()
        try:
            for step in staggered(args, len(series)):  # a new query per series, in a new order each step
                for n, a in step:
                    s = series[n]
                    if s.is_async:
                        s.samples.append(self.run(_timed(s.fn, a)))
                    else:
                        t0 = time.perf_counter_ns()
                        s.fn(a)
                        s.samples.append((time.perf_counter_ns() - t0) / 1e6)
        finally:
            gc.enable()
        for s in series:
            self.lat(size, s.system, s.op, s.parser, s.samples, note)

    # names (isolated per system; a run id keeps repeated runs on a shared server apart)
    def names(self, n: int) -> dict[str, str]:
        tag = f"{self.run_id}n{n}"
        return {
            "raw_prefix": f"rawb{tag}:m:",
            "raw_stats_prefix": f"rawb{tag}:s:",  # the counters of the reinforced recall floor
            "raw_index": f"rawb{tag}_idx",
            "am": f"ambench{tag}",
            "peer": f"peerb{tag}",
        }

    def run_size(self, n: int) -> None:
        admin = sync_client(self.url, "libvalkey")
        if self.owned:
            admin.flushall()
        extra = max(50, min(self.nq, 500))
        ds = make_dataset(n, extra, self.seed)
        queries = make_queries(ds, self.nq, self.seed)
        sysm = Systems(self, n, ds, admin)
        self.memory[n] = {}
        try:
            self.log(f"N={n}: setup + PING")
            sysm.setup()
            self.log(f"N={n}: interleaved load (raw pipeline / remember_many / peer remember)")
            sysm.load()
            self.log(f"N={n}: single writes")
            sysm.singles()
            self.log(f"N={n}: recall")
            for parser in PARSERS:
                sysm.recall(parser, queries)
            self.log(f"N={n}: forget_by_scope")
            sysm.forgets()
        finally:
            sysm.close()
            if not self.owned:
                self.cleanup(self.names(n), admin)
            admin.close()

    def cleanup(self, names: dict[str, str], admin: valkey.Valkey) -> None:
        for index in (names["raw_index"], f"am_{names['am']}_v2", f"{names['peer']}:mem:idx"):
            try:
                admin.execute_command("FT.DROPINDEX", index, "DD")
            except valkey.ResponseError:
                pass
        for pattern in (f"am:{names['am']}:*", f"{names['peer']}:*", f"{names['raw_stats_prefix']}*"):
            batch = []
            for key in admin.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    admin.delete(*batch)
                    batch = []
            if batch:
                admin.delete(*batch)


RAW, AM, AM_ASYNC, PEER = "floor", "agentmem", "agentmem (async)", "betterdb 0.7.0"


class Systems:
    """The three systems on one server at one size: raw floor, agentmem (sync + async), the peer."""

    def __init__(self, bench: Bench, n: int, ds: Dataset, admin: valkey.Valkey) -> None:
        self.b = bench
        self.n = n
        self.ds = ds
        self.admin = admin
        self.names = bench.names(n)
        self.lookup = {ds.contents[i]: ds.vectors[i] for i in range(n + ds.extra)}
        # the same query naming a date (time-aware recall: one more KNN over the window, same round trip)
        self.lookup.update({c + DATED: v for c, v in list(self.lookup.items())})
        self.peer_lookup = {t: [float(x) for x in v] for t, v in self.lookup.items()}
        self.sync: dict[str, valkey.Valkey] = {}
        self.aio: dict[str, Any] = {}
        self.am: dict[str, MemoryStore] = {}
        self.am_async: dict[str, AsyncMemoryStore] = {}
        self.peer: dict[str, Any] = {}
        self.peer_error: str | None = None
        self.payloads: list[list[Any]] = []

    # -- lifecycle -------------------------------------------------------------------------------------
    def setup(self) -> None:
        b, n = self.b, self.n
        for parser in PARSERS:
            self.sync[parser] = sync_client(b.url, parser)
            self.aio[parser] = async_client(b.url, parser)
            self.am[parser] = MemoryStore(
                self.sync[parser], name=self.names["am"], embedder=_embedder(self.lookup)
            )
            self.am[parser].setup()
            self.am_async[parser] = AsyncMemoryStore(
                self.aio[parser], name=self.names["am"], embedder=_embedder(self.lookup)
            )
            b.run(self.am_async[parser].setup())
        # raw index: agentmem's set-up spec, own name/prefix
        spec = self.am["libvalkey" if "libvalkey" in PARSERS else "python"].spec
        create = list(spec.create_command())
        create[1], create[6] = self.names["raw_index"], self.names["raw_prefix"]
        self.admin.execute_command(*create)
        self.raw_schema = "agentmem's schema (incl. the x_terms TAG field of hybrid recall)"
        config = self.am[PARSERS[0]].config
        now = time.time()
        for i in range(n + self.ds.extra):
            prepared = prepare(MemoryInput(**self.ds.item(i)), config, now)
            flat: list[Any] = []
            for k, v in prepared.fields.items():
                flat += [k, v]
            self.payloads.append(flat + [F.EMBEDDING, vec_bytes(self.ds.vectors[i])])
        try:
            from betterdb_agent_memory import MemoryStore as PeerStore

            for parser in PARSERS:
                self.peer[parser] = PeerStore(
                    client=self.aio[parser],
                    name=self.names["peer"],
                    embed_fn=self._peer_embed,
                    analytics=False,
                )
            b.run(self.peer[PARSERS[0]].ensure_index())
        except Exception as exc:  # report exactly why the peer cannot run on this engine
            self.peer_error = f"{type(exc).__name__}: {exc}"
            self.peer = {}
            b.add(Row(n, PEER, "unavailable", "-", note=self.peer_error))
        series = [Series(RAW, "PING", p, self.sync[p].ping) for p in PARSERS]
        self.b.interleave(
            n,
            [Series(s.system, s.op, s.parser, lambda _a, f=s.fn: f()) for s in series],
            range(self.b.nq),
            warmup=20,
        )

    async def _peer_embed(self, text: str) -> list[float]:
        # ensure_index() embeds a probe text to learn the dimension
        return self.peer_lookup.get(text) or [1.0] + [0.0] * (DIMS - 1)

    def close(self) -> None:
        for parser in list(self.peer):
            self.b.run(self.peer[parser].close())
        for client in self.aio.values():
            self.b.run(client.aclose())
        for client in self.sync.values():
            client.close()

    def _peer_item(self, i: int) -> dict[str, Any]:
        ds = self.ds
        return {"content": ds.contents[i], "agent_id": ds.users[i], "thread_id": ds.threads[i],
                "tags": ["pref"], "importance": 0.5}  # fmt: skip

    # -- load: batches interleaved across systems; memory = sum of used_memory deltas per system ------------
    def load(self) -> None:
        b, n, ds, admin = self.b, self.n, self.ds, self.admin
        prefix = self.names["raw_prefix"]
        am = self.am[PARSERS[0]]
        peer = self.peer.get(PARSERS[0])
        elapsed = {RAW: 0.0, AM: 0.0, PEER: 0.0}
        mem = {RAW: 0, AM: 0, PEER: 0}
        am_batches: list[float] = []

        def raw_batch(lo: int, hi: int) -> None:
            pipe = admin.pipeline(transaction=False)
            for i in range(lo, hi):
                pipe.execute_command("HSET", f"{prefix}{i}", *self.payloads[i])
            pipe.execute()

        def am_batch(lo: int, hi: int) -> None:
            am.remember_many([ds.item(i) for i in range(lo, hi)], vectors=ds.vectors[lo:hi])

        async def peer_batch(lo: int, hi: int) -> None:
            for i in range(lo, hi):  # the peer has no batch write: sequential remember() is its load path
                await peer.remember(**self._peer_item(i))

        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            steps: list[tuple[str, Callable[[], Any]]] = [
                (RAW, lambda lo=lo, hi=hi: raw_batch(lo, hi)),
                (AM, lambda lo=lo, hi=hi: am_batch(lo, hi)),
            ]
            if peer is not None:
                steps.append((PEER, lambda lo=lo, hi=hi: b.run(peer_batch(lo, hi))))
            for system, step in steps:
                before = used_memory(admin)
                t0 = time.perf_counter()
                step()
                took = time.perf_counter() - t0
                elapsed[system] += took
                mem[system] += used_memory(admin) - before
                if system == AM:
                    am_batches.append(took * 1000)
        b.add(Row(n, RAW, f"pipelined HSET load ({BATCH}/rt)", "libvalkey", rate=n / elapsed[RAW], n=n,
                  note="fields prepared before timing"))  # fmt: skip
        p50, p95 = pct(am_batches)
        rate = n / elapsed[AM]
        b.add(Row(n, AM, f"remember_many ({BATCH}/call)", "libvalkey", p50, p95, rate, len(am_batches),
                  note="p50/p95 = per call"))  # fmt: skip
        if peer is not None:
            b.add(Row(n, PEER, "load via sequential remember()", "libvalkey", rate=n / elapsed[PEER], n=n,
                      note="no batch API"))  # fmt: skip
        indexes = {RAW: self.names["raw_index"], AM: am.spec.name, PEER: f"{self.names['peer']}:mem:idx"}
        labels = {RAW: f"raw ({self.raw_schema})", AM: "agentmem", PEER: PEER}
        for system in (RAW, AM, PEER):
            if system == PEER and peer is None:
                continue
            info = ft_info_mb(admin, indexes[system])
            b.memory[n][labels[system]] = {
                "used_memory_delta_bytes": mem[system],
                "bytes_per_item": mem[system] / n,
                "index_mb": index_mb(info),
                "ft_info": info,
            }

    # -- single writes (interleaved) -------------------------------------------------------------------
    def _validated_hset(self, i: int) -> Any:
        # The HSET floor plus the least a library that validates input pays: agentmem's own validation and
        # encoding of the item (prepare), the vector check, then one plain HSET of the result, no bookkeeping.
        am = self.am[PARSERS[0]]
        prepared = prepare(MemoryInput(**self.ds.item(i)), am.config, time.time())
        vector = validate_vectors([self.ds.vectors[i]], DIMS, expected=1)[0]
        flat: list[Any] = []
        for k, v in prepared.fields.items():
            flat += [k, v]
        return self.admin.execute_command("HSET", f"{self.names['raw_prefix']}v{i}", *flat,
                                          F.EMBEDDING, vector_to_bytes(vector))  # fmt: skip

    def singles(self) -> None:
        prefix = self.names["raw_prefix"]
        am = self.am[PARSERS[0]]
        series = [
            Series(RAW, "HSET (1 memory, indexed)", "libvalkey",
                   lambda i: self.admin.execute_command("HSET", f"{prefix}{i}", *self.payloads[i])),
            Series(RAW, REMEMBER_FLOOR_VALIDATED, "libvalkey", self._validated_hset),
            Series(AM, "remember (1 memory)", "libvalkey", lambda i: am.remember(**self.ds.item(i))),
        ]  # fmt: skip
        if self.peer:
            peer = self.peer[PARSERS[0]]

            async def peer_one(i: int) -> Any:
                return await peer.remember(**self._peer_item(i))

            series.append(Series(PEER, "remember (1 memory)", "libvalkey", peer_one, is_async=True))
        self.b.interleave(self.n, series, list(range(self.n, self.n + self.ds.extra)), warmup=0)

    # -- recall (interleaved, one parser at a time) -----------------------------------------------------
    def recall(self, parser: str, queries: list[Query]) -> None:
        names, c, ac = self.names, self.sync[parser], self.aio[parser]
        am, am_async = self.am[parser], self.am_async[parser]
        ret = ("am_distance", *STORED_FIELDS)

        def floor_cmd(q: Query) -> tuple[Any, ...]:
            query = f"(@{F.X_USER}:{{{q[1]}}})=>[KNN {K} @{F.EMBEDDING} $vec AS am_distance]"
            return ("FT.SEARCH", names["raw_index"], query, "PARAMS", 2, "vec", vec_bytes(q[0]),
                    "RETURN", len(ret), *ret, "LIMIT", 0, K, "DIALECT", 2)  # fmt: skip

        # the FT.SEARCH agentmem sends (its filter incl. the not-expired leaf, KNN k*3, EF_RUNTIME, TIMEOUT)
        ctx = am._context()

        def matched_cmd(q: Query) -> tuple[Any, ...]:
            leaves = MemoryFilter(user_id=q[1]).scope_leaves()
            pool = K * ctx.config.candidate_multiplier
            fields = rank_fields(lexical=False, metadata=False)
            args = list(am._valkey_ops().knn_command(leaves, vec_bytes(q[0]), pool, fields).args)
            args[1] = names["raw_index"]
            return tuple(args)

        async def floor_async(q: Query) -> Any:
            return await ac.execute_command(*floor_cmd(q))

        stats_prefix = names["raw_stats_prefix"]

        def bump_counters(keys: Sequence[Any], fields: Sequence[str]) -> list[Any]:
            # What reinforcement needs at least: the hits' counters live outside the indexed hash (writing
            # into it re-indexes the document, ~1 ms on RediSearch), so they are read and bumped in one more
            # round trip of plain pipelined commands (HMGET, HINCRBY, HSET per hit).
            pipe = c.pipeline(transaction=False)
            now = time.time()
            for key in keys:
                stats = stats_prefix + as_text(key)
                pipe.hmget(stats, *fields)
                pipe.hincrby(stats, "access_count", 1)
                pipe.hset(stats, "last_accessed_at", now)
            return list(pipe.execute())

        def floor_reinforced(q: Query) -> Any:
            reply = c.execute_command(*floor_cmd(q))
            return bump_counters(reply[1::2], ("access_count", "last_accessed_at"))

        def floor_decoded(q: Query) -> Any:
            # ... plus the least a library returning typed memories pays: decoding the 10 rows and their
            # counters with agentmem's decoder (no ranking, no score breakdown, no expiry check).
            reply = c.execute_command(*floor_cmd(q))
            keys = reply[1::2]
            counters = bump_counters(keys, STATS_FIELDS)[::3]  # the HMGET replies
            return [decode_memory(as_text(key), pairs(fields), stats)
                    for key, fields, stats in zip(keys, reply[2::2], counters)]  # fmt: skip

        series = [
            Series(RAW, RECALL_FLOOR, parser, lambda q: c.execute_command(*floor_cmd(q))),
            Series(RAW, RECALL_FLOOR_REINFORCED, parser, floor_reinforced),
            Series(RAW, RECALL_FLOOR_DECODED, parser, floor_decoded),
            Series(RAW, f"FT.SEARCH as agentmem sends it (KNN-{K * ctx.config.candidate_multiplier})", parser,
                   lambda q: c.execute_command(*matched_cmd(q))),
            Series(AM, "recall_by_vector k=10, reinforce off", parser,
                   lambda q: am.recall_by_vector(q[0], k=K, user_id=q[1], reinforce=False)),
            Series(AM, "recall_by_vector k=10, reinforce on", parser,
                   lambda q: am.recall_by_vector(q[0], k=K, user_id=q[1], reinforce=True)),
        ]  # fmt: skip
        if getattr(am, "hybrid_enabled", False):  # text recall = KNN + BM25 channels (default when available)
            sent = self._text_recall_commands(am, queries)

            def replay(q: Query) -> Any:
                for commands in sent[q[2]]:
                    pipe = c.pipeline(transaction=False)
                    for args in commands:
                        pipe.execute_command(*args)
                    pipe.execute()

            series.append(Series(RAW, HYBRID_FLOOR, parser, replay))
            series.append(Series(AM, "recall (text, hybrid KNN+BM25) k=10, reinforce on", parser,
                                 lambda q: am.recall(self.ds.contents[q[2]], k=K, user_id=q[1])))  # fmt: skip
            series.append(Series(AM, f"recall (text naming a date: '...{DATED}') k=10, reinforce on", parser,
                                 lambda q: am.recall(self.ds.contents[q[2]] + DATED, k=K,
                                                     user_id=q[1])))  # fmt: skip

        async def am_async_off(q: Query) -> Any:
            return await am_async.recall_by_vector(q[0], k=K, user_id=q[1], reinforce=False)

        async def am_async_on(q: Query) -> Any:
            return await am_async.recall_by_vector(q[0], k=K, user_id=q[1], reinforce=True)

        series += [
            Series("floor (async)", RECALL_FLOOR, parser, floor_async, is_async=True),
            Series(AM_ASYNC, "recall_by_vector k=10, reinforce off", parser, am_async_off, is_async=True),
            Series(AM_ASYNC, "recall_by_vector k=10, reinforce on", parser, am_async_on, is_async=True),
        ]
        if self.peer:
            peer = self.peer[parser]

            # threshold=2.0: the peer's default 0.33 gate would drop hits (and their parse/reinforce cost)
            async def peer_off(q: Query) -> Any:
                return await peer.recall_by_vector(
                    q[0].tolist(), k=K, threshold=2.0, agent_id=q[1], reinforce=False
                )

            async def peer_on(q: Query) -> Any:
                return await peer.recall_by_vector(
                    q[0].tolist(), k=K, threshold=2.0, agent_id=q[1], reinforce=True
                )

            series += [
                Series(PEER, "recall_by_vector k=10, reinforce off", parser, peer_off, is_async=True),
                Series(PEER, "recall_by_vector k=10, reinforce on", parser, peer_on, is_async=True),
            ]
        self.b.interleave(self.n, series, queries, warmup=20)

    def _text_recall_commands(self, am: MemoryStore, queries: list[Query]) -> dict[int, list[Sent]]:
        """The commands each query's text recall sends, per round trip, as the timed recalls send them.

        Each query is recalled once before (the store's term statistics are then as warm as in the timed
        runs), then once more with its sender recording; the recorded commands replay on a raw client.
        """
        backend = am._backend
        inner = backend._round_trip
        rounds: list[Sent] = []

        def recording(commands: Sequence[Any]) -> list[Any]:
            rounds.append([command_args(command) for command in commands])
            return list(inner(commands))

        out: dict[int, list[Sent]] = {}
        for _, user, i in queries:
            if i in out:
                continue
            am.recall(self.ds.contents[i], k=K, user_id=user)
            backend._round_trip = recording
            try:
                am.recall(self.ds.contents[i], k=K, user_id=user)
            finally:
                del backend._round_trip
            out[i], rounds = rounds, []
        return out

    # -- forget_by_scope (destructive: last; interleaved per scope) -------------------------------------
    def forgets(self) -> None:
        n_threads = self.n // THREAD_SIZE
        count = max(1, min(20, n_threads // 2))
        targets = [(f"t{t}", f"u{t % USERS}") for t in range(n_threads - count, n_threads)]
        prefix = self.names["raw_prefix"]
        am = self.am[PARSERS[0]]
        deleted = {AM: 0, PEER: 0}

        def raw_del(t: tuple[str, str]) -> Any:
            j = int(t[0][1:])
            return self.admin.delete(*[f"{prefix}{i}" for i in range(j * THREAD_SIZE, (j + 1) * THREAD_SIZE)])

        def am_forget(t: tuple[str, str]) -> None:
            deleted[AM] += am.forget_by_scope(thread_id=t[0], user_id=t[1])

        series = [
            Series(RAW, "DEL 100 keys (known ids, 1 command)", "libvalkey", raw_del),
            Series(AM, "forget_by_scope (100 memories)", "libvalkey", am_forget),
        ]
        if self.peer:
            peer = self.peer[PARSERS[0]]

            async def peer_forget(t: tuple[str, str]) -> None:
                deleted[PEER] += await peer.forget_by_scope(thread_id=t[0], agent_id=t[1])

            series.append(
                Series(PEER, "forget_by_scope (100 memories)", "libvalkey", peer_forget, is_async=True)
            )
        self.b.interleave(self.n, series, targets, warmup=0, note=f"{count} scopes")
        for row in self.b.rows[-len(series) :]:
            if row.system in deleted:
                row.note += f", deleted {deleted[row.system]}"


DATED = " last month"


def _embedder(lookup: dict[str, Any]) -> CallableEmbedder:
    def fn(texts: Sequence[str]) -> np.ndarray:
        return np.stack([lookup[t] for t in texts])

    return CallableEmbedder(fn, DIMS)


# -- report --------------------------------------------------------------------------------------------
def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if x >= 1000 else f"{x:.{digits}f}"


def find(rows: list[Row], size: int, system: str, op: str, parser: str = "libvalkey") -> Row | None:
    for r in rows:
        if r.size == size and r.system == system and r.op == op and r.parser == parser:
            return r
    return None


RECALL_FLOOR = "FT.SEARCH KNN-10 + tag filter (recall floor)"
RECALL_FLOOR_REINFORCED = "recall floor + 1 pipelined round trip reading and bumping the 10 hits' counters"
HYBRID_FLOOR = "text recall's own commands replayed raw (floor of the hybrid design: KNN-50, counts, fetch)"
RECALL_FLOOR_DECODED = "recall floor + counters round trip + decoding the 10 hits (agentmem's decoder)"
REMEMBER_FLOOR_VALIDATED = "HSET + validating and encoding the input (agentmem's prepare)"


def ratio_for(rows: list[Row], r: Row) -> str:
    """Ratio against the matching floor (same parser, same sync/async flavour)."""
    flavour = "floor (async)" if "async" in r.system or r.system.startswith("betterdb") else "floor"
    if "recall" in r.op:
        base = find(rows, r.size, flavour, RECALL_FLOOR, r.parser)
        return f"{r.p50 / base.p50:.2f}x" if base and r.p50 and base.p50 else ""
    if r.op.startswith("remember (1") or r.op == REMEMBER_FLOOR_VALIDATED:
        base = find(rows, r.size, "floor", "HSET (1 memory, indexed)")
        return f"{r.p50 / base.p50:.2f}x" if base and r.p50 and base.p50 else ""
    if r.rate is not None and r.system != "floor":
        base = find(rows, r.size, "floor", f"pipelined HSET load ({BATCH}/rt)")
        return f"{r.rate / base.rate:.2f}x rate" if base and base.rate else ""
    if r.op.startswith("forget_by_scope"):
        base = find(rows, r.size, "floor", "DEL 100 keys (known ids, 1 command)")
        return f"{r.p50 / base.p50:.2f}x" if base and r.p50 and base.p50 else ""
    return ""


def render(
    rows: list[Row], memory: dict[int, dict[str, Any]]
) -> tuple[str, list[tuple[int, str, str, bool]]]:
    lines = []
    sizes = sorted({r.size for r in rows})
    for size in sizes:
        lines.append(f"\n### N = {size:,}\n")
        lines.append("| system | operation | parser | p50 ms | p95 ms | items/s | vs floor | note |")
        lines.append("|---|---|---|--:|--:|--:|--:|---|")
        for r in rows:
            if r.size != size:
                continue
            lines.append(
                f"| {r.system} | {r.op} | {r.parser} | {_fmt(r.p50)} | {_fmt(r.p95)} | {_fmt(r.rate)} "
                f"| {ratio_for(rows, r)} | {r.note} |"
            )
        mem = memory.get(size, {})
        if mem:
            raw_key = next((k for k in mem if k.startswith("raw")), "")
            raw = mem.get(raw_key, {}).get("bytes_per_item")
            lines.append(
                "\n| memory | bytes/item (used_memory delta) | vs raw | FT.INFO index MB (incl. vectors) "
                "| num_docs |"
            )
            lines.append("|---|--:|--:|--:|--:|")
            for system, m in mem.items():
                ratio = f"{m['bytes_per_item'] / raw:.2f}x" if raw else ""
                lines.append(
                    f"| {system} | {m['bytes_per_item']:,.0f} | {ratio} | {m['index_mb']:.2f} "
                    f"| {int(m['ft_info'].get('num_docs', 0)):,} |"
                )
    verdicts: list[tuple[int, str, str, bool]] = []
    for size in sizes:

        def check(
            label: str, value: float | None, limit: float, higher_is_better: bool = False, size: int = size
        ) -> None:
            if value is None:
                return
            ok = value >= limit if higher_is_better else value <= limit
            bound = f">= {limit}" if higher_is_better else f"<= {limit}"
            verdicts.append((size, label, f"{value:.2f}x (target {bound}x)", ok))

        for parser in PARSERS:
            floor = find(rows, size, "floor", RECALL_FLOOR, parser)
            for reinforce in ("on", "off"):
                am = find(rows, size, "agentmem", f"recall_by_vector k=10, reinforce {reinforce}", parser)
                if floor and am:
                    check(
                        f"recall p50 (reinforce {reinforce}, {parser}) vs raw FT.SEARCH",
                        am.p50 / floor.p50,
                        1.3,
                    )
            reinforced = find(rows, size, "floor", RECALL_FLOOR_REINFORCED, parser)
            by_vector = find(rows, size, "agentmem", "recall_by_vector k=10, reinforce on", parser)
            if reinforced and by_vector:
                label = f"recall_by_vector p50 (reinforce on, {parser}) vs the reinforced floor (issue 20)"
                check(label, by_vector.p50 / reinforced.p50, 1.3)
            text = find(rows, size, "agentmem", "recall (text, hybrid KNN+BM25) k=10, reinforce on", parser)
            design = find(rows, size, "floor", HYBRID_FLOOR, parser)
            if floor and text:
                check(f"text recall p50 ({parser}) vs raw FT.SEARCH (issue 20)", text.p50 / floor.p50, 2.0)
            if design and text:
                label = f"text recall p50 ({parser}) vs its own commands replayed raw"
                check(label, text.p50 / design.p50, 1.3)
        hset = find(rows, size, "floor", "HSET (1 memory, indexed)")
        rem = find(rows, size, "agentmem", "remember (1 memory)")
        if hset and rem:
            check("remember p50 vs raw HSET", rem.p50 / hset.p50, 1.2)
        load = find(rows, size, "floor", f"pipelined HSET load ({BATCH}/rt)")
        many = find(rows, size, "agentmem", f"remember_many ({BATCH}/call)")
        if load and many:
            check(
                "remember_many rate vs raw pipelined load", many.rate / load.rate, 0.8, higher_is_better=True
            )
        mem = memory.get(size, {})
        raw_key = next((k for k in mem if k.startswith("raw")), "")
        if "agentmem" in mem and raw_key:
            check(
                "memory/item vs raw hash+index",
                mem["agentmem"]["bytes_per_item"] / mem[raw_key]["bytes_per_item"],
                1.15,
            )
    lines.append("\n### Targets\n")
    lines.append("| N | target | measured | result |")
    lines.append("|--:|---|---|---|")
    for size, label, measured, ok in verdicts:
        lines.append(f"| {size:,} | {label} | {measured} | {'PASS' if ok else 'FAIL'} |")
    return "\n".join(lines), verdicts


def server_description(url: str) -> str:
    c = sync_client(url, "libvalkey")
    info = c.info("server")
    mods = c.execute_command("MODULE", "LIST")
    c.close()
    names = []
    for m in mods:
        d = {m[i].decode(): m[i + 1] for i in range(0, len(m) - 1, 2)}
        name = d["name"].decode() if isinstance(d["name"], bytes) else d["name"]
        ver = int(d["ver"])
        names.append(f"{name} {ver // 10000}.{ver // 100 % 100}.{ver % 100}")
    server = info.get("valkey_version") or info.get("redis_version")
    return f"Valkey {server} + {', '.join(names) or 'no modules'}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--valkey-url", help="use this server (default: start a throwaway valkey-server + search)"
    )
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated N (100000 for the long run)")
    ap.add_argument("--queries", type=int, default=300, help="timed operations per latency series")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write all rows and memory figures to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    server = None
    url = args.valkey_url
    if url is None:
        from agentmem_core.testing.server import ValkeyServer

        server = ValkeyServer(search=True).start()
        url = server.url
    try:
        desc = server_description(url)
        print(
            f"# agentmem core bench: {desc}; {platform.machine()} {os.cpu_count()} cpu; "
            f"python {platform.python_version()}; valkey-py {valkey.__version__}; "
            f"libvalkey {'yes' if LIBVALKEY_AVAILABLE else 'no'}"
        )
        bench = Bench(url, server is not None, args.queries, args.seed, uuid.uuid4().hex[:6], not args.quiet)
        t0 = time.perf_counter()
        for n in sizes:
            bench.run_size(n)
        table, verdicts = render(bench.rows, bench.memory)
        print(table)
        print(f"\n(total {time.perf_counter() - t0:.0f} s)")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "server": desc,
                        "sizes": sizes,
                        "queries": args.queries,
                        "rows": [r.__dict__ for r in bench.rows],
                        "memory": {str(k): v for k, v in bench.memory.items()},
                        "targets": [
                            {"size": s, "target": t, "measured": m, "pass": ok} for s, t, m, ok in verdicts
                        ],
                    },
                    fh,
                    indent=2,
                )
        return 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
