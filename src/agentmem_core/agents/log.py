"""One agent's log of states, actions and interactions over a core store (sync and async).

Example::

    from agentmem_core import MemoryStore
    from agentmem_core.agents import AgentLog

    store = MemoryStore.from_url("sqlite:///agents.db", name="grid", embedder=embedder,
                                 numeric_fields=("step",))      # step ranges inside the index
    store.setup()
    log = AgentLog(store, "walker-1")
    log.record_state(0, {"x": 0, "y": 0, "energy": 10})
    log.record_action(0, "move", inputs={"dx": 1}, result={"moved": True}, reward=0.0)
    log.states(start_step=0, stop_step=10, where={"energy": {"$lt": 5}})
    log.changes("x")                                            # how x changed, step by step

Every method is one translation of :mod:`agentmem_core.agents.records` into calls of the store's public
API; the sync and async logs differ only in awaiting them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import TypedDict, Unpack

from agentmem_core import AsyncMemoryStore, InvalidMemoryError, Memory, MemoryInput, MemoryStore, RecallResult
from agentmem_core.agents.records import (
    Action,
    AgentState,
    AgentStats,
    AttributeChange,
    Interaction,
    Pager,
    Phase,
    Record,
    RecordKind,
    StatsTally,
    attribute_changes,
    check_agent_id,
    check_namespace,
    plan_write,
    query,
    record_from_memory,
    record_key,
)

__all__ = ["AgentLog", "AsyncAgentLog", "RecordHit", "Selection"]

Order = Literal["oldest", "newest"]


class Selection(TypedDict, total=False):
    """Which records a query reads (every key narrows).

    Keys:
        start_step: steps from this one (inclusive); stop_step: before this one (exclusive), as ``range``.
        created_after: happened at or after (Unix seconds); created_before: happened before.
        where: conditions on attributes (and an action's fields) in the core's metadata filter language:
            ``{"x": 3, "energy": {"$lt": 5}, "inputs.dx": 1}``.
    """

    start_step: int | None
    stop_step: int | None
    created_after: float | None
    created_before: float | None
    where: dict[str, Any] | None


@dataclass(frozen=True)
class RecordHit:
    """A record found by similarity, with the core's cosine ``distance`` and composite ``score``."""

    record: Record
    distance: float
    score: float


def _hits(result: RecallResult) -> list[RecordHit]:
    out = []
    for hit in result:
        record = record_from_memory(hit.memory)
        if record is not None:
            out.append(RecordHit(record, hit.distance, hit.score))
    return out


class _LogBase:
    """What both logs share: the agent, its scope, the write options, and the planning calls."""

    def __init__(
        self,
        store: Any,
        agent_id: str,
        *,
        namespace: str | Sequence[str] | None = None,
        ttl: float | None = None,
        importance: float = 0.5,
        embed: bool = True,
    ) -> None:
        """A log of ``agent_id``'s records in ``store``.

        Args:
            store: a set-up :class:`~agentmem_core.MemoryStore` (``AgentLog``) or
                :class:`~agentmem_core.AsyncMemoryStore` (``AsyncAgentLog``).
            agent_id: the agent (its records live in the core's ``agent_id`` scope).
            namespace: the scope's namespace (default: the root namespace).
            ttl: lifetime of each record in seconds (default: the store's TTL of ``episodic``, 7 days
                unless configured).
            importance: the core importance of each record (``0..1``).
            embed: embed the records (``False``: cheaper writes, no similarity queries).

        Raises:
            InvalidMemoryError: an invalid agent id, namespace, ttl or importance.
        """
        self.store = store
        self.agent_id = check_agent_id(agent_id)
        self.namespace = check_namespace(namespace)
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0):
            raise InvalidMemoryError(f"ttl must be a number of seconds > 0 or None, got {ttl!r}")
        if (
            isinstance(importance, bool)
            or not isinstance(importance, (int, float))
            or not 0 <= importance <= 1
        ):
            raise InvalidMemoryError(f"importance must be in [0, 1], got {importance!r}")
        if ttl is not None and not math.isfinite(ttl):
            raise InvalidMemoryError("ttl must be finite")
        self.ttl, self.importance, self.embed = ttl, float(importance), bool(embed)

    @property
    def indexed_steps(self) -> bool:
        """Whether step ranges run inside the index (the store declares ``numeric_fields=("step",)``).

        They are exact either way; without it the core checks them on the client.
        """
        return "step" in self.store.config.numeric_fields

    def _plan(self, records: Sequence[Record]) -> list[MemoryInput]:
        now = self.store.now()
        return [
            plan_write(r, agent_id=self.agent_id, namespace=self.namespace, now=now, ttl=self.ttl,
                       importance=self.importance, embed=self.embed)
            for r in records
        ]  # fmt: skip

    def _filter(
        self, kinds: RecordKind | Sequence[RecordKind] | None, fields: dict[str, Any], sel: Selection
    ) -> dict[str, Any]:
        return query(agent_id=self.agent_id, namespace=self.namespace, kinds=kinds, fields=fields, **sel)

    def _listing(
        self, kinds: RecordKind | Sequence[RecordKind] | None, fields: dict[str, Any], limit: int | None,
        sel: Selection,
    ) -> tuple[dict[str, Any], Pager, list[Record]]:  # fmt: skip
        out: list[Record] = []

        def accept(memory: Memory) -> bool:
            record = record_from_memory(memory)
            if record is not None:
                out.append(record)
            return record is not None

        return self._filter(kinds, fields, sel), Pager(limit, accept), out

    def _states_fields(self, phase: Phase | None) -> dict[str, Any]:
        if phase not in (None, "before", "after"):
            raise InvalidMemoryError(f"phase must be 'before', 'after' or None, got {phase!r}")
        return {} if phase is None else {"agentmem:phase": phase}

    def _key_of_state(self, step: int, phase: Phase | None) -> str:
        return record_key(AgentState(self.agent_id, step, phase=phase))

    def _scope(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "namespace": self.namespace}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(agent_id={self.agent_id!r}, namespace={self.namespace!r})"


