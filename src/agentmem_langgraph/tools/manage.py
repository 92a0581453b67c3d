"""``ManageMemoryTool``: create, update and delete memories in a LangGraph ``BaseStore`` (LangMem's shape)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Optional, get_args

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from agentmem_core.errors import ConfigurationError
from agentmem_langgraph.tools._common import (
    InjectedRuntime,
    MemoryToolError,
    NamespaceTemplate,
    latest_human_text,
    resolve_store,
)

__all__ = ["DEFAULT_MANAGE_INSTRUCTIONS", "Action", "ManageMemoryTool", "ManageStep", "manage_args_schema"]

Action = Literal["create", "update", "delete"]
"""What a call of the manage tool does."""

DEFAULT_MANAGE_INSTRUCTIONS = (
    "Proactively call this tool when you:\n\n"
    "1. Identify a new USER preference.\n"
    "2. Receive an explicit USER request to remember something or otherwise alter your behavior.\n"
    "3. Are working and want to record important context.\n"
    "4. Identify that an existing MEMORY is incorrect or outdated.\n"
)
"""LangMem's default guidance for when to call the manage tool."""

_MAX_ID_CHARS = 512  # the longest key the stores accept


def manage_args_schema(content_schema: Any, actions: Sequence[Action]) -> type[BaseModel]:
    """The tool's argument model: ``content`` (of ``content_schema``), ``action`` and ``id``.

    ``runtime`` is LangGraph's ``ToolRuntime``, injected by ``ToolNode`` and hidden from the model.
    """
    action_type: Any = Literal.__getitem__(tuple(actions))  # a Literal built from the permitted actions
    default = "create" if "create" in actions else actions[0]
    fields: dict[str, Any] = {
        "content": (
            Optional[content_schema],  # noqa: UP045 (a runtime type expression: Optional works on any type)
            Field(default=None, description="The memory to create, or the new content of an updated one."),
        ),
        "action": (action_type, Field(default=default, description="What to do with the memory.")),
        "id": (
            Optional[str],  # noqa: UP045
            Field(
                default=None,
                min_length=1,
                max_length=_MAX_ID_CHARS,
                description="The MEMORY ID of an existing memory (to update or delete it); omit to create.",
            ),
        ),
        "runtime": (InjectedRuntime, Field(default=None, exclude=True)),
    }
    model: type[BaseModel] = create_model("ManageMemoryInput", **fields)
    return model


@dataclass(frozen=True)
class ManageStep:
    """What one call does, decided before any I/O.

    Attributes:
        key: the item key (the MEMORY ID).
        value: the value to put, or ``None`` to delete.
        must_exist: the item must exist first (update, delete).
        message: what the tool answers when it is done.
    """

    key: str
    value: dict[str, Any] | None
    must_exist: bool
    message: str


def plan_manage(
    permitted: Sequence[Action], action: str, content: Any, memory_id: str | None, new_id: str
) -> ManageStep:
    """Decide one call of the manage tool.

    Raises:
        MemoryToolError: an action that is not permitted, an id with ``create``, no id with
            ``update`` / ``delete``, or no content with ``create`` / ``update``.
    """
    if action not in permitted:
        raise MemoryToolError(f"Invalid action {action!r}: use one of {list(permitted)}")
    if action == "create" and memory_id is not None:
        raise MemoryToolError(
            "You cannot provide a MEMORY ID when creating a MEMORY. "
            "Please try again, omitting the id argument."
        )
    if action in ("update", "delete") and not memory_id:
        raise MemoryToolError("You must provide a MEMORY ID when deleting or updating a MEMORY.")
    if action == "delete":
        assert memory_id is not None
        return ManageStep(memory_id, None, True, f"deleted memory {memory_id}")
    if content is None:
        raise MemoryToolError(f"You must provide the content to {action} a MEMORY.")
    key = new_id if action == "create" else memory_id
    assert key is not None
    return ManageStep(key, {"content": _json_content(content)}, action == "update", f"{action}d memory {key}")


def with_context(step: ManageStep, context: str | None) -> ManageStep:
    """``step`` with the message that prompted it stored at ``value["context"]`` (when both exist)."""
    if step.value is None or context is None:
        return step
    return replace(step, value={**step.value, "context": context})


def _json_content(content: Any) -> Any:
    if isinstance(content, BaseModel):
        return content.model_dump(mode="json")
    return content


def _missing(step: ManageStep) -> MemoryToolError:
    return MemoryToolError(f"There is no MEMORY with ID {step.key!r}; search your memories for its ID.")


