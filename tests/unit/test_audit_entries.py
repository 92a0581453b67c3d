"""Audit entries (pure): what ``encode_entry`` stores, ``decode_entry`` reads back, ``entry_op`` appends."""

from __future__ import annotations

import json

from agentmem_core import AuditEntry
from agentmem_core._encoding import ScopeKey
from agentmem_core.audit import ACTIONS, MAX_IDS, decode_entry, encode_entry, entry_op
from agentmem_core.ops import AuditAppend

SCOPE = ScopeKey(("travel", "2026"), None, "planner", "ana")


def test_an_entry_round_trips_through_its_stored_fields() -> None:
    fields = encode_entry(
        at=1_800_000_000.25,
        action="supersede",
        ids=["a" * 32, "b" * 32],
        scope=SCOPE,
        actor="svc",
        detail={"subject": "employer", "by": "b" * 32},
    )
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    entry = decode_entry("1-0", fields)
    assert entry == AuditEntry(
        position="1-0",
        at=1_800_000_000.25,
        action="supersede",
        ids=("a" * 32, "b" * 32),
        count=2,
        scope={"namespace": ["travel", "2026"], "agent_id": "planner", "user_id": "ana"},  # unset: omitted
        actor="svc",
        detail={"subject": "employer", "by": "b" * 32},
    )
    assert entry.concerns("a" * 32) and entry.concerns("b" * 32)  # b: listed, and in the detail
    assert not entry.concerns("c" * 32)


def test_decoding_takes_bytes_as_a_valkey_reply_has_them() -> None:
    fields = encode_entry(at=5, action="forget", ids=["x"], scope=None, actor=None)
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    entry = decode_entry(b"7", raw)
    assert entry == decode_entry("7", fields)
    assert (entry.position, entry.at, entry.ids, entry.scope, entry.actor, entry.detail) == (
        "7", 5.0, ("x",), {}, None, {},
    )  # fmt: skip


def test_optional_fields_are_not_stored_when_unset() -> None:
    fields = encode_entry(at=1, action="remember", ids=["x"], scope=ScopeKey(), actor=None, detail={})
    assert set(fields) == {"at", "action", "ids", "count", "scope"}
    assert json.loads(fields["scope"]) == {}  # the root scope: nothing set
    assert "actor" in encode_entry(at=1, action="remember", ids=["x"], scope=None, actor="me")


def test_an_entry_lists_at_most_max_ids_and_counts_them_all() -> None:
    ids = [f"{n:032x}" for n in range(MAX_IDS + 50)]
    entry = decode_entry("1", encode_entry(at=1, action="evict", ids=ids, scope=SCOPE, actor=None))
    assert entry.ids == tuple(ids[:MAX_IDS]) and entry.count == MAX_IDS + 50
    assert not entry.concerns(ids[-1])  # not listed


def test_entry_op_appends_the_non_empty_entries_with_the_cap() -> None:
    op = entry_op(
        enabled=True,
        cap=42,
        at=10.0,
        actor="a",
        entries=[("remember", SCOPE, ["x"], None), ("forget", SCOPE, [], None), ("update", None, ["y"], {})],
    )
    assert isinstance(op, AuditAppend) and op.cap == 42
    assert [decode_entry("0", e).action for e in op.entries] == ["remember", "update"]  # empty ids: skipped
    assert all(decode_entry("0", e).actor == "a" and decode_entry("0", e).at == 10.0 for e in op.entries)


def test_entry_op_is_none_when_off_or_nothing_to_log() -> None:
    assert entry_op(enabled=False, cap=1, at=0, actor=None, entries=[("remember", None, ["x"], None)]) is None
    assert entry_op(enabled=True, cap=1, at=0, actor=None, entries=[("forget", None, [], None)]) is None
    assert entry_op(enabled=True, cap=1, at=0, actor=None, entries=[]) is None


def test_every_action_encodes() -> None:
    for action in ACTIONS:
        fields = encode_entry(at=1, action=action, ids=["i"], scope=None, actor=None)
        assert decode_entry("1", fields).action == action
