"""Encoding of user values for the index, and the key layout.

TAG values are restricted to ``[a-z0-9_]`` because no escaping scheme is correct on both RediSearch and
every valkey-search version (shared/docs/valkey-search-compat.md §2.2). Anything a user writes (scope ids,
tags, namespace labels, metadata) is therefore *encoded* before it reaches a query: short lowercase
alphanumerics are kept verbatim for readability, everything else becomes ``_`` + a 128-bit BLAKE2b digest.
The two forms cannot collide (verbatim values never contain ``_``), so encoding is injective up to hash
collisions and no user input can change the structure of a query.

Key layout (``P`` = ``am:<store>:``; ``{tag}`` is a Valkey hash tag shared by everything in one scope, so
per-scope scripts are atomic and cluster-slot safe)::

    P m:{tag}<local>    HASH  the memory (indexed: the only prefix the search index covers)
    P s:{tag}<local>    HASH  hot counters: access_count, last_accessed_at, duplicate_count (not indexed,
                              so reinforcement never re-indexes the document)
    P z:{tag}           ZSET  ids of the scope by created_at (listing, capacity, forget_by_scope)
    P x:{tag}           ZSET  "<kind>|<id>" of expiring memories by expires_at (bookkeeping of TTLs)
    P i:{tag}           ZSET  ids of the scope by importance (capacity eviction)
    P c:{tag}           HASH  live count per kind in the scope, and "#seq": the scope's write sequence
    P t:{tag}           HASH  term -> how many of the scope's memories hold it (x_terms), and "#v": the
                              counts are complete (the lexical channel's statistics, kept by the scripts)
    P xt:{tag}          HASH  id -> x_terms of the scope's expiring memories (uncounted once reclaimed)
    P scopes            HASH  tag -> scope descriptor (JSON), for list/stats/namespace listing
    P scopeix           ZSET  the scope index: lexicographic members by namespace, user, thread, agent
    P ids               HASH  caller id -> scope tag of the memory it names (global ids, remember(id=...))
    P config            HASH  live configuration
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from agentmem_core.errors import InvalidMemoryError

__all__ = [
    "NONE_TAG",
    "Keys",
    "ScopeKey",
    "encode_tag",
    "member_token",
    "metadata_token",
    "namespace_tokens",
    "presence_token",
]

# fullmatch, never match with ^...$: "$" also matches before a trailing newline, so "alice\n" would be kept
# verbatim and the engine, which trims tag values, would file it under "alice" (another tenant's scope).
_VERBATIM = re.compile(r"[a-z0-9]{1,32}")
NONE_TAG = "_none_"
"""Stored in a scope TAG field when the scope value is unset (cannot collide with an encoded value)."""
_TAG_LEN = 16
_ID_RE = re.compile(r"[0-9a-f]{32}")


def encode_tag(value: str) -> str:
    """Encode a user string as a portable TAG value (``[a-z0-9_]`` only)."""
    if _VERBATIM.fullmatch(value):
        return value
    return _hashed_tag(value)


# Scope values, tags and namespaces repeat from write to write: their hashes are memoised (bounded, so a
# stream of distinct values costs no more than before, and the cache cannot grow without limit).
@lru_cache(maxsize=4096)
def _hashed_tag(value: str) -> str:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not text any backend can store or match
        raise InvalidMemoryError(f"{value!r} is not valid Unicode text: {exc.reason}") from exc
    return "_" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def namespace_tokens(namespace: Sequence[str]) -> list[str]:
    """Encoded tokens of every non-empty prefix of a namespace path (for hierarchical prefix match)."""
    return list(_namespace_tokens(tuple(namespace)))


@lru_cache(maxsize=1024)
def _namespace_tokens(namespace: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(namespace_token(namespace[: i + 1]) for i in range(len(namespace)))


def namespace_token(namespace: Sequence[str]) -> str:
    """The encoded token of one exact namespace path (the empty path included)."""
    return _namespace_token(tuple(namespace))


@lru_cache(maxsize=1024)
def _namespace_token(namespace: tuple[str, ...]) -> str:
    return encode_tag(_canonical(list(namespace)))


def normalise_scalar(value: object) -> object:
    """Normalise a metadata scalar so that values equal in Python encode equally (1 == 1.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def metadata_token(key: str, value: object) -> str:
    """The encoded TAG token for ``metadata[key] == value`` (a scalar ``value``: whole-value equality)."""
    return encode_tag("m" + _canonical([key, normalise_scalar(value)]))


def member_token(key: str, element: object) -> str:
    """The encoded TAG token for "the list ``metadata[key]`` contains the scalar ``element``".

    Its own prefix (``c``), so that membership never passes for equality: ``{"labels": "x"}`` must not
    match ``{"labels": ["x", "y"]}`` (``$eq`` compares a list as a whole), while ``$contains`` does.
    """
    return encode_tag("c" + _canonical([key, normalise_scalar(element)]))


def presence_token(key: str) -> str:
    """The encoded TAG token for "``metadata`` has the top-level key ``key``" (``$exists``)."""
    return encode_tag("k" + _canonical(key))


@dataclass(frozen=True)
class ScopeKey:
    """The scope a memory belongs to: capacity, listing and co-location are per scope."""

    namespace: tuple[str, ...] = ()
    thread_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None

    def descriptor(self) -> dict[str, object]:
        """JSON-able description (stored in the scope registry)."""
        return {
            "namespace": list(self.namespace),
            "thread_id": self.thread_id,
            "agent_id": self.agent_id,
            "user_id": self.user_id,
        }

    @classmethod
    def from_descriptor(cls, raw: dict[str, object]) -> ScopeKey:
        """Inverse of :meth:`descriptor`."""
        ns = raw.get("namespace") or []
        assert isinstance(ns, list)

        def opt(name: str) -> str | None:
            value = raw.get(name)
            return None if value is None else str(value)

        return cls(tuple(str(x) for x in ns), opt("thread_id"), opt("agent_id"), opt("user_id"))

    @cached_property
    def tag(self) -> str:
        """16-hex hash tag shared by every key of this scope (memoised per scope, not only per instance)."""
        return _scope_tag(self)


@lru_cache(maxsize=4096)
def _scope_tag(scope: ScopeKey) -> str:
    # keyed by the (frozen, hashable) scope itself: equal scopes share one entry and one hash
    return hashlib.blake2b(_canonical(scope.descriptor()).encode(), digest_size=8).hexdigest()


def new_local_id() -> str:
    """A random 16-hex local id."""
    return secrets.token_hex(8)


def local_id_for_key(key: str) -> str:
    """A deterministic 16-hex local id for a caller-chosen key (upserts)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"agentmem-key").hexdigest()


def local_id_for_caller_id(caller_id: str) -> str:
    """A deterministic 16-hex local id for a caller's global id (``remember(id=...)``).

    Its own personalisation, so a caller id never lands on the memory a key of the same text names.
    """
    return hashlib.blake2b(caller_id.encode("utf-8"), digest_size=8, person=b"agentmem-id").hexdigest()


def is_memory_id(value: object) -> bool:
    """Whether ``value`` has the shape of an id agentmem generated (32 lowercase hex characters)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def parse_id(memory_id: str) -> tuple[str, str]:
    """Split a memory id into (scope tag, local id).

    Raises:
        InvalidMemoryError: when the id is not one agentmem produced.
    """
    if not isinstance(memory_id, str) or not _ID_RE.fullmatch(memory_id):
        raise InvalidMemoryError(f"not a memory id: {memory_id!r}")
    return memory_id[:_TAG_LEN], memory_id[_TAG_LEN:]


@dataclass(frozen=True)
class Keys:
    """Key names of one store (pure)."""

    store: str

    @cached_property
    def prefix(self) -> str:
        """Common prefix of every key of the store."""
        return f"am:{self.store}:"

    @cached_property
    def memory_prefix(self) -> str:
        """The only prefix the search index covers."""
        return f"{self.prefix}m:"

    @property
    def index(self) -> str:
        """The search index name (versioned: a schema change creates a new index)."""
        return f"am_{self.store}_v2"

    def memory(self, memory_id: str) -> str:
        """Key of a memory hash."""
        tag, local = parse_id(memory_id)
        return self.memory_of_scope(tag) + local

    def stats(self, memory_id: str) -> str:
        """Key of a memory's counter hash."""
        tag, local = parse_id(memory_id)
        return self.stats_of_scope(tag) + local

    def memory_of_scope(self, tag: str) -> str:
        """What the keys of scope ``tag``'s memory hashes start with (then the id's own part)."""
        return f"{self.memory_prefix}{{{tag}}}"

    def stats_of_scope(self, tag: str) -> str:
        """What the keys of scope ``tag``'s counter hashes start with (then the id's own part)."""
        return f"{self.prefix}s:{{{tag}}}"

    def id_from_memory_key(self, key: str) -> str:
        """Inverse of :meth:`memory`."""
        rest = key[len(self.memory_prefix) :]
        return rest[1 : 1 + _TAG_LEN] + rest[2 + _TAG_LEN :]

    def stats_of_memory_key(self, key: str) -> str:
        """The counter hash key of a memory hash key (no id validation: the key came from the index)."""
        return f"{self.prefix}s:{key[len(self.memory_prefix) :]}"

    def created(self, tag: str) -> str:
        """The scope's ZSET of ids by created_at."""
        return f"{self.prefix}z:{{{tag}}}"

    def expiring(self, tag: str) -> str:
        """The scope's ZSET of expiring ``kind|id`` members by expires_at."""
        return f"{self.prefix}x:{{{tag}}}"

    def by_importance(self, tag: str) -> str:
        """The scope's ZSET of ids by importance (capacity eviction reads its low end)."""
        return f"{self.prefix}i:{{{tag}}}"

    def counts(self, tag: str) -> str:
        """The scope's per-kind count hash."""
        return f"{self.prefix}c:{{{tag}}}"

    def terms(self, tag: str) -> str:
        """The scope's term count hash (see ``agentmem_core._scripts._TERMS``)."""
        return f"{self.prefix}t:{{{tag}}}"

    def expiring_terms(self, tag: str) -> str:
        """The scope's hash of its expiring memories' terms."""
        return f"{self.prefix}xt:{{{tag}}}"

    def bookkeeping(self, tag: str) -> tuple[str, str, str, str, str, str]:
        """The scope's bookkeeping keys in the order every script takes them: z, x, c, i, t, xt."""
        return (
            self.created(tag), self.expiring(tag), self.counts(tag), self.by_importance(tag),
            self.terms(tag), self.expiring_terms(tag),
        )  # fmt: skip

    @property
    def scopes(self) -> str:
        """The scope registry hash."""
        return f"{self.prefix}scopes"

    @property
    def aliases(self) -> str:
        """The hash of caller ids -> the scope tag of the memory they name (``remember(id=...)``)."""
        return f"{self.prefix}ids"

    @property
    def scope_index(self) -> str:
        """The scope index ZSET (lexicographic; see ``agentmem_core._scope_index``)."""
        return f"{self.prefix}scopeix"

    @property
    def config(self) -> str:
        """The live-config hash."""
        return f"{self.prefix}config"
