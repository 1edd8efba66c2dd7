"""The NETCONF agent against hostile input, spoken by hand over real SSH on 127.0.0.1.

Malformed XML, broken framing, oversized messages, entity expansion and external entities,
unknown namespaces, deep nesting and a seeded fuzz. Each case asserts what the agent answers (an
``<rpc-error>`` with a given tag) or that it ends that one session; afterwards another session
still works and the device's running and candidate configs are as they were.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from netgpt.sim_networks.device import Datastore
from netgpt.sim_networks.netconf_agent import MAX_MESSAGE_BYTES
from netgpt.yang_xml import NS, config_from_xml
from tests.integration.netconf_fixtures import (
    IF,
    NC,
    PASSWORD,
    USER,
    Lab,
    host_key,
    start_lab,
)

__all__ = ["host_key"]  # fixture

pytestmark = pytest.mark.integration

TIMEOUT_S = 20.0  # generous: the suite runs on loaded 2-core machines
EOM = b"]]>]]>"
BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_REPLY_HEADER = re.compile(rb"\n#(#\n|[1-9][0-9]{0,9}\n)")


# --------------------------------------------------------------------------------------------
# a NETCONF client by hand


class SessionClosed(Exception):
    """The agent ended the session (end of stream on the channel)."""


class RawSession:
    """One NETCONF session over paramiko: our own hello, framing and reply reading.

    ``transport`` shares an SSH connection (a new channel); otherwise it opens its own.
    ``version=None`` leaves the client hello to the test.
    """

    def __init__(
        self, port: int, *, version: str | None = "1.1", transport: paramiko.Transport | None = None
    ) -> None:
        self._own = transport is None
        if transport is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
            transport = paramiko.Transport(sock)
            transport.connect(username=USER, password=PASSWORD)
        self.transport = transport
        self.chan = transport.open_session(timeout=TIMEOUT_S)
        self.chan.invoke_subsystem("netconf")
        self.buf = b""
        self.version = "1.0"
        hello = self._read_eom(TIMEOUT_S)
        match = re.search(rb"<session-id>(\d+)</session-id>", hello)
        assert match, hello
        self.session_id = int(match.group(1))
        if version is not None:
            self.hello(version)

    def hello(self, version: str) -> None:
        cap = BASE_11 if version == "1.1" else BASE_10
        self.send_raw(
            f'<hello xmlns="{NC}"><capabilities><capability>{cap}</capability></capabilities>'
            "</hello>".encode() + EOM
        )
        self.version = version

    def send_raw(self, data: bytes) -> None:
        self.chan.sendall(data)

    def send(self, msg: str | bytes) -> None:
        """Send one message, framed for the session's version."""
        data = msg.encode() if isinstance(msg, str) else msg
        if self.version == "1.1":
            self.send_raw(b"\n#%d\n%s\n##\n" % (len(data), data))
        else:
            self.send_raw(data + EOM)

    def _recv(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete message from the agent; got {self.buf[:300]!r}")
        self.chan.settimeout(left)
        try:
            data = self.chan.recv(1 << 16)
        except TimeoutError:
            return
        if not data:
            raise SessionClosed(self.buf)
        self.buf += data

    def _read_eom(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while EOM not in self.buf:
            self._recv(deadline)
        msg, _, self.buf = self.buf.partition(EOM)
        return msg

    def _read_chunked(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        msg = b""
        while True:
            while not (match := _REPLY_HEADER.match(self.buf)):
                assert len(self.buf) < 16 or self.buf.startswith(b"\n#"), self.buf[:100]
                self._recv(deadline)
            self.buf = self.buf[match.end():]
            if match.group(1) == b"#\n":
                return msg
            size = int(match.group(1))
            while len(self.buf) < size:
                self._recv(deadline)
            msg, self.buf = msg + self.buf[:size], self.buf[size:]

    def read_message(self, timeout: float = TIMEOUT_S) -> bytes:
        """The next message's bytes (raises :class:`SessionClosed` at end of stream)."""
        return self._read_chunked(timeout) if self.version == "1.1" else self._read_eom(timeout)

    def reply(self, timeout: float = TIMEOUT_S) -> etree._Element:
        """The next message: a well-formed ``<rpc-reply>`` (raises :class:`SessionClosed`)."""
        return check_reply(self.read_message(timeout))

    def rpc(self, body: str, mid: str = "1") -> etree._Element:
        self.send(rpc(body, mid))
        return self.reply()

    def wait_closed(self, timeout: float = TIMEOUT_S) -> bytes:
        """Wait until the agent ends the session; return what came before the end."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(SessionClosed):
            while True:
                self._recv(deadline)
        return self.buf

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.chan.close()
        if self._own:
            self.transport.close()


def rpc(body: str, mid: str = "1") -> str:
    return f'<rpc message-id="{mid}" xmlns="{NC}">{body}</rpc>'


def check_reply(raw: bytes) -> etree._Element:
    """Parse a reply safely and check its shape: ``<ok/>``, ``<data>`` or ``<rpc-error>``s."""
    assert b"Traceback" not in raw and b"internal error" not in raw, raw[:500]
    root = etree.fromstring(raw, parser=_SAFE)
    assert root.tag == f"{{{NC}}}rpc-reply", raw[:300]
    kids = [etree.QName(c).localname for c in root]
    assert kids in (["ok"], ["data"]) or (kids and set(kids) == {"rpc-error"}), raw[:300]
    return root


def error_of(reply: etree._Element) -> dict[str, str]:
    """The first rpc-error's fields by local name (error-info children flattened in)."""
    err = reply.find(f"{{{NC}}}rpc-error")
    assert err is not None, etree.tostring(reply)[:300]
    out = {etree.QName(c).localname: (c.text or "") for c in err}
    info = err.find(f"{{{NC}}}error-info")
    for c in info if info is not None else []:
        out[etree.QName(c).localname] = c.text or ""
    return out


def is_ok(reply: etree._Element) -> bool:
    return [etree.QName(c).localname for c in reply] == ["ok"]


GET_RUNNING = "<get-config><source><running/></source></get-config>"
GET_CANDIDATE = "<get-config><source><candidate/></source></get-config>"


def edit(config_body: str, *, prefix: str = "") -> str:
    return (
        f"<edit-config><target><candidate/></target>{prefix}<config>{config_body}</config>"
        "</edit-config>"
    )


def describe(text: str, itf: str = "eth1") -> str:
    return edit(
        f'<interfaces xmlns="{IF}"><interface><name>{itf}</name><description>{text}'
        "</description></interface></interfaces>"
    )


# --------------------------------------------------------------------------------------------
# the device under attack


@pytest.fixture
def lab(tmp_path: Path, host_key: paramiko.PKey) -> Iterator[Lab]:
    """Two devices behind real agents on ports the system picks."""
    with start_lab(tmp_path, host_key, "linear,2") as running:
        yield running


@pytest.fixture(autouse=True)
def no_agent_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No hostile message may make the agent log an error (an unexpected exception)."""
    with caplog.at_level("ERROR", logger="netgpt"):
        yield
    assert not [r for r in caplog.records if r.name.startswith("netgpt")], caplog.text


def port(lab: Lab, name: str = "r1") -> int:
    return lab.agents[name].port


def assert_serving(lab: Lab, name: str = "r1") -> None:
    """A fresh session reads the unchanged config and validates; nothing is locked or dirty."""
    s = RawSession(port(lab, name))
    try:
        data = s.rpc(GET_RUNNING).find(f"{{{NC}}}data")
        assert data is not None and config_from_xml(data) == lab.initial(name)
        assert is_ok(s.rpc("<validate><source><running/></source></validate>", "2"))
    finally:
        s.close()
    lab.assert_pristine(name)


# --------------------------------------------------------------------------------------------
# 1. malformed XML, broken framing


def _garbage(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


MALFORMED: list[tuple[str, bytes]] = [
    ("truncated edit", rpc(describe("cut")).encode()[:-40]),
    ("unclosed tag", rpc("<get>").encode()[:-6]),
    ("mismatched end tag", f'<rpc message-id="1" xmlns="{NC}"><get></got></rpc>'.encode()),
    ("control character", rpc("<get>\x01</get>").encode()),
    ("NUL byte", rpc("<get>\x00</get>").encode()),
    ("character reference to NUL", rpc(describe("&#0;")).encode()),
    ("invalid UTF-8", rpc(describe("x")).encode().replace(b">x<", b">\xff\xfe\xc3\x28<")),
    ("overlong UTF-8", rpc(describe("x")).encode().replace(b">x<", b">\xc0\xaf<")),
    ("UTF-8 surrogate", rpc(describe("x")).encode().replace(b">x<", b">\xed\xa0\x80<")),
    ("random bytes", _garbage(512, 1)),
    ("random bytes in an rpc", rpc("<get>").encode() + _garbage(300, 2) + b"</get></rpc>"),
    ("not XML", b"show running-config"),
    ("whitespace only", b" \r\n\t "),
    ("two root elements", (rpc("<get/>") + rpc("<get/>", "2")).encode()),
    ("unbound prefix", b'<nc:rpc message-id="1"><nc:get/></nc:rpc>'),
    ("repeated attribute",
     f'<rpc message-id="1" message-id="2" xmlns="{NC}"><get/></rpc>'.encode()),
    ("late XML declaration", (rpc("<get/>") + '<?xml version="1.0"?>').encode()),
    ("lying encoding", ('<?xml version="1.0" encoding="UTF-16"?>' + rpc("<get/>")).encode()),
    ("unknown encoding", ('<?xml version="1.0" encoding="EBCDIC-XX"?>' + rpc("<get/>")).encode()),
    ("unterminated CDATA", rpc("<get><![CDATA[ x </get>").encode()),
    ("undefined entity", rpc(describe("&boom;")).encode()),
    ("wrong root", f'<hello xmlns="{NC}"><capabilities/></hello>'.encode()),
    ("rpc in another namespace", b'<rpc message-id="1" xmlns="urn:evil"><get/></rpc>'),
    ("rpc-reply to the server", f'<rpc-reply message-id="1" xmlns="{NC}"/>'.encode()),
]


def test_malformed_xml_gets_malformed_message_and_the_1_1_session_goes_on(lab: Lab) -> None:
    """Each well-framed but malformed message: malformed-message, and the session goes on."""
    other = RawSession(port(lab))  # a bystander session
    s = RawSession(port(lab))
    try:
        for label, payload in MALFORMED:
            s.send(payload)
            err = error_of(s.reply())
            assert (err["error-type"], err["error-tag"]) == ("rpc", "malformed-message"), label
            assert err["error-message"], label
            data = s.rpc(GET_CANDIDATE, "after").find(f"{{{NC}}}data")  # framing still in step
            assert data is not None and config_from_xml(data) == lab.initial("r1"), label
        assert other.rpc(GET_RUNNING).find(f"{{{NC}}}data") is not None
    finally:
        s.close()
        other.close()
    assert_serving(lab)


def test_malformed_xml_ends_only_that_1_0_session(lab: Lab) -> None:
    """On 1.0 a malformed or empty message ends that channel only, not its SSH connection."""
    transport = RawSession(port(lab)).transport  # one SSH connection, several channels
    sibling = RawSession(port(lab), transport=transport, version="1.0")
    try:
        for label, payload in [*MALFORMED[:6], ("empty message", b"")]:
            s = RawSession(port(lab), transport=transport, version="1.0")
            s.send(payload)
            assert s.wait_closed() == b"", label  # a 1.0 session ends unanswered
            s.close()
            data = sibling.rpc(GET_RUNNING, label.replace(" ", "-")).find(f"{{{NC}}}data")
            assert data is not None, label
        assert transport.is_active()
    finally:
        transport.close()
    assert_serving(lab)


BROKEN_FRAMING: list[tuple[str, bytes]] = [
    ("size not a number", b"\n#abc\n<rpc/>\n##\n"),
    ("size zero", b"\n#0\n\n##\n"),
    ("size with a leading zero", b"\n#07\n<rpc/>\n##\n"),
    ("size of 11 digits", b"\n#12345678901\n"),
    ("no newline before #", b"#6\n<rpc/>\n##\n"),
    ("no chunk at all", b"\n##\n"),
    ("bad end of chunks", b"\n#6\n<rpc/>\n#\n"),
    ("1.0 framing on a 1.1 session", rpc("<get/>").encode() + EOM),
    ("chunk shorter than announced", b"\n#8\n" + rpc(GET_RUNNING).encode() + b"\n##\n"),
    (
        "chunk longer than announced",
        b"\n#300\n" + rpc("<get/>").encode() + b"\n##\n" + b"\n#%d\n%s\n##\n"
        % (len(rpc(GET_RUNNING, "2")), rpc(GET_RUNNING, "2").encode()) + b" " * 300,
    ),
]


def test_broken_chunk_framing_is_answered_and_ends_only_that_session(lab: Lab) -> None:
    """A broken 1.1 chunk header: malformed-message, then that session (only) is closed."""
    other = RawSession(port(lab))
    try:
        for label, frames in BROKEN_FRAMING:
            s = RawSession(port(lab))
            s.send_raw(frames)
            err = error_of(s.reply())
            assert (err["error-type"], err["error-tag"]) == ("rpc", "malformed-message"), label
            assert s.wait_closed() == b"", label
            s.close()
            assert other.rpc(GET_RUNNING).find(f"{{{NC}}}data") is not None, label
    finally:
        other.close()
    assert_serving(lab)


def _hello(caps: str, doctype: str = "") -> bytes:
    return f'{doctype}<hello xmlns="{NC}"><capabilities>{caps}</capabilities></hello>'.encode()


def test_a_hostile_hello_gets_no_session(lab: Lab, tmp_path: Path) -> None:
    """Entities, garbage or a wrong hello: the session is closed unanswered, nothing fetched."""
    secret = tmp_path / "secret.txt"
    secret.write_text("NETGPT-HELLO-SECRET")
    cap = f"<capability>{BASE_11}</capability>"
    with _listener() as (http_port, connections):
        hellos = [
            ("billion laughs", _hello(cap + "<capability>&l9;</capability>", _laughs("hello"))),
            ("external file entity", _hello(
                cap + "<capability>&x;</capability>",
                f'<!DOCTYPE hello [<!ENTITY x SYSTEM "{secret.as_uri()}">]>')),
            ("external network entity", _hello(
                cap + "<capability>&x;</capability>",
                f'<!DOCTYPE hello [<!ENTITY x SYSTEM "http://127.0.0.1:{http_port}/x">]>')),
            ("garbage", _garbage(2000, 3)),
            ("invalid UTF-8", _hello(cap).replace(b"</hello>", b"\xff</hello>")),
            ("no base capability", _hello("<capability>urn:example:nothing</capability>")),
            ("a client session-id", _hello(cap).replace(b"</hello>", b"<session-id>7</session-id>"
                                                                      b"</hello>")),
            ("an rpc instead of a hello", rpc("<get/>").encode()),
        ]
        for label, hello in hellos:
            s = RawSession(port(lab), version=None)
            s.send_raw(hello + EOM)
            assert s.wait_closed() == b"", label
            s.close()
        assert connections == [], "the agent fetched an external entity"
    assert_serving(lab)


# --------------------------------------------------------------------------------------------
# 2. oversized messages


def _stream(s: RawSession, frames: Iterator[bytes]) -> None:
    """Send frames until the agent stops taking them (it closes the channel)."""
    with contextlib.suppress(OSError, EOFError):
        for frame in frames:
            s.send_raw(frame)


def _too_big(s: RawSession, started: float) -> None:
    err = error_of(s.reply())
    assert (err["error-type"], err["error-tag"]) == ("rpc", "too-big"), err
    assert str(MAX_MESSAGE_BYTES) in err["error-message"]
    assert s.wait_closed() == b""
    assert time.monotonic() - started < 15


def test_a_huge_chunk_header_is_refused_at_once(lab: Lab) -> None:
    """A chunk announced over the limit is refused before any of its data arrives."""
    for size in (4294967295, MAX_MESSAGE_BYTES + 1):
        s = RawSession(port(lab))
        started = time.monotonic()
        s.send_raw(b"\n#%d\n<rpc" % size)  # the announced data never comes
        _too_big(s, started)
        s.close()
    assert_serving(lab)


def test_a_multi_megabyte_chunked_edit_is_refused_with_bounded_memory(lab: Lab) -> None:
    """16 x the limit, in 64 KiB chunks; the agent stops reading at the limit."""
    other = RawSession(port(lab))
    s = RawSession(port(lab))
    head = rpc(describe("")).encode().split(b"</description>")[0]
    filler = b"x" * (1 << 16)

    def frames() -> Iterator[bytes]:
        yield b"\n#%d\n%s" % (len(head), head)
        for _ in range(16 * MAX_MESSAGE_BYTES // len(filler)):
            yield b"\n#%d\n%s" % (len(filler), filler)

    tracemalloc.start()
    try:
        started = time.monotonic()
        _stream(s, frames())
        _too_big(s, started)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        s.close()
    # both ends of the SSH connection live in this process: the agent's inbox and message (at
    # most twice the limit) plus paramiko's windows, far below the 64 MiB that were offered
    assert peak < 3 * MAX_MESSAGE_BYTES + (8 << 20), peak
    assert other.rpc(GET_RUNNING).find(f"{{{NC}}}data") is not None
    other.close()
    assert_serving(lab)


def test_oversized_1_0_messages_are_refused(lab: Lab) -> None:
    """On 1.0: an endless message and a complete one a byte over the limit are too-big."""
    # a stream that never ends its message
    s = RawSession(port(lab), version="1.0")
    started = time.monotonic()
    _stream(s, iter([b"<rpc>" + b"x" * (2 * MAX_MESSAGE_BYTES)]))
    _too_big(s, started)
    s.close()
    # a complete, well-formed edit-config one byte over the limit
    msg = rpc(describe("y")).encode()
    msg = msg.replace(b"</rpc>", b" " * (MAX_MESSAGE_BYTES + 1 - len(msg)) + b"</rpc>")
    assert len(msg) == MAX_MESSAGE_BYTES + 1
    s = RawSession(port(lab), version="1.0")
    started = time.monotonic()
    _stream(s, iter([msg + EOM]))
    _too_big(s, started)
    s.close()
    assert_serving(lab)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_a_message_of_exactly_the_limit_is_served(lab: Lab, version: str) -> None:
    """The limit is the documented one: a message of exactly MAX_MESSAGE_BYTES is served."""
    msg = rpc(GET_CANDIDATE).encode()
    comment = b"<!--" + b"c" * (MAX_MESSAGE_BYTES - len(msg) - 7) + b"-->"
    msg = msg.replace(b"<get-config>", b"<get-config>" + comment)
    assert len(msg) == MAX_MESSAGE_BYTES
    s = RawSession(port(lab), version=version)
    try:
        half = len(msg) // 2  # in two chunks on 1.1
        if version == "1.1":
            first, second = msg[:half], msg[half:]
            s.send_raw(b"\n#%d\n%s\n#%d\n%s\n##\n" % (half, first, len(second), second))
        else:
            s.send(msg)
        data = s.reply().find(f"{{{NC}}}data")
        assert data is not None and config_from_xml(data) == lab.initial("r1")
    finally:
        s.close()
    assert_serving(lab)


# --------------------------------------------------------------------------------------------
# 3. entities: expansion and external entities


@contextlib.contextmanager
def _listener() -> Iterator[tuple[int, list[object]]]:
    """A TCP port that records every connection made to it (an entity fetch would be one)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, addr = server.accept()
                connections.append(addr)
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], connections
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _laughs(root: str = "rpc", levels: int = 10) -> str:
    """A "billion laughs" DTD: ``&l9;`` would expand to 10**9 "lol"s."""
    ents = "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(levels)
    )
    return f"<!DOCTYPE {root} [{ents}]>"


def test_entity_expansion_and_external_entities_are_refused(lab: Lab, tmp_path: Path) -> None:
    """DTDs are refused: nothing expands, no file or URL is read, the session goes on."""
    secret = tmp_path / "secret.txt"
    secret.write_text("NETGPT-XXE-SECRET")
    markers = [b"NETGPT-XXE-SECRET", b"root:", b"lollollol"]
    with _listener() as (http_port, connections):
        cases = [
            ("billion laughs", _laughs() + rpc(describe("&l9;"))),
            ("quadratic blowup", f'<!DOCTYPE rpc [<!ENTITY a "{"a" * 50_000}">]>'
                                 + rpc(describe("&a;" * 50_000))),
            ("file entity", f'<!DOCTYPE rpc [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
                            + rpc(describe("&x;"))),
            ("/etc/passwd", '<!DOCTYPE rpc [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                            + rpc(describe("&x;"))),
            ("parameter entity", f'<!DOCTYPE rpc [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;]>'
                                 + rpc(describe("x"))),
            ("network entity", f'<!DOCTYPE rpc [<!ENTITY x SYSTEM "http://127.0.0.1:{http_port}/">]>'
                               + rpc(describe("&x;"))),
            ("external DTD", f'<!DOCTYPE rpc SYSTEM "http://127.0.0.1:{http_port}/nc.dtd">'
                             + rpc(describe("x"))),
            ("entity in a filter", _laughs() + rpc(
                f'<get-config><source><running/></source><filter><interfaces xmlns="{IF}">'
                "<interface><name>&l9;</name></interface></interfaces></filter></get-config>")),
        ]
        s = RawSession(port(lab))
        try:
            for label, msg in cases:
                started = time.monotonic()
                s.send(msg)
                raw_reply = s.read_message()
                assert time.monotonic() - started < 10, label
                assert len(raw_reply) < 4096, label  # nothing was expanded into the reply
                assert not any(m in raw_reply for m in markers), label
                err = error_of(check_reply(raw_reply))
                assert err["error-tag"] == "malformed-message", label
                why = err["error-message"].lower()  # refused, or caught by libxml2's own limits
                assert "doctype" in why or "entity amplification" in why, (label, why)
            # XInclude is not processed: the include stays an (unknown) element of a leaf
            s.send(rpc(describe(
                f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{secret.as_uri()}"'
                ' parse="text"/>')))
            raw_reply = s.read_message()
            assert not any(m in raw_reply for m in markers)
            assert error_of(check_reply(raw_reply))["error-tag"] == "bad-element"
            # the predefined entities and character references still work
            assert is_ok(s.rpc(describe("a &amp; b &lt;c&gt; &#x41;&#66;")))
            cand = config_from_xml(s.rpc(GET_CANDIDATE).find(f"{{{NC}}}data"))
            assert cand.interface("eth1").description == "a & b <c> AB"
            assert is_ok(s.rpc("<discard-changes/>"))
            for ds in (Datastore.RUNNING, Datastore.CANDIDATE):
                text = etree.tostring(s.rpc(f"<get-config><source><{ds}/></source></get-config>"))
                assert not any(m in text for m in markers)
        finally:
            s.close()
        assert connections == [], "the agent fetched an external entity or DTD"
    assert_serving(lab)


# --------------------------------------------------------------------------------------------
# 4. unknown namespaces and elements


def test_unknown_namespaces_and_elements_are_named_in_the_error(lab: Lab) -> None:
    """Unknown namespaces and elements: an rpc-error naming them; the config is unchanged."""
    itf = f'<interfaces xmlns="{IF}"><interface><name>eth1</name>'
    edits = [
        (edit('<interfaces xmlns="urn:evil:ns"><interface><name>eth1</name></interface>'
              "</interfaces>"), "unknown-element", "/interfaces", ["interfaces", "urn:evil:ns"]),
        (edit(f"{itf}<flux-capacitor>1</flux-capacitor></interface></interfaces>"),
         "unknown-element", "/interfaces/interface[name='eth1']/flux-capacitor",
         ["flux-capacitor", IF]),
        (edit(f'{itf}<e:mtu xmlns:e="urn:evil:aug">9000</e:mtu></interface></interfaces>'),
         "unknown-element", "/interfaces/interface[name='eth1']/mtu", ["mtu", "urn:evil:aug"]),
        (edit('<interfaces xmlns=""/>'), "unknown-element", "/interfaces", ["(none)"]),
        (edit("", prefix='<e:bogus xmlns:e="urn:evil"/>'), "unknown-element",
         "/rpc/edit-config/bogus", ["bogus"]),
        ('<get xmlns="urn:evil:ops"/>', "operation-not-supported", "/rpc/get",
         ["get", "urn:evil:ops"]),
        ('<get-config><source><running/></source><filter><interfaces xmlns="urn:evil:ns"/>'
         "</filter></get-config>", "unknown-namespace", "/rpc/get-config/filter/interfaces",
         ["interfaces", "urn:evil:ns"]),
        (f'<get><filter type="subtree">{itf}<e:x xmlns:e="urn:evil:ns"/></interface>'
         "</interfaces></filter></get>", "unknown-namespace",
         "/rpc/get/filter/interfaces/interface/x", ["urn:evil:ns"]),
    ]
    s = RawSession(port(lab))
    try:
        for body, tag, path, named in edits:
            err = error_of(s.rpc(body))
            assert (err["error-tag"], err.get("error-path")) == (tag, path), (body, err)
            assert all(n in err["error-message"] for n in named), (body, err)
        err = error_of(s.rpc(edits[6][0]))
        assert (err["bad-element"], err["bad-namespace"]) == ("interfaces", "urn:evil:ns")
        # an element of a known namespace that the device does not have selects nothing
        data = s.rpc(f'<get-config><source><running/></source><filter><interfaces xmlns="{IF}">'
                     "<widget/></interfaces></filter></get-config>").find(f"{{{NC}}}data")
        assert data is not None and len(data) == 0
        # an operation attribute of a foreign namespace is not a NETCONF operation
        reply = s.rpc(edit(f'<interfaces xmlns="{IF}"><interface xmlns:e="urn:evil" '
                           'e:operation="delete"><name>eth1</name></interface></interfaces>'))
        assert is_ok(reply)
        assert lab.candidate("r1") == lab.initial("r1")
    finally:
        s.close()
    assert_serving(lab)


# --------------------------------------------------------------------------------------------
# 5. deep nesting


def test_deep_nesting_is_refused_without_recursion(lab: Lab) -> None:
    """100k nested elements hit the parser's depth limit; nothing recurses in Python."""
    deep = "<a>" * 100_000 + "</a>" * 100_000
    s = RawSession(port(lab))
    try:
        for body in (
            f"<get>{deep}</get>",
            edit(f'<interfaces xmlns="{IF}">{deep}</interfaces>'),
            f"<get-config><source><running/></source><filter>{deep}</filter></get-config>",
        ):
            started = time.monotonic()
            err = error_of(s.rpc(body))
            assert (err["error-tag"], err["error-type"]) == ("malformed-message", "rpc")
            assert "depth" in err["error-message"].lower()
            assert time.monotonic() - started < 10
        # as deep as the parser allows: the schema and filter walkers stop early
        nested = "<b>" * 200 + "</b>" * 200
        err = error_of(s.rpc(edit(f'<interfaces xmlns="{IF}"><interface><name>eth1</name>'
                                  f"{nested}</interface></interfaces>")))
        assert err["error-tag"] == "unknown-element"
        data = s.rpc(f'<get><filter><interfaces xmlns="{IF}"><interface>{nested}</interface>'
                     "</interfaces></filter></get>").find(f"{{{NC}}}data")
        assert data is not None
        select = "(" * 20_000 + "1" + ")" * 20_000
        err = error_of(s.rpc(f'<get><filter type="xpath" select="{select}"/></get>'))
        assert err["error-tag"] == "invalid-value"
        assert s.rpc(GET_RUNNING).find(f"{{{NC}}}data") is not None
    finally:
        s.close()
    assert_serving(lab)


# --------------------------------------------------------------------------------------------
# 6. fuzz: random XML-ish bytes and mutated valid rpcs, one session, a fixed seed


_VALID_RPCS = [
    rpc("<get/>"),
    rpc(GET_RUNNING),
    rpc(GET_CANDIDATE),
    rpc(f'<get-config><source><running/></source><filter type="subtree"><interfaces xmlns="{IF}">'
        "<interface><name>eth1</name></interface></interfaces></filter></get-config>"),
    rpc(f'<get><filter type="xpath" xmlns:if="{IF}" select="/if:interfaces/if:interface'
        "[if:name='eth0']\"/></get>"),
    rpc(describe("fuzzed")),
    rpc(edit(f'<interfaces xmlns="{IF}" xmlns:nc="{NC}"><interface nc:operation="delete">'
             "<name>eth1</name></interface></interfaces>")),
    rpc(edit(f'<interfaces xmlns="{IF}"><interface><name>eth0</name><enabled>false</enabled>'
             "</interface></interfaces>", prefix="<test-option>test-only</test-option>")),
    rpc(f'<edit-config><target><candidate/></target><default-operation>replace'
        f'</default-operation><config><system xmlns="{NS.SYS}"><hostname>r1</hostname></system>'
        "</config></edit-config>"),
    rpc("<validate><source><candidate/></source></validate>"),
    rpc("<lock><target><candidate/></target></lock>"),
    rpc("<unlock><target><candidate/></target></unlock>"),
    rpc("<discard-changes/>"),
]
_TOKENS = [
    b"<", b">", b"</", b"/>", b"rpc", b"get", b"get-config", b"edit-config", b"config",
    b'message-id="7"', f'xmlns="{NC}"'.encode(), f'xmlns="{IF}"'.encode(), b"xmlns:x=\"urn:x\"",
    b"x:", b"<!DOCTYPE rpc [", b"<!ENTITY e SYSTEM \"file:///etc/passwd\">", b"]>", b"&e;",
    b"&amp;", b"&#0;", b"&#x110000;", b"<![CDATA[", b"]]>", b"<!--", b"-->", b"<?xml ",
    b"version=\"1.0\"?>", b"\xff", b"\xc0\x80", b"\x00", b"=", b"'", b'"', b" ", b"\n",
    b"]]>]]>", b"\n##\n", b"\n#9\n", b"<interfaces>", b"<name>eth1</name>", b"<description>",
]

_insertion = st.one_of(st.sampled_from(_TOKENS), st.binary(min_size=1, max_size=8))
xmlish = st.lists(
    st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=12)), min_size=1, max_size=40
).map(b"".join)


