"""Memory hooks: record an agent's state before and after a method, the action and its result, per step.

For agents that use no framework: a class decorator, or a wrapper of one instance::

    @remembers(store, agent_id=lambda w: w.name, state=lambda w: {"x": w.x, "y": w.y})
    class Walker:
        def act(self, direction): ...

    walker = with_memory(Walker(), store, agent_id="walker-1")     # or: one instance, no decorator
    walker.act("north")                                            # step 0: before, action, after
    memory_of(walker).stats()                                      # per kind counts, steps, skipped writes

Each call of the method is one step: its state before (``phase="before"``), the action (the method's
name, bound arguments, result, optional reward / outcome) and its state after, written in one
``remember_many`` once the method returns (or raises: the action's outcome is then the error, and the
error propagates). Keys make every write idempotent (:func:`~agentmem_core.agents.records.record_key`), and
a method that calls itself through the hook (``super().act()`` of a decorated base) records one step.

Hooks never break the agent: when the store fails, or a state cannot be built, the records are skipped and
counted (``skipped_writes``), the first failure of a streak is logged as a warning on the
``agentmem.agents`` logger (the rest at debug level, and the recovery at info level), and the method runs
on as if unhooked.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import types
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from agentmem_core import AsyncMemoryStore, ConfigurationError, InvalidMemoryError, MemoryStore
from agentmem_core.agents.log import AgentLog, AsyncAgentLog
from agentmem_core.agents.records import Action, AgentState, AgentStats, Phase, Record

__all__ = [
    "AsyncMemoryHook",
    "MemoryHook",
    "default_state",
    "jsonable",
    "memory_of",
    "remembers",
    "with_memory",
]

logger = logging.getLogger("agentmem.agents")

T = TypeVar("T")
_HOOKS = "_agentmem_hooks"  # instance attribute: {method: hook}
_CLASS = "_agentmem_remembers"  # class attribute: {method: _Options}
_ACTIVE: ContextVar[frozenset[tuple[int, str]]] = ContextVar("agentmem_agents_active", default=frozenset())
_CREATE = threading.Lock()


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def jsonable(value: Any, limit: int = 500) -> Any:
    """``value`` as a JSON value (tuples become lists); anything else as its ``repr`` (cut to ``limit``).

    What a hook stores of a method's arguments and result: those are the agent's, of any type.
    """
    if isinstance(value, (list, tuple)):
        return [jsonable(v, limit) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: jsonable(v, limit) for k, v in value.items()}
    if _is_json(value):
        return value
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_state(agent: Any) -> dict[str, Any]:
    """The agent's public instance attributes whose values are JSON (the default ``state=``).

    ``step`` is left out: it is the record's own field (and a reserved attribute name).
    """
    return {k: v for k, v in vars(agent).items() if not k.startswith("_") and k != "step" and _is_json(v)}


@dataclass(frozen=True)
class _Options:
    store: MemoryStore | AsyncMemoryStore
    agent_id: str | Callable[[Any], str]
    method: str
    state: Callable[[Any], Mapping[str, Any]]
    step: Callable[[Any], int] | str | None
    reward: Callable[[Any, Any], float | None] | None
    outcome: Callable[[Any, Any], str | None] | None
    log_options: Mapping[str, Any]


@dataclass
class _Call:
    step: int | None
    records: list[Record]
    inputs: dict[str, Any]


class _HookBase:
    """Counters, failure reporting and record building, shared by the sync and async hooks."""

    log: AgentLog | AsyncAgentLog | None

    def __init__(self, options: _Options, log: AgentLog | AsyncAgentLog | None, problem: str | None) -> None:
        self.options, self.log, self.problem = options, log, problem  # problem: why it records nothing
        self.agent_id = None if log is None else log.agent_id
        self.written = 0  # records written
        self.skipped_writes = 0  # records not written (a failing store, or a record that could not be built)
        self.store_failures = 0  # failed store calls
        self.invalid_records = 0  # records that could not be built (a failing state= / reward= / step=)
        self.last_error: BaseException | None = None
        self._counter = 0
        self._lock = threading.Lock()
        self._streak = {"store": False, "invalid": False}  # warned already (a store streak ends on a write)

    # -- failures: logged (the first of a streak as a warning) and counted, never raised into the agent --
    def _skip(self, cause: str, what: str, exc: BaseException, records: int) -> None:
        with self._lock:
            self.skipped_writes += records
            if cause == "store":
                self.store_failures += 1
            else:
                self.invalid_records += records
            self.last_error = exc
            first, self._streak[cause] = not self._streak[cause], True
        logger.log(logging.WARNING if first else logging.DEBUG,
                   "agent %r: %s (%s: %s); skipped, the agent runs on", self.agent_id, what,
                   type(exc).__name__, exc, exc_info=exc if first else None)  # fmt: skip

    def _invalid(self, what: str, exc: BaseException, records: int = 1) -> None:
        self._skip("invalid", f"cannot build {what}", exc, records)

    def _failed(self, exc: BaseException, records: int) -> None:
        if isinstance(exc, InvalidMemoryError):  # the core refuses them (too large): not the store's fault
            self._invalid("records the store accepts", exc, records)
        else:
            self._skip("store", "the store failed; its records are skipped until it recovers", exc, records)

    def _stored(self, records: int) -> None:
        with self._lock:
            self.written += records
            recovered, self._streak["store"] = self._streak["store"], False
            skipped = self.skipped_writes
        if recovered:
            logger.info("agent %r: the store works again (%d records skipped so far)", self.agent_id, skipped)

    # -- building the records of one call ---------------------------------------------------------------
    def _step_of(self, agent: Any) -> int:
        how = self.options.step
        if how is None:
            with self._lock:
                step, self._counter = self._counter, self._counter + 1
            return step
        step = getattr(agent, how) if isinstance(how, str) else how(agent)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InvalidMemoryError(f"step= gave {step!r}, not an int >= 0")
        return step

    def _state(self, agent: Any, step: int, phase: Phase) -> AgentState | None:
        assert self.log is not None
        try:
            return AgentState(self.log.agent_id, step, self.options.state(agent), phase, self.log.store.now())
        except Exception as exc:  # the caller's state function: report it, keep the agent running
            self._invalid(f"the state {phase} step {step}", exc)
            return None

    def begin(self, agent: Any, inputs: dict[str, Any]) -> _Call:
        """Before the method: its step and the state before (what could be built)."""
        if self.log is None:
            return _Call(None, [], inputs)
        try:
            step = self._step_of(agent)
        except Exception as exc:
            self._invalid("the step", exc, records=3)
            return _Call(None, [], inputs)
        before = self._state(agent, step, "before")
        return _Call(step, [] if before is None else [before], inputs)

    def end(self, call: _Call, agent: Any, result: Any, error: BaseException | None) -> list[Record]:
        """After the method: the call's records (the state before, the action, the state after)."""
        if self.log is None or call.step is None:
            return []
        opts = self.options
        try:
            reward = None if error is not None or opts.reward is None else opts.reward(agent, result)
            if error is not None:
                outcome: str | None = f"error: {type(error).__name__}: {error}"[:300]
            else:
                outcome = None if opts.outcome is None else opts.outcome(agent, result)
            action = Action(
                self.log.agent_id, call.step, opts.method, call.inputs, jsonable(result), reward, outcome,
                at=self.log.store.now(),
            )  # fmt: skip
            call.records.append(action)
        except Exception as exc:  # the caller's reward / outcome function, or what it returned
            self._invalid(f"the action of step {call.step}", exc)
        after = self._state(agent, call.step, "after")
        return call.records if after is None else [*call.records, after]

    def _stats_of(self, stats: AgentStats) -> AgentStats:
        return replace(stats, skipped_writes=self.skipped_writes)

    def _require_log(self) -> Any:
        if self.log is None:
            raise ConfigurationError(f"this memory hook records nothing: {self.problem}")
        return self.log


