"""Storage primitives inside one transaction: the SQLite counterparts of the Valkey commands the Lua uses.

Hashes (memory fields, counters, count hashes), sorted sets (``ZADD``/``ZREM``/``ZCARD``/ranges) and the
real-time lifetime of keys (``PEXPIRE``/``PTTL``): a memory or counter row whose ``deadline`` (ms since
the epoch, by ``time.time()``) has passed does not exist for any operation, as an expired Valkey key, and
write transactions reclaim it.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agentmem_core.errors import BackendError, InvalidVectorError
from agentmem_core.schema import _INDEXED, F, numeric_field

from ._filters import Postings
from ._schema import Meta, Tables
from ._vectors import VectorCache

__all__ = ["Tx", "parse_score", "wrong_args"]

TAG_FIELDS = frozenset(name for name, kind in _INDEXED if kind == "TAG")
BASE_NUMERIC = tuple(name for name, kind in _INDEXED if kind == "NUMERIC")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
ESTIMATE_CAP = 2000
"""Index entries a filter leaf's selectivity estimate reads at most."""
RECLAIM_BATCH = 256
"""Expired rows a write transaction reclaims at most, besides the ones its operations touch."""


def wrong_args(command: str) -> BackendError:
    """The error Valkey answers a command sent without its arguments (e.g. ``HMGET key``)."""
    return BackendError(f"wrong number of arguments for '{command}' command")


def parse_score(value: Any) -> float:
    """A ZSET score or range bound from its text, as Valkey parses it (NaN is refused)."""
    try:
        score = float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise BackendError(f"value is not a valid float: {value!r}") from exc
    if math.isnan(score):
        raise BackendError(f"value is not a valid float: {value!r}")
    return score


def parse_integer(value: str | None) -> int:
    """A hash value ``HINCRBY`` accepts (missing: 0)."""
    if value is None:
        return 0
    if not _INTEGER.fullmatch(value):
        raise BackendError("hash value is not an integer")
    return int(value)


