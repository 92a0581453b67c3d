"""Language models for consolidation: summarizers and fact extractors over OpenAI or any framework's model.

* :class:`OpenAISummarizer` and :class:`OpenAIFactExtractor` talk to the OpenAI chat completions API (or
  an OpenAI-compatible server) through the ``openai`` package, with their own retry policy and strict
  structured outputs for the facts.
* :class:`ChatModelSummarizer` and :class:`ChatModelFactExtractor` adapt a model you already have: a
  LangChain chat model (or any LangChain runnable), a LlamaIndex LLM, a CrewAI LLM, or a plain function
  ``fn(messages: list[dict[str, str]]) -> str``, sync or async. The extractor asks for the facts JSON in
  the prompt and reads it from the reply (a fenced ```json block is fine).
* :func:`summarizer_from` and :func:`extractor_from` take any of these (or a ready
  :class:`~agentmem_core.consolidation.Summarizer` / :class:`~agentmem_core.consolidation.FactExtractor`)
  and return the provider for it::

      from langchain_openai import ChatOpenAI

      summarizer = summarizer_from(ChatOpenAI(model="gpt-4o-mini"))
      extractor = extractor_from(lambda messages: my_llm(messages))

Every provider sends the messages of :mod:`agentmem_core.consolidation.prompts`. No framework is imported
by this module: a model's kind is recognised from its class hierarchy, and a framework module is imported
only to call a model of that framework. Any failure of the model or its framework is raised as
:class:`~agentmem_core.errors.ModelError` (chained to the original); agentmem's own errors pass through.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from agentmem_core.consolidation._openai_models import (
    DEFAULT_MAX_INPUT_CHARS,
    OpenAIFactExtractor,
    OpenAISummarizer,
    _summary_request,
)
from agentmem_core.consolidation._replies import content_text, parse_facts, summary_text
from agentmem_core.consolidation._types import ExtractedFact, FactExtractor, KnownFact, Numbered, Summarizer
from agentmem_core.consolidation.prompts import PROMPT_VERSION, Message, extraction_messages
from agentmem_core.errors import AgentMemError, ConfigurationError, ModelError

__all__ = [
    "DEFAULT_MAX_INPUT_CHARS",
    "AsyncChatFn",
    "ChatFn",
    "ChatModelFactExtractor",
    "ChatModelSummarizer",
    "OpenAIFactExtractor",
    "OpenAISummarizer",
    "extractor_from",
    "parse_facts",
    "summarizer_from",
]

ChatFn = Callable[[list[Message]], str]
"""A plain chat function: ``[{"role": ..., "content": ...}, ...]`` in, the reply text out."""

AsyncChatFn = Callable[[list[Message]], Awaitable[str]]
"""The async form of :data:`ChatFn`."""


def _has_base(obj: object, package: str, names: frozenset[str]) -> bool:
    """Whether ``obj``'s class derives from a class ``names`` of ``package``, importing nothing."""
    return any(
        cls.__name__ in names and cls.__module__.partition(".")[0] == package for cls in type(obj).__mro__
    )


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


