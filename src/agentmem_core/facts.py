"""Facts keyed by a subject, and their supersession: pure rules, no I/O.

A fact is a memory with a ``subject`` (``remember(..., subject="home_city")``). The facts of one subject
in one scope form a history: each version holds from its ``created_at`` (when it was stated) until the
next version's, which supersedes it (``superseded_by``, ``valid_until``), or until a retraction (a
tombstone: ``valid_until`` set, ``superseded_by`` none). The current fact is the one without
``valid_until``. Recall returns current facts (and every memory that is no fact) by default.

The history is recomputed from scratch by :func:`plan_history` whenever a subject changes, so the rules
are one function: the versions in statement order (``created_at``, then write order), retractions placed
at their time. Re-running it on its own output changes nothing, which is what makes a write, a
consolidation run or a repair after a crash idempotent.

Storage: the state is one stored field (``schema.F.FACT``, compact JSON) plus tokens in the metadata TAG
field, in a family no metadata token can produce (metadata tokens are hashed, ``_`` + hex): :data:`FACT_TOKEN`
on every fact, ``fs<hex>`` for the subject and :data:`SUPERSEDED_TOKEN` once a version no longer holds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agentmem_core.errors import InvalidMemoryError

__all__ = [
    "FACT_TOKEN",
    "FACT_TOKEN_PREFIX",
    "SUPERSEDED_TOKEN",
    "FactState",
    "Version",
    "decode_state",
    "encode_state",
    "fact_tokens",
    "normalise_subject",
    "plan_history",
    "subject_token",
]

FACT_TOKEN_PREFIX = "f"
"""Tokens of this family in the metadata TAG field belong to facts (metadata tokens start with ``_``)."""

SUPERSEDED_TOKEN = "fx"
"""The token of a version that no longer holds (superseded or retracted)."""

FACT_TOKEN = "fa"
"""The token every fact carries (``fact=True`` filters)."""

MAX_SUBJECT_CHARS = 128

_SEPARATORS = re.compile(r"[\s\-_./:]+")


def normalise_subject(subject: Any) -> str:
    """The match key of a subject: case, surrounding space and separators folded.

    ``"Home city"``, ``"home_city"`` and ``" HOME-CITY "`` are one subject, ``home_city``.

    Raises:
        InvalidMemoryError: a non-string, blank, oversized subject, or one with control characters.
    """
    if not isinstance(subject, str):
        raise InvalidMemoryError(f"subject must be a string, got {type(subject).__name__}")
    if any(ord(c) < 32 or ord(c) == 127 for c in subject):
        raise InvalidMemoryError("subject must not contain control characters")
    key = _SEPARATORS.sub("_", subject.strip().casefold()).strip("_")
    if not key:
        raise InvalidMemoryError("subject must not be blank")
    if len(key) > MAX_SUBJECT_CHARS:
        raise InvalidMemoryError(f"subject longer than {MAX_SUBJECT_CHARS} characters")
    return key


def subject_token(subject: str) -> str:
    """The TAG token of a (normalised) subject."""
    digest = hashlib.blake2b(subject.encode("utf-8"), digest_size=12, person=b"agentmem-subj").hexdigest()
    return "fs" + digest


@dataclass(frozen=True)
class FactState:
    """A fact's supersession state.

    Attributes:
        subject: the normalised subject.
        valid_until: when it stopped holding (Unix seconds), ``None`` while it is current.
        superseded_by: the id of the version that replaced it; ``None`` while current or when retracted.
        sources: the ids of the memories it was distilled from (``consolidate_facts``); recall returns the
            fact in their place when both are candidates.
    """

    subject: str
    valid_until: float | None = None
    superseded_by: str | None = None
    sources: tuple[str, ...] = ()

    @property
    def current(self) -> bool:
        """Whether it still holds."""
        return self.valid_until is None


def encode_state(state: FactState) -> str:
    """The stored field of a fact's state."""
    out: dict[str, Any] = {"s": state.subject}
    if state.valid_until is not None:
        out["u"] = state.valid_until
    if state.superseded_by is not None:
        out["b"] = state.superseded_by
    if state.sources:
        out["src"] = list(state.sources)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def decode_state(raw: str | bytes | None) -> FactState | None:
    """A fact's state from its stored field (``None``: the memory is no fact)."""
    if raw is None or raw == b"" or raw == "":
        return None
    data = json.loads(raw)
    until = data.get("u")
    return FactState(
        str(data["s"]), None if until is None else float(until), data.get("b"), tuple(data.get("src", ()))
    )


