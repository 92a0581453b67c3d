"""Unit tests for the consolidation prompts and the language-model providers, with no network.

The OpenAI providers replay hand-written cassettes (``tests/unit/cassettes/consolidation_openai_*.yaml``)
with vcrpy in ``record_mode="none"``, against a loopback base URL and a fake key: a request that matches
no recorded interaction fails inside the machine. Requests are matched on their JSON body by the
``chat_body`` matcher below, which writes a placeholder (``"<SUMMARY_SYSTEM v1>"``) for a system prompt or
``response_format`` equal to the constant of :mod:`agentmem_core.consolidation.prompts`; the constants'
texts are pinned to ``PROMPT_VERSION`` by :func:`test_prompt_text_is_pinned_to_its_version`.

To re-record a cassette against the real API (this costs tokens; never needed in CI):

1. ``export OPENAI_API_KEY=sk-...`` and, in :func:`cassette`, set ``record_mode="once"``;
2. in the test, build the provider with ``api_key=None, base_url=None`` (the real endpoint) instead of
   ``make_summarizer()`` / ``make_extractor()``'s loopback settings;
3. delete the cassette file and run the test: vcrpy writes the new interactions. The recorder is built
   with ``filter_headers=["authorization"]``, so the key is not written; check the file for any other
   secret (organisation or project headers) and scrub it before committing;
4. set ``record_mode`` back to ``"none"``. Error and retry cases (429, 503, 400, ...) cannot be recorded
   on demand: keep those interactions hand-written.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentmem_core.consolidation._types import ExtractedFact, FactExtractor, KnownFact, Numbered, Summarizer
from agentmem_core.consolidation.prompts import (
    EXTRACTION_SYSTEM,
    FACTS_RESPONSE_FORMAT,
    FACTS_SCHEMA,
    PROMPT_VERSION,
    SUMMARY_OF_SUMMARIES_SYSTEM,
    SUMMARY_SYSTEM,
    extraction_messages,
    iso_date,
    render_known_facts,
    render_memories,
    summary_messages,
)
from agentmem_core.consolidation.providers import (
    ChatModelFactExtractor,
    ChatModelSummarizer,
    OpenAIFactExtractor,
    OpenAISummarizer,
    extractor_from,
    parse_facts,
    summarizer_from,
)
from agentmem_core.errors import ConfigurationError, InvalidMemoryError, ModelError

CASSETTES = Path(__file__).parent / "cassettes"
BASE_URL = "http://127.0.0.1:9/v1"  # loopback discard port: nothing can leave the machine

A, B, C, OLD = 1709294400.0, 1718020800.0, 1719921600.0, 1699963200.0  # 2024-03-01/06-10/07-02, 2023-11-14
MEMORIES = (
    Numbered(1, "Alice started a new job at Acme as a data engineer.", A, "episodic"),
    Numbered(2, "Alice moved from Paris to Lyon and has been vegetarian since May.", B, "episodic"),
)
SUMMARIES = (
    Numbered(1, "Alice works at Acme as a data engineer since 2024-03-01.", A, "summary"),
    Numbered(2, "Alice lives in Lyon and is vegetarian.", B, "summary"),
)
FACT_MEMORIES = (*MEMORIES, Numbered(3, "Alice sold her car; she cycles to work now.", C, "episodic"))
KNOWN = (
    KnownFact(1, "employer", "Alice works at Initech.", OLD),
    KnownFact(2, "car", "Alice drives a Honda Civic.", OLD),
)
EXPECTED_FACTS = [
    ExtractedFact("employer", "Alice works at Acme as a data engineer.", (1,)),
    ExtractedFact("home_city", "Alice lives in Lyon.", (2,)),
    ExtractedFact("diet", "Alice has been vegetarian since 2024-05.", (2,)),
    ExtractedFact("car", "Alice no longer owns a car.", (3,), retract=True),
]
FACTS_JSON = json.dumps(
    {
        "facts": [
            {"subject": f.subject, "statement": f.statement, "sources": list(f.sources), "retract": f.retract}
            for f in EXPECTED_FACTS
        ]
    }
)


def one(text: str) -> list[Numbered]:
    return [Numbered(1, text, A, "episodic")]


# --- prompts ------------------------------------------------------------------------------------------


# The prompts' texts as of each PROMPT_VERSION. A failure here means a prompt or the schema changed: bump
# PROMPT_VERSION in prompts.py, add its fingerprint here, and update the placeholders in the cassettes.
PROMPT_FINGERPRINTS = {"1": "ccd5487742747b6dc85d7db663c84a3f187bfd8f18b6331ae8efe554f8950fef"}


def test_prompt_text_is_pinned_to_its_version() -> None:
    text = "\x00".join(
        [
            SUMMARY_SYSTEM,
            SUMMARY_OF_SUMMARIES_SYSTEM,
            EXTRACTION_SYSTEM,
            json.dumps(FACTS_RESPONSE_FORMAT, sort_keys=True),
        ]
    )
    assert hashlib.sha256(text.encode()).hexdigest() == PROMPT_FINGERPRINTS.get(PROMPT_VERSION)


def test_memories_render_numbered_with_iso_dates_oldest_first() -> None:
    shuffled = [
        Numbered(7, "second line one\nsecond line two", B, "episodic"),
        Numbered(3, "first", A, "semantic"),
    ]
    assert render_memories(shuffled) == (
        "[3] 2024-03-01 (semantic) first\n[7] 2024-06-10 (episodic) second line one\n    second line two"
    )


def test_dates_are_utc_not_local(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local date would be the next day
    if hasattr(time, "tzset"):
        time.tzset()
    try:
        assert iso_date(1709251199.0) == "2024-02-29"  # 23:59:59 UTC
    finally:
        monkeypatch.undo()
        if hasattr(time, "tzset"):
            time.tzset()
    assert iso_date(math.nan) == "unknown date"
    assert iso_date(1e20) == "unknown date"


def test_known_facts_render_as_f_numbers() -> None:
    assert render_known_facts(KNOWN) == (
        "F1 [employer] Alice works at Initech. (since 2023-11-14)\n"
        "F2 [car] Alice drives a Honda Civic. (since 2023-11-14)"
    )
    assert render_known_facts([]) == "(none)"


def test_summary_messages() -> None:
    messages = summary_messages(MEMORIES)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SUMMARY_SYSTEM
    assert messages[1]["content"].startswith("Memories, oldest first:\n[1] 2024-03-01 (episodic) Alice")
    assert "[2] 2024-06-10 (episodic)" in messages[1]["content"]


def test_summaries_of_summaries_get_their_own_prompt() -> None:
    assert summary_messages(SUMMARIES)[0]["content"] == SUMMARY_OF_SUMMARIES_SYSTEM
    mixed = [SUMMARIES[0], MEMORIES[1]]
    assert summary_messages(mixed)[0]["content"] == SUMMARY_SYSTEM


def test_extraction_messages_show_known_facts_then_memories() -> None:
    messages = extraction_messages(FACT_MEMORIES, KNOWN)
    assert messages[0] == {"role": "system", "content": EXTRACTION_SYSTEM}
    user = messages[1]["content"]
    assert (
        user.index("F1 [employer]")
        < user.index("F2 [car]")
        < user.index("[1] 2024-03-01")
        < user.index("[3]")
    )
    assert "Known facts:\n(none)" in extraction_messages(MEMORIES, [])[1]["content"]


def test_prompts_say_what_they_must() -> None:
    for prompt in (SUMMARY_SYSTEM, SUMMARY_OF_SUMMARIES_SYSTEM):
        assert "oldest first" in prompt and "override" in prompt and "Never invent" in prompt
    for word in ("snake_case", "sources", '"retract": true', "F1", "[1]", "Never invent", '{"facts": []}'):
        assert word in EXTRACTION_SYSTEM


def _strict(schema: dict[str, Any]) -> None:
    if schema.get("type") == "object":
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])
        for sub in schema["properties"].values():
            _strict(sub)
    if schema.get("type") == "array":
        _strict(schema["items"])


def test_facts_schema_follows_strict_structured_output_rules() -> None:
    _strict(FACTS_SCHEMA)
    item = FACTS_SCHEMA["properties"]["facts"]["items"]["properties"]
    assert item == {
        "subject": {"type": "string"},
        "statement": {"type": "string"},
        "sources": {"type": "array", "items": {"type": "integer"}},
        "retract": {"type": "boolean"},
    }
    assert FACTS_RESPONSE_FORMAT["json_schema"]["strict"] is True
    assert FACTS_RESPONSE_FORMAT["json_schema"]["schema"] is FACTS_SCHEMA


# --- parse_facts --------------------------------------------------------------------------------------


def test_parse_facts_reads_the_schema() -> None:
    assert parse_facts(FACTS_JSON) == EXPECTED_FACTS


@pytest.mark.parametrize(
    "text",
    [
        f"```json\n{FACTS_JSON}\n```",
        f"Here are the facts:\n```\n{FACTS_JSON}\n```\nDone.",
        f"Here are the facts: {FACTS_JSON} Hope this helps.",
        f"  {FACTS_JSON}\n",
        f"{FACTS_JSON}\nThese are all the facts.",
    ],
    ids=["json-fence", "bare-fence", "prose", "whitespace", "trailing-prose"],
)
def test_parse_facts_tolerates_fences_and_prose(text: str) -> None:
    assert parse_facts(text) == EXPECTED_FACTS


def test_parse_facts_reads_plain_json_first() -> None:
    text = '{"facts": [{"subject": "editor", "statement": "Writes ```code``` in vim.", "sources": [1]}]}'
    assert parse_facts(text) == [ExtractedFact("editor", "Writes ```code``` in vim.", (1,))]


def test_parse_facts_defaults_strips_and_passes_numbers_through() -> None:
    facts = parse_facts(
        '{"facts": [{"subject": " diet ", "statement": " Vegan. "},'
        ' {"subject": "car", "statement": "", "sources": [99, 0, -1], "retract": true}]}'
    )
    assert facts == [ExtractedFact("diet", "Vegan."), ExtractedFact("car", "", (99, 0, -1), retract=True)]
    assert parse_facts('{"facts": []}') == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Sure! Alice likes jazz.", "did not reply with JSON"),
        ('{"facts": [', "did not reply with JSON"),
        ("[]", "not an object"),
        ('{"fact": []}', "not an object"),
        ('{"facts": {}}', '"facts" as dict'),
        ('{"facts": ["Alice likes jazz"]}', "fact #1: str"),
        ('{"facts": [{"statement": "x"}]}', '"subject" is missing'),
        ('{"facts": [{"subject": 3, "statement": "x"}]}', '"subject" is int'),
        ('{"facts": [{"subject": "a", "statement": null}]}', '"statement" is missing or null'),
        ('{"facts": [{"subject": " ", "statement": "x"}]}', 'empty "subject"'),
        ('{"facts": [{"subject": " ", "statement": "", "retract": true}]}', 'empty "subject"'),
        ('{"facts": [{"subject": "a", "statement": " "}]}', 'empty "statement"'),
        ('{"facts": [{"subject": "a", "statement": "x", "retract": "yes"}]}', '"retract" is str'),
        ('{"facts": [{"subject": "a", "statement": "x", "sources": 1}]}', '"sources" is int'),
        ('{"facts": [{"subject": "a", "statement": "x", "sources": ["1"]}]}', "source '1'"),
        ('{"facts": [{"subject": "a", "statement": "x", "sources": [1.0]}]}', "source 1.0"),
        ('{"facts": [{"subject": "a", "statement": "x", "sources": [true]}]}', "source True"),
        ('{"facts": [{"subject": "a", "statement": "x"}, 5]}', "fact #2"),
    ],
)
def test_parse_facts_rejects_malformed_output(text: str, message: str) -> None:
    with pytest.raises(ModelError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_facts(text)


# --- OpenAI: cassettes ---------------------------------------------------------------------------------

PLACEHOLDERS = {
    SUMMARY_SYSTEM: f"<SUMMARY_SYSTEM v{PROMPT_VERSION}>",
    SUMMARY_OF_SUMMARIES_SYSTEM: f"<SUMMARY_OF_SUMMARIES_SYSTEM v{PROMPT_VERSION}>",
    EXTRACTION_SYSTEM: f"<EXTRACTION_SYSTEM v{PROMPT_VERSION}>",
}


def _normalised_body(body: bytes | str | None) -> Any:
    data = json.loads(body or "null")
    if isinstance(data, dict):
        for message in data.get("messages", []):
            if message.get("role") == "system" and message.get("content") in PLACEHOLDERS:
                message["content"] = PLACEHOLDERS[message["content"]]
        if data.get("response_format") == FACTS_RESPONSE_FORMAT:
            data["response_format"] = f"<FACTS_RESPONSE_FORMAT v{PROMPT_VERSION}>"
    return data


def chat_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal JSON bodies, the prompts.py constants written as their placeholders."""
    assert _normalised_body(r1.body) == _normalised_body(r2.body)


