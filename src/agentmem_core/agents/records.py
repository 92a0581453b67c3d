"""Agent records (states, actions, interactions) and how they map onto core memories. Pure: no I/O.

:class:`~agentmem_core.agents.log.AgentLog` and :class:`~agentmem_core.agents.log.AsyncAgentLog` call the
store with what these functions plan, so the sync and async logs share every decision. One record is one
core memory:

* kind ``episodic``: every record is something that happened at a step. An action too: it is what the
  agent did then and what came of it, not a procedure for doing it (``procedural``). One kind also means
  one TTL for a whole trajectory (the store's ``ttl_by_kind``: episodic memories expire after 7 days by
  default; the log's ``ttl=`` overrides it), so no action outlives the states around it.
* scope: the agent id as the core's ``agent_id``, in the log's namespace (the root one by default).
* metadata: :data:`RECORD_KEY` names the record type, :data:`STEP_KEY` holds the step (an int) and
  :data:`PHASE_KEY` a state's phase. Attributes are top-level metadata keys, so the core's filter language
  selects on them as they are (``{"x": {"$gte": 3}}``). An action adds ``action`` (its name), ``inputs``,
  ``result``, ``reward`` and ``outcome``; an interaction ``participants``.
* key: one per record (:func:`record_key`): writing a record again replaces it, so a hook that fires twice
  for one step records it once.
* content: a text derived from the record (an interaction's own text), embedded as the memory's only
  text (``texts=``): a memory of texts is no target of write-time dedup, so a note written in the agent's
  scope is never merged into a record (and a keyed record is never merged away).
* ``created_at``: when it happened (the record's ``at``, else the store's clock at the write).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from agentmem_core import InvalidMemoryError, Kind, Memory, MemoryInput, Page

__all__ = [
    "ABSENT", "PHASE_KEY", "RECORD_KEY", "RECORD_KINDS", "STEP_KEY", "Action", "AgentState", "AgentStats",
    "AttributeChange", "Interaction", "Pager", "Phase", "Record", "RecordKind", "StateDiff", "StatsTally",
    "attribute_changes", "check_agent_id", "check_namespace", "diff_states", "plan_write", "query",
    "record_from_memory", "record_key", "record_text",
]  # fmt: skip

RECORD_KEY: Final = "agentmem:record"
"""The metadata key naming a record's type (``"state"``, ``"action"``, ``"interaction"``)."""
STEP_KEY: Final = "step"
"""The metadata key holding a record's step (declare it in ``numeric_fields`` for ranges in the index)."""
PHASE_KEY: Final = "agentmem:phase"
"""The metadata key of a state's phase (``"before"`` or ``"after"`` the hooked method)."""
RecordKind: TypeAlias = Literal["state", "action", "interaction"]
RECORD_KINDS: Final[tuple[RecordKind, ...]] = ("state", "action", "interaction")
Phase: TypeAlias = Literal["before", "after"]
_PHASE_RANK = {"before": 0, None: 1, "after": 2}
_OWN_FIELDS = {
    "state": frozenset(),
    "action": frozenset(("action", "inputs", "result", "reward", "outcome")),
    "interaction": frozenset(("participants",)),
}
_MAX_ID = 512  # the core's limit for scope values
_MAX_NAME = 200  # an action's name is part of its key (512 characters at most)
_MAX_TEXT = 4000  # a derived text is for embedding: the whole record is in the metadata


class _Absent:
    """The value of an attribute a state does not have (see :class:`AttributeChange`)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


def check_agent_id(value: Any) -> str:
    """Validate an agent id (a non-empty string of at most 512 characters); raises ``InvalidMemoryError``."""
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
        raise InvalidMemoryError(f"agent_id must be a non-empty string of at most {_MAX_ID} chars: {value!r}")
    return value


def check_namespace(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A namespace as a tuple of labels (``None``: the root namespace ``()``)."""
    labels = () if value is None else (value,) if isinstance(value, str) else value
    if not isinstance(labels, (tuple, list)) or not all(isinstance(x, str) and x for x in labels):
        raise InvalidMemoryError(f"namespace must be a string or a sequence of non-empty strings: {value!r}")
    return tuple(labels)


