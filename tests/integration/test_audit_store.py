"""The audit trail's storage and read API: ``AuditAppend`` / ``AuditRange`` and ``audit()``, on every backend.

Entries are appended straight through the operations (the write flows' own appends are tested with them),
so every test knows exactly what the log holds. Positions differ by backend (a Valkey stream id, an SQLite
counter); they compare as tuples of their numbers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import valkey
from _support import Facade, open_like, valkey_only

from agentmem_core import AuditEntry, InvalidMemoryError, MemoryStore
from agentmem_core._encoding import ScopeKey
from agentmem_core._flows_audit import AUDIT_PAGE, CLOCK_SKEW_SECONDS
from agentmem_core._plan import Flow, batch, expect
from agentmem_core.audit import ACTIONS, encode_entry
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.ops import AuditAppend, AuditRange, ReadConfig

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0
ANA = ScopeKey(("travel",), None, None, "ana")
BO = ScopeKey((), "chat", "helper", "bo")


def entry(
    n: int,
    action: str = "remember",
    *,
    ids: Sequence[str] | None = None,
    scope: ScopeKey | None = ANA,
    at: float | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The stored fields of entry ``n`` (at ``T0 + n`` unless told, about memory ``m<n>`` unless told)."""
    return encode_entry(
        at=T0 + n if at is None else at,
        action=action,
        ids=[f"m{n}"] if ids is None else ids,
        scope=scope,
        actor="tester",
        detail=detail,
    )


def _ops_flow(ops: Sequence[Any]) -> Flow[list[Any]]:
    replies = yield batch(ops)
    return [expect(reply) for reply in replies]


async def run_ops(mem: Facade, *ops: Any) -> list[Any]:
    """Run operations in one batch through the store's driver (sync or async), errors raised."""
    return list(await mem._run("audit_test", _ops_flow(ops)))


async def append(mem: Facade, entries: Sequence[Mapping[str, str]], cap: int = 100_000) -> list[str]:
    (positions,) = await run_ops(mem, AuditAppend(tuple(entries), cap))
    return list(positions)


async def everything(mem: Facade) -> list[tuple[str, dict[str, str]]]:
    (rows,) = await run_ops(mem, AuditRange(None, 1_000_000))
    return list(rows)


def order(position: str) -> tuple[int, ...]:
    return tuple(int(part) for part in position.split("-"))


# -- storage: the two operations ---------------------------------------------------------------------------
async def test_append_then_range_round_trips_the_fields_newest_first(mem: Facade) -> None:
    stored = [entry(1), entry(2, "forget", scope=None), entry(3, "supersede", detail={"subject": "job"})]
    positions = await append(mem, stored)
    assert len(positions) == 3 and all(isinstance(p, str) for p in positions)
    rows = await everything(mem)
    assert rows == [(positions[2], stored[2]), (positions[1], stored[1]), (positions[0], stored[0])]
    (newest,) = await mem.audit(limit=1)
    assert newest == AuditEntry(
        position=positions[2],
        at=T0 + 3,
        action="supersede",
        ids=("m3",),
        count=1,
        scope={"namespace": ["travel"], "user_id": "ana"},
        actor="tester",
        detail={"subject": "job"},
    )


async def test_an_empty_log_reads_empty(mem: Facade) -> None:
    assert await everything(mem) == []
    assert await mem.audit() == []
    assert await append(mem, []) == []  # nothing to append: nothing sent, nothing stored
    assert await everything(mem) == []


async def test_positions_increase_across_appends_and_batches(mem: Facade) -> None:
    positions = await append(mem, [entry(n) for n in range(5)])
    positions += await append(mem, [entry(5)])
    first, second = await run_ops(mem, AuditAppend((entry(6),), 100), AuditAppend((entry(7), entry(8)), 100))
    positions += first + second
    assert len(set(positions)) == 9
    assert [order(p) for p in positions] == sorted(order(p) for p in positions)
    assert [p for p, _ in await everything(mem)] == positions[::-1]


