"""Write ``langchain_travel.yaml``: the OpenAI replies the LangChain notebook replays, in order.

Run ``python notebooks/cassettes/make_langchain_travel.py``. The replies are written by hand (the tool
calls a gpt-4o-mini agent makes, then its answers), not recorded; ``langchain_travel.ipynb`` says how
to run against OpenAI instead, or to re-record.
"""

from __future__ import annotations

from pathlib import Path

from wire import reply, write

PREFERENCES = [
    "Ana is vegetarian (no meat, no fish).",
    "Ana always wants an aisle seat on flights.",
    "Ana's hotel budget is about 150 EUR a night.",
    "Ana collects TAP Miles&Go (flights) and Marriott Bonvoy (hotels) points.",
    "Ana disliked the 2024 Kyoto group tour (too rushed, 6 a.m. starts): no packed group tours.",
]

REPLIES = [
    # Session 1, call 1: the model stores each preference with the manage_memory tool.
    reply(tool_calls=[{"name": "manage_memory", "arguments": {"content": p}} for p in PREFERENCES], n=1),
    # Session 1, call 2: after the five tool results, the answer.
    reply(
        "Noted, Ana! I'll remember that you're vegetarian, prefer an aisle seat, keep hotels around "
        "150 EUR a night, collect TAP Miles&Go and Marriott Bonvoy points, and would rather skip packed "
        "group tours after Kyoto.",
        n=2,
    ),
    # Session 2, call 1: a new conversation; the model looks up what it knows about Ana.
    reply(
        tool_calls=[{"name": "search_memory",
                     "arguments": {"query": "Ana's travel preferences: seat, food, hotel budget, loyalty"}}],
        n=3,
    ),
    # Session 2, call 2: the answer, built on the memories the search returned.
    reply(
        "Here's a plan for 4 days in Rome, Ana:\n"
        "- Flight: TAP from Lisbon to Rome Fiumicino, aisle seat, credited to your TAP Miles&Go.\n"
        "- Hotel: the Four Points by Sheraton (Marriott Bonvoy) near Trastevere, about 140 EUR a night.\n"
        "- Food: vegetarian trattorias in Trastevere and Monti.\n"
        "- Sightseeing at your own pace: timed Vatican tickets instead of a group tour.",
        n=4,
    ),
    # The retriever chain: one question answered from the retrieved documents.
    reply("Book Ana an aisle seat: she always wants one on flights.", n=5),
    # Consolidation: the summary of the Rome trip notes (summarizer_from(model)).
    reply(
        "Rome trip, 12-15 Feb 2026: TAP flight Lisbon-Fiumicino on 12 Feb (aisle seat 14C); Four Points "
        "Trastevere at 140 EUR a night on the Bonvoy member rate; dinner at a vegetarian trattoria in "
        "Monti on 13 Feb; self-guided Vatican Museums visit on 14 Feb at 9:00.",
        n=6,
    ),
]

if __name__ == "__main__":
    write(Path(__file__).with_name("langchain_travel.yaml"), REPLIES)
