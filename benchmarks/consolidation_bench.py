"""Consolidation harness: fact supersession and distillation vs betterdb-agent-memory 0.7.0, and LoCoMo
evidence recall after consolidation.

Part 1, **facts per 100 statements**: a synthetic travel corpus of 100 statements, 25 subjects (home_city,
employer, diet, seat, airline, budget, ...) each stated 4 times with a changing value, one day apart, in
date order (statement ``j`` is dated 2024-01-01 + ``j`` days; round ``r`` states value ``r`` of every
subject). The text of a statement is ``"[2024-01-27] home_city: I live in Porto."``. Rows, each on a fresh
scope, ``--repeats`` times (median wall time):

* agentmem ``remember(text, subject=..., created_at=...)`` x 100 (write-time supersession; the stand-in model
  is handed to nobody, and its call counter proves it), on Valkey and on the embedded backend (SQLite file
  in a temporary directory);
* agentmem plain ``remember(text, created_at=...)`` x 100, then one ``consolidate_facts(stand_in)``;
* betterdb ``remember(text)`` x 100 (it takes no ``created_at``), then ``consolidate(mode="facts",
  extract_facts=stand_in)``.

The stand-in model is one deterministic rule-based extractor for both stores: it parses
``"[date] subject: statement"`` and returns one fact per statement (agentmem: ``ExtractedFact(subject,
"subject: statement", sources=(n,))``, dated by the store from the cited memory; betterdb:
``Fact(subject, "subject: statement", date="YYYY-MM-DD")`` read from the text, which drives its
newest-date-wins). Calls are counted, not tokens. Wall time covers the 100 writes and the consolidation,
embedding and model included (the stand-in is ~free; index creation is excluded). Both stores embed with
the same 64-d hashing embedder (``agentmem_core.embeddings.HashingEmbedder(64)``; betterdb through an
async wrapper of it), so embedding cost does not dominate. Afterwards: current facts of the scope, fact
versions stored, versions of a subject still readable (agentmem ``history``; betterdb deletes a superseded
fact), and whether each subject's current fact is its newest statement (x / 25).

Part 2, **LoCoMo evidence recall@10 after consolidation** (Maharana et al., "Evaluating Very Long-Term
Conversational Memory of LLM Agents", ACL 2024): the real agentmem store as ``benchmarks/locomo.py --mode
agentmem`` runs it (``_locomo_agentmem.AgentmemRetriever``: one namespace per conversation, every turn one
memory keyed by its dialogue id, MiniLM embeddings from the cache, ``reinforce=False``), scored at four
stages on the same store: raw; after ``consolidate(extractive_stand_in, namespace=conv,
delete_sources=False)`` per conversation; after ``consolidate_facts(turn_fact_stand_in, namespace=conv)`` as
well; and with the summaries forgotten again (facts only). Credit: a turn counts as its dialogue id, a
distilled fact as the dialogue ids of its sources (``Memory.derived_from``), a summary as nothing.
Recall asks for k = 20; the first 10 hits are the recall@10 ranking. Diagnostics (not store behaviour):
the share of top-10 slots held by turns / facts / summaries and by "repeats" (hits whose credited ids a
higher hit already credited, e.g. a fact next to its own turn), and R@10 over the first 10 hits left after
dropping the repeats. ``--fact-importance`` passes ``consolidate_facts(fact_importance=...)``.

* extractive summarizer (``max_input_chars`` 12,000): per memory its first clause (``"Speaker: <text up
  to the first . , ; ! ?>."``; a summary being re-summarised is kept whole), joined and cut at 2,000
  characters on a word boundary;
* turn-fact extractor (``max_input_chars`` 12,000): one fact per turn with a first-person sentence (the
  first sentence with ``I`` or ``my``): subject = ``<speaker>_<first word after I/my of 4+ letters that is
  no stop word and does not end in -ly>``, statement = ``"<Speaker>: <that sentence>"``; turns without
  one give no fact. Two turns with one subject make a history (the later is current).

Usage::

    python benchmarks/consolidation_bench.py [--valkey-url URL] [--repeats 5]
        [--data ../shared/data/locomo] [--conversations N] [--fact-importance X] [--json OUT.json]

Without ``--data`` part 2 is skipped. Without ``--valkey-url`` a throwaway Valkey + search module is
started. See benchmarks/README.md, section "Session 8: consolidation".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("BETTERDB_TELEMETRY", "false")  # the peer's documented analytics opt-out

import numpy as np
import valkey
import valkey.asyncio as avalkey

from agentmem_core import MemoryStore
from agentmem_core.consolidation import ExtractedFact, KnownFact, Numbered
from agentmem_core.embeddings import HashingEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))

DIMS = 64
DAY = 86_400.0
BASE = 1_704_067_200.0  # 2024-01-01T00:00:00Z
MAX_INPUT_CHARS = 12_000  # the providers' default (consolidation.DEFAULT_MAX_INPUT_CHARS)
SUMMARY_CHARS = 2_000
K = 10

# ------------------------------------------------------------------------------ part 1: travel corpus

SUBJECTS: tuple[tuple[str, str, tuple[str, str, str, str]], ...] = (
    ("home_city", "I live in {}.", ("Lisbon", "Porto", "Berlin", "Madrid")),
    ("employer", "I work at {}.", ("Acme", "Globex", "Initech", "Umbrella")),
    ("diet", "My diet is {}.", ("vegetarian", "vegan", "pescatarian", "omnivore")),
    ("seat", "I prefer {} seats.", ("window", "aisle", "exit-row", "bulkhead")),
    ("airline", "My preferred airline is {}.", ("TAP", "Lufthansa", "KLM", "Iberia")),
    ("budget", "My trip budget is {} euros.", ("1500", "2000", "2500", "3000")),
    ("hotel_chain", "I book {} hotels.", ("Hilton", "Marriott", "Hyatt", "Accor")),
    ("loyalty_tier", "My loyalty tier is {}.", ("silver", "gold", "platinum", "diamond")),
    ("home_airport", "I fly out of {}.", ("LIS", "OPO", "BER", "MAD")),
    ("next_destination", "My next trip is to {}.", ("Tokyo", "Lima", "Oslo", "Cairo")),
    ("travel_partner", "I travel with {}.", ("my sister", "a colleague", "my partner", "nobody")),
    ("trip_length", "My trips last {} days.", ("3", "5", "7", "10")),
    ("travel_month", "I like to travel in {}.", ("March", "May", "September", "November")),
    ("room_type", "I want a {} room.", ("single", "double", "twin", "suite")),
    ("luggage", "I pack {}.", ("a backpack", "a carry-on", "one checked bag", "two checked bags")),
    ("car_rental", "I rent cars from {}.", ("Hertz", "Avis", "Sixt", "Europcar")),
    ("insurance", "My travel insurance is with {}.", ("Allianz", "AXA", "Generali", "Zurich")),
    ("currency", "I pay in {}.", ("euros", "dollars", "pounds", "francs")),
    ("language", "I want answers in {}.", ("English", "Portuguese", "German", "Spanish")),
    ("payment_card", "I pay with my {} card.", ("Visa", "Mastercard", "Amex", "Revolut")),
    ("phone_plan", "My roaming plan is {}.", ("basic", "EU", "global", "unlimited")),
    ("allergy", "I am allergic to {}.", ("peanuts", "shellfish", "gluten", "nothing")),
    ("meal_preference", "On flights I order the {} meal.", ("standard", "kosher", "halal", "low-salt")),
    ("transfer", "From the airport I take {}.", ("a taxi", "the train", "the bus", "a rideshare")),
    ("timezone", "My home time zone is {}.", ("WET", "CET", "EET", "GMT")),
)


@dataclass(frozen=True)
class Statement:
    subject: str
    statement: str  # "I live in Porto."
    created_at: float
    date: str  # "2024-01-27"

    @property
    def text(self) -> str:
        return f"[{self.date}] {self.subject}: {self.statement}"


def travel_corpus() -> list[Statement]:
    """100 statements in date order: round r states value r of every subject."""
    out: list[Statement] = []
    for r in range(4):
        for subject, template, values in SUBJECTS:
            when = BASE + len(out) * DAY
            date = time.strftime("%Y-%m-%d", time.gmtime(when))
            out.append(Statement(subject, template.format(values[r]), when, date))
    return out


def newest(corpus: Sequence[Statement]) -> dict[str, str]:
    """The expected current fact text of every subject (``"subject: statement"``)."""
    latest: dict[str, Statement] = {}
    for s in corpus:
        if s.subject not in latest or s.created_at >= latest[s.subject].created_at:
            latest[s.subject] = s
    return {k: f"{k}: {v.statement}" for k, v in latest.items()}


_LINE = re.compile(r"^\[(?P<date>\d{4}-\d{2}-\d{2})\] (?P<subject>[a-z_]+): (?P<statement>.+)$", re.S)


class TravelModel:
    """The stand-in model of part 1 (deterministic rules, counts its calls) for both stores."""

    max_input_chars = MAX_INPUT_CHARS

    def __init__(self) -> None:
        self.calls = 0

    @staticmethod
    def parse(text: str) -> tuple[str, str, str] | None:
        """``(date, subject, "subject: statement")`` of a ``"[date] subject: statement"`` text."""
        m = _LINE.match(text.strip())
        if m is None:
            return None
        return m["date"], m["subject"], f"{m['subject']}: {m['statement'].strip()}"

    # agentmem FactExtractor protocol
    def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        self.calls += 1
        out: list[ExtractedFact] = []
        for m in memories:
            parsed = self.parse(m.content)
            if parsed is not None:
                out.append(ExtractedFact(parsed[1], parsed[2], (m.n,)))
        return out

    async def aextract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        return self.extract(memories, known)

    # betterdb extract_facts(items) -> list[Fact]
    async def betterdb_extract(self, items: list[Any]) -> list[Any]:
        from betterdb_agent_memory import Fact

        self.calls += 1
        out = []
        for item in items:
            parsed = self.parse(item.content)
            if parsed is not None:
                out.append(Fact(subject=parsed[1], statement=parsed[2], date=parsed[0]))
        return out


@dataclass
class FactRow:
    system: str
    backend: str
    path: str
    calls: list[int] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    consolidate_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    current: list[int] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    versions: list[float] = field(default_factory=list)  # readable versions per subject (mean)
    correct: list[int] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def agentmem_facts(store: MemoryStore, row: FactRow, corpus: Sequence[Statement], write_time: bool) -> None:
    model = TravelModel()
    ns = ("travel", uuid.uuid4().hex[:10])
    t0 = time.perf_counter()
    for s in corpus:
        if write_time:
            store.remember(s.text, subject=s.subject, created_at=s.created_at, namespace=ns)
        else:
            store.remember(s.text, created_at=s.created_at, namespace=ns)
    t1 = time.perf_counter()
    if not write_time:
        result = store.consolidate_facts(model, namespace=ns)
        if result.model_calls != model.calls:
            raise AssertionError(f"model_calls {result.model_calls} != counted {model.calls}")
    t2 = time.perf_counter()
    expected = newest(corpus)
    current = list(store.list(namespace=ns, fact=True, current=True, limit=1000).memories)
    by_subject: dict[str, list[str]] = {}
    for m in current:
        by_subject.setdefault(m.subject or "", []).append(m.content)
    correct = 0
    for subject, text in expected.items():
        held = by_subject.get(subject, [])
        # a write-time fact is the statement's text "[date] subject: statement", a distilled one the model's
        correct += len(held) == 1 and (held[0] == text or held[0].endswith("] " + text))
    versions = [len(store.history(subject, namespace=ns)) for subject in expected]
    row.calls.append(model.calls)
    row.write_ms.append((t1 - t0) * 1000)
    row.consolidate_ms.append((t2 - t1) * 1000)
    row.total_ms.append((t2 - t0) * 1000)
    row.current.append(len(current))
    row.stored.append(store.count(namespace=ns, fact=True))
    row.versions.append(sum(versions) / len(versions))
    row.correct.append(correct)
    store.forget_by_scope(namespace=ns)


async def betterdb_facts(url: str, row: FactRow, corpus: Sequence[Statement], repeats: int) -> None:
    from betterdb_agent_memory import MemoryListOptions
    from betterdb_agent_memory import MemoryStore as PeerStore

    embedder = HashingEmbedder(DIMS)

    async def embed(text: str) -> list[float]:
        return [float(x) for x in np.asarray(embedder.embed([text]))[0]]

    client = avalkey.Valkey.from_url(url)
    store = PeerStore(client=client, name="cons_" + uuid.uuid4().hex[:8], embed_fn=embed, analytics=False)
    try:
        await store.ensure_index()
        expected = newest(corpus)
        for _ in range(repeats):
            model = TravelModel()
            ns = "travel_" + uuid.uuid4().hex[:10]
            t0 = time.perf_counter()
            for s in corpus:
                await store.remember(s.text, namespace=ns)
            t1 = time.perf_counter()
            await store.consolidate(mode="facts", extract_facts=model.betterdb_extract, namespace=ns)
            t2 = time.perf_counter()
            listing = await store.list(MemoryListOptions(namespace=ns, limit=1000))
            facts = [i for i in listing.items if i.source == "fact"]
            by_subject: dict[str, list[str]] = {}
            for item in facts:  # fact content is "[date] subject: statement"
                parsed = TravelModel.parse(item.content)
                by_subject.setdefault(parsed[1] if parsed else "?", []).append(parsed[2] if parsed else "")
            correct = sum(by_subject.get(s, []) == [text] for s, text in expected.items())
            row.calls.append(model.calls)
            row.write_ms.append((t1 - t0) * 1000)
            row.consolidate_ms.append((t2 - t1) * 1000)
            row.total_ms.append((t2 - t0) * 1000)
            row.current.append(len(facts))
            row.stored.append(len(facts))
            row.versions.append(sum(len(v) for v in by_subject.values()) / len(expected))
            row.correct.append(correct)
            await store.forget_by_scope(namespace=ns)
    finally:
        await store.close()
        await client.aclose()


def run_facts(url: str, repeats: int, log: bool) -> list[FactRow]:
    corpus = travel_corpus()
    assert len(corpus) == 100 and len({s.subject for s in corpus}) == 25
    rows: list[FactRow] = []
    with tempfile.TemporaryDirectory(prefix="agentmem-cons-") as tmp:
        backends = (("Valkey", url), ("embedded", f"sqlite:///{tmp}/consolidation.db"))
        for write_time, path in ((True, "remember(subject=...) x100"),
                                 (False, "remember x100 + consolidate_facts")):  # fmt: skip
            for backend, store_url in backends:
                row = FactRow("agentmem", backend, path)
                store = MemoryStore.from_url(
                    store_url, name="cons_" + uuid.uuid4().hex[:8], embedder=HashingEmbedder(DIMS)
                )
                try:
                    store.setup()
                    agentmem_facts(store, FactRow("", "", ""), corpus[:5], write_time)  # warm-up, not counted
                    for _ in range(repeats):
                        agentmem_facts(store, row, corpus, write_time)
                finally:
                    store.close()
                rows.append(row)
                if log:
                    print(f"  [{time.strftime('%H:%M:%S')}] {row.system} {backend}: {path}", file=sys.stderr)
    row = FactRow("betterdb 0.7.0", "Valkey", 'remember x100 + consolidate(mode="facts")')
    try:
        asyncio.run(betterdb_facts(url, row, corpus, repeats))
    except Exception as exc:  # report exactly why the peer could not run
        row.note = f"{type(exc).__name__}: {exc}"
    rows.append(row)
    return rows


def render_facts(rows: Sequence[FactRow]) -> str:
    lines = [
        "| system | backend | path | model calls | write ms | consolidate ms | total ms | current facts "
        "| fact versions stored | versions per subject readable | current = newest |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        if not r.total_ms:
            lines.append(f"| {r.system} | {r.backend} | {r.path} | not run: {r.note} |||||||")
            continue
        lo, hi = min(r.current), max(r.current)
        cells = [
            r.system, r.backend, r.path, f"{max(r.calls)}", f"{_median(r.write_ms):.1f}",
            f"{_median(r.consolidate_ms):.1f}", f"{_median(r.total_ms):.1f}",
            f"{lo}" if lo == hi else f"{lo}-{hi}", f"{_median(r.stored):.0f}", f"{_median(r.versions):.0f}",
            f"{min(r.correct)}/25",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- part 2: LoCoMo


def first_clause(content: str) -> str:
    """``"Speaker: <text up to the first . , ; ! ?>."`` (the whole content if that leaves nothing)."""
    speaker, sep, text = content.partition(": ")
    if not sep:
        speaker, text = "", content
    clause = re.split(r"[.,;!?]", text, maxsplit=1)[0].strip()
    if not clause:
        return content.strip()
    return f"{speaker}: {clause}." if speaker else f"{clause}."


class ExtractiveSummarizer:
    """Stand-in summarizer: the first clause of each memory, cut at ``SUMMARY_CHARS`` (deterministic)."""

    max_input_chars = MAX_INPUT_CHARS

    def __init__(self) -> None:
        self.calls = 0

    def summarize(self, memories: Sequence[Numbered]) -> str:
        self.calls += 1
        text = " ".join(m.content if m.kind == "summary" else first_clause(m.content) for m in memories)
        if len(text) > SUMMARY_CHARS:
            text = text[:SUMMARY_CHARS].rsplit(" ", 1)[0]
        return text

    async def asummarize(self, memories: Sequence[Numbered]) -> str:
        return self.summarize(memories)


_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_FIRST_PERSON = re.compile(r"\bI\b|\b[Mm]y\b")
_WORD = re.compile(r"[A-Za-z]+")


def turn_fact(content: str, stopwords: frozenset[str]) -> tuple[str, str] | None:
    """``(subject, statement)`` of a turn's first first-person sentence, or ``None``."""
    speaker, sep, text = content.partition(": ")
    if not sep:
        return None
    for sentence in _SENTENCES.split(text):
        marker = _FIRST_PERSON.search(sentence)
        if marker is None:
            continue
        for word in _WORD.findall(sentence[marker.end() :]):
            w = word.lower()
            if len(w) >= 4 and w not in stopwords and not w.endswith("ly"):
                return f"{speaker}_{w}", f"{speaker}: {sentence.strip()}"
        return None
    return None


