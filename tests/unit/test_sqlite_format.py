"""The embedded backend's file layout: a file an earlier version wrote is migrated by ``setup()``.

``data/sqlite_format1.db`` was written by the version whose layout was ``"1"`` (commit c785ec5, with
``data/make_sqlite_format1.py``), and ``data/sqlite_format1.json`` holds what that version answered on
it. After the migration this version must answer the same, and keep working on the file.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentmem_core import MemoryStore
from agentmem_core.backends.sqlite._schema import FORMAT
from agentmem_core.config import IndexConfig, StoreConfig
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import SchemaMismatchError

DATA = Path(__file__).parent / "data"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_sqlite_format1", DATA / "make_sqlite_format1.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


answers = _generator().answers
"""The questions the fixture's answers were recorded for (lists, recalls and the count), asked again."""


def _open(path: Path) -> MemoryStore:
    return MemoryStore.from_url(
        f"sqlite:///{path}", name="legacy", embedder=HashingEmbedder(16),
        config=StoreConfig(name="legacy", index=IndexConfig(dims=16), numeric_fields=("price",)),
    )  # fmt: skip


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.db"
    shutil.copyfile(DATA / "sqlite_format1.db", path)
    return path


def _layout(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        return {
            "format": conn.execute("SELECT value FROM am_legacy_meta WHERE name = 'format'").fetchone()[0],
            "tok": [c[1] for c in conn.execute("PRAGMA table_info(am_legacy_tok)")],
            "num": [c[1] for c in conn.execute("PRAGMA table_info(am_legacy_num)")],
            "mem": [c[1] for c in conn.execute("PRAGMA table_info(am_legacy_mem)")],
            "indexes": sorted(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")),
            "postings": conn.execute("SELECT count(*) FROM am_legacy_tok").fetchone()[0]
            + conn.execute("SELECT count(*) FROM am_legacy_num").fetchone()[0],
        }  # fmt: skip
    finally:
        conn.close()


def test_the_fixture_has_the_old_layout(legacy: Path) -> None:
    layout = _layout(legacy)
    assert layout["format"] == "1" and FORMAT != "1"
    assert layout["tok"] == ["field", "token", "id"] and "rid" not in layout["mem"]


def test_an_old_file_is_refused_until_setup_migrates_it(legacy: Path) -> None:
    before = _layout(legacy)
    store = _open(legacy)
    with pytest.raises(SchemaMismatchError, match=r"layout \('1'.*setup\(\) migrates it"):
        store.count()
    store.close()
    assert _layout(legacy) == before  # refusing wrote nothing


def test_setup_migrates_and_every_answer_is_the_old_versions(legacy: Path) -> None:
    expected = json.loads((DATA / "sqlite_format1.json").read_text())
    before = _layout(legacy)["postings"]
    store = _open(legacy)
    store.setup()
    layout = _layout(legacy)
    assert layout["format"] == FORMAT
    assert layout["tok"] == ["field", "token", "rid", "id"]
    assert layout["num"] == ["field", "value", "rid", "id"]
    assert layout["mem"] == ["rid", "id", "fields", "deadline"]
    assert layout["postings"] == before  # every posting kept
    assert answers(store) == expected
    store.setup()  # again: nothing to migrate
    assert answers(store) == expected
    store.close()

    again = _open(legacy)  # a new process on the migrated file
    assert [m.id for m in again.list(limit=100).memories] == expected["all"]  # before its setup()
    again.setup()
    assert answers(again) == expected
    again.close()


def test_a_migrated_file_keeps_working_through_writes_deletes_and_vacuum(legacy: Path) -> None:
    expected = json.loads((DATA / "sqlite_format1.json").read_text())
    store = _open(legacy)
    store.setup()
    gone = expected["alice"][0]
    assert store.forget(gone)
    new = store.remember("alice likes tea in paris trips", user_id="alice", tags=["travel"],
                         metadata={"price": 1, "city": "paris"})  # fmt: skip
    assert [m.id for m in store.list(user_id="alice", limit=100).memories] == [new, *expected["alice"][1:]]
    assert new in [m.id for m in store.list(tags=["travel"], metadata={"price": {"$lt": 4}}).memories]
    assert gone not in [m.id for m in store.list(metadata={"price": {"$lt": 4}}, limit=100).memories]
    hits = store.recall("alice likes tea in paris trips", user_id="alice", k=1, reinforce=False)
    assert [h.memory.id for h in hits] == [new]
    store.close()

    conn = sqlite3.connect(legacy)
    conn.execute("VACUUM")  # renumbers implicit rowids: the postings' rid is an explicit column
    conn.close()
    again = _open(legacy)
    assert [m.id for m in again.list(user_id="alice", limit=100).memories] == [new, *expected["alice"][1:]]
    assert [m.id for m in again.list(tags=["travel"], user_id="alice", limit=100).memories] == [
        m for m in [new, *expected["alice"][1:]] if m == new or m in expected["travel"]
    ]
    again.close()


def test_a_layout_from_a_newer_version_is_refused(legacy: Path) -> None:
    conn = sqlite3.connect(legacy)
    conn.execute("UPDATE am_legacy_meta SET value = '99' WHERE name = 'format'")
    conn.commit()
    conn.close()
    store = _open(legacy)
    with pytest.raises(SchemaMismatchError, match="cannot read"):
        store.setup()
    store.close()
    assert _layout(legacy)["format"] == "99"


def _orphans(path: Path, store: str) -> int:
    """Postings whose row number no memory row has."""
    conn = sqlite3.connect(path)
    try:
        return sum(
            conn.execute(
                f'SELECT count(*) FROM "am_{store}_{t}" p LEFT JOIN "am_{store}_mem" m ON m.rid = p.rid '
                "WHERE m.rid IS NULL"
            ).fetchone()[0]
            for t in ("tok", "num")
        )
    finally:
        conn.close()


def test_postings_leave_with_their_memory_and_a_row_number_is_never_given_twice(tmp_path: Path) -> None:
    path = tmp_path / "rid.db"
    store = MemoryStore.from_url(
        f"sqlite:///{path}", name="rid", embedder=HashingEmbedder(16),
        config=StoreConfig(name="rid", index=IndexConfig(dims=16), numeric_fields=("price",)),
    )  # fmt: skip
    store.setup()
    kept = store.remember("alice keeps this", user_id="alice", tags=["a"], metadata={"price": 1})
    newest = store.remember("alice forgets this", user_id="alice", tags=["a"], metadata={"price": 2})
    changed = store.remember("alice changes this", user_id="alice", tags=["old"], key="k")
    store.update(changed, tags=["new"], metadata={"price": 3})
    store.remember("alice replaces this", user_id="alice", tags=["again"], key="k")  # same key: replaced
    assert store.forget(newest)  # the newest row: its number would be the next one's without AUTOINCREMENT
    assert _orphans(path, "rid") == 0
    bob = store.remember("bob writes after", user_id="bob", tags=["b"], metadata={"price": 2})
    assert [m.id for m in store.list(user_id="alice", limit=10).memories] == [changed, kept]
    assert [m.id for m in store.list(metadata={"price": 2}, limit=10).memories] == [bob]
    assert [m.id for m in store.list(tags=["a"], limit=10).memories] == [kept]
    assert store.list(tags=["old"]).memories == () and store.list(tags=["new"]).memories == ()
    assert [m.id for m in store.list(tags=["again"]).memories] == [changed]
    assert _orphans(path, "rid") == 0
    store.close()
