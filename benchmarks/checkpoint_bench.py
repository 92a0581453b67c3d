"""Checkpointer benchmark: agentmem savers vs langgraph-checkpoint-aws and InMemorySaver.

Measures, in one run against one throwaway valkey-server (or --valkey-url):

* put / put_writes / get_tuple latency (p50, p95) for a checkpoint whose ``messages`` channel grows to 20
  messages of ~200 characters (20 steps per thread, several threads; every step runs once per saver in a
  fresh random order, so background load hits all savers alike);
* the floor for get_tuple: one GET of that serialized checkpoint (what a single key read costs);
* wall time per turn of a 2-node StateGraph (``respond`` -> ``count``, add_messages) over 20 turns,
  for no checkpointer, InMemorySaver, agentmem and the AWS saver, sync (invoke) and async (ainvoke);
* a floor for both: InMemorySaver plus one PING per LangGraph call, the least a networked saver costs.

Usage::

    .venv/bin/python benchmarks/checkpoint_bench.py [--valkey-url valkey://127.0.0.1:6379] [--threads 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import valkey
import valkey.asyncio as avalkey
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph_checkpoint_aws import AsyncValkeySaver as AwsAsyncValkeySaver
from langgraph_checkpoint_aws import ValkeySaver as AwsValkeySaver

from agentmem_core.testing.server import ValkeyServer
from agentmem_langgraph import AsyncValkeySaver, ValkeySaver

TURNS = 20
TEXT = (
    "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore " * 2
)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000.0


def message(i: int) -> AnyMessage:
    cls = HumanMessage if i % 2 == 0 else AIMessage
    return cls(content=f"{i:03d} {TEXT}"[:200], id=f"m-{i}")


def make_checkpoint(
    saver: BaseCheckpointSaver[Any], prev: Checkpoint | None, n: int
) -> tuple[Checkpoint, dict[str, Any]]:
    cp = empty_checkpoint() if prev is None else dict(prev)  # type: ignore[assignment]
    cp = {**cp, "id": empty_checkpoint()["id"]}  # type: ignore[typeddict-item]
    versions = dict(cp.get("channel_versions", {}))
    new_versions = {
        "messages": saver.get_next_version(versions.get("messages"), None),  # type: ignore[arg-type]
        "turns": saver.get_next_version(versions.get("turns"), None),  # type: ignore[arg-type]
    }
    versions.update(new_versions)
    cp["channel_versions"] = versions
    cp["channel_values"] = {"messages": [message(i) for i in range(n)], "turns": n}
    return cp, new_versions  # type: ignore[return-value]


# --- micro benchmark ----------------------------------------------------------------------------------


Samples = dict[str, list[float]]


class _Thread:
    """One saver's conversation in the micro benchmark: its config, previous checkpoint and next step."""

    def __init__(self, thread: str) -> None:
        self.thread = thread
        self.config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        self.latest: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        self.prev: Checkpoint | None = None
        self.n = 0

    def next_step(self, saver: BaseCheckpointSaver[Any]) -> tuple[Checkpoint, dict[str, Any], Any, Any]:
        """Checkpoint, metadata, new versions and writes of the next step (the messages grow by one)."""
        self.n += 1
        cp, new_versions = make_checkpoint(saver, self.prev, self.n)
        metadata = {"source": "loop", "step": self.n, "parents": {}}
        return cp, metadata, new_versions, [("messages", [message(self.n)])]

    def record(self, samples: Samples, cp: Checkpoint, got: Any, stamps: tuple[float, ...]) -> None:
        """Check the read-back checkpoint and keep the three latencies (``stamps``: before/after each)."""
        assert got is not None and len(got.checkpoint["channel_values"]["messages"]) == self.n
        for op, (start, stop) in zip(("put", "put_writes", "get_tuple"), zip(stamps, stamps[1:])):
            samples[op].append(stop - start)
        self.prev = cp


def micro_sync(savers: dict[str, BaseCheckpointSaver[Any]], threads: int) -> dict[str, Samples]:
    """put -> put_writes -> get_tuple(latest) per step, on the graph's interleaved schedule."""
    out: dict[str, Samples] = {name: {"put": [], "put_writes": [], "get_tuple": []} for name in savers}
    state: dict[str, _Thread] = {}
    for timed, name, thread, _turn in interleaved(list(savers), threads, seed=21):
        saver, th = savers[name], state.setdefault(thread, _Thread(thread))
        cp, metadata, new_versions, writes = th.next_step(saver)
        t0 = time.perf_counter()
        th.config = saver.put(th.config, cp, metadata, new_versions)  # type: ignore[arg-type,assignment]
        t1 = time.perf_counter()
        saver.put_writes(th.config, writes, f"task-{th.n}", "respond")  # type: ignore[arg-type]
        t2 = time.perf_counter()
        got = saver.get_tuple(th.latest)  # type: ignore[arg-type]
        th.record(out[name] if timed else _discard(), cp, got, (t0, t1, t2, time.perf_counter()))
    return out


