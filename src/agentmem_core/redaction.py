"""PII redaction before anything is embedded or stored (``MemoryStore(..., redact=...)``).

A store given ``redact`` passes every text a caller hands it through that callback first: a memory's
content, each of its ``texts`` (the strings embedded instead of the content), every string value of its
metadata (nested ones too; keys are kept), the content and metadata of ``update``, and the text of a
``recall`` query (so a query and the memories it should find are redacted alike, and the embedder never
sees the original). The embedder, the search index, the audit trail and the backend only ever see what
the callback returned.

What it does not touch: scope ids, tags, keys, subjects and sources (identifiers the caller chooses; keep
PII out of them), vectors given precomputed, and records brought in by ``import_records`` (restored as
they were exported, with the vectors of the original text).

:class:`PatternRedactor` is a ready-made callback for common patterns (e-mail addresses, phone numbers,
payment card numbers, IBANs); any ``Callable[[str], str]`` works, for example a call into Microsoft
Presidio or a tokenising vault that returns a reversible token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agentmem_core.errors import AgentMemError, RedactionError

__all__ = [
    "DEFAULT_PATTERNS",
    "PatternRedactor",
    "Redactor",
    "redact_input",
    "redact_metadata",
    "redact_text",
]

Redactor = Callable[[str], str]
"""A redaction callback: text in, the text to embed and store out."""

DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("[EMAIL]", r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    ("[IBAN]", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    ("[CARD]", r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])"),
    # 9 digits or more, in phone-like groups: dates (8 digits), times, prices and flight numbers stay
    ("[PHONE]", r"(?<![\w+])(?=(?:[ .()+-]{0,3}\d){9})(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}"
     r"(?:[ .-]\d{2,4}){1,4}(?![\w-])"),
)  # fmt: skip
"""``(replacement, regex)`` pairs :class:`PatternRedactor` applies by default, in this order (IBANs
before card numbers, cards before phone numbers, each of which would otherwise take the next one's
digits)."""


@dataclass(frozen=True)
class PatternRedactor:
    """Replace every match of each pattern with its placeholder (``[EMAIL]``, ``[PHONE]``, ...).

    Args:
        patterns: ``(replacement, regex)`` pairs, applied in order (default :data:`DEFAULT_PATTERNS`).
        extra: more pairs applied after ``patterns`` (names of people, account ids, ...).

    An invalid regex raises ``re.error`` when the redactor is built, not when it runs.
    """

    patterns: Sequence[tuple[str, str]] = DEFAULT_PATTERNS
    extra: Sequence[tuple[str, str]] = ()
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((label, re.compile(rx)) for label, rx in (*self.patterns, *self.extra))
        object.__setattr__(self, "_compiled", compiled)

    def __call__(self, text: str) -> str:
        """The text with every match replaced by its placeholder."""
        for label, pattern in self._compiled:
            text = pattern.sub(label, text)
        return text


def redact_text(redact: Redactor, text: str, what: str) -> str:
    """``redact(text)``, checked: a failure or a non-text result is a :class:`RedactionError`.

    Args:
        redact: the callback.
        text: the text a caller gave.
        what: which text it is, for the error message (``"content"``, ``"metadata['note']"``, ...).
    """
    try:
        out = redact(text)
    except AgentMemError:
        raise
    except Exception as exc:  # the caller's callback: any failure of it is reported, typed, with its cause
        raise RedactionError(f"redact() failed on the {what}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, str):
        raise RedactionError(f"redact() must return a str for the {what}, got {type(out).__name__}")
    return out


def _metadata(redact: Redactor, value: Any, path: str) -> Any:
    if isinstance(value, str):
        return redact_text(redact, value, f"metadata{path}")
    if isinstance(value, Mapping):
        return {k: _metadata(redact, v, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_metadata(redact, v, f"{path}[{i}]") for i, v in enumerate(value))
    return value  # numbers, booleans, None: validated later as they are


def redact_metadata(redact: Redactor, metadata: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Every string value of ``metadata`` redacted (nested mappings and lists too); keys kept."""
    if metadata is None or not isinstance(metadata, Mapping):
        return metadata  # not a mapping: left for validation to reject with its own message
    redacted: Mapping[str, Any] = _metadata(redact, metadata, "")
    return redacted


def redact_input(redact: Redactor, item: Any) -> Any:
    """A :class:`~agentmem_core._records.MemoryInput` with its content, texts and metadata redacted.

    Values of the wrong type are passed through untouched, so validation rejects them with its usual
    message (a redactor is never handed something that is not text).
    """
    content = item.content
    if isinstance(content, str):
        content = redact_text(redact, content, "content")
    texts = item.texts
    if isinstance(texts, (list, tuple)):
        texts = [
            redact_text(redact, text, f"texts[{i}]") if isinstance(text, str) else text
            for i, text in enumerate(texts)
        ]
    return replace(item, content=content, texts=texts, metadata=redact_metadata(redact, item.metadata))
