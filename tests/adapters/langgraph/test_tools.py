"""The memory tools (manage / search) over ``ValkeyMemoryStore`` and LangGraph's ``InMemoryStore``.

Every behaviour runs on both stores, and a differential test checks that the same tool calls give the
same results on both. Graph tests run the tools in a ``ToolNode`` (``ToolRuntime.store``) and from a
node (``get_store()``), sync (``invoke``) and async (``ainvoke``, on ``AsyncValkeyMemoryStore``), next
to user tools that take the store through ``InjectedStore`` and ``ToolRuntime``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from langgraph.config import get_store
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedStore, ToolNode, ToolRuntime
from langgraph.store.base import BaseStore, SearchItem
from langgraph.store.memory import InMemoryStore
from pydantic import BaseModel, ValidationError

from agentmem_core import AgentMemError, ConfigurationError
from agentmem_core.embeddings import HashingEmbedder
from agentmem_langgraph import (
    AsyncValkeyMemoryStore,
    ManageMemoryTool,
    MemoryToolError,
    NamespaceTemplate,
    SearchMemoryTool,
    ValkeyMemoryStore,
    create_manage_memory_tool,
    create_search_memory_tool,
)

pytestmark = pytest.mark.integration

DIMS = 64
NS = ("memories", "{langgraph_user_id}")
ANA = {"configurable": {"langgraph_user_id": "ana"}}
BOB = {"configurable": {"langgraph_user_id": "bob"}}


def embed(texts: list[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in HashingEmbedder(DIMS).embed(texts)]


INDEX: Any = {"dims": DIMS, "embed": embed, "fields": ["content"]}


@pytest.fixture
def valkey_store(valkey_url: str, unique_name: str) -> Iterator[ValkeyMemoryStore]:
    with ValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX, ranking="similarity") as s:
        s.setup()
        yield s


@pytest.fixture
async def avalkey_store(valkey_url: str, unique_name: str) -> AsyncIterator[AsyncValkeyMemoryStore]:
    async with AsyncValkeyMemoryStore.from_url(valkey_url, name=unique_name, index=INDEX) as s:
        await s.setup()
        yield s


@pytest.fixture(params=["valkey", "in_memory"])
def store(request: pytest.FixtureRequest) -> BaseStore:
    if request.param == "valkey":
        valkey: BaseStore = request.getfixturevalue("valkey_store")
        return valkey
    return InMemoryStore(index=INDEX)


def call(tool_: Any, args: dict[str, Any], config: Any = ANA) -> ToolMessage:
    """Invoke a tool as a model's tool call (the result is a ToolMessage)."""
    message = tool_.invoke(
        {"name": tool_.name, "args": args, "id": uuid.uuid4().hex, "type": "tool_call"}, config
    )
    assert isinstance(message, ToolMessage)
    return message


def created_key(message: ToolMessage) -> str:
    text = str(message.content)
    assert text.startswith("created memory "), text
    return text.removeprefix("created memory ")


# -- manage ------------------------------------------------------------------------------------------------
def test_create_update_delete(store: BaseStore) -> None:
    manage = create_manage_memory_tool(NS, store=store)
    key = created_key(call(manage, {"content": "prefers window seats"}))
    uuid.UUID(key)  # a fresh UUID, as LangMem's
    item = store.get(("memories", "ana"), key)
    assert item is not None and item.value == {"content": "prefers window seats"}
    message = call(manage, {"action": "update", "id": key, "content": "prefers aisle seats"})
    assert message.content == f"updated memory {key}" and message.status == "success"
    updated = store.get(("memories", "ana"), key)
    assert updated is not None and updated.value == {"content": "prefers aisle seats"}
    if isinstance(store, ValkeyMemoryStore):  # InMemoryStore restarts created_at on every put
        assert updated.created_at == item.created_at
    assert call(manage, {"action": "delete", "id": key}).content == f"deleted memory {key}"
    assert store.get(("memories", "ana"), key) is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"action": "update", "id": "nope", "content": "x"}, "There is no MEMORY with ID 'nope'"),
        ({"action": "delete", "id": "nope"}, "There is no MEMORY with ID 'nope'"),
        ({"action": "create", "id": "mine", "content": "x"}, "cannot provide a MEMORY ID when creating"),
        ({"action": "update", "content": "x"}, "must provide a MEMORY ID"),
        ({"action": "create"}, "must provide the content"),
    ],
)
def test_mistakes_go_back_to_the_model_and_write_nothing(
    store: BaseStore, args: dict[str, Any], error: str
) -> None:
    manage = create_manage_memory_tool(NS, store=store)
    message = call(manage, args)
    assert message.status == "error" and error in str(message.content)
    assert store.search(("memories",)) == []


