"""The Valkey backends: execute a batch of operations over a valkey-py client in one pipelined round trip.

:class:`ValkeyBackend` (sync) and :class:`AsyncValkeyBackend` (asyncio) differ only by ``await``; both
translate with :class:`~agentmem_core.backends.valkey.ValkeyOps`, reload scripts on NOSCRIPT and
translate client errors at this boundary. :class:`~agentmem_core.ops.Setup` runs the Valkey setup flow
(create or validate the index, detect the engine, load the scripts) over the same client.

Sending raw commands (retries, following a promoted primary, NOSCRIPT recovery, cluster routing) is
:class:`ValkeySender` / :class:`AsyncValkeySender`, which the backends extend and the LangGraph
checkpointer uses as it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import valkey.exceptions as vex

from agentmem_core._plan import Batch, Call, Command, Flow, ScriptCall
from agentmem_core._retry import RetryState, missing_scripts, primary_of, resend_indexes
from agentmem_core.backends.valkey import ValkeyOps
from agentmem_core.config import RetryPolicy
from agentmem_core.connection import is_cluster
from agentmem_core.errors import AgentMemError
from agentmem_core.ops import Setup

_FAILURES = (vex.ValkeyError, OSError, vex.ValkeyClusterException)
"""What a send can raise: valkey-py's errors (its cluster client's routing refusals are not ValkeyErrors),
and the OS's (asyncio timeouts, resets) under asyncio."""

__all__ = ["AsyncValkeyBackend", "AsyncValkeySender", "ValkeyBackend", "ValkeySender", "cluster_route"]

Route = Literal["primaries", "one"]

_ROUTES: dict[str, Route] = {
    "SCRIPT": "primaries",  # SCRIPT LOAD: every primary must have the script
    "FT._LIST": "one",
    "FT.CONFIG": "one",
    "MODULE": "one",
    "PING": "one",
}


def cluster_route(args: Sequence[Any]) -> Route | None:
    """Where a cluster client sends a command that names no key; ``None``: by its keys, in the pipeline.

    valkey-py's cluster pipelines cannot take these: the sync one routes SCRIPT LOAD to every primary and
    refuses a pipelined command with several targets ("Too many targets"); the asyncio one cannot place a
    keyless command at all ("No way to dispatch ... Missing key"). So they are sent on their own, to an
    explicit target: a script to every primary, the others (admin questions about the server and its
    modules, the same on every node) to one node.
    """
    name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    return _ROUTES.get(name.upper())


def _segments(commands: Sequence[Command]) -> list[tuple[Route | None, list[int]]]:
    """A cluster batch in order: runs of keyed commands (one pipeline each) and keyless commands alone."""
    out: list[tuple[Route | None, list[int]]] = []
    for i, command in enumerate(commands):
        route = cluster_route(_args(command))
        if route is None and out and out[-1][0] is None:
            out[-1][1].append(i)
        else:
            out.append((route, [i]))
    return out


def _eval(command: ScriptCall) -> Call:
    """A script call as EVAL: the body travels with it, so it runs (and is cached) wherever its keys are."""
    return Call(("EVAL", command.script.body, len(command.keys), *command.keys, *command.args))


def _reloaded(
    commands: Sequence[Command], again: list[int], missing: list[int], as_eval: bool
) -> list[Command]:
    """What to send after NOSCRIPT: the commands ``again`` names, the missing scripts as EVAL if ``as_eval``.

    On a cluster the missing scripts always go as EVAL: SCRIPT LOAD through the client cannot be trusted
    to reach the node that said NOSCRIPT (valkey-py 6.2 drops a primary from its node table after a
    redirected FT.* command), while an EVAL is routed by its keys to the node that runs it.
    """
    evals = set(missing) if as_eval else set()
    return [
        _eval(command) if i in evals and isinstance(command, ScriptCall) else command
        for i, command in ((i, commands[i]) for i in again)
    ]


def _first_error(replies: Sequence[Any]) -> Any:
    """One reply for a command sent to several nodes: the first error, else the first reply."""
    return next((r for r in replies if isinstance(r, BaseException)), replies[0] if replies else None)


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


