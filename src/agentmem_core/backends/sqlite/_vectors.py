"""The per-process vector cache and the exact nearest-neighbour selection over it (numpy).

The cache holds every vector of the store as one float32 matrix, one row per vector document (a memory's
first vector, ``n = 0``, and its extra vectors, ``n >= 1``), and, loaded on first use, the postings a
:class:`~agentmem_core.ops.Knn` filter is evaluated on (:mod:`._filters`): per TAG token a boolean mask
and per NUMERIC field a float array, both over memory *slots* (each memory the cache knows gets one;
``row_slot`` maps a row to its memory's slot). It is valid for one value of the file's change counter
(``gen``, bumped by every transaction that changes vectors, tokens or numbers): the process's own writes
are applied to it as they happen, and any other process's write (a counter it did not make) makes it
reload the matrix from the file and drop the postings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["VectorCache", "nearest"]

_GROW = 1024
_HEX = re.compile(r"[0-9a-f]*")
NO_DEADLINE = np.iinfo(np.int64).max
MAX_POSTINGS = 256
"""TAG postings kept loaded at most (each is one byte per memory slot); the oldest loaded goes first."""
DENSE = 4
"""``nearest`` computes distances over the whole matrix (a view) when at least ``1 / DENSE`` of the rows
match, else over the gathered matching rows (a copy of them)."""


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
        self.row_slot: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self.child: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._clear_postings()

    def _clear_postings(self) -> None:
        self.slots: dict[str, int] = {}
        self.tags: dict[str, dict[str, npt.NDArray[np.bool_]]] = {}
        """field -> token -> mask over slots (loaded tokens only)."""
        self.numbers: dict[str, npt.NDArray[np.float64]] = {}
        """field -> value per slot (NaN: none), loaded fields only."""
        self.n_tags = 0
        self._slot_cap = 0
        self.slot_ids: list[str] = []
        """The memory id of each slot."""
        self._order: npt.NDArray[np.uint64] = np.zeros((0, 2), dtype=np.uint64)
        """The first slots' ids as two 64-bit halves (32 hex digits: sorting them sorts the ids)."""
        self.hex_ids = True
        """Whether every id is 32 lowercase hex digits (else ``first_ids`` sorts the strings)."""
        self.universe = False
        """Whether ``present`` and ``deadlines`` are loaded (every memory of the store has a slot)."""
        self.present: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.deadlines: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        """Real-time deadline per slot (ms; ``NO_DEADLINE``: none)."""

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
        self._relink()
        self.gen = gen

    def _relink(self) -> None:
        """``first``/``extra``, the slots and ``row_slot``/``child`` of the rows (postings dropped)."""
        self._clear_postings()
        slot = self.slot
        self.row_slot = np.fromiter((slot(i) for i in self.ids), dtype=np.intp, count=self.size)
        self.child = np.asarray(self.ns, dtype=np.intp) > 0
        for row, (memory_id, n) in enumerate(zip(self.ids, self.ns)):
            self._link(memory_id, n, row)

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
            self.dead = _grown(self.dead, grown.shape[0], False)
            self.child = _grown(self.child, grown.shape[0], False)
            self.row_slot = _grown(self.row_slot, grown.shape[0], 0)
        row = self.size
        self.matrix[row] = np.frombuffer(blob, dtype="<f4")
        self.dead[row] = False
        self.child[row] = n > 0
        self.row_slot[row] = self.slot(memory_id)
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
        self._relink()  # the postings go too (they reload on use, over the renumbered slots)
        self.gen = gen

    # -- postings ----------------------------------------------------------------------------------------
    def slot(self, memory_id: str) -> int:
        """The memory's slot (a new one the first time; every loaded posting grows with the slots)."""
        found = self.slots.get(memory_id)
        if found is not None:
            return found
        found = self.slots[memory_id] = len(self.slots)
        if found >= self._slot_cap:
            cap = self._slot_cap = max(_GROW, 2 * self._slot_cap)
            for tokens in self.tags.values():
                for token, mask in tokens.items():
                    tokens[token] = _grown(mask, cap, False)
            for name, values in self.numbers.items():
                self.numbers[name] = _grown(values, cap, np.nan)
            self.present = _grown(self.present, cap, False)
            self.deadlines = _grown(self.deadlines, cap, NO_DEADLINE)
        self.slot_ids.append(memory_id)
        return found

    def _keys(self, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64] | None:
        """The sort keys of these slots (computed for new slots in bulk), ``None``: ids not all hex."""
        done, n = self._order.shape[0], len(self.slot_ids)
        if self.hex_ids and done < n:
            new = self.slot_ids[done:n]
            joined = "".join(new)
            if len(joined) != 32 * len(new) or not _HEX.fullmatch(joined):
                self.hex_ids = False
            else:
                keys = np.frombuffer(bytes.fromhex(joined), dtype=">u8").astype(np.uint64).reshape(-1, 2)
                self._order = np.concatenate([self._order, keys])
        return self._order[slots] if self.hex_ids else None

    def first_ids(self, slots: npt.NDArray[np.intp], limit: int) -> list[str]:
        """The ``limit`` smallest ids of these slots, in id order."""
        ids = self.slot_ids
        if slots.shape[0] > limit:
            keys = self._keys(slots)
            if keys is None:
                return sorted(ids[s] for s in slots.tolist())[:limit]
            hi = keys[:, 0]
            cut = np.partition(hi, limit - 1)[limit - 1]
            near = np.flatnonzero(hi <= cut)  # every slot that can be among the first
            slots = slots[near[np.lexsort((keys[near, 1], hi[near]))[:limit]]]
        return sorted(ids[s] for s in slots.tolist())

    def load_universe(self, rows: Iterable[tuple[str, int | None]]) -> None:
        """Load every memory of the store with its real-time deadline (``SELECT id, deadline``)."""
        found = [(self.slot(memory_id), deadline) for memory_id, deadline in rows]
        self.present[:] = False
        self.deadlines[:] = NO_DEADLINE
        if found:
            slots = np.fromiter((s for s, _ in found), dtype=np.intp, count=len(found))
            self.present[slots] = True
            self.deadlines[slots] = [NO_DEADLINE if d is None else d for _, d in found]
        self.universe = True

    def note(self, memory_id: str, deadline: int | None) -> None:
        """A memory was written (or got a new deadline)."""
        if self.universe:
            s = self.slot(memory_id)
            self.present[s] = True
            self.deadlines[s] = NO_DEADLINE if deadline is None else deadline

    @property
    def n_slots(self) -> int:
        """Slots given out (masks over slots are valid up to here)."""
        return len(self.slots)

    def tag(self, field: str, token: str) -> npt.NDArray[np.bool_] | None:
        """The loaded mask of a TAG token (``None``: not loaded)."""
        tokens = self.tags.get(field)
        return None if tokens is None else tokens.get(token)

    def load_tag(self, field: str, token: str, ids: Iterable[str]) -> npt.NDArray[np.bool_]:
        """Load a TAG token's posting from the ids that hold it."""
        slots = [self.slot(memory_id) for memory_id in ids]
        mask = np.zeros(self._slot_cap, dtype=bool)
        mask[slots] = True
        if self.n_tags >= MAX_POSTINGS:
            self._evict_tag()
        self.tags.setdefault(field, {})[token] = mask
        self.n_tags += 1
        return mask

    def _evict_tag(self) -> None:
        for field, tokens in self.tags.items():
            if tokens:
                del tokens[next(iter(tokens))]
                self.n_tags -= 1
                if not tokens:
                    del self.tags[field]
                return

    def load_numbers(self, field: str, pairs: Iterable[tuple[str, float]]) -> npt.NDArray[np.float64]:
        """Load a NUMERIC field's values from ``(id, value)`` pairs."""
        found = [(self.slot(memory_id), value) for memory_id, value in pairs]
        values = np.full(self._slot_cap, np.nan)
        if found:
            slots, numbers = zip(*found)
            values[list(slots)] = numbers
        self.numbers[field] = values
        return values

    def reindex(self, memory_id: str, tokens: dict[str, set[str]], numbers: dict[str, float]) -> None:
        """Apply a memory's re-indexed fields to the loaded postings.

        ``tokens``: each re-indexed TAG field's new tokens; ``numbers``: each re-indexed NUMERIC field's
        new value (NaN: none).
        """
        if not any(f in self.tags for f in tokens) and not any(f in self.numbers for f in numbers):
            return
        s = self.slot(memory_id)
        for name, held in tokens.items():
            for token, mask in self.tags.get(name, {}).items():
                mask[s] = token in held
        for name, value in numbers.items():
            values = self.numbers.get(name)
            if values is not None:
                values[s] = value

    def forget(self, memory_id: str) -> None:
        """A memory left the index: clear it from every loaded posting."""
        s = self.slots.get(memory_id)
        if s is None:
            return
        if self.universe:
            self.present[s] = False
        for tokens in self.tags.values():
            for mask in tokens.values():
                mask[s] = False
        for values in self.numbers.values():
            values[s] = np.nan

    def live(self) -> npt.NDArray[np.bool_]:
        """The mask of the rows that hold a vector."""
        return ~self.dead[: self.size]