@contextlib.contextmanager
def replay(name: str) -> Iterator[Any]:
    """Replay ``cassettes/consolidation_openai_<name>.yaml``; any unmatched request fails locally."""
    vcr = pytest.importorskip("vcr")
    pytest.importorskip("openai")
    recorder = vcr.VCR(
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "chat_body"],
        filter_headers=["authorization"],
    )
    recorder.register_matcher("chat_body", chat_body)
    with recorder.use_cassette(str(CASSETTES / f"consolidation_openai_{name}.yaml")) as cass:
        yield cass


@pytest.fixture
def summary_cassette() -> Iterator[Any]:
    with replay("summary") as cass:
        yield cass


@pytest.fixture
def extract_cassette() -> Iterator[Any]:
    with replay("extract") as cass:
        yield cass


@pytest.fixture
def retry_cassette() -> Iterator[Any]:
    with replay("retry") as cass:
        yield cass


class Sleeps:
    """Records the waits instead of sleeping (sync and async)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_summarizer(sleeps: Sleeps | None = None, **kwargs: Any) -> OpenAISummarizer:
    sleeps = sleeps or Sleeps()
    return OpenAISummarizer(
        api_key="sk-test", base_url=BASE_URL, sleep=sleeps, asleep=sleeps.asleep, timeout=None, **kwargs
    )


def make_extractor(sleeps: Sleeps | None = None, **kwargs: Any) -> OpenAIFactExtractor:
    sleeps = sleeps or Sleeps()
    return OpenAIFactExtractor(
        api_key="sk-test", base_url=BASE_URL, sleep=sleeps, asleep=sleeps.asleep, timeout=None, **kwargs
    )


def test_openai_summary(summary_cassette: Any) -> None:
    s = make_summarizer()
    assert isinstance(s, Summarizer)
    out = s.summarize(MEMORIES)
    assert out == (
        "Alice has worked at Acme as a data engineer since 2024-03-01. She moved from Paris to Lyon by "
        "2024-06-10 and has been vegetarian since 2024-05."
    )
    assert summary_cassette.play_count == 1
    assert s._client is not None and s._client.max_retries == 0  # the retry policy is ours
    s.close()
    assert s._client is None


def test_openai_summary_of_summaries(summary_cassette: Any) -> None:
    assert make_summarizer().summarize(SUMMARIES).startswith("Alice, a data engineer at Acme")
    assert summary_cassette.play_count == 1


async def test_openai_asummarize_uses_the_async_client(summary_cassette: Any) -> None:
    s = make_summarizer()
    assert (await s.asummarize(MEMORIES)).startswith("Alice has worked at Acme")
    assert summary_cassette.play_count == 1
    assert s._client is None  # the sync client was never needed
    await s.aclose()


@pytest.mark.parametrize(("text", "message"), [("blank reply", "empty summary"), ("cut off", "'length'")])
def test_openai_unusable_summary_is_a_model_error_not_retried(
    summary_cassette: Any, text: str, message: str
) -> None:
    sleeps = Sleeps()
    with pytest.raises(ModelError, match=message):
        make_summarizer(sleeps).summarize(one(text))
    assert summary_cassette.play_count == 1
    assert sleeps.delays == []


def test_openai_extraction_parses_structured_output(extract_cassette: Any) -> None:
    x = make_extractor()
    assert isinstance(x, FactExtractor)
    assert x.extract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert extract_cassette.play_count == 1


async def test_openai_aextract(extract_cassette: Any) -> None:
    x = make_extractor()
    assert await x.aextract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert extract_cassette.play_count == 1
    await x.aclose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Alice likes jazz.", "did not reply with JSON.*Sure! Alice likes jazz"),
        ("Alice has two cats.", "source '1' in \"sources\" is not an integer"),
        ("refuse this", "refused: I am sorry"),
    ],
    ids=["not-json", "wrong-type", "refusal"],
)
def test_openai_malformed_extraction_is_a_model_error_not_retried(
    extract_cassette: Any, text: str, message: str
) -> None:
    sleeps = Sleeps()
    with pytest.raises(ModelError, match=message):
        make_extractor(sleeps).extract(one(text), [])
    assert extract_cassette.play_count == 1
    assert sleeps.delays == []


def test_openai_429_then_success(retry_cassette: Any) -> None:
    sleeps = Sleeps()
    assert (
        make_summarizer(sleeps, backoff=0.5).summarize(one("rate limited once"))
        == "Alice was rate limited once."
    )
    assert retry_cassette.play_count == 2
    assert len(sleeps.delays) == 1
    assert 0.25 <= sleeps.delays[0] <= 0.5  # backoff * 2**0, with equal jitter


async def test_openai_async_429_then_success(retry_cassette: Any) -> None:
    sleeps = Sleeps()
    s = make_summarizer(sleeps, backoff=0.5)
    assert await s.asummarize(one("rate limited once")) == "Alice was rate limited once."
    assert retry_cassette.play_count == 2
    assert len(sleeps.delays) == 1 and 0.25 <= sleeps.delays[0] <= 0.5


def test_openai_honours_retry_after(retry_cassette: Any) -> None:
    sleeps = Sleeps()
    assert make_summarizer(sleeps).summarize(one("retry after")) == "Alice waited as asked."
    assert sleeps.delays == [2.0]


def test_openai_5xx_retries_run_out(retry_cassette: Any) -> None:
    import openai

    sleeps = Sleeps()
    with pytest.raises(ModelError, match="after 3 attempts: InternalServerError") as info:
        make_summarizer(sleeps, max_retries=2, backoff=1.0, max_backoff=1.5).summarize(one("overloaded"))
    assert isinstance(info.value.__cause__, openai.InternalServerError)
    assert retry_cassette.play_count == 3
    assert len(sleeps.delays) == 2
    assert 0.5 <= sleeps.delays[0] <= 1.0  # 1.0 * 2**0
    assert 0.75 <= sleeps.delays[1] <= 1.5  # 1.0 * 2**1, capped at max_backoff


@pytest.mark.parametrize(
    ("text", "error", "status"),
    [
        ("bad request", "BadRequestError", 400),
        ("wrong key", "AuthenticationError", 401),
        ("no such model", "NotFoundError", 404),
    ],
)
def test_openai_4xx_is_not_retried(retry_cassette: Any, text: str, error: str, status: int) -> None:
    import openai

    sleeps = Sleeps()
    with pytest.raises(ModelError, match=f"failed: {error}") as info:
        make_summarizer(sleeps).summarize(one(text))
    assert isinstance(info.value.__cause__, openai.APIStatusError)
    assert info.value.__cause__.status_code == status
    assert retry_cassette.play_count == 1  # the 200 recorded after it was never asked for
    assert sleeps.delays == []


async def test_openai_async_400_is_not_retried(retry_cassette: Any) -> None:
    sleeps = Sleeps()
    with pytest.raises(ModelError, match="BadRequestError"):
        await make_summarizer(sleeps).asummarize(one("bad request"))
    assert retry_cassette.play_count == 1 and sleeps.delays == []


def test_openai_unmatched_request_never_leaves_the_machine(summary_cassette: Any) -> None:
    with pytest.raises(ModelError) as info:
        make_summarizer(max_retries=1).summarize(one("not in the cassette"))
    assert summary_cassette.play_count == 0
    assert "Connection" in type(info.value.__cause__).__name__


# --- OpenAI: timeouts through an httpx transport ---------------------------------------------------------


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-t",
        "object": "chat.completion",
        "created": 1718020800,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
        ],
    }


class TimeoutThenReply:
    """An httpx handler: the first ``timeouts`` requests time out, the next ones get ``content``."""

    def __init__(self, timeouts: int, content: str = "Alice works at Acme.") -> None:
        self.timeouts = timeouts
        self.content = content
        self.bodies: list[Any] = []

    def __call__(self, request: Any) -> Any:
        import httpx

        self.bodies.append(json.loads(request.content))
        if len(self.bodies) <= self.timeouts:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json=_completion(self.content))


def _openai_client(handler: TimeoutThenReply, *, sync: bool = True) -> Any:
    openai = pytest.importorskip("openai")
    import httpx

    transport = httpx.MockTransport(handler)
    if sync:
        return openai.OpenAI(
            api_key="sk-test", base_url=BASE_URL, max_retries=5, http_client=httpx.Client(transport=transport)
        )
    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=BASE_URL,
        max_retries=5,
        http_client=httpx.AsyncClient(transport=transport),
    )


def test_openai_timeout_then_success() -> None:
    handler = TimeoutThenReply(timeouts=1)
    client = _openai_client(handler)
    sleeps = Sleeps()
    s = OpenAISummarizer(client=client, sleep=sleeps, timeout=5.0)
    assert s.summarize(MEMORIES) == "Alice works at Acme."
    assert len(handler.bodies) == 2  # the client's own max_retries=5 was switched off
    assert len(sleeps.delays) == 1
    assert client.max_retries == 5  # the caller's client is left as it was
    s.close()
    assert not client.is_closed()  # a passed-in client is the caller's


def test_openai_timeouts_run_out() -> None:
    import openai

    handler = TimeoutThenReply(timeouts=10)
    sleeps = Sleeps()
    s = OpenAIFactExtractor(client=_openai_client(handler), sleep=sleeps, max_retries=2)
    with pytest.raises(ModelError, match="after 3 attempts: APITimeoutError") as info:
        s.extract(MEMORIES, [])
    assert isinstance(info.value.__cause__, openai.APITimeoutError)
    assert len(handler.bodies) == 3 and len(sleeps.delays) == 2


async def test_openai_async_timeout_then_success() -> None:
    handler = TimeoutThenReply(timeouts=2, content=FACTS_JSON)
    sleeps = Sleeps()
    x = OpenAIFactExtractor(async_client=_openai_client(handler, sync=False), asleep=sleeps.asleep)
    assert await x.aextract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert len(handler.bodies) == 3 and len(sleeps.delays) == 2
    assert handler.bodies[0]["response_format"] == FACTS_RESPONSE_FORMAT


def test_openai_extractor_without_structured_output() -> None:
    handler = TimeoutThenReply(timeouts=0, content=f"```json\n{FACTS_JSON}\n```")
    x = OpenAIFactExtractor("local-model", client=_openai_client(handler), structured_output=False)
    assert x.extract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert "response_format" not in handler.bodies[0]
    assert handler.bodies[0]["model"] == "local-model"
    assert handler.bodies[0]["messages"] == extraction_messages(FACT_MEMORIES, KNOWN)


def test_openai_sends_temperature_and_timeout() -> None:
    calls: list[dict[str, Any]] = []

    class Completions:
        def create(self, **kwargs: Any) -> Any:
            calls.append(kwargs)
            message = type("M", (), {"content": "ok", "refusal": None})()
            choice = type("C", (), {"message": message, "finish_reason": "stop"})()
            return type("R", (), {"choices": [choice]})()

    fake = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    pytest.importorskip("openai")
    assert OpenAISummarizer(client=fake, temperature=0.0, timeout=7).summarize(MEMORIES) == "ok"
    assert calls[0]["temperature"] == 0.0 and calls[0]["timeout"] == 7.0
    assert calls[0]["messages"] == summary_messages(MEMORIES)


def test_openai_client_errors_outside_openai_are_wrapped_not_retried() -> None:
    class Completions:
        def create(self, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    fake = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    pytest.importorskip("openai")
    sleeps = Sleeps()
    with pytest.raises(ModelError, match="RuntimeError: boom") as info:
        OpenAISummarizer(client=fake, sleep=sleeps).summarize(MEMORIES)
    assert isinstance(info.value.__cause__, RuntimeError) and sleeps.delays == []


def test_openai_unexpected_response_shape() -> None:
    class Completions:
        def create(self, **kwargs: Any) -> Any:
            return type("R", (), {"choices": []})()

    fake = type("Client", (), {"chat": type("Chat", (), {"completions": Completions()})()})()
    pytest.importorskip("openai")
    with pytest.raises(ModelError, match="unexpected chat completion"):
        OpenAISummarizer(client=fake).summarize(MEMORIES)


# --- OpenAI: construction and configuration ---------------------------------------------------------------


def test_openai_construction_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = OpenAISummarizer(base_url=BASE_URL)  # no key, no network: fine until used
    assert s._client is None and s.model == "gpt-4o-mini" and s.max_input_chars == 12000
    assert s.prompt_version == PROMPT_VERSION
    with pytest.raises(ConfigurationError, match="OpenAI client"):
        s.summarize(MEMORIES)


def test_openai_created_clients_do_not_retry() -> None:
    pytest.importorskip("openai")
    s = OpenAISummarizer(api_key="sk-test", base_url=BASE_URL, timeout=3.0)
    assert s._sync_client().max_retries == 0
    assert s._sync_client().timeout == 3.0
    s.close()


def test_openai_nothing_to_do() -> None:
    s = OpenAISummarizer(api_key="sk-test", base_url=BASE_URL)
    with pytest.raises(InvalidMemoryError):
        s.summarize([])
    assert OpenAIFactExtractor(api_key="sk-test", base_url=BASE_URL).extract([], KNOWN) == []
    assert s._client is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": ""},
        {"max_retries": -1},
        {"max_retries": True},
        {"max_input_chars": 0},
        {"timeout": 0},
        {"timeout": -1.0},
        {"backoff": math.nan},
        {"max_backoff": "1"},
    ],
)
def test_openai_rejects_bad_config(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        OpenAISummarizer(**kwargs)
    with pytest.raises(ConfigurationError):
        OpenAIFactExtractor(**kwargs)


def block_import(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_openai_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    s = OpenAISummarizer(api_key="sk-test", base_url=BASE_URL)
    block_import(monkeypatch, "openai")
    with pytest.raises(ConfigurationError, match=r"pip install agentmem\[openai\]"):
        s.summarize(MEMORIES)


def test_importing_providers_imports_no_framework() -> None:
    code = (
        "import sys, agentmem_core.consolidation.providers, agentmem_core.consolidation.prompts;"
        "bad=[m for m in sys.modules if m.split('.')[0] in "
        "('langchain','langchain_core','langgraph','crewai','llama_index','openai','httpx')];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"imported frameworks: {result.stdout} {result.stderr}"


# --- LangChain ----------------------------------------------------------------------------------------


def test_langchain_fake_chat_model() -> None:
    fake = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    model = fake.FakeListChatModel(responses=["  Alice works at Acme.  ", f"```json\n{FACTS_JSON}\n```"])
    assert summarizer_from(model).summarize(MEMORIES) == "Alice works at Acme."
    assert extractor_from(model).extract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS


async def test_langchain_async() -> None:
    fake = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    model = fake.FakeListChatModel(responses=["Alice works at Acme.", FACTS_JSON])
    assert await ChatModelSummarizer(model).asummarize(MEMORIES) == "Alice works at Acme."
    assert await ChatModelFactExtractor(model).aextract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS


def _recording_chat_model(reply: Any) -> Any:
    pytest.importorskip("langchain_core")
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Recording(BaseChatModel):
        seen: list[Any] = []

        @property
        def _llm_type(self) -> str:
            return "recording"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            self.seen.append(messages)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])

    return Recording(seen=[])


def test_langchain_gets_system_and_human_messages() -> None:
    model = _recording_chat_model("Alice works at Acme.")
    ChatModelSummarizer(model).summarize(MEMORIES)
    (messages,) = model.seen
    assert [m.type for m in messages] == ["system", "human"]
    assert messages[0].content == SUMMARY_SYSTEM
    assert messages[1].content == summary_messages(MEMORIES)[1]["content"]


def test_langchain_content_blocks() -> None:
    model = _recording_chat_model(
        [{"type": "reasoning", "reasoning": "hm"}, {"type": "text", "text": "Alice."}]
    )
    assert ChatModelSummarizer(model).summarize(MEMORIES) == "Alice."


def test_langchain_errors_are_model_errors() -> None:
    fake = pytest.importorskip("langchain_core.language_models.fake_chat_models")

    class Failing(fake.FakeListChatModel):  # type: ignore[misc,name-defined]
        def _call(self, *args: Any, **kwargs: Any) -> str:
            raise ValueError("provider down")

    with pytest.raises(ModelError, match="LangChain model Failing failed: ValueError: provider down") as info:
        ChatModelSummarizer(Failing(responses=["x"])).summarize(MEMORIES)
    assert isinstance(info.value.__cause__, ValueError)


def test_langchain_runnable_chain_with_string_output() -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.runnables import RunnableLambda

    def count(messages: list[dict[str, str]]) -> str:
        return f"{len(messages)} messages"

    chain = RunnableLambda(count)
    assert summarizer_from(chain).summarize(MEMORIES) == "2 messages"


# --- LlamaIndex ---------------------------------------------------------------------------------------


def test_llama_index_mock_llm_gets_the_messages() -> None:
    llms = pytest.importorskip("llama_index.core.llms")
    summary = summarizer_from(llms.MockLLM()).summarize(MEMORIES)
    # MockLLM echoes the chat as "role: content" lines.
    assert summary.startswith(f"system: {SUMMARY_SYSTEM}")
    assert f"user: {summary_messages(MEMORIES)[1]['content']}" in summary


def _canned_llm(reply: str) -> Any:
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

    class Canned(CustomLLM):
        reply: str

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="canned")

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=self.reply)

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            yield CompletionResponse(text=self.reply, delta=self.reply)

    return Canned(reply=reply)


def test_llama_index_custom_llm_extraction() -> None:
    x = extractor_from(_canned_llm(f"Sure:\n```json\n{FACTS_JSON}\n```"))
    assert isinstance(x, ChatModelFactExtractor)
    assert x.extract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS


async def test_llama_index_async() -> None:
    llm = _canned_llm(FACTS_JSON)
    assert await ChatModelFactExtractor(llm).aextract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert await ChatModelSummarizer(_canned_llm("Alice.")).asummarize(MEMORIES) == "Alice."


def test_llama_index_malformed_reply() -> None:
    with pytest.raises(ModelError, match="LlamaIndex LLM Canned did not reply with JSON"):
        extractor_from(_canned_llm("no facts here")).extract(MEMORIES, [])


# --- CrewAI -------------------------------------------------------------------------------------------


class DuckLLM:
    """Shaped like crewai.LLM: ``call(messages) -> str``, sync only."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[tuple[Any, int]] = []

    def call(self, messages: Any, **kwargs: Any) -> Any:
        self.calls.append((messages, threading.get_ident()))
        return self.reply