class ValkeySender:
    """Sends raw commands on a sync valkey-py client (standalone or cluster), with retries.

    Args:
        client: a ``valkey.Valkey`` or ``valkey.ValkeyCluster``.
        retry: how failed sends are retried (default :class:`RetryPolicy()`).
        sleep: waits between tries (tests inject one).
        eval_on_noscript: send a script the server lacks again as EVAL (its body; the user needs ``+eval``)
            rather than SCRIPT LOAD it first; on a cluster it is always sent as EVAL.
    """

    def __init__(
        self,
        client: Any,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        eval_on_noscript: bool = False,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._eval_on_noscript = eval_on_noscript

    def send(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands in one pipelined round trip, with retries; server errors come back in place.

        Raw commands are never sent again after a lost connection (their outcome is unknown and nothing
        says they are safe to apply twice): that raises the translated error. A refused or unsent batch is.
        """
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
        replies = self._round_trip(commands)
        missing = missing_scripts(commands, replies)
        if missing:
            as_eval = self._eval_on_noscript or is_cluster(self.client)
            if not as_eval:
                for body in _scripts_of(commands, missing).values():
                    self.client.script_load(body)
            again = resend_indexes(commands, replies, missing)
            for i, reply in zip(again, self._round_trip(_reloaded(commands, again, missing, as_eval))):
                replies[i] = reply
        return replies

    def _round_trip(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands pipelined, server errors in place; on a cluster keyless ones go on their own."""
        if not is_cluster(self.client):
            if len(commands) == 1:
                try:
                    return [self.client.execute_command(*_args(commands[0]))]
                except vex.ResponseError as exc:
                    return [exc]
            return self._pipelined(commands)
        replies: list[Any] = [None] * len(commands)
        for route, indexes in _segments(commands):
            if route is None:
                sent = self._pipelined([commands[i] for i in indexes])
            else:
                sent = [self._targeted(_args(commands[i]), route) for i in indexes]
            for i, reply in zip(indexes, sent):
                replies[i] = reply
        return replies

    def _pipelined(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*_args(command))
        return list(pipe.execute(raise_on_error=False))

    def _targeted(self, args: tuple[Any, ...], route: Route) -> Any:
        nodes = self.client.get_primaries() if route == "primaries" else [self.client.get_default_node()]
        replies: list[Any] = []
        for node in nodes:
            try:
                replies.append(self.client.execute_command(*args, target_nodes=node))
            except vex.ResponseError as exc:
                replies.append(exc)
        return _first_error(replies)

    def _follow_primary(self) -> None:
        """After READONLY: ask the server for its primary and send there from now on."""
        if is_cluster(self.client):
            return  # the cluster client follows MOVED by itself
        for conn in _repoint(self.client.connection_pool, self.client.execute_command("ROLE")):
            conn.disconnect()

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class ValkeyBackend(ValkeySender):
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
        super().__init__(client, retry, sleep)
        self.translate = translate

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


class AsyncValkeySender:
    """Sends raw commands on an asyncio valkey-py client (standalone or cluster), with retries.

    Args:
        client: a ``valkey.asyncio.Valkey`` or ``valkey.asyncio.ValkeyCluster``.
        retry: how failed sends are retried (default :class:`RetryPolicy()`).
        sleep: waits between tries (tests inject one).
        eval_on_noscript: as :class:`ValkeySender`'s.
    """

    def __init__(
        self,
        client: Any,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        eval_on_noscript: bool = False,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._eval_on_noscript = eval_on_noscript

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands in one pipelined round trip, with retries; server errors come back in place.

        As :meth:`ValkeySender.send`: never sent again after a lost connection.
        """
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
        replies = await self._round_trip(commands)
        missing = missing_scripts(commands, replies)
        if missing:
            as_eval = self._eval_on_noscript or is_cluster(self.client)
            if not as_eval:
                for body in _scripts_of(commands, missing).values():
                    await self.client.script_load(body)
            again = resend_indexes(commands, replies, missing)
            for i, reply in zip(again, await self._round_trip(_reloaded(commands, again, missing, as_eval))):
                replies[i] = reply
        return replies

    async def _round_trip(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands pipelined, server errors in place; on a cluster keyless ones go on their own."""
        if not is_cluster(self.client):
            if len(commands) == 1:
                try:
                    return [await self.client.execute_command(*_args(commands[0]))]
                except vex.ResponseError as exc:
                    return [exc]
            return await self._pipelined(commands)
        replies: list[Any] = [None] * len(commands)
        for route, indexes in _segments(commands):
            if route is None:
                sent = await self._pipelined([commands[i] for i in indexes])
            else:
                sent = [await self._targeted(_args(commands[i]), route) for i in indexes]
            for i, reply in zip(indexes, sent):
                replies[i] = reply
        return replies

    async def _pipelined(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*_args(command))
        return list(await pipe.execute(raise_on_error=False))

    async def _targeted(self, args: tuple[Any, ...], route: Route) -> Any:
        await self.client.initialize()  # the asyncio cluster client learns its nodes on first use
        nodes = self.client.get_primaries() if route == "primaries" else [self.client.get_default_node()]
        replies: list[Any] = []
        for node in nodes:
            try:
                replies.append(await self.client.execute_command(*args, target_nodes=node))
            except vex.ResponseError as exc:
                replies.append(exc)
        return _first_error(replies)

    async def _follow_primary(self) -> None:
        """After READONLY: ask the server for its primary and send there from now on."""
        if is_cluster(self.client):
            return  # the cluster client follows MOVED by itself
        for conn in _repoint(self.client.connection_pool, await self.client.execute_command("ROLE")):
            await conn.disconnect()

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()


class AsyncValkeyBackend(AsyncValkeySender):
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
        super().__init__(client, retry, sleep)
        self.translate = translate

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
