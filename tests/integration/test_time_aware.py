"""Time-aware recall on every backend: a query that names a date ranks memories of that time higher and
finds them even when closer memories of other times fill the vector pool; a query without one is ranked
exactly as before; weight 0 turns it off."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from _support import Facade, open_like

from agentmem_core.config import ScoringConfig, ScoringWeights
from agentmem_core.embeddings import CallableEmbedder
from agentmem_core.errors import ConfigurationError, InvalidMemoryError
from agentmem_core.scoring import composite

NS = ("diary",)


def ts(year: int, month: int, day: int) -> float:
    return datetime(year, month, day, 12, tzinfo=timezone.utc).timestamp()


async def test_a_named_month_ranks_that_months_memory_first(mem: Facade) -> None:
    mem.clock.now = ts(2026, 12, 1)  # type: ignore[attr-defined]
    march = await mem.remember("went hiking with Sam", namespace=NS, created_at=ts(2026, 3, 10))
    may = await mem.remember("went hiking with Ana", namespace=NS, created_at=ts(2026, 5, 10))
    august = await mem.remember("went hiking with Bo", namespace=NS, created_at=ts(2026, 8, 10))
    result = await mem.recall("hiking in May 2026", k=3, namespace=NS, reinforce=False)
    assert [h.memory.id for h in result.hits][:1] == [may]
    times = {h.memory.id: h.scores.time for h in result.hits}
    assert times[may] == 1.0
    assert times[march] is not None and times[august] is not None
    assert 0.0 <= times[march] < times[august] < 1.0  # after the month decays slower than before it
    # relative dates read against the store's clock: "last month" is November 2026
    late = await mem.remember("went hiking with Cy", namespace=NS, created_at=ts(2026, 11, 20))
    result = await mem.recall("hiking last month", k=4, namespace=NS, reinforce=False)
    assert result.hits[0].memory.id == late and result.hits[0].scores.time == 1.0


async def test_a_query_without_a_date_is_ranked_as_before(mem: Facade) -> None:
    mem.clock.now = ts(2026, 12, 1)  # type: ignore[attr-defined]
    for month in (3, 5, 8):
        await mem.remember(f"went hiking in the hills {month}", namespace=NS, created_at=ts(2026, month, 1))
    result = await mem.recall("went hiking in the hills", k=3, namespace=NS, reinforce=False)
    scoring = ScoringConfig()
    for hit in result.hits:
        s = hit.scores
        assert s.time is None
        assert s.score == pytest.approx(composite(s.relevance, s.recency, s.importance, scoring))
    # "may" the verb is no date
    result = await mem.recall("may I go hiking", k=3, namespace=NS, reinforce=False)
    assert all(h.scores.time is None for h in result.hits)


async def test_time_weight_zero_turns_it_off(mem: Facade) -> None:
    mem.clock.now = ts(2026, 12, 1)  # type: ignore[attr-defined]
    await mem.remember("went hiking with Ana", namespace=NS, created_at=ts(2026, 5, 10))
    off = ScoringWeights(time=0.0)
    result = await mem.recall("hiking in May 2026", k=1, namespace=NS, weights=off, reinforce=False)
    assert result.hits[0].scores.time is None
    result = await mem.recall("hiking in May 2026", k=1, namespace=NS, weights={"time": 0}, reinforce=False)
    assert result.hits[0].scores.time is None
    with pytest.raises(InvalidMemoryError):
        await mem.recall("hiking in May 2026", k=1, namespace=NS, weights={"time": -1})


DIMS = 32


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _vectors() -> dict[str, np.ndarray]:
    eye = np.eye(DIMS, dtype=np.float32)
    table = {"trip in May 2026": eye[0]}
    for i in range(10):  # closer to the query than the target, but from 2025
        table[f"noise {i}"] = _unit(eye[0] + 0.05 * eye[1 + i])
    table["target"] = _unit(0.8 * eye[0] + 0.6 * eye[20])
    return table


def _embed(texts: list[str]) -> list[Any]:
    table = _vectors()
    return [table[t] for t in texts]


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "vector-only"])
async def test_a_memory_of_the_named_time_is_found_outside_the_vector_pool(
    mem: Facade, unique_name: str, valkey_url: str, hybrid: bool
) -> None:
    clock = mem.clock  # type: ignore[attr-defined]
    clock.now = ts(2026, 12, 1)
    small = await open_like(
        mem, valkey_url, unique_name + "_pool",
        embedder=CallableEmbedder(_embed, dims=DIMS), clock=clock,
        hybrid=hybrid, candidate_multiplier=1, hybrid_pool=2,
    )  # fmt: skip
    try:
        for i in range(10):
            await small.remember(f"noise {i}", namespace=NS, created_at=ts(2025, 1, 1 + i))
        target = await small.remember("target", namespace=NS, created_at=ts(2026, 5, 10))
        result = await small.recall("trip in May 2026", k=2, namespace=NS, reinforce=False)
        assert result.hits[0].memory.id == target  # not among the 2 nearest: it came in with its time
        assert result.hits[0].scores.time == 1.0
        result = await small.recall(
            "trip in May 2026", k=2, namespace=NS, reinforce=False, weights={"time": 0}
        )
        assert target not in [h.memory.id for h in result.hits]
        # the caller's own time filter still bounds the window's channel
        result = await small.recall(
            "trip in May 2026", k=2, namespace=NS, reinforce=False, created_before=ts(2026, 1, 1)
        )
        assert target not in [h.memory.id for h in result.hits]
    finally:
        await small.forget_by_scope(namespace_prefix=NS)
        await small.close()


async def test_live_config_sets_the_time_weight(mem: Facade) -> None:
    mem.clock.now = ts(2026, 12, 1)  # type: ignore[attr-defined]
    await mem.remember("went hiking with Ana", namespace=NS, created_at=ts(2026, 5, 10))
    await mem.set_live_config(time_weight=0.0)
    result = await mem.recall("hiking in May 2026", k=1, namespace=NS, reinforce=False)
    assert result.hits[0].scores.time is None
    assert mem.store.effective_config.scoring.weights.time == 0.0
    await mem.set_live_config(time_weight=0.5)
    result = await mem.recall("hiking in May 2026", k=1, namespace=NS, reinforce=False)
    assert result.hits[0].scores.time == 1.0


def test_an_unknown_time_zone_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="time_zone"):
        ScoringConfig(time_zone="Mars/Olympus_Mons")
    assert ScoringConfig(time_zone="Europe/Paris").tz.utcoffset(datetime(2026, 7, 1)) is not None
