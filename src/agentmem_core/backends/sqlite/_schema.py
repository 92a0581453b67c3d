"""The SQLite file: its connection settings, its tables (one set per store) and the store's index settings.

Every table of a store is named ``am_<store>_<table>`` (store names are ``[A-Za-z0-9_-]``, quoted as
identifiers), so several stores share one file the way several stores share one Valkey server. The
tables mirror the Valkey key layout of :mod:`agentmem_core._encoding`:

=========  ===========================================================================================
mem        the memory hashes: ``fields`` (JSON object of text values) and ``deadline`` (the real-time
           PEXPIRE instant in ms since the epoch, ``NULL``: none); rows past it are gone for every op.
           ``rid``: the row's number, in the order memories were made (what the postings hold)
vec        the vectors of a memory: ``n = 0`` is ``embedding``, ``n >= 1`` the extra vectors (``vx``)
tok / num  the TAG tokens and NUMERIC values of the indexed fields (what filters match), by ``rid``
           (each entry also holds its memory's id)
stats      the counter hashes (JSON object, own deadline like Valkey's ``s:`` keys)
zs         the scope ZSETs: ``k`` = ``z`` (by created_at), ``x`` (expiring ``kind|id``), ``i`` (importance)
counts     the scope count hashes (per kind, and ``#seq``)
scopes     the scope registry; ``scopeix`` the scope index (BLOB members sort bytewise, like ZRANGEBYLEX)
aliases    caller id -> scope tag; ``config`` the live configuration; ``meta`` the index settings
lease      the leases (``_leases.py``): name -> holder and deadline (ms, as ``mem``'s)
audit      the audit log (``_audit.py``): seq -> entry fields (JSON object), capped, newest kept
gen        one counter, bumped by every transaction that changes memories, vectors or index entries
           (invalidates other processes' vector caches and their postings)
=========  ===========================================================================================
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from functools import lru_cache

from agentmem_core.errors import (
    BackendConnectionError,
    BackendError,
    DimensionMismatchError,
    SchemaMismatchError,
)
from agentmem_core.schema import IndexSpec, numeric_field

from ._audit import AUDIT_DDL
from ._leases import LEASE_DDL

__all__ = ["FORMAT", "Meta", "Tables", "connect", "ensure_schema", "read_meta"]

FORMAT = "2"
"""Version of the table layout: ``setup()`` migrates a file of an earlier one (:func:`_migrate`).

Layout ``"1"`` keyed the postings (``tok``, ``num``) by memory id: a new memory's entries landed on
random B-tree leaves, one page each, and the commit wrote them all to the WAL. Layout ``"2"`` keys them by
``rid``, which grows with every new memory, so the entries of a batch under one token share the token's
last leaf (CrewAI save of ten records at 10k: 348-373 -> 207-228 WAL pages, the rows' own floor 1.8-2.3
-> 1.1-1.2 ms). Each entry also holds its memory's id, so loading a posting needs no join (a join through
a ``(rid, id)`` index saved 0.2 ms per save but made a text recall's first postings loads 30% slower).
"""

BUSY_TIMEOUT_MS = 10_000
"""How long a transaction waits for another process's write lock before failing."""

WAL_CHECKPOINT_PAGES = 10_000
"""WAL pages (4 KiB each) written before a commit copies them back into the file (SQLite's default: 1,000).

Each save touches a few hundred B-tree pages (its index entries land on random leaves), so the default
checkpointed every third save of ten memories: the checkpoint's copy and fsync made that save 4x slower
(CrewAI bench, 10k, embedded: save x10 p95 15.0 -> 5.0 ms, mean 6.9 -> 5.1 ms), and pages written
again between two checkpoints are copied once. Durability is unchanged: a commit is in the WAL either way.
"""

WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""The WAL file is truncated back to this size after a checkpoint (it otherwise keeps its largest size)."""

_TABLES = (
    "mem", "vec", "tok", "num", "stats", "zs", "counts", "scopes", "scopeix", "aliases", "config", "meta",
    "gen", "lease", "audit",
)  # fmt: skip

# rid: an explicit INTEGER PRIMARY KEY, so VACUUM keeps it (the postings hold it), and AUTOINCREMENT, so
# a number is never given twice: a posting left behind could never match a later memory of another scope
_MEM = (
    "(rid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, fields TEXT NOT NULL, deadline INTEGER)"
)
# tok / num: one B-tree each, keyed by what filters look up and then by rid, so a batch's entries under one
# token share its last leaf; each carries its memory's id (what the vector cache's postings are built
# from, read without a join). A memory's entries are deleted by key, from its stored fields
_TOK = (
    "(field TEXT NOT NULL, token TEXT NOT NULL, rid INTEGER NOT NULL, id TEXT NOT NULL, "
    "PRIMARY KEY (field, token, rid)) WITHOUT ROWID"
)
_NUM = (
    "(field TEXT NOT NULL, value REAL NOT NULL, rid INTEGER NOT NULL, id TEXT NOT NULL, "
    "PRIMARY KEY (field, value, rid)) WITHOUT ROWID"
)

_DDL = (
    "CREATE TABLE IF NOT EXISTS {mem} " + _MEM,
    "CREATE INDEX IF NOT EXISTS {mem_deadline} ON {mem} (deadline) WHERE deadline IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS {vec} (id TEXT NOT NULL, n INTEGER NOT NULL, v BLOB NOT NULL, "
    "UNIQUE (id, n))",
    "CREATE TABLE IF NOT EXISTS {tok} " + _TOK,
    "CREATE TABLE IF NOT EXISTS {num} " + _NUM,
    "CREATE TABLE IF NOT EXISTS {stats} (id TEXT PRIMARY KEY, data TEXT NOT NULL, deadline INTEGER)",
    "CREATE INDEX IF NOT EXISTS {stats_deadline} ON {stats} (deadline) WHERE deadline IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS {zs} (k TEXT NOT NULL, tag TEXT NOT NULL, member TEXT NOT NULL, "
    "score REAL NOT NULL, PRIMARY KEY (k, tag, member)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS {zs_score} ON {zs} (k, tag, score, member)",
    "CREATE TABLE IF NOT EXISTS {counts} (tag TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL, "
    "PRIMARY KEY (tag, name)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {scopes} (tag TEXT PRIMARY KEY, descriptor TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {scopeix} (member BLOB PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {aliases} (ext TEXT PRIMARY KEY, tag TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {config} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {meta} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {gen} (one INTEGER PRIMARY KEY CHECK (one = 0), v INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO {gen} (one, v) VALUES (0, 0)",
    LEASE_DDL,
    AUDIT_DDL,
)


class Tables:
    """The SQL of one store: ``self("SELECT ... FROM {mem}")`` names its tables (memoised)."""

    def __init__(self, store: str) -> None:
        names = {t: f'"am_{store}_{t}"' for t in _TABLES}
        for index in ("mem_deadline", "stats_deadline", "zs_score"):
            names[index] = f'"am_{store}_{index}"'
        self.store = store
        self._names = names
        self._format = lru_cache(maxsize=512)(self._render)

    def _render(self, template: str) -> str:
        return template.format(**self._names)

    def __call__(self, template: str) -> str:
        """The statement with this store's table names (identifiers only: values are always parameters)."""
        return self._format(template)


@dataclass(frozen=True)
class Meta:
    """The index settings a store's tables were created with."""

    dims: int
    numeric: tuple[str, ...]
    """Declared numeric metadata keys (their NUMERIC mirrors are indexed)."""


def connect(path: str) -> sqlite3.Connection:
    """Open the file (autocommit mode: transactions are explicit) in WAL mode.

    Raises:
        BackendConnectionError: when the file cannot be opened or switched to WAL.
    """
    try:
        conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    except sqlite3.Error as exc:
        raise BackendConnectionError(f"cannot open SQLite file {path!r}: {exc}") from exc
    if path != ":memory:" and (mode is None or str(mode[0]).lower() != "wal"):
        conn.close()
        raise BackendConnectionError(f"SQLite file {path!r} cannot use WAL mode (journal_mode={mode})")
    return conn


def _has_tables(conn: sqlite3.Connection, sql: Tables) -> bool:
    """Whether the store's tables exist (its ``meta`` table is the one every layout has)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"am_{sql.store}_meta",)
    ).fetchone()
    return found is not None


def read_meta(conn: sqlite3.Connection, sql: Tables) -> Meta | None:
    """The store's index settings, or ``None`` when its tables do not exist yet."""
    if not _has_tables(conn, sql):
        return None
    meta = dict(conn.execute(sql("SELECT name, value FROM {meta}")).fetchall())
    if "dims" not in meta:
        return None
    if meta.get("format") != FORMAT:
        hint = " (setup() migrates it)" if meta.get("format") in _MIGRATIONS else ""
        raise SchemaMismatchError(
            f"store {sql.store!r} has another agentmem SQLite layout ({meta.get('format')!r}, this version "
            f"reads {FORMAT!r}){hint}"
        )
    return Meta(int(meta["dims"]), tuple(json.loads(meta.get("numeric", "[]"))))