def test_ids_of_another_namespace_are_unknown(store: BaseStore) -> None:
    manage = create_manage_memory_tool(NS, store=store)
    key = created_key(call(manage, {"content": "ana's secret"}))
    for action in ("update", "delete"):
        message = call(manage, {"action": action, "id": key, "content": "bob was here"}, BOB)
        assert message.status == "error"
    item = store.get(("memories", "ana"), key)
    assert item is not None and item.value == {"content": "ana's secret"}
    assert store.search(("memories", "bob")) == []


def test_actions_permitted_shape_the_schema(store: BaseStore) -> None:
    manage = create_manage_memory_tool(NS, store=store, actions_permitted=("create", "update"))
    schema = manage.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert schema["properties"]["action"]["enum"] == ["create", "update"]
    assert set(schema["properties"]) == {"content", "action", "id"}  # runtime is hidden from the model
    assert manage.description.startswith("Create or update a memory")
    with pytest.raises(ValidationError):
        manage.invoke({"action": "delete", "id": "x"}, ANA)
    only_update = create_manage_memory_tool(NS, store=store, actions_permitted=("update",))
    assert only_update.tool_call_schema.model_json_schema()["properties"]["action"]["default"] == "update"  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="cannot be empty"):
        create_manage_memory_tool(NS, actions_permitted=())
    with pytest.raises(ConfigurationError, match="unknown actions"):
        ManageMemoryTool(namespace=NS, actions_permitted=("create", "purge"))  # type: ignore[arg-type]


class Profile(BaseModel):
    name: str
    seat: str | None = None


def test_a_content_schema(store: BaseStore) -> None:
    manage = create_manage_memory_tool(NS, store=store, schema=Profile)
    schema = manage.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert "Profile" in json.dumps(schema)
    key = created_key(call(manage, {"content": {"name": "Ana", "seat": "window"}}))
    item = store.get(("memories", "ana"), key)
    assert item is not None and item.value == {"content": {"name": "Ana", "seat": "window"}}
    with pytest.raises(ValidationError):  # not a Profile (ToolNode reports this to the model)
        call(manage, {"content": {"seat": "aisle"}})
    assert len(store.search(("memories", "ana"))) == 1


# -- search ------------------------------------------------------------------------------------------------
def test_search(store: BaseStore) -> None:
    manage = create_manage_memory_tool(NS, store=store)
    search = create_search_memory_tool(NS, store=store)
    for text in ("prefers window seats", "is vegetarian", "hotel budget 150 euros"):
        call(manage, {"content": text})
    call(manage, {"content": "prefers aisle seats"}, BOB)
    found = json.loads(str(call(search, {"query": "window seats", "limit": 2}).content))
    assert [f["value"]["content"] for f in found][0] == "prefers window seats"
    assert len(found) == 2 and all(f["namespace"] == ["memories", "ana"] for f in found)
    assert found[0]["score"] >= found[1]["score"]
    assert set(found[0]) == {"namespace", "key", "value", "created_at", "updated_at", "score"}
    page = json.loads(str(call(search, {"query": "window seats", "limit": 2, "offset": 1}).content))
    assert page[0]["key"] == found[1]["key"]
    filtered = json.loads(
        str(call(search, {"query": "seats", "filter": {"content": "is vegetarian"}}).content)
    )
    assert [f["value"]["content"] for f in filtered] == ["is vegetarian"]
    bad = call(search, {"query": "x", "filter": {"content": {"$regex": "."}}})
    assert bad.status == "error" and "search failed" in str(bad.content)
    with pytest.raises(ValidationError):  # beyond the schema's bounds (ToolNode tells the model)
        call(search, {"query": "x", "limit": 0})


