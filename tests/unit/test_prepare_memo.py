"""prepare() memoises what a memory's scope and metadata text decide; each memory still gets its own."""

from __future__ import annotations

from agentmem_core._records import MemoryInput, prepare
from agentmem_core.config import IndexConfig, StoreConfig
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
