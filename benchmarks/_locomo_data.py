"""LoCoMo loading, evidence normalisation and evidence-recall metrics.

Data: Maharana et al., "Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL 2024
(snap-research/locomo). Each dialogue turn becomes one memory ``"Speaker: text"`` stamped with its session's
date; each question of categories 1-4 is a recall whose relevant items are its ``evidence`` dialogue ids;
category 5 (adversarial, unanswerable) is measured separately.

Nothing here reads the LLM-written summaries / observations / event lists of the dataset.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

RECALL_CATEGORIES = (1, 2, 3, 4)
ADVERSARIAL_CATEGORY = 5
CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
KS = (1, 5, 10, 20)

_SESSION_KEY = re.compile(r"session_(\d+)")
_DATE_FORMAT = "%I:%M %p on %d %B, %Y"
# "D8:6", "D:11:26" (stray colon), "D30:05" (zero padding); anything else is unparseable.
_ID = re.compile(r"D:?0*(\d+):0*(\d+)")


@dataclass(frozen=True)
class Memory:
    """One dialogue turn, stored as one memory."""

    dia_id: str
    session: int
    speaker: str
    text: str
    created_at: datetime
    date_text: str
    blip_caption: str | None = None

    @property
    def content(self) -> str:
        """The memory text the benchmark stores: ``"Speaker: text"``."""
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class Question:
    conversation: str
    index: int
    question: str
    category: int
    evidence: tuple[str, ...]
    answer: str | None = None


@dataclass
class EvidenceStats:
    """What evidence normalisation changed or dropped (summed over questions)."""

    raw_strings: int = 0
    multi_id_strings: int = 0  # "D8:6; D9:17" -> two ids
    ids_from_splits: int = 0
    repaired_stray_colon: int = 0  # "D:11:26" -> "D11:26"
    repaired_zero_padding: int = 0  # "D30:05" -> "D30:5"
    dropped_unparseable: int = 0  # e.g. "D"
    dropped_nonexistent: int = 0  # well-formed but no such turn
    dropped_duplicates: int = 0
    questions_without_evidence: int = 0  # category 1-4 questions left with no valid id (not scored)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, example: str) -> None:
        self.examples.setdefault(kind, [])
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(example)

    def merge(self, other: EvidenceStats) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        for kind, items in other.examples.items():
            for item in items:
                self.note(kind, item)

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


@dataclass
class Conversation:
    conv_id: str
    speakers: tuple[str, str]
    memories: list[Memory]
    questions: list[Question]
    evidence_stats: EvidenceStats
    last_session_at: datetime

    @property
    def recall_questions(self) -> list[Question]:
        return [q for q in self.questions if q.category in RECALL_CATEGORIES and q.evidence]

    @property
    def adversarial_questions(self) -> list[Question]:
        return [q for q in self.questions if q.category == ADVERSARIAL_CATEGORY]


def parse_session_datetime(text: str) -> datetime:
    """Parse LoCoMo's ``"1:56 pm on 8 May, 2023"`` (treated as UTC)."""
    return datetime.strptime(" ".join(text.split()), _DATE_FORMAT).replace(tzinfo=timezone.utc)


def normalise_evidence(
    raw: Iterable[str], valid_ids: set[str] | frozenset[str], stats: EvidenceStats
) -> tuple[str, ...]:
    """Return the question's evidence as canonical, existing, de-duplicated ``D<s>:<t>`` ids.

    Strings holding several ids are split on ``;``, ``,`` or whitespace; ``D:11:26`` and zero-padded parts
    are repaired; anything unparseable or naming a turn that does not exist is dropped. ``stats`` counts each.
    """
    out: list[str] = []
    for item in raw:
        stats.raw_strings += 1
        parts = [p for p in re.split(r"[;,\s]+", str(item).strip()) if p]
        if len(parts) > 1:
            stats.multi_id_strings += 1
            stats.ids_from_splits += len(parts)
            stats.note("multi_id", str(item))
        for part in parts:
            m = _ID.fullmatch(part)
            if m is None:
                stats.dropped_unparseable += 1
                stats.note("unparseable", part)
                continue
            canon = f"D{int(m.group(1))}:{int(m.group(2))}"
            if part.startswith("D:"):
                stats.repaired_stray_colon += 1
                stats.note("stray_colon", f"{part} -> {canon}")
            elif canon != part:
                stats.repaired_zero_padding += 1
                stats.note("zero_padding", f"{part} -> {canon}")
            if canon not in valid_ids:
                stats.dropped_nonexistent += 1
                stats.note("nonexistent", canon)
                continue
            if canon in out:
                stats.dropped_duplicates += 1
                continue
            out.append(canon)
    return tuple(out)


