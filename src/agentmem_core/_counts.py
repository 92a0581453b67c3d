"""Counting live memories under a filter with cheap index queries.

"Not expired" is a numeric range that holds nearly every document (a memory without a TTL stores a far
future), and RediSearch pays for such a range per matching document: at 10k memories a filter's live
count cost 0.67 ms with it and 0.29 ms without (``benchmarks``, session 19). So a filter with leaves of
its own is counted as all its matches minus its expired ones: the second range holds only the few
memories past their time the server has not reclaimed yet, and the child vector documents of memories
with several vectors (they match their memory's tags, and their ``x_expires_at`` is long past:
``schema.CHILD_EXPIRES_AT``), which costs about nothing when few memories have several vectors. Both
counts go in the same round trip, so the answer is the one count's, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentmem_core._conditions import NumRange, TagIn
from agentmem_core._parse import as_text
from agentmem_core._plan import expect
from agentmem_core.ops import FilterSearch
from agentmem_core.query import Leaf
from agentmem_core.schema import F

__all__ = ["EXPIRED_LISTING", "TermCounts", "live_count", "live_count_ops"]

EXPIRED_LISTING = 200
"""How many expired memories a :class:`TermCounts` lists with their terms (more: one more round trip)."""


def live_count_ops(leaves: Sequence[Leaf], now: float) -> tuple[FilterSearch, ...]:
    """The counts whose :func:`live_count` is the number of live memories matching ``leaves``.

    ``leaves``: the filter's own leaves, without the expiry leaf. With none (or only negations), the
    one count carries the expiry leaf (a filter-only query needs a positive leaf: valkey-search refuses
    a bare ``*``).
    """
    if not any(_positive(leaf) for leaf in leaves):  # a negation alone selects nothing to count from
        return (FilterSearch((NumRange(F.X_EXPIRES_AT, lo=now, lo_exclusive=True), *leaves), 0),)
    return (
        FilterSearch(tuple(leaves), 0),
        FilterSearch((NumRange(F.X_EXPIRES_AT, hi=now), *leaves), 0),
    )


def _positive(leaf: Leaf) -> bool:
    return not (isinstance(leaf, TagIn) and leaf.negate)


def live_count(replies: Sequence[Any]) -> int:
    """The live count from the replies to :func:`live_count_ops` (in order; errors raise)."""
    total = int(expect(replies[0])[0])
    return total - int(expect(replies[1])[0]) if len(replies) > 1 else total


@dataclass(frozen=True)
class TermCounts:
    """The live count of each term's memories under ``leaves``, in one count per term plus one listing.

    Each term's count of every match goes with ONE listing of the selection's expired memories and their
    terms (``x_expires_at`` in ``[0, now]``: a child vector document's is below 0, and it holds no terms),
    and a term's live count is its count minus the listed memories that hold it: ``n + 1`` queries for
    ``n`` terms, where pairs of counts would be ``2n``. When the listing is incomplete (more expired
    memories than :data:`EXPIRED_LISTING`, or rows the server reclaimed while listing them), the
    per-term expired counts in :meth:`fallback_ops` answer instead, exactly.
    """

    leaves: tuple[Leaf, ...]
    terms: tuple[str, ...]
    now: float

    def ops(self) -> list[FilterSearch]:
        """The counts (one per term, in order) and the listing; none without terms."""
        if not self.terms:
            return []
        counts = [FilterSearch((*self.leaves, TagIn(F.X_TERMS, (t,))), 0) for t in self.terms]
        expired = NumRange(F.X_EXPIRES_AT, lo=0.0, hi=self.now)
        return [*counts, FilterSearch((expired, *self.leaves), EXPIRED_LISTING, (F.X_TERMS,))]

    def read(self, replies: Sequence[Any]) -> dict[str, int] | None:
        """Each term's live count from the replies to :meth:`ops` (``None``: ask :meth:`fallback_ops`)."""
        if not self.terms:
            return {}
        total, rows = expect(replies[-1])
        if len(rows) < total:
            return None
        held = [set(_terms(fields)) for _, fields in rows]
        return {
            t: int(expect(reply)[0]) - sum(1 for terms in held if t in terms)
            for t, reply in zip(self.terms, replies)
        }

    def fallback_ops(self) -> list[FilterSearch]:
        """Each term's expired count (when :meth:`read` could not tell), in order.

        The second half of the term's :func:`live_count_ops` (its leaf is positive, so there are two).
        """
        return [live_count_ops((*self.leaves, TagIn(F.X_TERMS, (t,))), self.now)[1] for t in self.terms]

    def read_fallback(self, replies: Sequence[Any], fallback: Sequence[Any]) -> dict[str, int]:
        """Each term's live count from the replies to :meth:`ops` and to :meth:`fallback_ops`."""
        return {t: live_count([reply, gone]) for t, reply, gone in zip(self.terms, replies, fallback)}


def _terms(fields: Mapping[str, Any]) -> list[str]:
    raw = fields.get(F.X_TERMS)
    return as_text(raw).split("|") if raw else []