def test_crewai_duck_type() -> None:
    llm = DuckLLM("Alice works at Acme.")
    assert summarizer_from(llm).summarize(MEMORIES) == "Alice works at Acme."
    assert llm.calls[0][0] == summary_messages(MEMORIES)


async def test_crewai_async_runs_call_in_a_thread() -> None:
    llm = DuckLLM(FACTS_JSON)
    assert await extractor_from(llm).aextract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert llm.calls[0][1] != threading.get_ident()


def _crewai_llm(reply: Any) -> Any:
    pytest.importorskip("crewai")
    from crewai.llms.base_llm import BaseLLM

    class Canned(BaseLLM):
        def call(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(reply, Exception):
                raise reply
            return reply

    return Canned(model="canned-model")


def test_crewai_base_llm_subclass() -> None:
    s = summarizer_from(_crewai_llm("Alice."))
    assert s.summarize(MEMORIES) == "Alice."
    assert "CrewAI LLM 'canned-model'" in repr(s)


async def test_crewai_errors_and_non_text() -> None:
    with pytest.raises(ModelError, match="CrewAI LLM 'canned-model' failed: RuntimeError: quota") as info:
        await summarizer_from(_crewai_llm(RuntimeError("quota"))).asummarize(MEMORIES)
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ModelError, match="not text"):
        summarizer_from(_crewai_llm([{"tool": "search"}])).summarize(MEMORIES)