async def test_before_pages_back_without_overlap_or_gaps(mem: Facade) -> None:
    positions = await append(mem, [entry(n) for n in range(1234)])
    newest_first = positions[::-1]
    # the operation: strictly before, newest first
    pages: list[str] = []
    before: str | None = None
    while True:
        (rows,) = await run_ops(mem, AuditRange(before, 97))
        pages += [p for p, _ in rows]
        if len(rows) < 97:
            break
        before = rows[-1][0]
    assert pages == newest_first
    # the read API: the last entry's position continues the listing
    listed: list[AuditEntry] = []
    before = None
    while page := await mem.audit(limit=300, before=before):
        listed += page
        before = page[-1].position
    assert [e.position for e in listed] == newest_first
    assert [e.at for e in listed] == [T0 + n for n in range(1233, -1, -1)]
    assert await mem.audit(limit=5, before=positions[0]) == []  # nothing before the first


async def test_the_cap_keeps_the_newest_entries(mem: Facade, valkey_url: str) -> None:
    cap = 10
    positions: list[str] = []
    for start in range(0, 1000, 100):  # ten appends, each trimming the log
        positions += await append(mem, [entry(n) for n in range(start, start + 100)], cap=cap)
    kept = [p for p, _ in await everything(mem)]
    assert kept == positions[::-1][: len(kept)]  # the newest, and only those
    if mem.backend == "valkey":
        # MAXLEN ~ drops whole stream nodes only: at least cap stay, and less than one node more
        with valkey.Valkey.from_url(valkey_url) as client:
            node = int(client.config_get("stream-node-max-entries")["stream-node-max-entries"])
        assert cap <= len(kept) < cap + node
    else:
        assert len(kept) == cap  # exact
    # one entry per append trims too
    more = [(await append(mem, [entry(2000 + n)], cap=cap))[0] for n in range(300)]
    kept = [p for p, _ in await everything(mem)]
    assert kept == more[::-1][: len(kept)] and len(kept) >= cap
    assert len(kept) == cap or mem.backend == "valkey"


async def test_on_valkey_the_log_is_one_stream_per_store(mem: Facade, valkey_url: str) -> None:
    valkey_only(mem, "the stream's key and length")
    await append(mem, [entry(n) for n in range(3)])
    key = f"am:{mem.store.keys.store}:audit"
    with valkey.Valkey.from_url(valkey_url) as client:
        assert client.type(key) == b"stream" and client.xlen(key) == 3


# -- the read API: filters ---------------------------------------------------------------------------------
async def seed(mem: Facade) -> list[str]:
    """Twelve entries: three scopes, several actions, ids in ``ids`` and in details."""
    return await append(
        mem,
        [
            entry(0, "remember", ids=["a", "b"], scope=ANA),
            entry(1, "remember", ids=["c"], scope=BO),
            entry(2, "update", ids=["a"], scope=ANA),
            entry(3, "merge", ids=["b"], scope=ANA, detail={"into": "b"}),
            entry(4, "forget", ids=["c"], scope=BO),
            entry(5, "evict", ids=["x", "y", "z"], scope=ScopeKey(("travel", "2026"), None, None, "ana")),
            entry(6, "supersede", ids=["d"], scope=ANA, detail={"subject": "job", "by": "e"}),
            entry(7, "retract", ids=["e"], scope=ANA, detail={"subject": "job"}),
            entry(8, "consolidate", ids=["a", "d"], scope=ANA, detail={"summary": "s"}),
            entry(9, "import", ids=["f"], scope=ScopeKey()),
            entry(10, "forget", ids=["g"], scope=None),
            entry(11, "remember", ids=["h"], scope=ScopeKey((), None, None, "ana")),
        ],
    )


def numbers(entries: Sequence[AuditEntry]) -> list[int]:
    return [round(e.at - T0) for e in entries]


async def test_filters_by_action(mem: Facade) -> None:
    await seed(mem)
    assert numbers(await mem.audit(actions=["forget"])) == [10, 4]
    assert numbers(await mem.audit(actions=["remember", "merge"])) == [11, 3, 1, 0]
    assert numbers(await mem.audit(actions="evict")) == [5]  # one name alone
    assert numbers(await mem.audit(actions=ACTIONS)) == numbers(await mem.audit()) == list(range(11, -1, -1))


