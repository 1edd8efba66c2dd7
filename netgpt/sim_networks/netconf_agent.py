"""The NETCONF front of a device agent: NETCONF 1.0/1.1 over SSH on one loopback port.

:class:`NetconfAgent` serves one :class:`~netgpt.sim_networks.device.Device` (running +
candidate datastores, locks, confirmed commit) to NETCONF clients such as ncclient. It is built
on the PyPI ``netconf`` 2.1 server library (its session class does the hello exchange, the
1.0/1.1 framing and the per-session reader thread) and ``paramiko`` for SSH. What this module
adds, and why:

* **Binding**: ``sshutil`` 1.5.0 binds ``::`` (every address) and loads host keys from files, so
  :class:`_LoopbackServer` opens its own socket on the given address (127.0.0.1 by default) and
  fails at once with :class:`~netgpt.errors.PortInUseError` when the port is taken. It leans on
  ``netconf`` 2.1 / ``sshutil`` 1.5.0 internals (pinned in ``pyproject.toml``).
* **Authentication**: a ``paramiko.ServerInterface`` of our own (password, and public keys of
  any type paramiko knows: ed25519, ECDSA, RSA) instead of the library's one-user controllers.
* **Dispatch**: ``netconf`` 2.1 mishandles ``<lock>``/``<unlock>`` when its methods class is
  subclassed, closes the session on malformed XML, cannot report error-path/session-id properly and
  parses with entity resolution on. :meth:`_AgentSession._reader_handle_message` replaces its
  dispatcher: every failure becomes a proper ``<rpc-error>`` (error-type, error-tag, error-path,
  error-message, error-info), an unexpected exception becomes ``operation-failed`` without a
  traceback on the wire, and nothing a client sends can stop the server.
* **End of stream**: ``netconf`` 2.1's framing loops forever when a channel closes mid-message;
  :class:`_ChannelStream` turns end-of-stream into ``ChannelClosed``.
* **Framing**: ``netconf`` 2.1 buffers a message of any size (a 1.1 chunk header may announce
  4 GiB), parses the client's hello with its default (entity-expanding) parser, and leaves a
  session open but deaf after an empty message. :meth:`_AgentSession._receive_message` reads
  both framings itself: a message over :data:`MAX_MESSAGE_BYTES` is answered ``too-big``, a
  broken 1.1 chunk header ``malformed-message``, and that session (only) is closed; a hello
  carrying a DOCTYPE is refused; whenever the reader stops, the session is closed.

Operations: ``get``, ``get-config`` (running, candidate; subtree and XPath 1.0 filters),
``edit-config`` (candidate; default-operation merge/replace/none; test-option; error-option
stop-on-error/rollback-on-error, both all-or-nothing), ``validate`` (candidate, running or an
inline ``<config>``), ``commit`` (``confirmed``, ``confirm-timeout``, ``persist``,
``persist-id``), ``cancel-commit``, ``discard-changes``, ``lock``/``unlock`` (running,
candidate), ``close-session`` and ``kill-session``. When a session ends, its locks are released,
its unconfirmed (non-persist) confirmed commit is rolled back and, if it held the candidate lock,
its uncommitted candidate changes are discarded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import errno
import hmac
import logging
import re
import selectors
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from lxml import etree
from netconf.error import ChannelClosed, SessionError
from netconf.server import NetconfServerSession, NetconfSSHServer

from netgpt import yang_xml
from netgpt.errors import ConfigValidationError, NetworkRuntimeError, PortInUseError
from netgpt.inventory import NetconfCredentials
from netgpt.sim_networks.device import Datastore, Device, DeviceOperationError
from netgpt.yang_xml import (
    NC_NS,
    NS,
    EditOperation,
    apply_edit,
    config_to_xml,
    state_to_xml,
)

__all__ = ["CAPABILITIES", "MAX_MESSAGE_BYTES", "NetconfAgent"]

log = logging.getLogger(__name__)

_CAP = "urn:ietf:params:netconf:capability:"
#: Capabilities beyond base 1.0/1.1 (which the ``netconf`` library sends itself), in hello order.
CAPABILITIES: tuple[str, ...] = (
    f"{_CAP}candidate:1.0",
    f"{_CAP}confirmed-commit:1.1",
    f"{_CAP}validate:1.1",
    f"{_CAP}rollback-on-error:1.0",
    f"{_CAP}xpath:1.0",
    *(f"{ns}?module={name}" for name, ns in NS.MODULES.items()),
)

#: The largest NETCONF message, in bytes without its framing, the agent takes from a client.
#: A device config is a few KiB; a bigger message is answered with a ``too-big`` rpc-error and
#: its session is closed, so a session never buffers more than this plus one read.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

_QUIET_LOGGERS = ("netconf", "sshutil", "paramiko.transport")
_RECV_BYTES = 64 * 1024
_EOM = b"]]>]]>"  # NETCONF 1.0 end-of-message
_END_OF_CHUNKS = b"\n##\n"  # NETCONF 1.1 (RFC 6242 section 4.2)
_CHUNK_HEADER = re.compile(rb"\n#([1-9][0-9]{0,9})\n")
_CHUNK_HEADER_START = re.compile(rb"\n(?:#(?:#|[1-9][0-9]{0,9})?)?")  # an incomplete header
_SUBSYSTEM_WAIT_S = 10.0
_JOIN_S = 2.0


def _q(name: str) -> str:
    return f"{{{NC_NS}}}{name}"


def _quiet_library_loggers() -> None:
    """Silence ``netconf`` (lock/unlock and deletions at ERROR) and paramiko's auth failures."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


# --------------------------------------------------------------------------------------------
# rpc-error


