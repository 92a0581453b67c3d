"""decode_metadata memoises flat metadata texts; every call still gets a dict of its own."""

from __future__ import annotations

import pytest

from agentmem_core.errors import BackendError
from agentmem_core.schema import STORED_FIELDS, F, decode_memory, decode_metadata


@pytest.mark.parametrize("raw", [b'{"am_status": "active", "n": 3}', '{"am_status": "active", "n": 3}'])
def test_flat_metadata_is_a_fresh_dict_every_time(raw: str | bytes) -> None:
    first = decode_metadata(raw)
    first["am_status"] = "changed"
    first["extra"] = True
    assert decode_metadata(raw) == {"am_status": "active", "n": 3}


def test_nested_metadata_shares_nothing_between_calls() -> None:
    raw = b'{"tags": ["a"], "deep": {"x": 1}}'
    first = decode_metadata(raw)
    first["tags"].append("b")
    first["deep"]["x"] = 2
    assert decode_metadata(raw) == {"tags": ["a"], "deep": {"x": 1}}


def test_empty_and_missing_metadata_are_empty_dicts() -> None:
    for raw in (None, b"", "", b"{}", "{}"):
        assert decode_metadata(raw) == {}


def test_unreadable_metadata_still_fails_its_memory() -> None:
    fields = dict.fromkeys(STORED_FIELDS)
    fields[F.METADATA] = b'{"broken": '
    for _ in range(2):  # the failed parse is not memoised as a value
        with pytest.raises(BackendError):
            decode_memory("ab" * 16, fields, None)


def test_metadata_is_parsed_once_per_call_and_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentmem_core import schema

    calls: list[object] = []
    loads = schema.json.loads

    def counted(text: str) -> object:
        calls.append(text)
        return loads(text)

    monkeypatch.setattr(schema.json, "loads", counted)
    assert decode_metadata(b'{"deep": {"x": 1}, "n": 2}') == {"deep": {"x": 1}, "n": 2}
    assert len(calls) == 1  # a nested text: parsed once, returned as parsed
    decode_metadata(b'{"only": "scalars", "n": 7}')
    decode_metadata(b'{"only": "scalars", "n": 7}')
    assert len(calls) == 2  # a flat text: parsed once, then copied from the memo
    for n in range(3 * schema._FLAT_MEMO_SIZE):
        assert decode_metadata(f'{{"n": {n}}}') == {"n": n}
    assert len(schema._FLAT_MEMO) <= schema._FLAT_MEMO_SIZE
