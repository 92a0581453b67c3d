"""Pure view models of the inspector: core results turned into what the templates render.

Nothing here does I/O or touches the web framework, so every function is unit-testable on plain
core values (:class:`~agentmem_core.types.Stats`, :class:`~agentmem_core.types.Memory`,
:class:`~agentmem_core.types.RecallResult`, :class:`~agentmem_core.audit.AuditEntry`). The templates
escape every string they are given (Jinja2 autoescape); the numbers computed here (bar widths,
coordinates) are plain floats, never markup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from agentmem_core.audit import AuditEntry
from agentmem_core.config import ScoringWeights
from agentmem_core.types import Memory, RecallHit, RecallResult, Stats

__all__ = [
    "BAR_WIDTH",
    "KIND_COLOURS",
    "Bar",
    "HitView",
    "MemoryView",
    "PlaygroundView",
    "Scope",
    "ScopeNode",
    "Timeline",
    "TimelineBar",
    "audit_rows",
    "format_duration",
    "format_time",
    "matches_scope",
    "memory_view",
    "playground_view",
    "scope_tree",
    "score_bars",
    "timeline",
]

BAR_WIDTH = 200.0
"""The width (SVG user units) of a full score bar."""

KIND_COLOURS: Mapping[str, str] = {
    "episodic": "#4e79a7",
    "semantic": "#59a14f",
    "procedural": "#f28e2b",
    "summary": "#b07aa1",
}
"""One fill colour per memory kind (timeline and badges); unknown kinds are grey."""

_OTHER_COLOUR = "#9c9c9c"


# -- scopes ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """A scope as the inspector addresses it (in URLs: :meth:`to_param` / :meth:`from_param`).

    Attributes:
        namespace: the namespace labels (``()``: the root namespace).
        thread_id: the thread, or ``None``.
        agent_id: the agent, or ``None``.
        user_id: the user, or ``None``.
    """

    namespace: tuple[str, ...] = ()
    thread_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None

    def to_param(self) -> str:
        """The scope as one compact JSON text (a URL query value; labels may hold any character)."""
        return json.dumps(
            [list(self.namespace), self.thread_id, self.agent_id, self.user_id],
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_param(cls, text: str) -> Scope:
        """Parse :meth:`to_param`'s output.

        Raises:
            ValueError: the text is not a scope.
        """
        try:
            raw = json.loads(text)
        except ValueError:
            raise ValueError("scope: not JSON") from None
        if not isinstance(raw, list) or len(raw) != 4 or not isinstance(raw[0], list):
            raise ValueError("scope: expected [namespace, thread, agent, user]")
        if not all(isinstance(label, str) for label in raw[0]):
            raise ValueError("scope: namespace labels must be strings")
        if not all(value is None or isinstance(value, str) for value in raw[1:]):
            raise ValueError("scope: thread, agent and user must be strings or null")
        return cls(tuple(raw[0]), raw[1], raw[2], raw[3])

    def filters(self) -> dict[str, Any]:
        """Keyword filters for the core (``namespace`` always; unset fields are left out: any)."""
        out: dict[str, Any] = {"namespace": list(self.namespace)}
        for name in ("thread_id", "agent_id", "user_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def label(self) -> str:
        """A one-line human description, e.g. ``travel/2026 · user=ana``."""
        parts = ["/".join(self.namespace) or "(root)"]
        for label, value in (("thread", self.thread_id), ("agent", self.agent_id), ("user", self.user_id)):
            if value is not None:
                parts.append(f"{label}={value}")
        return " · ".join(parts)


def matches_scope(memory: Memory, scope: Scope) -> bool:
    """Whether ``memory`` belongs to exactly ``scope`` (unset fields must be unset on the memory too)."""
    return (
        memory.namespace == scope.namespace
        and memory.thread_id == scope.thread_id
        and memory.agent_id == scope.agent_id
        and memory.user_id == scope.user_id
    )


@dataclass
class ScopeNode:
    """One namespace label of the scope tree.

    Attributes:
        label: the label (``"(root)"`` for the root).
        path: the namespace path down to this node.
        total: memories in this namespace and every namespace below it.
        scopes: the scopes whose namespace is exactly this path, with their counts.
        children: the namespaces one label deeper, sorted by label.
    """

    label: str
    path: tuple[str, ...]
    total: int = 0
    scopes: list[tuple[Scope, int, dict[str, int]]] = field(default_factory=list)
    children: list[ScopeNode] = field(default_factory=list)

    def child(self, label: str) -> ScopeNode:
        """The child named ``label`` (created when missing)."""
        for node in self.children:
            if node.label == label:
                return node
        node = ScopeNode(label, (*self.path, label))
        self.children.append(node)
        return node


def scope_tree(stats: Stats) -> ScopeNode:
    """The namespaces of ``stats`` as a tree (root first), each node with its totals and scopes."""
    root = ScopeNode("(root)", ())
    for entry in stats.scopes:
        scope = Scope(tuple(entry.namespace), entry.thread_id, entry.agent_id, entry.user_id)
        node = root
        node.total += entry.total
        for label in scope.namespace:
            node = node.child(label)
            node.total += entry.total
        node.scopes.append((scope, entry.total, dict(sorted(entry.by_kind.items()))))

    def tidy(node: ScopeNode) -> None:
        node.children.sort(key=lambda n: n.label)
        node.scopes.sort(key=lambda s: (s[0].thread_id or "", s[0].agent_id or "", s[0].user_id or ""))
        for child in node.children:
            tidy(child)

    tidy(root)
    return root


# -- memories -------------------------------------------------------------------------------------------
def format_time(ts: float | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) or ``-``."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """A short duration: ``3d 4h``, ``5h 2m``, ``42s``; ``-`` for ``None``, ``expired`` when ``<= 0``."""
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "expired"
    s = int(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class MemoryView:
    """One memory as the list and the playground show it (display strings, already formatted)."""

    id: str
    content: str
    kind: str
    colour: str
    tags: tuple[str, ...]
    metadata: str
    importance: str
    created: str
    last_accessed: str
    access_count: int
    ttl_left: str
    scope: Scope
    subject: str | None
    fact_state: str | None


def memory_view(memory: Memory, now: float) -> MemoryView:
    """The display of ``memory`` at time ``now`` (TTL left is counted from ``now``)."""
    kind = memory.kind.value
    ttl_left = None if memory.expires_at is None else memory.expires_at - now
    state = None
    if memory.subject is not None:
        state = "current" if memory.current else ("superseded" if memory.superseded_by else "retracted")
    return MemoryView(
        id=memory.id,
        content=memory.content,
        kind=kind,
        colour=KIND_COLOURS.get(kind, _OTHER_COLOUR),
        tags=tuple(memory.tags),
        metadata=json.dumps(dict(memory.metadata), ensure_ascii=False, sort_keys=True)
        if memory.metadata
        else "",
        importance=f"{memory.importance:.2f}",
        created=format_time(memory.created_at),
        last_accessed=format_time(memory.last_accessed_at),
        access_count=memory.access_count or 0,  # the inspector reads with counters: None never comes
        ttl_left=format_duration(ttl_left),
        scope=Scope(tuple(memory.namespace), memory.thread_id, memory.agent_id, memory.user_id),
        subject=memory.subject,
        fact_state=state,
    )


# -- the recall playground ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    """One horizontal bar: a component of a score breakdown.

    Attributes:
        name: the component (``similarity``, ``relevance``, ...).
        value: its value, clamped to ``[0, 1]``.
        width: the bar's width in SVG units (``value * BAR_WIDTH``).
        weight: the weight the composite gives it, when it has one (``None`` otherwise).
        text: the value as shown (3 decimals).
    """

    name: str
    value: float
    width: float
    weight: float | None
    text: str


def _clamp(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))


def score_bars(hit: RecallHit, weights: ScoringWeights) -> list[Bar]:
    """The bars of a hit's score breakdown: the composite first, then what it is made of."""
    s = hit.scores
    parts: list[tuple[str, float, float | None]] = [
        ("score", s.score, None),
        ("relevance", s.relevance, weights.similarity),
        ("similarity", s.similarity, None),
        ("lexical", s.lexical, None),
        ("recency", s.recency, weights.recency),
        ("importance", s.importance, weights.importance),
    ]
    bars = []
    for name, raw, weight in parts:
        value = _clamp(raw)
        bars.append(Bar(name, value, round(value * BAR_WIDTH, 2), weight, f"{value:.3f}"))
    return bars