class MemoryHook(_HookBase):
    """The hook of one agent's method over a sync store (also for async methods: its writes then block)."""

    log: AgentLog | None

    def flush(self, records: list[Record]) -> None:
        """Write one call's records; a failure is logged and counted, never raised."""
        if not records or self.log is None:
            return
        try:
            self.log.record(*records)
        except Exception as exc:  # logged and counted: the agent must not see the store's failure
            self._failed(exc, len(records))
        else:
            self._stored(len(records))

    def stats(self) -> AgentStats:
        """The agent's :meth:`AgentLog.stats` with this hook's ``skipped_writes`` (reads the store)."""
        log: AgentLog = self._require_log()
        return self._stats_of(log.stats())


class AsyncMemoryHook(_HookBase):
    """The hook of one agent's async method over an async store."""

    log: AsyncAgentLog | None

    async def flush(self, records: list[Record]) -> None:
        """As :meth:`MemoryHook.flush`."""
        if not records or self.log is None:
            return
        try:
            await self.log.record(*records)
        except Exception as exc:  # logged and counted: the agent must not see the store's failure
            self._failed(exc, len(records))
        else:
            self._stored(len(records))

    async def stats(self) -> AgentStats:
        """As :meth:`MemoryHook.stats`."""
        log: AsyncAgentLog = self._require_log()
        return self._stats_of(await log.stats())