def fact_tokens(state: FactState) -> tuple[str, ...]:
    """The metadata TAG tokens of a fact in ``state``."""
    token = subject_token(state.subject)
    return (FACT_TOKEN, token) if state.current else (FACT_TOKEN, token, SUPERSEDED_TOKEN)


@dataclass(frozen=True)
class Version:
    """One stored version of a subject, as :func:`plan_history` reads it.

    Attributes:
        id: the memory id.
        valid_from: when it was stated (its ``created_at``).
        sequence: its place in the scope's write order (breaks ties of ``valid_from``: the later write wins).
        state: its stored state.
    """

    id: str
    valid_from: float
    sequence: int
    state: FactState


def plan_history(
    versions: Sequence[Version], retractions: Sequence[float] = ()
) -> tuple[dict[str, FactState], list[float]]:
    """The state every version should have, and the retractions that matched no fact.

    Versions hold in statement order; each is superseded by the next. A retraction at time ``t`` ends the
    version holding at ``t`` (``valid_until = t``, no successor); one that finds nothing holding at ``t``
    is returned as unmatched (never silently dropped). Retractions already stored (a version with
    ``valid_until`` and no ``superseded_by``) are replayed at their time, so the plan of a plan is itself.

    Returns:
        ``(states, unmatched)``: the wanted state by id (every version, changed or not), and the times of
        the new retractions that matched nothing.
    """
    ordered = sorted(versions, key=lambda v: (v.valid_from, v.sequence, v.id))
    # A version ended without a successor records a retraction; it is replayed at its time (so a version
    # stated later but before it moves the retraction onto that version).
    stored_retractions = [
        v.state.valid_until
        for v in ordered
        if v.state.valid_until is not None and v.state.superseded_by is None
    ]
    # Events in time order: a retraction at the very instant a version is stated comes after it (a
    # retraction "now" ends what was said now).
    events: list[tuple[float, int, int, str]] = [(v.valid_from, 0, v.sequence, v.id) for v in ordered]
    events += [(t, 1, 0, "") for t in stored_retractions]
    # a retraction restated at the time of one already stored is the same retraction (re-runs change nothing)
    new = [(t, 1, 1, "") for t in dict.fromkeys(retractions) if t not in stored_retractions]
    events += new
    events.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
    stored = {v.id: v.state for v in ordered}
    states: dict[str, FactState] = {}
    holding: str | None = None
    unmatched: list[float] = []
    for when, is_retraction, marker, memory_id in events:
        if is_retraction:
            if holding is None:
                if marker == 1:
                    unmatched.append(when)
                continue
            states[holding] = replace(stored[holding], valid_until=when, superseded_by=None)
            holding = None
            continue
        if holding is not None:
            states[holding] = replace(stored[holding], valid_until=when, superseded_by=memory_id)
        states[memory_id] = replace(stored[memory_id], valid_until=None, superseded_by=None)
        holding = memory_id
    return states, unmatched


def changed(versions: Sequence[Version], wanted: Mapping[str, FactState]) -> list[tuple[str, FactState]]:
    """The versions whose stored state differs from ``wanted`` (what a write must update)."""
    return [(v.id, wanted[v.id]) for v in versions if v.id in wanted and wanted[v.id] != v.state]
