"""``NetconfDriver``: the :class:`~netgpt.tools.base.ConfigDriver` for NETCONF devices, on ncclient.

Every ncclient, paramiko and socket error is translated here into :mod:`netgpt.errors` (with
``raise ... from``); values going out are typed (:class:`~netgpt.device_config.DeviceConfig`,
:class:`~netgpt.yang_xml.InterfaceState`), never raw XML.

Latency: ncclient 0.7.1 queues every outgoing message for its session thread, which looks at the
queue only every ``ncclient.transport.session.TICK`` seconds (0.1 s by default: ~100 ms per RPC).
Lowering TICK to 0.001 (the RECIPES workaround, :func:`tune_ncclient`) gives ~2.1 ms per
get-config but wakes each idle session 1000 times a second and still waits ~0.5 ms per RPC.
The driver instead sends each message straight from the caller's thread
(:class:`_PromptSSHSession`): ~1.25 ms per get-config on loopback, and idle sessions keep the
default tick. Replies are still read by ncclient's session thread.
"""

from __future__ import annotations

import logging
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import ncclient.transport.session
import paramiko
from lxml import etree
from ncclient import manager
from ncclient.operations import errors as nc_op_errors
from ncclient.operations import rpc as nc_rpc
from ncclient.transport import SSHSession
from ncclient.transport import errors as nc_errors
from ncclient.transport.session import END_DELIM, MSG_DELIM, NetconfBase

from netgpt.device_config import DeviceConfig, InterfaceConfig
from netgpt.errors import (
    AuthenticationError,
    CapabilityError,
    CommitError,
    ConfigValidationError,
    DeviceConnectionError,
    DeviceError,
    DeviceTimeoutError,
    LockError,
    MergeConfigError,
    RpcError,
)
from netgpt.inventory import DeviceEntry, Inventory, NetconfCredentials
from netgpt.tools.base import ConfigDriver, DatastoreName, DeviceAddress, LoadMode, config_diff
from netgpt.yang_xml import (
    NC_NS,
    NS,
    InterfaceState,
    config_from_xml,
    config_to_xml,
    interfaces_state_from_xml,
)

__all__ = [
    "CAP_CANDIDATE",
    "CAP_CONFIRMED_COMMIT",
    "CAP_ROLLBACK_ON_ERROR",
    "CAP_VALIDATE",
    "NCCLIENT_TICK_S",
    "NetconfDriver",
    "measure_rpc_latency",
    "netconf_drivers",
    "tune_ncclient",
]

log = logging.getLogger(__name__)

NCCLIENT_TICK_S = 0.001
"""The poll interval :func:`tune_ncclient` sets, for code that uses ncclient's Manager directly."""

_CAP = "urn:ietf:params:netconf:capability:"
CAP_CANDIDATE = f"{_CAP}candidate:1.0"
CAP_CONFIRMED_COMMIT = f"{_CAP}confirmed-commit:1.1"
CAP_VALIDATE = f"{_CAP}validate:1.1"
CAP_ROLLBACK_ON_ERROR = f"{_CAP}rollback-on-error:1.0"

_LOCK_TAGS = frozenset({"lock-denied", "in-use"})


def tune_ncclient(tick_s: float = NCCLIENT_TICK_S) -> None:
    """Set ncclient's session poll interval, process-wide (for direct ncclient users).

    :class:`NetconfDriver` does not need it (see the module docstring).
    """
    ncclient.transport.session.TICK = tick_s


class _PromptSSHSession(SSHSession):
    """ncclient's SSH session, writing each message to the channel at once.

    Framing is ncclient's own (``]]>]]>`` for the hello and base:1.0, chunks for base:1.1). It
    leans on ncclient 0.7.1 internals (``_base``, ``_channel``), pinned in ``pyproject.toml``.
    """

    def __init__(self, device_handler: Any) -> None:
        super().__init__(device_handler)
        self._write_lock = threading.Lock()

    def send(self, message: str) -> None:
        """Frame and write ``message`` now, from the calling thread."""
        if not self.connected or self._channel is None:
            raise nc_errors.TransportError("Not connected to NETCONF server")
        data = message.encode()
        if self._base == NetconfBase.BASE_11:
            data = b"\n#%d\n%s%s" % (len(data), data, END_DELIM)
        else:
            data += MSG_DELIM
        with self._write_lock:
            self._channel.sendall(data)