def _state(record: Record | None) -> AgentState | None:
    return record if isinstance(record, AgentState) else None


class AgentLog(_LogBase):
    """One agent's states, actions and interactions in a :class:`~agentmem_core.MemoryStore` (sync).

    See :mod:`agentmem_core.agents.records` for how a record is stored; every write is idempotent per
    record key (a step's state, action or interaction written again replaces it).
    """

    store: MemoryStore

    def record(self, *records: Record) -> list[str]:
        """Write records (one ``remember_many``: all validated before any write); returns their memory ids."""
        items = self._plan(records)
        return self.store.remember_many(items) if items else []

    def record_state(
        self, step: int, attributes: dict[str, Any] | None = None, *, phase: Phase | None = None,
        at: float | None = None,
    ) -> str:  # fmt: skip
        """Write the agent's state at ``step`` (see :class:`AgentState`); returns its memory id."""
        return self.record(AgentState(self.agent_id, step, attributes or {}, phase=phase, at=at))[0]

    def record_action(
        self, step: int, name: str, *, inputs: dict[str, Any] | None = None, result: Any = None,
        reward: float | None = None, outcome: str | None = None, attributes: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> str:  # fmt: skip
        """Write what the agent did at ``step`` (see :class:`Action`); returns its memory id."""
        action = Action(
            self.agent_id, step, name, inputs or {}, result, reward, outcome, attributes or {}, at
        )
        return self.record(action)[0]

    def record_interaction(
        self, step: int, participants: Sequence[str], content: str, *,
        attributes: dict[str, Any] | None = None, at: float | None = None,
    ) -> str:  # fmt: skip
        """Write an exchange at ``step`` (see :class:`Interaction`); returns its memory id."""
        return self.record(Interaction(self.agent_id, step, participants, content, attributes or {}, at))[0]

    def records(
        self, *, kinds: RecordKind | Sequence[RecordKind] | None = None, limit: int | None = None,
        order: Order = "oldest", **selection: Unpack[Selection],
    ) -> list[Record]:  # fmt: skip
        """The agent's records, in the order they happened (``order="newest"``: newest first).

        Args:
            kinds: ``"state"``, ``"action"``, ``"interaction"`` or several (default: all).
            limit: the most returned (default: all, read page by page).
            order: ``"oldest"`` or ``"newest"`` first (by ``at``; ties in write order).
            **selection: steps, time and attribute conditions (:class:`Selection`).
        """
        return self._records(kinds, {}, limit, order, selection)

    def _records(
        self, kinds: Any, fields: dict[str, Any], limit: int | None, order: Order, sel: Selection
    ) -> list[Record]:
        flt, pager, out = self._listing(kinds, fields, limit, sel)
        while not pager.done:
            pager.take(self.store.list(limit=pager.size, cursor=pager.cursor, order=order, **flt))
        return out

    def states(
        self, *, phase: Phase | None = None, limit: int | None = None, order: Order = "oldest",
        **selection: Unpack[Selection],
    ) -> list[AgentState]:  # fmt: skip
        """The agent's states (``phase``: only those before / after the hooked method); as :meth:`records`."""
        found = self._records("state", self._states_fields(phase), limit, order, selection)
        return [r for r in found if isinstance(r, AgentState)]

    def actions(
        self, *, name: str | None = None, limit: int | None = None, order: Order = "oldest",
        **selection: Unpack[Selection],
    ) -> list[Action]:  # fmt: skip
        """The agent's actions (``name``: only those); as :meth:`records`."""
        found = self._records("action", {} if name is None else {"action": name}, limit, order, selection)
        return [r for r in found if isinstance(r, Action)]

    def interactions(
        self, *, participant: str | None = None, limit: int | None = None, order: Order = "oldest",
        **selection: Unpack[Selection],
    ) -> list[Interaction]:  # fmt: skip
        """The agent's interactions (``participant``: those they took part in); as :meth:`records`."""
        fields = {} if participant is None else {"participants": {"$contains": participant}}
        found = self._records("interaction", fields, limit, order, selection)
        return [r for r in found if isinstance(r, Interaction)]

    def recent_states(self, n: int = 10, *, phase: Phase | None = None) -> list[AgentState]:
        """The ``n`` most recent states, newest first."""
        return self.states(phase=phase, limit=n, order="newest")

    def state_at(self, step: int, *, phase: Phase | None = None) -> AgentState | None:
        """The state recorded at ``step`` in ``phase`` (by its key: one read), or ``None``."""
        memory = self.store.get_by_key(self._key_of_state(step, phase), **self._scope())
        return None if memory is None else _state(record_from_memory(memory))

    def similar(
        self, query: str | Sequence[float] | Any, *, k: int = 10,
        kinds: RecordKind | Sequence[RecordKind] | None = None, reinforce: bool = False,
        **selection: Unpack[Selection],
    ) -> list[RecordHit]:  # fmt: skip
        """The ``k`` records closest to a text (core ``recall``) or a vector (``recall_by_vector``).

        Args:
            query: a text, or a query vector of the store's dimension.
            k: how many.
            kinds: record types (default: all).
            reinforce: count the hits as accessed (the core's reinforcement; off: looking up a log does
                not change what is recalled later).
            **selection: as :meth:`records`.
        """
        flt = self._filter(kinds, {}, selection)
        if isinstance(query, str):
            return _hits(self.store.recall(query, k=k, reinforce=reinforce, **flt))
        return _hits(self.store.recall_by_vector(query, k=k, reinforce=reinforce, **flt))

    def changes(
        self, attribute: str, *, phase: Phase | None = None, **selection: Unpack[Selection]
    ) -> list[AttributeChange]:
        """How one attribute changed over the selected states, in step order (see ``attribute_changes``)."""
        return attribute_changes(self.states(phase=phase, **selection), attribute)

    def count(
        self, *, kinds: RecordKind | Sequence[RecordKind] | None = None, **selection: Unpack[Selection]
    ) -> int:
        """How many records match, exactly (one core ``count``)."""
        return self.store.count(**self._filter(kinds, {}, selection))

    def stats(self) -> AgentStats:
        """Counts per record type, steps and time covered, and size of the agent's records (one listing)."""
        tally = StatsTally()
        flt = self._filter(None, {}, {})
        pager = Pager(None, tally.add)
        while not pager.done:
            pager.take(self.store.list(limit=pager.size, cursor=pager.cursor, **flt))
        return tally.result(self.agent_id, self.namespace)


class AsyncAgentLog(_LogBase):
    """The async twin of :class:`AgentLog`, over an :class:`~agentmem_core.AsyncMemoryStore`."""

    store: AsyncMemoryStore

    async def record(self, *records: Record) -> list[str]:
        """As :meth:`AgentLog.record`."""
        items = self._plan(records)
        return await self.store.remember_many(items) if items else []

    async def record_state(
        self, step: int, attributes: dict[str, Any] | None = None, *, phase: Phase | None = None,
        at: float | None = None,
    ) -> str:  # fmt: skip
        """As :meth:`AgentLog.record_state`."""
        return (await self.record(AgentState(self.agent_id, step, attributes or {}, phase=phase, at=at)))[0]

    async def record_action(
        self, step: int, name: str, *, inputs: dict[str, Any] | None = None, result: Any = None,
        reward: float | None = None, outcome: str | None = None, attributes: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> str:  # fmt: skip
        """As :meth:`AgentLog.record_action`."""
        action = Action(
            self.agent_id, step, name, inputs or {}, result, reward, outcome, attributes or {}, at
        )
        return (await self.record(action))[0]

    async def record_interaction(
        self, step: int, participants: Sequence[str], content: str, *,
        attributes: dict[str, Any] | None = None, at: float | None = None,
    ) -> str:  # fmt: skip
        """As :meth:`AgentLog.record_interaction`."""
        interaction = Interaction(self.agent_id, step, participants, content, attributes or {}, at)
        return (await self.record(interaction))[0]

    async def records(
        self, *, kinds: RecordKind | Sequence[RecordKind] | None = None, limit: int | None = None,
        order: Order = "oldest", **selection: Unpack[Selection],
    ) -> list[Record]:  # fmt: skip
        """As :meth:`AgentLog.records`."""
        return await self._records(kinds, {}, limit, order, selection)

    async def _records(
        self, kinds: Any, fields: dict[str, Any], limit: int | None, order: Order, sel: Selection
    ) -> list[Record]:
        flt, pager, out = self._listing(kinds, fields, limit, sel)
        while not pager.done:
            pager.take(await self.store.list(limit=pager.size, cursor=pager.cursor, order=order, **flt))
        return out

    async def states(
        self, *, phase: Phase | None = None, limit: int | None = None, order: Order = "oldest",
        **selection: Unpack[Selection],
    ) -> list[AgentState]:  # fmt: skip
        """As :meth:`AgentLog.states`."""
        found = await self._records("state", self._states_fields(phase), limit, order, selection)
        return [r for r in found if isinstance(r, AgentState)]

    async def actions(
        self, *, name: str | None = None, limit: int | None = None, order: Order = "oldest",
        **selection: Unpack[Selection],
    ) -> list[Action]:  # fmt: skip
        """As :meth:`AgentLog.actions`."""
        fields = {} if name is None else {"action": name}
        found = await self._records("action", fields, limit, order, selection)
        return [r for r in found if isinstance(r, Action)]

    async def interactions(
        self, *, participant: str | None = None, limit: int | None = None, order: Order = "oldest",
        **selection: Unpack[Selection],
    ) -> list[Interaction]:  # fmt: skip
        """As :meth:`AgentLog.interactions`."""
        fields = {} if participant is None else {"participants": {"$contains": participant}}
        found = await self._records("interaction", fields, limit, order, selection)
        return [r for r in found if isinstance(r, Interaction)]

    async def recent_states(self, n: int = 10, *, phase: Phase | None = None) -> list[AgentState]:
        """As :meth:`AgentLog.recent_states`."""
        return await self.states(phase=phase, limit=n, order="newest")

    async def state_at(self, step: int, *, phase: Phase | None = None) -> AgentState | None:
        """As :meth:`AgentLog.state_at`."""
        memory = await self.store.get_by_key(self._key_of_state(step, phase), **self._scope())
        return None if memory is None else _state(record_from_memory(memory))

    async def similar(
        self, query: str | Sequence[float] | Any, *, k: int = 10,
        kinds: RecordKind | Sequence[RecordKind] | None = None, reinforce: bool = False,
        **selection: Unpack[Selection],
    ) -> list[RecordHit]:  # fmt: skip
        """As :meth:`AgentLog.similar`."""
        flt = self._filter(kinds, {}, selection)
        if isinstance(query, str):
            return _hits(await self.store.recall(query, k=k, reinforce=reinforce, **flt))
        return _hits(await self.store.recall_by_vector(query, k=k, reinforce=reinforce, **flt))

    async def changes(
        self, attribute: str, *, phase: Phase | None = None, **selection: Unpack[Selection]
    ) -> list[AttributeChange]:
        """As :meth:`AgentLog.changes`."""
        return attribute_changes(await self.states(phase=phase, **selection), attribute)

    async def count(
        self, *, kinds: RecordKind | Sequence[RecordKind] | None = None, **selection: Unpack[Selection]
    ) -> int:
        """As :meth:`AgentLog.count`."""
        return await self.store.count(**self._filter(kinds, {}, selection))

    async def stats(self) -> AgentStats:
        """As :meth:`AgentLog.stats`."""
        tally = StatsTally()
        flt = self._filter(None, {}, {})
        pager = Pager(None, tally.add)
        while not pager.done:
            pager.take(await self.store.list(limit=pager.size, cursor=pager.cursor, **flt))
        return tally.result(self.agent_id, self.namespace)