@dataclass(eq=False)
class _RpcFailure(Exception):
    """An ``<rpc-error>`` to send (RFC 6241 section 4.3 and appendix A)."""

    tag: str
    message: str
    error_type: str = "protocol"  # transport | rpc | protocol | application
    path: str = ""
    info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def element(self) -> etree._Element:
        """Build the ``<rpc-error>`` element, children in the order RFC 6241 gives."""
        err = etree.Element(_q("rpc-error"))
        etree.SubElement(err, _q("error-type")).text = self.error_type
        etree.SubElement(err, _q("error-tag")).text = self.tag
        etree.SubElement(err, _q("error-severity")).text = "error"
        if self.path:
            etree.SubElement(err, _q("error-path")).text = self.path
        msg = etree.SubElement(err, _q("error-message"))
        msg.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        msg.text = self.message
        if self.info:
            info = etree.SubElement(err, _q("error-info"))
            for key, value in self.info.items():
                etree.SubElement(info, _q(key)).text = value
        return err


def _failure_from(exc: ConfigValidationError) -> _RpcFailure:
    """Map a model/device error to an rpc-error; protocol-level device refusals keep their tag."""
    if isinstance(exc, DeviceOperationError):
        info = {"session-id": str(exc.session)} if exc.session is not None else {}
        return _RpcFailure(exc.tag, exc.message, "protocol", exc.path, info)
    return _RpcFailure(exc.tag, exc.message, "application", exc.path)


# --------------------------------------------------------------------------------------------
# filters (RFC 6241 section 6 subtree filtering; section 8.9 XPath)


def _tag_matches(filter_el: etree._Element, data_el: etree._Element) -> bool:
    fq, dq = etree.QName(filter_el), etree.QName(data_el)
    if fq.localname != dq.localname:
        return False
    return fq.namespace is None or fq.namespace == dq.namespace


def _elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _content(el: etree._Element) -> str | None:
    """Return a filter leaf's match value, or ``None`` for a selection/containment node."""
    if _elements(el):
        return None
    text = (el.text or "").strip()
    return text or None


def _mark(
    data_el: etree._Element,
    filters: list[etree._Element],
    full: set[etree._Element],
    keep: set[etree._Element],
) -> bool:
    """Mark what a filter sibling set selects below ``data_el``; ``False`` if it selects nothing.

    ``full`` collects nodes selected with their whole subtree, ``keep`` the ancestors on the
    way. Content match nodes all have to match; with only content match nodes the whole entry is
    selected; otherwise the matched content leaves plus whatever the selection and containment
    nodes select.
    """
    if not filters:
        full.add(data_el)
        return True
    content = [(f, v) for f in filters if (v := _content(f)) is not None]
    others = [f for f in filters if _content(f) is None]
    for f, value in content:
        if not any(_tag_matches(f, c) and (c.text or "").strip() == value for c in data_el):
            return False
    if not others:
        full.add(data_el)
        return True
    selected = False
    for c in _elements(data_el):
        if any(_tag_matches(f, c) for f, _ in content):
            full.add(c)
    for f in others:
        sub = _elements(f)
        for c in _elements(data_el):
            if not _tag_matches(f, c):
                continue
            if not sub:
                full.add(c)
                selected = True
            elif _mark(c, sub, full, keep):
                keep.add(c)
                selected = True
    return selected or bool(content)