# --- plain callables ----------------------------------------------------------------------------------


def test_sync_callable() -> None:
    seen: list[list[dict[str, str]]] = []

    def chat(messages: list[dict[str, str]]) -> str:
        seen.append(messages)
        return "Alice works at Acme." if len(seen) == 1 else FACTS_JSON

    assert summarizer_from(chat).summarize(MEMORIES) == "Alice works at Acme."
    assert extractor_from(chat).extract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    assert seen == [summary_messages(MEMORIES), extraction_messages(FACT_MEMORIES, KNOWN)]


async def test_sync_callable_runs_in_a_thread_for_async() -> None:
    threads: list[int] = []

    def chat(messages: list[dict[str, str]]) -> str:
        threads.append(threading.get_ident())
        return "Alice."

    assert await summarizer_from(chat).asummarize(MEMORIES) == "Alice."
    assert threads[0] != threading.get_ident()


async def test_async_callable() -> None:
    async def chat(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(0)
        return FACTS_JSON

    x = extractor_from(chat)
    assert isinstance(x, ChatModelFactExtractor) and not x.supports_sync
    assert await x.aextract(FACT_MEMORIES, KNOWN) == EXPECTED_FACTS
    with pytest.raises(ConfigurationError, match="is async"):
        x.extract(FACT_MEMORIES, KNOWN)


async def test_sync_callable_returning_an_awaitable() -> None:
    async def reply() -> str:
        return "Alice."

    s = summarizer_from(lambda messages: reply())
    assert await s.asummarize(MEMORIES) == "Alice."
    with pytest.raises(ConfigurationError, match="is async"):
        s.summarize(MEMORIES)


async def test_callable_errors_are_chained_model_errors() -> None:
    def broken(messages: list[dict[str, str]]) -> str:
        raise KeyError("choices")

    async def abroken(messages: list[dict[str, str]]) -> str:
        raise TimeoutError("slow")

    with pytest.raises(ModelError, match="chat function .*broken failed: KeyError") as info:
        summarizer_from(broken).summarize(MEMORIES)
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ModelError, match="TimeoutError: slow") as ainfo:
        await extractor_from(abroken).aextract(MEMORIES, [])
    assert isinstance(ainfo.value.__cause__, TimeoutError)


