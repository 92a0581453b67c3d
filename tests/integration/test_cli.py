"""The ``agentmem`` command line, in-process (``main([...])``) and once as ``python -m agentmem_core``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentmem_core import MemoryStore
from agentmem_core.cli import main
from agentmem_core.embeddings import HashingEmbedder

pytestmark = pytest.mark.integration


def seeded(url: str, name: str, dims: int = 64) -> MemoryStore:
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(dims))
    store.setup()
    store.remember("Ana prefers window seats", user_id="ana", namespace=["travel", "2026"], tags=["seat"])
    store.remember("Ana flies to Lisbon in May", user_id="ana", namespace=["travel", "2026"], kind="episodic")
    store.remember("Ana's budget is tight", user_id="ana", key="budget")
    store.remember("Bo likes trains", user_id="bo", id="bo-trains")
    store.remember("a chat message", thread_id="chat", embed=False)
    return store


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    code = main(list(argv), stdin=None if stdin is None else io.StringIO(stdin))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(params=["valkey", "sqlite"])
def target(request: pytest.FixtureRequest, valkey_url: str, tmp_path: Path, unique_name: str) -> list[str]:
    """``--url URL --name NAME`` of a seeded store on either backend."""
    url = valkey_url if request.param == "valkey" else f"sqlite:///{tmp_path / 'cli.db'}"
    seeded(url, unique_name).close()
    return ["--url", url, "--name", unique_name]


def test_stats_list_search(capsys: pytest.CaptureFixture[str], target: list[str]) -> None:
    code, out, err = run(capsys, *target, "stats")
    assert code == 0 and err == ""
    assert "memories: 5" in out and "episodic=1" in out and "ns=travel/2026 user=ana" in out
    code, out, _ = run(capsys, "stats", *target, "--json", "--user", "ana")  # options after the command too
    stats = json.loads(out)
    assert code == 0 and stats["total"] == 3 and len(stats["scopes"]) == 2

    code, out, _ = run(capsys, *target, "list", "--namespace", "travel/2026", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["content"] for r in rows} == {
        "Ana prefers window seats",
        "Ana flies to Lisbon in May",
    }
    assert all(r["namespace"] == ["travel", "2026"] for r in rows)
    code, out, err = run(capsys, *target, "list", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2 and "--cursor" in err
    cursor = err.split("--cursor ")[1].strip()
    code, out, _ = run(capsys, *target, "list", "--limit", "10", "--cursor", cursor)
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = run(capsys, *target, "list", "--user", "bo")
    assert out.startswith("bo-trains ") and "Bo likes trains" in out

    code, out, _ = run(capsys, *target, "search", "window seats", "-k", "2", "--user", "ana")
    assert code == 0 and len(out.splitlines()) == 2 and "Ana prefers window seats" in out.splitlines()[0]
    code, out, _ = run(capsys, *target, "search", "trains", "-k", "1", "--json")
    (hit,) = [json.loads(line) for line in out.splitlines()]
    assert hit["memory"]["id"] == "bo-trains" and 0 < hit["score"] <= 1
    assert hit["memory"]["access_count"] == 0  # search reads only, unless --reinforce


def test_forget(capsys: pytest.CaptureFixture[str], target: list[str]) -> None:
    code, out, _ = run(capsys, *target, "forget", "bo-trains", "no-such-id")
    assert code == 0 and "forgot 1 of 2" in out
    code, _, err = run(capsys, *target, "forget", "--user", "ana")
    assert code == 2 and "--yes" in err
    code, _, err = run(capsys, *target, "forget")
    assert code == 2
    code, _, err = run(capsys, *target, "forget", "some-id", "--user", "ana", "--yes")
    assert code == 2
    code, out, _ = run(capsys, *target, "stats", "--json")
    assert json.loads(out)["total"] == 4  # nothing deleted by the refused calls
    code, out, _ = run(capsys, *target, "forget", "--namespace", "travel/2026", "--yes")
    assert code == 0 and "forgot 2 memories" in out
    code, out, _ = run(capsys, *target, "forget", "--all", "--yes")
    assert code == 0 and "forgot 2 memories" in out
    code, out, _ = run(capsys, *target, "stats", "--json")
    assert json.loads(out)["total"] == 0


def test_export_import_round_trip(
    capsys: pytest.CaptureFixture[str], target: list[str], tmp_path: Path, valkey_url: str, unique_name: str
) -> None:
    dump = tmp_path / "dump.jsonl"
    code, out, err = run(capsys, *target, "export", str(dump))
    assert code == 0 and out == "" and "exported 5 memories" in err
    assert not (tmp_path / "dump.jsonl.partial").exists()
    code, streamed, _ = run(capsys, *target, "export", "-")
    assert code == 0 and len(streamed.splitlines()) == 6
    assert json.loads(streamed.splitlines()[0])["dims"] == 64
    # into the other backend, from a file and from stdin; then both export what the source exported
    other = f"sqlite:///{tmp_path / 'copy.db'}" if valkey_url in target else valkey_url
    copies = []
    for n, how in enumerate(("file", "stdin")):
        copy = ["--url", other, "--name", f"{unique_name}c{n}"]
        if how == "file":
            code, _, err = run(capsys, *copy, "import", str(dump))
        else:
            code, _, err = run(capsys, *copy, "import", "-", stdin=dump.read_text())
        assert code == 0 and "imported 5 memories" in err
        code, again, _ = run(capsys, *copy, "export", "-")
        copies.append(again)
    source = [json.loads(line) for line in dump.read_text().splitlines()]
    for again in copies:
        records = [json.loads(line) for line in again.splitlines()]
        strip = ("exported_at", "store", "remaining_ttl")
        assert [{k: v for k, v in r.items() if k not in strip} for r in records] == [
            {k: v for k, v in r.items() if k not in strip} for r in source
        ]
    code, out, err = run(capsys, *target, "export", "-", "--user", "bo")
    assert code == 0 and len(out.splitlines()) == 2 and "exported 1 memories" in err


def test_import_validates_a_whole_file_before_writing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str
) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    seeded(url, unique_name).close()
    code, out, _ = run(capsys, "--url", url, "--name", unique_name, "export", "-", "--user", "bo")
    header, record = (json.loads(line) for line in out.splitlines())
    tag = record["id"][:16]
    lines = [json.dumps(header)]
    lines += [json.dumps({**record, "caller_id": None, "id": tag + f"{n:016x}"}) for n in range(600)]
    lines.append(json.dumps({**record, "kind": "nonsense"}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    copy = ["--url", f"sqlite:///{tmp_path / 'dst.db'}", "--name", unique_name]
    code, _, err = run(capsys, *copy, "import", str(bad))
    assert code == 1 and "line 602" in err and "Traceback" not in err
    code, out, _ = run(capsys, *copy, "stats", "--json")
    assert json.loads(out)["total"] == 0  # the bad line comes after the first 500-record chunk
    code, _, err = run(capsys, *copy, "import", str(bad), "--dry-run")
    assert code == 1
    bad.write_text("\n".join(lines[:-1]) + "\n")
    code, _, err = run(capsys, *copy, "import", str(bad), "--dry-run")
    assert code == 0 and "would import 600" in err
    code, out, _ = run(capsys, *copy, "stats", "--json")
    assert json.loads(out)["total"] == 0
    code, _, err = run(capsys, *copy, "import", str(bad))
    assert code == 0 and "imported 600" in err


def test_errors_usage_and_defaults(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    seeded(url, unique_name, dims=32).close()
    store = ["--url", url, "--name", unique_name]
    # the hashing embedder takes the store's dimension unless told otherwise
    code, out, _ = run(capsys, *store, "search", "trains", "-k", "1")
    assert code == 0 and "Bo likes trains" in out
    code, _, err = run(capsys, *store, "--dims", "16", "stats")
    assert code == 1 and "dimension 32" in err and "Traceback" not in err
    code, _, err = run(capsys, *store, "--embedder", "bogus", "stats")
    assert code == 1 and "unknown --embedder" in err
    code, _, err = run(capsys, *store, "import", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "No such file" in err
    code, _, err = run(capsys, *store, "import", "-", stdin='{"format": "agentmem-jsonl", "version": 7}\n')
    assert code == 1 and "version 7" in err
    code, _, err = run(capsys, "--url", "valkey://127.0.0.1:1", "--name", unique_name, "stats")
    assert code == 1 and "cannot reach Valkey" in err
    code, _, err = run(capsys, *store, "list", "--limit", "0")
    assert code == 2
    code, _, err = run(capsys, *store, "frobnicate")
    assert code == 2 and "invalid choice" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "hashing" in out and "local" in out and "AGENTMEM_URL" in out
    # the URL defaults to $AGENTMEM_URL
    monkeypatch.setenv("AGENTMEM_URL", url)
    code, out, _ = run(capsys, "--name", unique_name, "stats", "--json")
    assert code == 0 and json.loads(out)["total"] == 5


def test_progress_on_a_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    seeded(url, unique_name).close()
    dump = tmp_path / "p.jsonl"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "--url", url, "--name", unique_name, "export", str(dump))
    assert code == 0 and "\ragentmem: exported 5 memories\n" in err
    code, _, err = run(capsys, "--url", url, "--name", unique_name + "b", "import", str(dump))
    assert code == 0 and "\ragentmem: read 5 memories\n" in err


def test_python_dash_m(tmp_path: Path, unique_name: str) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    seeded(url, unique_name).close()

    def cli(*argv: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentmem_core", "--url", url, "--name", unique_name, *argv],
            capture_output=True, text=True, timeout=120, check=False, **options,
        )  # fmt: skip

    done = cli("export", "-")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 6
    done = cli("--name", unique_name + "x", "import", "-", input=done.stdout)
    assert done.returncode == 0 and "imported 5 memories" in done.stderr
    done = cli("--name", unique_name + "x", "list", "--user", "ana", "--json")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 3
    done = cli("--dims", "8", "stats")
    assert (
        done.returncode == 1 and done.stderr.startswith("agentmem: error:") and "Traceback" not in done.stderr
    )
    assert cli("--no-such-option").returncode == 2
