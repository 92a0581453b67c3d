"""The memory inspector (agentmem_core.inspector): endpoints over a seeded embedded store, escaping of
hostile content, read-only / --allow-writes with CSRF and confirmation, the access token off loopback,
the pure view models and the `agentmem inspect` command."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from agentmem_core import MemoryStore
from agentmem_core.cli import main
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.inspector import access_token, create_app
from agentmem_core.inspector.app import COOKIE, is_loopback
from agentmem_core.inspector.views import Scope, playground_view, scope_tree, score_bars, timeline

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & ünïcødé ✓ 🧠'
ANA = Scope((), None, None, "ana")
TRIP = Scope(("travel", "2026"), None, None, "ana")
EVIL = Scope(("<b>ns</b>",), "<i>t</i>", None, None)
LOOPBACK = "http://127.0.0.1"


def _seed(store: MemoryStore) -> dict[str, str]:
    ids: dict[str, str] = {}
    t0 = store.now() - 5 * 86400
    ids["window"] = store.remember(
        "Prefers window seats on long flights", user_id="ana", importance=0.9, tags=["flights"],
        metadata={"source_app": "chat"}, kind="semantic", created_at=t0,
    )  # fmt: skip
    ids["veg"] = store.remember(
        "Vegetarian, no mushrooms", user_id="ana", importance=0.6, tags=["food"], created_at=t0 + 3600
    )
    ids["hotel"] = store.remember(
        "Booked the hotel near the station", user_id="ana", kind="episodic", tags=["hotel"], ttl=3 * 86400
    )
    ids["hostile"] = store.remember(
        HOSTILE, user_id="ana", tags=["<tag>"], metadata={"html": "<b>bold</b>"}, kind="procedural"
    )
    ids["berlin"] = store.remember(
        "Ana lives in Berlin", subject="home_city", namespace=["travel", "2026"], user_id="ana",
        created_at=t0,
    )  # fmt: skip
    ids["paris"] = store.remember(
        "Ana moved to Paris", subject="home_city", namespace=["travel", "2026"], user_id="ana",
        created_at=t0 + 86400,
    )  # fmt: skip
    ids["evil"] = store.remember("note in a hostile scope", namespace=["<b>ns</b>"], thread_id="<i>t</i>")
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    s = MemoryStore.from_url(f"sqlite:///{tmp_path / 'insp.db'}", name="insp", embedder=HashingEmbedder(64))
    s.setup()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def ids(store: MemoryStore) -> dict[str, str]:
    return _seed(store)


def client(store: MemoryStore, **kwargs: Any) -> TestClient:
    return TestClient(create_app(store, **kwargs), base_url=LOOPBACK, follow_redirects=False)


def assert_escaped(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html and "<b>" not in html and "<i>t" not in html
    assert "<tag>" not in html


# -- pages ----------------------------------------------------------------------------------------------
def test_home_shows_the_scope_tree_with_counts(store: MemoryStore, ids: dict[str, str]) -> None:
    r = client(store).get("/")
    assert r.status_code == 200
    html = r.text
    assert '<strong id="total">7</strong>' in html
    # namespaces nest: travel > 2026 > user=ana, with counts
    assert re.search(r'<span class="label">travel</span> <span class="count">2</span>', html)
    assert re.search(r'<span class="label">2026</span> <span class="count">2</span>', html)
    assert "travel/2026 · user=ana" in html
    assert "(root) · user=ana" in html
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_scope_list_shows_memory_fields(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    html = c.get("/scope", params={"scope": ANA.to_param()}).text
    assert "Prefers window seats on long flights" in html
    assert '<span class="tag">flights</span>' in html
    assert "{&#34;source_app&#34;: &#34;chat&#34;}" in html  # metadata, escaped JSON
    assert "0.90" in html
    assert re.search(r"<td>2d 23h</td>|<td>3d 0h</td>", html)  # TTL left of the hotel memory
    assert "Ana lives in Berlin" not in html  # another scope
    facts = c.get("/scope", params={"scope": TRIP.to_param()}).text
    assert re.search(r"Ana lives in Berlin</a>\s*<div class=\"fact\">fact <code>home_city</code> · "
                     r"<span class=\"state superseded\">superseded", facts)  # fmt: skip
    assert re.search(r"Ana moved to Paris</a>\s*<div class=\"fact\">.*current", facts)


def test_scope_list_filters(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    by_kind = c.get("/scope", params={"scope": ANA.to_param(), "kind": "episodic"}).text
    assert "Booked the hotel" in by_kind and "window seats" not in by_kind
    by_tag = c.get("/scope", params={"scope": ANA.to_param(), "tag": "food"}).text
    assert "Vegetarian" in by_tag and "Booked the hotel" not in by_tag
    by_text = c.get("/scope", params={"scope": ANA.to_param(), "text": "MUSHROOM"}).text
    assert "Vegetarian" in by_text and "window seats" not in by_text
    assert c.get("/scope", params={"scope": ANA.to_param(), "kind": "bogus"}).status_code == 400
    assert c.get("/scope", params={"scope": "not json"}).status_code == 400
    assert c.get("/scope").status_code == 400


def test_scope_list_pages_with_the_core_cursor(store: MemoryStore) -> None:
    t0 = store.now() - 1000
    for i in range(30):
        store.remember(f"note number {i:02d}", user_id="bob", created_at=t0 + i)
    c = client(store)
    scope = Scope((), None, None, "bob").to_param()
    first = c.get("/scope", params={"scope": scope}).text
    assert first.count('<tr class="memory">') == 25
    assert "note number 29" in first and "note number 04" not in first
    link = re.search(r'<a id="next" href="([^"]+)"', first)
    assert link is not None
    second = c.get(link.group(1).replace("&amp;", "&")).text
    assert second.count('<tr class="memory">') == 5
    assert "note number 04" in second and "note number 29" not in second
    assert 'id="next"' not in second


def test_hostile_content_renders_escaped_everywhere(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    pages = [
        c.get("/"),
        c.get("/scope", params={"scope": ANA.to_param()}),
        c.get("/scope", params={"scope": EVIL.to_param()}),
        c.get("/memory", params={"id": ids["hostile"]}),
        c.get("/recall", params={"q": "script alert onerror", "scope": ANA.to_param()}),
        c.get("/timeline", params={"scope": EVIL.to_param()}),
        c.get("/audit"),
        c.get("/scope", params={"scope": ANA.to_param(), "text": "<script>"}),  # echoed input
        c.get("/memory", params={"id": "<script>x</script>"}),  # echoed in the 404 message
    ]
    for r in pages:
        assert r.status_code in (200, 404), r.url
        assert_escaped(r.text)
    listing = pages[1].text
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; ünïcødé ✓ 🧠"
        in listing
    )
    assert "&lt;tag&gt;" in listing and "&lt;b&gt;bold&lt;/b&gt;" in listing
    assert "&lt;b&gt;ns&lt;/b&gt; · thread=&lt;i&gt;t&lt;/i&gt;" in pages[0].text
    assert "ünïcødé ✓ 🧠" in pages[4].text  # the recall hit


# -- the recall playground ------------------------------------------------------------------------------
def test_recall_playground_shows_hits_with_score_bars(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    html = c.get("/recall", params={"q": "window seats flights", "scope": ANA.to_param(), "k": "3"}).text
    hits = html.split('<div id="hits">')[1]
    first = hits.split('<tr class="hit')[1]
    assert "Prefers window seats on long flights" in first
    for name in ("score", "relevance", "similarity", "lexical", "recency", "importance"):
        assert f'class="bar bar-{name}"' in first
    assert re.search(r'class="fill fill-importance" width="180.0"', first)  # importance 0.9 of 200
    assert "×0.83" in first and "×0.15" in first  # the store's default weights
    assert hits.count('<tr class="hit">') == 3
    assert store.get(ids["window"]).access_count == 0  # type: ignore[union-attr]  # never reinforced


def test_recall_playground_weights_change_the_ranking(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    html = c.get(
        "/recall", params={"q": "hotel", "scope": ANA.to_param(), "ws": "0", "wr": "0", "wi": "1", "k": "1"}
    ).text
    first = html.split('<div id="hits">')[1].split('<tr class="hit')[1]
    assert "Prefers window seats" in first  # importance 0.9 is the highest
    assert "×1.00" in first
    bad = c.get("/recall", params={"q": "hotel", "ws": "0", "wr": "0", "wi": "0"})
    assert bad.status_code == 400 and "weight" in bad.text
    assert c.get("/recall", params={"q": "x", "threshold": "3"}).status_code == 400
    assert c.get("/recall", params={"q": "x", "k": "abc"}).status_code == 400


def test_recall_playground_marks_near_misses_and_nearest_miss(
    store: MemoryStore, ids: dict[str, str]
) -> None:
    c = client(store)
    wide = store.recall("window seats flights", k=20, threshold=None, reinforce=False, **ANA.filters())
    closest = sorted(wide, key=lambda h: h.distance)
    assert closest[0].memory.id == ids["window"]
    cut = (closest[0].distance + closest[1].distance) / 2  # keeps only the closest hit
    html = c.get(
        "/recall", params={"q": "window seats flights", "scope": ANA.to_param(), "threshold": str(cut)}
    ).text
    kept = html.split('<div id="hits">')[1].split("</table>")[0]
    assert kept.count('<tr class="hit">') == 1 and "Prefers window seats" in kept
    misses = html.split('<div id="near-misses">')[1]
    assert misses.count('<tr class="hit cut">') == len(wide) - 1
    shown = [float(d) for d in re.findall(r'<td class="num">([0-9.]+)<div class="small">beyond', misses)]
    assert shown == sorted(shown) and all(d > cut for d in shown)  # closest first
    assert "beyond the threshold" in misses
    # a threshold below every candidate empties the recall: the core's nearest_miss is shown
    html = c.get(
        "/recall", params={"q": "window seats flights", "scope": ANA.to_param(), "threshold": "0.000001"}
    ).text
    assert 'id="no-hits"' in html
    assert re.search(rf'id="nearest-miss">nearest_miss: <a href="/memory\?id={ids["window"]}"', html)


# -- the timeline and the audit trail -------------------------------------------------------------------
def test_timeline_draws_bars_by_kind(store: MemoryStore, ids: dict[str, str]) -> None:
    html = client(store).get("/timeline", params={"scope": ANA.to_param()}).text
    assert '<svg class="timeline" id="timeline"' in html
    assert html.count("<rect ") >= 3
    for kind in ("semantic", "episodic", "procedural"):
        assert f'<span class="kind kind-{kind}">{kind}</span>' in html
    assert "4 memories" in html


def test_audit_trail_filters_by_action(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    html = c.get("/audit").text
    assert 'class="entry action-remember"' in html and 'class="entry action-supersede"' in html
    only = c.get("/audit", params={"action": "supersede"}).text
    assert "action-supersede" in only and "action-remember" not in only
    assert "home_city" in only
    assert c.get("/audit", params={"action": "nope"}).status_code == 400


def test_memory_page_shows_fact_history(store: MemoryStore, ids: dict[str, str]) -> None:
    html = client(store).get("/memory", params={"id": ids["paris"]}).text
    assert "History of <code>home_city</code>" in html
    assert "Ana lives in Berlin" in html and "Ana moved to Paris" in html
    assert "Forget this memory" not in html  # read-only


# -- writes ---------------------------------------------------------------------------------------------
def test_read_only_refuses_forget(store: MemoryStore, ids: dict[str, str]) -> None:
    c = client(store)
    assert c.get("/forget", params={"id": ids["veg"]}).status_code == 403
    r = c.post("/forget", data={"id": ids["veg"], "csrf": "anything", "confirm": "yes"})
    assert r.status_code == 403
    assert store.get(ids["veg"]) is not None


def test_allow_writes_forgets_only_with_token_and_confirmation(
    store: MemoryStore, ids: dict[str, str]
) -> None:
    c = client(store, allow_writes=True)
    assert "Forget this memory" in c.get("/memory", params={"id": ids["veg"]}).text
    page = c.get("/forget", params={"id": ids["veg"]})
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    csrf = match.group(1)
    assert c.post("/forget", data={"id": ids["veg"], "confirm": "yes"}).status_code == 403
    assert c.post("/forget", data={"id": ids["veg"], "csrf": "wrong", "confirm": "yes"}).status_code == 403
    assert c.post("/forget", data={"id": ids["veg"], "csrf": csrf}).status_code == 400  # not confirmed
    assert store.get(ids["veg"]) is not None
    # another app (another process) has another token
    other = client(store, allow_writes=True)
    assert other.post("/forget", data={"id": ids["veg"], "csrf": csrf, "confirm": "yes"}).status_code == 403
    done = c.post("/forget", data={"id": ids["veg"], "csrf": csrf, "confirm": "yes"})
    assert done.status_code == 303
    assert store.get(ids["veg"]) is None
    assert "The memory was forgotten." in c.get(done.headers["location"]).text
    assert store.audit(actions=["forget"])[0].ids == (ids["veg"],)


# -- access ---------------------------------------------------------------------------------------------
def test_token_is_required_when_one_is_set(store: MemoryStore, ids: dict[str, str]) -> None:
    app = create_app(store, token="s3cret")
    c = TestClient(app, base_url="http://192.0.2.10:8765")
    assert c.get("/").status_code == 401
    assert c.get("/", params={"token": "wrong"}).status_code == 401
    assert c.get("/static/inspector.css").status_code == 401
    r = c.get("/", params={"token": "s3cret"})
    assert r.status_code == 200 and COOKIE in r.headers["set-cookie"]
    assert "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/recall").status_code == 200  # the cookie now
    fresh = TestClient(app, base_url="http://192.0.2.10:8765", cookies={COOKIE: "wrong"})
    assert fresh.get("/").status_code == 401


def test_non_loopback_bind_requires_a_token() -> None:
    assert access_token("127.0.0.1", None) is None
    assert access_token("localhost", None) is None
    assert access_token("::1", None) is None
    generated = access_token("0.0.0.0", None)
    assert generated is not None and len(generated) >= 24
    assert access_token("0.0.0.0", None) != generated
    assert access_token("192.168.1.5", "mine") == "mine"
    assert is_loopback("[::1]") and is_loopback("127.0.0.2") and not is_loopback("example.com")


def test_without_token_only_loopback_hosts_are_served(store: MemoryStore) -> None:
    app = create_app(store)
    assert TestClient(app, base_url="http://localhost:8765").get("/").status_code == 200
    assert TestClient(app, base_url="http://[::1]:8765").get("/").status_code == 200
    assert TestClient(app, base_url="http://evil.example:8765").get("/").status_code == 403  # rebinding


def test_static_css_ships_in_the_package(store: MemoryStore) -> None:
    r = client(store).get("/static/inspector.css")
    assert r.status_code == 200 and "text/css" in r.headers["content-type"]
    html = client(store).get("/").text
    assert re.findall(r'(?:href|src)="(https?:)?//', html) == []  # nothing external


# -- view models ----------------------------------------------------------------------------------------
def test_view_models(store: MemoryStore, ids: dict[str, str]) -> None:
    assert Scope.from_param(EVIL.to_param()) == EVIL
    with pytest.raises(ValueError):
        Scope.from_param('[["a"], 1, null, null]')
    tree = scope_tree(store.stats())
    assert tree.total == 7 and [n.label for n in tree.children] == ["<b>ns</b>", "travel"]
    weights = store.config.scoring.weights
    result = store.recall("window seats", k=10, threshold=None, reinforce=False, user_id="ana")
    bars = {b.name: b for b in score_bars(result[0], weights)}
    assert bars["importance"].width == pytest.approx(180.0)
    assert bars["score"].value == pytest.approx(result[0].score)
    view = playground_view(result, k=2, weights=weights, threshold=result[0].distance, now=store.now())
    assert len(view.hits) == 1 and all(h.cut for h in view.near_misses)
    chart = timeline([(0.0, "semantic"), (3600.0, "semantic"), (3600.0, "episodic"), (7200.0, "episodic")])
    assert chart.total == 4 and chart.peak == 2
    assert [b.count for b in chart.bars] == [1, 1, 1, 1]
    assert max(b.height for b in chart.bars) == pytest.approx(chart.height / 2)
    assert timeline([]).bars == []


# -- packaging and the command line ---------------------------------------------------------------------
def test_core_import_does_not_load_the_web_stack() -> None:
    code = "import sys, agentmem_core, agentmem_core.cli, agentmem_core.inspector.views; " \
           "print([m for m in ('starlette', 'jinja2', 'uvicorn') if m in sys.modules])"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_inspect_serves_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agentmem_core.inspector.app as app_module

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    s = MemoryStore.from_url(url, name="c", embedder=HashingEmbedder(32))
    s.setup()
    s.remember("hello", user_id="u")
    s.close()
    seen: dict[str, Any] = {}

    def fake_serve(store: MemoryStore, **kwargs: Any) -> None:
        seen.update(kwargs, dims=store.config.index.dims, count=store.count())

    monkeypatch.setattr(app_module, "serve", fake_serve)
    code = main(
        ["--url", url, "--name", "c", "inspect", "--host", "0.0.0.0", "--port", "9999", "--allow-writes"]
    )
    assert code == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9999 and seen["allow_writes"] is True
    assert seen["token"] is None and seen["dims"] == 32 and seen["count"] == 1