@dataclass(frozen=True)
class HitView:
    """One row of the playground.

    Attributes:
        rank: 1-based place in the ranking (without the threshold).
        memory: the memory.
        distance: its cosine distance, formatted.
        bars: its score bars.
        cut: whether the chosen threshold rejects it (a near miss).
    """

    rank: int
    memory: MemoryView
    distance: str
    bars: list[Bar]
    cut: bool


@dataclass(frozen=True)
class PlaygroundView:
    """The playground's result.

    Attributes:
        hits: the first ``k`` hits the threshold keeps.
        near_misses: the hits of the wider recall the threshold rejects (closest first).
        nearest_miss: the core's ``nearest_miss`` of the thresholded recall, as ``(id, distance)`` text.
        threshold: the threshold used, or ``None``.
    """

    hits: list[HitView]
    near_misses: list[HitView]
    nearest_miss: tuple[str, str] | None
    threshold: float | None


def playground_view(
    wide: RecallResult,
    *,
    k: int,
    weights: ScoringWeights,
    threshold: float | None,
    now: float,
    gated: RecallResult | None = None,
) -> PlaygroundView:
    """Split a recall run without threshold (``wide``, a larger ``k``) into kept hits and near misses.

    Args:
        wide: the recall without a threshold.
        k: how many kept hits to show.
        weights: the weights the recall used (the bars show them).
        threshold: the distance gate to apply (``None``: nothing is cut).
        now: the time TTLs are counted from.
        gated: the same recall with the threshold, for its ``nearest_miss`` (optional).
    """
    kept: list[HitView] = []
    misses: list[HitView] = []
    for rank, hit in enumerate(wide.hits, start=1):
        cut = threshold is not None and hit.distance > threshold
        row = HitView(
            rank, memory_view(hit.memory, now), f"{hit.distance:.4f}", score_bars(hit, weights), cut
        )
        if cut:
            misses.append(row)
        elif len(kept) < k:
            kept.append(row)
    misses.sort(key=lambda r: float(r.distance))
    nearest = None
    if gated is not None and gated.nearest_miss is not None:
        nearest = (gated.nearest_miss.memory_id, f"{gated.nearest_miss.distance:.4f}")
    return PlaygroundView(kept, misses, nearest, threshold)


