"""The scope index: one lexicographically sorted ZSET that finds scopes without reading the registry.

The registry hash (``P scopes``: tag -> descriptor) says what a scope is; this ZSET (``P scopeix``, every
score 0) says where to find it. Each scope has up to four members, one per dimension (``|`` stands for
the byte 0 here)::

    n | label | label | ... | | tag       its namespace (each label closed by 0; the empty one too)
    u | user id | tag                     its user, thread and agent ids, when set
    t | thread id | tag
    a | agent id | tag

User strings are escaped so that the byte 0 only ever separates (0 -> 1 1, 1 -> 1 2); the escaping keeps
code-point order, so ZRANGEBYLEX walks namespaces in the order Python sorts label tuples, and a namespace
prefix is a byte prefix that ends on a label boundary: ``("a", "b")`` never matches ``("a", "bc")``, and
``("a.b",)`` never meets ``("a", "b")``. The 16-hex scope tag closes every member.

Pure functions only: the flows send the commands.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentmem_core._encoding import ScopeKey

__all__ = [
    "WILDCARD",
    "decode_namespace_member",
    "dimension_range",
    "matches_pattern",
    "namespace_range",
    "scope_members",
    "skip_past",
]

WILDCARD = "*"
"""A namespace label pattern that matches any one label (LangGraph's ``MatchCondition`` wildcard)."""

_TAG_LEN = 16
_END = b"\xff"  # greater than every byte of UTF-8 text: the exclusive end of a prefix range


def _escape(text: str) -> bytes:
    return text.encode("utf-8").replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01")


def _unescape(raw: bytes) -> str:
    return raw.replace(b"\x01\x01", b"\x00").replace(b"\x01\x02", b"\x01").decode("utf-8")


def _labels(namespace: Sequence[str]) -> bytes:
    return b"".join(_escape(label) + b"\x00" for label in namespace)


def scope_members(scope: ScopeKey) -> list[bytes]:
    """The index members of one scope."""
    tag = scope.tag.encode()
    members = [b"n\x00" + _labels(scope.namespace) + b"\x00" + tag]
    for dim, value in ((b"u", scope.user_id), (b"t", scope.thread_id), (b"a", scope.agent_id)):
        if value is not None:
            members.append(dim + b"\x00" + _escape(value) + b"\x00" + tag)
    return members


def decode_namespace_member(member: bytes) -> tuple[tuple[str, ...], str]:
    """``(namespace, scope tag)`` of an ``n`` member."""
    body, tag = member[2 : -_TAG_LEN - 1], member[-_TAG_LEN:].decode()
    if not body:
        return (), tag
    return tuple(_unescape(label) for label in body[:-1].split(b"\x00")), tag


def tag_of(member: bytes) -> str:
    """The scope tag closing any member."""
    return member[-_TAG_LEN:].decode()


def namespace_range(fixed_prefix: Sequence[str]) -> tuple[bytes, bytes]:
    """ZRANGEBYLEX bounds of every namespace starting with these labels (inclusive start, exclusive end)."""
    base = b"n\x00" + _labels(fixed_prefix)
    return b"[" + base, b"(" + base + _END


def dimension_range(dimension: str, value: str) -> tuple[bytes, bytes]:
    """ZRANGEBYLEX bounds of the scopes whose ``user_id`` / ``thread_id`` / ``agent_id`` is ``value``."""
    letter = {"user_id": b"u", "thread_id": b"t", "agent_id": b"a"}[dimension]
    base = letter + b"\x00" + _escape(value) + b"\x00"
    return b"[" + base, b"(" + base + _END


def skip_past(namespace: Sequence[str]) -> bytes:
    """The inclusive ZRANGEBYLEX start just after every namespace at or below ``namespace``."""
    return b"[n\x00" + _labels(namespace)[:-1] + b"\x01"


def matches_pattern(namespace: Sequence[str], pattern: Sequence[str], *, suffix: bool = False) -> bool:
    """Whether a namespace starts (or ends) with a pattern of labels, where ``*`` matches any one label."""
    if len(pattern) > len(namespace):
        return False
    part = namespace[len(namespace) - len(pattern) :] if suffix else namespace[: len(pattern)]
    return all(want == WILDCARD or want == have for want, have in zip(pattern, part))


def fixed_part(prefix: Sequence[str]) -> tuple[str, ...]:
    """The labels of a prefix pattern before its first wildcard (what a lex range can narrow to)."""
    out: list[str] = []
    for label in prefix:
        if label == WILDCARD:
            break
        out.append(label)
    return tuple(out)
