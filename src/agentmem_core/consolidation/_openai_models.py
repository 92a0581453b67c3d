"""OpenAI (and OpenAI-compatible server) chat models as a summarizer and a fact extractor.

The ``openai`` package is imported lazily and nothing is created or sent at construction. The retry
policy is this module's, not the client's: clients made here have ``max_retries=0``, and a passed-in
client is used through ``client.with_options(max_retries=0)``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentmem_core.consolidation._replies import parse_facts, summary_text
from agentmem_core.consolidation._types import ExtractedFact, KnownFact, Numbered
from agentmem_core.consolidation.prompts import (
    FACTS_RESPONSE_FORMAT,
    PROMPT_VERSION,
    Message,
    extraction_messages,
    summary_messages,
)
from agentmem_core.embeddings._openai import import_openai
from agentmem_core.errors import AgentMemError, ConfigurationError, InvalidMemoryError, ModelError

if TYPE_CHECKING:
    import openai

__all__ = ["DEFAULT_MAX_INPUT_CHARS", "OpenAIFactExtractor", "OpenAISummarizer"]

DEFAULT_MAX_INPUT_CHARS = 12_000
"""How much memory text one model call takes unless told otherwise (the store batches larger sets)."""

_MISSING = "the OpenAI chat models need the openai package: pip install agentmem[openai]"
# A Retry-After the server sends is honoured up to this many seconds; a longer one falls back to backoff.
_MAX_RETRY_AFTER = 60.0


def _transient(exc: BaseException, oai: Any) -> bool:
    """Worth retrying: a timeout or connection error, a 429 or a 5xx; never a 4xx or a bad answer."""
    if isinstance(exc, oai.APIConnectionError):  # APITimeoutError is one
        return True
    if isinstance(exc, oai.APIStatusError):
        status: int = exc.status_code
        return status == 429 or status >= 500
    return False


def _retry_after(exc: BaseException) -> float | None:
    """The wait a 429/503 asks for (``retry-after-ms`` or ``retry-after`` in seconds), if sane."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except (TypeError, ValueError):  # an HTTP date: use our own backoff
            continue
        return seconds if 0.0 <= seconds <= _MAX_RETRY_AFTER else None
    return None


def _positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