def _name(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


class _Backend:
    """One way to send chat messages to a model and get its reply text, sync and async."""

    supports_sync = True

    def __init__(self, model: Any, who: str) -> None:
        self.model = model
        self.who = who

    def send(self, messages: list[Message]) -> str:
        raise NotImplementedError

    async def asend(self, messages: list[Message]) -> str:
        raise NotImplementedError

    def _failed(self, exc: Exception) -> ModelError:
        return ModelError(f"{self.who} failed: {type(exc).__name__}: {exc}")

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except AgentMemError:
            raise
        except Exception as exc:  # a model or framework may raise anything; keep it as the cause
            raise self._failed(exc) from exc

    async def _await(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except AgentMemError:
            raise
        except Exception as exc:  # a model or framework may raise anything; keep it as the cause
            raise self._failed(exc) from exc

    def _text(self, reply: object) -> str:
        if isinstance(reply, str):
            return reply
        raise ModelError(f"{self.who} replied with {type(reply).__name__}, not text")


class _LangChain(_Backend):
    # A chat model takes role/content dicts as they are (langchain_core converts them to messages).
    def send(self, messages: list[Message]) -> str:
        return self._text(self._call(self.model.invoke, messages))

    async def asend(self, messages: list[Message]) -> str:
        return self._text(await self._await(self._call(self.model.ainvoke, messages)))

    def _text(self, reply: object) -> str:
        if isinstance(reply, str):  # an LLM (not chat) model, or a chain ending in a string parser
            return reply
        if hasattr(reply, "content"):  # an AIMessage: a string or a list of content blocks
            return content_text(reply.content, self.who)
        raise ModelError(f"{self.who} replied with {type(reply).__name__}, not a message")


class _LlamaIndex(_Backend):
    def send(self, messages: list[Message]) -> str:
        return self._text(self._call(self.model.chat, self._messages(messages)))

    async def asend(self, messages: list[Message]) -> str:
        return self._text(await self._await(self._call(self.model.achat, self._messages(messages))))

    @staticmethod
    def _messages(messages: list[Message]) -> list[Any]:
        from llama_index.core.llms import ChatMessage  # the model's own framework: installed

        return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]

    def _text(self, reply: object) -> str:
        content = getattr(getattr(reply, "message", None), "content", None)
        if not isinstance(content, str):
            raise ModelError(f"{self.who} replied without text content ({type(reply).__name__})")
        return content


class _CrewAI(_Backend):
    # crewai.LLM.call is sync (its acall is not implemented by every provider): async runs it in a thread.
    def send(self, messages: list[Message]) -> str:
        return self._text(self._call(self.model.call, messages))

    async def asend(self, messages: list[Message]) -> str:
        return await asyncio.to_thread(self.send, messages)

    def _text(self, reply: object) -> str:
        if isinstance(reply, str):
            return reply
        raise ModelError(f"{self.who} replied with {type(reply).__name__} (a tool call?), not text")


class _Function(_Backend):
    def __init__(self, model: Any, who: str) -> None:
        super().__init__(model, who)
        self.supports_sync = not _is_async(model)

    def send(self, messages: list[Message]) -> str:
        if not self.supports_sync:
            raise ConfigurationError(_async_only(self.who))
        reply = self._call(self.model, messages)
        if inspect.isawaitable(reply):
            if inspect.iscoroutine(reply):
                reply.close()  # never awaited: close it, or Python warns about it at garbage collection
            raise ConfigurationError(_async_only(self.who))
        return self._text(reply)

    async def asend(self, messages: list[Message]) -> str:
        if self.supports_sync:
            reply = await asyncio.to_thread(self._call, self.model, messages)
        else:
            reply = self._call(self.model, messages)
        if inspect.isawaitable(reply):
            reply = await self._await(reply)
        return self._text(reply)


def _async_only(who: str) -> str:
    return f"{who} is async (or returns an awaitable): call asummarize()/aextract(), or pass a sync function"


_LANGCHAIN = frozenset({"Runnable"})
_LLAMA_INDEX = frozenset({"LLM"})
_CREWAI = frozenset({"BaseLLM"})


def _backend(model: object) -> _Backend:
    if _has_base(model, "langchain_core", _LANGCHAIN):
        return _LangChain(model, f"LangChain model {type(model).__name__}")
    if _has_base(model, "llama_index", _LLAMA_INDEX):
        return _LlamaIndex(model, f"LlamaIndex LLM {type(model).__name__}")
    if _has_base(model, "crewai", _CREWAI):
        return _CrewAI(model, f"CrewAI LLM {getattr(model, 'model', type(model).__name__)!r}")
    if callable(model):
        return _Function(model, f"chat function {_name(model)}")
    if callable(getattr(model, "call", None)):  # duck-typed like crewai.LLM: .call(messages) -> str
        return _CrewAI(model, f"LLM {type(model).__name__}")
    hint = ""
    if _has_base(model, "openai", frozenset({"OpenAI", "AsyncOpenAI"})):
        hint = " (for an openai client, use OpenAISummarizer(client=...) / OpenAIFactExtractor(client=...))"
    raise ConfigurationError(
        f"cannot use {type(model).__name__} as a language model: pass a LangChain chat model, a LlamaIndex "
        f"LLM, a CrewAI LLM or a function messages -> str{hint}"
    )


def _max_input_chars(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_input_chars must be an integer >= 1, got {value!r}")
    return value


class _ChatModelProvider:
    prompt_version: str = PROMPT_VERSION
    """The version of the prompts this provider sends (:data:`~.prompts.PROMPT_VERSION`)."""

    def __init__(self, model: object, *, max_input_chars: int = DEFAULT_MAX_INPUT_CHARS) -> None:
        self._backend = _backend(model)
        self.max_input_chars = _max_input_chars(max_input_chars)

    @property
    def model(self) -> object:
        """The model this provider calls."""
        return self._backend.model

    @property
    def supports_sync(self) -> bool:
        """Whether the sync method can run (``False`` for an async-only function)."""
        return self._backend.supports_sync

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend.who})"


