"""The Valkey backends: execute a batch of operations over a valkey-py client in one pipelined round trip.

:class:`ValkeyBackend` (sync) and :class:`AsyncValkeyBackend` (asyncio) differ only by ``await``; both
translate with :class:`~agentmem_core.backends.valkey.ValkeyOps`, reload scripts on NOSCRIPT and
translate client errors at this boundary. :class:`~agentmem_core.ops.Setup` runs the Valkey setup flow
(create or validate the index, detect the engine, load the scripts) over the same client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import valkey.exceptions as vex

from agentmem_core._plan import Batch, Call, Command, Flow, ScriptCall, is_noscript
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.connection import is_cluster
from agentmem_core.errors import AgentMemError, translate_backend_error
from agentmem_core.ops import Setup

__all__ = ["AsyncValkeyBackend", "ValkeyBackend"]


def _reload_plan(commands: Sequence[Command], replies: list[Any]) -> list[int]:
    """What to send again, in order, once the scripts a batch missed are loaded.

    NOSCRIPT comes after a script flush, a restart or a failover. Sent again: the scripts that failed,
    and every plain command after the first of them (those ran before the failed scripts did, so a read
    would miss their effect). Plain commands are reads or idempotent writes (HSET, ZADD, ZREM, HDEL), so
    running one twice is harmless; scripts that succeeded are not run again. The one plain write that is
    not idempotent, an audit entry's XADD, is never sent again: its first reply stands, and an entry's
    place relative to the script it follows does not matter.
    """
    failed = [i for i, r in enumerate(replies) if is_noscript(r) and isinstance(commands[i], ScriptCall)]
    if not failed:
        return []
    first = failed[0]
    return [
        i
        for i in range(first, len(commands))
        if i in failed or (isinstance(commands[i], Call) and not _appends(commands[i]))
    ]


def _appends(command: Command) -> bool:
    """Whether a command appends (XADD): sent twice, it would log twice."""
    return isinstance(command, Call) and str(command.args[0]).upper() == "XADD"


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


def _setup_flow(op: Setup) -> Flow[Any]:
    from agentmem_core._flows_admin import setup_flow  # the Valkey setup (FT.CREATE, FT.INFO, scripts)

    return setup_flow(op.spec, op.hybrid)


class ValkeyBackend:
    """Executes operations on a sync valkey-py client (standalone or cluster)."""

    def __init__(self, client: Any, translate: Callable[[], ValkeyOps]) -> None:
        """Wrap ``client``; ``translate`` gives the store's current translation (its index and engine)."""
        self.client = client
        self.translate = translate

    def execute(self, ops: Sequence[Any]) -> list[Any]:
        """Execute a batch in one round trip; one result per operation, errors in place."""
        if len(ops) == 1 and isinstance(ops[0], Setup):
            return [self._setup(ops[0])]
        if ops and isinstance(ops[0], (Call, ScriptCall)):  # setup's own commands (no spec needed)
            return self.send(ops)
        translation = self.translate()
        per, commands = _plan(translation, ops)
        replies = self.send(commands) if commands else []
        return _results(translation, ops, per, replies)

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

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class AsyncValkeyBackend:
    """Executes operations on an asyncio valkey-py client (standalone or cluster)."""

    def __init__(self, client: Any, translate: Callable[[], ValkeyOps]) -> None:
        """Wrap ``client``; ``translate`` gives the store's current translation (its index and engine)."""
        self.client = client
        self.translate = translate

    async def aexecute(self, ops: Sequence[Any]) -> list[Any]:
        """Execute a batch in one round trip; one result per operation, errors in place."""
        if len(ops) == 1 and isinstance(ops[0], Setup):
            return [await self._setup(ops[0])]
        if ops and isinstance(ops[0], (Call, ScriptCall)):  # setup's own commands (no spec needed)
            return await self.send(ops)
        translation = self.translate()
        per, commands = _plan(translation, ops)
        replies = await self.send(commands) if commands else []
        return _results(translation, ops, per, replies)

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

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()