class TurnFactExtractor:
    """Stand-in fact extractor: one fact per turn that states something about its speaker."""

    max_input_chars = MAX_INPUT_CHARS

    def __init__(self, stopwords: frozenset[str]) -> None:
        self.calls = 0
        self.stopwords = stopwords

    def extract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        self.calls += 1
        out: list[ExtractedFact] = []
        for m in memories:
            fact = turn_fact(m.content, self.stopwords)
            if fact is not None:
                out.append(ExtractedFact(fact[0], fact[1], (m.n,)))
        return out

    async def aextract(self, memories: Sequence[Numbered], known: Sequence[KnownFact]) -> list[ExtractedFact]:
        return self.extract(memories, known)


def _metrics(credited: Sequence[Sequence[str]], evidence: Sequence[str]) -> dict[str, float]:
    wanted = set(evidence)
    row: dict[str, float] = {}
    for k in (1, 5, 10):
        top = {d for ids in credited[:k] for d in ids}
        row[f"r@{k}"] = len(wanted & top) / len(wanted)
    row["mrr"] = next((1.0 / r for r, ids in enumerate(credited[:K], 1) if wanted & set(ids)), 0.0)
    return row


def score_stage(retriever: Any, questions: Sequence[Any], dia_of: dict[str, str]) -> dict[str, Any]:
    """Evidence recall of every question (credit: a turn its id, a fact its sources, a summary nothing)."""
    import _locomo_data as data

    store: MemoryStore = retriever.store
    slots: Counter[str] = Counter()
    scored: list[tuple[Any, dict[str, float]]] = []
    per_question: list[float] = []
    t0 = time.perf_counter()
    for q in questions:
        retriever.now = retriever.nows[q.conversation]
        # k = 20: the first 10 are the recall@10 ranking; the rest feed the "repeats collapsed" diagnostic
        hits = store.recall(q.question, k=2 * K, namespace=("locomo", q.conversation), reinforce=False)
        credited: list[tuple[str, ...]] = []
        for rank, hit in enumerate(hits):
            m = hit.memory
            if m.kind.value == "summary":
                kind, ids = "summary", ()
            elif m.subject is not None:
                kind, ids = "fact", tuple(dia_of.get(i, "") for i in m.derived_from)
            else:
                kind, ids = "turn", (m.key or "",)
            slots[kind] += rank < K
            credited.append(ids)
        seen: set[str] = set()
        collapsed: list[tuple[str, ...]] = []
        for rank, ids in enumerate(credited):  # a fact next to its own source turn adds nothing
            repeat = bool(ids) and set(ids) <= seen
            slots["repeat"] += repeat and rank < K
            if not repeat:
                collapsed.append(ids)
            seen.update(ids)
        row = _metrics(credited[:K], q.evidence)
        row["r@10 collapsed"] = _metrics(collapsed[:K], q.evidence)["r@10"]
        scored.append((q, row))
        per_question.append(row["r@10"])
    result = data.aggregate(scored)
    result["slots"] = dict(slots)
    result["per_question_r10"] = per_question
    result["recall_s"] = round(time.perf_counter() - t0, 1)
    return result


