"""Porter (1980) stemming for the lexical channel of hybrid recall (pure, no dependency).

The analyser in :mod:`agentmem_core._lexical` stems memory text at write time and query text at recall
time with this one implementation, so both sides always agree, whatever the search engine does with text.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PorterStemmer", "stem"]

_CACHE_LIMIT = 100_000


class PorterStemmer:
    """The original Porter (1980) suffix stripper, written out here to avoid a dependency.

    RediSearch uses Snowball English ("Porter2"), which differs on a few suffixes (e.g. ``-ly``,
    ``-ational`` exceptions); for ranking purposes the two agree on the vast majority of words.
    """

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    @staticmethod
    def _cons(w: str, i: int) -> bool:
        c = w[i]
        if c in "aeiou":
            return False
        if c == "y":
            return i == 0 or not PorterStemmer._cons(w, i - 1)
        return True

    def _m(self, s: str) -> int:
        n, i, length = 0, 0, len(s)
        while i < length and self._cons(s, i):
            i += 1
        while i < length:
            while i < length and not self._cons(s, i):
                i += 1
            if i >= length:
                break
            n += 1
            while i < length and self._cons(s, i):
                i += 1
        return n

    def _vowel(self, s: str) -> bool:
        return any(not self._cons(s, i) for i in range(len(s)))

    def _double(self, s: str) -> bool:
        return len(s) >= 2 and s[-1] == s[-2] and self._cons(s, len(s) - 1)

    def _cvc(self, s: str) -> bool:
        if len(s) < 3:
            return False
        return (
            self._cons(s, len(s) - 3)
            and not self._cons(s, len(s) - 2)
            and self._cons(s, len(s) - 1)
            and s[-1] not in "wxy"
        )

    _STEP2 = (
        ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
        ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
        ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
        ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
        ("logi", "log"),
    )  # fmt: skip
    _STEP3 = (
        ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
        ("ness", ""),
    )  # fmt: skip
    _STEP4 = (
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
        "ism", "ate", "iti", "ous", "ive", "ize",
    )  # fmt: skip

    def _replace_longest(self, w: str, rules: Sequence[tuple[str, str]], min_m: int) -> str:
        best = max((r for r in rules if w.endswith(r[0])), key=lambda r: len(r[0]), default=None)
        if best is None:
            return w
        stem = w[: -len(best[0])]
        return stem + best[1] if self._m(stem) > min_m else w

    def stem(self, word: str) -> str:
        """The stem of a lowercase word (words that are not purely alphabetic are kept as they are)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        w = word
        if len(w) > 2 and w.isalpha():
            w = self._stem(w)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # a bounded cache: vocabularies are Zipfian, it refills with common words
        self._cache[word] = w
        return w

    def _stem(self, w: str) -> str:
        # step 1a
        if w.endswith("sses"):
            w = w[:-2]
        elif w.endswith("ies"):
            w = w[:-2]
        elif w.endswith("ss"):
            pass
        elif w.endswith("s"):
            w = w[:-1]
        # step 1b
        if w.endswith("eed"):
            if self._m(w[:-3]) > 0:
                w = w[:-1]
        else:
            for suf in ("ed", "ing"):
                if w.endswith(suf) and self._vowel(w[: -len(suf)]):
                    w = w[: -len(suf)]
                    if w.endswith(("at", "bl", "iz")):
                        w += "e"
                    elif self._double(w) and w[-1] not in "lsz":
                        w = w[:-1]
                    elif self._m(w) == 1 and self._cvc(w):
                        w += "e"
                    break
        # step 1c
        if w.endswith("y") and self._vowel(w[:-1]):
            w = w[:-1] + "i"
        w = self._replace_longest(w, self._STEP2, 0)
        w = self._replace_longest(w, self._STEP3, 0)
        # step 4
        suffix = max((s for s in self._STEP4 if w.endswith(s)), key=len, default="")
        if suffix:
            base = w[: -len(suffix)]
            if self._m(base) > 1 and (suffix != "ion" or base.endswith(("s", "t"))):
                w = base
        # step 5
        if w.endswith("e"):
            base = w[:-1]
            m = self._m(base)
            if m > 1 or (m == 1 and not self._cvc(base)):
                w = base
        if w.endswith("ll") and self._m(w) > 1:
            w = w[:-1]
        return w


_PORTER = PorterStemmer()


def stem(word: str) -> str:
    """Stem one lowercase word with a shared, bounded cache."""
    return _PORTER.stem(word)