def text(value: Any) -> str:
    """A field value as stored text (``bytes`` are UTF-8)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BackendError(f"field value is not UTF-8 text: {exc}") from exc
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BackendError(f"field values are text, got {type(value).__name__}")


class Tx:
    """One transaction of a store's connection, at one real-time instant (``now_ms``)."""

    def __init__(
        self, conn: sqlite3.Connection, sql: Tables, meta: Meta, cache: VectorCache, *, writes: bool,
        now_ms: int,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.sql = sql
        self.meta = meta
        self.cache = cache
        self.writes = writes
        self.now_ms = now_ms
        self.numeric = frozenset((*BASE_NUMERIC, *(numeric_field(k) for k in meta.numeric)))
        self.bumped = False
        """Whether this transaction already bumped the vector change counter."""
        self._cards: dict[tuple[str, str], int] = {}
        """``ZCARD`` of the sorted sets this transaction counted, kept in step with its writes."""
        self._purged: dict[str, float] = {}
        """Scope tag -> the instant this transaction purged it up to (no expiring member left by then)."""
        self._rids: dict[str, int] = {}
        """Memory id -> its row number, for the memories this transaction saved or looked up."""

    # -- plumbing ------------------------------------------------------------------------------------
    def q(self, template: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute one statement of this store."""
        return self.conn.execute(self.sql(template), params)

    def estimate(self, subquery: str, params: list[Any]) -> int:
        """How many rows a subquery yields, counted up to ``ESTIMATE_CAP`` (bounded cost)."""
        bounded = f"SELECT count(*) FROM ({subquery} LIMIT {ESTIMATE_CAP})"
        return int(self.conn.execute(bounded, params).fetchone()[0])

    def alive(self, deadline: int | None) -> bool:
        """Whether a row with this deadline still exists.

        Gone once the clock reaches it, as the flows see a memory whose ``expires_at <= now`` (Valkey keeps
        a key until its time has passed, by its own clock).
        """
        return deadline is None or deadline > self.now_ms  # alive_slots() is the same test on the cache

    def reclaim(self) -> None:
        """Delete rows whose deadline has passed (a bounded number per write transaction)."""
        cutoff = (self.now_ms,)
        for (memory_id,) in self.q(
            "SELECT id FROM {mem} WHERE deadline <= ? LIMIT " + str(RECLAIM_BATCH), cutoff
        ).fetchall():
            self.destroy(memory_id)
        self.q(
            "DELETE FROM {stats} WHERE id IN (SELECT id FROM {stats} WHERE deadline <= ? LIMIT "
            + str(RECLAIM_BATCH) + ")", cutoff,
        )  # fmt: skip

    # -- memory hashes -------------------------------------------------------------------------------
    def memory(self, memory_id: str) -> tuple[dict[str, str], int | None] | None:
        """``(fields, deadline)`` of a memory that exists (an expired one is reclaimed when writing)."""
        row = self.q("SELECT fields, deadline FROM {mem} WHERE id = ?", (memory_id,)).fetchone()
        if row is None:
            return None
        if not self.alive(row[1]):
            if self.writes:
                self.destroy(memory_id)
            return None
        fields: dict[str, str] = json.loads(row[0])
        return fields, row[1]

    def save(self, memory_id: str, fields: Mapping[str, str], deadline: int | None) -> None:
        """Write a memory's fields and deadline (insert or replace)."""
        (rid,) = self.q(
            "INSERT INTO {mem} (id, fields, deadline) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "fields = excluded.fields, deadline = excluded.deadline RETURNING rid",
            (memory_id, _JSON.encode(dict(fields)), deadline),
        ).fetchone()
        self._rids[memory_id] = rid
        self._noted(memory_id, deadline)

    def _noted(self, memory_id: str, deadline: int | None) -> None:
        self._changed()
        if self.cache.gen >= 0:
            self.cache.note(memory_id, deadline)

    def set_deadline(self, memory_id: str, deadline: int | None) -> None:
        """``PEXPIRE`` / ``PERSIST`` of a memory."""
        if self.q("UPDATE {mem} SET deadline = ? WHERE id = ?", (deadline, memory_id)).rowcount > 0:
            self._noted(memory_id, deadline)

    def alive_slots(self) -> npt.NDArray[np.bool_]:
        """The cache's memory slots that hold a live memory (:meth:`alive`, on the loaded universe)."""
        cache = self.cache
        n = cache.n_slots
        return cache.present[:n] & (cache.deadlines[:n] > self.now_ms)

    def destroy(self, memory_id: str) -> bool:
        """``DEL`` of a memory and its child vector documents; whether a row was there."""
        row = self.q("DELETE FROM {mem} WHERE id = ? RETURNING rid, fields", (memory_id,)).fetchone()
        self._rids.pop(memory_id, None)
        if row is not None:
            self._changed()
            if self.cache.gen >= 0:
                self.cache.forget(memory_id)
            fields: dict[str, str] = json.loads(row[1])
            self._unindex(row[0], fields, self._indexed(fields))
        self.drop_vectors(memory_id)
        return row is not None

    def _indexed(self, names: Iterable[str]) -> list[str]:
        return [n for n in dict.fromkeys(names) if n in TAG_FIELDS or n in self.numeric]

    def _rid(self, memory_id: str) -> int:
        """The row number of a memory that exists (its postings' key)."""
        rid = self._rids.get(memory_id)
        if rid is None:
            row = self.q("SELECT rid FROM {mem} WHERE id = ?", (memory_id,)).fetchone()
            if row is None:
                raise BackendError(f"memory {memory_id} has no row to index")
            rid = self._rids[memory_id] = int(row[0])
        return rid

    def _entries(
        self, key: tuple[Any, ...], fields: Mapping[str, str], chosen: Sequence[str]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, set[str]], dict[str, float]]:
        """The index entries of the chosen fields' values.

        TAG ``(field, token, *key)`` and NUMERIC ``(field, value, *key)`` rows (``key``: ``(rid,)`` to
        delete them, ``(rid, id)`` to insert them), and the same as each field's token set / number
        (NaN: none).
        """
        tokens: list[tuple[Any, ...]] = []
        numbers: list[tuple[Any, ...]] = []
        held: dict[str, set[str]] = {}
        values: dict[str, float] = {}
        for name in chosen:
            value = fields.get(name)
            if name in TAG_FIELDS:
                mine = held[name] = set()
                for token in () if value is None else value.split("|"):
                    token = token.strip().lower()
                    if token and token not in mine:
                        mine.add(token)
                        tokens.append((name, token, *key))
            else:
                values[name] = math.nan
                if value is None:
                    continue
                try:
                    number = float(value)
                except ValueError:
                    continue  # not a number: the engine does not index it
                if not math.isnan(number):
                    numbers.append((name, number, *key))
                    values[name] = number
        return tokens, numbers, held, values

    def _unindex(self, rid: int, old: Mapping[str, str], chosen: Sequence[str]) -> None:
        """Delete the index entries the chosen fields' ``old`` values made for row ``rid`` (by key)."""
        tokens, numbers, _, _ = self._entries((rid,), old, chosen)
        if tokens:
            self.conn.executemany(
                self.sql("DELETE FROM {tok} WHERE field = ? AND token = ? AND rid = ?"), tokens
            )
        if numbers:
            self.conn.executemany(
                self.sql("DELETE FROM {num} WHERE field = ? AND value = ? AND rid = ?"), numbers
            )

    def index(
        self, memory_id: str, fields: Mapping[str, str], names: Iterable[str] | None = None, *,
        old: Mapping[str, str] | None,
    ) -> None:  # fmt: skip
        """(Re-)index the TAG tokens and NUMERIC values of the named fields (``None``: every field).

        ``old``: the memory's fields as they were indexed before (their entries of the named fields are
        deleted first); ``None``: it has no index entries (it was just created, or destroyed). The
        loaded postings of the vector cache follow.
        """
        chosen = self._indexed(fields if names is None else names)
        rid = self._rid(memory_id)
        if old is not None:
            self._unindex(rid, old, self._indexed(old) if names is None else chosen)
        tokens, numbers, held, values = self._entries((rid, memory_id), fields, chosen)
        if chosen:
            self._changed()
            if self.cache.gen >= 0:
                self.cache.reindex(memory_id, held, values)
        if tokens:
            statement = "INSERT OR IGNORE INTO {tok} (field, token, rid, id) VALUES (?, ?, ?, ?)"
            self.conn.executemany(self.sql(statement), tokens)
        if numbers:
            statement = "INSERT OR REPLACE INTO {num} (field, value, rid, id) VALUES (?, ?, ?, ?)"
            self.conn.executemany(self.sql(statement), numbers)

    # -- vectors -------------------------------------------------------------------------------------
    def _changed(self) -> None:
        """Record a change of vectors or index entries (the cache's content).

        Bumps the file's counter once, and keeps the cache in step when it was.
        """
        if self.bumped:
            return
        before = int(self.q("SELECT v FROM {gen}").fetchone()[0])
        self.q("UPDATE {gen} SET v = v + 1")
        self.bumped = True
        self.cache.gen = before + 1 if self.cache.gen == before else -1

    def postings(self) -> Postings:
        """The loader of the cache's postings (one SQL query per TAG token or NUMERIC field)."""
        return Postings(self.cache, self._tag_ids, self._number_pairs, self._universe)

    def _universe(self) -> Iterable[tuple[str, int | None]]:
        return [(r[0], r[1]) for r in self.q("SELECT id, deadline FROM {mem}")]

    def _tag_ids(self, field: str, token: str) -> Iterable[str]:
        return [r[0] for r in self.q("SELECT id FROM {tok} WHERE field = ? AND token = ?", (field, token))]

    def _number_pairs(self, field: str) -> Iterable[tuple[str, float]]:
        return [(r[0], float(r[1])) for r in self.q("SELECT id, value FROM {num} WHERE field = ?", (field,))]

    def fresh_cache(self) -> VectorCache:
        """The vector cache, reloaded first when another connection (or a rolled-back op) changed it."""
        gen = int(self.q("SELECT v FROM {gen}").fetchone()[0])
        if self.cache.gen != gen:
            self.cache.load(gen, self.q("SELECT id, n, v FROM {vec}"))
        return self.cache

    def put_vector(self, memory_id: str, n: int, blob: Any) -> None:
        """``HSET embedding`` (``n = 0``) or one child vector document (``n >= 1``).

        Raises:
            InvalidVectorError: a blob that is not ``dims`` float32 values.
        """
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise InvalidVectorError(f"a vector is float32 bytes, got {type(blob).__name__}")
        blob = bytes(blob)
        if len(blob) != 4 * self.meta.dims:
            raise InvalidVectorError(
                f"a vector of {len(blob)} bytes does not fit the index's dimension {self.meta.dims}"
            )
        self._changed()
        self.q("INSERT OR REPLACE INTO {vec} (id, n, v) VALUES (?, ?, ?)", (memory_id, n, blob))
        if self.cache.gen >= 0:
            self.cache.add(memory_id, n, blob)

    def drop_vectors(self, memory_id: str, *, first: bool = True, extra: bool = True) -> None:
        """Delete a memory's first vector and/or its extra vectors."""
        where = "id = ?" if first and extra else "id = ? AND n = 0" if first else "id = ? AND n > 0"
        if self.q("DELETE FROM {vec} WHERE " + where, (memory_id,)).rowcount > 0:
            self._changed()
            if self.cache.gen >= 0:
                self.cache.drop(memory_id, first=first, extra=extra)

    def vector_fields(self, memory_id: str) -> dict[str, bytes]:
        """``embedding`` and ``vx`` (the extra vectors, concatenated) of a memory, when it has them."""
        out: dict[str, bytes] = {}
        extra: list[bytes] = []
        for n, blob in self.q("SELECT n, v FROM {vec} WHERE id = ? ORDER BY n", (memory_id,)):
            if n == 0:
                out[F.EMBEDDING] = blob
            else:
                extra.append(blob)
        if extra:
            out[F.VX] = b"".join(extra)
        return out

    def vector(self, memory_id: str, n: int) -> bytes | None:
        """One vector of a memory."""
        row = self.q("SELECT v FROM {vec} WHERE id = ? AND n = ?", (memory_id, n)).fetchone()
        return None if row is None else bytes(row[0])

    # -- counter hashes ------------------------------------------------------------------------------
    def counters(self, memory_id: str) -> tuple[dict[str, str], int | None] | None:
        """``(counters, deadline)`` of a memory's counter hash, when it exists."""
        row = self.q("SELECT data, deadline FROM {stats} WHERE id = ?", (memory_id,)).fetchone()
        if row is None:
            return None
        if not self.alive(row[1]):
            if self.writes:
                self.q("DELETE FROM {stats} WHERE id = ?", (memory_id,))
            return None
        data: dict[str, str] = json.loads(row[0])
        return data, row[1]

    def save_counters(self, memory_id: str, data: Mapping[str, str], deadline: int | None) -> None:
        """Write a counter hash."""
        self.q(
            "INSERT INTO {stats} (id, data, deadline) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "data = excluded.data, deadline = excluded.deadline",
            (memory_id, _JSON.encode(dict(data)), deadline),
        )

    def drop_counters(self, memory_id: str) -> None:
        """``DEL`` of a counter hash."""
        self.q("DELETE FROM {stats} WHERE id = ?", (memory_id,))

    def expire_counters(self, memory_id: str, deadline: int | None) -> None:
        """``PEXPIRE`` / ``PERSIST`` of a counter hash that exists."""
        if self.counters(memory_id) is not None:
            self.q("UPDATE {stats} SET deadline = ? WHERE id = ?", (deadline, memory_id))

    # -- sorted sets and count hashes ----------------------------------------------------------------
    def zadd(self, k: str, tag: str, member: str, score: float) -> None:
        """``ZADD``."""
        added = self.q(
            "INSERT OR IGNORE INTO {zs} (k, tag, member, score) VALUES (?, ?, ?, ?)", (k, tag, member, score)
        ).rowcount
        if k == "x" and score <= self._purged.get(tag, -math.inf):
            del self._purged[tag]  # expiring by a purged instant: the next purge must see it
        if added > 0:
            if (k, tag) in self._cards:
                self._cards[k, tag] += 1
        else:
            statement = "UPDATE {zs} SET score = ? WHERE k = ? AND tag = ? AND member = ?"
            self.q(statement, (score, k, tag, member))

    def zrem(self, k: str, tag: str, member: str) -> int:
        """``ZREM`` of one member: 1 when it was there."""
        cursor = self.q("DELETE FROM {zs} WHERE k = ? AND tag = ? AND member = ?", (k, tag, member))
        if cursor.rowcount <= 0:
            return 0
        if (k, tag) in self._cards:
            self._cards[k, tag] -= 1
        return 1

    def zscore(self, k: str, tag: str, member: str) -> float | None:
        """``ZSCORE``."""
        row = self.q("SELECT score FROM {zs} WHERE k = ? AND tag = ? AND member = ?", (k, tag, member))
        found = row.fetchone()
        return None if found is None else float(found[0])

    def zcard(self, k: str, tag: str) -> int:
        """``ZCARD`` (counted once per transaction, then kept in step by ``zadd``/``zrem``/``purge``)."""
        found = self._cards.get((k, tag))
        if found is None:
            statement = "SELECT count(*) FROM {zs} WHERE k = ? AND tag = ?"
            found = self._cards[k, tag] = int(self.q(statement, (k, tag)).fetchone()[0])
        return found

    def zcard_up_to(self, k: str, tag: str, bound: int) -> int:
        """``ZCARD``, exact up to ``bound`` (past it: ``bound + 1``); costs at most ``bound + 1`` rows.

        A scope's count is linear in its size here (Valkey keeps ZCARD): a write that only needs to know
        "new scope?" or "over capacity?" reads that far, not 100,000 rows.
        """
        found = self._cards.get((k, tag))
        if found is not None:
            return found
        statement = "SELECT count(*) FROM (SELECT 1 FROM {zs} WHERE k = ? AND tag = ? LIMIT ?)"
        return int(self.q(statement, (k, tag, bound + 1)).fetchone()[0])

    def rolled_back(self) -> None:
        """An operation was rolled back to its savepoint: forget what this transaction kept."""
        self._cards.clear()
        self._purged.clear()
        self._rids.clear()  # a rolled-back insert's row number is given to the next one
        self.cache.gen = -1  # it may hold the rolled-back vectors
        self.bumped = False

    def zrange(self, k: str, tag: str, start: int, stop: int) -> list[tuple[str, float]]:
        """``ZRANGE key start stop WITHSCORES`` (ranks; negative ones count from the end)."""
        size = self.zcard(k, tag)
        if start < 0:
            start += size
        if stop < 0:
            stop += size
        start = max(start, 0)
        if start > stop or start >= size:
            return []
        stop = min(stop, size - 1)
        rows = self.q(
            "SELECT member, score FROM {zs} WHERE k = ? AND tag = ? ORDER BY score, member LIMIT ? OFFSET ?",
            (k, tag, stop - start + 1, start),
        )
        return [(str(m), float(s)) for m, s in rows]

    def hincrby(self, tag: str, name: str, delta: int) -> int:
        """``HINCRBY`` of a scope's count hash."""
        row = self.q(
            "INSERT INTO {counts} (tag, name, n) VALUES (?, ?, ?) ON CONFLICT (tag, name) "
            "DO UPDATE SET n = n + excluded.n RETURNING n",
            (tag, name, delta),
        ).fetchone()
        return int(row[0])

    def purge(self, tag: str, now: str) -> None:
        """The scripts' ``purge``: drop the bookkeeping of members whose ``expires_at`` is not after now."""
        bound = parse_score(now)
        done = self._purged.get(tag)
        if done is not None and done >= bound:
            return  # purged up to a later instant already, and nothing expiring by then came in since
        gone = self.q("SELECT member FROM {zs} WHERE k = 'x' AND tag = ? AND score <= ?", (tag, bound))
        members = gone.fetchall()
        self._purged[tag] = bound
        if not members:
            return
        for (member,) in members:
            kind, sep, memory_id = str(member).partition("|")
            if not sep:
                raise BackendError(f"unreadable expiring member {member!r}")
            if self.zrem("z", tag, memory_id):
                self.hincrby(tag, kind, -1)
            self.zrem("i", tag, memory_id)
        self.q("DELETE FROM {zs} WHERE k = 'x' AND tag = ? AND score <= ?", (tag, bound))
        self._cards.pop(("x", tag), None)
