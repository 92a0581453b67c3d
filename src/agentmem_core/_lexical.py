"""The lexical channel of hybrid recall, and its fusion with the vector channel (pure).

Design chosen by measurement on LoCoMo (benchmarks/README.md, "Retrieval quality"): BM25 (``BM25STD``:
``idf = ln(1 + (N - n + .5)/(n + .5))``, k1 = 1.2, b = 0.75) over the memory text, English function words
dropped and Porter-stemmed on both sides; each channel's top candidates are min-max scaled to ``[0, 1]``
(0 when a candidate is absent from a channel) and fused as ``0.4 · dense + 0.6 · lexical``.

Text is analysed here, on the client, at write time (the distinct terms go into a TAG field, the term
sequence into a stored field) and at recall time (the query terms). The engine only matches and counts
terms, so the channel needs nothing beyond the portable TAG subset, scores exactly the same on every
engine, and its document frequencies are taken under the recall's own filter: another tenant's memories
never change a scope's ranking (RediSearch's own BM25 also scores the scope's TAG filters, which makes
the ranking depend on how many scopes share the index).

Terms are drawn from ``[0-9a-z_]`` only, so no user text can change the query's structure.

A memory's context (``remember(context=...)``: the surrounding turns, the speaker, the date) adds its
terms at :data:`CONTEXT_WEIGHT` of a content term's frequency, to the term frequency and to the length, as
a second text field of that weight would (LoCoMo: previous turn as context at 0.5 -> R@10 67.3 to 72.4).
It is not embedded: embedding the previous turn with the turn cost the vector channel 4 points there.
When the memory's own content holds none of the query's terms, its context counts only
:data:`CONTEXT_ONLY_WEIGHT` in the frequency: context supports a match more than it makes one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from agentmem_core._stem import stem

__all__ = [
    "CONTEXT_ONLY_WEIGHT",
    "CONTEXT_WEIGHT",
    "ENGLISH_STOPWORDS",
    "analyze",
    "bm25_scores",
    "context_terms",
    "encode_lex",
    "fuse_scores",
    "lex_doc",
    "min_max",
    "query_terms",
]

_SPLIT = re.compile(r"[^0-9a-z_]+")
MAX_TERMS = 16
"""Most query terms used (each is one count in the recall's round trip, with its rows when it is rare)."""
MAX_TERM_CHARS = 40
"""Longer tokens (hashes, run-together URLs) are not indexed as terms; the vector channel still sees them."""
K1 = 1.2
B = 0.75
CONTEXT_WEIGHT = 0.5
"""A context term's share of a content term's frequency (chosen on LoCoMo: .25 / .5 / 1 -> 66.9 / 69.0 / 68.8
lexical-only R@10)."""
CONTEXT_ONLY_WEIGHT = 0.25
"""A context term's share when the memory's own content holds none of the query's terms: context makes a
match at half the weight it supports one with. LoCoMo (default store, ``benchmarks/locomo.py --mode
agentmem``), against 0.5 for both: open-domain R@10 36.6 -> 38.3, R@10 74.6 -> 74.7, R@20 80.4 -> 80.6,
no category lower; 0 (context never makes a match): 38.3 / 74.7 / 80.2; 0.125: 38.3 / 74.4, single-hop
-0.5; 0.375: 37.1 / 74.8."""
_CONTEXT_MARK = "|"  # separates content terms from context terms in the stored sequence: never in a term

# RediSearch's default index stop words, plus pronouns, auxiliaries and question words: words that match
# almost every memory and only add noise to a keyword query.
ENGLISH_STOPWORDS = frozenset(
    """
    a is the an and are as at be but by for if in into it no not of on or such that their then there these
    they this to was will with i me my myself we our ours ourselves you your yours yourself yourselves he
    him his himself she her hers herself its itself them theirs themselves what which who whom whose when
    where why how whats am were been being have has had having do does did doing done would should could
    can may might must shall from up down out off over under again further once here all any both each few
    more most other some own same so than too very s t d ll m o re ve y just also now only about above
    after before below between during through until while against because get got gets those im
    """.split()
)


def analyze(text: str) -> list[str]:
    """Text -> index terms: lowercase ``[0-9a-z_]`` tokens, Porter-stemmed.

    English stop words and tokens of underscores only are dropped.
    """
    return [
        stem(token)
        for token in _SPLIT.split(text.lower())
        # a token of underscores only carries no word, and RediSearch refuses a lone "_" in a TAG query
        if token.strip("_") and token not in ENGLISH_STOPWORDS and len(token) <= MAX_TERM_CHARS
    ]


def query_terms(text: str) -> list[str]:
    """The distinct analysed terms of a query (at most :data:`MAX_TERMS`, in order of appearance)."""
    return list(dict.fromkeys(analyze(text)))[:MAX_TERMS]


def encode_lex(terms: Sequence[str], context: Sequence[str] = ()) -> str:
    """The stored term sequence (``lex``): the content's terms, then a mark and the context's, if any."""
    if not context:
        return " ".join(terms)
    return " ".join([*terms, _CONTEXT_MARK, *context])


def context_terms(lex: str) -> list[str]:
    """The context terms of a stored sequence (kept when the content alone changes)."""
    _, mark, context = lex.partition(_CONTEXT_MARK)
    return context.split() if mark else []


def lex_doc(lex: str, terms: AbstractSet[str]) -> tuple[dict[str, float], float]:
    """A stored sequence -> the weighted frequency of each query term in it, and its BM25 length.

    A context term counts :data:`CONTEXT_WEIGHT` in both; in the frequency, only
    :data:`CONTEXT_ONLY_WEIGHT` when the memory's own content holds none of the query's terms. Only the
    query's ``terms`` are counted (the ones absent are left out): a recall reads about a hundred
    candidates' sequences.
    """
    own, mark, context = lex.partition(_CONTEXT_MARK)
    tokens = own.split()
    extra = context.split() if mark else []
    length = len(tokens) + CONTEXT_WEIGHT * len(extra)
    tf: dict[str, float] = {}
    for token in tokens:
        if token in terms:
            tf[token] = tf.get(token, 0.0) + 1.0
    weight = CONTEXT_WEIGHT if tf else CONTEXT_ONLY_WEIGHT  # context supports an own match more
    for token in extra:
        if token in terms:
            tf[token] = tf.get(token, 0.0) + weight
    return tf, length


def bm25_scores(
    terms: Sequence[str],
    docs: Mapping[str, tuple[Mapping[str, float], float]],
    df: Mapping[str, int],
    n_docs: int,
    avgdl: float,
) -> dict[str, float]:
    """BM25STD of each document (its query-term frequencies and length, :func:`lex_doc`) for ``terms``.

    Only scores > 0 are returned. ``df`` and ``n_docs`` are counted under the recall's filter; ``avgdl``
    is the mean document length.
    """
    n = max([n_docs, *df.values()])  # counted in separate queries: never let a write in between flip idf
    idf = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms if df.get(t, 0) > 0}
    if not idf or avgdl <= 0:
        return {}
    out: dict[str, float] = {}
    for doc_id, (weights, length) in docs.items():
        norm = K1 * (1.0 - B + B * length / avgdl)
        score = 0.0
        for term, weight in idf.items():
            tf = weights.get(term, 0.0)
            if tf:
                score += weight * tf * (K1 + 1.0) / (tf + norm)
        if score > 0:
            out[doc_id] = score
    return out


def min_max(scores: Mapping[str, float]) -> dict[str, float]:
    """Scale scores to ``[0, 1]`` over the candidates (all 1.0 when they are equal)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi <= lo:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - lo) / (hi - lo) for key, value in scores.items()}


def fuse_scores(
    dense: Mapping[str, float], lexical: Mapping[str, float], lexical_weight: float
) -> dict[str, tuple[float, float]]:
    """Fuse two channels' raw scores (higher is better) into ``id -> (relevance, lexical_scaled)``."""
    dense_scaled = min_max(dense)
    lexical_scaled = min_max(lexical)
    out: dict[str, tuple[float, float]] = {}
    for key in dense_scaled.keys() | lexical_scaled.keys():
        d = dense_scaled.get(key, 0.0)
        lex = lexical_scaled.get(key, 0.0)
        out[key] = ((1.0 - lexical_weight) * d + lexical_weight * lex, lex)
    return out
