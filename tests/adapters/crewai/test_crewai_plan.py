"""The pure flows driven by a fake core: paging past the core's 10,000-deep limit, and what is sent."""

from __future__ import annotations

from typing import Any

import pytest

from agentmem_core import Kind, Memory, Page
from agentmem_crewai._plan import MAX_PAGE, CoreCall, Flow, list_records_flow, list_scopes_flow


def memory(i: int) -> Memory:
    return Memory(
        id=f"id-{i}", content=f"m{i}", kind=Kind.SEMANTIC, importance=0.5, tags=(), namespace=("s",),
        thread_id=None, agent_id=None, user_id=None, source=None, key=None, metadata={},
        created_at=1e9 - i, updated_at=1e9 - i, expires_at=None,
    )  # fmt: skip


class FakeCore:
    """``list`` over N memories (newest first) with the core's bounds; ``list_namespaces`` over labels."""

    def __init__(self, n: int = 0, namespaces: list[tuple[str, ...]] | None = None) -> None:
        self.n = n
        self.namespaces = sorted(namespaces or [])
        self.calls: list[CoreCall] = []

    def list(self, *, limit: int, offset: int = 0, cursor: str | None = None, order: str, **f: Any) -> Page:
        assert order == "newest" and 1 <= limit <= MAX_PAGE and 0 <= offset <= MAX_PAGE
        start = (int(cursor) if cursor else 0) + offset
        end = min(self.n, start + limit)
        return Page(tuple(memory(i) for i in range(start, end)), str(end) if end < self.n else None)

    def list_namespaces(
        self, *, prefix: Any, max_depth: int, limit: int, offset: int
    ) -> list[tuple[str, ...]]:
        assert 1 <= limit <= MAX_PAGE and 0 <= offset <= MAX_PAGE and "*" not in (prefix or ())
        head = tuple(prefix or ())
        cut = sorted({ns[:max_depth] for ns in self.namespaces if ns[: len(head)] == head})
        return cut[offset : offset + limit]

    def drive(self, flow: Flow[Any]) -> Any:
        reply: Any = None
        while True:
            try:
                call = flow.send(reply)
            except StopIteration as stop:
                return stop.value
            self.calls.append(call)
            reply = getattr(self, call.method)(*call.args, **call.kwargs)


@pytest.mark.parametrize(("offset", "limit"), [(0, 3), (9_999, 2), (10_000, 5), (24_998, 10), (25_000, 1)])
def test_list_records_pages_past_the_core_limit(offset: int, limit: int) -> None:
    core = FakeCore(n=25_000)
    got = core.drive(list_records_flow("/s", limit, offset))
    assert [r.id for r in got] == [f"id-{i}" for i in range(offset, min(25_000, offset + limit))]
    assert all(c.kwargs["namespace_prefix"] == ("s",) for c in core.calls)


def test_list_records_larger_than_one_core_page() -> None:
    core = FakeCore(n=12_345)
    got = core.drive(list_records_flow(None, 12_000, 100))
    assert len(got) == 12_000 and got[0].id == "id-100" and got[-1].id == "id-12099"


def test_list_scopes_pages_and_never_sends_a_wildcard() -> None:
    many = [("p", f"c{i:05d}", "deep") for i in range(10_500)] + [("p",), ("q",)]
    core = FakeCore(namespaces=many)
    got = core.drive(list_scopes_flow("/p"))
    assert len(got) == 10_500 and got[0] == "/p/c00000"
    wild = FakeCore(namespaces=[("p", "*", "c"), ("p", "x", "c")])
    assert wild.drive(list_scopes_flow("/p/*")) == ["/p/*/c"]
    assert wild.calls[0].kwargs["prefix"] == ("p",)  # the fixed labels only; "*" compared here
