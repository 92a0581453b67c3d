"""LangGraph's checkpointer conformance suite (langgraph-checkpoint-conformance), one pytest test per spec.

Every base and extended capability runs against the sync saver (through its async wrappers, which call
the sync code in a worker thread) and the async saver, on a single server and on the 3-node cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pytest
import valkey
import valkey.asyncio as avalkey
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, DetectedCapabilities
from langgraph.checkpoint.conformance.spec import (
    test_copy_thread,
    test_delete_for_runs,
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_prune,
    test_put,
    test_put_writes,
)

from agentmem_langgraph import AsyncValkeySaver, ValkeySaver

SPECS: dict[str, list[Callable[[BaseCheckpointSaver[Any]], Awaitable[None]]]] = {
    "put": test_put.ALL_PUT_TESTS,
    "put_writes": test_put_writes.ALL_PUT_WRITES_TESTS,
    "get_tuple": test_get_tuple.ALL_GET_TUPLE_TESTS,
    "list": test_list.ALL_LIST_TESTS,
    "delete_thread": test_delete_thread.ALL_DELETE_THREAD_TESTS,
    "delete_for_runs": test_delete_for_runs.ALL_DELETE_FOR_RUNS_TESTS,
    "copy_thread": test_copy_thread.ALL_COPY_THREAD_TESTS,
    "prune": test_prune.ALL_PRUNE_TESTS,
}
CASES = [
    pytest.param(fn, id=f"{capability}-{fn.__name__.removeprefix('test_')}")
    for capability, fns in SPECS.items()
    for fn in fns
]
KINDS = ["sync", "async", "sync-cluster", "async-cluster"]


def test_suite_size() -> None:
    # 0.0.2 ships 58 base + 23 extended tests; a silently shrinking suite must not go unnoticed.
    assert len(CASES) == 81


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_saver(request: pytest.FixtureRequest, kind: str) -> Callable[[], BaseCheckpointSaver[Any]]:
    client_fixture = {
        "sync": "sync_client",
        "async": "async_client",
        "sync-cluster": "cluster_client",
        "async-cluster": "async_cluster_client",
    }[kind]
    client = request.getfixturevalue(client_fixture)

    def make() -> BaseCheckpointSaver[Any]:
        prefix = "cf" + uuid.uuid4().hex[:12]
        if isinstance(client, (valkey.Valkey, valkey.ValkeyCluster)):
            return ValkeySaver(client, prefix=prefix)
        assert isinstance(client, (avalkey.Valkey, avalkey.ValkeyCluster))
        return AsyncValkeySaver(client, prefix=prefix)

    return make


@pytest.mark.parametrize("spec", CASES)
async def test_conformance(
    spec: Callable[[BaseCheckpointSaver[Any]], Awaitable[None]],
    make_saver: Callable[[], BaseCheckpointSaver[Any]],
) -> None:
    await spec(make_saver())


async def test_all_capabilities_detected(make_saver: Callable[[], BaseCheckpointSaver[Any]]) -> None:
    detected = DetectedCapabilities.from_instance(make_saver())
    assert detected.detected == ALL_CAPABILITIES
    assert not detected.missing


async def test_official_runner_reports_full(make_saver: Callable[[], BaseCheckpointSaver[Any]]) -> None:
    """The package's own ``validate()`` runner agrees: FULL conformance, 81 tests, no failure."""

    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        yield make_saver()

    registered = checkpointer_test(name=f"agentmem-{uuid.uuid4().hex[:6]}")(factory)
    report = await validate(registered)
    failures = [f for r in report.results.values() for f in r.failures]
    assert not failures, failures
    assert report.conformance_level() == "FULL"
    assert sum(r.tests_passed for r in report.results.values()) == 81
