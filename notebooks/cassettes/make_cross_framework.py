"""Write ``cross_framework.yaml``: the OpenAI replies ``cross_framework.ipynb`` replays, in order.

Deterministic responses written by hand (not recordings). Run ``python make_cross_framework.py`` from this
directory to rewrite the cassette. The calls, in the order the notebook makes them:

1. Session 1, the crew's ``memory.remember(...)`` without categories or importance: CrewAI's save
   analysis (structured output ``MemoryAnalysis``) picks the scope, categories and importance.
2. Session 2, the LangGraph agent's answer (``ChatOpenAI``; the memories the crew wrote are in its
   system prompt).
"""

from __future__ import annotations

import json
from pathlib import Path

from wire import reply, write

HERE = Path(__file__).resolve().parent

ANSWER = (
    "Rome, 14-17 March: I'd book an aisle seat with a vegetarian meal, put your Miles & More number on "
    "the ticket, and look for a quiet hotel in the centre under 150 EUR a night, so nothing like the "
    "Lisbon hotel that was too far from everything."
)

REPLIES = [
    # 1. analyze_for_save: "Ana collects Miles & More miles ..."
    {
        "suggested_scope": "/loyalty",
        "categories": ["loyalty"],
        "importance": 0.7,
        "extracted_metadata": {
            "entities": ["Ana", "Miles & More", "Lufthansa"],
            "dates": [],
            "topics": ["loyalty programme", "upgrades"],
        },
    },
    # 2. the LangGraph agent's answer
    ANSWER,
]


def main() -> None:
    """Write the cassette next to this script."""
    replies = [
        reply(content=body if isinstance(body, str) else json.dumps(body), n=i)
        for i, body in enumerate(REPLIES)
    ]
    write(HERE / "cross_framework.yaml", replies)


if __name__ == "__main__":
    main()
