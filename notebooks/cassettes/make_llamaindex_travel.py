"""Write llamaindex_travel.yaml: the chat completions llamaindex_travel.ipynb makes, in order.

Deterministic replies in the OpenAI wire format (not a recording). Run from anywhere:
``python notebooks/cassettes/make_llamaindex_travel.py``.
"""

from __future__ import annotations

from pathlib import Path

from wire import reply, write

REPLIES = [
    # Session 1 (ana-s1): SimpleChatEngine, four turns
    "Nice to meet you, Ana! Noted: vegetarian meals and an aisle seat on every flight.",
    "Got it: hotels up to 150 EUR a night, and I'll favour Star Alliance airlines so you keep earning "
    "Miles & More miles.",
    "Sorry Rome was so noisy! No hotels next to a train station from now on. Lisbon in March is a lovely "
    "choice.",
    "You're welcome, Ana. Talk soon!",
    # Session 2 (ana-s2), three days later: the memory block put Ana's preferences in the system prompt
    "Welcome back, Ana! For Lisbon: TAP Air Portugal from Berlin on 12 March (Star Alliance, so you earn "
    "Miles & More miles), with an aisle seat and a vegetarian meal pre-ordered. For the hotel, Casa do "
    "Alfama: a quiet guesthouse at 120 EUR a night, far from any train station. Shall I book them?",
    "Booked and noted: TAP on 12 March, three nights at Casa do Alfama, a day trip to Sintra on Saturday "
    "and a fado dinner in Alfama on Sunday.",
    "Congratulations on the move! From now on I'll look for flights from Munich; TAP flies Munich to "
    "Lisbon direct.",
    # A private session (ana-surprise), forgotten afterwards
    "What a lovely idea! A May weekend in Vienna: a concert at the Musikverein and a vegetarian dinner "
    "at Tian. Shall I look at dates?",
    "Of course. I'll delete this conversation.",
    # store.consolidate(summarizer_from(llm), ...): the summary of the Lisbon planning session
    "Ana's Lisbon weekend in March 2026: she asked for a flight from home and a hotel, then booked the "
    "TAP Air Portugal flight on 2026-03-12 and three nights at Casa do Alfama, with a day trip to Sintra "
    "on the Saturday and a fado dinner in Alfama on the Sunday.",
]

if __name__ == "__main__":
    replies = [reply(text, n=i) for i, text in enumerate(REPLIES)]
    write(Path(__file__).with_name("llamaindex_travel.yaml"), replies)