async def test_filters_by_memory_id(mem: Facade) -> None:
    await seed(mem)
    assert numbers(await mem.audit(memory_id="a")) == [8, 2, 0]
    assert numbers(await mem.audit(memory_id="e")) == [7, 6]  # listed in 7, in 6's detail
    assert numbers(await mem.audit(memory_id="b")) == [3, 0]
    assert await mem.audit(memory_id="nobody") == []


async def test_filters_by_scope(mem: Facade) -> None:
    await seed(mem)
    assert numbers(await mem.audit(user_id="ana")) == [11, 8, 7, 6, 5, 3, 2, 0]
    assert numbers(await mem.audit(user_id="ana", namespace="travel")) == [8, 7, 6, 3, 2, 0]  # exact
    assert numbers(await mem.audit(namespace=["travel", "2026"])) == [5]
    assert numbers(await mem.audit(namespace=[], user_id="ana")) == [11]  # the root namespace
    assert numbers(await mem.audit(thread_id="chat", agent_id="helper")) == [4, 1]
    assert numbers(await mem.audit(thread_id="chat", user_id="ana")) == []
    assert numbers(await mem.audit(user_id="bo", actions=["forget"])) == [4]


async def test_filters_by_time_window_and_limit(mem: Facade) -> None:
    await seed(mem)
    assert numbers(await mem.audit(since=T0 + 9)) == [11, 10, 9]  # inclusive
    assert numbers(await mem.audit(until=T0 + 2)) == [2, 1, 0]  # inclusive
    assert numbers(await mem.audit(since=T0 + 3, until=T0 + 5.5)) == [5, 4, 3]
    assert numbers(await mem.audit(since=T0 + 3, until=T0 + 3)) == [3]
    assert numbers(await mem.audit(limit=2)) == [11, 10]
    assert numbers(await mem.audit(limit=2, user_id="ana")) == [11, 8]
    page = await mem.audit(limit=2, user_id="ana")
    assert numbers(await mem.audit(limit=3, user_id="ana", before=page[-1].position)) == [7, 6, 5]


async def test_filters_look_past_the_first_pages(mem: Facade) -> None:
    rare = ScopeKey((), None, None, "rare")
    stored = [entry(n, scope=rare if n % 700 == 0 else ANA) for n in range(3 * AUDIT_PAGE)]
    await append(mem, stored)
    assert numbers(await mem.audit(user_id="rare")) == [1400, 700, 0]
    assert numbers(await mem.audit(user_id="rare", limit=2)) == [1400, 700]
    assert numbers(await mem.audit(memory_id="m3")) == [3]


async def test_since_ends_the_scan_at_entries_older_than_it(mem: Facade) -> None:
    # written in this order: a recent entry, an old one, a recent one; clocks may go back a little, so
    # an entry within CLOCK_SKEW_SECONDS of since does not end the scan, an older one does
    await append(
        mem,
        [
            entry(1, at=T0),
            entry(2, at=T0 - 2 * CLOCK_SKEW_SECONDS),  # older than since by more than the skew
            entry(3, at=T0 + 5),
            entry(4, at=T0 - CLOCK_SKEW_SECONDS / 2),  # older than since, within the skew
            entry(5, at=T0 + 10),
        ],
    )
    found = await mem.audit(since=T0)
    assert [e.ids for e in found] == [("m5",), ("m3",)]  # m1 lies behind the old entry: not read
    assert [e.ids for e in await mem.audit()] == [("m5",), ("m4",), ("m3",), ("m2",), ("m1",)]


