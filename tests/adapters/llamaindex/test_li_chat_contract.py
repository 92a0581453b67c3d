"""The chat-store contract, run against ValkeyChatStore and LlamaIndex's SQLAlchemyChatStore alike.

The first block mirrors llama-index-core's own ``tests/storage/chat_store/test_sql.py`` test by test
(same data, same assertions; ``delete_message`` ids come from each store's own id listing, see
``conftest.message_ids``). The second block covers what those tests leave out: statuses in every method,
ordering of larger histories, content types, unknown sessions. Every test runs on both stores
(``chat_store`` is parametrized), so a behaviour where the two differ fails here.
"""

from __future__ import annotations

import base64

import pytest
from conftest import message_ids
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

pytestmark = pytest.mark.integration


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


# -- llama-index-core tests/storage/chat_store/test_sql.py, on both stores ---------------------------------
async def test_add_get_messages(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_message("user1", ChatMessage(role="user", content="hello"))
    await chat_store.add_message("user1", ChatMessage(role="assistant", content="world"))
    messages = await chat_store.get_messages("user1")
    assert len(messages) == 2
    assert messages[0].role == "user"
    assert messages[0].content == "hello"
    assert messages[1].role == "assistant"
    assert messages[1].content == "world"
    assert await chat_store.get_messages("nonexistent") == []


async def test_add_messages_batch(chat_store: AsyncDBChatStore) -> None:
    batch = [
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="assistant", content="world"),
        ChatMessage(role="user", content="how are you?"),
    ]
    await chat_store.add_messages("batch_user", batch)
    assert texts(await chat_store.get_messages("batch_user")) == ["hello", "world", "how are you?"]


