"""PatternRedactor: what the default patterns take, and what ordinary text they leave alone."""

from __future__ import annotations

import pytest

from agentmem_core.errors import RedactionError
from agentmem_core.redaction import PatternRedactor, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ana.silva+trips@mail.example.co.uk now", "mail [EMAIL] now"),
        ("call +351 912 345 678 today", "call [PHONE] today"),
        ("call (415) 555-0132", "call [PHONE]"),
        ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("pay to DE89 3704 0044 0532 0130 00 please", "pay to [IBAN] please"),
    ],
)
def test_default_patterns_take_common_pii(text: str, expected: str) -> None:
    assert PatternRedactor()(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "fly on 2026-12-01 at 10:45",
        "flight TP 1234 to Porto, seat 12A",
        "budget 1500 euros for 3 nights",
        "the year 1999 and room 404",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert PatternRedactor()(text) == text


def test_extra_patterns_run_after_the_defaults() -> None:
    redactor = PatternRedactor(extra=[("[NAME]", r"\bAna Silva\b")])
    assert redactor("Ana Silva <ana@example.com>") == "[NAME] <[EMAIL]>"


def test_a_callback_failure_is_typed_and_keeps_its_cause() -> None:
    def broken(text: str) -> str:
        raise KeyError("vault")

    with pytest.raises(RedactionError, match="the content: KeyError") as caught:
        redact_text(broken, "x", "content")
    assert isinstance(caught.value.__cause__, KeyError)