def _list_keys() -> dict[tuple[str, str], tuple[str, ...]]:
    """Key leaf names of every list in the device schema, by the list element's (ns, name)."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}

    def walk(node: Any) -> None:
        for (ns, name), child in node.children.items():
            if child.kind == "list":
                out[(ns, name)] = child.keys
            walk(child)

    walk(yang_xml._SCHEMA)
    return out


_LIST_KEYS = _list_keys()


def _prune(
    el: etree._Element, full: set[etree._Element], keep: set[etree._Element]
) -> etree._Element:
    """Copy ``el`` with only the selected descendants; a kept list entry keeps its keys too."""
    out = etree.Element(el.tag, attrib=dict(el.attrib), nsmap=el.nsmap)
    out.text = el.text
    q = etree.QName(el)
    keys = _LIST_KEYS.get((q.namespace or "", q.localname), ())
    for c in _elements(el):
        if c in full or (keys and etree.QName(c).localname in keys):
            out.append(copy.deepcopy(c))
        elif c in keep:
            out.append(_prune(c, full, keep))
    return out


_DATA_NAMESPACES = frozenset({*NS.MODULES.values(), NC_NS})


def _check_filter_namespaces(spec: etree._Element) -> None:
    """Refuse a subtree filter naming a namespace of no module of this device.

    Such a filter could only select nothing; ``unknown-namespace`` (RFC 6241 appendix A) tells
    the client that its namespace is wrong rather than that the data is absent.
    """
    for el in spec.iterdescendants():
        if not isinstance(el.tag, str):
            continue
        q = etree.QName(el)
        if q.namespace is None or q.namespace in _DATA_NAMESPACES:
            continue
        names = [etree.QName(a).localname for a in reversed(list(el.iterancestors()))]
        raise _RpcFailure(
            "unknown-namespace",
            f"the filter names <{q.localname}> in namespace {q.namespace!r}, which this device "
            f"does not implement; its modules are {', '.join(sorted(NS.MODULES))}",
            path="/" + "/".join([*names, q.localname]),
            info={"bad-element": q.localname, "bad-namespace": q.namespace},
        )


def _subtree_filter(data: etree._Element, spec: etree._Element) -> etree._Element:
    _check_filter_namespaces(spec)
    filters = _elements(spec)
    full: set[etree._Element] = set()
    keep: set[etree._Element] = set()
    if not filters or not _mark(data, filters, full, keep):
        return etree.Element(data.tag, nsmap=data.nsmap)  # an empty filter selects nothing
    if data in full:
        return copy.deepcopy(data)
    return _prune(data, full, keep)


def _node_element(node: object) -> etree._Element | None:
    """Return the element an XPath result is, or holds it (text and attribute results)."""
    if isinstance(node, etree._Element):
        return node if isinstance(node.tag, str) else None
    getparent = getattr(node, "getparent", None)  # lxml's "smart strings" know their element
    parent = getparent() if callable(getparent) else None
    return parent if isinstance(parent, etree._Element) else None


def _xpath_filter(data: etree._Element, select: str, nsmap: dict[str, str]) -> etree._Element:
    """Select what ``select`` addresses, with its ancestors; each top node is an XPath root."""
    try:
        expr = etree.XPath(select, namespaces=nsmap)
    except etree.XPathSyntaxError as exc:
        raise _RpcFailure(
            "invalid-value", f"the XPath select {select!r} is not valid XPath 1.0 ({exc})",
            path="/rpc/filter/@select",
        ) from None
    out = etree.Element(data.tag, nsmap=data.nsmap)
    for top in _elements(data):
        root = copy.deepcopy(top)  # a deep copy is its own document: '/' is above the top node
        try:
            found = expr(root)
        except etree.XPathError as exc:
            raise _RpcFailure(
                "invalid-value", f"the XPath select {select!r} cannot be evaluated ({exc}); "
                "declare every prefix it uses on the <filter> element",
                path="/rpc/filter/@select",
            ) from None
        if not isinstance(found, list):
            raise _RpcFailure(
                "invalid-value",
                f"the XPath select {select!r} yields a {type(found).__name__}, not a node-set",
                path="/rpc/filter/@select",
            )
        full: set[etree._Element] = set()
        keep: set[etree._Element] = set()
        for node in found:
            el = _node_element(node)
            if el is None:
                continue
            full.add(el)
            parent = el.getparent()
            while parent is not None:
                keep.add(parent)
                parent = parent.getparent()
        if root in full:
            out.append(root)
        elif root in keep:
            out.append(_prune(root, full, keep))
    return out


def _apply_filter(data: etree._Element, spec: etree._Element | None) -> etree._Element:
    if spec is None:
        return data
    kind = spec.get("type", spec.get(_q("type"), "subtree"))
    if kind == "subtree":
        return _subtree_filter(data, spec)
    if kind == "xpath":
        select = spec.get("select", spec.get(_q("select")))
        if select is None:
            raise _RpcFailure(
                "missing-attribute", "an XPath filter needs a select attribute",
                path="/rpc/filter", info={"bad-attribute": "select", "bad-element": "filter"},
            )
        nsmap = {k: v for k, v in spec.nsmap.items() if k}
        return _xpath_filter(data, select, nsmap)
    raise _RpcFailure(
        "bad-attribute", f"filter type {kind!r} is not supported; use subtree or xpath",
        path="/rpc/filter/@type", info={"bad-attribute": "type", "bad-element": "filter"},
    )


# --------------------------------------------------------------------------------------------
# RPC handlers


def _params(op: etree._Element, allowed: Iterable[str]) -> dict[str, etree._Element]:
    """Return the operation's parameters by local name; unknown or repeated ones are errors."""
    name = etree.QName(op).localname
    known = set(allowed)
    out: dict[str, etree._Element] = {}
    for child in _elements(op):
        q = etree.QName(child)
        if q.namespace != NC_NS or q.localname not in known:
            raise _RpcFailure(
                "unknown-element",
                f"<{name}> has no parameter {q.localname!r}"
                + (f"; it takes {', '.join(sorted(known))}" if known else ""),
                path=f"/rpc/{name}/{q.localname}", info={"bad-element": q.localname},
            )
        if q.localname in out:
            raise _RpcFailure(
                "bad-element", f"<{name}> repeats the parameter {q.localname!r}",
                path=f"/rpc/{name}/{q.localname}", info={"bad-element": q.localname},
            )
        out[q.localname] = child
    return out


def _required(params: dict[str, etree._Element], op: str, name: str) -> etree._Element:
    if name not in params:
        raise _RpcFailure(
            "missing-element", f"<{op}> needs a <{name}> parameter",
            path=f"/rpc/{op}", info={"bad-element": name},
        )
    return params[name]


def _datastore(param: etree._Element, op: str) -> Datastore:
    pname = etree.QName(param).localname
    kids = _elements(param)
    if len(kids) != 1:
        raise _RpcFailure(
            "missing-element" if not kids else "bad-element",
            f"<{pname}> of <{op}> must hold exactly one datastore: <running/> or <candidate/>",
            path=f"/rpc/{op}/{pname}", info={"bad-element": pname},
        )
    q = etree.QName(kids[0])
    if q.namespace == NC_NS and q.localname in ("running", "candidate"):
        return Datastore(q.localname)
    if q.namespace == NC_NS and q.localname == "url":
        raise _RpcFailure(
            "operation-not-supported", "this device has no :url capability",
            path=f"/rpc/{op}/{pname}/url",
        )
    raise _RpcFailure(
        "invalid-value",
        f"datastore {q.localname!r} does not exist on this device; use running or candidate",
        path=f"/rpc/{op}/{pname}/{q.localname}", info={"bad-element": q.localname},
    )


def _choice(param: etree._Element | None, op: str, values: Sequence[str], default: str) -> str:
    if param is None:
        return default
    value = (param.text or "").strip()
    if value not in values:
        pname = etree.QName(param).localname
        raise _RpcFailure(
            "invalid-value", f"<{pname}> {value!r} is not one of {', '.join(values)}",
            path=f"/rpc/{op}/{pname}", info={"bad-element": pname},
        )
    return value


def _text_param(param: etree._Element | None) -> str | None:
    if param is None:
        return None
    return (param.text or "").strip()