# -- the timeline ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineBar:
    """One stacked segment of the timeline chart (SVG coordinates)."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    colour: str
    count: int
    label: str


@dataclass(frozen=True)
class Timeline:
    """A stacked bar chart of memories over time by kind.

    Attributes:
        bars: the segments.
        width: the chart's width.
        height: the chart's height (plot area; labels go below).
        start: the first bucket's start, formatted.
        end: the last bucket's end, formatted.
        bucket: the bucket length, formatted.
        peak: the tallest bucket's count.
        kinds: the kinds shown, with their colours (the legend).
        total: how many memories were charted.
    """

    bars: list[TimelineBar]
    width: float
    height: float
    start: str
    end: str
    bucket: str
    peak: int
    kinds: list[tuple[str, str]]
    total: int


_BUCKETS = (60.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, 365 * 86400.0)


def timeline(
    points: Iterable[tuple[float, str]], *, buckets: int = 30, width: float = 720.0, height: float = 160.0
) -> Timeline:
    """Bucket ``(created_at, kind)`` points into at most ``buckets`` columns of a round length.

    Args:
        points: one ``(created_at, kind)`` per memory.
        buckets: the most columns.
        width: the chart width.
        height: the plot height.
    """
    items = sorted(points)
    kinds = sorted({kind for _, kind in items})
    legend = [(kind, KIND_COLOURS.get(kind, _OTHER_COLOUR)) for kind in kinds]
    if not items:
        return Timeline([], width, height, "-", "-", "-", 0, legend, 0)
    first, last = items[0][0], items[-1][0]
    span = max(last - first, 1.0)
    size = next((b for b in _BUCKETS if span / b <= buckets), span / buckets)
    origin = math.floor(first / size) * size
    count = int((last - origin) // size) + 1
    columns: list[dict[str, int]] = [{} for _ in range(count)]
    for ts, kind in items:
        column = columns[min(int((ts - origin) // size), count - 1)]
        column[kind] = column.get(kind, 0) + 1
    peak = max(sum(c.values()) for c in columns)
    slot = width / count
    bar_width = max(slot * 0.8, 1.0)
    bars = []
    for i, column in enumerate(columns):
        y = height
        for kind in kinds:
            n = column.get(kind, 0)
            if not n:
                continue
            h = height * n / peak
            y -= h
            label = f"{format_time(origin + i * size)}: {n} {kind}"
            bars.append(
                TimelineBar(
                    round(i * slot, 2),
                    round(y, 2),
                    round(bar_width, 2),
                    round(h, 2),
                    kind,
                    KIND_COLOURS.get(kind, _OTHER_COLOUR),
                    n,
                    label,
                )
            )
    return Timeline(
        bars,
        width,
        height,
        format_time(origin),
        format_time(origin + count * size),
        format_duration(size),
        peak,
        legend,
        len(items),
    )


# -- the audit trail ------------------------------------------------------------------------------------
def audit_rows(entries: Sequence[AuditEntry], shown_ids: int = 5) -> list[dict[str, Any]]:
    """Display rows of audit entries (newest first, as the core returns them)."""
    rows = []
    for entry in entries:
        scope = entry.scope
        where = Scope(
            tuple(scope.get("namespace") or ()),
            scope.get("thread_id"),
            scope.get("agent_id"),
            scope.get("user_id"),
        )
        more = entry.count - min(shown_ids, len(entry.ids))
        rows.append(
            {
                "position": entry.position,
                "at": format_time(entry.at),
                "action": entry.action,
                "count": entry.count,
                "ids": list(entry.ids[:shown_ids]),
                "more": more if more > 0 else 0,
                "scope": where.label if scope else "-",
                "actor": entry.actor or "-",
                "detail": json.dumps(dict(entry.detail), ensure_ascii=False, sort_keys=True)
                if entry.detail
                else "",
            }
        )
    return rows
