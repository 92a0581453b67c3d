"""remember's writes: a run of consecutive writes to one scope goes as one WriteMany; replies come back."""

from __future__ import annotations

import pytest

from agentmem_core import _flows_write
from agentmem_core._flows_write import coalesce_writes, expand_replies
from agentmem_core.errors import BackendError
from agentmem_core.ops import Merge, Write, WriteMany, WriteResult


def _w(tag: str, n: int) -> Write:
    return Write(
        id=tag + f"{n:016x}", tag=tag, now="1", created_at="1", ttl_ms=0, expires_at="0", kind="semantic",
        importance="0.5", opt_rest="0|0|", fields={},
    )  # fmt: skip


A, B = "a" * 16, "b" * 16


def test_consecutive_writes_to_one_scope_become_one_request() -> None:
    merge = Merge(A + "f" * 16, "1", ())
    requests = [_w(A, 1), _w(A, 2), _w(A, 3), _w(B, 1), merge, _w(B, 2), _w(A, 4), _w(A, 5)]
    sent, sizes = coalesce_writes(requests)
    assert sizes == [3, 1, 1, 1, 2]
    assert sent[0] == WriteMany((_w(A, 1), _w(A, 2), _w(A, 3)))
    assert sent[1:4] == [_w(B, 1), merge, _w(B, 2)]  # a single write stays a Write
    assert sent[4] == WriteMany((_w(A, 4), _w(A, 5)))
    results = [WriteResult(True, n) for n in range(1, 6)]
    replies = [tuple(results[:3]), WriteResult(True, 1), 7, WriteResult(True, 2), tuple(results[3:])]
    assert expand_replies(replies, sizes) == [
        *results[:3],
        WriteResult(True, 1),
        7,
        WriteResult(True, 2),
        *results[3:],
    ]


def test_a_run_is_cut_at_the_largest_call() -> None:
    requests = [_w(A, n) for n in range(_flows_write.WRITE_MANY_MAX * 2 + 1)]
    sent, sizes = coalesce_writes(requests)
    assert sizes == [_flows_write.WRITE_MANY_MAX, _flows_write.WRITE_MANY_MAX, 1]
    assert [w for s in sent[:2] for w in s.writes] + [sent[2]] == requests


def test_a_failed_call_fails_each_of_its_writes() -> None:
    error = BackendError("boom")
    assert expand_replies([error, WriteResult(False, 3)], [3, 1]) == [
        error,
        error,
        error,
        WriteResult(False, 3),
    ]


def test_one_call_takes_one_scope_only() -> None:
    with pytest.raises(ValueError):
        WriteMany((_w(A, 1), _w(B, 1)))
    with pytest.raises(ValueError):
        WriteMany(())
