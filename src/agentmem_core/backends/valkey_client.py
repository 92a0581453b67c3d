"""The Valkey backends: execute a batch of operations over a valkey-py client in one pipelined round trip.

:class:`ValkeyBackend` (sync) and :class:`AsyncValkeyBackend` (asyncio) differ only by ``await``; both
translate with :class:`~agentmem_core.backends.valkey.ValkeyOps`, reload scripts on NOSCRIPT and
translate client errors at this boundary. :class:`~agentmem_core.ops.Setup` runs the Valkey setup flow
(create or validate the index, detect the engine, load the scripts) over the same client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import valkey.exceptions as vex

from agentmem_core._plan import Batch, Call, Command, Flow, ScriptCall
from agentmem_core._retry import RetryState, missing_scripts, primary_of, resend_indexes
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import RetryPolicy
from agentmem_core.connection import is_cluster
from agentmem_core.errors import AgentMemError
from agentmem_core.ops import Setup

_FAILURES = (vex.ValkeyError, OSError)
"""What a send can raise: valkey-py's errors, and the OS's (asyncio timeouts, resets) under asyncio."""

__all__ = ["AsyncValkeyBackend", "ValkeyBackend"]


def _args(command: Command) -> tuple[Any, ...]:
    return command.command() if isinstance(command, ScriptCall) else command.args


def _scripts_of(commands: Sequence[Command], indexes: list[int]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in indexes:
        cmd = commands[i]
        if isinstance(cmd, ScriptCall):
            out[cmd.script.sha] = cmd.script.body
    return out


def _plan(translation: ValkeyOps, ops: Sequence[Any]) -> tuple[list[list[Command]], list[Command]]:
    """The commands of each operation of a batch, and all of them in order (one round trip)."""
    if len(ops) == 1:  # the common case
        commands = translation.commands(ops[0])
        return [commands], commands
    per = [translation.commands(op) for op in ops]
    return per, [c for commands in per for c in commands]


def _results(
    translation: ValkeyOps, ops: Sequence[Any], per: list[list[Command]], replies: list[Any]
) -> list[Any]:
    """One result per operation, from its slice of the replies."""
    if len(ops) == 1:
        return [translation.result(ops[0], per[0], replies)]
    out: list[Any] = []
    at = 0
    for op, commands in zip(ops, per):
        out.append(translation.result(op, commands, replies[at : at + len(commands)]))
        at += len(commands)
    return out


def _repoint(pool: Any, role: Any) -> list[Any]:
    """Point a standalone client's pool at the primary a ``ROLE`` reply names; the idle connections to drop.

    When the server answering is a primary, the idle connections are dropped all the same: one of them
    may still hold a socket to the old primary (in use by another call when the pool was repointed). A
    connection in use keeps its socket until its call ends; it is pointed at the new primary too, so it
    reconnects there once dropped (its next READONLY follows again).
    """
    kwargs = getattr(pool, "connection_kwargs", None)
    if not isinstance(kwargs, dict) or "host" not in kwargs:
        return []  # a unix socket or a sentinel-managed pool: nothing to follow
    idle = list(getattr(pool, "_available_connections", ()))
    target = primary_of(role)
    if target is None:
        return idle
    host, port = target
    kwargs["host"], kwargs["port"] = host, port
    for conn in [*idle, *getattr(pool, "_in_use_connections", ())]:
        if hasattr(conn, "host") and hasattr(conn, "port"):
            conn.host, conn.port = host, port
    return idle


def _setup_flow(op: Setup) -> Flow[Any]:
    from agentmem_core._flows_admin import setup_flow  # the Valkey setup (FT.CREATE, FT.INFO, scripts)

    return setup_flow(op.spec, op.hybrid)


class ValkeyBackend:
    """Executes operations on a sync valkey-py client (standalone or cluster), with retries."""

    def __init__(
        self,
        client: Any,
        translate: Callable[[], ValkeyOps],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wrap ``client``; ``translate`` gives the store's current translation (its index and engine).

        ``retry``: how failed sends are retried (default :class:`RetryPolicy()`); ``sleep`` waits between.
        """
        self.client = client
        self.translate = translate
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def execute(self, ops: Sequence[Any]) -> list[Any]:
        """Execute a batch in one round trip; one result per operation, errors in place."""
        if len(ops) == 1 and isinstance(ops[0], Setup):
            return [self._setup(ops[0])]
        if ops and isinstance(ops[0], (Call, ScriptCall)):  # setup's own commands (no spec needed)
            return self.send(ops)
        translation = self.translate()
        state = RetryState(self.retry, ops)
        while True:
            per, commands = _plan(translation, state.batch)
            try:
                replies = self._send(commands, state) if commands else []
            except _FAILURES as exc:
                self._sleep(state.after_error(exc))  # raises the typed error when it must not resend
                continue
            return _results(translation, state.batch, per, replies)

    def _setup(self, op: Setup) -> Any:
        flow = _setup_flow(op)
        reply: Any = None
        try:
            while True:
                request = flow.send(reply)
                assert isinstance(request, Batch)
                reply = self.send(request.commands)
        except StopIteration as stop:
            return stop.value
        except AgentMemError as exc:  # in place: the store's setup decides what a failure means
            return exc

    def send(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands in one pipelined round trip, with retries; server errors come back in place."""
        state = RetryState(self.retry, commands)
        while True:
            try:
                return self._send(commands, state)
            except _FAILURES as exc:
                self._sleep(state.after_error(exc))

    def _send(self, commands: Sequence[Command], state: RetryState) -> list[Any]:
        replies = self._send_once(commands)
        while (refused := state.refusals(commands, replies)) is not None:
            if refused.follow:
                self._follow_primary()
            self._sleep(refused.delay)
            again = self._send_once([commands[i] for i in refused.indexes])
            for i, reply in zip(refused.indexes, again):
                replies[i] = reply
        return replies

    def _send_once(self, commands: Sequence[Command]) -> list[Any]:
        """One round trip (and, on NOSCRIPT, the script loads and what must follow them)."""
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
        missing = missing_scripts(commands, replies)
        if missing:
            for body in _scripts_of(commands, missing).values():
                self.client.script_load(body)
            again = resend_indexes(commands, replies, missing)
            pipe = self.client.pipeline(transaction=False)
            for i in again:
                pipe.execute_command(*_args(commands[i]))
            for i, reply in zip(again, pipe.execute(raise_on_error=False)):
                replies[i] = reply
        return replies

    def _follow_primary(self) -> None:
        """After READONLY: ask the server for its primary and send there from now on."""
        if is_cluster(self.client):
            return  # the cluster client follows MOVED by itself
        for conn in _repoint(self.client.connection_pool, self.client.execute_command("ROLE")):
            conn.disconnect()

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class AsyncValkeyBackend:
    """Executes operations on an asyncio valkey-py client (standalone or cluster), with retries."""

    def __init__(
        self,
        client: Any,
        translate: Callable[[], ValkeyOps],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        """Wrap ``client``; ``translate`` gives the store's current translation (its index and engine).

        ``retry``: how failed sends are retried (default :class:`RetryPolicy()`); ``sleep`` waits between.
        """
        self.client = client
        self.translate = translate
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    async def aexecute(self, ops: Sequence[Any]) -> list[Any]:
        """Execute a batch in one round trip; one result per operation, errors in place."""
        if len(ops) == 1 and isinstance(ops[0], Setup):
            return [await self._setup(ops[0])]
        if ops and isinstance(ops[0], (Call, ScriptCall)):  # setup's own commands (no spec needed)
            return await self.send(ops)
        translation = self.translate()
        state = RetryState(self.retry, ops)
        while True:
            per, commands = _plan(translation, state.batch)
            try:
                replies = await self._send(commands, state) if commands else []
            except _FAILURES as exc:
                await self._sleep(state.after_error(exc))  # raises the typed error when it must not resend
                continue
            return _results(translation, state.batch, per, replies)

    async def _setup(self, op: Setup) -> Any:
        flow = _setup_flow(op)
        reply: Any = None
        try:
            while True:
                request = flow.send(reply)
                assert isinstance(request, Batch)
                reply = await self.send(request.commands)
        except StopIteration as stop:
            return stop.value
        except AgentMemError as exc:  # in place: the store's setup decides what a failure means
            return exc

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands in one pipelined round trip, with retries; server errors come back in place."""
        state = RetryState(self.retry, commands)
        while True:
            try:
                return await self._send(commands, state)
            except _FAILURES as exc:
                await self._sleep(state.after_error(exc))

    async def _send(self, commands: Sequence[Command], state: RetryState) -> list[Any]:
        replies = await self._send_once(commands)
        while (refused := state.refusals(commands, replies)) is not None:
            if refused.follow:
                await self._follow_primary()
            await self._sleep(refused.delay)
            again = await self._send_once([commands[i] for i in refused.indexes])
            for i, reply in zip(refused.indexes, again):
                replies[i] = reply
        return replies

    async def _send_once(self, commands: Sequence[Command]) -> list[Any]:
        """One round trip (and, on NOSCRIPT, the script loads and what must follow them)."""
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
        missing = missing_scripts(commands, replies)
        if missing:
            for body in _scripts_of(commands, missing).values():
                await self.client.script_load(body)
            again = resend_indexes(commands, replies, missing)
            pipe = self.client.pipeline(transaction=False)
            for i in again:
                pipe.execute_command(*_args(commands[i]))
            for i, reply in zip(again, await pipe.execute(raise_on_error=False)):
                replies[i] = reply
        return replies

    async def _follow_primary(self) -> None:
        """After READONLY: ask the server for its primary and send there from now on."""
        if is_cluster(self.client):
            return  # the cluster client follows MOVED by itself
        for conn in _repoint(self.client.connection_pool, await self.client.execute_command("ROLE")):
            await conn.disconnect()

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()
