"""Write ``langgraph_travel.yaml``: the OpenAI replies ``langgraph_travel.ipynb`` replays, in order.

Each graph turn makes two calls: the ``assistant`` node's answer, then the ``remember`` node's structured
extraction (``with_structured_output(Extracted)``: a JSON object in the message content). The last call
is the consolidation summary. Run ``python notebooks/cassettes/make_langgraph_travel.py`` to rewrite it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wire import reply, write

HERE = Path(__file__).resolve().parent


def extracted(*memories: tuple[str, str, str | None]) -> str:
    """The extraction's JSON: ``(text, topic, subject)`` triples."""
    return json.dumps({"memories": [{"text": t, "topic": topic, "subject": s} for t, topic, s in memories]})


REPLIES: list[dict[str, Any]] = [
    # Session 1, turn 1: Ana's standing preferences.
    reply("Noted, Ana: vegetarian meals, aisle seats, hotels under 150 EUR a night, Miles & More and "
          "Marriott Bonvoy, and no more hostels after Barcelona. Where are you off to next?", n=0),
    reply(extracted(
        ("Ana is vegetarian: pick restaurants with vegetarian dishes.", "profile", None),
        ("Ana wants an aisle seat on flights.", "profile", None),
        ("Ana's hotel budget is under 150 euros a night.", "profile", None),
        ("Ana collects Miles & More miles on her flights.", "profile", None),
        ("Ana is a Marriott Bonvoy member: prefer Marriott hotels.", "profile", None),
        ("Ana disliked the loud, dirty hostel on her Barcelona trip last year: never book her a hostel.",
         "profile", None),
        ("Ana lives in Berlin.", "profile", "home_city"),
    ), n=1),
    # Session 1, turn 2: the trips she is planning.
    reply("Lisbon, 12-16 March: fado in Alfama, a day in Sintra and a vegetarian tasting menu. "
          "I'll keep Rome in May in mind too.", n=2),
    reply(extracted(
        ("Ana's Lisbon trip runs from 12 to 16 March.", "lisbon", None),
        ("In Lisbon Ana wants a fado evening in Alfama.", "lisbon", None),
        ("Ana plans a day trip from Lisbon to Sintra.", "lisbon", None),
        ("Ana wants a vegetarian tasting menu in Lisbon.", "lisbon", None),
        ("Ana might spend a long weekend in Rome in May.", "rome", None),
    ), n=3),
    # Session 2 (three days later, a new thread), turn 1: the assistant uses what it recalled.
    reply("For Lisbon: I'll book a flight that earns Miles & More miles, with an aisle seat; "
          "a hotel under 150 euros a night (no hostel, promised); and for dinner the vegetarian tasting "
          "menu at Arkhe, the night before your fado evening in Alfama.", n=4),
    reply(extracted(), n=5),
    # Session 2, turn 2: Ana has moved.
    reply("Congratulations on the move! I'll plan your flights from Munich from now on.", n=6),
    reply(extracted(("Ana lives in Munich.", "profile", "home_city")), n=7),
    # The consolidation of the Lisbon notes (summarizer_from(llm)).
    reply("Lisbon trip, 12-16 March: a fado evening in Alfama, a day trip to Sintra and a vegetarian "
          "tasting menu.", n=8),
]


if __name__ == "__main__":
    write(HERE / "langgraph_travel.yaml", REPLIES)
    print(f"wrote {len(REPLIES)} replies to {HERE / 'langgraph_travel.yaml'}")
