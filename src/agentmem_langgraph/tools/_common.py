"""What the memory tools share: namespace templates, the store lookup, errors and serialisation (no I/O)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import InjectedToolArg, ToolException
from langgraph.config import get_store
from langgraph.prebuilt import ToolRuntime
from langgraph.store.base import BaseStore, Item, SearchItem

from agentmem_core.errors import ConfigurationError, InvalidMemoryError

__all__ = [
    "InjectedRuntime",
    "MemoryToolError",
    "NamespaceTemplate",
    "item_to_dict",
    "items_to_json",
    "latest_human_text",
    "resolve_store",
]

InjectedRuntime = Annotated[Any, InjectedToolArg()]
"""The ``runtime`` argument: LangGraph's ``ToolRuntime``, injected by ``ToolNode`` (hidden from the model).

It is declared both in the argument schema (``ToolNode`` finds what to inject there) and on ``_run`` /
``_arun`` (``BaseTool`` passes injected arguments through by their signature). It stays ``Any``: the
tool checks it is a real ``ToolRuntime`` when it reads it, so a model cannot forge one."""

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MemoryToolError(InvalidMemoryError, ToolException):
    """A memory tool was called with arguments it cannot act on (nothing was written).

    It is a ``ToolException``, so the tools (``handle_tool_error=True``) hand its message back to the
    model as the tool's result instead of failing the run: the model can correct the call.
    """


@dataclass(frozen=True)
class NamespaceTemplate:
    """A namespace whose ``{name}`` labels are filled from the run config's ``configurable``.

    ``("memories", "{langgraph_user_id}")`` with ``{"configurable": {"langgraph_user_id": "ana"}}``
    is ``("memories", "ana")``. A label is either literal or one whole ``{name}``; a value must be a
    non-empty string (never a wildcard or a path), and a missing value is an error, never a shorter
    (wider) namespace.
    """

    template: tuple[str, ...]

    @classmethod
    def parse(cls, template: str | Sequence[str] | NamespaceTemplate) -> NamespaceTemplate:
        """Validate a namespace template.

        Raises:
            ConfigurationError: an empty template, a non-string or empty label, or a label that mixes
                text with ``{...}``.
        """
        if isinstance(template, NamespaceTemplate):
            return template
        labels = (template,) if isinstance(template, str) else tuple(template)
        if not labels:
            raise ConfigurationError("a memory namespace needs at least one label")
        for label in labels:
            if not isinstance(label, str) or not label:
                raise ConfigurationError(f"namespace labels must be non-empty strings, got {label!r}")
            if ("{" in label or "}" in label) and not _VARIABLE.fullmatch(label):
                raise ConfigurationError(
                    f"namespace label {label!r}: a template label is one whole '{{name}}' (e.g. "
                    "'{langgraph_user_id}'); literal labels cannot contain braces"
                )
        return cls(labels)

    @property
    def variables(self) -> tuple[str, ...]:
        """The configurable keys the template needs."""
        return tuple(m.group(1) for label in self.template if (m := _VARIABLE.fullmatch(label)))

    def fill(self, config: RunnableConfig | None) -> tuple[str, ...]:
        """The namespace for a run.

        Raises:
            ConfigurationError: a variable missing from ``config["configurable"]``, or not a non-empty
                string.
        """
        if not self.variables:
            return self.template
        configurable: Mapping[str, Any] = (config or {}).get("configurable") or {}
        out = []
        for label in self.template:
            match = _VARIABLE.fullmatch(label)
            if match is None:
                out.append(label)
                continue
            name = match.group(1)
            if name not in configurable:
                raise ConfigurationError(
                    f"the memory namespace needs {name!r} in the run config's 'configurable' "
                    f"(e.g. config={{'configurable': {{{name!r}: 'user-123'}}}}); "
                    f"it has {sorted(configurable)}"
                )
            value = configurable[name]
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"configurable[{name!r}] must be a non-empty string, got {value!r}")
            out.append(value)
        return tuple(out)


def resolve_store(explicit: BaseStore | None, runtime: Any) -> BaseStore:
    """The store a tool call uses: the tool's own, else the graph's (``ToolRuntime.store``, ``get_store()``).

    Raises:
        MemoryToolError: ``runtime`` is not a LangGraph ``ToolRuntime`` (a model cannot supply it).
        ConfigurationError: no store is available.
    """
    if explicit is not None:
        return explicit
    if runtime is not None:
        if not isinstance(runtime, ToolRuntime):
            raise MemoryToolError("'runtime' is supplied by LangGraph, not by the caller")
        if runtime.store is not None:
            return runtime.store
    try:
        store = get_store()
    except (RuntimeError, KeyError):  # outside a graph run: no runnable context, or no runtime in it
        store = None
    if store is None:
        raise ConfigurationError(
            "no store for the memory tool: pass store= to the tool, or run it in a LangGraph graph "
            "compiled with store=..."
        )
    return store


def latest_human_text(runtime: Any) -> str | None:
    """The text of the latest human message in the graph state the tool runs in, if any.

    ``runtime`` is LangGraph's ``ToolRuntime`` (``None`` outside a ``ToolNode``); its state is a dict
    or an object with ``messages`` (``MessagesState`` and its pydantic or dataclass forms).
    """
    if not isinstance(runtime, ToolRuntime):
        return None
    state = runtime.state
    messages = state.get("messages") if isinstance(state, Mapping) else getattr(state, "messages", None)
    if not isinstance(messages, Sequence):
        return None
    for message in reversed(messages):
        if isinstance(message, BaseMessage) and message.type == "human":
            text = message.text
            return text if text.strip() else None
    return None


def item_to_dict(item: Item) -> dict[str, Any]:
    """A store item as JSON-able data for the model (``score`` only for search results)."""
    out: dict[str, Any] = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": item.value,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    if isinstance(item, SearchItem):
        out["score"] = item.score
    return out


def items_to_json(items: Sequence[Item]) -> str:
    """Items as one JSON text (what the search tool returns to the model)."""
    return json.dumps([item_to_dict(i) for i in items], ensure_ascii=False, default=str)