def load_conversation(path: str | Path) -> Conversation:
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    conv = data.get("conversation", data)  # the combined locomo10.json nests the turns
    conv_id = str(data.get("sample_id", path.stem))
    sessions = sorted(
        (int(m.group(1)), key) for key in conv if (m := _SESSION_KEY.fullmatch(key)) and conv[key]
    )
    memories: list[Memory] = []
    last = None
    for number, key in sessions:
        date_text = " ".join(str(conv[f"{key}_date_time"]).split())
        when = parse_session_datetime(date_text)
        last = when if last is None or when > last else last
        for turn in conv[key]:
            memories.append(
                Memory(
                    dia_id=str(turn["dia_id"]),
                    session=number,
                    speaker=str(turn["speaker"]),
                    text=str(turn["text"]),
                    created_at=when,
                    date_text=date_text,
                    blip_caption=turn.get("blip_caption"),
                )
            )
    if last is None:
        raise ValueError(f"{path}: no sessions with turns")
    valid = frozenset(m.dia_id for m in memories)
    stats = EvidenceStats()
    questions: list[Question] = []
    for i, qa in enumerate(data.get("qa", [])):
        category = int(qa["category"])
        evidence = normalise_evidence(qa.get("evidence", []), valid, stats)
        if category in RECALL_CATEGORIES and not evidence:
            stats.questions_without_evidence += 1
            stats.note("no_evidence", f"{conv_id}#{i}")
        answer = qa.get("answer", qa.get("adversarial_answer"))
        questions.append(
            Question(
                conv_id, i, str(qa["question"]), category, evidence, None if answer is None else str(answer)
            )
        )
    return Conversation(
        conv_id=conv_id,
        speakers=(str(conv.get("speaker_a", "")), str(conv.get("speaker_b", ""))),
        memories=memories,
        questions=questions,
        evidence_stats=stats,
        last_session_at=last,
    )


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Each PATH is a conversation file or a folder of ``*.json`` conversation files."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.json")))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(p)
    return out


def load_conversations(paths: Sequence[str | Path]) -> list[Conversation]:
    return [load_conversation(p) for p in expand_paths(paths)]


# --------------------------------------------------------------------------------------------- metrics


def recall_at_k(ranked: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """Share of the evidence ids found among the first ``k`` ranked ids."""
    if not evidence:
        raise ValueError("no evidence")
    top = set(ranked[:k])
    return sum(1 for e in evidence if e in top) / len(evidence)


def reciprocal_rank(ranked: Sequence[str], evidence: Sequence[str], depth: int = max(KS)) -> float:
    """1/rank of the first evidence id within the first ``depth`` results, else 0 (MRR@20)."""
    wanted = set(evidence)
    for rank, dia_id in enumerate(ranked[:depth], start=1):
        if dia_id in wanted:
            return 1.0 / rank
    return 0.0


def score_question(
    ranked: Sequence[str], evidence: Sequence[str], ks: Sequence[int] = KS
) -> dict[str, float]:
    row = {f"r@{k}": recall_at_k(ranked, evidence, k) for k in ks}
    row["mrr"] = reciprocal_rank(ranked, evidence, max(ks))
    return row


def mean_rows(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


def aggregate(scored: Sequence[tuple[Question, dict[str, float]]]) -> dict[str, object]:
    """Overall (question-weighted mean), per category and per conversation."""
    per_cat: dict[str, dict[str, float]] = {}
    per_conv: dict[str, dict[str, float]] = {}
    for cat in RECALL_CATEGORIES:
        rows = [r for q, r in scored if q.category == cat]
        if rows:
            per_cat[str(cat)] = {**mean_rows(rows), "n": len(rows)}
    for conv in sorted({q.conversation for q, _ in scored}):
        rows = [r for q, r in scored if q.conversation == conv]
        per_conv[conv] = {**mean_rows(rows), "n": len(rows)}
    return {
        "overall": mean_rows([r for _, r in scored]),
        "per_category": per_cat,
        "per_conversation": per_conv,
        "questions": len(scored),
        "category_counts": dict(Counter(str(q.category) for q, _ in scored)),
    }