class _DeviceRpcs:
    """The NETCONF operations of one device. Methods take the session id and the operation."""

    def __init__(self, device: Device, server: _LoopbackServer | None = None) -> None:
        self.device = device
        self.server = server
        self.handlers: dict[str, Callable[[int, etree._Element], etree._Element | None]] = {
            "get": self.get,
            "get-config": self.get_config,
            "edit-config": self.edit_config,
            "validate": self.validate,
            "commit": self.commit,
            "cancel-commit": self.cancel_commit,
            "discard-changes": self.discard_changes,
            "lock": self.lock,
            "unlock": self.unlock,
            "kill-session": self.kill_session,
        }

    # netconf library hook: called while building the server <hello>
    def nc_append_capabilities(self, capabilities: etree._Element) -> None:
        """Append this agent's capabilities to the hello's ``<capabilities>``."""
        for uri in CAPABILITIES:
            etree.SubElement(capabilities, _q("capability")).text = uri

    def get(self, sid: int, op: etree._Element) -> etree._Element:
        """``<get>``: running config plus interface operational state."""
        params = _params(op, ("filter",))
        data = state_to_xml(
            config_to_xml(self.device.config(Datastore.RUNNING)), self.device.interface_states()
        )
        return _apply_filter(data, params.get("filter"))

    def get_config(self, sid: int, op: etree._Element) -> etree._Element:
        """``<get-config>`` of running or candidate."""
        params = _params(op, ("source", "filter"))
        source = _datastore(_required(params, "get-config", "source"), "get-config")
        data = config_to_xml(self.device.config(source))
        return _apply_filter(data, params.get("filter"))

    def edit_config(self, sid: int, op: etree._Element) -> None:
        """``<edit-config>`` on the candidate; all-or-nothing whatever the error-option."""
        params = _params(
            op, ("target", "default-operation", "test-option", "error-option", "config", "url")
        )
        target = _datastore(_required(params, "edit-config", "target"), "edit-config")
        default_op = _choice(
            params.get("default-operation"), "edit-config", ("merge", "replace", "none"), "merge"
        )
        test = _choice(
            params.get("test-option"), "edit-config", ("test-then-set", "set", "test-only"),
            "test-then-set",
        )
        error_option = _choice(
            params.get("error-option"), "edit-config",
            ("stop-on-error", "rollback-on-error", "continue-on-error"), "stop-on-error",
        )
        if error_option == "continue-on-error":
            raise _RpcFailure(
                "operation-not-supported",
                "error-option continue-on-error is not supported: edits are all-or-nothing; use "
                "rollback-on-error or stop-on-error",
                path="/rpc/edit-config/error-option",
            )
        if "url" in params:
            raise _RpcFailure(
                "operation-not-supported", "this device has no :url capability",
                path="/rpc/edit-config/url",
            )
        config = _required(params, "edit-config", "config")
        self.device.edit_config(
            target, config, sid, default_operation=EditOperation(default_op),
            test_only=test == "test-only",
        )
        return None

    def validate(self, sid: int, op: etree._Element) -> None:
        """``<validate>`` a datastore or an inline ``<config>`` (a whole configuration)."""
        params = _params(op, ("source",))
        source = _required(params, "validate", "source")
        kids = _elements(source)
        if len(kids) == 1 and etree.QName(kids[0]) == etree.QName(NC_NS, "config"):
            running = self.device.config(Datastore.RUNNING)
            proposed = apply_edit(running, kids[0], default_operation=EditOperation.REPLACE)
            self.device.check(proposed)
            return None
        self.device.validate(_datastore(source, "validate"))
        return None

    def commit(self, sid: int, op: etree._Element) -> None:
        """``<commit>``, confirmed or confirming (RFC 6241 8.3, 8.4)."""
        params = _params(op, ("confirmed", "confirm-timeout", "persist", "persist-id"))
        confirmed = "confirmed" in params
        timeout_txt = _text_param(params.get("confirm-timeout"))
        persist = _text_param(params.get("persist"))
        if not confirmed and (timeout_txt is not None or persist is not None):
            which = "confirm-timeout" if timeout_txt is not None else "persist"
            raise _RpcFailure(
                "missing-element", f"<{which}> is only allowed with <confirmed/>",
                path=f"/rpc/commit/{which}", info={"bad-element": "confirmed"},
            )
        timeout = 600
        if timeout_txt is not None:
            try:
                timeout = int(timeout_txt)
            except ValueError:
                raise _RpcFailure(
                    "invalid-value",
                    f"confirm-timeout {timeout_txt!r} is not a number of seconds",
                    error_type="protocol", path="/rpc/commit/confirm-timeout",
                ) from None
        self.device.commit(
            sid, confirmed=confirmed, confirm_timeout_s=timeout, persist=persist or None,
            persist_id=_text_param(params.get("persist-id")),
        )
        return None

    def cancel_commit(self, sid: int, op: etree._Element) -> None:
        """``<cancel-commit>``: roll the pending confirmed commit back now."""
        params = _params(op, ("persist-id",))
        self.device.cancel_commit(sid, persist_id=_text_param(params.get("persist-id")))
        return None

    def discard_changes(self, sid: int, op: etree._Element) -> None:
        """``<discard-changes>``: the candidate becomes the running config again."""
        _params(op, ())
        self.device.copy_running_to_candidate(sid)
        return None

    def lock(self, sid: int, op: etree._Element) -> None:
        """``<lock>`` running or candidate."""
        params = _params(op, ("target",))
        self.device.lock(_datastore(_required(params, "lock", "target"), "lock"), sid)
        return None

    def unlock(self, sid: int, op: etree._Element) -> None:
        """``<unlock>`` running or candidate."""
        params = _params(op, ("target",))
        self.device.unlock(_datastore(_required(params, "unlock", "target"), "unlock"), sid)
        return None

    def kill_session(self, sid: int, op: etree._Element) -> None:
        """``<kill-session>``: end another session (locks released, confirmed commit undone)."""
        params = _params(op, ("session-id",))
        raw = _text_param(_required(params, "kill-session", "session-id")) or ""
        try:
            victim = int(raw)
        except ValueError:
            victim = -1
        if victim == sid:
            raise _RpcFailure(
                "invalid-value", "kill-session cannot end the session that sends it; use "
                "close-session", path="/rpc/kill-session/session-id",
            )
        session = self.server.session(victim) if self.server is not None else None
        if session is None:
            raise _RpcFailure(
                "invalid-value", f"no session {raw!r} is open on this device",
                path="/rpc/kill-session/session-id",
            )
        session.close()
        return None

    def session_ended(self, sid: int) -> None:
        """Release ``sid``'s locks, roll back its unconfirmed commit, drop its candidate edits."""
        held_candidate = self.device.lock_owner(Datastore.CANDIDATE) == sid
        self.device.session_closed(sid)
        if held_candidate:
            try:
                self.device.copy_running_to_candidate(sid)
            except DeviceOperationError as exc:  # another session took the lock meanwhile
                log.debug("%s: candidate of closed session %s kept: %s", self.device.name, sid, exc)