@pytest.mark.parametrize(("reply", "message"), [(None, "NoneType, not text"), ("   ", "empty summary")])
def test_callable_unusable_reply(reply: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        summarizer_from(lambda messages: reply).summarize(MEMORIES)


def test_callable_nothing_to_do() -> None:
    calls: list[Any] = []
    with pytest.raises(InvalidMemoryError):
        summarizer_from(calls.append).summarize([])
    assert extractor_from(calls.append).extract([], KNOWN) == []
    assert calls == []


# --- entry points -------------------------------------------------------------------------------------


def test_from_returns_providers_as_they_are() -> None:
    s = OpenAISummarizer(api_key="sk-test")
    x = OpenAIFactExtractor(api_key="sk-test")
    assert summarizer_from(s) is s
    assert extractor_from(x) is x
    wrapped = ChatModelSummarizer(lambda messages: "x", max_input_chars=500)
    assert summarizer_from(wrapped) is wrapped and wrapped.max_input_chars == 500


def test_from_passes_max_input_chars() -> None:
    assert summarizer_from(lambda m: "x", max_input_chars=99).max_input_chars == 99
    assert extractor_from(lambda m: "x").max_input_chars == 12000
    with pytest.raises(ConfigurationError):
        extractor_from(lambda m: "x", max_input_chars=0)


@pytest.mark.parametrize("obj", [42, "gpt-4o-mini", object()])
def test_from_rejects_what_is_no_model(obj: object) -> None:
    with pytest.raises(ConfigurationError, match="cannot use"):
        summarizer_from(obj)
    with pytest.raises(ConfigurationError, match="cannot use"):
        extractor_from(obj)


def test_from_points_openai_clients_to_the_openai_providers() -> None:
    openai = pytest.importorskip("openai")
    with pytest.raises(ConfigurationError, match=r"OpenAISummarizer\(client=...\)"):
        summarizer_from(openai.OpenAI(api_key="sk-test", base_url=BASE_URL))


def test_providers_satisfy_the_protocols() -> None:
    providers: Sequence[object] = (
        OpenAISummarizer(),
        ChatModelSummarizer(lambda m: "x"),
    )
    assert all(isinstance(p, Summarizer) for p in providers)
    assert isinstance(OpenAIFactExtractor(), FactExtractor)
    assert isinstance(ChatModelFactExtractor(lambda m: "x"), FactExtractor)