def run_locomo(
    paths: Sequence[str],
    n_conv: int | None,
    url: str,
    cache_dir: Path,
    log: bool,
    fact_importance: float | None = None,
) -> dict[str, Any]:
    import _locomo_data as data
    import _retrieval_lab as lab
    import locomo
    from _locomo_agentmem import AgentmemRetriever

    conversations = data.load_conversations(paths)[:n_conv]
    retriever = AgentmemRetriever(lab.EmbeddingCache(cache_dir), url)
    store: MemoryStore = retriever.store
    out: dict[str, Any] = {
        "conversations": [c.conv_id for c in conversations], "stages": {}, "runs": {},
        "fact_importance": fact_importance,
    }  # fmt: skip

    def note(msg: str) -> None:
        if log:
            print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    try:
        t0 = time.perf_counter()
        records = [locomo.to_records(c) for c in conversations]
        for rec in records:
            retriever.add(rec)
        out["add_s"] = round(time.perf_counter() - t0, 1)
        dia_of: dict[str, str] = {}
        for rec in records:
            cursor: str | None = None
            while True:
                page = store.list(namespace=("locomo", rec.namespace), limit=500, cursor=cursor)
                dia_of.update({m.id: m.key or "" for m in page.memories})
                cursor = page.next_cursor
                if cursor is None:
                    break
        questions = [
            q for c in conversations for q in c.questions
            if q.category in data.RECALL_CATEGORIES and q.evidence
        ]  # fmt: skip
        out["memories"] = len(dia_of)
        out["questions"] = len(questions)
        note(f"LoCoMo: {len(records)} conversations, {len(dia_of)} memories, {len(questions)} recalls")
        out["stages"]["raw"] = score_stage(retriever, questions, dia_of)
        note("raw scored")

        summarizer = ExtractiveSummarizer()
        summaries: list[str] = []
        t0 = time.perf_counter()
        for rec in records:
            retriever.now = rec.now
            res = store.consolidate(summarizer, namespace=("locomo", rec.namespace), delete_sources=False)
            summaries += res.summaries
        out["runs"]["consolidate"] = {
            "summaries": len(summaries), "model_calls": summarizer.calls,
            "seconds": round(time.perf_counter() - t0, 1),
        }  # fmt: skip
        out["stages"]["+ summary"] = score_stage(retriever, questions, dia_of)
        note("summary scored")

        extractor = TurnFactExtractor(lab.ENGLISH_STOPWORDS)
        written = 0
        t0 = time.perf_counter()
        for rec in records:
            retriever.now = rec.now
            options = {} if fact_importance is None else {"fact_importance": fact_importance}
            facts = store.consolidate_facts(extractor, namespace=("locomo", rec.namespace), **options)
            written += len(facts.written)
        current = sum(
            store.count(namespace=("locomo", rec.namespace), fact=True, current=True) for rec in records
        )
        out["runs"]["consolidate_facts"] = {
            "facts_written": written, "current_facts": current, "model_calls": extractor.calls,
            "seconds": round(time.perf_counter() - t0, 1),
        }  # fmt: skip
        out["stages"]["+ summary + facts"] = score_stage(retriever, questions, dia_of)
        note("summary + facts scored")

        store.forget_many(summaries)
        out["stages"]["facts only"] = score_stage(retriever, questions, dia_of)
        note("facts only scored")
    finally:
        retriever.close()
    return out