def _grown(array: npt.NDArray[Any], size: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full(size, fill, dtype=array.dtype)
    out[: array.shape[0]] = array[:size]
    return out


def nearest(
    cache: VectorCache, query: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_] | None, pool: int
) -> list[tuple[float, str, int]]:
    """The ``pool`` closest vector documents among the rows ``mask`` keeps (``None``: every row).

    ``mask`` is over the ``cache.size`` rows (``None`` asserts that none is dead). ``(distance, id, n)``
    by (distance, id, n), exact: cosine distance of unit vectors, ``1 - dot``, in float32 like the search
    engines compute it. A mask that keeps few rows gathers them (cost in the rows kept); one that keeps
    many scores the whole matrix in place and puts the others at +inf.
    """
    size = cache.size
    if pool <= 0 or size == 0:
        return []
    whole = cache.matrix[:size]  # a view: no copy of the matrix
    if mask is None:
        rows: npt.NDArray[np.intp] | None = None
        distances = np.float32(1.0) - whole @ query
        count = size
    else:
        count = int(np.count_nonzero(mask))
        if count == 0:
            return []
        if count * DENSE < size:
            rows = np.flatnonzero(mask)
            distances = np.float32(1.0) - cache.matrix[rows] @ query
        else:
            rows = None
            distances = np.float32(1.0) - whole @ query
            distances[~mask] = np.inf
    if distances.shape[0] > pool:
        part = np.argpartition(distances, pool - 1)[:pool]
        cutoff = distances[part].max()
        chosen = np.nonzero(distances <= cutoff)[0]  # every tie at the cut, so ids break them exactly
    else:
        chosen = np.arange(distances.shape[0])
    if mask is not None and rows is None and count < size:  # drop the rows the mask leaves out (+inf)
        chosen = chosen[mask[chosen]]
    if rows is not None:
        picked = rows[chosen]
    else:
        picked = chosen
    ids, ns = cache.ids, cache.ns
    found = sorted((float(d), ids[r], ns[r]) for d, r in zip(distances[chosen].tolist(), picked.tolist()))
    return found[:pool]
