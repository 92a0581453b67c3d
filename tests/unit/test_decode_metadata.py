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
