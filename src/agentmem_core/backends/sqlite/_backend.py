"""The embedded backend: executes batches of :mod:`agentmem_core.ops` in SQLite transactions."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentmem_core import ops
from agentmem_core.engine import EngineInfo
from agentmem_core.errors import (
    AgentMemError,
    BackendConnectionError,
    BackendError,
    IndexNotFoundError,
)
from agentmem_core.schema import IndexSpec

from ._ops import HANDLERS, READ_ONLY
from ._schema import Meta, Tables, connect, ensure_schema, read_meta
from ._tx import Tx
from ._vectors import VectorCache

__all__ = ["ENGINE", "SqliteBackend"]

ENGINE = EngineInfo("embedded", tuple(sqlite3.sqlite_version_info))  # type: ignore[arg-type]
"""What the flows may assume of this backend: filter-only queries (hybrid recall) and RediSearch's 64-leaf
filter budget (SQLite has no limit; the same budget keeps both backends taking the same filters)."""


def _writes(op: Any) -> bool:
    if type(op) in READ_ONLY:
        return False
    if isinstance(op, ops.Fetch):
        return op.reinforce
    return type(op) in HANDLERS


def _failure(exc: sqlite3.Error, what: str) -> BackendError:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return BackendConnectionError(f"SQLite {what}: the file stayed locked by another writer: {message}")
    return BackendError(f"SQLite {what} failed: {type(exc).__name__}: {message}")


class SqliteBackend:
    """One store in one SQLite file (no server), with exactly the results of the Valkey backend.

    ``execute`` runs a whole batch in ONE transaction (``BEGIN IMMEDIATE`` when it writes): other
    connections see all of it or none of it, and a process killed mid-batch leaves the file as it was.
    Inside the batch each operation is atomic on its own, like a Lua script: one that fails is rolled
    back and its :class:`~agentmem_core.errors.AgentMemError` takes its place in the results, while the
    other operations apply and commit, as in Valkey's non-transactional pipeline. A write batch first
    runs without savepoints; when one of its operations fails, the whole transaction is rolled back and
    the batch runs again with each operation in its own savepoint (see :meth:`execute` for why). When
    the transaction itself cannot begin or commit (the file locked past ``busy_timeout``, disk full),
    nothing is applied and ``execute`` raises.

    One connection, guarded by a lock: the object may be used from several threads (the async store runs
    it through ``ThreadedBackend``). Several processes may open one file (WAL, ``busy_timeout``); each
    caches the vectors, and the postings its searches evaluate filters on, in memory, and reloads them
    when another process changed them.
    """

    kind = "sqlite"
    """What ``MemoryStore.health()`` reports as the backend."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time, name: str | None = None) -> None:
        """Open nothing yet (``setup`` connects).

        Args:
            path: the database file (``":memory:"`` for a private in-memory one).
            clock: the time memory lifetimes run on (Unix seconds). A store passes its own clock, so an
                embedded store expires memories by the same clock its flows decide expiry with (Valkey
                uses the server's clock for that).
            name: the store's name: a store that exists in the file is then usable before ``setup()``
                (as a Valkey store is once its index exists); ``None``: only after ``setup()``.
        """
        self.path = path
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._sql: Tables | None = None
        self._meta: Meta | None = None
        self._cache: VectorCache | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
        return self._conn

    def setup(self, spec: IndexSpec) -> None:
        """Create the store's tables (or validate existing ones against ``spec``).

        Raises:
            DimensionMismatchError: the store holds vectors of another dimension.
            SchemaMismatchError: its tables lack a numeric field ``spec`` declares.
            BackendError: the file cannot be opened or written.
        """
        with self._lock:
            conn = self._connection()
            sql = Tables(spec.keys.store)
            meta = ensure_schema(conn, sql, spec)
            self._sql, self._meta = sql, meta
            if self._cache is None or self._cache.dims != meta.dims:
                self._cache = VectorCache(meta.dims)

    def _attach(self, conn: sqlite3.Connection) -> None:
        """Use the named store's existing tables without a ``setup()`` (nothing when there are none)."""
        if self._name is None:
            return
        sql = Tables(self._name)
        try:
            meta = read_meta(conn, sql)
        except sqlite3.Error as exc:
            raise _failure(exc, "open") from exc
        if meta is not None:
            self._sql, self._meta = sql, meta
            self._cache = VectorCache(meta.dims)

    def _setup_op(self, op: ops.Setup) -> Any:
        from agentmem_core._flows_admin import SetupResult

        try:
            self.setup(op.spec)
        except AgentMemError as exc:  # in place, as the Valkey backend answers it
            return exc
        return SetupResult(ENGINE, op.spec, op.hybrid)

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._cache is not None:
                self._cache.gen = -1

    # -- execution -------------------------------------------------------------------------------------
    def execute(self, batch: Sequence[Any]) -> list[Any]:
        """Execute a batch of operations in one transaction; one result per operation, errors in place.

        Raises:
            BackendConnectionError: the file stayed locked by another process past ``busy_timeout``.
            BackendError: the transaction could not begin or commit (nothing was applied).
        """
        if not batch:
            return []
        if any(isinstance(op, ops.Setup) for op in batch):
            if len(batch) == 1:
                return [self._setup_op(batch[0])]
            return [BackendError("Setup runs alone in its batch") for _ in batch]
        with self._lock:
            conn = self._connection()
            if self._sql is None or self._meta is None or self._cache is None:
                self._attach(conn)
            if self._sql is None or self._meta is None or self._cache is None:
                return [IndexNotFoundError("the SQLite store is not set up (run setup())") for _ in batch]
            writes = any(_writes(op) for op in batch)
            # A savepoint makes SQLite copy every page an operation changes first into a sub-journal (a
            # temporary file), so that the operation alone can be rolled back: about a third of a small
            # write batch's time, paid by every batch for the rare one where an operation fails. So a
            # write batch runs without them first, and only a failed one runs again, each operation in
            # its savepoint (the first run is rolled back whole: nothing of it stays).
            results = self._transaction(conn, batch, writes, isolate=False)
            if results is None:
                results = self._transaction(conn, batch, writes, isolate=True)
            assert results is not None  # an isolated run puts every error in place
            return results

    def _transaction(
        self, conn: sqlite3.Connection, batch: Sequence[Any], writes: bool, *, isolate: bool
    ) -> list[Any] | None:
        """Run the batch in one transaction and commit it.

        Returns ``None`` when an operation failed and ``isolate`` was off: nothing was applied.
        """
        assert self._cache is not None
        try:
            conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        except sqlite3.Error as exc:
            raise _failure(exc, "begin") from exc
        committed = False
        try:
            results = self._run(conn, batch, writes, isolate=isolate)
            if results is not None:
                conn.execute("COMMIT")
                committed = True
        except sqlite3.Error as exc:
            raise _failure(exc, "transaction") from exc
        finally:
            if not committed:
                self._cache.gen = -1  # it may hold what the rolled-back operations changed
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        return results

    def _run(
        self, conn: sqlite3.Connection, batch: Sequence[Any], writes: bool, *, isolate: bool
    ) -> list[Any] | None:
        """Every operation's result in order, errors in place.

        Returns ``None`` when a write batch's operation failed and ``isolate`` is off (the caller rolls
        the transaction back).
        """
        assert self._sql is not None and self._meta is not None and self._cache is not None
        tx = Tx(conn, self._sql, self._meta, self._cache, writes=writes, now_ms=int(self._clock() * 1000))
        if writes:
            tx.reclaim()
        savepoints = writes and isolate
        results: list[Any] = []
        for op in batch:
            handler = HANDLERS.get(type(op))
            if handler is None:
                results.append(BackendError(f"the SQLite backend does not execute {type(op).__name__}"))
                continue
            tx.now_ms = int(self._clock() * 1000)
            if savepoints:
                conn.execute("SAVEPOINT op")
            try:
                result = handler(tx, op)
            except (AgentMemError, sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
                if writes and not isolate:
                    return None
                if savepoints:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    tx.rolled_back()
                results.append(self._error(op, exc))
                continue
            if savepoints:
                conn.execute("RELEASE op")
            results.append(result)
        return results

    @staticmethod
    def _error(op: Any, exc: Exception) -> AgentMemError:
        if isinstance(exc, AgentMemError):
            return exc
        if isinstance(exc, sqlite3.DatabaseError):
            return _failure(exc, type(op).__name__)
        name = type(op).__name__
        return BackendError(f"{name} failed on unreadable stored data: {type(exc).__name__}: {exc}")

    def meta(self) -> Meta | None:
        """The store's index settings as stored in the file (``None`` before setup)."""
        with self._lock:
            if self._sql is None:
                return None
            return read_meta(self._connection(), self._sql)