async def micro_async(savers: dict[str, BaseCheckpointSaver[Any]], threads: int) -> dict[str, Samples]:
    """Async twin of :func:`micro_sync` (same schedule, same checks)."""
    out: dict[str, Samples] = {name: {"put": [], "put_writes": [], "get_tuple": []} for name in savers}
    state: dict[str, _Thread] = {}
    for timed, name, thread, _turn in interleaved(list(savers), threads, seed=22):
        saver, th = savers[name], state.setdefault(thread, _Thread(thread))
        cp, metadata, new_versions, writes = th.next_step(saver)
        t0 = time.perf_counter()
        th.config = await saver.aput(th.config, cp, metadata, new_versions)  # type: ignore[arg-type,assignment]
        t1 = time.perf_counter()
        await saver.aput_writes(th.config, writes, f"task-{th.n}", "respond")  # type: ignore[arg-type]
        t2 = time.perf_counter()
        got = await saver.aget_tuple(th.latest)  # type: ignore[arg-type]
        th.record(out[name] if timed else _discard(), cp, got, (t0, t1, t2, time.perf_counter()))
    return out


def _discard() -> Samples:
    """Where the warm-up thread's latencies go."""
    return {"put": [], "put_writes": [], "get_tuple": []}


def floor_payload(saver: BaseCheckpointSaver[Any]) -> tuple[str, bytes]:
    cp, _ = make_checkpoint(saver, None, TURNS)
    return saver.serde.dumps_typed(cp)


def floor_sync(client: valkey.Valkey, typed: tuple[str, bytes], samples: int, load: bool) -> list[float]:
    """One GET of the serialized checkpoint (and, with ``load``, its deserialization)."""
    serde = InMemorySaver().serde
    key = f"bench-floor-{uuid.uuid4().hex[:8]}"
    client.set(key, typed[1])
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        raw = client.get(key)
        if load:
            serde.loads_typed((typed[0], raw))
        out.append(time.perf_counter() - t0)
    client.delete(key)
    return out


async def floor_async(
    client: avalkey.Valkey, typed: tuple[str, bytes], samples: int, load: bool
) -> list[float]:
    serde = InMemorySaver().serde
    key = f"bench-floor-{uuid.uuid4().hex[:8]}"
    await client.set(key, typed[1])
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        raw = await client.get(key)
        if load:
            serde.loads_typed((typed[0], raw))
        out.append(time.perf_counter() - t0)
    await client.delete(key)
    return out


# --- graph benchmark ----------------------------------------------------------------------------------


class RoundTripFloor(InMemorySaver):
    """InMemorySaver plus one PING per LangGraph call: the least any networked saver can cost.

    A saver that stores over the network makes at least one round trip per ``put`` / ``put_writes`` /
    ``get_tuple`` (it cannot defer a write without breaking the durability the call promises). This one
    makes exactly that round trip, doing no work on the server and storing nothing there, so its
    per-turn overhead is a floor for agentmem and the AWS saver alike.
    """

    def __init__(self, client: valkey.Valkey | None = None, aclient: avalkey.Valkey | None = None) -> None:
        super().__init__()
        self._client, self._aclient = client, aclient

    def _ping(self) -> None:
        assert self._client is not None
        self._client.execute_command("PING")

    async def _aping(self) -> None:
        assert self._aclient is not None
        await self._aclient.execute_command("PING")

    def get_tuple(self, config: Any) -> Any:
        self._ping()
        return super().get_tuple(config)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._ping()
        return super().put(*args, **kwargs)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        self._ping()
        super().put_writes(*args, **kwargs)

    async def aget_tuple(self, config: Any) -> Any:
        await self._aping()
        return super().get_tuple(config)

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        await self._aping()
        return super().put(*args, **kwargs)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        await self._aping()
        super().put_writes(*args, **kwargs)


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def respond(state: ChatState) -> dict[str, Any]:
    last = state["messages"][-1]
    return {"messages": [AIMessage(content=f"echo {TEXT}"[:200], id=f"ai-{last.id}")]}


def count(state: ChatState) -> dict[str, Any]:
    return {"turns": state.get("turns", 0) + 1}


def chat_graph(saver: BaseCheckpointSaver[Any] | None) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("respond", respond)
    builder.add_node("count", count)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", "count")
    builder.add_edge("count", END)
    return builder.compile(checkpointer=saver)


def turn_input(state: dict[str, Any] | None, thread: str, n: int, stateless: bool) -> dict[str, Any]:
    msg = HumanMessage(content=f"{thread} {n} {TEXT}"[:200], id=f"h-{thread}-{n}")
    if stateless and state is not None:  # no checkpointer: carry the conversation in the input
        return {"messages": [*state["messages"], msg], "turns": state["turns"]}
    return {"messages": [msg]}


