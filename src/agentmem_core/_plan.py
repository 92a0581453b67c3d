"""Plan-then-send: operations are generators ("flows") that yield requests and receive replies.

A flow yields :class:`Batch` (commands sent in one pipelined round trip; the reply is the list of
replies, with server errors in place as exceptions), :class:`Embed` (texts for the embedder; the reply
is its raw output) or :class:`Invoke` (a language model call; the reply is what it returned). All
decisions (escaping, scoring, filtering, error mapping) live in flows and the pure modules they call; the
sync and async drivers in ``_driver.py`` only send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from valkey.exceptions import NoScriptError

from agentmem_core._scripts import Script
from agentmem_core.errors import AgentMemError, translate_backend_error

__all__ = ["Batch", "Call", "Embed", "Flow", "Invoke", "Request", "ScriptCall", "expect"]

T = TypeVar("T")

Arg = str | bytes | int | float


@dataclass(frozen=True)
class Call:
    """One command."""

    args: tuple[Arg, ...]


@dataclass(frozen=True)
class ScriptCall:
    """One EVALSHA of a :class:`Script` (loaded by the executor on NOSCRIPT)."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[Arg, ...]

    def command(self) -> tuple[Arg, ...]:
        """The EVALSHA command."""
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


Command = Call | ScriptCall


@dataclass(frozen=True)
class Batch:
    """Operations executed in one round trip.

    ``agentmem_core.ops`` values (on Valkey one non-transactional pipeline, cluster clients split by slot).
    Raw :class:`Call` / :class:`ScriptCall` commands are the Valkey backend's own (its setup).
    """

    commands: tuple[Any, ...]


@dataclass(frozen=True)
class Embed:
    """Texts to embed in one batch call."""

    texts: tuple[str, ...]
    is_query: bool = False


@dataclass(frozen=True)
class Invoke:
    """A call of a language model (a summarizer, a fact extractor).

    ``sync()`` on the sync driver, ``await asynchronous()`` on the async one; the reply is what it returned.
    """

    sync: Callable[[], Any]
    asynchronous: Callable[[], Awaitable[Any]]
    what: str = "model"
    """What is called, for error messages."""


Request = Batch | Embed | Invoke
Flow = Generator[Request, Any, T]


def batch(commands: Sequence[Any]) -> Batch:
    """Build a :class:`Batch`."""
    return Batch(tuple(commands))


def expect(reply: Any) -> Any:
    """Return a reply, raising the translated error if the server answered with an error."""
    if isinstance(reply, AgentMemError):
        # already translated in place (``ValkeyOps.result``), its ``__cause__`` the backend's exception:
        # ``raise reply from reply`` would replace that cause with the error itself
        raise reply
    if isinstance(reply, BaseException):
        raise translate_backend_error(reply) from reply
    return reply


def is_noscript(reply: Any) -> bool:
    """Whether a reply is the NOSCRIPT error (script not in the server's cache)."""
    return isinstance(reply, NoScriptError) or (isinstance(reply, BaseException) and "NOSCRIPT" in str(reply))