def _connect(timeout_s: float, **connect_args: Any) -> Any:
    """``ncclient.manager.connect_ssh`` with :class:`_PromptSSHSession`; returns a Manager."""
    handler = manager.make_device_handler(None, [])
    session = _PromptSSHSession(handler)
    try:
        session.connect(**connect_args)
    except BaseException:
        if session.transport:
            session.close()
        raise
    session._channel.settimeout(timeout_s)  # bounds a send to a device that stopped reading
    return manager.Manager(session, handler, timeout=timeout_s)


def _has(caps: frozenset[str], prefix: str) -> bool:
    """Tell whether a capability with this URI (any version, any parameters) is advertised."""
    return any(c.split("?")[0].startswith(prefix) for c in caps)


def _info_session(info: str | None) -> str | None:
    """Return the ``<session-id>`` inside an rpc-error's error-info XML, if any."""
    if not info:
        return None
    match = re.search(r"session-id>\s*(\d+)\s*<", info)
    return match.group(1) if match else None


class NetconfDriver:
    """A NETCONF session with one device (candidate, confirmed commit, locks) over SSH.

    ``device`` is anything with ``name``, ``host`` and ``netconf_port`` (an inventory
    ``DeviceEntry``). Authentication uses ``credentials.key_file`` (its passphrase, if any, is
    ``credentials.password``) and/or the password; never an SSH agent or ``~/.ssh`` keys. The
    device's host key is checked against ``credentials.known_hosts`` when set (entries as
    ``[host]:port`` or ``host``), and not checked otherwise.

    ``timeout_s`` bounds every RPC, ``connect_timeout_s`` the TCP connect and the hello.
    """

    def __init__(
        self,
        device: DeviceAddress,
        credentials: NetconfCredentials,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError(
                f"timeouts must be positive, got timeout_s={timeout_s}, "
                f"connect_timeout_s={connect_timeout_s}"
            )
        self._name = device.name
        self.host = device.host
        self.port = int(device.netconf_port)
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._m: Any = None  # ncclient Manager
        self._caps: frozenset[str] = frozenset()
        self._locked: list[DatastoreName] = []

    # -- identity --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The device this driver talks to."""
        return self._name

    @property
    def capabilities(self) -> frozenset[str]:
        """Capability URIs the device advertised in its hello (empty before :meth:`open`)."""
        return self._caps

    @property
    def session_id(self) -> int | None:
        """The NETCONF session id the device gave this session (``None`` when closed)."""
        if self._m is None:
            return None
        return int(self._m.session_id)

    @property
    def locked(self) -> tuple[DatastoreName, ...]:
        """Datastores this session holds locks on."""
        return tuple(self._locked)

    def __repr__(self) -> str:
        state = f"session {self.session_id}" if self._m is not None else "closed"
        return f"NetconfDriver({self._name!r}, {self.host}:{self.port}, {state})"

    # -- connection ------------------------------------------------------------------------

    def _hostkey_b64(self) -> str | None:
        known_hosts = self.credentials.known_hosts
        if known_hosts is None:
            return None
        keys = paramiko.HostKeys()
        try:
            keys.load(str(known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise AuthenticationError(
                f"cannot read known_hosts file {str(known_hosts)!r} ({exc}); fix the file or "
                "unset known_hosts in the credentials",
                device=self._name,
            ) from exc
        for lookup in (f"[{self.host}]:{self.port}", self.host):
            entry = keys.lookup(lookup)
            if entry:
                return str(next(iter(entry.values())).get_base64())
        raise AuthenticationError(
            f"no host key for [{self.host}]:{self.port} in {str(known_hosts)!r}; add the "
            "device's key there (the emulated network writes it on 'net up')",
            device=self._name,
        )

    def open(self) -> None:
        """Connect, authenticate and exchange hellos; a no-op when already open."""
        if self._m is not None:
            return
        creds = self.credentials
        password = creds.password.get_secret_value() if creds.password is not None else None
        if password is None and creds.key_file is None:
            raise AuthenticationError(
                f"credentials for {creds.username!r} have neither a password nor a key_file",
                device=self._name,
            )
        hostkey_b64 = self._hostkey_b64()
        where = f"{self.host}:{self.port}"
        try:
            self._m = _connect(
                self.timeout_s,
                host=self.host,
                port=self.port,
                username=creds.username,
                password=password,
                key_filename=str(creds.key_file) if creds.key_file is not None else None,
                hostkey_verify=hostkey_b64 is not None,
                hostkey_b64=hostkey_b64,
                allow_agent=False,
                look_for_keys=False,
                timeout=self.connect_timeout_s,
            )
        except nc_errors.AuthenticationError as exc:
            raise AuthenticationError(
                f"{where} refused user {creds.username!r} "
                f"({'key ' + str(creds.key_file) if creds.key_file else 'password'}); check the "
                "credentials file",
                device=self._name,
            ) from exc
        except nc_errors.SSHUnknownHostError as exc:
            raise AuthenticationError(
                f"the host key of {where} does not match {str(creds.known_hosts)!r}; the device "
                "was re-keyed or this is not the device you meant",
                device=self._name,
            ) from exc
        except nc_errors.SSHError as exc:
            raise DeviceConnectionError(
                f"cannot reach the NETCONF agent at {where} ({exc}); is the device up and its "
                "netconf_port in the inventory right?",
                device=self._name,
            ) from exc
        except nc_errors.SessionError as exc:
            raise DeviceTimeoutError(
                f"{where} did not complete the NETCONF hello within {self.connect_timeout_s} s "
                f"({exc})",
                device=self._name,
            ) from exc
        except TimeoutError as exc:
            raise DeviceConnectionError(
                f"connecting to {where} timed out after {self.connect_timeout_s} s; is the "
                "device reachable?",
                device=self._name,
            ) from exc
        except (nc_errors.TransportError, paramiko.SSHException, EOFError, OSError) as exc:
            raise DeviceConnectionError(
                f"cannot open a NETCONF session to {where} ({type(exc).__name__}: {exc})",
                device=self._name,
            ) from exc
        self._caps = frozenset(str(c) for c in self._m.server_capabilities)
        self._locked = []

    def close(self) -> None:
        """Send close-session and drop the connection. Idempotent; never raises."""
        m = self._m
        if m is None:
            return
        try:
            if m.connected:
                m.close_session()
        except Exception as exc:  # ncclient raises many kinds on a dying session; it is closed
            log.debug("%s: close-session failed (%s); dropping the connection", self._name, exc)
        finally:
            self._drop()

    def _drop(self) -> None:
        """Close the transport without a close-session (the device sees the session end)."""
        m, self._m = self._m, None
        self._locked = []
        if m is None or not m.connected:
            return
        try:
            m._session.close()  # ncclient's Manager has no public transport close
        except Exception as exc:  # already torn down
            log.debug("%s: transport close failed: %s", self._name, exc)

    def __enter__(self) -> NetconfDriver:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- error translation -----------------------------------------------------------------

    def _manager(self) -> Any:
        if self._m is None:
            raise DeviceConnectionError(
                "the NETCONF session is not open; call open() first (or use 'with "
                "NetconfDriver(...) as driver:')",
                device=self._name,
            )
        return self._m

    def _need(self, uri: str, what: str) -> None:
        if not _has(self._caps, uri.rsplit(":", 1)[0]):
            raise CapabilityError(
                f"{what} needs the {uri} capability, which the device does not advertise",
                device=self._name,
            )

    @contextmanager
    def _rpc(self, op: str, error: type[RpcError] = RpcError) -> Iterator[Any]:
        """Run one RPC, translating every library error into a project error."""
        m = self._manager()
        try:
            yield m
        except nc_rpc.RPCError as exc:
            self._raise_rpc_error(op, exc, error)
        except nc_op_errors.TimeoutExpiredError as exc:
            self._drop()  # ncclient ends the session itself when the late reply arrives
            raise DeviceTimeoutError(
                f"no reply to <{op}> within {self.timeout_s} s, so the session was closed "
                "(the device rolls back its unconfirmed commit); the device is overloaded or "
                "gone: open the driver again, with a larger timeout_s if it is just slow",
                device=self._name,
            ) from exc
        except nc_op_errors.MissingCapabilityError as exc:
            raise CapabilityError(f"<{op}>: {exc}", device=self._name) from exc
        except TimeoutError as exc:  # sending blocked: the device stopped reading
            self._drop()
            raise DeviceTimeoutError(
                f"could not send <{op}> within {self.timeout_s} s, so the session was closed; "
                "the device is overloaded or gone: open the driver again",
                device=self._name,
            ) from exc
        except (
            nc_errors.TransportError,
            nc_errors.SessionError,
            paramiko.SSHException,
            EOFError,
            OSError,
        ) as exc:
            self._drop()
            raise DeviceConnectionError(
                f"the NETCONF session broke during <{op}> ({type(exc).__name__}: {exc}); open "
                "the driver again",
                device=self._name,
            ) from exc
        except nc_op_errors.OperationError as exc:
            raise error(f"<{op}> failed: {exc}", device=self._name) from exc

    def _raise_rpc_error(self, op: str, exc: Any, error: type[RpcError]) -> NoReturn:
        first = exc.errlist[0] if exc.errlist else exc
        tag = str(first.tag or "")
        path = str(first.path or "").strip()
        message = str(first.message or exc).strip()
        if tag in _LOCK_TAGS:
            holder = _info_session(first.info)
            if holder not in (None, "0") and f"session {holder}" not in message:
                message += f" (held by session {holder})"
            raise LockError(f"<{op}> refused [{tag}]: {message}", device=self._name) from exc
        raise error(message, device=self._name, tag=tag, path=path) from exc

    # -- reads -----------------------------------------------------------------------------

    def _data(self, reply: Any, op: str) -> etree._Element:
        data = getattr(reply, "data_ele", None)
        if data is None:
            raise RpcError(f"<{op}> reply carries no <data>", device=self._name)
        element: etree._Element = data
        return element

    def _parse_config(self, data: etree._Element, op: str) -> DeviceConfig:
        try:
            return config_from_xml(data)
        except ConfigValidationError as exc:
            raise RpcError(
                f"<{op}> returned a config that does not fit the model: {exc.message}",
                device=self._name, tag=exc.tag, path=exc.path,
            ) from exc

    def get_config(self, source: DatastoreName = "running") -> DeviceConfig:
        """Return the whole configuration held in ``source`` (``running`` or ``candidate``)."""
        if source == "candidate":
            self._need(CAP_CANDIDATE, "reading the candidate")
        with self._rpc("get-config") as m:
            reply = m.get_config(source=source)
        return self._parse_config(self._data(reply, "get-config"), "get-config")

    def get_interface_config(
        self, name: str, *, source: DatastoreName = "running"
    ) -> InterfaceConfig | None:
        """Interface ``name`` alone, read with a subtree filter; ``None`` if the device lacks it.

        The filter selects the hostname, that interface, every ACL and that interface's ACL
        attachment, so the reply is a small but valid configuration.
        """
        flt = etree.Element(f"{{{NC_NS}}}filter", type="subtree")
        etree.SubElement(etree.SubElement(flt, f"{{{NS.SYS}}}system"), f"{{{NS.SYS}}}hostname")
        itf = etree.SubElement(
            etree.SubElement(flt, f"{{{NS.IF}}}interfaces"), f"{{{NS.IF}}}interface"
        )
        etree.SubElement(itf, f"{{{NS.IF}}}name").text = name
        acls = etree.SubElement(flt, f"{{{NS.ACL}}}acls")
        etree.SubElement(acls, f"{{{NS.ACL}}}acl")
        point = etree.SubElement(
            etree.SubElement(acls, f"{{{NS.ACL}}}attachment-points"), f"{{{NS.ACL}}}interface"
        )
        etree.SubElement(point, f"{{{NS.ACL}}}interface-id").text = name
        with self._rpc("get-config") as m:
            reply = m.get_config(source=source, filter=flt)
        config = self._parse_config(self._data(reply, "get-config"), "get-config")
        for candidate in config.interfaces:
            if candidate.name == name:
                return candidate
        return None

    def get_interfaces(self) -> list[InterfaceState]:
        """Return every interface's operational state (``<get>`` filtered to ietf-interfaces)."""
        flt = etree.Element(f"{{{NC_NS}}}filter", type="subtree")
        etree.SubElement(flt, f"{{{NS.IF}}}interfaces")
        with self._rpc("get") as m:
            reply = m.get(filter=flt)
        try:
            return interfaces_state_from_xml(self._data(reply, "get"))
        except ValueError as exc:
            raise RpcError(f"<get> returned unreadable interface state: {exc}",
                           device=self._name) from exc

    # -- candidate -------------------------------------------------------------------------

    def _config_element(self, config: DeviceConfig | etree._Element | str) -> etree._Element:
        if isinstance(config, DeviceConfig):
            el = config_to_xml(config)
            el.tag = f"{{{NC_NS}}}config"
            return el
        if isinstance(config, str):
            try:
                parser = etree.XMLParser(resolve_entities=False, no_network=True)
                config = etree.fromstring(config.encode(), parser=parser)
            except etree.XMLSyntaxError as exc:
                raise MergeConfigError(
                    f"the config is not well-formed XML ({exc}); nothing was sent",
                    device=self._name, tag="malformed-message",
                ) from exc
        if etree.QName(config) == etree.QName(NC_NS, "config"):
            return config
        wrapper = etree.Element(f"{{{NC_NS}}}config", nsmap={None: NC_NS})
        wrapper.append(config)
        return wrapper

    def load_candidate(
        self,
        config: DeviceConfig | etree._Element | str,
        *,
        mode: LoadMode = "merge",
        test_only: bool = False,
    ) -> None:
        """``edit-config`` of the candidate; see :meth:`ConfigDriver.load_candidate`.

        ``config`` may also be XML text. An element (or text) that is not ``<config>`` is
        wrapped in one. ``test_only`` asks the device to check the edit without keeping it
        (``test-option test-only``). Raises :class:`~netgpt.errors.MergeConfigError` carrying
        the device's error-tag and error-path; the candidate is then unchanged.
        """
        if mode not in ("merge", "replace", "none"):
            raise ValueError(f"mode must be merge, replace or none, got {mode!r}")
        self._need(CAP_CANDIDATE, "loading a candidate")
        element = self._config_element(config)
        kwargs: dict[str, str] = {"default_operation": mode}
        if _has(self._caps, CAP_ROLLBACK_ON_ERROR.rsplit(":", 1)[0]):
            kwargs["error_option"] = "rollback-on-error"
        if test_only:
            self._need(CAP_VALIDATE, "test-only edits")
            kwargs["test_option"] = "test-only"
        with self._rpc("edit-config", MergeConfigError) as m:
            m.edit_config(config=element, target="candidate", **kwargs)

    def diff(self) -> str:
        """Return the unified diff running -> candidate (``""`` when they are equal)."""
        return config_diff(self.get_config("running"), self.get_config("candidate"))

    def validate(self) -> None:
        """``<validate>`` the candidate."""
        self._need(CAP_VALIDATE, "validate")
        with self._rpc("validate", CommitError) as m:
            m.validate(source="candidate")

    def discard(self) -> None:
        """``<discard-changes>``: candidate := running."""
        self._need(CAP_CANDIDATE, "discard")
        with self._rpc("discard-changes") as m:
            m.discard_changes()

    # -- commit ----------------------------------------------------------------------------

    def commit(self, *, confirm_timeout_s: int | None = None, persist: str | None = None) -> None:
        """Commit the candidate; confirmed (rolled back unless confirmed) with a timeout.

        ``persist`` makes the confirmed commit survive the end of this session; confirm or
        cancel it later with the same token as ``persist_id`` (from any session).
        """
        self._need(CAP_CANDIDATE, "commit")
        if confirm_timeout_s is None:
            if persist is not None:
                raise ValueError("persist needs a confirmed commit: give confirm_timeout_s too")
            with self._rpc("commit", CommitError) as m:
                m.commit()
            return
        if confirm_timeout_s < 1:
            raise ValueError(f"confirm_timeout_s must be >= 1, got {confirm_timeout_s}")
        self._need(CAP_CONFIRMED_COMMIT, "a confirmed commit")
        with self._rpc("commit", CommitError) as m:
            m.commit(confirmed=True, timeout=str(int(confirm_timeout_s)), persist=persist)

    def confirm(self, *, persist_id: str | None = None) -> None:
        """Send the confirming ``<commit>``: the pending confirmed commit stays."""
        self._need(CAP_CANDIDATE, "confirm")
        with self._rpc("commit", CommitError) as m:
            m.commit(persist_id=persist_id)

    def cancel_commit(self, *, persist_id: str | None = None) -> None:
        """``<cancel-commit>``: roll the pending confirmed commit back now."""
        self._need(CAP_CONFIRMED_COMMIT, "cancel-commit")
        with self._rpc("cancel-commit", CommitError) as m:
            m.cancel_commit(persist_id=persist_id)

    def rollback(self) -> None:
        """Do what :meth:`cancel_commit` does (NAPALM's name for it)."""
        self.cancel_commit()

    # -- locks -----------------------------------------------------------------------------

    def lock(self, datastore: DatastoreName = "candidate") -> None:
        """Lock ``datastore``; :class:`~netgpt.errors.LockError` names the session holding it."""
        if datastore == "candidate":
            self._need(CAP_CANDIDATE, "locking the candidate")
        with self._rpc("lock") as m:
            m.lock(target=datastore)
        if datastore not in self._locked:
            self._locked.append(datastore)

    def unlock(self, datastore: DatastoreName = "candidate") -> None:
        """Release this session's lock on ``datastore``."""
        with self._rpc("unlock") as m:
            m.unlock(target=datastore)
        if datastore in self._locked:
            self._locked.remove(datastore)


# --------------------------------------------------------------------------------------------
# inventory and measurement


def netconf_drivers(
    inventory: Inventory, *, timeout_s: float = 30.0
) -> Callable[[str], NetconfDriver]:
    """Return a factory: device name -> unopened :class:`NetconfDriver` with its credentials.

    Unknown names raise :class:`~netgpt.errors.ConfigError` listing close matches.
    """

    def make(name: str) -> NetconfDriver:
        entry: DeviceEntry = inventory.device(name)
        creds = inventory.credentials_for(entry).netconf
        return NetconfDriver(entry, creds, timeout_s=timeout_s)

    return make


def measure_rpc_latency(
    driver: NetconfDriver, n: int = 200, *, interface: str | None = None
) -> dict[str, float]:
    """Median and p95 wall time (ms) of get-config, edit-config and commit over ``n`` rounds.

    Each round reads the running config, merges a new description into one interface of the
    candidate (``interface``, default the first) and commits it, so every commit changes
    something. The original description is restored at the end. The driver must be open, and
    this changes the device's configuration: use it on emulated or lab devices only.
    Returns ``{"get_config_ms", "edit_config_ms", "commit_ms"}`` medians plus ``*_p95_ms``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    original = driver.get_config("running")
    if not original.interfaces:
        raise DeviceError(f"{driver.name} has no interface to edit", device=driver.name)
    target = interface or original.interfaces[0].name
    before = original.interface(target).description
    times: dict[str, list[float]] = {"get_config": [], "edit_config": [], "commit": []}

    def edit(text: str) -> etree._Element:
        cfg = etree.Element(f"{{{NC_NS}}}config", nsmap={None: NC_NS})
        itf = etree.SubElement(
            etree.SubElement(cfg, f"{{{NS.IF}}}interfaces", nsmap={None: NS.IF}),
            f"{{{NS.IF}}}interface",
        )
        etree.SubElement(itf, f"{{{NS.IF}}}name").text = target
        etree.SubElement(itf, f"{{{NS.IF}}}description").text = text
        return cfg

    try:
        for i in range(n):
            t0 = time.perf_counter()
            driver.get_config("running")
            t1 = time.perf_counter()
            driver.load_candidate(edit(f"latency probe {i}"), mode="merge")
            t2 = time.perf_counter()
            driver.commit()
            t3 = time.perf_counter()
            times["get_config"].append(t1 - t0)
            times["edit_config"].append(t2 - t1)
            times["commit"].append(t3 - t2)
    finally:
        driver.discard()
        driver.load_candidate(edit(before), mode="merge")
        driver.commit()
    out: dict[str, float] = {}
    for op, samples in times.items():
        ms = sorted(s * 1000.0 for s in samples)
        out[f"{op}_ms"] = statistics.median(ms)
        out[f"{op}_p95_ms"] = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return out


if TYPE_CHECKING:

    def _is_config_driver(driver: NetconfDriver) -> ConfigDriver:
        """Let mypy prove that NetconfDriver fulfils the ConfigDriver contract."""
        return driver