def interleaved(names: list[str], threads: int, seed: int) -> Iterator[tuple[bool, str, str, int]]:
    """The turn schedule: ``(timed, system, thread id, turn)``, every turn once per system in random order.

    Background load on a shared machine then hits every system alike (sequential series drifted by
    +-40% between systems). Thread 0 of each system warms up and is not timed.
    """
    rng = random.Random(seed)
    for t in range(threads + 1):
        thread_ids = {name: f"g-{uuid.uuid4().hex[:8]}" for name in names}
        for n in range(TURNS):
            order = list(names)
            rng.shuffle(order)
            for name in order:
                yield t > 0, name, thread_ids[name], n


def _check_conversations(states: dict[str, Any]) -> None:
    assert all(s is not None and len(s["messages"]) == 2 * TURNS for s in states.values())


def graph_sync(savers: dict[str, BaseCheckpointSaver[Any] | None], threads: int) -> dict[str, list[float]]:
    """Per-turn wall times of ``invoke``, interleaved (``None`` = the no-checkpointer baseline)."""
    graphs = {name: chat_graph(saver) for name, saver in savers.items()}
    out: dict[str, list[float]] = {name: [] for name in savers}
    states: dict[str, Any] = {}
    for timed, name, thread, n in interleaved(list(savers), threads, seed=11):
        value = turn_input(states.get(thread), thread, n, savers[name] is None)
        t0 = time.perf_counter()
        states[thread] = graphs[name].invoke(value, {"configurable": {"thread_id": thread}})
        if timed:
            out[name].append(time.perf_counter() - t0)
    _check_conversations(states)
    return out


async def graph_async(
    savers: dict[str, BaseCheckpointSaver[Any] | None], threads: int
) -> dict[str, list[float]]:
    """Async twin of :func:`graph_sync` (``ainvoke``, the same schedule)."""
    graphs = {name: chat_graph(saver) for name, saver in savers.items()}
    out: dict[str, list[float]] = {name: [] for name in savers}
    states: dict[str, Any] = {}
    for timed, name, thread, n in interleaved(list(savers), threads, seed=12):
        value = turn_input(states.get(thread), thread, n, savers[name] is None)
        t0 = time.perf_counter()
        states[thread] = await graphs[name].ainvoke(value, {"configurable": {"thread_id": thread}})
        if timed:
            out[name].append(time.perf_counter() - t0)
    _check_conversations(states)
    return out


# --- driver -------------------------------------------------------------------------------------------