def _new_hook(agent: Any, options: _Options) -> MemoryHook | AsyncMemoryHook:
    cls = AsyncMemoryHook if isinstance(options.store, AsyncMemoryStore) else MemoryHook
    log_cls = AsyncAgentLog if cls is AsyncMemoryHook else AgentLog
    try:
        agent_id = options.agent_id(agent) if callable(options.agent_id) else options.agent_id
        log: Any = log_cls(options.store, agent_id, **options.log_options)
    except Exception as exc:  # an agent_id function that fails: the agent still runs, unrecorded
        logger.warning("cannot record %s.%s: %s: %s", type(agent).__name__, options.method,
                       type(exc).__name__, exc, exc_info=exc)  # fmt: skip
        return cls(options, None, f"{type(exc).__name__}: {exc}")
    return cls(options, log, None)


def _hooks(agent: Any) -> dict[str, MemoryHook | AsyncMemoryHook]:
    hooks: dict[str, MemoryHook | AsyncMemoryHook] = vars(agent).setdefault(_HOOKS, {})
    return hooks


def _hook_of(agent: Any, method: str, options: _Options) -> MemoryHook | AsyncMemoryHook:
    hooks = _hooks(agent)
    hook = hooks.get(method)
    if hook is None:
        with _CREATE:
            hook = hooks.get(method) or hooks.setdefault(method, _new_hook(agent, options))
    return hook