def ensure_schema(conn: sqlite3.Connection, sql: Tables, spec: IndexSpec) -> Meta:
    """Create the store's tables, or validate existing ones against ``spec`` (like ``FT.CREATE``/``FT.INFO``).

    Raises:
        DimensionMismatchError: the tables hold vectors of another dimension.
        SchemaMismatchError: they were created without a numeric field the spec declares.
        BackendError: the file cannot be written.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate(conn, sql)
            for statement in _DDL:
                conn.execute(sql(statement))
            meta = read_meta(conn, sql)
            if meta is None:
                meta = Meta(spec.config.dims, tuple(spec.numeric))
                conn.executemany(
                    sql("INSERT OR REPLACE INTO {meta} (name, value) VALUES (?, ?)"),
                    [("format", FORMAT), ("store", sql.store), ("dims", str(meta.dims)),
                     ("numeric", json.dumps(list(meta.numeric)))],
                )  # fmt: skip
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise BackendError(f"cannot set up store {sql.store!r} in SQLite: {exc}") from exc
    if meta.dims != spec.config.dims:
        raise DimensionMismatchError(spec.name, meta.dims, spec.config.dims)
    have = {numeric_field(key) for key in meta.numeric}
    missing = [key for key in spec.numeric if numeric_field(key) not in have]
    if missing:
        raise SchemaMismatchError(
            f"index {spec.name!r} was created without the numeric metadata fields {missing}: declared "
            "numeric_fields must exist when the index is created (drop the index, or use another store name)"
        )
    return meta


def _format(conn: sqlite3.Connection, sql: Tables) -> str | None:
    """The layout of the store's tables (``None``: none yet)."""
    if not _has_tables(conn, sql):
        return None
    row = conn.execute(sql("SELECT value FROM {meta} WHERE name = 'format'")).fetchone()
    return None if row is None else str(row[0])


def _migrate_1(conn: sqlite3.Connection, sql: Tables) -> None:
    """Layout ``"1"`` -> ``"2"``: number the memory rows (in their rowid order) and key the postings by it.

    The tables are copied, then the old ones dropped (their pages stay in the file as free space). 100k
    memories (embedded bench data): 4.6 s, and every recall and listing answered the same after it.
    """
    store = sql.store
    for table, ddl in (("mem", _MEM), ("tok", _TOK), ("num", _NUM)):
        conn.execute(f'CREATE TABLE "am_{store}_{table}_v2" {ddl}')
    conn.execute(sql(f'INSERT INTO "am_{store}_mem_v2" (id, fields, deadline) '
                     "SELECT id, fields, deadline FROM {mem} ORDER BY rowid"))  # fmt: skip
    for table, value in (("tok", "token"), ("num", "value")):
        conn.execute(sql(
            f'INSERT INTO "am_{store}_{table}_v2" (field, {value}, rid, id) '
            f'SELECT t.field, t.{value}, m.rid, t.id FROM {{{table}}} t '
            f'JOIN "am_{store}_mem_v2" m ON m.id = t.id'
        ))  # fmt: skip
    for table in ("mem", "tok", "num"):  # their indexes go with them (format 1's tok_id, num_id, ...)
        conn.execute(sql(f"DROP TABLE {{{table}}}"))
        conn.execute(f'ALTER TABLE "am_{store}_{table}_v2" RENAME TO "am_{store}_{table}"')
    # other connections reload their vector caches (what they loaded came from the old tables)
    conn.execute(sql("UPDATE {gen} SET v = v + 1"))


_MIGRATIONS = {"1": ("2", _migrate_1)}
"""Layout -> (the next layout, the step to it)."""


def _migrate(conn: sqlite3.Connection, sql: Tables) -> None:
    """Bring the store's tables to :data:`FORMAT`, step by step, inside the caller's transaction.

    Raises:
        SchemaMismatchError: the tables have a layout this version cannot migrate (a newer one).
    """
    found = _format(conn, sql)
    while found is not None and found != FORMAT:
        known = _MIGRATIONS.get(found)
        if known is None:
            raise SchemaMismatchError(
                f"store {sql.store!r} has agentmem SQLite layout {found!r}, which this version (layout "
                f"{FORMAT!r}) cannot read: open it with the agentmem version that wrote it"
            )
        found, step = known
        step(conn, sql)
        conn.execute(sql("UPDATE {meta} SET value = ? WHERE name = 'format'"), (found,))