async def run(url: str, threads: int, graph_threads: int) -> tuple[str, dict[str, Any]]:
    sync_client = valkey.Valkey.from_url(url)
    async_client = avalkey.Valkey.from_url(url)
    run_prefix = "bench" + uuid.uuid4().hex[:6]
    savers_sync: dict[str, Callable[[], BaseCheckpointSaver[Any]]] = {
        "agentmem ValkeySaver": lambda: ValkeySaver(sync_client, prefix=run_prefix),
        "aws ValkeySaver": lambda: AwsValkeySaver(sync_client),
        "InMemorySaver": InMemorySaver,
        "floor: InMemorySaver + 1 PING per call": lambda: RoundTripFloor(client=sync_client),
    }
    savers_async: dict[str, Callable[[], BaseCheckpointSaver[Any]]] = {
        "agentmem AsyncValkeySaver": lambda: AsyncValkeySaver(async_client, prefix=run_prefix),
        "aws AsyncValkeySaver": lambda: AwsAsyncValkeySaver(async_client),
        "InMemorySaver (async)": InMemorySaver,
        "floor: InMemorySaver + 1 PING per call (async)": lambda: RoundTripFloor(aclient=async_client),
    }
    lines: list[str] = []
    payload = floor_payload(InMemorySaver())
    samples = threads * TURNS
    floor_s = floor_sync(sync_client, payload, samples, load=False)
    floor_a = await floor_async(async_client, payload, samples, load=False)
    floor_sl = floor_sync(sync_client, payload, samples, load=True)
    floor_al = await floor_async(async_client, payload, samples, load=True)

    lines.append(
        f"### Saver operations (ms; {threads} threads x {TURNS} steps, messages grow to {TURNS} x 200 chars)"
    )
    lines.append("")
    lines.append(
        "| saver | put p50 | put p95 | put_writes p50 | put_writes p95 | get_tuple p50 | get_tuple p95 "
        "| get_tuple / GET (p50) | get_tuple / GET+deserialize (p50) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    micro = micro_sync({name: make() for name, make in savers_sync.items()}, threads)
    micro.update(await micro_async({name: make() for name, make in savers_async.items()}, threads))
    for name, res in micro.items():
        is_async = "Async" in name or "async" in name
        floor, floor_l = (floor_a, floor_al) if is_async else (floor_s, floor_sl)
        ratio = pct(res["get_tuple"], 0.5) / pct(floor, 0.5)
        ratio_l = pct(res["get_tuple"], 0.5) / pct(floor_l, 0.5)
        cells = [pct(res[op], q) for op in ("put", "put_writes", "get_tuple") for q in (0.5, 0.95)]
        lines.append(
            f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {ratio:.2f}x | {ratio_l:.2f}x |"
        )
    size = len(payload[1])
    for label, xs in [
        (f"floor: GET of the serialized checkpoint ({size} B), sync", floor_s),
        (f"floor: GET + deserialize ({size} B), sync", floor_sl),
        (f"floor: GET of the serialized checkpoint ({size} B), async", floor_a),
        (f"floor: GET + deserialize ({size} B), async", floor_al),
    ]:
        lines.append(f"| {label} | | | | | {pct(xs, 0.5):.3f} | {pct(xs, 0.95):.3f} | | |")
    lines.append("")

    lines.append(
        f"### 2-node graph, wall time per turn (ms; {graph_threads} threads x {TURNS} turns after a warm-up)"
    )
    lines.append("")
    lines.append(
        "| saver | turn p50 | turn p95 | overhead p50 (vs no checkpointer) | overhead vs aws "
        "| overhead vs the PING floor |"
    )
    lines.append("|---|---|---|---|---|---|")
    sync_systems: dict[str, BaseCheckpointSaver[Any] | None] = {"no checkpointer (invoke)": None}
    sync_systems.update({name: make() for name, make in savers_sync.items()})
    async_systems: dict[str, BaseCheckpointSaver[Any] | None] = {"no checkpointer (ainvoke)": None}
    async_systems.update({name: make() for name, make in savers_async.items()})
    turns = graph_sync(sync_systems, graph_threads)
    turns.update(await graph_async(async_systems, graph_threads))
    base = {
        "sync": pct(turns["no checkpointer (invoke)"], 0.5),
        "async": pct(turns["no checkpointer (ainvoke)"], 0.5),
    }
    aws = {
        "sync": pct(turns["aws ValkeySaver"], 0.5) - base["sync"],
        "async": pct(turns["aws AsyncValkeySaver"], 0.5) - base["async"],
    }
    ping = {
        "sync": pct(turns["floor: InMemorySaver + 1 PING per call"], 0.5) - base["sync"],
        "async": pct(turns["floor: InMemorySaver + 1 PING per call (async)"], 0.5) - base["async"],
    }
    data: dict[str, Any] = {"threads": threads, "graph_threads": graph_threads, "turns": {}, "micro": {}}
    for name, res in turns.items():
        mode = "async" if ("Async" in name or "async" in name or "ainvoke" in name) else "sync"
        overhead = pct(res, 0.5) - base[mode]
        saver = "no checkpointer" not in name
        vs = f"{overhead / aws[mode]:.2f}x" if saver else ""
        vs_ping = f"{overhead / ping[mode]:.2f}x" if saver else ""
        lines.append(
            f"| {name} | {pct(res, 0.5):.3f} | {pct(res, 0.95):.3f} | {overhead:.3f} | {vs} | {vs_ping} |"
        )
        data["turns"][name] = {
            "mode": mode, "p50_ms": pct(res, 0.5), "p95_ms": pct(res, 0.95), "overhead_ms": overhead,
            "vs_aws": overhead / aws[mode] if saver else None,
            "vs_ping_floor": overhead / ping[mode] if saver else None,
        }  # fmt: skip
    for name, res in micro.items():
        data["micro"][name] = {op: {"p50_ms": pct(res[op], 0.5), "p95_ms": pct(res[op], 0.95)} for op in res}

    for key in sync_client.scan_iter(match=f"{run_prefix}:*", count=1000):
        sync_client.delete(key)
    sync_client.close()
    await async_client.aclose()
    return "\n".join(lines), data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--valkey-url", help="use this server instead of starting a throwaway one")
    parser.add_argument("--threads", type=int, default=10, help="threads for the saver micro benchmark")
    parser.add_argument("--graph-threads", type=int, default=5, help="threads of 20 turns for the graph")
    parser.add_argument("--json", help="write the turn overheads and saver latencies to this file")
    args = parser.parse_args()
    server = None
    url = args.valkey_url
    if not url:
        server = ValkeyServer(search=False).start()
        url = server.url
    started = time.perf_counter()
    try:
        table, data = asyncio.run(run(url, args.threads, args.graph_threads))
    finally:
        if server is not None:
            server.stop()
    print(table)
    print(
        f"\n(total {time.perf_counter() - started:.1f} s; "
        f"valkey-server {'at ' + url if args.valkey_url else 'throwaway'})"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=2)


if __name__ == "__main__":
    main()
