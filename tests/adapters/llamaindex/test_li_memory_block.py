"""ValkeyMemoryBlock on its own: what _aput stores, what _aget recalls (scopes, scores, format), cuts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import DIMS, HashEmbedding
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock
from llama_index.core.utils import get_tokenizer

from agentmem_core import (
    AsyncMemoryStore,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    InvalidMemoryError,
    InvalidVectorError,
)
from agentmem_core.embeddings import HashingEmbedder
from agentmem_llamaindex import BLOCK_NAMESPACE, ValkeyMemoryBlock, llamaindex_embedder
from agentmem_llamaindex._block_plan import truncate

pytestmark = pytest.mark.integration

MakeBlock = Callable[..., ValkeyMemoryBlock]


@pytest.fixture
async def make_block(valkey_url: str, unique_name: str) -> AsyncIterator[MakeBlock]:
    """Blocks on one core store per test (HashingEmbedder through a LlamaIndex BaseEmbedding)."""
    cores: list[AsyncMemoryStore] = []
    model = HashEmbedding()
    core = AsyncMemoryStore.from_url(
        valkey_url, name=unique_name, embedder=llamaindex_embedder(model), dims=DIMS
    )
    await core.setup()
    cores.append(core)

    def make(**fields: Any) -> ValkeyMemoryBlock:
        return ValkeyMemoryBlock(core, embed_model=fields.pop("embed_model", model), **fields)

    yield make
    for c in cores:
        await c.close()


def flushed(session: str, *pairs: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=r, content=t, additional_kwargs={"session_id": session}) for r, t in pairs]


async def test_aput_stores_one_memory_per_message_with_text_in_its_scope(make_block: MakeBlock) -> None:
    block = make_block(user_id="ana")
    await block.aput(
        [
            ChatMessage(role="user", content="I love window seats"),
            ChatMessage(role="assistant", blocks=[ImageBlock(url="https://example.com/x.png")]),  # no text
            ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [{"id": "c"}]}),
            ChatMessage(role="tool", blocks=[TextBlock(text="21 degrees"), TextBlock(text="sunny")]),
        ],
        from_short_term_memory=True,
        session_id="s1",
    )
    page = await block.core.list(namespace=BLOCK_NAMESPACE, order="oldest")
    assert [m.content for m in page.memories] == ["user: I love window seats", "tool: 21 degrees\nsunny"]
    first = page.memories[0]
    assert (first.thread_id, first.user_id, first.agent_id, first.source, first.embedded) == (
        "s1", "ana", None, "user", True,
    )  # fmt: skip
    assert first.metadata == {"role": "user"}


async def test_aget_recalls_by_composite_score_best_first(make_block: MakeBlock) -> None:
    block = make_block(user_id="ana", similarity_top_k=2)
    await block.aput(
        flushed("s1", ("user", "I prefer window seats on planes"), ("user", "my cat is called Tom"),
                ("user", "I like vegetarian food")),
        session_id="s1",
    )  # fmt: skip
    text = await block.aget([ChatMessage(content="which seats on planes do I prefer?")], session_id="s2")
    lines = text.split("\n")
    assert lines[0] == "- user: I prefer window seats on planes"
    assert len(lines) == 2
    scored = make_block(
        user_id="ana", similarity_top_k=1, show_scores=True, template="[{role}] {text} @{session_id}"
    )
    line = await scored.aget([ChatMessage(content="window seats planes")], session_id="s2")
    assert line.startswith("[user] I prefer window seats on planes @s1 (score ")
    assert "similarity" in line and "recency" in line and "importance" in line


async def test_scopes_never_leak_between_users_or_sessions(make_block: MakeBlock) -> None:
    ana, bob = make_block(user_id="ana"), make_block(user_id="bob")
    await ana.aput(flushed("a1", ("user", "ana likes tea")), session_id="a1")
    await bob.aput(flushed("b1", ("user", "bob likes coffee")), session_id="b1")
    query = [ChatMessage(content="what does the user like to drink, tea or coffee?")]
    assert await ana.aget(query, session_id="a2") == "- user: ana likes tea"
    assert await bob.aget(query, session_id="b2") == "- user: bob likes coffee"
    # per-session blocks (no user scope) recall only their own session
    private = make_block()
    await private.aput(flushed("p1", ("user", "p1 secret tea")), session_id="p1")
    assert await private.aget(query, session_id="p1") == "- user: p1 secret tea"
    assert await private.aget(query, session_id="p2") == ""
    assert await private.aget(query) == ""  # no session and no user: nothing to scope by, nothing read
    # a user scope that does not share across sessions
    own = make_block(user_id="ana", share_across_sessions=False)
    assert await own.aget(query, session_id="a1") == "- user: ana likes tea"
    assert await own.aget(query, session_id="a2") == ""


async def test_roles_filter_and_empty_inputs(make_block: MakeBlock) -> None:
    block = make_block(user_id="u", roles=["user"])
    await block.aput(flushed("s", ("user", "keep this"), ("assistant", "not this")), session_id="s")
    await block.aput([], session_id="s")
    assert (
        await block.aget([ChatMessage(content="keep this not this")], session_id="s") == "- user: keep this"
    )
    assert await block.aget([], session_id="s") == ""
    assert await block.aget(None, session_id="s") == ""
    assert (
        await block.aget([ChatMessage(blocks=[ImageBlock(url="https://example.com/a.png")])], session_id="s")
        == ""
    )


async def test_a_stored_message_is_situated_by_the_one_before_it(make_block: MakeBlock) -> None:
    # roles=["user"] stores the replies only; the assistant's question still situates the reply
    for window, name in ((1, "with"), (0, "without")):
        block = make_block(user_id=name, roles=["user"], context_window=window, similarity_top_k=1)
        noise = [("user", f"note {i} about the weather") for i in range(20)]
        await block.aput(
            flushed("s", *noise, ("assistant", "Have you ever been to Kyoto?"), ("user", "Yes, twice!")),
            session_id="s",
        )
        result = await block.core.recall("Kyoto", k=50, user_id=name, namespace=BLOCK_NAMESPACE)
        lexical = {h.memory.content: h.scores.lexical for h in result.hits}
        assert lexical["user: Yes, twice!"] == (1.0 if window else 0.0)
        if window:
            assert await block.aget([ChatMessage(content="Kyoto?")], session_id="s") == "- user: Yes, twice!"


async def test_aput_without_any_scope_is_refused(make_block: MakeBlock) -> None:
    block = make_block()
    with pytest.raises(InvalidMemoryError, match="scope"):
        await block.aput([ChatMessage(content="who am I?")])
    assert (await block.core.list(namespace=BLOCK_NAMESPACE)).memories == ()


async def test_oversized_message_is_a_typed_error_and_stores_nothing(
    valkey_url: str, unique_name: str
) -> None:
    block = ValkeyMemoryBlock.from_url(
        valkey_url,
        name=unique_name,
        embedder=HashingEmbedder(16),
        user_id="u",
        core_options={"max_content_chars": 100},
    )
    await block.asetup()
    try:
        with pytest.raises(InvalidMemoryError):
            await block.aput(flushed("s", ("user", "fine"), ("user", "x" * 500)), session_id="s")
        assert await block.core.count(namespace=BLOCK_NAMESPACE) == 0
    finally:
        await block.aclose()


async def test_wrong_dimension_embedder_is_a_typed_error(
    make_block: MakeBlock, valkey_url: str, unique_name: str
) -> None:
    wrong = make_block(user_id="u", embed_model=HashEmbedding(dims=8))  # the store is 64-dimensional
    with pytest.raises(InvalidVectorError):
        await wrong.aget([ChatMessage(content="anything")], session_id="s")
    # a second store under the same name with another dimension is refused at setup
    other = ValkeyMemoryBlock.from_url(valkey_url, name=unique_name, embed_model=HashEmbedding(dims=8))
    try:
        with pytest.raises(DimensionMismatchError) as info:
            await other.asetup()
        assert "dimension" in str(info.value)
    finally:
        await other.aclose()


async def test_failing_embed_model_is_an_embedding_error(make_block: MakeBlock) -> None:
    class Broken(HashEmbedding):
        async def _aget_query_embedding(self, query: str) -> list[float]:
            raise RuntimeError("model is down")

    block = make_block(user_id="u", embed_model=Broken())
    with pytest.raises(EmbeddingError, match="model is down"):
        await block.aget([ChatMessage(content="q")], session_id="s")


async def test_base_embedding_is_wrapped_once_and_batched(valkey_url: str, unique_name: str) -> None:
    model = HashEmbedding()
    block = ValkeyMemoryBlock.from_url(valkey_url, name=unique_name, embed_model=model, user_id="u")
    await block.asetup()  # learns the dimension with one probe call
    try:
        await block.aput(flushed("s", *[("user", f"fact {i}") for i in range(6)]), session_id="s")
        await block.aget([ChatMessage(content="fact 3")], session_id="s")
        assert model.calls == [("texts", 1), ("texts", 6), ("query", 1)]
    finally:
        await block.aclose()


def test_configuration_errors(valkey_url: str) -> None:
    with pytest.raises(ConfigurationError):
        ValkeyMemoryBlock.from_url(valkey_url)  # neither embed_model nor embedder
    with pytest.raises(ConfigurationError):
        ValkeyMemoryBlock.from_url(valkey_url, embed_model=HashEmbedding(), embedder=HashingEmbedder(8))
    core = AsyncMemoryStore.from_url(valkey_url, name="cfg", embedder=HashingEmbedder(8))
    for fields in ({"user_id": ""}, {"kind": "nonsense"}, {"template": "{nope}"}, {"namespace": ("a", "")}):
        with pytest.raises(ConfigurationError):
            ValkeyMemoryBlock(core, **fields)
    with pytest.raises(ConfigurationError):
        ValkeyMemoryBlock("valkey://x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        llamaindex_embedder(len)  # type: ignore[arg-type]


def test_truncate_drops_the_weakest_entries_first() -> None:
    def tokens(text: str) -> list[str]:
        return text.split()

    content = "- one two three\n- four five\n- six"  # 4 + 3 + 2 tokens, weakest last
    assert truncate(content, 1, tokens, "\n") == "- one two three\n- four five"
    assert truncate(content, 2, tokens, "\n") == "- one two three\n- four five"
    assert truncate(content, 3, tokens, "\n") == "- one two three"
    assert truncate(content, 5, tokens, "\n") == "- one two three"
    assert truncate(content, 6, tokens, "\n") is None
    assert truncate(content, 0, tokens, "\n") == content


async def test_atruncate_honours_the_token_budget(make_block: MakeBlock) -> None:
    block = make_block(user_id="u", similarity_top_k=5)
    await block.aput(
        flushed("s", *[("user", f"memory number {i} about seats") for i in range(5)]), session_id="s"
    )
    content = await block.aget([ChatMessage(content="memory about seats")], session_id="s")
    assert content.count("\n") == 4
    tokenizer = get_tokenizer()  # the block's default, and Memory's
    cut = await block.atruncate(content, 10)
    assert cut is not None and content.startswith(cut) and cut.count("\n") < 4
    assert len(tokenizer(content)) - len(tokenizer(cut)) >= 10
    assert len(tokenizer(content)) - len(tokenizer(cut + "\n- user: memory number 9 about seats")) < 10
    assert await block.atruncate(content, 10_000) is None
    assert await block.atruncate("", 5) is None


async def test_agent_scope_kind_importance_and_ttl_reach_the_core(make_block: MakeBlock) -> None:
    block = make_block(agent_id="planner", kind="episodic", importance=0.9, ttl=3600)
    await block.aput(flushed("s1", ("assistant", "the plan is to fly on Monday")), session_id="s1")
    (memory,) = (await block.core.list(namespace=BLOCK_NAMESPACE)).memories
    assert (memory.agent_id, memory.user_id, memory.kind.value, memory.importance) == (
        "planner", None, "episodic", 0.9,
    )  # fmt: skip
    assert memory.ttl == 3600 and memory.expires_at is not None
    other_agent = make_block(agent_id="critic")
    query = [ChatMessage(content="when do we fly?")]
    assert await block.aget(query, session_id="s9") == "- assistant: the plan is to fly on Monday"
    assert await other_agent.aget(query, session_id="s9") == ""