# --------------------------------------------------------------------------------------------
# session, connection and server


class _ChannelStream:
    """A paramiko channel whose ``recv`` raises ``ChannelClosed`` at end of stream.

    ``netconf`` 2.1's framing appends ``recv`` results in a loop without checking for ``b''``,
    which spins forever once a client goes away in the middle of a message.
    """

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def recv(self, size: int) -> bytes:
        data: bytes = self._channel.recv(size)
        if not data:
            raise ChannelClosed(self)
        return data

    def sendall(self, data: bytes) -> None:
        self._channel.sendall(data)

    def close(self) -> None:
        self._channel.close()

    def is_active(self) -> bool:
        transport = self._channel.get_transport()
        return bool(transport is not None and transport.is_active() and not self._channel.closed)


def _parse_message(msg: str) -> etree._Element:
    """Parse one message with entities, DTDs and the network off; a DOCTYPE is an error.

    ``msg`` holds the received bytes decoded with ``surrogateescape``: bytes that are not UTF-8
    reach lxml as they came and make the message not well-formed.
    """
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    root = etree.fromstring(msg.strip().encode("utf-8", "surrogateescape"), parser=parser)
    if root.getroottree().docinfo.doctype:
        raise etree.XMLSyntaxError("a NETCONF message must not carry a DOCTYPE", 0, 1, 1)
    return root


class _Refused(SessionError):
    """A message the session cannot take in: answered where it can be, then the session ends."""

    def __init__(self, tag: str, why: str) -> None:
        super().__init__(why)
        self.tag = tag
        self.why = why


