"""Probe: how RediSearch plans a filtered KNN, by the share of the index the filter matches.

Loads N random 384-d unit vectors (HNSW, M=16, EF_CONSTRUCTION=200) with a TAG field holding ``all`` on
every document, ``p10`` on 10%, ``p1`` on 1% and ``p01`` on 0.1%, into a throwaway server (or
``--valkey-url``), then times 30 FT.SEARCH calls per query shape (p50 ms): KNN with no filter, with each
TAG filter under the default hybrid policy, and with ``HYBRID_POLICY BATCHES`` (a RediSearch-only query
parameter; valkey-search plans differently and is not measured here).

Usage::

    python benchmarks/hybrid_policy_probe.py [--valkey-url URL] [--n 30000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import valkey

from agentmem_core.testing.server import ValkeyServer

D = 384
SHARES = [("all", "100%"), ("p50", "50%"), ("p30", "30%"), ("p20", "20%"), ("p10", "10%"), ("p1", "1%"),
          ("p01", "0.1%")]
"""TAG value -> the share of the index it matches (see :func:`tags`)."""


def queries(k: int) -> list[tuple[str, str]]:
    """The query shapes timed for one ``k``: unfiltered, then each share under both policies."""
    shapes = [(f"KNN-{k}, no filter", f"*=>[KNN {k} @v $vec AS d]")]
    for tag, share in SHARES:
        shapes.append((f"KNN-{k}, filter matching {share}", f"@t:{{{tag}}}=>[KNN {k} @v $vec AS d]"))
        shapes.append((
            f"KNN-{k}, filter matching {share}, BATCHES",
            f"@t:{{{tag}}}=>[KNN {k} @v $vec HYBRID_POLICY BATCHES AS d]",
        ))
    return shapes


def tags(k: int) -> str:
    """Document ``k``'s TAG values: ``all``, and each share's value on that share of the documents."""
    chosen = ["all"]
    chosen += ["p50"] if k % 2 == 0 else []
    chosen += ["p30"] if k % 10 < 3 else []
    chosen += ["p20"] if k % 5 == 0 else []
    chosen += ["p10"] if k % 10 == 0 else []
    chosen += ["p1"] if k % 100 == 0 else []
    chosen += ["p01"] if k % 1000 == 0 else []
    return "|".join(chosen)


def load(client: valkey.Valkey, n: int) -> None:
    try:
        client.execute_command("FT.DROPINDEX", "probe_kx", "DD")
    except valkey.ResponseError as exc:  # no such index yet: nothing to drop
        if "unknown index" not in str(exc).lower() and "no such index" not in str(exc).lower():
            raise
    client.execute_command(
        "FT.CREATE", "probe_kx", "ON", "HASH", "PREFIX", 1, "probe_kx:", "SCHEMA",
        "v", "VECTOR", "HNSW", 10, "TYPE", "FLOAT32", "DIM", D, "DISTANCE_METRIC", "COSINE",
        "M", 16, "EF_CONSTRUCTION", 200, "t", "TAG", "SEPARATOR", "|",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        vectors = rng.standard_normal((1000, D)).astype("<f4")
        vectors /= np.linalg.norm(vectors, axis=1)[:, None]
        for i in range(1000):
            k = start + i
            pipe.hset(f"probe_kx:{k}", mapping={"v": vectors[i].tobytes(), "t": tags(k)})
        pipe.execute()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--valkey-url")
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--k", default="10,20,40", help="comma-separated KNN sizes")
    args = ap.parse_args()
    server = None if args.valkey_url else ValkeyServer(search=True).start()
    client = valkey.Valkey.from_url(args.valkey_url or server.url)  # type: ignore[union-attr]
    try:
        load(client, args.n)
        query = np.random.default_rng(1).standard_normal(D).astype("<f4")
        query /= np.linalg.norm(query)
        print(f"| query (N = {args.n:,}) | p50 ms |\n|---|--:|")
        for name, text in [shape for k in map(int, args.k.split(",")) for shape in queries(k)]:
            times = []
            for _ in range(30):
                t = time.perf_counter()
                client.execute_command(
                    "FT.SEARCH", "probe_kx", text, "PARAMS", 2, "vec", query.tobytes(),
                    "RETURN", 1, "d", "LIMIT", 0, 100, "DIALECT", 2,
                )  # fmt: skip
                times.append(time.perf_counter() - t)
            print(f"| {name} | {statistics.median(times) * 1000:.2f} |", flush=True)
    finally:
        client.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
