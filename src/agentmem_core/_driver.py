"""The two executors: they run flows, sending batches over a sync or async client. Nothing else.

Both share :func:`_commands` (what to send) and :func:`_reload_plan` (what to resend after NOSCRIPT);
the only difference between them is ``await``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import valkey.exceptions as vex

from agentmem_core._plan import Batch, Call, Command, Embed, Flow, ScriptCall, is_noscript
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.connection import is_cluster
from agentmem_core.embeddings import Embedder
from agentmem_core.errors import AgentMemError, EmbeddingError, translate_backend_error
from agentmem_core.telemetry import NoopTelemetry, Telemetry

T = TypeVar("T")

__all__ = ["AsyncDriver", "SyncDriver"]


def _no_translator() -> ValkeyOps:
    raise AgentMemError("this driver sends raw commands only (no store bound to it)")


def _reload_plan(commands: Sequence[Command], replies: list[Any]) -> list[int]:
    return [i for i, r in enumerate(replies) if is_noscript(r) and isinstance(commands[i], ScriptCall)]


def _args(command: Command) -> tuple[Any, ...]:
    return command.command() if isinstance(command, ScriptCall) else command.args


def _scripts_of(commands: Sequence[Command], indexes: list[int]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in indexes:
        cmd = commands[i]
        assert isinstance(cmd, ScriptCall)
        out[cmd.script.sha] = cmd.script.body
    return out


def _plan(
    translator: Callable[[], ValkeyOps], requests: Sequence[Any]
) -> tuple[list[list[Command]], list[Command]]:
    """The commands of each operation of a batch, and all of them in order (one round trip)."""
    raw = all(isinstance(r, (Call, ScriptCall)) for r in requests)
    if raw:  # setup's own commands (no index spec needed to send them)
        per = [[r] for r in requests]
    else:
        ops = translator()
        per = [ops.commands(r) for r in requests]
    return per, [c for commands in per for c in commands]


def _results(translator: Callable[[], ValkeyOps], requests: Sequence[Any], per: list[list[Command]],
             replies: list[Any]) -> list[Any]:  # fmt: skip
    """One result per operation, from its slice of the replies."""
    if all(isinstance(r, (Call, ScriptCall)) for r in requests):
        return replies
    ops = translator()
    out: list[Any] = []
    at = 0
    for request, commands in zip(requests, per):
        out.append(ops.result(request, commands, replies[at : at + len(commands)]))
        at += len(commands)
    return out


class SyncDriver:
    """Runs flows on a sync valkey client (standalone or cluster)."""

    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        telemetry: Telemetry | None = None,
        translator: Callable[[], ValkeyOps] | None = None,
    ) -> None:
        self.client = client
        self.embedder = embedder
        self.telemetry = telemetry or NoopTelemetry()
        self.translator = translator or _no_translator

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        """Execute a batch of operations in one round trip; one result per operation, errors in place."""
        per, commands = _plan(self.translator, requests)
        replies = self.send(commands) if commands else []
        return _results(self.translator, requests, per, replies)

    def send(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands in one pipelined round trip; server errors come back in place."""
        try:
            if len(commands) == 1 and not is_cluster(self.client):
                try:
                    replies: list[Any] = [self.client.execute_command(*_args(commands[0]))]
                except vex.ResponseError as exc:
                    replies = [exc]
            else:
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*_args(command))
                replies = list(pipe.execute(raise_on_error=False))
            missing = _reload_plan(commands, replies)
            if missing:
                for body in _scripts_of(commands, missing).values():
                    self.client.script_load(body)
                pipe = self.client.pipeline(transaction=False)
                for i in missing:
                    pipe.execute_command(*_args(commands[i]))
                for i, reply in zip(missing, pipe.execute(raise_on_error=False)):
                    replies[i] = reply
            return replies
        except vex.ValkeyError as exc:
            raise translate_backend_error(exc) from exc

    def run(self, name: str, flow: Flow[T]) -> T:
        """Drive a flow to completion and return its result."""
        with self.telemetry.operation(name):
            reply: Any = None
            try:
                while True:
                    request = flow.send(reply)
                    if isinstance(request, Batch):
                        reply = self.execute(request.commands)
                    else:
                        reply = self._embed(request)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    def _embed(self, request: Embed) -> Any:
        try:
            if request.is_query and (queries := getattr(self.embedder, "embed_queries", None)) is not None:
                return queries(list(request.texts))
            return self.embedder.embed(list(request.texts))
        except AgentMemError:
            raise
        except Exception as exc:  # an embedder is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embedder failed: {type(exc).__name__}: {exc}") from exc


class AsyncDriver:
    """Runs flows on an asyncio valkey client (standalone or cluster)."""

    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        telemetry: Telemetry | None = None,
        translator: Callable[[], ValkeyOps] | None = None,
    ) -> None:
        self.client = client
        self.embedder = embedder
        self.telemetry = telemetry or NoopTelemetry()
        self.translator = translator or _no_translator

    async def execute(self, requests: Sequence[Any]) -> list[Any]:
        """Execute a batch of operations in one round trip; one result per operation, errors in place."""
        per, commands = _plan(self.translator, requests)
        replies = await self.send(commands) if commands else []
        return _results(self.translator, requests, per, replies)

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands in one pipelined round trip; server errors come back in place."""
        try:
            if len(commands) == 1 and not is_cluster(self.client):
                try:
                    replies: list[Any] = [await self.client.execute_command(*_args(commands[0]))]
                except vex.ResponseError as exc:
                    replies = [exc]
            else:
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*_args(command))
                replies = list(await pipe.execute(raise_on_error=False))
            missing = _reload_plan(commands, replies)
            if missing:
                for body in _scripts_of(commands, missing).values():
                    await self.client.script_load(body)
                pipe = self.client.pipeline(transaction=False)
                for i in missing:
                    pipe.execute_command(*_args(commands[i]))
                for i, reply in zip(missing, await pipe.execute(raise_on_error=False)):
                    replies[i] = reply
            return replies
        except vex.ValkeyError as exc:
            raise translate_backend_error(exc) from exc
        except asyncio.TimeoutError as exc:
            raise translate_backend_error(vex.TimeoutError(str(exc))) from exc

    async def run(self, name: str, flow: Flow[T]) -> T:
        """Drive a flow to completion and return its result."""
        with self.telemetry.operation(name):
            reply: Any = None
            try:
                while True:
                    request = flow.send(reply)
                    if isinstance(request, Batch):
                        reply = await self.execute(request.commands)
                    else:
                        reply = await self._embed(request)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    async def _embed(self, request: Embed) -> Any:
        try:
            if request.is_query and (queries := getattr(self.embedder, "aembed_queries", None)) is not None:
                return await queries(list(request.texts))
            return await self.embedder.aembed(list(request.texts))
        except AgentMemError:
            raise
        except Exception as exc:  # an embedder is user code: wrap whatever it raises, chained
            raise EmbeddingError(f"embedder failed: {type(exc).__name__}: {exc}") from exc