class ChatModelSummarizer(_ChatModelProvider):
    """A :class:`~agentmem_core.consolidation.Summarizer` over a framework's chat model or a function.

    What ``model`` is, is recognised from its class (nothing is imported to find out):

    * a LangChain chat model, or any LangChain runnable (``langchain_core.runnables.Runnable``):
      ``invoke``/``ainvoke`` with the messages as role/content dicts; the reply is the message content;
    * a LlamaIndex LLM (``llama_index.core.llms.LLM``): ``chat``/``achat`` with ``ChatMessage`` items;
    * a CrewAI LLM (``crewai.llms.base_llm.BaseLLM``), or any object with a ``call(messages) -> str``
      method: ``call``; the async method runs it in a worker thread;
    * a function ``fn(messages: list[dict[str, str]]) -> str``, sync or async: the sync method calls a
      sync one (an async one raises ConfigurationError), the async method awaits an async one or runs a
      sync one in a worker thread.

    Args:
        model: the model or function.
        max_input_chars: how much memory text one call takes (the store batches larger sets).

    Raises:
        ConfigurationError: ``model`` is none of these, or ``max_input_chars`` is not a positive integer.
    """

    def summarize(self, memories: Sequence[Numbered]) -> str:
        """One summary of ``memories`` (oldest to newest), the reply stripped.

        Raises:
            InvalidMemoryError: no memories.
            ConfigurationError: ``model`` is an async-only function.
            ModelError: the model raised, or replied with something other than a non-empty text.
        """
        return summary_text(self._backend.send(_summary_request(memories)), self._backend.who)

    async def asummarize(self, memories: Sequence[Numbered]) -> str:
        """The async twin of :meth:`summarize`."""
        return summary_text(await self._backend.asend(_summary_request(memories)), self._backend.who)


class ChatModelFactExtractor(_ChatModelProvider):
    """A :class:`~agentmem_core.consolidation.FactExtractor` over a framework's chat model or a function.

    ``model`` is recognised and called as for :class:`ChatModelSummarizer`. The prompt asks for the facts
    as a JSON object; the reply is read by :func:`parse_facts` (a fenced ```json block, or prose around
    the object, is fine).

    Args:
        model: the model or function.
        max_input_chars: how much memory text one call takes (the store batches larger sets).

    Raises:
        ConfigurationError: ``model`` is none of these, or ``max_input_chars`` is not a positive integer.
    """

    def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        """The facts ``memories`` state (new, changed or retracted), given the ``known`` ones.

        No memories: no call, no facts.

        Raises:
            ConfigurationError: ``model`` is an async-only function.
            ModelError: the model raised, or its reply is not the facts JSON (see :func:`parse_facts`).
        """
        if not memories:
            return []
        reply = self._backend.send(extraction_messages(memories, known))
        return parse_facts(reply, self._backend.who)

    async def aextract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        """The async twin of :meth:`extract`."""
        if not memories:
            return []
        reply = await self._backend.asend(extraction_messages(memories, known))
        return parse_facts(reply, self._backend.who)


def summarizer_from(model: object, *, max_input_chars: int = DEFAULT_MAX_INPUT_CHARS) -> Summarizer:
    """The summarizer for ``model``: ``model`` itself or a :class:`ChatModelSummarizer` over it.

    A :class:`~agentmem_core.consolidation.Summarizer` (e.g. an :class:`OpenAISummarizer`) is returned as
    is; anything else is wrapped.

    Args:
        model: a Summarizer, a LangChain chat model, a LlamaIndex LLM, a CrewAI LLM or a chat function.
        max_input_chars: for a wrapped model, how much memory text one call takes (a Summarizer keeps
            its own).

    Raises:
        ConfigurationError: ``model`` is none of these.
    """
    if isinstance(model, Summarizer):
        return model
    return ChatModelSummarizer(model, max_input_chars=max_input_chars)


def extractor_from(model: object, *, max_input_chars: int = DEFAULT_MAX_INPUT_CHARS) -> FactExtractor:
    """The fact extractor for ``model``: ``model`` itself or a :class:`ChatModelFactExtractor` over it.

    A :class:`~agentmem_core.consolidation.FactExtractor` (e.g. an :class:`OpenAIFactExtractor`) is
    returned as is; anything else is wrapped.

    Args:
        model: a FactExtractor, a LangChain chat model, a LlamaIndex LLM, a CrewAI LLM or a chat function.
        max_input_chars: for a wrapped model, how much memory text one call takes (a FactExtractor keeps
            its own).

    Raises:
        ConfigurationError: ``model`` is none of these.
    """
    if isinstance(model, FactExtractor):
        return model
    return ChatModelFactExtractor(model, max_input_chars=max_input_chars)
