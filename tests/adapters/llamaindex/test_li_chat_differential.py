"""Differential: random operation sequences on ValkeyChatStore and SQLAlchemyChatStore, compared step by step.

Every method of the contract is drawn (adds, batches, set, both deletes, both trims, reads with status /
limit / offset, counts, keys), on three sessions; after each step both stores must have answered the
same and hold the same histories. ``delete_message`` picks "the i-th message of a session" and asks each
store for it by its own id (the ids differ: global table rows there, per-session write positions here).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from conftest import message_ids
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
from sqlalchemy.exc import IntegrityError

from agentmem_core import InvalidMemoryError
from agentmem_llamaindex import ValkeyChatStore

pytestmark = pytest.mark.integration

KEYS = ("alpha", "beta", "gamma/δ")
STATUSES = (MessageStatus.ACTIVE, MessageStatus.ARCHIVED, None)


def dump(messages: list[ChatMessage] | None) -> Any:
    if messages is None:
        return None
    return [m.model_dump(mode="json") for m in messages]


def random_message(rng: random.Random, n: int) -> ChatMessage:
    role = rng.choice(["user", "assistant", "tool", "system"])
    extra = (
        {"tool_calls": [{"id": f"c{n}", "function": {"name": "f", "arguments": "{}"}}]}
        if rng.random() < 0.2
        else {}
    )
    return ChatMessage(
        role=role, content=f"m{n} {rng.choice(['hi', 'ünï', 'a b c', ''])}", additional_kwargs=extra
    )


async def step(store: AsyncDBChatStore, op: str, args: dict[str, Any]) -> Any:
    key = args["key"]
    if op == "add":
        return await store.add_message(key, args["message"], args["status"])
    if op == "add_many":
        return await store.add_messages(key, args["messages"], args["status"])
    if op == "set":
        return await store.set_messages(key, args["messages"], args["status"])
    if op == "get":
        return dump(await store.get_messages(key, args["status"], args["limit"], args["offset"]))
    if op == "count":
        return await store.count_messages(key, args["status"])
    if op == "delete_all":
        return await store.delete_messages(key, args["status"])
    if op == "delete_oldest":
        return dump(await store.delete_oldest_messages(key, args["n"]))
    if op == "archive_oldest":
        return dump(await store.archive_oldest_messages(key, args["n"]))
    if op == "delete_one":
        ids = await message_ids(store, key)
        position = args["position"]
        idx = ids[position] if position < len(ids) else 10**9
        message = await store.delete_message(key, idx)
        return None if message is None else message.model_dump(mode="json")
    if op == "keys":
        return sorted(await store.get_keys())
    raise AssertionError(op)


def draw(rng: random.Random, n: int) -> tuple[str, dict[str, Any]]:
    op = rng.choice(
        ["add", "add", "add_many", "add_many", "set", "get", "get", "count", "delete_all", "delete_oldest",
         "archive_oldest", "archive_oldest", "delete_one", "keys"]
    )  # fmt: skip
    args: dict[str, Any] = {"key": rng.choice(KEYS)}
    write_status = rng.choice([MessageStatus.ACTIVE, MessageStatus.ACTIVE, MessageStatus.ARCHIVED])
    if op == "add":
        args.update(message=random_message(rng, n), status=write_status)
    elif op in ("add_many", "set"):
        count = rng.randint(1, 5) if op == "add_many" else rng.randint(0, 4)
        args.update(messages=[random_message(rng, n * 10 + i) for i in range(count)], status=write_status)
    elif op == "get":
        args.update(
            status=rng.choice(STATUSES),
            limit=rng.choice([None, None, 0, 1, 3]),
            offset=rng.choice([None, None, 0, 1, 4]),
        )
    elif op in ("count", "delete_all"):
        args.update(status=rng.choice(STATUSES))
    elif op in ("delete_oldest", "archive_oldest"):
        args.update(n=rng.randint(0, 4))
    elif op == "delete_one":
        args.update(position=rng.randint(0, 6))
    return op, args


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_random_sequences_agree(
    seed: int, valkey_chat: ValkeyChatStore, sql_chat: SQLAlchemyChatStore
) -> None:
    rng = random.Random(seed)
    for n in range(60):
        op, args = draw(rng, n)
        ours = await step(valkey_chat, op, args)
        theirs = await step(sql_chat, op, args)
        assert ours == theirs, (n, op, args)
        for key in KEYS:  # the whole state, every status, in order
            assert dump(await valkey_chat.get_messages(key, status=None)) == dump(
                await sql_chat.get_messages(key, status=None)
            ), (n, op, key)


async def test_empty_batch_writes_nothing(
    valkey_chat: ValkeyChatStore, sql_chat: SQLAlchemyChatStore
) -> None:
    """``add_messages(key, [])``: the reference fails (SQLAlchemy turns the empty multi-row INSERT into a
    row without a key: IntegrityError). An empty batch is a no-op here, which is what "add a list of
    messages" means; the reference is wrong, so the right behaviour is asserted."""
    await valkey_chat.add_messages("empty", [])
    assert await valkey_chat.get_messages("empty") == []
    assert "empty" not in await valkey_chat.get_keys()
    with pytest.raises(IntegrityError):
        await sql_chat.add_messages("empty", [])


async def test_negative_counts_are_refused(
    valkey_chat: ValkeyChatStore, sql_chat: SQLAlchemyChatStore
) -> None:
    """The reference hands negative numbers to SQLite, which reads ``LIMIT -1`` as "no limit": ``limit=-1``
    returns everything and ``delete_oldest_messages(key, -1)`` deletes the whole active history. Here
    they are bad input (a typed error) and nothing is deleted; the reference is wrong, so the right
    behaviour is asserted."""
    batch = [ChatMessage(content=str(i)) for i in range(3)]
    for store in (valkey_chat, sql_chat):
        await store.add_messages("neg", batch)
    assert len(await sql_chat.get_messages("neg", limit=-1)) == 3
    assert len(await sql_chat.delete_oldest_messages("neg", -1)) == 3
    for call in (
        valkey_chat.get_messages("neg", limit=-1),
        valkey_chat.get_messages("neg", offset=-2),
        valkey_chat.delete_oldest_messages("neg", -1),
        valkey_chat.archive_oldest_messages("neg", -1),
        valkey_chat.get_messages("neg", limit=1.5),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidMemoryError):
            await call
    assert await valkey_chat.count_messages("neg") == 3
