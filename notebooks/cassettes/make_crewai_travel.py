"""Write ``crewai_travel.yaml``: the OpenAI replies ``crewai_travel.ipynb`` replays, in order.

Deterministic responses written by hand (not recordings); matched on method and path, replayed in order.
Run ``python notebooks/cassettes/make_crewai_travel.py`` to rewrite the cassette. The calls, in the order the
notebook makes them (CrewAI's memory settings there, ``consolidation_threshold=1.0`` and
``exploration_budget=0``, keep it to these):

1. Session 1, ``memory.remember(...)`` without scope, categories or importance: CrewAI's save analysis
   (structured output ``MemoryAnalysis``).
2. Session 2, ``crew.kickoff()``: the travel agent's answer (the recalled memories are in its prompt).
3. After the task, CrewAI extracts memories from the result (``ExtractedMemories``) ...
4. ... and analyses the one extracted memory before saving it (``MemoryAnalysis``).
5. ``store.consolidate(summarizer_from(llm), ...)``: the summary of the Rome trip notes.
"""

from __future__ import annotations

import json
from pathlib import Path

from wire import reply, write

HERE = Path(__file__).resolve().parent

ANSWER = (
    "Copenhagen, 12-14 March, for Ana:\n"
    "- Flight: SAS from Lisbon, 10:40 departure (no early-morning flight), aisle seat, booked on her "
    "Miles & More number so the Star Alliance Gold miles count.\n"
    "- Hotel: a quiet courtyard room in Vesterbro at 140 EUR per night, inside her 150 EUR budget, "
    "away from the station.\n"
    "- Food: vegetarian and peanut-free: Souls and Bistro Lupa both fit."
)

REPLIES = [
    # 1. analyze_for_save: "Ana is vegetarian and allergic to peanuts."
    {
        "suggested_scope": "/preferences",
        "categories": ["diet"],
        "importance": 0.9,
        "extracted_metadata": {"entities": ["Ana"], "dates": [], "topics": ["diet", "allergy"]},
    },
    # 2. the agent's final answer
    ANSWER,
    # 3. extract_memories_from_content
    {
        "memories": [
            "Ana's March trip to Copenhagen: SAS 10:40 flight, aisle seat, quiet Vesterbro hotel at "
            "140 EUR per night."
        ]
    },
    # 4. analyze_for_save of the extracted memory
    {
        "suggested_scope": "/trips/copenhagen-2026",
        "categories": ["trip-plan"],
        "importance": 0.7,
        "extracted_metadata": {
            "entities": ["Ana", "Copenhagen", "SAS"],
            "dates": ["March 2026"],
            "topics": ["flight", "hotel"],
        },
    },
    # 5. the summary of the Rome trip notes
    "Rome, May 2025: Ana slept badly in a noisy hotel near Termini and disliked the 6am flight home; "
    "the Trastevere food tour was the highlight. Book quiet hotels and no early flights.",
]


def main() -> None:
    """Write the cassette next to this script."""
    replies = [
        reply(content=body if isinstance(body, str) else json.dumps(body), n=i)
        for i, body in enumerate(REPLIES)
    ]
    write(HERE / "crewai_travel.yaml", replies)


if __name__ == "__main__":
    main()
