"""Agent records and hooks on every backend, sync and async: a grid walker runs 200 steps with hooks on.

Every step is recorded once, the state diffs are the walker's moves, and queries by step range, attribute,
time and similarity return exactly the records the walk produced (with step ranges on the client and
inside the index, ``numeric_fields=("step",)``). The same walk with the backend failing mid-way (Valkey
stopped, the SQLite file made immutable) finishes, and reports the writes it skipped.
"""

from __future__ import annotations

import inspect
import logging
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _support import Clock, Facade, open_like

from agentmem_core import AsyncMemoryStore, BackendConnectionError, MemoryStore
from agentmem_core.agents import AgentState, diff_states, memory_of, record_text, remembers, with_memory
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.testing.server import ValkeyServer

STEPS = 200
MOVES = {"N": (0, 1), "E": (1, 0), "S": (0, -1), "W": (-1, 0)}


async def done(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class GridWalker:
    """Walks a 10x10 grid: a move costs energy, bumping into a wall rests, some cells hold a key."""

    def __init__(self) -> None:
        self.x, self.y, self.energy, self.keys, self.t = 0, 0, 20, 0, 0
        self.stumble_at: int | None = None

    def _move(self, direction: str) -> dict[str, Any]:
        if self.t == self.stumble_at:  # fails once, before changing anything: the loop retries the step
            self.stumble_at = None
            raise RuntimeError("stumbled")
        dx, dy = MOVES[direction]
        x, y = min(9, max(0, self.x + dx)), min(9, max(0, self.y + dy))
        moved = (x, y) != (self.x, self.y)
        self.x, self.y = x, y
        self.energy += -1 if moved else 2
        self.keys += moved and (x * y) % 7 == 3
        self.t += 1
        return {"moved": moved, "at": [x, y]}

    def act(self, direction: str) -> dict[str, Any]:
        return self._move(direction)


class AsyncGridWalker(GridWalker):
    async def act(self, direction: str) -> dict[str, Any]:  # type: ignore[override]
        return self._move(direction)


def snapshot(w: GridWalker) -> dict[str, int]:
    return {"x": w.x, "y": w.y, "energy": w.energy, "keys": w.keys}


def hooked(store: Any, agent_id: str) -> GridWalker:
    walker = AsyncGridWalker() if isinstance(store, AsyncMemoryStore) else GridWalker()
    walker.stumble_at = 150
    return with_memory(walker, store, agent_id=agent_id, state=snapshot, step="t",
                       reward=lambda w, r: 0.0 if r["moved"] else -1.0)  # fmt: skip


async def walk(
    walker: GridWalker, clock: Clock, steps: int = STEPS, events: Any = None
) -> list[dict[str, Any]]:
    """Run the walker; returns what really happened per step (the truth the log must match)."""
    rng = random.Random(11)
    truth = []
    for step in range(steps):
        if events and step in events:
            await done(events[step]())
        clock.now += 1.0
        direction = rng.choice("NESWN")
        before = snapshot(walker)
        try:
            result = await done(walker.act(direction))
        except RuntimeError:
            result = await done(walker.act(direction))  # the retry of the same step
        truth.append({"step": step, "before": before, "direction": direction, "result": result,
                      "after": snapshot(walker), "at": clock.now})  # fmt: skip
    return truth


@pytest.mark.parametrize("indexed", [False, True], ids=["steps-on-client", "steps-in-index"])
async def test_a_200_step_walk_is_recorded_once_and_queryable(
    mem: Facade, unique_name: str, valkey_url: str, indexed: bool
) -> None:
    clock: Clock = mem.clock  # type: ignore[attr-defined]
    facade = (
        await open_like(mem, valkey_url, unique_name + "n", numeric_fields=("step",), clock=clock)
        if indexed
        else mem
    )
    try:
        walker = hooked(facade.store, "walker-1")
        truth = await walk(walker, clock)
        hook = memory_of(walker)
        log = hook.log
        assert log is not None and log.indexed_steps is indexed
        assert (hook.written, hook.skipped_writes) == (3 * STEPS + 3, 0)  # + the stumble's records, replaced

        stats = await done(hook.stats())
        assert stats.counts == {"state": 2 * STEPS, "action": STEPS, "interaction": 0}
        assert (stats.steps, stats.first_step, stats.last_step, stats.skipped_writes) == (
            STEPS,
            0,
            STEPS - 1,
            0,
        )
        assert (stats.first_at, stats.last_at) == (truth[0]["at"], truth[-1]["at"]) and stats.size_bytes > 0

        # every step once, each state as it was, each diff the walker's move
        actions = await done(log.actions())
        assert [a.step for a in actions] == list(range(STEPS))
        for action, t in zip(actions, truth):
            assert (action.inputs, action.result, action.at) == (
                {"direction": t["direction"]},
                t["result"],
                t["at"],
            )
            assert action.reward == (0.0 if t["result"]["moved"] else -1.0) and action.outcome is None
        states = await done(log.states())
        by_step = {(s.step, s.phase): s for s in states}
        assert len(by_step) == len(states) == 2 * STEPS
        for t in truth:
            before, after = by_step[t["step"], "before"], by_step[t["step"], "after"]
            assert (before.attributes, after.attributes) == (t["before"], t["after"])
            diff = diff_states(before, after)
            expected = {k: (t["before"][k], v) for k, v in t["after"].items() if t["before"][k] != v}
            assert diff.changed == expected and not diff.added and not diff.removed
        xs = [(c.step, c.old, c.new) for c in await done(log.changes("x"))]
        assert xs == [
            (t["step"], t["before"]["x"], t["after"]["x"])
            for t in truth
            if t["before"]["x"] != t["after"]["x"]
        ]

        # by step range, attribute values, time and similarity
        window = await done(log.states(phase="before", start_step=50, stop_step=60))
        assert [(s.step, s.attributes) for s in window] == [(t["step"], t["before"]) for t in truth[50:60]]
        assert await done(log.count(start_step=190)) == 30
        where = {"x": {"$gte": 5}, "keys": {"$gt": 0}, "energy": {"$lt": 25}}
        found = await done(log.states(phase="after", where=where))
        want = [
            t["step"]
            for t in truth
            if t["after"]["x"] >= 5 and t["after"]["keys"] > 0 and t["after"]["energy"] < 25
        ]
        assert [s.step for s in found] == want and want
        bumps = await done(log.actions(where={"reward": -1.0, "inputs.direction": "N"}))
        assert [a.step for a in bumps] == [
            t["step"] for t in truth if not t["result"]["moved"] and t["direction"] == "N"
        ]
        timed = await done(log.records(created_after=truth[100]["at"], created_before=truth[110]["at"]))
        assert sorted({r.step for r in timed}) == list(range(100, 110)) and len(timed) == 30
        target = AgentState("walker-1", 123, truth[123]["after"], "after")
        (hit,) = await done(log.similar(record_text(target), k=1, kinds="state"))
        assert (hit.record.step, hit.record.phase) == (123, "after") and hit.distance < 1e-3
        vector = HashingEmbedder(64).embed([record_text(target)])[0]
        (hit,) = await done(log.similar(vector, k=1))
        assert (hit.record.step, hit.record.phase) == (123, "after")
        action_hits = await done(log.similar("walker-1 at step 7 did act(direction=N)", k=5, kinds="action"))
        assert len(action_hits) == 5 and all(h.record in actions for h in action_hits)

        # recent states, one state by its key
        recent = await done(log.recent_states(3))
        assert [(s.step, s.phase) for s in recent] == [(199, "after"), (199, "before"), (198, "after")]
        assert [s.step for s in await done(log.recent_states(2, phase="before"))] == [199, 198]
        at_77 = await done(log.state_at(77, phase="before"))
        assert at_77 is not None and at_77.attributes == truth[77]["before"]
        assert await done(log.state_at(77)) is None and await done(log.state_at(999, phase="after")) is None
    finally:
        if facade is not mem:
            await facade.close()


async def test_interactions_and_decorated_agents(mem: Facade) -> None:
    store = mem.store
    sync = isinstance(store, MemoryStore)
    base = GridWalker if sync else AsyncGridWalker

    @remembers(store, agent_id=lambda w: w.name, state=snapshot, namespace=["grid", "run-1"])
    class Named(base):  # type: ignore[misc, valid-type]
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    first, second = Named("a"), Named("b")
    for step in range(6):
        await done(first.act("E"))
        if step % 2:
            await done(second.act("N"))
    log_a, log_b = memory_of(first).log, memory_of(second).log
    assert log_a is not None and log_b is not None and log_a.namespace == ("grid", "run-1")
    assert (await done(log_a.count(kinds="action")), await done(log_b.count(kinds="action"))) == (6, 3)
    assert [c.new for c in await done(log_b.changes("y"))] == [1, 2, 3]
    await done(log_a.record_interaction(5, ["a", "b"], "a tells b where the key is"))
    await done(log_a.record_interaction(5, ["a", "b"], "a tells b where the key is"))  # once: its key
    await done(log_a.record_interaction(5, ["a", "c"], "a greets c"))
    said = await done(log_a.interactions(participant="b"))
    assert [(i.step, i.participants, i.content) for i in said] == [
        (5, ("a", "b"), "a tells b where the key is")
    ]
    (hit,) = await done(log_a.similar("where is the key", k=1, kinds="interaction"))
    assert hit.record == said[0]
    assert (await done(log_a.stats())).counts == {"state": 12, "action": 6, "interaction": 2}


# -- the backend failing mid-way --------------------------------------------------------------------------
async def failing_walk(
    store: Any, clock: Clock, fail: Any, heal: Any, caplog: pytest.LogCaptureFixture
) -> Any:
    """Walk 200 steps; the backend fails at step 100 and works again at step 150."""
    caplog.set_level(logging.INFO, logger="agentmem.agents")
    walker = hooked(store, "walker-f")
    hook = memory_of(walker)
    during: dict[str, Any] = {}

    async def heal_and_look() -> None:
        during["skipped"] = hook.skipped_writes
        try:
            during["stats"] = await done(hook.stats())
        except BackendConnectionError as exc:
            during["stats"] = exc
        await done(heal())

    truth = await walk(walker, clock, events={100: fail, 150: heal_and_look})
    assert snapshot(walker) == truth[-1]["after"]  # the agent ran on as if unhooked
    assert during["skipped"] == 3 * 50 and hook.skipped_writes == 3 * 50 and hook.store_failures == 50
    stats = await done(hook.stats())
    assert (stats.skipped_writes, stats.steps) == (150, 150)
    assert stats.counts == {"state": 300, "action": 150, "interaction": 0}
    assert hook.log is not None
    kept = [a.step for a in await done(hook.log.actions())]
    assert kept == [*range(100), *range(150, STEPS)]
    mine = [r for r in caplog.records if r.name == "agentmem.agents"]
    assert [r.levelname for r in mine if r.levelno >= logging.INFO] == ["WARNING", "INFO"]
    assert "150 records skipped" in mine[-1].getMessage()
    return during["stats"]


@pytest.mark.parametrize("colour", ["sync", "async"])
async def test_the_walk_survives_valkey_stopping(
    colour: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # appendonly + our own --dir: the restarted server has the first half back
    server = ValkeyServer(search=True, extra_args=["--dir", str(tmp_path), "--appendonly", "yes"]).start()
    clock = Clock()
    cls = MemoryStore if colour == "sync" else AsyncMemoryStore
    store: Any = cls.from_url(
        server.url, name="walk", embedder=HashingEmbedder(64), clock=clock, numeric_fields=("step",)
    )
    try:
        await done(store.setup())

        async def restart() -> None:
            server.start()
            for _ in range(100):  # until the client has reconnected: the walk resumes on a working store
                try:
                    await done(store.count())
                    return
                except BackendConnectionError:
                    pass
            raise AssertionError("the restarted server does not answer")

        during = await failing_walk(store, clock, server.stop, restart, caplog)
        assert isinstance(during, BackendConnectionError)  # stats read the store: down, they raise
    finally:
        await done(store.close())
        server.stop()


@pytest.mark.parametrize("colour", ["sync", "async"])
async def test_the_walk_survives_a_read_only_sqlite_file(
    colour: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A chmod does not stop a connection that has the file open (nor root): SQLite keeps writing through
    # its file descriptors. An immutable file (chattr +i) fails every write at once, as root too.
    db = tmp_path / "walk.db"
    clock = Clock()
    cls = MemoryStore if colour == "sync" else AsyncMemoryStore
    store: Any = cls.from_url(f"sqlite:///{db}", name="walk", embedder=HashingEmbedder(64), clock=clock)
    files = [str(db), f"{db}-wal"]

    def chattr(flag: str) -> None:
        subprocess.run(["chattr", flag, *files], check=True, capture_output=True)

    try:
        await done(store.setup())
        await done(store.remember("probe", key="probe"))
        try:
            chattr("+i")
            chattr("-i")
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(
                f"cannot make the file immutable here (chattr +i needs root and ext4/xfs/btrfs): {exc}"
            )
        during = await failing_walk(store, clock, lambda: chattr("+i"), lambda: chattr("-i"), caplog)
        assert during.skipped_writes == 150 and during.steps == 100  # reads work on a read-only file
    finally:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", *files], capture_output=True)
        await done(store.close())