def test_search_content_and_artifact(store: BaseStore) -> None:
    create_manage_memory_tool(NS, store=store).invoke({"content": "likes tea"}, ANA)
    search = create_search_memory_tool(NS, store=store, response_format="content_and_artifact")
    message = call(search, {"query": "tea"})
    assert isinstance(message.artifact, list) and isinstance(message.artifact[0], SearchItem)
    assert message.artifact[0].value == {"content": "likes tea"}
    assert json.loads(str(message.content))[0]["key"] == message.artifact[0].key


def test_search_sees_the_namespace_and_below_never_a_sibling(store: BaseStore) -> None:
    store.put(("memories", "ana"), "a", {"content": "seat"})
    store.put(("memories", "ana", "work"), "b", {"content": "seat"})
    store.put(("memories", "anabel"), "c", {"content": "seat"})
    store.put(("memories",), "d", {"content": "seat"})
    search = create_search_memory_tool(NS, store=store)
    found = json.loads(str(search.invoke({"query": "seat"}, ANA)))
    assert sorted(f["key"] for f in found) == ["a", "b"]


def test_the_same_calls_give_the_same_results_on_both_stores(valkey_store: ValkeyMemoryStore) -> None:
    reference = InMemoryStore(index=INDEX)
    results: dict[str, list[Any]] = {}
    texts = ["window seat", "aisle seat please", "vegetarian food", "seat upgrade on long flights", "tea"]
    for name, target in (("valkey", valkey_store), ("reference", reference)):
        manage = create_manage_memory_tool(NS, store=target)
        search = create_search_memory_tool(NS, store=target, response_format="content_and_artifact")
        keys = [created_key(call(manage, {"content": t})) for t in texts]
        call(manage, {"action": "update", "id": keys[1], "content": "aisle seat, always"})
        call(manage, {"action": "delete", "id": keys[4]})
        out = []
        for args in ({"query": "seat"}, {"query": "seat", "limit": 2, "offset": 1}, {"query": "food"}):
            items = call(search, args).artifact
            out.append([(keys.index(i.key), i.value, round(i.score, 5)) for i in items])
        results[name] = out
    assert results["valkey"] == results["reference"]


# -- namespaces, stores, injection -------------------------------------------------------------------------
def test_namespace_templates() -> None:
    template = NamespaceTemplate.parse(("org", "{team}", "{langgraph_user_id}"))
    assert template.variables == ("team", "langgraph_user_id")
    filled = template.fill({"configurable": {"team": "a.b", "langgraph_user_id": "Ana María *", "other": 1}})
    assert filled == ("org", "a.b", "Ana María *")  # values are labels as given: never patterns
    assert NamespaceTemplate.parse("memories").fill(None) == ("memories",)
    with pytest.raises(ConfigurationError, match="needs 'team'"):
        template.fill({"configurable": {"langgraph_user_id": "ana"}})
    for bad_value in ("", 7, None, ["ana"]):
        with pytest.raises(ConfigurationError, match="non-empty string"):
            template.fill({"configurable": {"team": bad_value, "langgraph_user_id": "ana"}})
    for bad in ((), ("",), ("a{b}",), ("{a}{b}",), ("x", 3)):
        with pytest.raises(ConfigurationError):
            NamespaceTemplate.parse(bad)  # type: ignore[arg-type]


