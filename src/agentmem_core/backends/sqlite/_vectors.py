"""The per-process vector cache and the exact nearest-neighbour selection over it (numpy).

The cache holds every vector of the store as one float32 matrix, one row per vector document (a memory's
first vector, ``n = 0``, and its extra vectors, ``n >= 1``). It is valid for one value of the file's
change counter (``gen``): the process's own writes are applied to it as they happen, and any other
process's write (a counter it did not make) makes it reload the matrix from the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["VectorCache", "nearest"]

_GROW = 1024


class VectorCache:
    """Every vector of one store, for one change counter value (``gen``, ``-1``: invalid)."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.gen = -1
        self._clear()

    def _clear(self) -> None:
        self.matrix: npt.NDArray[np.float32] = np.zeros((0, self.dims), dtype=np.float32)
        self.ids: list[str] = []
        self.ns: list[int] = []
        self.dead: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.size = 0
        self.n_dead = 0
        self.first: dict[str, int] = {}
        self.extra: dict[str, list[int]] = {}

    def load(self, gen: int, rows: Iterable[tuple[str, int, bytes]]) -> None:
        """Replace the content with ``(id, n, blob)`` rows, valid for counter ``gen``."""
        self._clear()
        ids: list[str] = []
        ns: list[int] = []
        blobs: list[bytes] = []
        for memory_id, n, blob in rows:
            ids.append(memory_id)
            ns.append(int(n))
            blobs.append(blob)
        if blobs:
            flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
            self.matrix = flat.reshape(len(blobs), self.dims).copy()
        self.ids, self.ns, self.size = ids, ns, len(ids)
        self.dead = np.zeros(self.size, dtype=bool)
        for row, (memory_id, n) in enumerate(zip(ids, ns)):
            self._link(memory_id, n, row)
        self.gen = gen

    def _link(self, memory_id: str, n: int, row: int) -> None:
        if n == 0:
            self.first[memory_id] = row
        else:
            self.extra.setdefault(memory_id, []).append(row)

    @property
    def has_extra(self) -> bool:
        """Whether any memory has extra vectors."""
        return bool(self.extra)

    def add(self, memory_id: str, n: int, blob: bytes) -> None:
        """Add (or replace) vector ``n`` of a memory."""
        if n == 0:
            self.drop(memory_id, first=True, extra=False)
        if self.size == self.matrix.shape[0]:
            grown = np.zeros((max(_GROW, 2 * self.size), self.dims), dtype=np.float32)
            grown[: self.size] = self.matrix[: self.size]
            self.matrix = grown
            dead = np.zeros(grown.shape[0], dtype=bool)
            dead[: self.size] = self.dead[: self.size]
            self.dead = dead
        row = self.size
        self.matrix[row] = np.frombuffer(blob, dtype="<f4")
        self.dead[row] = False
        self.ids.append(memory_id)
        self.ns.append(n)
        self.size += 1
        self._link(memory_id, n, row)

    def drop(self, memory_id: str, *, first: bool = True, extra: bool = True) -> None:
        """Forget a memory's first vector and/or its extra vectors."""
        rows: list[int] = []
        if first and (row := self.first.pop(memory_id, None)) is not None:
            rows.append(row)
        if extra:
            rows.extend(self.extra.pop(memory_id, ()))
        for row in rows:
            self.dead[row] = True
        self.n_dead += len(rows)
        if self.n_dead > max(_GROW, self.size - self.n_dead):
            self._compact()

    def _compact(self) -> None:
        keep = np.nonzero(~self.dead[: self.size])[0]
        ids, ns = [self.ids[i] for i in keep], [self.ns[i] for i in keep]
        matrix = self.matrix[keep].copy()
        gen = self.gen
        self._clear()
        self.matrix, self.ids, self.ns, self.size = matrix, ids, ns, len(ids)
        self.dead = np.zeros(self.size, dtype=bool)
        for row, (memory_id, n) in enumerate(zip(ids, ns)):
            self._link(memory_id, n, row)
        self.gen = gen

    def live_rows(self) -> npt.NDArray[np.intp]:
        """Every row that holds a vector."""
        return np.nonzero(~self.dead[: self.size])[0]

    def rows_of(self, ids: Sequence[str], *, first: bool, extra: bool) -> npt.NDArray[np.intp]:
        """The rows of these memories' first and/or extra vectors (memories without one are skipped)."""
        out: list[int] = []
        if first:
            get = self.first.get
            out.extend(row for row in map(get, ids) if row is not None)
        if extra and self.extra:
            for memory_id in ids:
                out.extend(self.extra.get(memory_id, ()))
        return np.asarray(out, dtype=np.intp)


def nearest(
    cache: VectorCache, query: npt.NDArray[np.float32], rows: npt.NDArray[np.intp] | None, pool: int
) -> list[tuple[float, str, int]]:
    """The ``pool`` closest vector documents among ``rows`` (``None``: every row, none dead).

    ``(distance, id, n)`` by (distance, id, n); cosine distance of unit vectors, ``1 - dot``, in
    float32 like the search engines compute it.
    """
    if rows is None:
        rows = np.arange(cache.size, dtype=np.intp)
        matrix = cache.matrix[: cache.size]  # a view: no copy of the matrix
    else:
        matrix = cache.matrix[rows]
    if pool <= 0 or rows.size == 0:
        return []
    distances = np.float32(1.0) - matrix @ query
    if rows.size > pool:
        part = np.argpartition(distances, pool - 1)[:pool]
        cutoff = distances[part].max()
        chosen = np.nonzero(distances <= cutoff)[0]  # every tie at the cut, so ids break them exactly
    else:
        chosen = np.arange(rows.size)
    ids, ns = cache.ids, cache.ns
    found = sorted((float(distances[i]), ids[rows[i]], ns[rows[i]]) for i in chosen)
    return found[:pool]
