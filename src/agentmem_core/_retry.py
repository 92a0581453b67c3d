"""When a call the server could not serve is sent again (pure: the Valkey backends only wait and send).

A failure is one of four kinds (:func:`classify`):

* ``NOT_SENT``: the connection could not be opened (refused, unreachable, connect timeout, pool
  exhausted), so nothing reached the server: the batch is sent again as it is.
* ``REFUSED``: the server answered that it cannot serve the call now (``LOADING``, ``TRYAGAIN``,
  ``CLUSTERDOWN``, ``MASTERDOWN``, ``READONLY``, ``BUSY``) and applied nothing: the refused commands are
  sent again (:meth:`RetryState.refusals`).
* ``LOST``: the connection failed after the batch was sent (reset, closed, read timeout): what ran is
  unknown, so the batch is sent again only in a form that is safe to apply twice (:func:`resend_form`);
  when one operation has none, the call raises :class:`~agentmem_core.errors.WriteOutcomeUnknownError`.
* ``FINAL``: anything else (a logical error, wrong credentials, a missing permission): never retried.

Each retry waits :meth:`RetryPolicy.delay` (exponential backoff, full jitter); the policy bounds them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import valkey.exceptions as vex

from agentmem_core import ops
from agentmem_core._plan import Call, Command, ScriptCall, is_noscript
from agentmem_core.config import RetryPolicy
from agentmem_core.errors import (
    BackendBusyError,
    WriteOutcomeUnknownError,
    is_busy_message,
    translate_backend_error,
)

__all__ = ["Failure", "Refusals", "RetryState", "classify", "primary_of", "resend_form", "resend_indexes"]


class Failure(Enum):
    """What a failed send means for sending it again."""

    NOT_SENT = "not_sent"
    REFUSED = "refused"
    LOST = "lost"
    FINAL = "final"


def _connect_failure(message: str) -> bool:
    # valkey-py words a failure inside Connection.connect() "Error <n> connecting to <host>:<port>. ..."
    # or "Timeout connecting to server"; a failure after sending reads "Connection closed by server.",
    # "Error <n> while writing to socket", "Timeout reading from socket" and the like.
    text = message.lower()
    return "connecting to" in text or text.startswith("too many connections")


def classify(exc: BaseException) -> Failure:
    """Which kind of failure ``exc`` is (see the module docs)."""
    if isinstance(exc, (vex.AuthenticationError, vex.AuthorizationError, vex.NoPermissionError)):
        return Failure.FINAL
    # valkey-py strips the code from the errors it has a class for, so those are matched by class.
    if isinstance(exc, (vex.BusyLoadingError, vex.ReadOnlyError)) or (
        isinstance(exc, vex.ResponseError) and is_busy_message(str(exc))
    ):
        return Failure.REFUSED
    if isinstance(exc, (vex.ConnectionError, vex.TimeoutError)):
        return Failure.NOT_SENT if _connect_failure(str(exc)) else Failure.LOST
    if isinstance(exc, OSError):  # TimeoutError, ConnectionResetError, BrokenPipeError under asyncio
        return Failure.LOST
    return Failure.FINAL


def _read_only(reply: Any) -> bool:
    # valkey-py parses READONLY into ReadOnlyError without the code; a raw reply keeps it.
    return isinstance(reply, vex.ReadOnlyError) or str(reply).startswith("READONLY")


def is_refusal(reply: Any) -> bool:
    """Whether an in-place reply is a refusal for now (nothing applied; worth sending again)."""
    return isinstance(reply, BaseException) and classify(reply) is Failure.REFUSED


def resend_form(op: Any) -> Any | None:
    """The form of ``op`` to send again when a lost connection left its outcome unknown, or ``None``.

    Reads are sent again as they are. So are the writes that land on the same state when applied
    twice: a write of a client-chosen id replaces the memory with itself; an update sets fields; a
    delete of ids that are gone only drops bookkeeping (an eviction also stops at its ``keep``); TTL
    refreshes, scope registrations, caller-id claims and releases, counter and config sets, and lease
    renewals by their own holder. An audit entry is appended again (at least once: a duplicate, never
    a lost entry). A reinforced fetch is sent again as a plain read, so an access is counted at most
    once. A near-duplicate merge counts the duplicate: it has no safe form.
    """
    if isinstance(op, ops.Merge) or isinstance(op, (Call, ScriptCall)):
        return None
    if isinstance(op, ops.Fetch) and op.reinforce:
        return replace(op, reinforce=False)
    return op


def resend_indexes(commands: Sequence[Command], replies: Sequence[Any], failed: Sequence[int]) -> list[int]:
    """What to send again, in order, once the failed commands of a batch can run.

    The failed commands, and every plain command and read-only script after the first of them: those
    ran before the failed ones did, so a read would miss their effect. Plain commands are reads or
    idempotent writes (HSET, ZADD, ZREM, HDEL), so running one twice is harmless; scripts that wrote and
    succeeded are not run again. The one plain write that is not idempotent, an audit entry's XADD, is
    sent again only if it failed.
    """
    if not failed:
        return []
    first = failed[0]
    chosen = set(failed)
    return [i for i in range(first, len(commands)) if i in chosen or _repeatable(commands[i])]


def _repeatable(command: Command) -> bool:
    if isinstance(command, ScriptCall):
        return command.script.read_only
    return not _appends(command)


def _appends(command: Command) -> bool:
    return isinstance(command, Call) and str(command.args[0]).upper() == "XADD"


def missing_scripts(commands: Sequence[Command], replies: Sequence[Any]) -> list[int]:
    """The scripts of a batch that the server did not have (NOSCRIPT: a flush, a restart, a failover)."""
    return [i for i, r in enumerate(replies) if is_noscript(r) and isinstance(commands[i], ScriptCall)]


def primary_of(role: Any) -> tuple[str, int] | None:
    """The primary a server replicates, from its ``ROLE`` reply; ``None`` when it is a primary itself."""
    if not isinstance(role, (list, tuple)) or len(role) < 3:
        return None
    kind = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    if kind not in ("slave", "replica"):
        return None
    host = role[1].decode() if isinstance(role[1], bytes) else str(role[1])
    try:
        port = int(role[2])
    except (TypeError, ValueError):
        return None
    if not host or not 0 < port < 65536:
        return None
    return host, port


@dataclass(frozen=True)
class Refusals:
    """Refused commands to send again: after ``delay`` seconds, ``indexes`` of the batch, in order.

    ``follow``: one refusal was ``READONLY`` (the server became a replica), so the backend asks it for its
    primary before sending.
    """

    delay: float
    indexes: list[int]
    follow: bool


class RetryState:
    """One call's retries: the operations to send next, and the waits between tries.

    Args:
        policy: the store's :class:`~agentmem_core.config.RetryPolicy`.
        batch: the operations (or, for setup's own batches, raw commands) of the call.
        unit: a uniform draw from [0, 1) for the jitter (tests inject one).
    """

    def __init__(
        self, policy: RetryPolicy, batch: Sequence[Any], unit: Callable[[], float] = random.random
    ) -> None:
        self.policy = policy
        self.batch: list[Any] = list(batch)
        self.attempt = 0
        self._unit = unit

    def _next_delay(self) -> float:
        delay = self.policy.delay(self.attempt, self._unit())
        self.attempt += 1
        return delay

    def after_error(self, exc: BaseException) -> float:
        """The wait before sending :attr:`batch` again after ``exc``.

        Raises:
            AgentMemError: the translated error (``from exc``) when ``exc`` is final, when the retries are
                spent, or :class:`WriteOutcomeUnknownError` when the outcome is unknown and the batch
                has no safe form.
        """
        failure = classify(exc)
        if failure is Failure.FINAL or self.attempt >= self.policy.retries:
            raise translate_backend_error(exc) from exc
        if failure is Failure.LOST:
            forms = [resend_form(op) for op in self.batch]
            if any(form is None for form in forms):
                if all(isinstance(op, (Call, ScriptCall)) for op in self.batch):
                    raise translate_backend_error(exc) from exc  # setup: idempotent, run it again
                raise WriteOutcomeUnknownError(
                    "the connection to Valkey failed after a near-duplicate merge was sent; it may or may "
                    f"not have been applied, so it was not sent again: {exc}"
                ) from exc
            self.batch = forms
        return self._next_delay()

    def refusals(self, commands: Sequence[Command], replies: Sequence[Any]) -> Refusals | None:
        """The refused commands of a batch's replies to send again, or ``None`` when there are none.

        Raises:
            BackendBusyError: some were refused and the retries are spent.
        """
        failed = [i for i, reply in enumerate(replies) if is_refusal(reply)]
        if not failed:
            return None
        if self.attempt >= self.policy.retries:
            reply = replies[failed[0]]
            raise BackendBusyError(f"Valkey kept refusing the call: {reply}") from reply
        follow = self.policy.follow_primary and any(_read_only(replies[i]) for i in failed)
        return Refusals(self._next_delay(), resend_indexes(commands, replies, failed), follow)