@st.composite
def mutated_rpc(draw: st.DrawFn) -> bytes:
    msg = bytearray(draw(st.sampled_from(_VALID_RPCS)).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(msg)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate"]))
        span = draw(st.integers(1, 16))
        if kind == "delete":
            del msg[at:at + span]
        elif kind == "insert":
            msg[at:at] = draw(_insertion)
        elif kind == "replace":
            msg[at:at + span] = draw(st.binary(min_size=1, max_size=span))
        elif kind == "duplicate":
            msg[at:at] = msg[max(0, at - span):at]
        else:
            del msg[at:]
    return bytes(msg)


def test_fuzzed_messages_get_a_reply_or_a_closed_session(lab: Lab) -> None:
    """Seeded fuzz: each message gets a well-formed rpc-reply or ends its session."""
    transport = RawSession(port(lab)).transport
    state: dict[str, RawSession] = {"s": RawSession(port(lab), transport=transport)}
    outcomes = {"reply": 0, "closed": 0}

    @settings(
        derandomize=True, database=None, max_examples=150, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(message=st.one_of(xmlish, mutated_rpc()), raw=st.integers(0, 9))
    def one_message(message: bytes, raw: int) -> None:
        if raw == 0:  # a fresh 1.0 session gets the bytes unframed, then end of input
            s = RawSession(port(lab), transport=transport, version="1.0")
            with contextlib.suppress(OSError):
                s.send_raw(message)
                s.chan.shutdown_write()
            rest = s.wait_closed()
            for part in rest.split(EOM)[:-1]:
                check_reply(part.strip())
            s.close()
            outcomes["closed"] += 1
            return
        s = state["s"]
        try:
            s.send(message or b" ")
            s.reply()
            outcomes["reply"] += 1
        except (SessionClosed, OSError):
            outcomes["closed"] += 1
            s.close()
            state["s"] = RawSession(port(lab), transport=transport)

    try:
        one_message()
        assert outcomes["reply"] > 50, outcomes
        assert lab.running("r1") == lab.initial("r1")
        assert lab.backend.effective("r1") == lab.initial("r1")
        state["s"].close()  # its locks go, and its candidate edits if it held the lock
        deadline = time.monotonic() + TIMEOUT_S
        while lab.devices["r1"].lock_owner(Datastore.CANDIDATE) is not None:
            assert time.monotonic() < deadline, "the closed session kept its lock"
            time.sleep(0.05)
        s = RawSession(port(lab), transport=transport)
        assert is_ok(s.rpc("<discard-changes/>"))  # fuzzed edits of the candidate go away
        s.close()
    finally:
        transport.close()
    assert_serving(lab)
