"""``agentmem audit``: the audit trail on the command line, in-process (``main([...])``), on both backends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agentmem_core import MemoryStore
from agentmem_core._encoding import ScopeKey
from agentmem_core._plan import Flow, batch, expect
from agentmem_core.audit import encode_entry
from agentmem_core.cli import main
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.ops import AuditAppend

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
ANA = ScopeKey(("travel", "2026"), None, None, "ana")
BO = ScopeKey((), "chat", None, "bo")


def _append(entries: Sequence[dict[str, str]]) -> Flow[Any]:
    (reply,) = yield batch([AuditAppend(tuple(entries), 1000)])
    return expect(reply)


def seeded(url: str, name: str) -> list[str]:
    """A store whose log holds six known entries (appended directly: no write of its own adds any)."""
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(64))
    store.setup()
    try:
        rows = [
            ("remember", ANA, ["a" * 32, "b" * 32], None),
            ("remember", BO, ["c" * 32], None),
            ("update", ANA, ["a" * 32], None),
            ("forget", BO, ["c" * 32], None),
            ("supersede", ANA, ["d" * 32], {"subject": "employer", "by": "e" * 32}),
            ("evict", ANA, [f"{n:032x}" for n in range(150)], None),
        ]
        entries = [
            encode_entry(at=T0 + 60 * n, action=a, ids=ids, scope=scope, actor="cli-test", detail=detail)
            for n, (a, scope, ids, detail) in enumerate(rows)
        ]
        return list(store._run("seed", _append(entries)))
    finally:
        store.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(params=["valkey", "sqlite"])
def target(
    request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path, unique_name: str
) -> tuple[list[str], list[str]]:
    """``--url URL --name NAME`` of a seeded store on either backend, and its entries' positions."""
    url = valkey_url if request.param == "valkey" else f"sqlite:///{tmp_path / 'cli.db'}"
    return ["--url", url, "--name", unique_name], seeded(url, unique_name)


def test_audit_prints_a_table_newest_first(
    capsys: pytest.CaptureFixture[str], target: tuple[list[str], list[str]]
) -> None:
    store, positions = target
    code, out, err = run(capsys, *store, "audit")
    lines = out.splitlines()
    assert code == 0 and err == "" and len(lines) == 6
    assert [line.split()[0] for line in lines] == positions[::-1]
    assert lines[0].split()[1:5] == ["2027-01-15", "08:05:00", "evict", "150"]
    assert "cli-test" in lines[0] and "ns=travel/2026 user=ana" in lines[0] and "(+147 more)" in lines[0]
    assert '"subject": "employer"' in lines[1] and "supersede" in lines[1]
    assert "thread=chat user=bo" in lines[2] and "forget" in lines[2]


def test_audit_filters_and_json_lines(
    capsys: pytest.CaptureFixture[str], target: tuple[list[str], list[str]]
) -> None:
    store, positions = target
    code, out, _ = run(capsys, *store, "audit", "--json", "--user", "bo")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["action"] for r in rows] == ["forget", "remember"]
    assert rows[0] == {
        "position": positions[3],
        "at": T0 + 180,
        "action": "forget",
        "ids": ["c" * 32],
        "count": 1,
        "scope": {"thread_id": "chat", "user_id": "bo"},
        "actor": "cli-test",
        "detail": {},
    }
    code, out, _ = run(capsys, "audit", *store, "--json", "--action", "remember", "--action", "update")
    assert code == 0 and [json.loads(line)["action"] for line in out.splitlines()] == [
        "update", "remember", "remember",
    ]  # fmt: skip
    code, out, _ = run(capsys, *store, "audit", "--json", "--memory-id", "a" * 32)
    assert code == 0 and [json.loads(line)["position"] for line in out.splitlines()] == [
        positions[2],
        positions[0],
    ]
    code, out, _ = run(capsys, *store, "audit", "--json", "--namespace", "travel/2026", "--thread", "chat")
    assert code == 0 and out == ""
    # --since / --until: Unix seconds or ISO 8601 (UTC unless it says), inclusive
    code, out, _ = run(
        capsys, *store, "audit", "--json", "--since", str(T0 + 120), "--until", "2027-01-15T08:04:00"
    )
    assert code == 0 and [json.loads(line)["action"] for line in out.splitlines()] == [
        "supersede",
        "forget",
        "update",
    ]
    code, out, _ = run(capsys, *store, "audit", "--json", "--since", "2027-01-15T09:04:00+01:00")
    assert code == 0 and [json.loads(line)["action"] for line in out.splitlines()] == ["evict", "supersede"]


def test_audit_pages_with_limit_and_before(
    capsys: pytest.CaptureFixture[str], target: tuple[list[str], list[str]]
) -> None:
    store, positions = target
    code, out, err = run(capsys, *store, "audit", "--limit", "4")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == positions[:1:-1]
    assert f"--before {positions[2]}" in err
    code, out, err = run(capsys, *store, "audit", "--limit", "4", "--before", positions[2])
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == positions[1::-1]
    assert err == ""  # fewer than asked for: the log is exhausted


def test_audit_usage_and_errors(
    capsys: pytest.CaptureFixture[str], target: tuple[list[str], list[str]]
) -> None:
    store, _ = target
    code, _, err = run(capsys, *store, "audit", "--action", "nope")
    assert code == 2 and "invalid choice" in err
    code, _, err = run(capsys, *store, "audit", "--since", "tomorrow")
    assert code == 2 and "ISO 8601" in err
    code, _, err = run(capsys, *store, "audit", "--since", "nan")
    assert code == 2 and "finite" in err
    code, _, err = run(capsys, *store, "audit", "--limit", "0")
    assert code == 2
    # the store refuses what the parser cannot know: exit 1, the message, no traceback
    code, _, err = run(capsys, *store, "audit", "--limit", "10001")
    assert code == 1 and "limit must be in 1..10000" in err and "Traceback" not in err
    code, _, err = run(capsys, *store, "audit", "--since", str(T0 + 1), "--until", str(T0))
    assert code == 1 and "after until" in err
    code, _, err = run(capsys, *store, "audit", "--before", "not-a-position")
    assert code == 1 and "not an audit position" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "audit" in out