def _inputs(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    try:
        if signature is None:
            raise TypeError("no signature")
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return {k: jsonable(v) for k, v in bound.arguments.items()}
    except (TypeError, ValueError):  # the call itself will fail the same way; keep what was passed
        return {"args": jsonable(args), "kwargs": jsonable(kwargs)}


async def _settle(value: Any) -> None:
    if inspect.isawaitable(value):  # an async hook's flush; a sync hook's (under an async method) is done
        await value


def _wrap(func: Callable[..., Any], method: str, hook_of: Callable[[Any], Any]) -> Any:
    """A wrapper of ``func(agent, ...)`` that records each call as a step (``async def`` for an async one)."""
    try:  # the inputs are the call's own arguments: the signature without ``self``
        sig = inspect.signature(func)
        signature: inspect.Signature | None = sig.replace(parameters=list(sig.parameters.values())[1:])
    except (TypeError, ValueError):
        signature = None

    def enter(agent: Any) -> Any:
        # a call through the hook inside a call of the same agent's method (super().act() of a decorated
        # base, an instance wrapper over a decorated class) is part of that step: it is not recorded again
        key = (id(agent), method)
        active = _ACTIVE.get()
        return None if key in active else _ACTIVE.set(active | {key})

    if inspect.iscoroutinefunction(func):

        async def awrapper(agent: Any, *args: Any, **kwargs: Any) -> Any:
            token = enter(agent)
            if token is None:
                return await func(agent, *args, **kwargs)
            try:
                hook = hook_of(agent)
                call = hook.begin(agent, _inputs(signature, args, kwargs))
                try:
                    result = await func(agent, *args, **kwargs)
                except Exception as exc:
                    await _settle(hook.flush(hook.end(call, agent, None, exc)))
                    raise
                await _settle(hook.flush(hook.end(call, agent, result, None)))
                return result
            finally:
                _ACTIVE.reset(token)

        return functools.wraps(func)(awrapper)

    def wrapper(agent: Any, *args: Any, **kwargs: Any) -> Any:
        token = enter(agent)
        if token is None:
            return func(agent, *args, **kwargs)
        try:
            hook = hook_of(agent)
            call = hook.begin(agent, _inputs(signature, args, kwargs))
            try:
                result = func(agent, *args, **kwargs)
            except Exception as exc:
                hook.flush(hook.end(call, agent, None, exc))
                raise
            hook.flush(hook.end(call, agent, result, None))
            return result
        finally:
            _ACTIVE.reset(token)

    return functools.wraps(func)(wrapper)


def _options(store: Any, agent_id: Any, method: str, state: Any, step: Any, reward: Any, outcome: Any,
             log_options: dict[str, Any]) -> _Options:  # fmt: skip
    if not isinstance(store, (MemoryStore, AsyncMemoryStore)):
        raise ConfigurationError(
            f"store must be a MemoryStore or an AsyncMemoryStore, got {type(store).__name__}"
        )
    if not isinstance(method, str) or not method.isidentifier():
        raise ConfigurationError(f"method must be a method name, got {method!r}")
    if not (isinstance(agent_id, str) or callable(agent_id)):
        raise ConfigurationError("agent_id must be a string or a function of the agent")
    unknown = set(log_options) - {"namespace", "ttl", "importance", "embed"}
    if unknown:
        raise ConfigurationError(f"unknown options: {sorted(unknown)}")
    options = _Options(store, agent_id, method, state or default_state, step, reward, outcome, log_options)
    if isinstance(agent_id, str):  # validate what can be validated now, before the agent runs
        AgentLog(store, agent_id, **log_options)
    return options


def _check_colour(fn: Any, store: Any, where: str) -> None:
    if isinstance(store, AsyncMemoryStore) and not inspect.iscoroutinefunction(fn):
        raise ConfigurationError(
            f"{where} is synchronous: it cannot await an AsyncMemoryStore; use a MemoryStore"
        )


def remembers(
    store: MemoryStore | AsyncMemoryStore,
    *,
    agent_id: str | Callable[[Any], str],
    method: str = "act",
    state: Callable[[Any], Mapping[str, Any]] | None = None,
    step: Callable[[Any], int] | str | None = None,
    reward: Callable[[Any, Any], float | None] | None = None,
    outcome: Callable[[Any, Any], str | None] | None = None,
    **log_options: Any,
) -> Callable[[type[T]], type[T]]:
    """A class decorator: every instance records each call of ``method`` as one step.

    Args:
        store: a set-up store; an :class:`~agentmem_core.AsyncMemoryStore` needs an ``async def`` method.
        agent_id: the agent id, or a function of the instance giving it (one scope per instance).
        method: the method recorded (default ``act``; sync or async).
        state: a function of the agent giving its attributes (default: :func:`default_state`).
        step: the step of a call: a function of the agent, an attribute name, or ``None``: the hook counts
            calls from 0 (an agent that resumes after a restart should give its own step, or its records
            of steps 0, 1, ... are replaced).
        reward: a function ``(agent, result)`` giving the action's reward.
        outcome: a function ``(agent, result)`` giving the action's outcome text.
        **log_options: ``namespace``, ``ttl``, ``importance``, ``embed`` (see :class:`AgentLog`).

    Raises:
        ConfigurationError: the class has no such method, its instances have no ``__dict__``, or a sync
            method with an async store.
        InvalidMemoryError: an invalid agent id string or log option.
    """
    options = _options(store, agent_id, method, state, step, reward, outcome, log_options)

    def decorate(cls: type[T]) -> type[T]:
        original = getattr(cls, method, None)
        if not callable(original):
            raise ConfigurationError(f"{cls.__name__} has no method {method!r}")
        if not getattr(cls, "__dictoffset__", 0):
            raise ConfigurationError(f"{cls.__name__} instances have no __dict__ to keep their hook in")
        _check_colour(original, store, f"{cls.__name__}.{method}")
        setattr(cls, method, _wrap(original, method, lambda agent: _hook_of(agent, method, options)))
        setattr(cls, _CLASS, {**getattr(cls, _CLASS, {}), method: options})
        return cls

    return decorate


def with_memory(
    agent: T,
    store: MemoryStore | AsyncMemoryStore,
    *,
    agent_id: str | Callable[[Any], str],
    method: str = "act",
    state: Callable[[Any], Mapping[str, Any]] | None = None,
    step: Callable[[Any], int] | str | None = None,
    reward: Callable[[Any, Any], float | None] | None = None,
    outcome: Callable[[Any, Any], str | None] | None = None,
    **log_options: Any,
) -> T:
    """Record each call of one instance's ``method`` as one step; returns the same agent.

    The arguments are those of :func:`remembers`. :func:`memory_of` gives the hook (stats, its log).

    Raises:
        ConfigurationError: no such method, no instance ``__dict__``, the method already has a hook, or
            a sync method with an async store.
        InvalidMemoryError: an invalid agent id or log option.
    """
    options = _options(store, agent_id, method, state, step, reward, outcome, log_options)
    if not hasattr(agent, "__dict__"):
        raise ConfigurationError(f"{type(agent).__name__} instances have no __dict__ to keep their hook in")
    call = getattr(agent, method, None)
    if not isinstance(call, types.MethodType) or call.__self__ is not agent:
        raise ConfigurationError(f"{type(agent).__name__} has no method {method!r}")
    _check_colour(call, store, f"{type(agent).__name__}.{method}")
    with _CREATE:
        if method in _hooks(agent):
            raise ConfigurationError(f"{type(agent).__name__}.{method} already has a memory hook (memory_of)")
        hook = _hooks(agent)[method] = _new_hook(agent, options)
    setattr(agent, method, types.MethodType(_wrap(call.__func__, method, lambda _agent: hook), agent))
    return agent


def memory_of(agent: Any, method: str = "act") -> MemoryHook | AsyncMemoryHook:
    """The hook recording ``agent``'s ``method`` (its counters, ``stats()`` and ``log``).

    Raises:
        ConfigurationError: the method has no hook.
    """
    if method in _hooks(agent):
        return _hooks(agent)[method]
    options = getattr(type(agent), _CLASS, {}).get(method)
    if options is None:
        raise ConfigurationError(f"{type(agent).__name__}.{method} has no memory hook")
    return _hook_of(agent, method, options)