class ManageMemoryTool(BaseTool):
    """Create, update and delete memories in a LangGraph ``BaseStore`` (LangMem's ``manage_memory``).

    A memory is the item ``{"content": <content>}`` under a key (the MEMORY ID, a new UUID on create)
    in ``namespace``, whose ``{name}`` labels are filled from the run config's ``configurable``. The
    store is ``store`` if given, else the graph's (``ToolRuntime.store`` under ``ToolNode``, or
    ``get_store()`` in a node), so it works with ``ValkeyMemoryStore`` and ``InMemoryStore`` alike.
    Updating or deleting a MEMORY ID that does not exist is an error the model sees (nothing is written).

    Attributes:
        namespace: the namespace template, e.g. ``("memories", "{langgraph_user_id}")``.
        store: a store to use instead of the graph's.
        actions_permitted: the actions the model may take.
        content_schema: the type of ``content`` (``str``, or e.g. a pydantic model: stored as its JSON).
        instructions: when the model should call the tool (part of the description).
        record_context: on create and update inside a graph, also store the latest human message at
            ``value["context"]``: what the memory answered. ``ValkeyMemoryStore`` matches its words in
            composite searches (``context_fields``), so a terse memory ("yes, twice") is still found by
            the question it answered; ``InMemoryStore`` keeps it as part of the value.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "manage_memory"
    description: str = ""
    namespace: tuple[str, ...]
    store: BaseStore | None = Field(default=None, exclude=True)
    actions_permitted: tuple[Action, ...] = ("create", "update", "delete")
    content_schema: Any = str
    instructions: str = DEFAULT_MANAGE_INSTRUCTIONS
    handle_tool_error: Any = True
    record_context: bool = True

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "namespace" not in data:
            raise ConfigurationError(
                "ManageMemoryTool needs namespace=, e.g. ('memories', '{langgraph_user_id}')"
            )
        data["namespace"] = NamespaceTemplate.parse(data["namespace"]).template
        actions = tuple(data.get("actions_permitted") or ())
        if "actions_permitted" in data and not actions:
            raise ConfigurationError("actions_permitted cannot be empty")
        actions = actions or get_args(Action)
        unknown = [a for a in actions if a not in get_args(Action)]
        if unknown:
            raise ConfigurationError(f"unknown actions {unknown}; permitted: {list(get_args(Action))}")
        data["actions_permitted"] = actions
        if data.get("args_schema") is None:
            data["args_schema"] = manage_args_schema(data.get("content_schema", str), actions)
        if not data.get("description"):
            instructions = data.get("instructions", DEFAULT_MANAGE_INSTRUCTIONS)
            data["description"] = _description(actions, instructions)
        return data

    @property
    def template(self) -> NamespaceTemplate:
        """The namespace template."""
        return NamespaceTemplate(self.namespace)

    def _run(
        self,
        content: Any = None,
        action: str = "create",
        id: str | None = None,
        runtime: InjectedRuntime = None,
        *,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> str:
        step = plan_manage(self.actions_permitted, action, content, id, str(uuid.uuid4()))
        if self.record_context:
            step = with_context(step, latest_human_text(runtime))
        namespace = self.template.fill(config)
        store = resolve_store(self.store, runtime)
        if step.must_exist and store.get(namespace, step.key) is None:
            raise _missing(step)
        if step.value is None:
            store.delete(namespace, step.key)
        else:
            store.put(namespace, step.key, step.value)
        return step.message

    async def _arun(
        self,
        content: Any = None,
        action: str = "create",
        id: str | None = None,
        runtime: InjectedRuntime = None,
        *,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> str:
        step = plan_manage(self.actions_permitted, action, content, id, str(uuid.uuid4()))
        if self.record_context:
            step = with_context(step, latest_human_text(runtime))
        namespace = self.template.fill(config)
        store = resolve_store(self.store, runtime)
        if step.must_exist and await store.aget(namespace, step.key) is None:
            raise _missing(step)
        if step.value is None:
            await store.adelete(namespace, step.key)
        else:
            await store.aput(namespace, step.key, step.value)
        return step.message


def _description(actions: Sequence[str], instructions: str) -> str:
    if len(actions) == 1:
        verbs = f"{actions[0].capitalize()} a memory"
    elif len(actions) == 2:
        verbs = f"{actions[0].capitalize()} or {actions[1]} a memory"
    else:
        verbs = f"{', '.join((actions[0].capitalize(), *actions[1:-1]))}, or {actions[-1]} a memory"
    return (
        f"{verbs} to persist across conversations.\n"
        "Include the MEMORY ID when updating or deleting a MEMORY. Omit it when creating a new MEMORY: "
        f"it will be created for you.\n{instructions}"
    )
