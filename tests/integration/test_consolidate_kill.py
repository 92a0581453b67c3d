"""A consolidation process killed with SIGKILL half way through loses nothing; a re-run completes it.

The child process consolidates 5,000 memories (its deletes slowed to 50 per round trip so the kill lands
among them); the parent kills it once the summary exists and some sources are gone, checks that every
memory is either still there or covered by the summary, and finishes the job with a re-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem_core import MemoryStore
from agentmem_core.embeddings import HashingEmbedder

N = 5000
ANA = {"user_id": "ana"}

CHILD = textwrap.dedent(
    """
    import sys
    import agentmem_core._flows_consolidate as flows
    from agentmem_core import MemoryStore
    from agentmem_core.embeddings import HashingEmbedder

    flows.DELETE_CHUNK = 50  # slow the deletes down so the parent's kill lands among them

    class Summarizer:
        max_input_chars = 1_000_000
        def summarize(self, memories):
            return f"summary of {len(memories)} notes"
        async def asummarize(self, memories):
            return self.summarize(memories)

    store = MemoryStore.from_url(sys.argv[1], name=sys.argv[2], embedder=HashingEmbedder(64))
    store.consolidate(Summarizer(), user_id="ana")
    print("finished", flush=True)
    """
)


class Summarizer:
    max_input_chars = 1_000_000

    def __init__(self) -> None:
        self.calls = 0

    def summarize(self, memories: object) -> str:
        self.calls += 1
        return "never called: the re-run only finishes the job"

    async def asummarize(self, memories: object) -> str:
        return self.summarize(memories)


@pytest.fixture(params=["valkey", "sqlite"])
def url(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path) -> Iterator[str]:
    yield valkey_url if request.param == "valkey" else f"sqlite:///{tmp_path / 'kill.db'}"


def test_sigkill_mid_consolidation_loses_nothing_and_a_rerun_completes(url: str, unique_name: str) -> None:
    store = MemoryStore.from_url(url, name=unique_name, embedder=HashingEmbedder(64))
    store.setup()
    try:
        store.remember_many([{"content": f"note {i}", "created_at": 1000.0 + i, **ANA} for i in range(N)])
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, unique_name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        killed = False
        deadline = time.monotonic() + 120
        try:
            while child.poll() is None and time.monotonic() < deadline:
                summaries = store.count(kinds=["summary"], **ANA)
                sources = store.count(kinds=["semantic"], **ANA)
                if summaries == 1 and sources < N:
                    os.kill(child.pid, signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.002)
        finally:
            if child.poll() is None and not killed:
                child.kill()
            _out, err = child.communicate(timeout=30)
        assert killed, f"the child finished before the kill could land: {err.decode()[-500:]}"
        assert child.returncode == -signal.SIGKILL

        sources = store.count(kinds=["semantic"], **ANA)
        (summary,) = store.list(kinds=["summary"], **ANA).memories
        assert 0 <= sources < N
        assert summary.metadata["consolidation_state"] == "pending"
        assert summary.metadata["consolidation_sources"] == N  # it covers every source, deleted or not

        model = Summarizer()
        result = store.consolidate(model, **ANA)
        assert model.calls == 0 and result.resumed == 1 and result.deleted == sources
        (summary,) = store.list(**ANA).memories
        assert summary.metadata["consolidation_state"] == "done"
        assert store.count(**ANA) == 1
    finally:
        store.forget_by_scope(**ANA)
        store.close()