async def test_count_messages(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages(
        "count_user", [ChatMessage(role="user", content=f"message{i}") for i in range(1, 4)]
    )
    assert await chat_store.count_messages("count_user") == 3
    assert await chat_store.count_messages("nonexistent") == 0


async def test_set_messages(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_message("replace_user", ChatMessage(role="user", content="initial"))
    await chat_store.set_messages(
        "replace_user",
        [ChatMessage(role="user", content="replaced1"), ChatMessage(role="assistant", content="replaced2")],
    )
    assert texts(await chat_store.get_messages("replace_user")) == ["replaced1", "replaced2"]


async def test_delete_message(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages(
        "delete_user", [ChatMessage(role="user", content=f"message{i}") for i in range(1, 4)]
    )
    ids = await message_ids(chat_store, "delete_user")
    deleted = await chat_store.delete_message("delete_user", ids[1])
    assert deleted is not None and deleted.content == "message2"
    assert texts(await chat_store.get_messages("delete_user")) == ["message1", "message3"]


async def test_delete_messages(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_message("delete_all_user1", ChatMessage(role="user", content="user1_message"))
    await chat_store.add_message("delete_all_user2", ChatMessage(role="user", content="user2_message"))
    await chat_store.delete_messages("delete_all_user1")
    assert await chat_store.get_messages("delete_all_user1") == []
    assert len(await chat_store.get_messages("delete_all_user2")) == 1


async def test_delete_oldest_messages(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages(
        "oldest_test",
        [
            ChatMessage(role="user", content="oldest"),
            ChatMessage(role="assistant", content="middle"),
            ChatMessage(role="user", content="newest"),
        ],
    )
    deleted = await chat_store.delete_oldest_messages("oldest_test", 1)
    assert texts(deleted) == ["oldest"]
    assert texts(await chat_store.get_messages("oldest_test")) == ["middle", "newest"]


async def test_archive_oldest_messages(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages(
        "archive_test",
        [
            ChatMessage(role="user", content="oldest"),
            ChatMessage(role="assistant", content="middle"),
            ChatMessage(role="user", content="newest"),
        ],
    )
    archived = await chat_store.archive_oldest_messages("archive_test", 1)
    assert texts(archived) == ["oldest"]
    active = await chat_store.get_messages("archive_test", status=MessageStatus.ACTIVE)
    assert texts(active) == ["middle", "newest"]
    assert texts(await chat_store.get_messages("archive_test", status=MessageStatus.ARCHIVED)) == ["oldest"]


async def test_get_messages_with_limit_offset(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages(
        "pagination_test", [ChatMessage(role="user", content=f"message{i}") for i in range(1, 6)]
    )
    assert texts(await chat_store.get_messages("pagination_test", limit=2)) == ["message1", "message2"]
    assert texts(await chat_store.get_messages("pagination_test", offset=2)) == [
        "message3",
        "message4",
        "message5",
    ]
    assert texts(await chat_store.get_messages("pagination_test", limit=2, offset=1)) == [
        "message2",
        "message3",
    ]


async def test_get_keys(chat_store: AsyncDBChatStore) -> None:
    for n in (1, 2, 3):
        await chat_store.add_message(f"keys_user{n}", ChatMessage(role="user", content=f"user{n}_message"))
    assert {"keys_user1", "keys_user2", "keys_user3"} <= set(await chat_store.get_keys())


async def test_basic_operations_round_trip(chat_store: AsyncDBChatStore) -> None:
    """test_sql_schema.py's store-independent part: a message written is read back."""
    await chat_store.add_message("schema_user", ChatMessage(role="user", content="Hello with schema!"))
    assert texts(await chat_store.get_messages("schema_user")) == ["Hello with schema!"]


# -- beyond the upstream tests ------------------------------------------------------------------------------
async def test_statuses_everywhere(chat_store: AsyncDBChatStore) -> None:
    key = "statuses"
    await chat_store.add_messages(key, [ChatMessage(content=f"a{i}") for i in range(3)])
    await chat_store.add_messages(
        key, [ChatMessage(content=f"z{i}") for i in range(2)], MessageStatus.ARCHIVED
    )
    await chat_store.add_message(key, ChatMessage(content="a3"))
    assert texts(await chat_store.get_messages(key)) == ["a0", "a1", "a2", "a3"]
    assert texts(await chat_store.get_messages(key, status=MessageStatus.ARCHIVED)) == ["z0", "z1"]
    assert texts(await chat_store.get_messages(key, status=None)) == ["a0", "a1", "a2", "z0", "z1", "a3"]
    assert texts(await chat_store.get_messages(key, status=None, limit=3, offset=2)) == ["a2", "z0", "z1"]
    assert texts(await chat_store.get_messages(key, status=MessageStatus.ARCHIVED, offset=1)) == ["z1"]
    assert await chat_store.count_messages(key) == 4
    assert await chat_store.count_messages(key, MessageStatus.ARCHIVED) == 2
    assert await chat_store.count_messages(key, None) == 6
    # the oldest *active* messages are trimmed; archived ones are never touched
    assert texts(await chat_store.delete_oldest_messages(key, 2)) == ["a0", "a1"]
    assert texts(await chat_store.archive_oldest_messages(key, 1)) == ["a2"]
    assert texts(await chat_store.get_messages(key, status=None)) == ["a2", "z0", "z1", "a3"]
    await chat_store.delete_messages(key, MessageStatus.ARCHIVED)
    assert texts(await chat_store.get_messages(key, status=None)) == ["a3"]
    await chat_store.delete_messages(key, MessageStatus.ACTIVE)
    assert await chat_store.count_messages(key, None) == 0


async def test_trim_more_than_there_is(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages("few", [ChatMessage(content="x"), ChatMessage(content="y")])
    assert texts(await chat_store.archive_oldest_messages("few", 5)) == ["x", "y"]
    assert await chat_store.archive_oldest_messages("few", 5) == []
    assert await chat_store.delete_oldest_messages("few", 5) == []
    assert await chat_store.count_messages("few", MessageStatus.ARCHIVED) == 2
    assert await chat_store.delete_oldest_messages("nobody", 3) == []
    assert await chat_store.archive_oldest_messages("nobody", 0) == []


async def test_set_messages_replaces_every_status(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_messages("s", [ChatMessage(content="old1"), ChatMessage(content="old2")])
    await chat_store.archive_oldest_messages("s", 1)
    await chat_store.set_messages("s", [ChatMessage(content="n1")], MessageStatus.ARCHIVED)
    assert await chat_store.get_messages("s") == []
    assert texts(await chat_store.get_messages("s", status=None)) == ["n1"]
    await chat_store.set_messages("s", [ChatMessage(content="n2")])
    assert texts(await chat_store.get_messages("s", status=None)) == ["n2"]


async def test_order_of_a_long_history(chat_store: AsyncDBChatStore) -> None:
    """Single adds, batches and re-adds interleave; reads keep exactly the write order."""
    want = []
    for turn in range(20):
        if turn % 3 == 0:
            batch = [ChatMessage(content=f"t{turn}-{i}") for i in range(4)]
            await chat_store.add_messages("long", batch)
            want += [m.content for m in batch]
        else:
            await chat_store.add_message("long", ChatMessage(content=f"t{turn}"))
            want.append(f"t{turn}")
    assert texts(await chat_store.get_messages("long")) == want
    for limit, offset in ((7, 0), (7, 7), (5, 30), (100, 3)):
        assert (
            texts(await chat_store.get_messages("long", limit=limit, offset=offset))
            == want[offset : offset + limit]
        )


async def test_delete_message_of_another_session_or_missing_id(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_message("mine", ChatMessage(content="keep me"))
    await chat_store.add_message("other", ChatMessage(content="other"))
    (mine_id,) = await message_ids(chat_store, "mine")
    # Never across sessions. (The reference's ids are global table rows, so this deletes nothing there;
    # ours number each session's messages 1, 2, ..., so it deletes "other"'s own first message.)
    other = await chat_store.delete_message("other", mine_id)
    assert other is None or other.content == "other"
    assert texts(await chat_store.get_messages("mine")) == ["keep me"]
    assert await chat_store.delete_message("mine", 987_654) is None
    assert texts(await chat_store.get_messages("mine")) == ["keep me"]
    assert (await chat_store.delete_message("mine", mine_id)) is not None
    assert await chat_store.delete_message("mine", mine_id) is None


async def test_keys_of_emptied_sessions_disappear(chat_store: AsyncDBChatStore) -> None:
    await chat_store.add_message("gone", ChatMessage(content="x"))
    await chat_store.add_message("stays", ChatMessage(content="y"))
    await chat_store.delete_messages("gone")
    keys = set(await chat_store.get_keys())
    assert "stays" in keys and "gone" not in keys


def _content_kinds() -> list[ChatMessage]:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'},
    }
    return [
        ChatMessage(role=MessageRole.SYSTEM, content='You are terse. ünïcødé ✓ \u00a0 "quotes" \n newline'),
        ChatMessage(
            role="user",
            blocks=[TextBlock(text="what is this?"), ImageBlock(image=png, image_mimetype="image/png")],
        ),
        ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/cat.png", detail="low")]),
        ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [tool_call]}),
        ChatMessage(
            role="tool",
            content='{"temp": 21}',
            additional_kwargs={"tool_call_id": "call_1", "name": "get_weather"},
        ),
        ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="thinking..."),
                ToolCallBlock(tool_call_id="c2", tool_name="search", tool_kwargs={"q": "x", "n": 2}),
            ],
        ),
        ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF....WAVE", format="wav")]),
        ChatMessage(role="user", blocks=[DocumentBlock(data=b"%PDF-1.4 tiny", title="t.pdf")]),
        ChatMessage(role="assistant", content="nested", additional_kwargs={"a": {"b": [1, 2.5, None, True]}}),
    ]


async def test_every_content_type_round_trips(chat_store: AsyncDBChatStore) -> None:
    """Text, images (inline and URLs), tool calls in additional_kwargs, tool blocks, audio, documents."""
    originals = _content_kinds()
    await chat_store.add_messages("kinds", originals)
    await chat_store.add_message("kinds", originals[1])
    got = await chat_store.get_messages("kinds")
    want = [*originals, originals[1]]
    assert [m.model_dump(mode="json") for m in got] == [m.model_dump(mode="json") for m in want]
    assert got[3].additional_kwargs["tool_calls"][0]["function"]["name"] == "get_weather"
    image = got[1].blocks[1]
    assert isinstance(image, ImageBlock) and image.image == originals[1].blocks[1].image  # type: ignore[union-attr]
