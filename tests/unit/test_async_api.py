"""The async store's API: every public coroutine has a real ``a``-prefixed twin that type checkers see.

The twins must be defined in the class body (not patched on with ``setattr`` after the class exists, which
type checkers and IDEs cannot see), carry the same signature, type hints and docstring, and the sync and
async stores must offer the same methods.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from pathlib import Path

import pytest

import agentmem_core.aio as aio
from agentmem_core import AsyncMemoryStore, MemoryStore

ROOT = Path(__file__).resolve().parents[2]


def _public_coroutines(cls: type) -> dict[str, typing.Any]:
    """Public coroutine methods defined on ``cls`` under their own name (twins excluded)."""
    return {
        name: value
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value) and value.__name__ == name
    }


def test_every_public_coroutine_has_a_twin_assigned_in_the_class_body() -> None:
    tree = ast.parse(inspect.getsource(aio))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AsyncMemoryStore"]
    coroutines = [
        n.name for n in cls.body if isinstance(n, ast.AsyncFunctionDef) and not n.name.startswith("_")
    ]
    aliases = {
        target.id: node.value.id
        for node in cls.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert coroutines, "no public coroutines found: did the class move?"
    missing = [name for name in coroutines if aliases.get("a" + name) != name]
    assert missing == [], f"no `a{{name}} = {{name}}` in the class body for: {missing}"
    # ... and nothing is patched on after the class statement.
    patched = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
    ]
    assert patched == []


def test_twins_have_the_same_signature_hints_and_docstring() -> None:
    coroutines = _public_coroutines(AsyncMemoryStore)
    assert {"setup", "close", "remember", "recall", "update", "list"} <= set(coroutines)
    for name, method in coroutines.items():
        twin = AsyncMemoryStore.__dict__.get("a" + name)
        assert twin is not None, f"AsyncMemoryStore.a{name} is not defined in the class"
        assert inspect.iscoroutinefunction(twin)
        assert inspect.signature(twin) == inspect.signature(method)
        assert typing.get_type_hints(twin) == typing.get_type_hints(method)
        assert twin.__doc__ and twin.__doc__ == method.__doc__
        # Bound on an instance class, it is a method like any other (not a plain attribute).
        assert inspect.signature(getattr(AsyncMemoryStore, "a" + name)) == inspect.signature(method)


def test_the_sync_and_async_stores_offer_the_same_methods() -> None:
    sync_methods = {
        name
        for name, value in vars(MemoryStore).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }
    assert sync_methods == set(_public_coroutines(AsyncMemoryStore))
    for name in sync_methods:
        sync_params = list(inspect.signature(vars(MemoryStore)[name]).parameters)
        async_params = list(inspect.signature(vars(AsyncMemoryStore)[name]).parameters)
        assert sync_params == async_params, name


@pytest.mark.slow
def test_mypy_sees_the_twins_with_their_signatures(tmp_path: Path) -> None:
    """mypy --strict accepts correct calls of the twins and rejects a wrong keyword and a wrong type."""
    api = pytest.importorskip("mypy.api")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("needs the source checkout (pyproject.toml)")
    snippet = tmp_path / "uses_twins.py"
    snippet.write_text(
        textwrap.dedent(
            """\
            from agentmem_core import AsyncMemoryStore
            from agentmem_core.types import Memory, RecallResult


            async def use(store: AsyncMemoryStore) -> RecallResult:
                await store.asetup()
                memory_id: str = await store.aremember("x", user_id="u", importance=0.5)
                updated: Memory = await store.aupdate(memory_id, importance=0.9)
                assert updated.id == memory_id
                await store.aclose()
                return await store.arecall("q", k=3, user_id="u")


            async def misuse(store: AsyncMemoryStore) -> None:
                await store.arecall("q", kk=3)
                count: str = await store.aforget_many(["a"])
            """
        )
    )
    # The checkout's config and cache: warm after `mypy --strict src/`, so this takes seconds, not minutes.
    stdout, stderr, status = api.run(
        [
            str(snippet),
            "--strict",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
        ]
    )  # fmt: skip
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert status == 1, stdout + stderr
    assert len(errors) == 2, stdout
    assert ':15: error: Unexpected keyword argument "kk"' in errors[0]
    assert ":16: error: Incompatible types in assignment" in errors[1]
