"""Reading what a model replied: a summary text, or the facts JSON of :data:`~.prompts.FACTS_SCHEMA`.

Every check fails with :class:`~agentmem_core.errors.ModelError` naming what was wrong; nothing here
retries (a malformed reply is not a transient failure).
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentmem_core.consolidation._types import ExtractedFact
from agentmem_core.errors import ModelError

__all__ = ["content_text", "parse_facts", "summary_text"]

# A fenced block anywhere in the reply: ```json ... ``` (the language tag is optional).
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_EXCERPT = 200


def _excerpt(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")


def content_text(content: object, who: str) -> str:
    """The text of a chat message's content: a string, or a list of content blocks (LangChain style).

    Blocks may be strings or ``{"type": "text", "text": ...}`` dicts; other blocks (images, tool calls,
    reasoning) are skipped.

    Raises:
        ModelError: the content holds no text at all.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif (
                isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
            ):
                parts.append(block["text"])
        return "".join(parts)
    raise ModelError(f"{who} replied with {type(content).__name__}, not text")


def summary_text(text: str, who: str) -> str:
    """The summary in a reply, stripped.

    Raises:
        ModelError: the reply is empty.
    """
    summary = text.strip()
    if not summary:
        raise ModelError(f"{who} replied with an empty summary")
    return summary


def _decode(text: str) -> Any:
    """The JSON value of a reply: all of it, else inside a fenced block, else from the first ``{``.

    Text after the value ("Hope this helps.") is ignored.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    fenced = _FENCE.search(text)
    payload = (fenced.group(1) if fenced is not None else text).strip()
    start = payload.find("{")
    if start > 0 and not payload.startswith("["):  # prose before the object
        payload = payload[start:]
    value, _ = json.JSONDecoder().raw_decode(payload)
    return value


def parse_facts(text: str, who: str = "the model") -> list[ExtractedFact]:
    """The facts in an extractor's reply: ``{"facts": [{"subject", "statement", "sources", "retract"}]}``.

    The JSON object may stand alone, sit in a fenced block (```json ... ```) or be surrounded by prose.
    ``sources`` and ``retract`` may be missing (no sources, not a retraction); anything else out of
    shape is an error. Subjects and statements are stripped; source numbers are passed through as
    given, in range or not (the store reports numbers that match no memory).

    Args:
        text: the reply.
        who: how to name the model in error messages.

    Raises:
        ModelError: the reply is not JSON, not an object with a ``facts`` list, or a fact has a missing
            or mistyped field, an empty subject, an empty statement (outside a retraction) or a source
            number that is not an integer.
    """
    try:
        data = _decode(text)
    except ValueError as exc:
        raise ModelError(f"{who} did not reply with JSON ({exc}): {_excerpt(text)}") from exc
    if not isinstance(data, dict) or "facts" not in data:
        raise ModelError(
            f'{who} replied with JSON that is not an object with a "facts" list: {_excerpt(text)}'
        )
    items = data["facts"]
    if not isinstance(items, list):
        raise ModelError(f'{who} replied with "facts" as {type(items).__name__}, not a list')
    return [_fact(item, i, who) for i, item in enumerate(items)]


def _fact(item: object, i: int, who: str) -> ExtractedFact:
    where = f"{who} replied with a malformed fact #{i + 1}"
    if not isinstance(item, dict):
        raise ModelError(f"{where}: {type(item).__name__}, not an object")
    subject, statement = item.get("subject"), item.get("statement")
    sources, retract = item.get("sources", []), item.get("retract", False)
    if not isinstance(subject, str):
        raise ModelError(f'{where}: "subject" is {_kind(subject)}, not a string')
    if not isinstance(statement, str):
        raise ModelError(f'{where}: "statement" is {_kind(statement)}, not a string')
    if not isinstance(retract, bool):
        raise ModelError(f'{where}: "retract" is {_kind(retract)}, not a boolean')
    if not isinstance(sources, list):
        raise ModelError(f'{where}: "sources" is {_kind(sources)}, not a list of memory numbers')
    for n in sources:
        # bool is an int subclass, and 2.0 is not a memory number: only real ints pass.
        if isinstance(n, bool) or not isinstance(n, int):
            raise ModelError(f'{where}: source {n!r} in "sources" is not an integer memory number')
    subject, statement = subject.strip(), statement.strip()
    if not subject:
        raise ModelError(f'{where}: empty "subject"')
    if not statement and not retract:
        raise ModelError(f'{where}: empty "statement" for subject {subject!r}')
    return ExtractedFact(subject=subject, statement=statement, sources=tuple(sources), retract=retract)


def _kind(value: object) -> str:
    return "missing or null" if value is None else type(value).__name__