def test_without_a_store_or_a_config(store: BaseStore) -> None:
    with pytest.raises(ConfigurationError, match="no store for the memory tool"):
        create_manage_memory_tool(NS).invoke({"content": "x"}, ANA)
    with pytest.raises(ConfigurationError, match="no store for the memory tool"):
        create_search_memory_tool(NS).invoke({"query": "x"}, ANA)
    with pytest.raises(ConfigurationError, match="langgraph_user_id"):
        create_manage_memory_tool(NS, store=store).invoke({"content": "x"})
    assert store.search(("memories",)) == []


def runtime_for(store: BaseStore | None) -> ToolRuntime[Any, Any]:
    return ToolRuntime(
        state={}, context=None, config={}, stream_writer=lambda _: None, tool_call_id="1", store=store
    )


async def test_the_runtime_store_is_used(store: BaseStore) -> None:
    manage, search = create_manage_memory_tool(NS), create_search_memory_tool(NS)
    key = created_key(call(manage, {"content": "likes tea", "runtime": runtime_for(store)}))
    assert store.get(("memories", "ana"), key) is not None
    assert (
        json.loads(await search.ainvoke({"query": "tea", "runtime": runtime_for(store)}, ANA))[0]["key"]
        == key
    )
    # the tool's own store wins over the runtime's
    other = InMemoryStore()
    own = create_manage_memory_tool(NS, store=other)
    created_key(call(own, {"content": "x", "runtime": runtime_for(store)}))
    assert len(other.search(("memories", "ana"))) == 1 and len(store.search(("memories", "ana"))) == 1
    # a runtime without a store, outside a graph: no store at all
    with pytest.raises(ConfigurationError):
        manage.invoke({"content": "x", "runtime": runtime_for(None)}, ANA)


def test_a_forged_runtime_is_refused(store: BaseStore) -> None:
    manage = create_manage_memory_tool(NS, store=None)
    message = call(manage, {"content": "x", "runtime": {"store": "mine"}})
    assert message.status == "error" and "supplied by LangGraph" in str(message.content)


# -- graphs ------------------------------------------------------------------------------------------------
def tool_calls(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "messages": [
            AIMessage(
                content="",
                tool_calls=[
                    {"name": n, "args": a, "id": f"c{i}", "type": "tool_call"}
                    for i, (n, a) in enumerate(calls)
                ],
            )
        ]
    }


