"""Write vcrpy cassettes of OpenAI chat completions (the OpenAI wire format), for the notebooks' replay.

A cassette is a list of interactions answered in order (``travel_kit.openai_replay`` matches on method
and path). Each ``make_<notebook>.py`` lists the replies its notebook needs and calls :func:`write`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

URL = "https://api.openai.com/v1/chat/completions"


def reply(content: str | None = None, tool_calls: Sequence[dict[str, Any]] = (), model: str = "gpt-4o-mini",
          n: int = 0) -> dict[str, Any]:
    """One chat completion: a text answer, or tool calls (``{"name": ..., "arguments": {...}}``)."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{n}_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
            for i, c in enumerate(tool_calls)
        ]
    return {
        "id": f"chatcmpl-replay-{n}",
        "object": "chat.completion",
        "created": 1767225600 + n,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def write(path: Path, replies: Sequence[dict[str, Any]], url: str = URL) -> None:
    """Write ``replies`` as a cassette at ``path`` (one POST per reply, in order)."""
    interactions = []
    for body in replies:
        interactions.append({
            "request": {"body": None, "headers": {"Content-Type": ["application/json"]}, "method": "POST",
                        "uri": url},
            "response": {"status": {"code": 200, "message": "OK"},
                         "headers": {"Content-Type": ["application/json"]},
                         "body": {"string": json.dumps(body)}},
        })
    path.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False))
