"""Checkpointer behaviour beyond the conformance suite: bad input, corruption, TTL, round trips, layout."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

import pytest
import valkey
import valkey.asyncio as avalkey
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import WRITES_IDX_MAP, Checkpoint
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel
from valkey.cluster import key_slot

from agentmem_core.errors import AgentMemError, BackendConnectionError, ConfigurationError
from agentmem_langgraph import (
    AsyncValkeySaver,
    CheckpointError,
    CorruptCheckpointError,
    InvalidCheckpointConfigError,
    ThreadNotEmptyError,
    ValkeySaver,
)
from agentmem_langgraph.checkpoint import _keys
from agentmem_langgraph.checkpoint._codec import frame, unframe

try:
    from langgraph.channels.delta import DeltaChannel
except ImportError:  # DeltaChannel (beta) is newer than the oldest supported LangGraph
    DeltaChannel = None

KeysUnder = Callable[[Any, str], Awaitable[list[bytes]]]

# LangGraph's special write channels (negative indexes in WRITES_IDX_MAP)
ERROR, SCHEDULED, INTERRUPT, RESUME = "__error__", "__scheduled__", "__interrupt__", "__resume__"


def put_one(
    saver: ValkeySaver, thread: str, values: dict[str, Any], parent: str | None = None, ns: str = ""
) -> dict[str, Any]:
    cp = generate_checkpoint(channel_values=values, channel_versions={k: saver.get_next_version(None, None)
                                                                      for k in values})  # fmt: skip
    config = generate_config(thread, checkpoint_ns=ns, checkpoint_id=parent)
    return dict(saver.put(config, cp, generate_metadata(), dict(cp["channel_versions"])))


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"configurable": {}},
        {"configurable": {"thread_id": None}},
        {"configurable": {"thread_id": ""}},
        {"configurable": {"thread_id": ["x"]}},
        {"configurable": {"thread_id": "t", "checkpoint_ns": 3}},
        {"configurable": {"thread_id": "t", "checkpoint_id": 3.5}},
    ],
)
async def test_bad_config_is_a_clear_error_and_writes_nothing(
    saver: ValkeySaver, sync_client: valkey.Valkey, prefix: str, keys_under: KeysUnder, config: Any
) -> None:
    cp = generate_checkpoint(channel_values={"a": 1}, channel_versions={"a": 1})
    with pytest.raises(InvalidCheckpointConfigError) as err:
        saver.put(config, cp, generate_metadata(), {"a": 1})
    assert isinstance(err.value, (CheckpointError, AgentMemError, ValueError))
    assert "thread_id" in str(err.value) or "checkpoint" in str(err.value)
    with pytest.raises(InvalidCheckpointConfigError):
        saver.get_tuple(config)
    with pytest.raises(InvalidCheckpointConfigError):
        list(saver.list(config))
    with pytest.raises(InvalidCheckpointConfigError):
        saver.put_writes({**config, "configurable": {**config.get("configurable", {}), "checkpoint_id": "x"}}
                         if config.get("configurable", {}).get("thread_id") in (None, "", ["x"]) else config,
                         [("ch", 1)], "task")  # fmt: skip
    assert await keys_under(sync_client, prefix) == []


async def test_async_saver_rejects_missing_thread_id(asaver: AsyncValkeySaver) -> None:
    with pytest.raises(InvalidCheckpointConfigError, match="thread_id"):
        await asaver.aget_tuple({"configurable": {"checkpoint_ns": ""}})


def test_put_writes_without_checkpoint_id(saver: ValkeySaver) -> None:
    with pytest.raises(InvalidCheckpointConfigError, match="checkpoint_id"):
        saver.put_writes({"configurable": {"thread_id": "t"}}, [("ch", 1)], "task")


def test_unknown_checkpoint_id_reads_as_absent(saver: ValkeySaver) -> None:
    # BaseCheckpointSaver's contract (and the conformance suite) wants None, not an exception.
    stored = put_one(saver, "t-unknown", {"a": 1})
    missing = generate_config("t-unknown", checkpoint_id=str(uuid.uuid4()))
    assert saver.get_tuple(missing) is None
    assert list(saver.list(missing)) == []
    # `before` compares checkpoint ids (time-ordered uuid6); an unknown id later than every stored one
    # lists them all (a random uuid4 may sort before the stored id, which made this flaky)
    later = generate_config("t-unknown", checkpoint_id="ffffffff-ffff-6fff-bfff-ffffffffffff")
    assert [t.config for t in saver.list(generate_config("t-unknown"), before=later)] == [stored]


async def test_unserializable_value_writes_nothing(
    saver: ValkeySaver, sync_client: valkey.Valkey, prefix: str, keys_under: KeysUnder
) -> None:
    class Opaque:
        pass

    cp = generate_checkpoint(channel_values={"ok": 1, "bad": Opaque()}, channel_versions={"ok": 1, "bad": 1})
    with pytest.raises(TypeError):
        saver.put(generate_config("t-bad"), cp, generate_metadata(), {"ok": 1, "bad": 1})
    assert await keys_under(sync_client, prefix) == []
    stored = put_one(saver, "t-bad", {"x": 1})
    before = await keys_under(sync_client, prefix)
    hashes = {k: sync_client.hgetall(k) for k in before if sync_client.type(k) == b"hash"}
    with pytest.raises(TypeError):
        saver.put_writes(stored, [("a", 1), ("b", Opaque()), ("c", 3)], "task-1")
    assert {k: sync_client.hgetall(k) for k in before if sync_client.type(k) == b"hash"} == hashes
    assert saver.get_tuple(stored).pending_writes == []  # type: ignore[union-attr]


def test_corrupted_blob_record_and_write(saver: ValkeySaver, sync_client: valkey.Valkey) -> None:
    thread = "t-corrupt"
    stored = put_one(saver, thread, {"messages": ["hello"]})
    saver.put_writes(stored, [("ch", "v")], "task")
    keys = _keys.thread_keys(saver.settings.prefix, thread)
    cid = stored["configurable"]["checkpoint_id"]

    (field,) = sync_client.hkeys(keys.blobs)
    good = sync_client.hget(keys.blobs, field)
    assert good is not None
    sync_client.hset(keys.blobs, field, good[:-3])  # truncated
    with pytest.raises(CorruptCheckpointError, match=f"{cid}.*channel 'messages'"):
        saver.get_tuple(stored)
    type_ = unframe(good, 2, "test")[0]
    sync_client.hset(keys.blobs, field, frame([type_, b"\xc1garbage"]))  # framing ok, serde payload broken
    with pytest.raises(CorruptCheckpointError, match="cannot deserialize"):
        saver.get_tuple(stored)
    sync_client.hset(keys.blobs, field, good)
    assert saver.get_tuple(stored) is not None

    member = _keys.member("", cid)
    record = sync_client.hget(keys.cp, member)
    assert record is not None
    sync_client.hset(keys.cp, member, b"\x09junk")
    with pytest.raises(CorruptCheckpointError, match="unknown record format"):
        saver.get_tuple(generate_config(thread))
    with pytest.raises(CorruptCheckpointError):
        list(saver.list(generate_config(thread)))
    sync_client.hset(keys.cp, member, record)

    (wfield,) = sync_client.hkeys(keys.writes)
    sync_client.hset(keys.writes, wfield, b"\x01\x00\x00")
    with pytest.raises(CorruptCheckpointError, match="write"):
        saver.get_tuple(stored)


def test_constructor_does_no_io_and_backend_errors_are_translated() -> None:
    client = valkey.Valkey(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    saver = ValkeySaver(client)  # nothing listens on port 1: must not matter here
    with pytest.raises(BackendConnectionError):
        saver.get_tuple(generate_config("t"))
    client.close()


def test_client_validation() -> None:
    with pytest.raises(ConfigurationError, match="decode_responses"):
        ValkeySaver(valkey.Valkey(decode_responses=True))
    with pytest.raises(ConfigurationError, match="client"):
        ValkeySaver(avalkey.Valkey())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="client"):
        AsyncValkeySaver(valkey.Valkey())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="prefix"):
        ValkeySaver(valkey.Valkey(), prefix="a{b}")
    with pytest.raises(ConfigurationError, match="default_ttl"):
        ValkeySaver(valkey.Valkey(), ttl={"default_ttl": -1})


def test_copy_into_non_empty_thread_is_refused(saver: ValkeySaver) -> None:
    put_one(saver, "src", {"a": 1})
    target = put_one(saver, "dst", {"a": 2})
    with pytest.raises(ThreadNotEmptyError):
        saver.copy_thread("src", "dst")
    assert saver.get_tuple(generate_config("dst")).config == target  # type: ignore[union-attr]
    with pytest.raises(InvalidCheckpointConfigError):
        saver.prune(["src"], strategy="everything")


# --- round trips and layout ---------------------------------------------------------------------------


class Profile(BaseModel):
    name: str
    tags: list[str]
    born: dt.date


class XorCipher:
    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "xor", bytes(b ^ 0x5A for b in plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "xor"
        return bytes(b ^ 0x5A for b in ciphertext)


VALUES: dict[str, Any] = {
    "messages": [HumanMessage(content="hi", id="1"), AIMessage(content="yo", id="2", tool_calls=[])],
    "profile": Profile(name="Ada", tags=["x"], born=dt.date(1815, 12, 10)),
    "raw": b"\x00\x01\xff{}",
    "sends": [Send("node", {"arg": 1})],
    "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    "set": {1, 2, 3},
    "nested": {"a": [1, 2.5, None, "\x00"], "b": (1, 2)},
}


@pytest.mark.parametrize("encrypted", [False, True])
def test_values_round_trip_exactly(sync_client: valkey.Valkey, prefix: str, encrypted: bool) -> None:
    serde = EncryptedSerializer(XorCipher()) if encrypted else None
    saver = ValkeySaver(sync_client, prefix=prefix, serde=serde)
    stored = put_one(saver, "t-{rt}", VALUES, ns="sub:{x}|y")
    saver.put_writes(stored, [("messages", VALUES["messages"]), ("__pregel_tasks", Send("n", 1))], "task")
    tup = saver.get_tuple(stored)
    assert tup is not None
    # exactly what LangGraph's reference saver returns for the same input (msgpack turns tuples into lists)
    reference = InMemorySaver(serde=serde)
    ref_cp = generate_checkpoint(channel_values=VALUES, channel_versions={k: 1 for k in VALUES})
    ref_tup = reference.get_tuple(
        reference.put(generate_config("r"), ref_cp, generate_metadata(), {k: 1 for k in VALUES})
    )
    assert ref_tup is not None
    assert tup.checkpoint["channel_values"] == ref_tup.checkpoint["channel_values"]
    assert {k: v for k, v in tup.checkpoint["channel_values"].items() if k != "nested"} == {
        k: v for k, v in VALUES.items() if k != "nested"
    }
    assert tup.pending_writes == [
        ("task", "messages", VALUES["messages"]),
        ("task", "__pregel_tasks", Send("n", 1)),
    ]
    if encrypted:
        blobs = sync_client.hvals(_keys.thread_keys(prefix, "t-{rt}").blobs)
        assert all(b"Ada" not in b for b in blobs)


def test_all_keys_of_a_thread_share_one_slot() -> None:
    for thread in ["plain", "a{b}c", "{", "}", "{}", "x}{y", "%7B", "\x00\x01", "ü{ß}"]:
        keys = _keys.thread_keys("agentmem:checkpoint", thread)
        assert len({key_slot(k.encode()) for k in keys}) == 1, thread
        assert _keys.thread_from_key("agentmem:checkpoint", keys.ids) == thread
    # different threads whose raw ids would collide in a naive tag do not share keys
    assert _keys.thread_keys("p", "a}b").ids != _keys.thread_keys("p", "a")
    assert _keys.split_member(_keys.member("ns\x00:{x}", "id%1")) == ("ns\x00:{x}", "id%1")


def test_pending_writes_sorted_and_idempotent_under_concurrency(saver: ValkeySaver) -> None:
    stored = put_one(saver, "t-conc", {"a": 1})
    barrier = threading.Barrier(8)

    def write(task: str) -> None:
        barrier.wait()
        for _ in range(5):
            saver.put_writes(stored, [("ch", task), ("other", task)], task, task_path=f"~{task}")

    threads = [threading.Thread(target=write, args=(f"task-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writes = saver.get_tuple(stored).pending_writes  # type: ignore[union-attr]
    assert writes == [(f"task-{i}", ch, f"task-{i}") for i in range(8) for ch in ("ch", "other")]


def test_round_trips_per_operation(sync_client: valkey.Valkey, prefix: str) -> None:
    saver = ValkeySaver(sync_client, prefix=prefix)
    saver.setup()  # scripts preloaded: no NOSCRIPT retry in the counts below
    sent: list[tuple[Any, ...]] = []
    original = sync_client.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        sent.append(args)
        return original(*args, **kwargs)

    sync_client.execute_command = counting  # type: ignore[method-assign]
    try:
        stored = put_one(saver, "t-rt", {"messages": ["m"] * 20, "x": 1})
        assert len(sent) == 1
        saver.put_writes(stored, [("a", 1), ("b", 2)], "task")
        assert len(sent) == 2
        saver.get_tuple(stored)
        saver.get_tuple(generate_config("t-rt"))
        assert len(sent) == 4
        assert all(args[0] == "EVALSHA" for args in sent)
    finally:
        del sync_client.execute_command


def test_list_across_threads_and_namespaces(saver: ValkeySaver) -> None:
    a = put_one(saver, "la", {"v": 1})
    b = put_one(saver, "lb", {"v": 2})
    child = put_one(saver, "la", {"v": 3}, ns="child:1")
    assert {t.config["configurable"]["checkpoint_id"] for t in saver.list(None)} == {
        c["configurable"]["checkpoint_id"] for c in (a, b, child)
    }
    assert len(list(saver.list(None, limit=2))) == 2
    every_ns = list(saver.list({"configurable": {"thread_id": "la"}}))
    assert [t.config for t in every_ns] == [child, a]  # newest first across namespaces


# --- TTL ----------------------------------------------------------------------------------------------


async def test_ttl_applies_to_every_key_and_expires_the_whole_thread(
    sync_client: valkey.Valkey, prefix: str, keys_under: KeysUnder
) -> None:
    saver = ValkeySaver(sync_client, prefix=prefix, ttl={"default_ttl": 0.01})  # 600 ms
    stored = put_one(saver, "t-ttl", {"a": 1})
    saver.put_writes(stored, [("a", 2)], "task")
    metadata = generate_metadata(run_id="run-1")
    cp: Checkpoint = generate_checkpoint()
    saver.put(stored, cp, metadata, {})
    keys = await keys_under(sync_client, prefix)
    assert len(keys) == 6
    assert all(0 < sync_client.pttl(k) <= 600 for k in keys)
    deadline = time.monotonic() + 5
    while await keys_under(sync_client, prefix) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await keys_under(sync_client, prefix) == []
    assert saver.get_tuple(stored) is None


@pytest.mark.parametrize("refresh", [True, False])
async def test_refresh_on_read(
    sync_client: valkey.Valkey, prefix: str, keys_under: KeysUnder, refresh: bool
) -> None:
    saver = ValkeySaver(sync_client, prefix=prefix, ttl={"default_ttl": 10, "refresh_on_read": refresh})
    stored = put_one(saver, "t-refresh", {"a": 1})
    keys = await keys_under(sync_client, prefix)
    for k in keys:
        sync_client.pexpire(k, 5_000)
    saver.get_tuple(stored)
    list(saver.list(generate_config("t-refresh")))
    ttls = [sync_client.pttl(k) for k in keys]
    if refresh:
        assert all(590_000 < t <= 600_000 for t in ttls)
    else:
        assert all(0 < t <= 5_000 for t in ttls)


# --- async bridge -------------------------------------------------------------------------------------


async def test_async_saver_sync_bridge(asaver: AsyncValkeySaver) -> None:
    cp = generate_checkpoint(channel_values={"a": 1}, channel_versions={"a": 1})
    stored = await asaver.aput(generate_config("t-bridge"), cp, generate_metadata(), {"a": 1})
    with pytest.raises(asyncio.InvalidStateError, match="aget_tuple"):
        asaver.get_tuple(stored)  # on the loop's own thread this would deadlock
    tup = await asyncio.to_thread(asaver.get_tuple, stored)
    assert tup is not None and tup.checkpoint["channel_values"] == {"a": 1}
    listed = await asyncio.to_thread(lambda: list(asaver.list(generate_config("t-bridge"))))
    assert [t.config for t in listed] == [stored]


async def test_from_url_context_managers(plain_valkey_url: str, prefix: str) -> None:
    with ValkeySaver.from_url(plain_valkey_url, prefix=prefix) as saver:
        saver.setup()
        stored = put_one(saver, "t-url", {"a": 1})
    async with AsyncValkeySaver.from_url(plain_valkey_url, prefix=prefix) as asaver:
        await asaver.setup()
        tup = await asaver.aget_tuple(stored)
        assert tup is not None and tup.checkpoint["channel_values"] == {"a": 1}


# --- put_writes: keep-first vs overwrite (LangGraph's InMemorySaver semantics) -----------------------


def _write_twice(saver: Any, config: dict[str, Any], special: str) -> None:
    saver.put_writes(config, [("ch", "first"), (special, f"{special}-1")], "task")
    saver.put_writes(config, [("ch", "second"), (special, f"{special}-2"), ("more", "m")], "task")
    saver.put_writes(config, [("ch", "other-task")], "task-2")  # another task: its own (task, idx)


@pytest.mark.parametrize("special", [ERROR, INTERRUPT, SCHEDULED, RESUME])
def test_put_writes_regular_keeps_first_special_overwrites(saver: ValkeySaver, special: str) -> None:
    assert WRITES_IDX_MAP[special] < 0
    stored = put_one(saver, "t-pw", {"a": 1})
    _write_twice(saver, stored, special)
    writes = saver.get_tuple(stored).pending_writes  # type: ignore[union-attr]
    assert writes is not None
    # a regular channel (idx >= 0) keeps the first write of (task, idx) ...
    assert ("task", "ch", "first") in writes
    assert ("task", "ch", "second") not in writes
    # ... a special channel (negative idx) takes the latest
    assert ("task", special, f"{special}-2") in writes
    assert ("task", special, f"{special}-1") not in writes
    assert sorted(writes) == sorted(
        [("task", "ch", "first"), ("task", special, f"{special}-2"), ("task", "more", "m"),
         ("task-2", "ch", "other-task")]
    )  # fmt: skip
    # exactly what the reference saver keeps for the same calls
    reference = InMemorySaver()
    ref_cp = generate_checkpoint(channel_values={"a": 1}, channel_versions={"a": 1})
    ref_stored = reference.put(generate_config("t-pw"), ref_cp, generate_metadata(), {"a": 1})
    _write_twice(reference, dict(ref_stored), special)
    ref_writes = reference.get_tuple(ref_stored).pending_writes  # type: ignore[union-attr]
    assert sorted(writes) == sorted(ref_writes or [])


async def test_async_put_writes_regular_keeps_first_special_overwrites(asaver: AsyncValkeySaver) -> None:
    cp = generate_checkpoint(channel_values={"a": 1}, channel_versions={"a": 1})
    stored = await asaver.aput(generate_config("t-apw"), cp, generate_metadata(), {"a": 1})
    await asaver.aput_writes(stored, [("ch", "first"), (ERROR, "boom-1")], "task")
    await asaver.aput_writes(stored, [("ch", "second"), (ERROR, "boom-2")], "task")
    tup = await asaver.aget_tuple(stored)
    assert tup is not None
    assert sorted(tup.pending_writes or []) == [("task", ERROR, "boom-2"), ("task", "ch", "first")]


# --- parent checkpoint ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("ns", ["", "child:{1}"])
async def test_parent_config_names_the_parent_checkpoint(
    saver: ValkeySaver, asaver: AsyncValkeySaver, ns: str
) -> None:
    thread = "t-parent"
    first = put_one(saver, thread, {"v": 1}, ns=ns)
    second = put_one(saver, thread, {"v": 2}, parent=first["configurable"]["checkpoint_id"], ns=ns)
    third = put_one(saver, thread, {"v": 3}, parent=second["configurable"]["checkpoint_id"], ns=ns)

    def parent_of(config: dict[str, Any]) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread, "checkpoint_ns": ns,
                                 "checkpoint_id": config["configurable"]["checkpoint_id"]}}  # fmt: skip

    expected = {
        first["configurable"]["checkpoint_id"]: None,
        second["configurable"]["checkpoint_id"]: parent_of(first),
        third["configurable"]["checkpoint_id"]: parent_of(second),
    }
    for config in (first, second, third):
        tup = saver.get_tuple(config)
        assert tup is not None
        assert tup.parent_config == expected[config["configurable"]["checkpoint_id"]]
        atup = await asaver.aget_tuple(config)
        assert atup is not None and atup.parent_config == tup.parent_config
    newest = saver.get_tuple(generate_config(thread, checkpoint_ns=ns))
    assert newest is not None and newest.config == third and newest.parent_config == parent_of(second)
    listed = list(saver.list(generate_config(thread, checkpoint_ns=ns)))
    assert [t.config for t in listed] == [third, second, first]
    assert [t.parent_config for t in listed] == [parent_of(second), parent_of(first), None]
    alisted = [t async for t in asaver.alist({"configurable": {"thread_id": thread}})]
    assert [(t.config, t.parent_config) for t in alisted] == [(t.config, t.parent_config) for t in listed]


# --- prune keep_latest and delta ancestors -------------------------------------------------------------


def _put_cp(
    saver: ValkeySaver,
    thread: str,
    values: dict[str, Any],
    versions: dict[str, str],
    new: dict[str, str],
    parent: str | None,
    counters: dict[str, tuple[int, int]] | None,
    ns: str = "",
) -> dict[str, Any]:
    cp = generate_checkpoint(channel_values=values, channel_versions=versions)
    metadata = generate_metadata()
    if counters is not None:
        metadata["counters_since_delta_snapshot"] = counters
    config = generate_config(thread, checkpoint_ns=ns, checkpoint_id=parent)
    return dict(saver.put(config, cp, metadata, new))


def test_prune_keep_latest_keeps_delta_ancestors(saver: ValkeySaver, sync_client: valkey.Valkey) -> None:
    thread = "t-prune-delta"
    v1, v2 = saver.get_next_version(None, None), saver.get_next_version("1", None)
    # c0: old plain checkpoint; c1: snapshot point of "d" (no counters: nothing pending since a
    # snapshot); c2, c3: delta checkpoints (counters set) that rebuild "d" from c1's seed and the writes
    # stored at c1 and c2. "a" was written once at c0 and is still referenced by every later checkpoint.
    c0 = _put_cp(saver, thread, {"a": "A"}, {"a": v1}, {"a": v1}, None, None)
    id0 = c0["configurable"]["checkpoint_id"]
    c1 = _put_cp(saver, thread, {"a": "A", "d": ["seed"]}, {"a": v1, "d": v1}, {"d": v1}, id0, None)
    id1 = c1["configurable"]["checkpoint_id"]
    saver.put_writes(c1, [("d", ["x1"])], "task-1")
    c2 = _put_cp(saver, thread, {"a": "A"}, {"a": v1, "d": v2}, {"d": v2}, id1, {"d": (1, 1)})
    id2 = c2["configurable"]["checkpoint_id"]
    saver.put_writes(c2, [("d", ["x2"])], "task-2")
    c3 = _put_cp(saver, thread, {"a": "A"}, {"a": v1, "d": v2}, {}, id2, {"d": (2, 2)})
    id3 = c3["configurable"]["checkpoint_id"]
    # another namespace: its head is not a delta checkpoint, so only the head stays
    s0 = _put_cp(saver, thread, {"s": 1}, {"s": v1}, {"s": v1}, None, None, ns="sub")
    s1 = _put_cp(saver, thread, {"s": 2}, {"s": v2}, {"s": v2}, s0["configurable"]["checkpoint_id"],
                 None, ns="sub")  # fmt: skip
    history_before = saver.get_delta_channel_history(config=c3, channels=["d"])
    assert history_before["d"] == {"writes": [("task-1", "d", ["x1"]), ("task-2", "d", ["x2"])],
                                   "seed": ["seed"]}  # fmt: skip

    saver.prune([thread], strategy="keep_latest")

    kept = [t.config["configurable"]["checkpoint_id"] for t in saver.list(generate_config(thread))]
    assert kept == [id3, id2, id1]  # c0 is not needed by the delta chain: dropped
    assert saver.get_tuple(c0) is None
    assert [t.config for t in saver.list(generate_config(thread, checkpoint_ns="sub"))] == [s1]
    # the newest checkpoint still reconstructs: its own blobs, and the delta history through its ancestors
    head = saver.get_tuple(generate_config(thread))
    assert head is not None and head.config == c3
    assert head.checkpoint["channel_values"] == {"a": "A"}
    assert saver.get_tuple(c1).checkpoint["channel_values"] == {"a": "A", "d": ["seed"]}  # type: ignore[union-attr]
    assert saver.get_tuple(c2).pending_writes == [("task-2", "d", ["x2"])]  # type: ignore[union-attr]
    assert saver.get_delta_channel_history(config=c3, channels=["d"]) == history_before
    # c0's unshared data is gone with it; nothing of it lingers in the thread's hashes
    keys = _keys.thread_keys(saver.settings.prefix, thread)
    assert _keys.member("", id0).encode() not in sync_client.zrange(keys.ids, 0, -1)
    assert not [f for f in sync_client.hkeys(keys.cp) if f.startswith(_keys.member("", id0).encode())]

    # pruning again keeps the same chain; once the head is a snapshot point, the old chain goes
    saver.prune([thread])
    assert [t.config["configurable"]["checkpoint_id"] for t in saver.list(generate_config(thread))] == kept
    c4 = _put_cp(saver, thread, {"a": "A", "d": ["all"]}, {"a": v1, "d": "3"}, {"d": "3"}, id3, None)
    saver.prune([thread])
    assert [t.config for t in saver.list(generate_config(thread))] == [c4]
    assert saver.get_tuple(c4).checkpoint["channel_values"] == {"a": "A", "d": ["all"]}  # type: ignore[union-attr]


def _extend(state: list[Any], writes: Sequence[list[Any]]) -> list[Any]:
    out = list(state)
    for w in writes:
        out.extend(w)
    return out


class DeltaLogState(TypedDict):
    # a string annotation (future import): only resolved when a graph is built, after the skip check
    log: Annotated[list[Any], DeltaChannel(_extend, snapshot_frequency=3)]


@pytest.mark.skipif(DeltaChannel is None, reason="this LangGraph has no DeltaChannel")
def test_prune_keep_latest_keeps_delta_channel_graph_state(saver: ValkeySaver) -> None:
    def step(state: dict[str, Any]) -> dict[str, Any]:
        return {"log": [len(state["log"])]}

    def build(checkpointer: Any) -> Any:
        builder = StateGraph(DeltaLogState)
        builder.add_node("step", step)
        builder.add_edge(START, "step")
        builder.add_edge("step", END)
        return builder.compile(checkpointer=checkpointer)

    graph, reference = build(saver), build(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-delta-graph"}}
    for i in range(4):
        graph.invoke({"log": [f"in{i}"]}, config)
        reference.invoke({"log": [f"in{i}"]}, config)
    expected = reference.get_state(config).values
    assert graph.get_state(config).values == expected and len(expected["log"]) == 8
    before = list(saver.list(config))
    head = before[0]
    assert head.metadata.get("counters_since_delta_snapshot")  # the head needs its ancestors

    saver.prune(["t-delta-graph"])

    assert graph.get_state(config).values == expected  # the delta channel still rebuilds in full
    after = list(saver.list(config))
    assert 1 < len(after) < len(before)  # ancestors the delta needs stay, older checkpoints go
    assert after[0].config == head.config
    graph.invoke({"log": ["more"]}, config)
    reference.invoke({"log": ["more"]}, config)
    assert graph.get_state(config).values == reference.get_state(config).values


# --- key prefix validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["app\n", "app\r\n", "\napp", "ap\np", "app ", " app", "\tapp", "app\t", "app\x00", "a\x1bb", "app\x7f",
     "", "a*b", "a?b", "a[b]", "a{b", "ü", 3],
)  # fmt: skip
def test_key_prefix_with_control_chars_or_whitespace_is_refused(prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        ValkeySaver(valkey.Valkey(), prefix=prefix)
    with pytest.raises(ConfigurationError, match="prefix"):
        AsyncValkeySaver(avalkey.Valkey(), prefix=prefix)
    with pytest.raises(ValueError, match="invalid key prefix"):
        _keys.validate_prefix(prefix)


@pytest.mark.parametrize("prefix", ["app", "agentmem:checkpoint", "a_b.c:d/e@f+g=h-i", "0"])
def test_key_prefix_allowed_characters(prefix: str) -> None:
    assert _keys.validate_prefix(prefix) == prefix
    assert ValkeySaver(valkey.Valkey(), prefix=prefix).settings.prefix == prefix


def test_from_url_bounds_every_wait_and_takes_a_retry_policy(valkey_url: str) -> None:
    from agentmem_core import RetryPolicy
    from agentmem_core.connection import CLIENT_DEFAULTS

    policy = RetryPolicy(retries=1)
    with ValkeySaver.from_url(valkey_url + "?socket_timeout=3", retry=policy) as saver:
        kwargs = saver.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 3.0  # the URL wins
        assert kwargs["socket_connect_timeout"] == CLIENT_DEFAULTS["socket_connect_timeout"]
        assert saver._driver.sender.retry is policy
