"""Agent records: validation, the planned core writes and filters, decoding, diffs (pure), and the hooks'
mechanics over an embedded store (no network): idempotent keys, nesting, failures that never reach the agent.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from agentmem_core import (
    AsyncMemoryStore,
    BackendError,
    ConfigurationError,
    InvalidMemoryError,
    Kind,
    Memory,
    MemoryInput,
    MemoryStore,
)
from agentmem_core.agents import (
    ABSENT,
    Action,
    AgentLog,
    AgentState,
    Interaction,
    attribute_changes,
    diff_states,
    jsonable,
    memory_of,
    record_from_memory,
    record_key,
    record_text,
    remembers,
    with_memory,
)
from agentmem_core.agents.records import Pager, StatsTally, plan_write, query
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.types import Page

NOW = 1_800_000_000.0


def stored(item: MemoryInput, memory_id: str = "m1") -> Memory:
    """What the store gives back for a planned write: metadata through JSON, the scope, the time."""
    metadata = json.loads(json.dumps(item.metadata or {}, sort_keys=True))
    return Memory(
        id=memory_id, content=item.content, kind=Kind.parse(item.kind), importance=item.importance, tags=(),
        namespace=tuple(item.namespace or ()), thread_id=None, agent_id=item.agent_id, user_id=None,
        source=None, key=item.key, metadata=metadata, created_at=item.created_at or NOW,
        updated_at=NOW, expires_at=None,
    )  # fmt: skip


def plan(record: Any, **options: Any) -> MemoryInput:
    return plan_write(record, agent_id="w1", namespace=("grid",), now=NOW, **options)


# -- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: AgentState("", 0),
        lambda: AgentState("  ", 0),
        lambda: AgentState(None, 0),  # type: ignore[arg-type]
        lambda: AgentState("w1", -1),
        lambda: AgentState("w1", True),  # type: ignore[arg-type]
        lambda: AgentState("w1", 1.0),  # type: ignore[arg-type]
        lambda: AgentState("w1", 0, {"pos": {1, 2}}),
        lambda: AgentState("w1", 0, {"x": float("nan")}),
        lambda: AgentState("w1", 0, {"nested": {1: "a"}}),
        lambda: AgentState("w1", 0, {"obj": object()}),
        lambda: AgentState("w1", 0, {"step": 3}),
        lambda: AgentState("w1", 0, {"agentmem:record": "x"}),
        lambda: AgentState("w1", 0, {"": 1}),
        lambda: AgentState("w1", 0, [("x", 1)]),  # type: ignore[arg-type]
        lambda: AgentState("w1", 0, phase="during"),  # type: ignore[arg-type]
        lambda: AgentState("w1", 0, at=float("inf")),
        lambda: Action("w1", 0, ""),
        lambda: Action("w1", 0, "x" * 201),
        lambda: Action("w1", 0, "move", reward=float("nan")),
        lambda: Action("w1", 0, "move", reward=True),
        lambda: Action("w1", 0, "move", outcome=""),
        lambda: Action("w1", 0, "move", result=b"bytes"),
        lambda: Action("w1", 0, "move", attributes={"reward": 1}),
        lambda: Interaction("w1", 0, "bob", "hi"),
        lambda: Interaction("w1", 0, [], "hi"),
        lambda: Interaction("w1", 0, ["bob", ""], "hi"),
        lambda: Interaction("w1", 0, ["bob"], ""),
        lambda: Interaction("w1", 0, ["bob"], "hi", attributes={"participants": []}),
    ],
)
def test_bad_records_raise_typed_errors(build: Any) -> None:
    with pytest.raises(InvalidMemoryError):
        build()


def test_records_are_normalised_and_read_only() -> None:
    attributes = {"pos": (1, 2), "seen": {"a": (True, None)}}
    state = AgentState("w1", 3, attributes)
    attributes["pos"] = (9, 9)  # the caller's dict is not the record's
    assert state.attributes == {"pos": [1, 2], "seen": {"a": [True, None]}}
    with pytest.raises(TypeError):
        state.attributes["x"] = 1  # type: ignore[index]
    assert Action("w1", 0, "move", reward=1).reward == 1.0
    assert Interaction("w1", 0, ["a", "b"], "hi").participants == ("a", "b")


# -- planning ------------------------------------------------------------------------------------------
def test_a_state_becomes_one_episodic_memory_with_its_attributes_as_metadata() -> None:
    item = plan(AgentState("w1", 7, {"x": 3, "y": 4}, phase="before", at=NOW + 5))
    assert item.kind == Kind.EPISODIC
    assert (item.agent_id, item.namespace, item.created_at) == ("w1", ("grid",), NOW + 5)
    assert item.key == "agentmem:state:7:before"
    assert item.metadata == {
        "agentmem:record": "state",
        "step": 7,
        "agentmem:phase": "before",
        "x": 3,
        "y": 4,
    }
    assert item.content == "state of w1 at step 7 (before): x=3, y=4"
    assert item.texts == (item.content,) and item.embed  # texts=: write-time dedup never merges two steps
    assert plan(AgentState("w1", 7)).created_at == NOW  # no `at`: the store's clock
    unembedded = plan(AgentState("w1", 7), embed=False, ttl=60.0, importance=0.9)
    assert (unembedded.embed, unembedded.texts, unembedded.ttl, unembedded.importance) == (
        False,
        None,
        60.0,
        0.9,
    )


def test_keys_make_a_step_recorded_once() -> None:
    assert record_key(AgentState("w1", 7)) == "agentmem:state:7"
    assert record_key(AgentState("w1", 7, {"x": 1}, "after")) == record_key(
        AgentState("w1", 7, {"x": 2}, "after")
    )
    assert record_key(Action("w1", 7, "move")) == record_key(Action("w1", 7, "move", result=1))
    assert record_key(Action("w1", 7, "move")) != record_key(Action("w1", 7, "speak"))
    said = record_key(Interaction("w1", 7, ["a", "b"], "hi"))
    assert said == record_key(Interaction("w1", 7, ["a", "b"], "hi"))
    assert said != record_key(Interaction("w1", 7, ["a", "b"], "bye"))
    assert said != record_key(Interaction("w1", 7, ["a"], "hi"))


def test_action_and_interaction_texts() -> None:
    action = Action("w1", 2, "move", {"dx": 1, "to": "north"}, {"moved": True}, 0.5, "ok", {"episode": 3})
    assert record_text(action) == (
        'w1 at step 2 did move(dx=1, to=north) -> {"moved": true}; reward 0.5; outcome ok; episode=3'
    )
    assert record_text(Interaction("w1", 0, ["bob"], "hello bob")) == "hello bob"
    assert len(record_text(AgentState("w1", 0, {"blob": "x" * 10_000}))) == 4000


def test_a_record_of_another_agent_or_no_record_is_refused() -> None:
    with pytest.raises(InvalidMemoryError, match="another|of agent"):
        plan(AgentState("w2", 0))
    with pytest.raises(InvalidMemoryError):
        plan({"step": 0})


def test_queries_select_kinds_steps_times_and_attributes() -> None:
    flt = query(agent_id="w1", namespace=(), kinds="state", start_step=10, stop_step=20, where={"x": 3})
    assert flt == {
        "agent_id": "w1", "namespace": (),
        "metadata": {"agentmem:record": "state", "step": {"$gte": 10, "$lt": 20}, "x": 3},
    }  # fmt: skip
    both = query(
        agent_id="w1", namespace=("g",), kinds=["state", "action"], created_after=1.0, created_before=2.0
    )
    assert both["metadata"] == {"agentmem:record": {"$in": ["state", "action"]}}
    assert (both["created_after"], both["created_before"]) == (1.0, 2.0)
    assert query(agent_id="w1", namespace=())["metadata"]["agentmem:record"]["$in"] == [
        "state", "action", "interaction",
    ]  # fmt: skip
    for bad in ({"kinds": "plan"}, {"kinds": []}, {"start_step": -1}, {"stop_step": True}):
        with pytest.raises(InvalidMemoryError):
            query(agent_id="w1", namespace=(), **bad)
    with pytest.raises(InvalidMemoryError, match="twice"):
        query(agent_id="w1", namespace=(), start_step=1, where={"step": 3})
    with pytest.raises(InvalidMemoryError, match="twice"):
        query(agent_id="w1", namespace=(), fields={"agentmem:phase": "after"}, where={"agentmem:phase": "x"})


# -- decoding ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "record",
    [
        AgentState("w1", 4, {"x": 1, "pos": [1, 2], "mood": "ok"}, "after", NOW + 1),
        AgentState("w1", 0, at=NOW),
        Action("w1", 4, "move", {"dx": 1}, {"moved": True}, 1.0, "ok", {"episode": 2}, NOW + 2),
        Action("w1", 5, "wait", at=NOW),
        Interaction("w1", 4, ["w1", "bob"], "hello bob", {"channel": "radio"}, NOW + 3),
    ],
)
def test_records_read_back_as_written(record: Any) -> None:
    memory = stored(plan_write(record, agent_id="w1", namespace=(), now=NOW), memory_id="abc")
    back = record_from_memory(memory)
    assert back == record
    assert back is not None and back.memory_id == "abc"


def test_memories_that_hold_no_record_are_left_out() -> None:
    item = plan(AgentState("w1", 1, {"x": 1}))
    assert record_from_memory(stored(MemoryInput("a note", agent_id="w1"))) is None
    broken = stored(item)
    for metadata in ({**broken.metadata, "step": "one"}, {**broken.metadata, "agentmem:record": "plan"}):
        assert record_from_memory(Memory(**{**broken.__dict__, "metadata": metadata})) is None


# -- diffs and changes ----------------------------------------------------------------------------------
def test_diff_states_by_the_cores_equality() -> None:
    diff = diff_states({"x": 1, "y": 2, "on": True, "gone": 0}, {"x": 1.0, "y": 3, "on": 1, "new": [1]})
    assert diff.changed == {"y": (2, 3), "on": (True, 1)}  # 1 == 1.0, True != 1
    assert (diff.added, diff.removed) == ({"new": [1]}, {"gone": 0})
    assert diff and not diff_states({"a": [1, 2]}, {"a": [1, 2]})
    assert diff_states(AgentState("w", 0, {"a": 1}), AgentState("w", 1, {"a": 2})).changed == {"a": (1, 2)}


def test_attribute_changes_in_step_order() -> None:
    states = [
        AgentState("w", 1, {"x": 1}, "after", 3.0),
        AgentState("w", 0, {"x": 0}, "before", 1.0),
        AgentState("w", 1, {"x": 1}, "before", 2.0),
        AgentState("w", 0, {"x": 1}, "after", 1.5),
        AgentState("w", 2, {}, "before", 4.0),
        AgentState("w", 2, {"x": 5}, "after", 5.0),
    ]
    got = [(c.step, c.phase, c.old, c.new) for c in attribute_changes(states, "x")]
    assert got == [(0, "after", 0, 1), (2, "before", 1, ABSENT), (2, "after", ABSENT, 5)]
    assert attribute_changes([], "x") == [] and attribute_changes(states[:1], "x") == []


# -- stats and paging ------------------------------------------------------------------------------------
def test_stats_tally_and_pager() -> None:
    memories = [stored(plan(AgentState("w1", s, {"x": s}, at=NOW + s)), f"m{s}") for s in (3, 1, 2, 2)] + [
        stored(MemoryInput("note", agent_id="w1"))
    ]
    tally = StatsTally()
    pager = Pager(None, tally.add)
    pager.take(Page(tuple(memories[:2]), next_cursor="c"))
    assert (pager.done, pager.cursor, pager.size) == (False, "c", 1000)
    pager.take(Page(tuple(memories[2:])))
    assert pager.done
    stats = tally.result("w1", ("grid",), skipped_writes=4)
    assert stats.counts == {"state": 4, "action": 0, "interaction": 0} and stats.records == 4
    assert (stats.steps, stats.first_step, stats.last_step) == (3, 1, 3)
    assert (stats.first_at, stats.last_at, stats.skipped_writes) == (NOW + 1, NOW + 3, 4)
    assert stats.size_bytes > 4 * len("state of w1 at step 1: x=1")
    limited = Pager(2, lambda m: m.metadata.get("step") != 1)
    limited.take(Page(tuple(memories), next_cursor="more"))
    assert limited.done and limited.taken == 2
    with pytest.raises(InvalidMemoryError):
        Pager(0, tally.add)


def test_jsonable_keeps_json_and_shows_the_rest() -> None:
    assert jsonable({"a": (1, 2.5, None), "b": [True]}) == {"a": [1, 2.5, None], "b": [True]}
    assert jsonable(float("nan")) == "nan"
    assert jsonable({1: 2}) == "{1: 2}"
    assert jsonable(object()).startswith("<object object")
    assert len(jsonable("x" * 10, limit=5)) == 10 and len(jsonable(b"x" * 900)) == 500


# -- hooks over an embedded store -------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = MemoryStore.from_url(f"sqlite:///{tmp_path / 'a.db'}", name="agents", embedder=HashingEmbedder(16))
    s.setup()
    yield s
    s.close()


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.t = 0
        self._secret = "not state"

    def act(self, by: int = 1, *, note: Any = None) -> int:
        if by == 13:
            raise ValueError("unlucky")
        self.n += by
        self.t += 1
        return self.n


def test_with_memory_records_before_action_after_per_call(store: MemoryStore) -> None:
    agent = with_memory(Counter(), store, agent_id="c1", reward=lambda a, r: r / 10)
    assert agent.act(2) == 2 and agent.act(by=3, note=object()) == 5
    log = memory_of(agent).log
    assert isinstance(log, AgentLog)
    states = log.states()
    assert [(s.step, s.phase, s.attributes["n"]) for s in states] == [
        (0, "before", 0), (0, "after", 2), (1, "before", 2), (1, "after", 5),
    ]  # fmt: skip
    assert "_secret" not in states[0].attributes and "t" in states[0].attributes  # the default state
    actions = log.actions()
    assert [a.inputs["by"] for a in actions] == [2, 3] and actions[0].inputs["note"] is None
    assert actions[1].inputs["note"].startswith("<object")  # not JSON: its repr
    assert [(a.result, a.reward) for a in actions] == [(2, 0.2), (5, 0.5)]
    assert memory_of(agent).stats().counts == {"state": 4, "action": 2, "interaction": 0}
    with pytest.raises(ConfigurationError, match="already"):
        with_memory(agent, store, agent_id="c1")


def test_write_time_dedup_never_merges_into_a_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with MemoryStore.from_url(url, name="dedup", embedder=HashingEmbedder(16), dedup_threshold=0.5) as store:
        store.setup()
        log = AgentLog(store, "w1")
        ids = [log.record_state(step, {"x": 1}) for step in range(3)]  # keyed: never merged away
        note = store.remember(record_text(AgentState("w1", 2, {"x": 1})), agent_id="w1")  # the same text
        assert note not in ids and [s.step for s in log.states()] == [0, 1, 2]
        assert store.count(agent_id="w1") == 4


def test_a_raising_method_is_recorded_with_its_error_and_the_error_propagates(store: MemoryStore) -> None:
    agent = with_memory(Counter(), store, agent_id="c1", step="t")
    with pytest.raises(ValueError, match="unlucky"):
        agent.act(13)
    (failed,) = memory_of(agent).log.actions()
    assert failed.outcome == "error: ValueError: unlucky" and failed.step == 0
    agent.act(1)  # the retry of step 0 (t did not move) replaces its records: keys
    (action,) = memory_of(agent).log.actions()
    assert (action.step, action.outcome, action.result) == (0, None, 1)
    assert memory_of(agent).log.count() == 3


def test_the_class_decorator_one_scope_per_instance_and_nested_calls_once(store: MemoryStore) -> None:
    @remembers(store, agent_id=lambda c: c.name, state=lambda c: {"n": c.n})
    class Named(Counter):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    @remembers(store, agent_id=lambda c: c.name, state=lambda c: {"n": c.n})
    class Twice(Named):
        def act(self, by: int = 1, *, note: Any = None) -> int:
            return super().act(by) + super().act(by) * 0  # the base's hook runs inside: one step

    a, b, c = Named("a"), Named("b"), Twice("c")
    for _ in range(3):
        a.act()
    b.act(5)
    c.act()
    assert memory_of(a).log.count(kinds="action") == 3 and memory_of(b).log.count(kinds="action") == 1
    assert memory_of(c).log.count(kinds="action") == 1
    assert memory_of(c).log.states(phase="after")[0].attributes == {"n": 2}
    d = with_memory(Named("d"), store, agent_id="d-own")  # an instance hook over the class's: one step
    d.act()
    assert memory_of(d).agent_id == "d-own" and memory_of(d).log.count(kinds="action") == 1


def test_a_failing_store_never_breaks_the_agent(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agentmem.agents")
    agent = with_memory(Counter(), store, agent_id="c1")
    agent.act()
    real = store.remember_many

    def down(*args: Any, **kwargs: Any) -> Any:
        raise BackendError("disk on fire")

    monkeypatch.setattr(store, "remember_many", down)
    for _ in range(4):
        agent.act()
    monkeypatch.setattr(store, "remember_many", real)
    agent.act()
    hook = memory_of(agent)
    assert agent.n == 6 and (hook.written, hook.skipped_writes, hook.store_failures) == (6, 12, 4)
    assert hook.stats().skipped_writes == 12 and hook.stats().steps == 2
    mine = [r for r in caplog.records if r.name == "agentmem.agents"]
    assert [r.levelname for r in mine] == ["WARNING", "DEBUG", "DEBUG", "DEBUG", "INFO"]
    assert "disk on fire" in mine[0].getMessage() and "12 records skipped" in mine[-1].getMessage()


def test_bad_states_are_skipped_and_counted(store: MemoryStore, caplog: pytest.LogCaptureFixture) -> None:
    calls = iter([{"n": 0}, {"bad": {1, 2}}, ValueError("no state"), {"n": 1}])

    def state(agent: Any) -> Any:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    agent = with_memory(Counter(), store, agent_id="c1", state=state, reward=lambda a, r: "much")
    agent.act()
    agent.act()
    hook = memory_of(agent)
    assert (hook.invalid_records, hook.skipped_writes) == (4, 4)  # two states, two actions (a str reward)
    assert [s.attributes for s in hook.log.states()] == [{"n": 0}, {"n": 1}]
    assert sum(r.levelname == "WARNING" for r in caplog.records if r.name == "agentmem.agents") == 1


def test_an_agent_id_that_cannot_be_resolved_leaves_the_agent_running(store: MemoryStore) -> None:
    @remembers(store, agent_id=lambda c: c.missing)
    class Broken(Counter):
        pass

    agent = Broken()
    assert agent.act() == 1
    hook = memory_of(agent)
    assert hook.log is None and hook.problem is not None and "missing" in hook.problem
    with pytest.raises(ConfigurationError):
        hook.stats()


def test_misuse_is_refused_before_the_agent_runs(store: MemoryStore, tmp_path: Path) -> None:
    astore = AsyncMemoryStore.from_url(
        f"sqlite:///{tmp_path / 'b.db'}", name="agents", embedder=HashingEmbedder(16)
    )
    with pytest.raises(ConfigurationError, match="synchronous"):
        with_memory(Counter(), astore, agent_id="c1")
    with pytest.raises(ConfigurationError, match="no method"):
        with_memory(Counter(), store, agent_id="c1", method="run")
    with pytest.raises(ConfigurationError, match="store"):
        with_memory(Counter(), object(), agent_id="c1")  # type: ignore[arg-type]
    with pytest.raises(InvalidMemoryError):
        with_memory(Counter(), store, agent_id="")
    with pytest.raises(ConfigurationError, match="unknown"):
        with_memory(Counter(), store, agent_id="c1", user_id="x")
    with pytest.raises(ConfigurationError, match="has no memory hook"):
        memory_of(Counter())

    class Slotted:
        __slots__ = ("n",)

        def act(self) -> None:
            pass

    with pytest.raises(ConfigurationError, match="__dict__"):
        remembers(store, agent_id="s")(Slotted)