class _OpenAIChat:
    """The client handling, request and retry loop shared by the summarizer and the extractor."""

    prompt_version: str = PROMPT_VERSION
    """The version of the prompts this provider sends (:data:`~.prompts.PROMPT_VERSION`)."""

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        temperature: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"model must be a non-empty string, got {model!r}")
        self._model = model
        self._base_url = base_url
        self._api_key = api_key
        self._given_client = client
        self._given_async_client = async_client
        self._client: openai.OpenAI | None = None
        self._async_client: openai.AsyncOpenAI | None = None
        self._timeout = None if timeout is None else _seconds("timeout", timeout)
        if self._timeout == 0:
            raise ConfigurationError("timeout must be more than 0 seconds (or None)")
        self._max_retries = _positive_int("max_retries", max_retries, 0)
        self._backoff = _seconds("backoff", backoff)
        self._max_backoff = _seconds("max_backoff", max_backoff)
        self.max_input_chars = _positive_int("max_input_chars", max_input_chars, 1)
        self._temperature = temperature
        self._sleep = sleep
        self._asleep = asleep
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        """The chat model name."""
        return self._model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._model!r}, base_url={self._base_url!r})"

    def close(self) -> None:
        """Close the sync client if this provider created it (a passed-in client is the caller's)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._given_client is None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client if this provider created it (a passed-in client is the caller's)."""
        with self._lock:
            client, self._async_client = self._async_client, None
        if client is not None and self._given_async_client is None:
            await client.close()

    @property
    def _who(self) -> str:
        return f"OpenAI model {self._model!r}"

    def _client_kwargs(self) -> dict[str, Any]:
        # max_retries=0: the retry policy is ours (what is retried, the backoff, the injectable sleep).
        kwargs: dict[str, Any] = {"base_url": self._base_url, "api_key": self._api_key, "max_retries": 0}
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        return kwargs

    def _sync_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = self._make(self._given_client, "OpenAI")
            return self._client

    def _async(self) -> openai.AsyncOpenAI:
        with self._lock:
            if self._async_client is None:
                self._async_client = self._make(self._given_async_client, "AsyncOpenAI")
            return self._async_client

    def _make(self, given: Any, kind: str) -> Any:
        oai = import_openai(_MISSING)
        if given is not None:
            with_options = getattr(given, "with_options", None)
            return with_options(max_retries=0) if callable(with_options) else given
        try:
            return getattr(oai, kind)(**self._client_kwargs())
        except oai.OpenAIError as exc:  # e.g. no api_key and no OPENAI_API_KEY
            raise ConfigurationError(f"cannot create the OpenAI client: {exc}") from exc

    def _request(self, messages: list[Message], extra: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self._model, "messages": messages, **extra}
        if self._temperature is not None:
            request["temperature"] = self._temperature
        if self._timeout is not None:  # per request too, so that a passed-in client honours it
            request["timeout"] = self._timeout
        return request

    def _complete(self, messages: list[Message], **extra: Any) -> str:
        client = self._sync_client()
        oai = import_openai(_MISSING)
        request = self._request(messages, extra)
        attempt = 0
        while True:
            try:
                response = client.chat.completions.create(**request)
            except Exception as exc:  # classified below: retried, or raised as ModelError
                self._sleep(self._retry_delay(exc, attempt, oai))
            else:
                return self._reply(response)
            attempt += 1

    async def _acomplete(self, messages: list[Message], **extra: Any) -> str:
        client = self._async()
        oai = import_openai(_MISSING)
        request = self._request(messages, extra)
        attempt = 0
        while True:
            try:
                response = await client.chat.completions.create(**request)
            except Exception as exc:  # classified below: retried, or raised as ModelError
                await self._asleep(self._retry_delay(exc, attempt, oai))
            else:
                return self._reply(response)
            attempt += 1

    def _retry_delay(self, exc: Exception, attempt: int, oai: Any) -> float:
        """How long to wait before retry ``attempt + 1``; raises if ``exc`` is final."""
        if isinstance(exc, AgentMemError):
            raise exc
        if not _transient(exc, oai) or attempt >= self._max_retries:
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise ModelError(
                f"{self._who} chat completion failed{tries}: {type(exc).__name__}: {exc}"
            ) from exc
        asked = _retry_after(exc)
        if asked is not None:
            return asked
        # Exponential backoff with "equal jitter": between half and all of backoff * 2**attempt.
        ceiling = min(self._max_backoff, self._backoff * 2.0**attempt)
        return ceiling * (0.5 + random.random() / 2)

    def _reply(self, response: Any) -> str:
        try:
            choice = response.choices[0]
            message = choice.message
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise ModelError(f"unexpected chat completion from {self._who}: {exc!r}") from exc
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise ModelError(f"{self._who} refused: {refusal}")
        finish = getattr(choice, "finish_reason", None)
        if finish == "length":
            raise ModelError(f"{self._who} stopped at its output token limit (finish_reason 'length')")
        if finish == "content_filter":
            raise ModelError(f"{self._who} reply was withheld by the content filter")
        content = getattr(message, "content", None)
        if not isinstance(content, str):
            raise ModelError(f"{self._who} replied without text content")
        return content