def render_locomo(res: dict[str, Any]) -> str:
    import _locomo_data as data

    stages = res["stages"]
    raw = stages["raw"]
    raw_q = raw["per_question_r10"]
    head = (
        "| stage | R@1 | R@5 | R@10 | Δ R@10 | MRR@10 | R@10, repeats collapsed | "
        + " | ".join(data.CATEGORY_NAMES[c] for c in data.RECALL_CATEGORIES)
        + " | top-10 slots: turn / fact / summary (repeats) | questions down / up |"
    )
    lines = [head, "|---|--:|--:|--:|--:|--:|--:|" + "--:|" * len(data.RECALL_CATEGORIES) + "---|---|"]
    for name, st in stages.items():
        o = st["overall"]
        cats = [
            f"{st['per_category'][str(c)]['r@10'] * 100:.1f}" if str(c) in st["per_category"] else "-"
            for c in data.RECALL_CATEGORIES
        ]
        delta = (o["r@10"] - raw["overall"]["r@10"]) * 100
        total = sum(st["slots"].get(s, 0) for s in ("turn", "fact", "summary")) or 1
        slots = " / ".join(f"{st['slots'].get(s, 0) / total * 100:.1f}%" for s in ("turn", "fact", "summary"))
        slots += f" ({st['slots'].get('repeat', 0) / total * 100:.1f}%)"
        down = sum(a < b for a, b in zip(st["per_question_r10"], raw_q))
        up = sum(a > b for a, b in zip(st["per_question_r10"], raw_q))
        lines.append(
            f"| {name} | {o['r@1'] * 100:.1f} | {o['r@5'] * 100:.1f} | {o['r@10'] * 100:.1f} | "
            f"{delta:+.1f} | {o['mrr']:.3f} | {o['r@10 collapsed'] * 100:.1f} | "
            + " | ".join(cats)
            + f" | {slots} | {down} / {up} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- main


def server_description(url: str) -> str:
    client = valkey.Valkey.from_url(url)
    try:
        info = client.info("server")
        modules = client.execute_command("MODULE", "LIST")
    finally:
        client.close()
    names = []
    for mod in modules or []:
        entry = dict(zip(mod[::2], mod[1::2])) if isinstance(mod, (list, tuple)) else mod
        name = entry.get(b"name") or entry.get("name")
        ver = entry.get(b"ver") or entry.get("ver")
        names.append(f"{name.decode() if isinstance(name, bytes) else name} {ver}")
    version = info.get("valkey_version") or info.get("redis_version")
    return f"Valkey {version} + {', '.join(names) or 'no modules'}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--valkey-url", help="use this server (default: a throwaway valkey-server + search)")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each part-1 row (median reported)")
    ap.add_argument("--data", nargs="+", help="LoCoMo conversation files or folders (part 2; omit to skip)")
    ap.add_argument("--conversations", type=int, default=None, help="use the first N conversations")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: locomo.py's)")
    ap.add_argument("--skip-facts", action="store_true", help="skip part 1")
    ap.add_argument(
        "--fact-importance", type=float, default=None, help="part 2: consolidate_facts(fact_importance=...)"
    )
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)

    server = None
    url = args.valkey_url
    if url is None:
        from agentmem_core.testing.server import ValkeyServer

        server = ValkeyServer(search=True).start()
        url = server.url
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"# agentmem consolidation bench: {server_description(url)}; {platform.machine()} "
            f"{os.cpu_count()} cpu (load avg {load} at start); python {platform.python_version()}"
        )
        out: dict[str, Any] = {}
        t0 = time.perf_counter()
        if not args.skip_facts:
            rows = run_facts(url, args.repeats, not args.quiet)
            print(f"\n### Facts per 100 statements (25 subjects x 4; median of {args.repeats} runs)\n")
            print(render_facts(rows))
            out["facts"] = [r.as_dict() for r in rows]
        if args.data:
            import locomo

            cache = Path(args.cache_dir) if args.cache_dir else locomo.DEFAULT_CACHE
            res = run_locomo(args.data, args.conversations, url, cache, not args.quiet, args.fact_importance)
            print(
                f"\n### LoCoMo evidence recall@{K} after consolidation ({len(res['conversations'])} "
                f"conversations: {', '.join(res['conversations'])}; {res['memories']} memories, "
                f"{res['questions']} recalls; fact_importance "
                f"{res['fact_importance'] if res['fact_importance'] is not None else '0.8 (default)'})\n"
            )
            print(render_locomo(res))
            runs = res["runs"]
            print(
                f"\nconsolidate: {runs['consolidate']['summaries']} summaries, "
                f"{runs['consolidate']['model_calls']} summarizer calls, {runs['consolidate']['seconds']} s; "
                f"consolidate_facts: {runs['consolidate_facts']['facts_written']} facts written "
                f"({runs['consolidate_facts']['current_facts']} current), "
                f"{runs['consolidate_facts']['model_calls']} extractor calls, "
                f"{runs['consolidate_facts']['seconds']} s; load {res['add_s']} s"
            )
            out["locomo"] = res
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n(total {time.perf_counter() - t0:.0f} s; load avg 1/5/15 min at end {load})")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
        return 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
