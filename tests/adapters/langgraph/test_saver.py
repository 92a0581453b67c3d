"""Checkpointer behaviour beyond the conformance suite: bad input, corruption, TTL, round trips, layout."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import valkey
import valkey.asyncio as avalkey
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
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

KeysUnder = Callable[[Any, str], Awaitable[list[bytes]]]


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
