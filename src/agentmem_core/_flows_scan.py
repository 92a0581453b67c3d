"""The exhaustive KNN channel: exact nearest matches when the index cannot serve a filter.

A condition the index cannot evaluate (a range on a metadata key not declared in ``numeric_fields``, a
``$ne`` on a list value, an ``any_of`` group it cannot push down) runs on the client over the KNN pool,
which widens up to ``MAX_POOL`` rows. When even that many nearest memories hold fewer than ``k`` matches,
this flow reads every memory of the scopes the filter can match, page by page, evaluates the whole
filter on each, and ranks the matches by their closest vector: the page is full whenever ``k``
memories match. Slow by design (it reads the scopes), and only ever the last resort of a recall.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agentmem_core._context import Context
from agentmem_core._flows_read import scope_pages_flow
from agentmem_core._plan import Flow, batch, expect
from agentmem_core.ops import ReadMemories, SearchRow
from agentmem_core.query import MemoryFilter
from agentmem_core.schema import STORED_FIELDS, F, decode_memory

__all__ = ["exhaustive_rows_flow"]

_READ = (*STORED_FIELDS, F.EMBEDDING, F.VX, F.LEX)


def exhaustive_rows_flow(
    ctx: Context, query: np.ndarray, flt: MemoryFilter, pool: int
) -> Flow[list[SearchRow]]:
    """The ``pool`` matches of ``flt`` closest to ``query`` (live, embedded), as KNN rows, closest first.

    A row's fields are the memory's stored fields plus ``lex``, what a KNN row of recall carries.
    """
    dims = ctx.spec.config.dims
    best: list[tuple[float, str, dict[str, object]]] = []

    def consider(ids: list[str]) -> Flow[None]:
        (read,) = yield batch([ReadMemories(tuple(ids), _READ)])
        for memory_id, (values, _) in zip(ids, expect(read)):
            _consider(ctx, flt, query, dims, memory_id, values, pool, best)

    yield from scope_pages_flow(ctx, flt, consider)
    best.sort(key=_order)
    return [SearchRow(memory_id, distance, fields) for distance, memory_id, fields in best[:pool]]


def _order(entry: tuple[float, str, dict[str, object]]) -> tuple[float, str]:
    return entry[0], entry[1]  # as KNN rows sort: closer first, ties by id


def _consider(
    ctx: Context,
    flt: MemoryFilter,
    query: np.ndarray,
    dims: int,
    memory_id: str,
    values: Sequence[object] | None,
    pool: int,
    best: list[tuple[float, str, dict[str, object]]],
) -> None:
    if not values:
        return  # gone since the ZRANGE
    fields = {name: value for name, value in zip(_READ, values) if value is not None}
    blob, extra = fields.pop(F.EMBEDDING, None), fields.pop(F.VX, None)
    if not isinstance(blob, bytes) or len(blob) != 4 * dims:
        return  # not embedded: never recalled
    memory = decode_memory(memory_id, fields, None)
    if (memory.expires_at is not None and memory.expires_at <= ctx.now) or not flt.matches(memory, ctx.now):
        return
    vectors = np.frombuffer(blob, dtype="<f4")
    if isinstance(extra, bytes) and extra and len(extra) % (4 * dims) == 0:  # its closest vector counts
        vectors = np.vstack([vectors, np.frombuffer(extra, dtype="<f4").reshape(-1, dims)])
    distance = max(0.0, min(2.0, 1.0 - float(np.max(vectors @ query))))
    best.append((distance, memory_id, fields))
    if len(best) >= 4 * pool:  # keep memory bounded: only the pool closest can be returned
        best.sort(key=_order)
        del best[pool:]
