r"""Pure key and field builders for the checkpointer's Valkey layout.

Every key a thread owns carries the same hash tag, ``{<escaped thread_id>}``, so a thread lives in one
cluster slot and every operation on it can run as one server-side script. A thread owns exactly six keys,
whatever its number of checkpoints, namespaces or writes::

    <prefix>:{<thread>}:ids     ZSET   member = ns \0 checkpoint_id (score 0, ordered lexicographically)
    <prefix>:{<thread>}:cp      HASH   member -> record; member\0v -> blob fields; member\0w -> write
                                       fields; member\0m -> "parent \1 run_id \1 delta flag"
    <prefix>:{<thread>}:blobs   HASH   ns \0 channel \0 version -> serialized channel value
    <prefix>:{<thread>}:refs    HASH   blob field -> number of checkpoints referencing it
    <prefix>:{<thread>}:writes  HASH   member \0 task_id \0 idx -> serialized pending write
    <prefix>:{<thread>}:runs    HASH   run_id -> members written by that run

Why escaping: user strings (thread ids, namespaces, channels, task ids) may contain anything. Escaping
``%``, NUL, ``\x01``, ``{`` and ``}`` as ``%XX`` keeps the hash tag exact, and lets ``\0`` separate the
parts of a field and ``\x01`` separate list items, with no ambiguity.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "KINDS",
    "ThreadKeys",
    "blob_field",
    "escape",
    "member",
    "ns_range",
    "split_member",
    "thread_from_key",
    "thread_keys",
    "thread_scan_pattern",
    "unescape",
    "validate_prefix",
    "write_field",
]

KINDS = ("ids", "cp", "blobs", "refs", "writes", "runs")
_ESCAPES = {"%": "%25", "\x00": "%00", "\x01": "%01", "{": "%7B", "}": "%7D"}
_ESCAPE_RE = re.compile("[%\x00\x01{}]")
_UNESCAPE_RE = re.compile("%(25|00|01|7B|7D)")
_UNESCAPES = {v[1:]: k for k, v in _ESCAPES.items()}
# Glob and hash-tag characters are excluded so that the prefix can be used verbatim in SCAN patterns.
# Used with fullmatch: ``$`` would also match before a trailing newline and let "app\n" through.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:/@+=-]+")


class ThreadKeys(NamedTuple):
    """The six keys of one thread, in the order the Lua scripts expect them (``KEYS[1..6]``)."""

    ids: str
    cp: str
    blobs: str
    refs: str
    writes: str
    runs: str


def escape(value: str) -> str:
    r"""Escape ``%``, NUL, ``\x01``, ``{`` and ``}`` as ``%XX`` (order-preserving for ids without them)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value)


def unescape(value: str) -> str:
    """Invert :func:`escape`."""
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m.group(1)], value)


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is safe in key names and SCAN patterns, else raise ``ValueError``."""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"invalid key prefix {prefix!r}: use letters, digits and _.:/@+=- only (no braces or glob chars)"
        )
    return prefix


def thread_keys(prefix: str, thread_id: str) -> ThreadKeys:
    """The keys of ``thread_id`` under ``prefix``; all share the hash tag of the escaped thread id."""
    base = f"{prefix}:{{{escape(thread_id)}}}:"
    return ThreadKeys(*(base + kind for kind in KINDS))


def thread_scan_pattern(prefix: str, kind: str = "ids") -> str:
    """SCAN pattern matching one key of ``kind`` per thread under ``prefix`` (admin operations only)."""
    return f"{prefix}:{{*}}:{kind}"


def thread_from_key(prefix: str, key: str) -> str:
    """Recover the thread id from a key built by :func:`thread_keys`."""
    start = len(prefix) + 2
    end = key.index("}", start)
    return unescape(key[start:end])


def member(ns: str, checkpoint_id: str) -> str:
    """The ZSET member / record field of one checkpoint."""
    return f"{escape(ns)}\x00{escape(checkpoint_id)}"


def split_member(value: str) -> tuple[str, str]:
    """Invert :func:`member`: ``(checkpoint_ns, checkpoint_id)``."""
    ns, _, cid = value.partition("\x00")
    return unescape(ns), unescape(cid)


def blob_field(ns: str, channel: str, version: str | int | float) -> str:
    """The field of one channel value at one version."""
    return f"{escape(ns)}\x00{escape(channel)}\x00{escape(str(version))}"


def write_field(ns: str, checkpoint_id: str, task_id: str, idx: int) -> str:
    """The field of one pending write, unique per (checkpoint, task_id, idx)."""
    return f"{member(ns, checkpoint_id)}\x00{escape(task_id)}\x00{idx}"


def ns_range(ns: str, before: str | None = None) -> tuple[str, str]:
    """``(min, max)`` ZRANGEBYLEX bounds of a namespace's members, newest bound exclusive of ``before``."""
    low = f"[{escape(ns)}\x00"
    high = f"({member(ns, before)}" if before is not None else f"({escape(ns)}\x01"
    return low, high
