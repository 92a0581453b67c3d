"""The inspector in a real browser: headless Chromium loads the pages of a seeded store served by uvicorn
(installed by scripts/install-browser.sh; skipped, with the reason, when no chromium is on PATH)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import uvicorn

from agentmem_core import MemoryStore
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.inspector import create_app
from agentmem_core.inspector.views import Scope

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (run: sudo bash scripts/install-browser.sh)"
)
ANA = Scope((), None, None, "ana")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    store = MemoryStore.from_url(f"sqlite:///{tmp_path / 'b.db'}", name="b", embedder=HashingEmbedder(64))
    store.setup()
    store.remember("Prefers window seats on long flights", user_id="ana", importance=0.9, tags=["flights"])
    store.remember("Vegetarian, no mushrooms", user_id="ana", importance=0.6, tags=["food"])
    store.remember("Booked the hotel near the station", user_id="ana", kind="episodic")
    store.remember('<script>document.title="pwned"</script> ünïcødé', user_id="ana")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def _chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_browser_renders_the_playground_with_the_expected_top_hit(base_url: str, tmp_path: Path) -> None:
    query = urlencode({"q": "window seats flights", "scope": ANA.to_param(), "k": "3"})
    playground = f"{base_url}/recall?{query}"
    dom = _chromium(tmp_path, "--dump-dom", playground)
    hits = dom.split('<div id="hits">')[1]
    first = hits.split('<tr class="hit')[1]
    assert "Prefers window seats on long flights" in first
    assert 'class="bar bar-score"' in first and "<svg" in first
    # the hostile memory is text in the DOM, not a script that ran
    assert "<title>Recall playground · agentmem inspector</title>" in dom
    shot = tmp_path / "playground.png"
    _chromium(tmp_path, f"--screenshot={shot}", playground)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


def test_browser_renders_the_scope_tree_and_list(base_url: str, tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", f"{base_url}/")
    assert re.search(r'<strong id="total">4</strong>', dom)
    assert "(root) · user=ana" in dom
    listing = _chromium(tmp_path, "--dump-dom", f"{base_url}/scope?{urlencode({'scope': ANA.to_param()})}")
    assert listing.count('<tr class="memory">') == 4
    assert '&lt;script&gt;document.title="pwned"&lt;/script&gt; ünïcødé' in listing
    assert "pwned</title>" not in listing
