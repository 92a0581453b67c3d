"""prepare() memoises what a memory's scope and metadata text decide; each memory still gets its own."""

from __future__ import annotations

import pytest

from agentmem_core._records import MemoryInput, prepare
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.errors import InvalidMemoryError
from agentmem_core.schema import F, numeric_field


def _cfg(*numeric: str) -> StoreConfig:
    return StoreConfig(name="memo", index=IndexConfig(dims=4), numeric_fields=numeric)


def test_the_same_metadata_text_under_other_numeric_fields_gets_its_own_mirror() -> None:
    item = MemoryInput(content="x", metadata={"price": 3, "colour": "red"}, namespace=("a", "b"))
    plain = prepare(item, _cfg(), 1000.0).fields
    mirrored = prepare(item, _cfg("price"), 1000.0).fields
    assert numeric_field("price") not in plain
    assert mirrored[numeric_field("price")] == "3"
    assert plain[F.X_META] == mirrored[F.X_META]


def test_memories_of_one_batch_share_nothing_mutable() -> None:
    cfg = _cfg()
    first = prepare(MemoryInput(content="a", metadata={"k": "v"}, namespace=("n",), user_id="u"), cfg, 1.0)
    first.fields[F.X_META] = "changed"
    first.fields[F.X_NS] = "changed"
    second = prepare(MemoryInput(content="b", metadata={"k": "v"}, namespace=("n",), user_id="u"), cfg, 1.0)
    assert second.fields[F.X_META] != "changed" and second.fields[F.X_NS] != "changed"


def test_other_metadata_and_scopes_get_their_own_fields() -> None:
    cfg = _cfg()
    seen = set()
    for n in range(5):
        for user in ("u1", "u2"):
            item = MemoryInput(content="c", metadata={"k": n}, namespace=("n", str(n)), user_id=user)
            fields = prepare(item, cfg, 1.0).fields
            seen.add(tuple(fields[f] for f in (F.X_META, F.X_NS, F.X_NS_ANC, F.X_USER, F.NAMESPACE)))
    assert len(seen) == 10
    assert len({s[0] for s in seen}) == 5 and len({s[3] for s in seen}) == 2


def test_scalars_that_compare_equal_keep_their_own_json() -> None:
    """1 == True == 1.0 and 0.0 == -0.0 hash alike; each is stored as written."""
    cfg = _cfg()
    texts = []
    for value in (1, True, 1.0, 0.0, -0.0, 0, False, None, "1"):
        fields = prepare(MemoryInput(content="x", metadata={"v": value}), cfg, 1.0).fields
        texts.append(fields[F.METADATA])
    assert texts == [
        '{"v": 1}', '{"v": true}', '{"v": 1.0}', '{"v": 0.0}', '{"v": -0.0}', '{"v": 0}', '{"v": false}',
        '{"v": null}', '{"v": "1"}',
    ]  # fmt: skip


def test_a_refused_metadata_is_refused_every_time() -> None:
    big = {"v": "x" * 600}
    small = StoreConfig(name="memo", index=IndexConfig(dims=4), max_metadata_bytes=512)
    assert prepare(MemoryInput(content="x", metadata=big), _cfg(), 1.0).fields[F.METADATA]  # fits the default
    for _ in range(2):  # the size limit is part of what is cached
        with pytest.raises(InvalidMemoryError, match="larger than 512"):
            prepare(MemoryInput(content="x", metadata=big), small, 1.0)
    for bad in ({1: "int key"}, {"v": float("nan")}, {"v": "\ud800"}):
        for _ in range(2):
            with pytest.raises(InvalidMemoryError):
                prepare(MemoryInput(content="x", metadata=bad), _cfg(), 1.0)


def test_scope_fields_are_checked_every_time() -> None:
    cfg = _cfg()
    good = prepare(MemoryInput(content="x", namespace=("a", "b"), user_id="u"), cfg, 1.0)
    again = prepare(MemoryInput(content="y", namespace=["a", "b"], user_id="u"), cfg, 1.0)  # a list too
    assert good.scope == again.scope and good.id != again.id
    for namespace, user in ((("a", ""), "u"), (("a", ["b"]), "u"), (("a",), 5), ("", "u"), (("a", 1), "u")):
        for _ in range(2):
            with pytest.raises(InvalidMemoryError):
                prepare(MemoryInput(content="x", namespace=namespace, user_id=user), cfg, 1.0)  # type: ignore[arg-type]
