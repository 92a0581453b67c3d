"""Faults on real servers the tests start: SIGKILL and restart mid-write, and a replica promoted to primary.

Each test starts its own ``valkey-server`` processes (own ports and data directories under ``tmp_path``,
stopped in the fixture). For the kill tests the server runs with ``--appendonly yes --appendfsync always``,
so whatever it acknowledged is on disk. A writer thread keeps writing through one store (or saver) object;
after a number of acknowledged writes the server is SIGKILLed, kept down for a moment, restarted on the
same port from the same directory, and the writer must carry on through the same object (no new client,
no new process) for a few more writes. Then:

* every acknowledged write is there (by id, by key, as a checkpoint, as a LangGraph item);
* nothing half-written is visible: every memory hash on the server has all its fields and its vector, and
  its scope's bookkeeping (created ZSET, per-kind counts, the scope registry, ``count``, ``stats``,
  ``list``) agrees with the hashes; nothing is there that the writer never attempted;
* every error a caller saw is a typed agentmem backend error with a ``retryable`` flag (how many errors
  there are is not asserted: a store that retries through the outage may show none).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import valkey
import valkey.exceptions
from _faults import (
    FaultServer,
    Writer,
    assert_typed,
    check_store_consistent,
    client_cause,
    kill_restart_during,
)
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.store.base import GetOp, PutOp

from agentmem_core import MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import BackendBusyError, BackendError
from agentmem_langgraph import ValkeyMemoryStore, ValkeySaver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DIMS = 64
USERS = ("ana", "bob", "cy")


def kill_point(test: str, low: int, high: int) -> int:
    """After how many acknowledged writes ``test`` kills: random-ish, the same on every run."""
    return random.Random(f"issue-18:{test}").randint(low, high)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., FaultServer]]:
    """Start FaultServers in their own directories under tmp_path; every one is stopped afterwards."""
    started: list[FaultServer] = []

    def start(**options: Any) -> FaultServer:
        server = FaultServer(tmp_path / f"server{len(started)}", **options)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def core_store(url: str, name: str) -> MemoryStore:
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS))
    store.setup()
    return store


# -- the core store --------------------------------------------------------------------------------------
def _content(i: int) -> str:
    return f"note {i} about the trip to Lisbon"


def _index_of(content: str) -> int:
    return int(content.split()[1])


def _remember_one(store: MemoryStore, i: int) -> str:
    """One write of four shapes: keyed, with a TTL and tags, with several vectors, not embedded."""
    user = USERS[i % len(USERS)]
    shape = i % 4
    if shape == 0:
        return store.remember(_content(i), user_id=user, key=f"k{i}")
    if shape == 1:
        return store.remember(_content(i), user_id=user, ttl=3600, tags=["trip"], metadata={"i": i})
    if shape == 2:
        return store.remember(_content(i), user_id=user, texts=[f"text a {i}", f"text b {i}"])
    return store.remember(_content(i), user_id=user, embed=False, thread_id=f"th{i % 2}")


def test_sigkill_during_a_remember_loop_keeps_every_acknowledged_memory(
    servers: Callable[..., FaultServer], unique_name: str
) -> None:
    server = servers()
    store = core_store(server.url, unique_name)
    try:
        writer = Writer(lambda i: _remember_one(store, i))
        kill_restart_during(server, writer, kill_after=kill_point("loop", 20, 60))
        assert server.starts == 2

        raw = server.client()
        found = check_store_consistent(store, raw, unique_name, DIMS)
        for i, memory_id in writer.acked.items():
            assert found.get(memory_id) == _content(i), f"acknowledged write {i} ({memory_id}) was lost"
            if i % 4 == 0:
                got = store.get_by_key(f"k{i}", user_id=USERS[i % len(USERS)])
                assert got is not None and got.id == memory_id
        attempted = set(writer.acked) | set(writer.failed)
        assert {_index_of(c) for c in found.values()} <= attempted, "a memory nobody wrote is visible"
        assert len(found) >= len(writer.acked)
        raw.close()
    finally:
        store.close()


def test_sigkill_during_remember_many_keeps_every_acknowledged_batch(
    servers: Callable[..., FaultServer], unique_name: str
) -> None:
    server = servers()
    store = core_store(server.url, unique_name)
    size = 8

    def batch(i: int) -> list[str]:
        items = [
            {"content": _content(i * size + j), "user_id": USERS[j % 2], "importance": j / size}
            for j in range(size)
        ]
        return store.remember_many(items)

    try:
        writer = Writer(batch)
        kill_restart_during(server, writer, kill_after=kill_point("many", 10, 30))

        raw = server.client()
        found = check_store_consistent(store, raw, unique_name, DIMS)
        for i, ids in writer.acked.items():
            assert len(ids) == size
            for j, memory_id in enumerate(ids):
                assert found.get(memory_id) == _content(i * size + j), f"batch {i} lost item {j}"
        attempted = set(writer.acked) | set(writer.failed)
        assert {_index_of(c) // size for c in found.values()} <= attempted
        raw.close()
    finally:
        store.close()


# -- the LangGraph checkpointer ---------------------------------------------------------------------------
class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def _respond(state: ChatState) -> dict[str, Any]:
    last = state["messages"][-1]
    return {"messages": [AIMessage(content=f"echo: {last.content}", id=f"ai-{last.id}")]}


def _count(state: ChatState) -> dict[str, Any]:
    return {"turns": state.get("turns", 0) + 1}


def chat_graph(saver: ValkeySaver) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("respond", _respond)
    builder.add_node("count", _count)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", "count")
    builder.add_edge("count", END)
    return builder.compile(checkpointer=saver)


def _thread(i: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"run-{i}"}}


def _run_graph(graph: Any, i: int) -> None:
    graph.invoke({"messages": [HumanMessage(content=f"hello {i}", id=f"h{i}")]}, _thread(i))


def check_runs(saver: ValkeySaver, acked: set[int], attempted: set[int]) -> None:
    """Every acknowledged run's final checkpoint is there and complete; every listed checkpoint decodes
    and its parent is listed too (no torn chain); no thread nobody ran exists."""
    by_thread: dict[str, list[Any]] = {}
    for item in saver.list(None):
        by_thread.setdefault(item.config["configurable"]["thread_id"], []).append(item)
    assert {int(t.removeprefix("run-")) for t in by_thread} <= attempted
    for thread, items in by_thread.items():
        ids = {item.config["configurable"]["checkpoint_id"] for item in items}
        for item in items:
            if item.parent_config is not None:
                assert item.parent_config["configurable"]["checkpoint_id"] in ids, f"{thread}: torn chain"
        newest = saver.get_tuple({"configurable": {"thread_id": thread}})
        assert newest is not None and newest.config == items[0].config
    for i in acked:
        final = saver.get_tuple(_thread(i))
        assert final is not None, f"acknowledged run {i} lost its checkpoints"
        values = final.checkpoint["channel_values"]
        assert [m.id for m in values["messages"]] == [f"h{i}", f"ai-h{i}"]
        assert values["turns"] == 1
        assert final.metadata["step"] == 2 and not final.pending_writes


def test_sigkill_during_graph_runs_keeps_every_finished_run(servers: Callable[..., FaultServer]) -> None:
    server = servers(search=False)
    client = valkey.Valkey.from_url(server.url)
    saver = ValkeySaver(client, prefix="faults")
    graph = chat_graph(saver)
    try:
        writer = Writer(lambda i: _run_graph(graph, i))
        kill_restart_during(server, writer, kill_after=kill_point("graph", 10, 30))
        check_runs(saver, set(writer.acked), set(writer.acked) | set(writer.failed))
        state = graph.get_state(_thread(max(writer.acked)))
        assert state.next == () and state.values["turns"] == 1
    finally:
        client.close()


# -- the LangGraph store ----------------------------------------------------------------------------------
def _hash_embed(texts: list[str]) -> list[list[float]]:
    return [[float(v) for v in row] for row in HashingEmbedder(DIMS).embed(texts)]


LG_INDEX: Any = {"dims": DIMS, "embed": _hash_embed, "fields": ["text"]}
PER_BATCH = 4


def _lg_batch(store: ValkeyMemoryStore, i: int) -> list[Any]:
    """Four puts, a read of the previous batch, and every fifth batch a delete of an older item."""
    ns = ("users", USERS[i % len(USERS)])
    ops: list[Any] = [PutOp(ns, f"k{i}-{j}", {"text": f"item {i} {j}", "i": i}) for j in range(PER_BATCH)]
    ops.append(GetOp(("users", USERS[(i - 1) % len(USERS)]), f"k{i - 1}-0"))
    if i % 5 == 0 and i >= 5:
        ops.append(PutOp(("users", USERS[(i - 5) % len(USERS)]), f"k{i - 5}-3", None))
    return store.batch(ops)


def test_sigkill_during_langgraph_store_batches_keeps_every_acknowledged_item(
    servers: Callable[..., FaultServer], unique_name: str
) -> None:
    server = servers()
    client = valkey.Valkey.from_url(server.url)
    store = ValkeyMemoryStore(client, name=unique_name, index=LG_INDEX)
    store.setup()
    try:
        writer = Writer(lambda i: _lg_batch(store, i))
        kill_restart_during(server, writer, kill_after=kill_point("lgstore", 10, 30))

        raw = server.client()
        check_store_consistent(store.core, raw, unique_name, DIMS)
        deleted = {(i - 5, 3) for i in writer.acked if i % 5 == 0 and i >= 5}
        # A batch that failed around the kill may or may not have applied (its outcome is unknown), so
        # the item its delete names may be there or not; if it is, it is intact.
        maybe_deleted = {(i - 5, 3) for i in writer.failed if i % 5 == 0 and i >= 5}
        for i in writer.acked:
            ns = ("users", USERS[i % len(USERS)])
            for j in range(PER_BATCH):
                item = store.get(ns, f"k{i}-{j}")
                if (i, j) in deleted:
                    assert item is None, f"item k{i}-{j} was deleted by an acknowledged batch"
                elif (i, j) in maybe_deleted:
                    assert item is None or item.value == {"text": f"item {i} {j}", "i": i}
                else:
                    assert item is not None, f"acknowledged item k{i}-{j} was lost"
                    assert item.value == {"text": f"item {i} {j}", "i": i}
        attempted = set(writer.acked) | set(writer.failed)
        for user in USERS:
            for item in store.search(("users", user), limit=10_000):
                assert item.value["i"] in attempted
        raw.close()
    finally:
        client.close()


# -- what a caller sees while the server is down ------------------------------------------------------------
def _raises_typed(call: Callable[[], object]) -> BackendError:
    with pytest.raises(BackendError) as info:  # any other exception (valkey's own included) fails
        call()
    assert_typed([info.value])
    return info.value


def test_calls_during_an_outage_raise_typed_errors_and_the_same_objects_recover(
    servers: Callable[..., FaultServer], unique_name: str
) -> None:
    server = servers()
    store = core_store(server.url, unique_name)
    client = valkey.Valkey.from_url(server.url)
    saver = ValkeySaver(client, prefix="outage")
    graph = chat_graph(saver)
    lg = ValkeyMemoryStore(client, name=unique_name + "lg", index=LG_INDEX)
    lg.setup()
    try:
        kept = store.remember(_content(1), user_id="ana", key="kept")
        _run_graph(graph, 1)
        lg.put(("users", "ana"), "kept", {"text": "kept item"})
        server.kill()

        # reads are safe to repeat: retryable; writes: typed, retryable or not (the outcome may be unknown)
        assert _raises_typed(lambda: store.get(kept)).retryable is True
        assert _raises_typed(lambda: saver.get_tuple(_thread(1))).retryable is True
        assert _raises_typed(lambda: lg.get(("users", "ana"), "kept")).retryable is True
        _raises_typed(lambda: store.remember(_content(2), user_id="ana"))
        _raises_typed(lambda: store.remember_many([_content(3), _content(4)]))
        _raises_typed(lambda: _run_graph(graph, 2))
        _raises_typed(lambda: lg.put(("users", "ana"), "lost", {"text": "x"}))

        server.start()
        got = store.get(kept)
        assert got is not None and got.content == _content(1)
        again = store.remember(_content(5), user_id="ana")
        assert store.get(again) is not None
        check_runs(saver, {1}, {1, 2})
        _run_graph(graph, 3)
        check_runs(saver, {1, 3}, {1, 2, 3})
        item = lg.get(("users", "ana"), "kept")
        assert item is not None and item.value == {"text": "kept item"}
        raw = server.client()
        check_store_consistent(store, raw, unique_name, DIMS)
        raw.close()
    finally:
        store.close()
        client.close()


# -- a replica promoted to primary -------------------------------------------------------------------------
def _role(server: FaultServer) -> str:
    client = server.client()
    try:
        return str(client.execute_command("ROLE")[0].decode())
    finally:
        client.close()


def primary_and_replica(servers: Callable[..., FaultServer], search: bool) -> tuple[FaultServer, FaultServer]:
    """A primary A and a replica B of it, in sync."""
    a = servers(search=search, aof=False, extra_args=["--repl-diskless-sync-delay", "0"])
    b = servers(search=search, aof=False)
    replica = b.client()
    replica.execute_command("REPLICAOF", "127.0.0.1", a.port)
    deadline = time.monotonic() + 20
    while replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)
    replica.close()
    return a, b


def fail_over(a: FaultServer, b: FaultServer) -> None:
    """FAILOVER on A: A waits for B to catch up, B becomes the primary, A its replica."""
    client = a.client()
    try:
        assert client.execute_command("WAIT", 1, 1000) == 1
        client.execute_command("FAILOVER", "TIMEOUT", 5000)
    finally:
        client.close()
    deadline = time.monotonic() + 20
    while (_role(a), _role(b)) != ("slave", "master"):
        assert time.monotonic() < deadline, f"the failover did not complete: {_role(a)}, {_role(b)}"
        time.sleep(0.05)


def during_failover(a: FaultServer, b: FaultServer, writer: Writer, *, before: int, more: int) -> None:
    writer.start()
    try:
        writer.wait_acked(before)
        fail_over(a, b)
        writer.wait_acked(len(writer.acked) + more, timeout=10)
    finally:
        writer.finish()
    assert not writer.escaped, f"a non-agentmem exception escaped: {writer.escaped[0]!r}"
    assert_typed(writer.errors)
    for exc in writer.errors:  # a write refused by the demoted primary: nothing applied, worth a retry
        if isinstance(client_cause(exc), valkey.exceptions.ReadOnlyError):
            assert isinstance(exc, BackendBusyError) and exc.retryable, f"READONLY mistranslated: {exc!r}"


def test_core_store_follows_the_promoted_replica(
    servers: Callable[..., FaultServer], unique_name: str
) -> None:
    a, b = primary_and_replica(servers, search=True)
    store = core_store(a.url, unique_name)
    try:
        writer = Writer(lambda i: _remember_one(store, i))
        during_failover(a, b, writer, before=kill_point("core-failover", 10, 30), more=10)

        fresh = core_store(b.url, unique_name)  # the new primary, seen by a client that never saw A
        raw = b.client()
        try:
            found = check_store_consistent(fresh, raw, unique_name, DIMS)
            for i, memory_id in writer.acked.items():
                assert found.get(memory_id) == _content(i), f"acknowledged write {i} is not on the primary"
        finally:
            raw.close()
            fresh.close()
    finally:
        store.close()


def test_checkpointer_follows_the_promoted_replica(servers: Callable[..., FaultServer]) -> None:
    a, b = primary_and_replica(servers, search=False)
    client = valkey.Valkey.from_url(a.url)
    graph = chat_graph(ValkeySaver(client, prefix="failover"))
    try:
        writer = Writer(lambda i: _run_graph(graph, i))
        during_failover(a, b, writer, before=kill_point("saver-failover", 5, 15), more=5)

        fresh = valkey.Valkey.from_url(b.url)
        try:
            check_runs(
                ValkeySaver(fresh, prefix="failover"),
                set(writer.acked),
                set(writer.acked) | set(writer.failed),
            )
        finally:
            fresh.close()
    finally:
        client.close()