class OpenAISummarizer(_OpenAIChat):
    """A :class:`~agentmem_core.consolidation.Summarizer` over the OpenAI chat completions API.

    Sends :func:`~agentmem_core.consolidation.prompts.summary_messages` and returns the reply, stripped.
    Nothing is imported, created or sent at construction.

    Args:
        model: the chat model name.
        base_url: the API base URL, e.g. ``http://localhost:8000/v1`` for an OpenAI-compatible server
            (``None``: the ``openai`` default, which honours ``OPENAI_BASE_URL``).
        api_key: the API key (``None``: the ``OPENAI_API_KEY`` environment variable).
        client: an ``openai.OpenAI`` client for the sync calls (``base_url``/``api_key`` are then
            ignored for them); it is used with its own retries off (``with_options(max_retries=0)``).
        async_client: an ``openai.AsyncOpenAI`` client for the async calls, likewise.
        timeout: the timeout of one request in seconds (sent with every request; ``None``: the client's).
        max_retries: how many times a request is retried after a timeout, a connection error, a 429 or a
            5xx (never after another 4xx or an unusable answer).
        backoff: the base of the exponential backoff in seconds: retry ``k`` (from 0) waits between
            half and all of ``backoff * 2**k``, at most ``max_backoff``, or what the server's
            ``Retry-After`` asks for (up to 60 seconds).
        max_backoff: the longest computed wait in seconds.
        max_input_chars: how much memory text one call takes (the store batches larger sets; nothing is
            truncated here).
        temperature: the sampling temperature (``None``: not sent, the model's default).
        sleep: the function that waits between sync retries (tests pass a recorder).
        asleep: the coroutine function that waits between async retries.

    Raises:
        ConfigurationError: a bad option (at construction); at first use, ``openai`` missing or no key.
    """

    def summarize(self, memories: Sequence[Numbered]) -> str:
        """One summary of ``memories`` (oldest to newest).

        Raises:
            InvalidMemoryError: no memories.
            ConfigurationError: ``openai`` is not installed, or no API key is configured.
            ModelError: the request failed (after the retries, for transient failures), or the reply was
                empty, cut off or refused.
        """
        return summary_text(self._complete(_summary_request(memories)), self._who)

    async def asummarize(self, memories: Sequence[Numbered]) -> str:
        """The async twin of :meth:`summarize`, through ``openai.AsyncOpenAI``."""
        return summary_text(await self._acomplete(_summary_request(memories)), self._who)


class OpenAIFactExtractor(_OpenAIChat):
    """A :class:`~agentmem_core.consolidation.FactExtractor` over the OpenAI chat completions API.

    Sends :func:`~agentmem_core.consolidation.prompts.extraction_messages` and asks for the reply in
    :data:`~agentmem_core.consolidation.prompts.FACTS_SCHEMA` through strict structured outputs.
    Nothing is imported, created or sent at construction.

    Args:
        model, base_url, api_key, client, async_client, timeout, max_retries, backoff, max_backoff,
            max_input_chars, temperature, sleep, asleep: as for :class:`OpenAISummarizer`.
        structured_output: send the schema as ``response_format`` (``False`` for OpenAI-compatible
            servers without structured outputs: the prompt alone asks for the JSON).

    Raises:
        ConfigurationError: a bad option (at construction); at first use, ``openai`` missing or no key.
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        temperature: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        structured_output: bool = True,
    ) -> None:
        super().__init__(
            model,
            base_url=base_url,
            api_key=api_key,
            client=client,
            async_client=async_client,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_input_chars=max_input_chars,
            temperature=temperature,
            sleep=sleep,
            asleep=asleep,
        )
        self._extra: dict[str, Any] = {"response_format": FACTS_RESPONSE_FORMAT} if structured_output else {}

    def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        """The facts ``memories`` state (new, changed or retracted), given the ``known`` ones.

        No memories: no request, no facts.

        Raises:
            ConfigurationError: ``openai`` is not installed, or no API key is configured.
            ModelError: the request failed (after the retries, for transient failures), or the reply was
                cut off, refused or not the facts JSON (see
                :func:`~agentmem_core.consolidation.providers.parse_facts`).
        """
        if not memories:
            return []
        return parse_facts(self._complete(extraction_messages(memories, known), **self._extra), self._who)

    async def aextract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        """The async twin of :meth:`extract`, through ``openai.AsyncOpenAI``."""
        if not memories:
            return []
        reply = await self._acomplete(extraction_messages(memories, known), **self._extra)
        return parse_facts(reply, self._who)


def _summary_request(memories: Sequence[Numbered]) -> list[Message]:
    if not memories:
        raise InvalidMemoryError("nothing to summarise: no memories")
    return summary_messages(memories)