class _AgentSession(NetconfServerSession):
    """One NETCONF session. The library does the hello; we do the framing and dispatch the RPCs."""

    def __init__(self, channel: paramiko.Channel, server: _LoopbackServer) -> None:
        self._close_lock = threading.Lock()
        self._ended = False
        self._stream = _ChannelStream(channel)
        self._inbox = bytearray()  # received, not yet taken: at most a message plus one read
        super().__init__(self._stream, server, None, False)
        server.session_started(self)

    @property
    def ended(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._ended

    # -- framing (RFC 6242), bounded -----------------------------------------------------------

    def _receive_message(self) -> str | None:
        """Return the next message (the hello first), or ``None`` once the session is stopping.

        Replaces the library's reader, which buffers without limit. Raises :class:`_Refused`
        (after answering it) for a message over :data:`MAX_MESSAGE_BYTES`, a broken 1.1 chunk
        header, an empty message or a hello with a DOCTYPE, and ``ChannelClosed`` at end of
        stream; either ends the session.
        """
        with self.slock:
            if self.reader_thread is not None and not self.reader_thread.keep_running:
                return None
        try:
            raw = self._read_chunked() if self.new_framing else self._read_until_eom()
            if not raw:
                raise _Refused("malformed-message", "the message is empty")
            msg = raw.decode("utf-8", "surrogateescape")
            if not self.session_open:
                try:
                    _parse_message(msg)
                except etree.XMLSyntaxError as exc:
                    raise _Refused("malformed-message", f"the hello is refused ({exc})") from None
        except _Refused as refusal:
            self._refuse(refusal)
            raise
        return msg

    def _fill(self) -> None:
        self._inbox += self._stream.recv(_RECV_BYTES)

    def _too_big(self, size: int) -> _Refused:
        return _Refused(
            "too-big",
            f"the message has {size} bytes or more; this device takes at most "
            f"{MAX_MESSAGE_BYTES} bytes per message (send smaller edits)",
        )

    def _read_until_eom(self) -> bytes:
        """NETCONF 1.0: everything up to ``]]>]]>``."""
        inbox, start = self._inbox, 0
        while (end := inbox.find(_EOM, start)) < 0:
            start = max(0, len(inbox) - len(_EOM) + 1)  # the marker may straddle two reads
            if start > MAX_MESSAGE_BYTES:
                raise self._too_big(start)
            self._fill()
        if end > MAX_MESSAGE_BYTES:
            raise self._too_big(end)
        msg = bytes(inbox[:end])
        del inbox[: end + len(_EOM)]
        return msg

    def _read_chunked(self) -> bytes:
        """NETCONF 1.1: chunks up to end-of-chunks; no chunk is read past the size limit."""
        msg = bytearray()
        while (size := self._read_chunk_header()) is not None:
            if len(msg) + size > MAX_MESSAGE_BYTES:
                raise self._too_big(len(msg) + size)
            while len(self._inbox) < size:
                self._fill()
            msg += self._inbox[:size]
            del self._inbox[:size]
        if not msg:
            raise _Refused("malformed-message", "a chunked message needs at least one chunk")
        return bytes(msg)

    def _read_chunk_header(self) -> int | None:
        """Return the next chunk's size, or ``None`` at end-of-chunks."""
        inbox = self._inbox
        while True:
            if inbox.startswith(_END_OF_CHUNKS):
                del inbox[: len(_END_OF_CHUNKS)]
                return None
            if match := _CHUNK_HEADER.match(inbox):
                size = int(match.group(1))  # read it before the match's buffer changes
                del inbox[: match.end()]
                return size
            if inbox and not _CHUNK_HEADER_START.fullmatch(inbox):
                raise _Refused(
                    "malformed-message",
                    f"bad chunk header {bytes(inbox[:24])!r}; RFC 6242 wants '\\n#<size>\\n' "
                    "with size 1..4294967295, or '\\n##\\n'",
                )
            self._fill()

    def _refuse(self, refusal: _Refused) -> None:
        """Answer a refused message where the client can read it (not before the hello)."""
        log.debug("session %s: ending the session: %s", self.session_id, refusal.why)
        if not self.session_open or not (self.new_framing or refusal.tag == "too-big"):
            return  # a malformed message ends a 1.0 session unanswered, as in _malformed
        reply = etree.Element(_q("rpc-reply"), nsmap={None: NC_NS})
        reply.append(_RpcFailure(refusal.tag, refusal.why, "rpc").element())
        try:
            self.send_message(etree.tostring(reply, encoding="unicode"))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("session %s: could not send the refusal: %s", self.session_id, exc)

    def _reader_exits(self) -> None:
        """The reader thread stops (end of stream, a refusal, close): end the session too."""
        self.close()

    # -- dispatch ----------------------------------------------------------------------------

    def _reader_handle_message(self, msg: str) -> None:
        sid = self.session_id
        if not self.session_open or sid is None:
            return
        try:
            rpc = _parse_message(msg)
        except etree.XMLSyntaxError as exc:
            self._malformed(f"the message is not well-formed XML ({exc})")
            return
        if etree.QName(rpc) != etree.QName(NC_NS, "rpc"):
            self._malformed(f"expected <rpc> in {NC_NS}, got <{etree.QName(rpc).localname}>")
            return
        if rpc.get("message-id") is None:
            self._send_error(rpc, _RpcFailure(
                "missing-attribute", "<rpc> needs a message-id attribute", "rpc", "/rpc",
                {"bad-attribute": "message-id", "bad-element": "rpc"},
            ))
            return
        ops = _elements(rpc)
        if len(ops) != 1:
            self._send_error(rpc, _RpcFailure(
                "malformed-message" if not ops else "bad-element",
                f"<rpc> must hold exactly one operation, it holds {len(ops)}", "rpc", "/rpc",
            ))
            return
        op = ops[0]
        q = etree.QName(op)
        if q.namespace == NC_NS and q.localname == "close-session":
            # release locks (and roll back an unconfirmed commit) before answering, so a client
            # that saw <ok/> finds the datastores free; close() repeats it harmlessly
            self.server.server_methods.session_ended(sid)
            self._send_reply(rpc, None)
            self.close()
            return
        rpcs: _DeviceRpcs = self.server.server_methods
        handler = rpcs.handlers.get(q.localname) if q.namespace == NC_NS else None
        if handler is None:
            self._send_error(rpc, _RpcFailure(
                "operation-not-supported",
                f"operation {q.localname!r} ({q.namespace or 'no namespace'}) is not supported "
                "by this device",
                path=f"/rpc/{q.localname}",
            ))
            return
        try:
            result = handler(sid, op)
        except _RpcFailure as failure:
            self._send_error(rpc, failure)
            return
        except ConfigValidationError as exc:
            self._send_error(rpc, _failure_from(exc))
            return
        except Exception:  # a bug must not end the session or reach the client as a traceback
            log.exception("%s: <%s> of session %s failed", rpcs.device.name, q.localname, sid)
            self._send_error(rpc, _RpcFailure(
                "operation-failed",
                f"internal error while handling <{q.localname}>; the device agent's log has "
                "the details",
                "application",
            ))
            return
        self._send_reply(rpc, result)

    def _reply(self, rpc: etree._Element) -> etree._Element:
        return etree.Element(_q("rpc-reply"), attrib=dict(rpc.attrib), nsmap=rpc.nsmap)

    def _send_reply(self, rpc: etree._Element, result: etree._Element | None) -> None:
        reply = self._reply(rpc)
        if result is None:
            etree.SubElement(reply, _q("ok"))
        else:
            reply.append(result)
        self.send_message(etree.tostring(reply, encoding="unicode"))

    def _send_error(self, rpc: etree._Element, failure: _RpcFailure) -> None:
        reply = self._reply(rpc)
        reply.append(failure.element())
        self.send_message(etree.tostring(reply, encoding="unicode"))

    def _malformed(self, why: str) -> None:
        """RFC 6241: answer malformed-message on 1.1 sessions; a 1.0 session must be closed."""
        if not self.new_framing:
            log.debug("session %s: closing 1.0 session: %s", self.session_id, why)
            self.close()
            return
        reply = etree.Element(_q("rpc-reply"), nsmap={None: NC_NS})
        reply.append(_RpcFailure("malformed-message", why, "rpc").element())
        self.send_message(etree.tostring(reply, encoding="unicode"))

    # -- end ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the session once: device clean-up first, then the library's close."""
        with self._close_lock:
            first, self._ended = not self._ended, True
        if not first:
            return
        sid = getattr(self, "session_id", None)
        if sid is not None:
            self.server.session_ended(self, sid)
        super().close()

    def __del__(self) -> None:
        # The library's __del__ calls close(), which takes the server's lock: run by the cyclic
        # GC in a thread that holds that lock, it deadlocks. Sessions are always closed
        # explicitly (reader thread exit, connection shutdown, agent close), so do nothing.
        pass


class _ServerAuth(paramiko.ServerInterface):
    """SSH authentication and channel policy for one connection: password and/or public keys."""

    def __init__(self, username: str, password: str | None, keys: Sequence[bytes]) -> None:
        self._username = username.encode()
        self._password = password.encode() if password is not None else None
        self._keys = tuple(keys)
        self._netconf_channels: set[int] = set()
        self._cond = threading.Condition()
        self._stopped = False

    def get_allowed_auths(self, username: str) -> str:
        methods = []
        if self._keys:
            methods.append("publickey")
        if self._password is not None:
            methods.append("password")
        return ",".join(methods)

    def check_auth_none(self, username: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        user_ok = hmac.compare_digest(username.encode(), self._username)
        pw_ok = self._password is not None and hmac.compare_digest(
            password.encode(), self._password
        )
        return paramiko.AUTH_SUCCESSFUL if user_ok and pw_ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        user_ok = hmac.compare_digest(username.encode(), self._username)
        blob = key.asbytes()
        key_ok = any(hmac.compare_digest(blob, k) for k in self._keys)
        return paramiko.AUTH_SUCCESSFUL if user_ok and key_ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if name != "netconf":
            return False
        with self._cond:
            self._netconf_channels.add(channel.get_id())
            self._cond.notify_all()
        return True

    def wait_netconf(self, channel: paramiko.Channel, timeout: float) -> bool:
        """Wait until the client asked for the netconf subsystem on ``channel``."""
        with self._cond:
            self._cond.wait_for(
                lambda: channel.get_id() in self._netconf_channels
                or channel.closed
                or self._stopped,
                timeout,
            )
            return channel.get_id() in self._netconf_channels and not self._stopped

    def stop(self) -> None:
        """Wake :meth:`wait_netconf` for good (the connection is closing)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


class _SshConnection:
    """One client's SSH transport; its thread accepts channels and starts NETCONF sessions."""

    def __init__(self, server: _LoopbackServer, sock: socket.socket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.addr = addr
        self.transport: paramiko.Transport | None = None
        self.auth = server.make_auth()
        self.sessions: list[_AgentSession] = []
        self._stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"netconf-{server.port}-ssh", daemon=True
        )

    def _run(self) -> None:
        try:
            self._serve()
        except Exception:  # never let a connection thread die with a traceback
            log.exception("port %s: SSH connection from %s failed", self.server.port, self.addr)
        finally:
            self._shutdown()

    def _serve(self) -> None:
        auth = self.auth
        try:
            transport = paramiko.Transport(self.sock)
            self.transport = transport
            transport.add_server_key(self.server.host_key)
            transport.start_server(server=auth)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug(
                "port %s: SSH negotiation with %s failed: %s", self.server.port, self.addr, exc
            )
            return
        while not self._stopping.is_set():
            channel = transport.accept(timeout=0.5)
            if channel is None:
                if not transport.is_active():
                    break
                continue
            if not auth.wait_netconf(channel, _SUBSYSTEM_WAIT_S):
                channel.close()
                continue
            try:
                session = _AgentSession(channel, self.server)
            except Exception as exc:  # a client that fails its hello must not hurt others
                log.debug("port %s: NETCONF hello with %s failed: %s", self.server.port,
                          self.addr, exc)
                channel.close()
                continue
            self.sessions.append(session)

    def _shutdown(self) -> None:
        for session in list(self.sessions):
            session.close()
        if self.transport is not None:
            self.transport.close()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.connection_ended(self)

    def stop(self) -> None:
        """Stop accepting channels, end the sessions and the transport (does not wait)."""
        self._stopping.set()
        self.auth.stop()
        for session in list(self.sessions):
            session.close()
        transport = self.transport
        if transport is None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            return
        transport.close()
        # paramiko only wakes a waiting accept() when the transport dies by itself
        cond = getattr(transport, "server_accept_cv", None)
        if cond is not None:
            with cond:
                cond.notify_all()

    def join(self) -> None:
        """Wait (bounded) for the connection thread to end."""
        if self.thread is not threading.current_thread():
            self.thread.join(_JOIN_S)


class _LoopbackServer(NetconfSSHServer):
    """``netconf``'s ``NetconfSSHServer`` listening on one address we bind ourselves.

    ``sshutil.server.SSHServer.__init__`` binds ``::`` and reads host keys from files, so this
    ``__init__`` does not call it; it sets what ``netconf.server.NetconfServerSession`` uses
    (``server_methods``, ``lock``, ``session_id`` and the lock table behind
    ``unlock_target_any``) and runs its own accept loop, one thread per SSH connection.
    """

    def __init__(
        self,
        listener: socket.socket,
        rpcs: _DeviceRpcs,
        host_key: paramiko.PKey,
        make_auth: Callable[[], _ServerAuth],
    ) -> None:
        # deliberately no super().__init__(): see the class docstring
        self.server_methods = rpcs
        self.session_id = 1
        self.session_locks_lock = threading.Lock()
        self.session_locks = {"running": 0, "candidate": 0}
        self.lock = threading.RLock()  # re-entrant: library code may call back while held
        self.debug = False
        self.host_key = host_key
        self.make_auth = make_auth
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        self._connections: set[_SshConnection] = set()
        self._sessions: dict[int, _AgentSession] = {}
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self.thread = threading.Thread(
            target=self._accept_loop, name=f"netconf-{self.port}-accept", daemon=True
        )

    def __del__(self) -> None:  # the base class logs every deletion at ERROR
        pass

    def __str__(self) -> str:
        return f"NetconfAgent(port={self.port})"

    def start(self) -> None:
        """Start accepting connections."""
        self.thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in sel.select()}
                if self._wake_r in ready:
                    return
                try:
                    sock, addr = self.listener.accept()
                except OSError as exc:  # e.g. the client reset before accept
                    log.debug("port %s: accept failed: %s", self.port, exc)
                    continue
                with self.lock:
                    if self._closed:
                        sock.close()
                        return
                    conn = _SshConnection(self, sock, addr)
                    self._connections.add(conn)
                conn.thread.start()

    def session(self, sid: int) -> _AgentSession | None:
        """Return the open session with id ``sid``, if any."""
        with self.lock:
            return self._sessions.get(sid)

    def _allocate_session_id(self) -> int:
        with self.lock:
            sid = self.session_id
            self.session_id += 1
            return sid

    def session_started(self, session: _AgentSession) -> None:
        """Record an open session (for kill-session), unless it already ended."""
        with self.lock:
            sid = session.session_id
            if not session.ended and sid is not None:
                self._sessions[sid] = session

    def session_ended(self, session: _AgentSession, sid: int) -> None:
        """Device clean-up for a session that ends (called once per session)."""
        with self.lock:
            self._sessions.pop(sid, None)
        self.server_methods.session_ended(sid)

    def connection_ended(self, conn: _SshConnection) -> None:
        """Forget a finished connection."""
        with self.lock:
            self._connections.discard(conn)

    def remove_socket(self, serversocket: object) -> None:
        """Unused library hook (we track connections ourselves)."""

    def close(self) -> None:
        """Stop accepting, end every session and connection, free the port. Idempotent."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._connections)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(_JOIN_S)
        self.listener.close()
        for conn in conns:
            conn.stop()
        for conn in conns:
            conn.join()
        self._wake_r.close()
        self._wake_w.close()


# --------------------------------------------------------------------------------------------
# public API


def _load_private_key(key: paramiko.PKey | Path | str) -> paramiko.PKey:
    if isinstance(key, paramiko.PKey):
        return key
    try:
        return paramiko.PKey.from_path(str(key))
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise NetworkRuntimeError(
            f"cannot read the SSH host key {str(key)!r} ({exc}); give an unencrypted OpenSSH or "
            "PEM private key"
        ) from exc


def _public_blob(key: paramiko.PKey | Path | str) -> bytes:
    """Return the SSH wire blob of a public key: a key object, a .pub file or a private key."""
    if isinstance(key, paramiko.PKey):
        return bytes(key.asbytes())
    path = Path(key)
    try:
        text = path.read_text(errors="replace").strip()
    except OSError as exc:
        raise NetworkRuntimeError(f"cannot read the authorized key {str(path)!r} ({exc})") from exc
    fields = text.split()
    if len(fields) >= 2 and (fields[0].startswith("ssh-") or fields[0].startswith("ecdsa-")):
        try:
            return base64.b64decode(fields[1], validate=True)
        except binascii.Error as exc:
            raise NetworkRuntimeError(f"{str(path)!r} is not an OpenSSH public key line") from exc
    return bytes(_load_private_key(path).asbytes())


class NetconfAgent:
    """The NETCONF/SSH server of one device, listening on ``host:port`` (127.0.0.1 by default).

    ``credentials`` names the one SSH user and its password; the public key of
    ``credentials.key_file`` (its ``.pub`` file when present) and every key in
    ``authorized_keys`` are accepted too. ``port=0`` picks a free port (see :attr:`port`).
    Nothing listens before :meth:`start`; :meth:`close` ends every session (rolling back their
    unconfirmed commits), stops every thread and frees the port.
    """

    def __init__(
        self,
        device: Device,
        *,
        port: int,
        host_key: paramiko.PKey | Path | str,
        credentials: NetconfCredentials,
        authorized_keys: Iterable[paramiko.PKey | Path | str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        if not 0 <= port <= 65535:
            raise NetworkRuntimeError(f"NETCONF port {port} is out of range 0..65535")
        self.device = device
        self.host = host
        self._requested_port = port
        self._host_key = _load_private_key(host_key)
        self._username = credentials.username
        self._password = (
            credentials.password.get_secret_value() if credentials.password is not None else None
        )
        keys = [_public_blob(k) for k in authorized_keys]
        if credentials.key_file is not None:
            pub = Path(f"{credentials.key_file}.pub")
            keys.append(_public_blob(pub if pub.is_file() else credentials.key_file))
        if self._password is None and not keys:
            raise NetworkRuntimeError(
                f"NETCONF agent of {device.name}: credentials for {self._username!r} have neither "
                "a password nor a key; nobody could log in"
            )
        self._keys = tuple(keys)
        self._server: _LoopbackServer | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The TCP port the agent listens on (the one chosen by the OS when created with 0)."""
        return self._server.port if self._server is not None else self._requested_port

    @property
    def running(self) -> bool:
        """Whether the agent accepts connections."""
        return self._server is not None

    def _auth(self) -> _ServerAuth:
        return _ServerAuth(self._username, self._password, self._keys)

    def start(self) -> None:
        """Bind and start accepting; raises :class:`PortInUseError` at once if the port is taken."""
        with self._lock:
            if self._server is not None:
                return
            _quiet_library_loggers()
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self.host, self._requested_port))
                listener.listen(64)
            except OSError as exc:
                listener.close()
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError(
                        f"NETCONF port {self.host}:{self._requested_port} of device "
                        f"{self.device.name} is already in use; stop what listens there or "
                        "choose another port base"
                    ) from exc
                raise NetworkRuntimeError(
                    f"cannot listen on {self.host}:{self._requested_port} for device "
                    f"{self.device.name}: {exc}"
                ) from exc
            rpcs = _DeviceRpcs(self.device)
            server = _LoopbackServer(listener, rpcs, self._host_key, self._auth)
            rpcs.server = server
            server.start()
            self._server = server
            log.debug("%s: NETCONF agent on %s:%s", self.device.name, self.host, server.port)

    def close(self) -> None:
        """End every session, stop every thread and free the port. Idempotent."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()

    def __enter__(self) -> NetconfAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"NetconfAgent({self.device.name!r}, {self.host}:{self.port}, {state})"