# -- the read API: bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 10_001},
        {"limit": True},
        {"limit": "5"},
        {"limit": 2.0},
        {"actions": ["nope"]},
        {"actions": ["forget", "nope"]},
        {"actions": []},
        {"actions": 5},
        {"since": float("nan")},
        {"until": float("inf")},
        {"since": "yesterday"},
        {"since": True},
        {"since": T0 + 1, "until": T0},
        {"before": 5},
        {"before": ""},
        {"before": "abc"},
        {"before": "1-2-3"},
        {"before": "-1"},
        {"before": str(2**64)},
        {"memory_id": ""},
        {"memory_id": 7},
        {"user_id": ""},
        {"thread_id": 3},
        {"namespace": [""]},
        {"namespace": 5},
    ],
)
async def test_bad_input_is_a_typed_error(mem: Facade, kwargs: dict[str, Any]) -> None:
    await append(mem, [entry(1)])
    with pytest.raises(InvalidMemoryError):
        await mem.audit(**kwargs)


async def test_nothing_lies_before_position_zero(mem: Facade) -> None:
    await append(mem, [entry(1)])
    assert await mem.audit(before="0") == [] and await mem.audit(before="0-0") == []


async def test_a_position_past_every_entry_reads_them_all(mem: Facade) -> None:
    positions = await append(mem, [entry(1), entry(2)])
    far = str(2**64 - 1) if mem.backend == "sqlite" else f"{2**64 - 1}-{2**64 - 1}"  # past SQLite ints
    assert [e.position for e in await mem.audit(before=far)] == positions[::-1]


async def test_an_sqlite_store_refuses_a_valkey_position(mem: Facade) -> None:
    if mem.backend != "sqlite":
        pytest.skip("SQLite positions are plain numbers")
    await append(mem, [entry(1)])
    with pytest.raises(InvalidMemoryError, match="not a position of this store"):
        await mem.audit(before="1700000000000-0")


# -- stores, files and clusters ----------------------------------------------------------------------------
async def test_stores_of_different_names_keep_separate_logs(mem: Facade, valkey_url: str) -> None:
    other = await open_like(mem, valkey_url, mem.store.keys.store + "_b")
    try:
        await append(mem, [entry(1), entry(2)])
        await append(other, [entry(3)])
        assert numbers(await mem.audit()) == [2, 1]
        assert numbers(await other.audit()) == [3]
    finally:
        await other.close()


async def test_two_store_objects_of_one_name_share_the_log(mem: Facade, valkey_url: str) -> None:
    twin = await open_like(mem, valkey_url, mem.store.keys.store)
    try:
        await append(mem, [entry(1)])
        await append(twin, [entry(2)])
        assert numbers(await mem.audit()) == numbers(await twin.audit()) == [2, 1]
    finally:
        await twin.close()


def test_an_sqlite_file_from_before_the_audit_trail_gets_its_table(tmp_path: Any, unique_name: str) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    store = MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64))
    store.setup()
    store.close()
    with sqlite3.connect(path) as conn:  # the layout of a version without the audit table
        conn.execute(f'DROP TABLE "am_{unique_name}_audit"')
    store = MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64))  # no setup()
    try:
        assert store.audit() == []  # reading: no table is no entry
        (positions,) = store._run("audit_test", _ops_flow([AuditAppend((entry(1),), 10)]))
        assert [e.position for e in store.audit()] == positions
    finally:
        store.close()


def test_a_cluster_store_appends_and_reads_its_log(cluster_url: str, unique_name: str) -> None:
    # the stream is a key of its own (its own slot), so it rides in a batch with keys of other slots
    client = valkey.ValkeyCluster.from_url(cluster_url)  # type: ignore[no-untyped-call]
    store = MemoryStore(client, name=unique_name, embedder=HashingEmbedder(64), owns_client=True)
    try:
        positions, config = store._run(
            "audit_test", _ops_flow([AuditAppend(tuple(entry(n) for n in range(30)), 100), ReadConfig()])
        )
        assert len(positions) == 30 and isinstance(config, dict)
        (more,) = store._run("audit_test", _ops_flow([AuditAppend((entry(30),), 100)]))
        assert [e.position for e in store.audit(limit=100)] == (positions + more)[::-1]
        assert numbers(store.audit(limit=3, before=more[0])) == [29, 28, 27]
    finally:
        store.close()