def _step(value: Any, label: str = "step") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidMemoryError(f"{label} must be an int >= 0, got {value!r}")
    return value


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON (tuples become lists), or ``InvalidMemoryError`` naming where it fails."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMemoryError(f"{where} must be finite, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise InvalidMemoryError(f"{where} has a non-string key {bad[0]!r} (JSON keys are strings)")
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise InvalidMemoryError(f"{where} must be a JSON value, got {type(value).__name__}")


def _attributes(value: Any, kind: RecordKind) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidMemoryError(f"attributes must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise InvalidMemoryError(f"attribute names must be non-empty strings, got {key!r}")
        if key == STEP_KEY or key.startswith("agentmem:") or key in _OWN_FIELDS[kind]:
            raise InvalidMemoryError(f"attribute name {key!r} is reserved for the {kind} record itself")
    return MappingProxyType(_plain(value, "attributes"))


def _at(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidMemoryError(f"at must be a Unix timestamp or None, got {value!r}")
    return float(value)


def _text(value: Any, label: str, limit: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip() or (limit is not None and len(value) > limit):
        bound = f" of at most {limit} characters" if limit else ""
        raise InvalidMemoryError(f"{label} must be a non-empty string{bound}, got {value!r}")
    return value


def _init(record: Any, kind: RecordKind) -> None:
    """Validate and normalise the fields every record has (frozen: set through ``object.__setattr__``)."""
    set_ = object.__setattr__
    set_(record, "agent_id", check_agent_id(record.agent_id))
    set_(record, "step", _step(record.step))
    set_(record, "attributes", _attributes(record.attributes, kind))
    set_(record, "at", _at(record.at))


@dataclass(frozen=True)
class AgentState:
    """What an agent looked like at a step.

    Attributes:
        agent_id: the agent (the core's ``agent_id`` scope).
        step: the step (an int >= 0).
        attributes: JSON values by name; stored as top-level metadata, so filterable (not ``step`` nor
            ``agentmem:*``).
        phase: ``"before"`` / ``"after"`` the hooked method ran, or ``None`` for a state recorded by hand.
        at: when it held (Unix seconds); ``None``: the store's clock when written.
        memory_id: the core memory's id (set on records read back).
    """

    agent_id: str
    step: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    phase: Phase | None = None
    at: float | None = None
    memory_id: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _init(self, "state")
        if self.phase not in (None, "before", "after"):
            raise InvalidMemoryError(f"phase must be 'before', 'after' or None, got {self.phase!r}")


@dataclass(frozen=True)
class Action:
    """What an agent did at a step, and what came of it.

    Attributes:
        agent_id: the agent.
        step: the step.
        name: the action (a method name for hooks), at most 200 characters.
        inputs: its arguments, JSON values by name.
        result: what it returned (a JSON value).
        reward: a number, if the environment gives one.
        outcome: a short verdict (``"reached goal"``, ``"error: ..."``), if any.
        attributes: more filterable JSON values (not the fields above, ``step`` or ``agentmem:*``).
        at: when it happened; ``None``: the store's clock when written.
        memory_id: the core memory's id (set on records read back).
    """

    agent_id: str
    step: int
    name: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    reward: float | None = None
    outcome: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    at: float | None = None
    memory_id: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _init(self, "action")
        _text(self.name, "action name", _MAX_NAME)
        if not isinstance(self.inputs, Mapping):
            raise InvalidMemoryError(f"inputs must be a mapping, got {type(self.inputs).__name__}")
        object.__setattr__(self, "inputs", MappingProxyType(_plain(self.inputs, "inputs")))
        object.__setattr__(self, "result", _plain(self.result, "result"))
        reward = self.reward
        if reward is not None and (
            isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward)
        ):
            raise InvalidMemoryError(f"reward must be a finite number or None, got {reward!r}")
        object.__setattr__(self, "reward", None if reward is None else float(reward))
        if self.outcome is not None:
            _text(self.outcome, "outcome")


@dataclass(frozen=True)
class Interaction:
    """Something said or exchanged between participants at a step.

    Attributes:
        agent_id: the agent whose log it is in.
        step: the step.
        participants: who took part (non-empty strings; filter with ``{"participants": {"$contains": p}}``).
        content: what was said (the memory's content, embedded as it is).
        attributes: more filterable JSON values (not ``participants``, ``step`` or ``agentmem:*``).
        at: when it happened; ``None``: the store's clock when written.
        memory_id: the core memory's id (set on records read back).
    """

    agent_id: str
    step: int
    participants: Sequence[str]
    content: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    at: float | None = None
    memory_id: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _init(self, "interaction")
        people = self.participants
        if isinstance(people, str) or not isinstance(people, (list, tuple)) or not people:
            raise InvalidMemoryError(f"participants must be a non-empty list of names, got {people!r}")
        object.__setattr__(self, "participants", tuple(_text(p, "participant", _MAX_ID) for p in people))
        _text(self.content, "interaction content")


Record: TypeAlias = AgentState | Action | Interaction
_KIND_OF: dict[type, RecordKind] = {AgentState: "state", Action: "action", Interaction: "interaction"}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in values.items())


def record_text(record: Record) -> str:
    """The text a record is embedded and found by (an interaction's content; otherwise derived)."""
    if isinstance(record, Interaction):
        return record.content
    if isinstance(record, AgentState):
        phase = f" ({record.phase})" if record.phase else ""
        text = f"state of {record.agent_id} at step {record.step}{phase}: {_pairs(record.attributes) or '-'}"
    else:
        text = f"{record.agent_id} at step {record.step} did {record.name}({_pairs(record.inputs)})"
        text += f" -> {_show(record.result)}"
        text += "" if record.reward is None else f"; reward {record.reward:g}"
        text += "" if record.outcome is None else f"; outcome {record.outcome}"
    if not isinstance(record, AgentState) and record.attributes:
        text += f"; {_pairs(record.attributes)}"
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def record_key(record: Record) -> str:
    """The caller key of a record in its scope: the same step's record again replaces it.

    ``agentmem:state:<step>[:<phase>]``, ``agentmem:action:<step>:<name>`` (two different actions in a
    step are two records), ``agentmem:interaction:<step>:<digest of participants and content>``.
    """
    if isinstance(record, AgentState):
        return f"agentmem:state:{record.step}" + (f":{record.phase}" if record.phase else "")
    if isinstance(record, Action):
        return f"agentmem:action:{record.step}:{record.name}"
    body = json.dumps([list(record.participants), record.content], ensure_ascii=False)
    return f"agentmem:interaction:{record.step}:{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def _metadata(record: Record) -> dict[str, Any]:
    meta: dict[str, Any] = {RECORD_KEY: _KIND_OF[type(record)], STEP_KEY: record.step}
    if isinstance(record, AgentState):
        if record.phase is not None:
            meta[PHASE_KEY] = record.phase
    elif isinstance(record, Action):
        meta.update(action=record.name, inputs=dict(record.inputs), result=record.result)
        if record.reward is not None:
            meta["reward"] = record.reward
        if record.outcome is not None:
            meta["outcome"] = record.outcome
    else:
        meta["participants"] = list(record.participants)
    meta.update(record.attributes)
    return meta


def plan_write(
    record: Record, *, agent_id: str, namespace: tuple[str, ...], now: float, ttl: float | None = None,
    importance: float = 0.5, embed: bool = True,
) -> MemoryInput:  # fmt: skip
    """The core write of one record (``remember_many`` input), for the log of ``agent_id``.

    Raises:
        InvalidMemoryError: the record is not a record, or belongs to another agent.
    """
    if type(record) not in _KIND_OF:
        raise InvalidMemoryError(f"expected an AgentState, Action or Interaction: {type(record).__name__}")
    if record.agent_id != agent_id:
        raise InvalidMemoryError(f"record of agent {record.agent_id!r} given to the log of {agent_id!r}")
    text = record_text(record)
    return MemoryInput(
        content=text, kind=Kind.EPISODIC, importance=importance, metadata=_metadata(record), ttl=ttl,
        agent_id=agent_id, namespace=namespace, created_at=now if record.at is None else record.at,
        key=record_key(record), embed=embed, texts=(text,) if embed else None,
    )  # fmt: skip


def _kinds(kinds: RecordKind | Sequence[RecordKind] | None) -> tuple[RecordKind, ...]:
    chosen = RECORD_KINDS if kinds is None else (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not chosen or any(k not in RECORD_KINDS for k in chosen):
        raise InvalidMemoryError(f"record kinds must be among {RECORD_KINDS}, got {kinds!r}")
    return chosen


def query(
    *, agent_id: str, namespace: tuple[str, ...], kinds: RecordKind | Sequence[RecordKind] | None = None,
    start_step: int | None = None, stop_step: int | None = None, created_after: float | None = None,
    created_before: float | None = None, where: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The core filter keywords (``list``, ``count``, ``recall``) selecting an agent's records.

    Args:
        agent_id: the agent.
        namespace: its namespace (exactly).
        kinds: record types (default: every one).
        start_step: steps from this one (inclusive), as ``range``.
        stop_step: steps before this one (exclusive).
        created_after: ``at >= created_after`` (the core's meaning).
        created_before: ``at < created_before``.
        where: conditions on attributes and record fields in the core's metadata language.
        fields: conditions the log adds itself (phase, action name, participant).

    Raises:
        InvalidMemoryError: bad steps, kinds, or a ``where`` that sets a key the other arguments set.
    """
    chosen = _kinds(kinds)
    metadata: dict[str, Any] = {RECORD_KEY: chosen[0] if len(chosen) == 1 else {"$in": list(chosen)}}
    steps: dict[str, int] = {}
    if start_step is not None:
        steps["$gte"] = _step(start_step, "start_step")
    if stop_step is not None:
        steps["$lt"] = _step(stop_step, "stop_step")
    if steps:
        metadata[STEP_KEY] = steps
    for key, condition in [*(fields or {}).items(), *(where or {}).items()]:
        if key in metadata:
            raise InvalidMemoryError(f"filter key {key!r} is set twice (by where= and by another argument)")
        metadata[key] = condition
    out: dict[str, Any] = {"agent_id": agent_id, "namespace": namespace, "metadata": metadata}
    if created_after is not None:
        out["created_after"] = created_after
    if created_before is not None:
        out["created_before"] = created_before
    return out


def record_from_memory(memory: Memory) -> Record | None:
    """The record a core memory holds, or ``None`` when it holds none (another writer's, or malformed)."""
    meta = dict(memory.metadata)
    kind = meta.pop(RECORD_KEY, None)
    if kind not in _OWN_FIELDS or memory.agent_id is None:
        return None
    step = meta.pop(STEP_KEY, None)
    own = {k: meta.pop(k) for k in _OWN_FIELDS[kind] if k in meta}
    phase = meta.pop(PHASE_KEY, None)
    attributes = {k: v for k, v in meta.items() if not k.startswith("agentmem:")}
    common: dict[str, Any] = dict(agent_id=memory.agent_id, step=step, attributes=attributes)
    common.update(at=memory.created_at, memory_id=memory.id)
    try:
        if kind == "state":
            return AgentState(phase=phase, **common)
        if kind == "action":
            own["name"] = own.pop("action", None)
            return Action(**own, **common)
        return Interaction(participants=own.get("participants", ()), content=memory.content, **common)
    except (InvalidMemoryError, TypeError):
        return None


def _canon(value: Any) -> str:
    # the core's equality: 1 == 1.0, True != 1, lists in order, objects by key
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if isinstance(v, Mapping):
            return {k: norm(x) for k, x in v.items()}
        return v

    return json.dumps(norm(value), sort_keys=True)


@dataclass(frozen=True)
class StateDiff:
    """What changed between two states: ``added`` / ``removed`` values, ``changed`` as ``(old, new)``."""

    added: Mapping[str, Any]
    removed: Mapping[str, Any]
    changed: Mapping[str, tuple[Any, Any]]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_states(before: AgentState | Mapping[str, Any], after: AgentState | Mapping[str, Any]) -> StateDiff:
    """The difference between two states (or two attribute mappings), by the core's equality."""
    old = before.attributes if isinstance(before, AgentState) else before
    new = after.attributes if isinstance(after, AgentState) else after
    return StateDiff(
        added={k: v for k, v in new.items() if k not in old},
        removed={k: v for k, v in old.items() if k not in new},
        changed={k: (old[k], v) for k, v in new.items() if k in old and _canon(old[k]) != _canon(v)},
    )


@dataclass(frozen=True)
class AttributeChange:
    """One change of an attribute: at ``step`` (in ``phase``) it went from ``old`` to ``new``.

    ``old`` or ``new`` is :data:`ABSENT` when the attribute appeared or disappeared.
    """

    attribute: str
    step: int
    phase: Phase | None
    old: Any
    new: Any
    at: float | None


def attribute_changes(states: Iterable[AgentState], attribute: str) -> list[AttributeChange]:
    """The changes of one attribute over states, in step order (before < unphased < after, then time).

    The first state is the baseline: each later state whose value differs from the one before it is a
    change (appearing and disappearing too).
    """
    ordered = sorted(states, key=lambda s: (s.step, _PHASE_RANK[s.phase], s.at or 0.0))
    out: list[AttributeChange] = []
    for prev, cur in zip(ordered, ordered[1:]):
        old, new = prev.attributes.get(attribute, ABSENT), cur.attributes.get(attribute, ABSENT)
        if (old is ABSENT) != (new is ABSENT) or (old is not ABSENT and _canon(old) != _canon(new)):
            out.append(AttributeChange(attribute, cur.step, cur.phase, old, new, cur.at))
    return out


@dataclass(frozen=True)
class AgentStats:
    """What the store holds of one agent's records.

    Attributes:
        agent_id: the agent; namespace: its namespace.
        counts: records per type (``state``, ``action``, ``interaction``; 0 when none).
        records: all of them.
        steps: how many distinct steps have a record; first_step / last_step: the range they cover.
        first_at / last_at: the time they cover (``created_at``).
        size_bytes: their UTF-8 content plus JSON metadata (what the records weigh in the store, besides
            vectors and index).
        skipped_writes: records a hook could not write (a failing store, or a state it could not build).
    """

    agent_id: str
    namespace: tuple[str, ...]
    counts: Mapping[str, int]
    records: int
    steps: int
    first_step: int | None
    last_step: int | None
    first_at: float | None
    last_at: float | None
    size_bytes: int
    skipped_writes: int = 0


class StatsTally:
    """Accumulates :class:`AgentStats` over the memories of a listing (one pass, any number of pages)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(RECORD_KINDS, 0)
        self.steps: set[int] = set()
        self.times: list[float] = []
        self.size = 0

    def add(self, memory: Memory) -> bool:
        """Count one memory (``True``: it is a record)."""
        kind, step = memory.metadata.get(RECORD_KEY), memory.metadata.get(STEP_KEY)
        if kind not in self.counts or isinstance(step, bool) or not isinstance(step, int):
            return False
        self.counts[kind] += 1
        self.steps.add(step)
        at = memory.created_at
        self.times = [min(self.times[0], at), max(self.times[1], at)] if self.times else [at, at]
        meta = json.dumps(dict(memory.metadata), ensure_ascii=False, separators=(",", ":"))
        self.size += len(memory.content.encode()) + len(meta.encode())
        return True

    def result(self, agent_id: str, namespace: tuple[str, ...], skipped_writes: int = 0) -> AgentStats:
        """The stats tallied so far."""
        first_at, last_at = self.times if self.times else (None, None)
        steps = self.steps
        return AgentStats(
            agent_id=agent_id, namespace=namespace, counts=dict(self.counts),
            records=sum(self.counts.values()), steps=len(steps), first_step=min(steps, default=None),
            last_step=max(steps, default=None), first_at=first_at, last_at=last_at, size_bytes=self.size,
            skipped_writes=skipped_writes,
        )  # fmt: skip


PAGE: Final = 1000


class Pager:
    """The page loop of a listing, so the sync and async logs loop alike over ``store.list``.

    ``accept`` takes each listed memory and says whether it counts toward ``limit`` (``None``: all).
    """

    def __init__(self, limit: int | None, accept: Callable[[Memory], bool]) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidMemoryError(f"limit must be an int >= 1 or None, got {limit!r}")
        self.limit, self.accept = limit, accept
        self.taken = 0
        self.cursor: str | None = None
        self.done = False

    @property
    def size(self) -> int:
        """The next page's size."""
        return PAGE if self.limit is None else min(PAGE, self.limit - self.taken)

    def take(self, page: Page) -> None:
        """Consume one page; :attr:`done` once the limit is reached or the listing ends."""
        for memory in page.memories:
            if self.accept(memory):
                self.taken += 1
                if self.taken == self.limit:
                    self.done = True
                    return
        self.cursor = page.next_cursor
        self.done = page.next_cursor is None