@tool
def save_note(note: str, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """Save a note."""
    store.put(("notes",), "n", {"content": note})
    return "saved"


@tool
def read_note(runtime: ToolRuntime) -> str:
    """Read the note."""
    assert runtime.store is not None
    item = runtime.store.get(("notes",), "n")
    return "none" if item is None else str(item.value["content"])


@tool
async def asave_note(note: str, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """Save a note (async)."""
    await store.aput(("notes",), "n", {"content": note})
    return "saved"


@tool
async def aread_note(runtime: ToolRuntime) -> str:
    """Read the note (async)."""
    assert runtime.store is not None
    item = await runtime.store.aget(("notes",), "n")
    return "none" if item is None else str(item.value["content"])


def tool_graph(store: BaseStore, tools: list[Any]) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "tools")
    builder.add_edge("tools", END)
    return builder.compile(store=store)


def contents(state: dict[str, Any]) -> list[str]:
    return [str(m.content) for m in state["messages"] if isinstance(m, ToolMessage)]


def test_tools_in_a_sync_graph(valkey_store: ValkeyMemoryStore) -> None:
    graph = tool_graph(
        valkey_store, [create_manage_memory_tool(NS), create_search_memory_tool(NS), save_note, read_note]
    )
    out = graph.invoke(
        tool_calls(("manage_memory", {"content": "likes tea"}), ("save_note", {"note": "hi"})), ANA
    )
    key = contents(out)[0].removeprefix("created memory ")
    assert contents(out)[1] == "saved"
    out = graph.invoke(tool_calls(("search_memory", {"query": "tea"}), ("read_note", {})), ANA)
    found, note = contents(out)
    assert json.loads(found)[0]["key"] == key and note == "hi"
    assert json.loads(contents(graph.invoke(tool_calls(("search_memory", {"query": "tea"})), BOB))[0]) == []


async def test_tools_in_an_async_graph(avalkey_store: AsyncValkeyMemoryStore) -> None:
    tools = [create_manage_memory_tool(NS), create_search_memory_tool(NS), asave_note, aread_note]
    graph = tool_graph(avalkey_store, tools)
    out = await graph.ainvoke(
        tool_calls(("manage_memory", {"content": "likes tea"}), ("asave_note", {"note": "hi"})), ANA
    )
    key = contents(out)[0].removeprefix("created memory ")
    out = await graph.ainvoke(tool_calls(("search_memory", {"query": "tea"}), ("aread_note", {})), ANA)
    found, note = contents(out)
    assert json.loads(found)[0]["key"] == key and note == "hi"
    # a mistake reaches the model as an error message, and the graph goes on
    out = await graph.ainvoke(tool_calls(("manage_memory", {"action": "delete", "id": "nope"})), ANA)
    assert out["messages"][-1].status == "error"
    # sync tools in ainvoke run in worker threads: the async store hops onto its loop
    out = await tool_graph(avalkey_store, [save_note, read_note]).ainvoke(tool_calls(("read_note", {})), ANA)
    assert contents(out) == ["hi"]


def node_graph(store: BaseStore, *, asynchronous: bool) -> Any:
    manage, search = create_manage_memory_tool(NS), create_search_memory_tool(NS)

    def node(state: MessagesState) -> dict[str, Any]:
        assert get_store() is store
        created = manage.invoke({"content": str(state["messages"][-1].content)})
        found = search.invoke({"query": str(state["messages"][-1].content)})
        return {"messages": [AIMessage(content=created), AIMessage(content=found)]}

    async def anode(state: MessagesState) -> dict[str, Any]:
        assert get_store() is store
        created = await manage.ainvoke({"content": str(state["messages"][-1].content)})
        found = await search.ainvoke({"query": str(state["messages"][-1].content)})
        return {"messages": [AIMessage(content=created), AIMessage(content=found)]}

    builder = StateGraph(MessagesState)
    builder.add_node("remember", anode if asynchronous else node)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    return builder.compile(store=store)


def test_tools_called_from_a_node_use_get_store(valkey_store: ValkeyMemoryStore) -> None:
    out = node_graph(valkey_store, asynchronous=False).invoke({"messages": [("user", "likes tea")]}, ANA)
    key = str(out["messages"][-2].content).removeprefix("created memory ")
    assert json.loads(str(out["messages"][-1].content))[0]["key"] == key
    assert valkey_store.get(("memories", "ana"), key) is not None


async def test_tools_called_from_an_async_node_use_get_store(avalkey_store: AsyncValkeyMemoryStore) -> None:
    out = await node_graph(avalkey_store, asynchronous=True).ainvoke(
        {"messages": [("user", "likes tea")]}, BOB
    )
    key = str(out["messages"][-2].content).removeprefix("created memory ")
    assert json.loads(str(out["messages"][-1].content))[0]["key"] == key
    assert await avalkey_store.aget(("memories", "bob"), key) is not None


def test_tool_classes_are_usable_directly(store: BaseStore) -> None:
    search = SearchMemoryTool(
        namespace="shared", store=store, name="recall_shared", instructions="Use it often."
    )
    assert search.name == "recall_shared" and search.description.endswith("Use it often.")
    ManageMemoryTool(namespace="shared", store=store).invoke({"content": "x"})
    assert [f["value"] for f in json.loads(search.invoke({"query": "x"}))] == [{"content": "x"}]
    assert issubclass(MemoryToolError, AgentMemError) and issubclass(MemoryToolError, ToolException)
