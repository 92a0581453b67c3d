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

from agentmem_core.errors import BackendError, InvalidVectorError
from agentmem_core.schema import _INDEXED, F, numeric_field

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

    # -- plumbing ------------------------------------------------------------------------------------
    def q(self, template: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute one statement of this store."""
        return self.conn.execute(self.sql(template), params)

    def estimate(self, subquery: str, params: list[Any]) -> int:
        """How many rows a subquery yields, counted up to ``ESTIMATE_CAP`` (bounded cost)."""
        bounded = f"SELECT count(*) FROM ({subquery} LIMIT {ESTIMATE_CAP})"
        return int(self.conn.execute(bounded, params).fetchone()[0])

    def alive(self, deadline: int | None) -> bool:
        """Whether a row with this deadline still exists (Valkey: a key expires once now > its time)."""
        return deadline is None or deadline >= self.now_ms

    def reclaim(self) -> None:
        """Delete rows whose deadline has passed (a bounded number per write transaction)."""
        cutoff = (self.now_ms,)
        for (memory_id,) in self.q(
            "SELECT id FROM {mem} WHERE deadline < ? LIMIT " + str(RECLAIM_BATCH), cutoff
        ).fetchall():
            self.destroy(memory_id)
        self.q(
            "DELETE FROM {stats} WHERE id IN (SELECT id FROM {stats} WHERE deadline < ? LIMIT "
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
        self.q(
            "INSERT INTO {mem} (id, fields, deadline) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "fields = excluded.fields, deadline = excluded.deadline",
            (memory_id, _JSON.encode(dict(fields)), deadline),
        )

    def set_deadline(self, memory_id: str, deadline: int | None) -> None:
        """``PEXPIRE`` / ``PERSIST`` of a memory."""
        self.q("UPDATE {mem} SET deadline = ? WHERE id = ?", (deadline, memory_id))

    def destroy(self, memory_id: str) -> bool:
        """``DEL`` of a memory and its child vector documents; whether a row was there."""
        gone = self.q("DELETE FROM {mem} WHERE id = ?", (memory_id,)).rowcount > 0
        self.q("DELETE FROM {tok} WHERE id = ?", (memory_id,))
        self.q("DELETE FROM {num} WHERE id = ?", (memory_id,))
        self.drop_vectors(memory_id)
        return gone

    def index(self, memory_id: str, fields: Mapping[str, str], names: Iterable[str] | None = None) -> None:
        """(Re-)index the TAG tokens and NUMERIC values of the named fields (``None``: every field)."""
        if names is None:
            self.q("DELETE FROM {tok} WHERE id = ?", (memory_id,))
            self.q("DELETE FROM {num} WHERE id = ?", (memory_id,))
            chosen = [n for n in fields if n in TAG_FIELDS or n in self.numeric]
        else:
            chosen = [n for n in dict.fromkeys(names) if n in TAG_FIELDS or n in self.numeric]
            for name in chosen:
                table = "DELETE FROM {tok} WHERE id = ? AND field = ?" if name in TAG_FIELDS else (
                    "DELETE FROM {num} WHERE id = ? AND field = ?"
                )  # fmt: skip
                self.q(table, (memory_id, name))
        tokens: list[tuple[str, str, str]] = []
        numbers: list[tuple[str, float, str]] = []
        for name in chosen:
            value = fields.get(name)
            if value is None:
                continue
            if name in TAG_FIELDS:
                for token in value.split("|"):
                    token = token.strip().lower()
                    if token:
                        tokens.append((name, token, memory_id))
            else:
                try:
                    number = float(value)
                except ValueError:
                    continue  # not a number: the engine does not index it
                if not math.isnan(number):
                    numbers.append((name, number, memory_id))
        if tokens:
            self.conn.executemany(self.sql("INSERT OR IGNORE INTO {tok} (field, token, id) VALUES (?, ?, ?)"),
                                  tokens)  # fmt: skip
        if numbers:
            self.conn.executemany(self.sql("INSERT INTO {num} (field, value, id) VALUES (?, ?, ?)"), numbers)

    # -- vectors -------------------------------------------------------------------------------------
    def _changed(self) -> None:
        """Record a vector change: bump the file's counter once, and keep the cache in step when it was."""
        if self.bumped:
            return
        before = int(self.q("SELECT v FROM {gen}").fetchone()[0])
        self.q("UPDATE {gen} SET v = v + 1")
        self.bumped = True
        self.cache.gen = before + 1 if self.cache.gen == before else -1

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
        self.q(
            "INSERT INTO {zs} (k, tag, member, score) VALUES (?, ?, ?, ?) ON CONFLICT (k, tag, member) "
            "DO UPDATE SET score = excluded.score",
            (k, tag, member, score),
        )

    def zrem(self, k: str, tag: str, member: str) -> int:
        """``ZREM`` of one member: 1 when it was there."""
        cursor = self.q("DELETE FROM {zs} WHERE k = ? AND tag = ? AND member = ?", (k, tag, member))
        return 1 if cursor.rowcount > 0 else 0

    def zscore(self, k: str, tag: str, member: str) -> float | None:
        """``ZSCORE``."""
        row = self.q("SELECT score FROM {zs} WHERE k = ? AND tag = ? AND member = ?", (k, tag, member))
        found = row.fetchone()
        return None if found is None else float(found[0])

    def zcard(self, k: str, tag: str) -> int:
        """``ZCARD``."""
        return int(self.q("SELECT count(*) FROM {zs} WHERE k = ? AND tag = ?", (k, tag)).fetchone()[0])

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
        gone = self.q("SELECT member FROM {zs} WHERE k = 'x' AND tag = ? AND score <= ?", (tag, bound))
        for (member,) in gone.fetchall():
            kind, sep, memory_id = str(member).partition("|")
            if not sep:
                raise BackendError(f"unreadable expiring member {member!r}")
            if self.zrem("z", tag, memory_id):
                self.hincrby(tag, kind, -1)
            self.zrem("i", tag, memory_id)
        self.q("DELETE FROM {zs} WHERE k = 'x' AND tag = ? AND score <= ?", (tag, bound))
