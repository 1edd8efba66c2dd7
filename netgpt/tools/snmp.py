"""SNMP client: GET / GETBULK walks / SET and typed reads of devices, on pysnmp 7's asyncio API.

The manager side of SNMP. An :class:`SnmpManager` owns one pysnmp engine for one event loop and
is shared by the :class:`SnmpClient` of every device it polls (an engine is costly: ~150 ms and
~1 MB each). A client alone creates a private manager and closes it with itself::

    async with SnmpManager() as snmp:
        clients = [snmp.client(d.host, d.snmp_port, creds, device_name=d.name) for d in devices]
        counters = await poll_interface_counters(clients)   # {device: [...] or DeviceError}

    async with SnmpClient("127.0.0.1", 16101, creds, device_name="r1") as r1:
        info = await r1.system()

SNMPv3 authPriv is used unless ``credentials.version == "2c"`` (then ``community`` reads and
``write_community``, or ``community`` when unset, writes). OIDs are numeric
(``"1.3.6.1.2.1.1.5.0"``, a leading dot is fine, or a tuple of ints); values come back as plain
``int``, ``str`` (an OCTET STRING that is printable UTF-8, an OID in dotted form, an IpAddress),
``bytes`` (other OCTET STRINGs) or ``None`` (noSuchObject / noSuchInstance / NULL). No pysnmp
object leaves this module.

Errors (all carry ``device=``): no answer in time -> :class:`DeviceTimeoutError` (an SNMPv3 agent
may drop a request with a wrong key silently, so the message points at credentials too); a
report of an unknown user, wrong digest, decryption error or unsupported security level ->
:class:`AuthenticationError`; an error-status (``notWritable``, ``noAccess``...) or any other
engine error -> :class:`SnmpError` naming the OID and the status.
"""

from __future__ import annotations

import asyncio
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.entity import config as snmp_config
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
)
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import errind, rfc1902, rfc1905

from netgpt.errors import (
    AuthenticationError,
    ConfigError,
    DeviceConnectionError,
    DeviceError,
    DeviceTimeoutError,
    SnmpError,
)
from netgpt.inventory import Inventory, SnmpCredentials

__all__ = [
    "IF_MIB",
    "SYSTEM_MIB",
    "InterfaceCounters",
    "Oid",
    "SnmpClient",
    "SnmpManager",
    "SnmpValue",
    "SystemInfo",
    "inventory_client",
    "poll_interface_counters",
    "run_snmp",
]

Oid = str | tuple[int, ...]
SnmpValue = int | str | bytes | None
T = TypeVar("T")


class SYSTEM_MIB:
    """SNMPv2-MIB system group (scalars; add ``.0`` for the instance)."""

    SYS_DESCR = "1.3.6.1.2.1.1.1"
    SYS_OBJECT_ID = "1.3.6.1.2.1.1.2"
    SYS_UPTIME = "1.3.6.1.2.1.1.3"
    SYS_CONTACT = "1.3.6.1.2.1.1.4"
    SYS_NAME = "1.3.6.1.2.1.1.5"
    SYS_LOCATION = "1.3.6.1.2.1.1.6"


class IF_MIB:
    """IF-MIB objects the tools read (columns; add ``.ifIndex`` for the instance)."""

    IF_NUMBER = "1.3.6.1.2.1.2.1"
    IF_TABLE = "1.3.6.1.2.1.2.2"
    IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
    IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
    IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
    IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
    IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"
    IFX_TABLE = "1.3.6.1.2.1.31.1.1"
    IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
    IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
    IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
    IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"
    IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"


@dataclass(frozen=True, slots=True)
class InterfaceCounters:
    """One interface's state and 64-bit octet counters, as read in one poll of its device.

    ``timestamp`` is ``time.time()`` when the response arrived and ``requested_at`` when its
    request was sent (the device read the counters in between); ``sys_uptime_s`` the device's
    sysUpTime in that same response (a smaller value than last time means the counters restarted).
    """

    device: str
    if_index: int
    name: str
    admin_up: bool
    oper_up: bool
    speed_mbps: int
    in_octets: int
    out_octets: int
    timestamp: float
    sys_uptime_s: float
    requested_at: float


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """The SNMPv2-MIB system group of a device."""

    device: str
    descr: str
    object_id: str
    uptime_s: float
    contact: str
    name: str
    location: str


_AUTH_PROTOCOLS = {
    "sha": snmp_config.USM_AUTH_HMAC96_SHA,
    "sha256": snmp_config.USM_AUTH_HMAC192_SHA256,
    "md5": snmp_config.USM_AUTH_HMAC96_MD5,
}
_PRIV_PROTOCOLS = {"aes128": snmp_config.USM_PRIV_CFB128_AES, "des": snmp_config.USM_PRIV_CBC56_DES}

# Columns read by interface_counters, in request order.
_COUNTER_COLUMNS = (
    IF_MIB.IF_NAME,
    IF_MIB.IF_ADMIN_STATUS,
    IF_MIB.IF_OPER_STATUS,
    IF_MIB.IF_HIGH_SPEED,
    IF_MIB.IF_HC_IN_OCTETS,
    IF_MIB.IF_HC_OUT_OCTETS,
)
_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3)  # GETNEXT gives sysUpTime.0
_IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1)  # GETNEXT gives ifNumber.0
_FIRST_POLL_ROWS = 8  # repetitions asked for before a device's ifNumber is known
_MAX_REPETITIONS = 40

_AUTH_FAILURES: dict[type[errind.ErrorIndication], str] = {
    errind.UnknownUserName: "the agent does not know SNMPv3 user {user!r}; check 'user' in the "
    "SNMP credentials",
    errind.WrongDigest: "the agent rejected the SNMPv3 authentication digest: wrong auth_key "
    "or auth_protocol ({auth}) for user {user!r}",
    errind.DecryptionError: "the request could not be decrypted: wrong priv_key or "
    "priv_protocol ({priv}) for user {user!r}",
    errind.UnsupportedSecurityLevel: "the agent refused the security level for user {user!r}: "
    "it needs authPriv with the configured auth and priv protocols",
    errind.UnknownSecurityName: "the agent does not know security name {user!r}",
    errind.AuthenticationFailure: "authentication failed for user {user!r}: check auth_key",
    errind.AuthenticationError: "authentication failed for user {user!r}: check auth_key and "
    "auth_protocol",
    errind.UnknownCommunityName: "the agent does not know this community; check 'community' in "
    "the SNMP credentials",
}


# -- OIDs and values ------------------------------------------------------------------------------


def _oid_tuple(oid: Oid) -> tuple[int, ...]:
    if isinstance(oid, tuple):
        parts = oid
    else:
        text = oid.strip().lstrip(".")
        try:
            parts = tuple(int(p) for p in text.split("."))
        except ValueError:
            raise ConfigError(
                f"{oid!r} is not a numeric OID; write it as dotted numbers, e.g. 1.3.6.1.2.1.1.5.0"
            ) from None
    if len(parts) < 2 or any(p < 0 for p in parts):
        raise ConfigError(f"{oid!r} is not a valid OID; write e.g. 1.3.6.1.2.1.1.5.0")
    return parts


def _oid_str(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


_PRINTABLE = set(string.printable)


def _plain(value: Any) -> SnmpValue:
    """Convert a pysnmp value to a plain Python value (see the module docstring)."""
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView):
        return None
    if isinstance(value, univ.Null):
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return _oid_str(tuple(value))
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, univ.OctetString):
        raw = bytes(value.asOctets())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
        if all(ch in _PRINTABLE or ch.isprintable() for ch in text):
            return text
        return raw
    raise SnmpError(f"unexpected SNMP value type {type(value).__name__}")


def _to_snmp(value: int | str | bytes) -> Any:
    if isinstance(value, bool):
        raise ConfigError("an SNMP SET value must be int, str or bytes, not bool")
    if isinstance(value, int):
        return rfc1902.Integer32(value)
    if isinstance(value, str):
        return rfc1902.OctetString(value.encode("utf-8"))
    if isinstance(value, bytes):
        return rfc1902.OctetString(value)
    raise ConfigError(f"an SNMP SET value must be int, str or bytes, got {type(value).__name__}")


def _is_end(value: Any) -> bool:
    return isinstance(value, rfc1905.EndOfMibView)


# -- the manager side: one engine per event loop ------------------------------------------------


class SnmpManager:
    """The SNMP manager: one pysnmp engine, in one event loop, shared by many clients.

    Create it anywhere; it binds to the running loop on first use. Close it with
    ``await manager.aclose()`` or ``async with``. Clients sharing a manager that use the same
    SNMPv3 user name must use the same keys (pysnmp keys users by name); give a device with
    other keys for the same user its own manager.
    """

    def __init__(self) -> None:
        self._engine: SnmpEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._users: dict[str, tuple[str, ...]] = {}
        self._closed = False

    async def __aenter__(self) -> SnmpManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def client(
        self,
        host: str,
        port: int,
        credentials: SnmpCredentials,
        *,
        device_name: str = "",
        timeout_s: float = 1.0,
        retries: int = 1,
    ) -> SnmpClient:
        """Make a client of ``host:port`` that uses this manager's engine."""
        return SnmpClient(
            host,
            port,
            credentials,
            device_name=device_name,
            timeout_s=timeout_s,
            retries=retries,
            manager=self,
        )

    async def aclose(self) -> None:
        """Close the engine's sockets. Idempotent; clients of a closed manager fail."""
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_dispatcher()
            await asyncio.sleep(0)  # let the transports finish closing

    def _engine_for(self, credentials: SnmpCredentials, device: str) -> SnmpEngine:
        if self._closed:
            raise SnmpError("this SnmpManager is closed; create a new one", device=device)
        loop = asyncio.get_running_loop()
        if self._engine is None:
            self._engine = SnmpEngine()
            self._loop = loop
        elif loop is not self._loop:
            raise SnmpError(
                "this SnmpManager serves another event loop; create one manager per loop",
                device=device,
            )
        if credentials.version == "3":
            fingerprint = (
                credentials.auth_protocol,
                credentials.auth_key.get_secret_value() if credentials.auth_key else "",
                credentials.priv_protocol,
                credentials.priv_key.get_secret_value() if credentials.priv_key else "",
            )
            known = self._users.setdefault(credentials.user, fingerprint)
            if known != fingerprint:
                raise ConfigError(
                    f"SNMPv3 user {credentials.user!r} is already used with other keys on this "
                    f"SnmpManager; use a separate SnmpManager for {device or 'this device'}"
                )
        return self._engine


# -- one device -----------------------------------------------------------------------------------


class SnmpClient:
    """SNMP access to one device. All methods are coroutines; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        credentials: SnmpCredentials,
        *,
        device_name: str = "",
        timeout_s: float = 1.0,
        retries: int = 1,
        manager: SnmpManager | None = None,
    ) -> None:
        if not 0 < port < 65536:
            raise ConfigError(f"SNMP port {port} is out of range; use 1-65535")
        if timeout_s <= 0 or retries < 0:
            raise ConfigError(
                f"SNMP timeout_s must be > 0 and retries >= 0, got {timeout_s} and {retries}"
            )
        self.host = host
        self.port = port
        self.device = device_name or f"{host}:{port}"
        self.timeout_s = timeout_s
        self.retries = retries
        self._credentials = credentials
        self._owns_manager = manager is None
        self._manager = manager or SnmpManager()
        self._target: UdpTransportTarget | None = None
        self._read_auth, self._write_auth = _auth_data(credentials, self.device)
        self._rows_hint = 0  # ifNumber seen at the last interface_counters()

    async def __aenter__(self) -> SnmpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the private manager, if this client made one (a shared one stays open)."""
        if self._owns_manager:
            await self._manager.aclose()

    # -- raw operations ---------------------------------------------------------------------

    async def get(self, *oids: Oid) -> dict[str, SnmpValue]:
        """GET ``oids`` in one request: ``{oid: value}`` (``None`` for a missing instance)."""
        if not oids:
            return {}
        names = [_oid_tuple(o) for o in oids]
        var_binds = await self._request("GET", names)
        return {_oid_str(tuple(name)): _plain(value) for name, value in var_binds}

    async def bulk_walk(
        self, oid_prefix: Oid, *, max_repetitions: int = 50
    ) -> list[tuple[str, SnmpValue]]:
        """Every instance under ``oid_prefix``, in OID order, with GETBULK requests."""
        prefix = _oid_tuple(oid_prefix)
        out: list[tuple[str, SnmpValue]] = []
        cursor = prefix
        while True:
            var_binds = await self._request(
                "GETBULK", [cursor], non_repeaters=0, max_repetitions=max_repetitions
            )
            if not var_binds:
                return out
            for name, value in var_binds:
                oid = tuple(name)
                if _is_end(value) or oid[: len(prefix)] != prefix:
                    return out
                if oid <= cursor:
                    raise SnmpError(
                        f"walk of {_oid_str(prefix)}: the agent returned {_oid_str(oid)} after "
                        f"{_oid_str(cursor)} (OIDs must increase)",
                        device=self.device,
                    )
                out.append((_oid_str(oid), _plain(value)))
                cursor = oid

    async def set(self, oid: Oid, value: int | str | bytes) -> None:
        """SET one object (``str``/``bytes`` as OCTET STRING, ``int`` as Integer32)."""
        await self._request("SET", [_oid_tuple(oid)], value=_to_snmp(value))

    # -- typed reads ------------------------------------------------------------------------

    async def system(self) -> SystemInfo:
        """Read the system group, in one GET."""
        oids = (
            SYSTEM_MIB.SYS_DESCR,
            SYSTEM_MIB.SYS_OBJECT_ID,
            SYSTEM_MIB.SYS_UPTIME,
            SYSTEM_MIB.SYS_CONTACT,
            SYSTEM_MIB.SYS_NAME,
            SYSTEM_MIB.SYS_LOCATION,
        )
        values = await self.get(*(f"{o}.0" for o in oids))
        descr, object_id, uptime, contact, name, location = (values[f"{o}.0"] for o in oids)
        return SystemInfo(
            device=self.device,
            descr=_text(descr),
            object_id=_text(object_id),
            uptime_s=(uptime if isinstance(uptime, int) else 0) / 100.0,
            contact=_text(contact),
            name=_text(name),
            location=_text(location),
        )

    async def interface_counters(self) -> list[InterfaceCounters]:
        """State, speed and 64-bit octet counters of every interface, in ifIndex order.

        One GETBULK per poll once the device's ifNumber is known (sysUpTime and ifNumber as
        non-repeaters, six ifTable/ifXTable columns as repeaters); a table longer than one
        response allows takes more requests.
        """
        columns = [_oid_tuple(c) for c in _COUNTER_COLUMNS]
        rows: list[dict[int, Any]] = [{} for _ in columns]
        cursors: list[tuple[int, ...]] = list(columns)
        active = list(range(len(columns)))
        uptime_ticks = 0
        if_number = -1
        timestamp = requested_at = 0.0
        first = True
        while active:
            wanted = self._rows_hint if self._rows_hint > 0 else _FIRST_POLL_ROWS
            if if_number >= 0:
                wanted = if_number - min(len(rows[i]) for i in active)
            reps = max(1, min(wanted, _MAX_REPETITIONS))
            non_rep = [_UPTIME, _IF_NUMBER] if first else []
            if first:
                requested_at = time.time()
            var_binds = await self._request(
                "GETBULK",
                non_rep + [cursors[i] for i in active],
                non_repeaters=len(non_rep),
                max_repetitions=reps,
            )
            if first:
                timestamp = time.time()
                if len(var_binds) < 2:
                    raise SnmpError("GETBULK answer without sysUpTime/ifNumber", device=self.device)
                uptime_ticks = _int(var_binds[0][1])
                if_number = max(0, _int(var_binds[1][1]))
                self._rows_hint = if_number
                var_binds = var_binds[2:]
                first = False
            width = len(active)
            still: list[int] = []
            done: set[int] = set()
            for pos, (name, value) in enumerate(var_binds):
                col = active[pos % width]
                if col in done:
                    continue
                oid = tuple(name)
                prefix = columns[col]
                if _is_end(value) or oid[: len(prefix)] != prefix or len(oid) != len(prefix) + 1:
                    done.add(col)
                    continue
                if oid <= cursors[col]:
                    raise SnmpError(
                        f"GETBULK of {_oid_str(prefix)}: OIDs do not increase", device=self.device
                    )
                rows[col][oid[-1]] = value
                cursors[col] = oid
            for col in active:
                if col not in done and len(rows[col]) < if_number and var_binds:
                    still.append(col)
            active = still
        return self._counters(rows, uptime_ticks, requested_at, timestamp)

    def _counters(
        self, rows: list[dict[int, Any]], uptime_ticks: int, requested_at: float, timestamp: float
    ) -> list[InterfaceCounters]:
        names, admin, oper, speed, hc_in, hc_out = rows
        out = []
        for if_index in sorted(set(hc_in) | set(names)):
            out.append(
                InterfaceCounters(
                    device=self.device,
                    if_index=if_index,
                    name=_text(_plain(names.get(if_index))) or str(if_index),
                    admin_up=_int(admin.get(if_index)) == 1,
                    oper_up=_int(oper.get(if_index)) == 1,
                    speed_mbps=_int(speed.get(if_index)),
                    in_octets=_int(hc_in.get(if_index)),
                    out_octets=_int(hc_out.get(if_index)),
                    timestamp=timestamp,
                    sys_uptime_s=uptime_ticks / 100.0,
                    requested_at=requested_at,
                )
            )
        return out

    # -- one request, errors translated ---------------------------------------------------------

    async def _transport(self) -> UdpTransportTarget:
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self.host, self.port), timeout=self.timeout_s, retries=self.retries
                )
            except Exception as exc:
                raise DeviceConnectionError(
                    f"cannot resolve or reach SNMP agent {self.host}:{self.port}: {exc}; check "
                    "the host name in the inventory",
                    device=self.device,
                ) from exc
        return self._target

    async def _request(
        self,
        kind: str,
        names: Sequence[tuple[int, ...]],
        *,
        value: Any = None,
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> list[tuple[Any, Any]]:
        engine = self._manager._engine_for(self._credentials, self.device)
        target = await self._transport()
        auth = self._write_auth if kind == "SET" else self._read_auth
        null = rfc1902.Null("")
        var_binds_out = [(rfc1902.ObjectName(n), value if kind == "SET" else null) for n in names]
        try:
            result = await _send(
                engine, auth, target, kind, var_binds_out, non_repeaters, max_repetitions
            )
        except DeviceError:
            raise
        except Exception as exc:  # pysnmp raises its own errors for bad input / internal faults
            raise SnmpError(
                f"SNMP {kind} of {_oid_str(names[0])} failed in pysnmp: {exc}", device=self.device
            ) from exc
        error_indication, error_status, error_index, var_binds = result
        if error_indication:
            raise self._translate(error_indication, kind, names)
        if error_status and int(error_status):
            idx = int(error_index) - 1
            bad = names[idx] if 0 <= idx < len(names) else names[0]
            status = (
                error_status.prettyPrint() if hasattr(error_status, "prettyPrint") else error_status
            )
            raise SnmpError(
                f"SNMP {kind} of {_oid_str(bad)} refused by the agent: {status}"
                + (" (the object is read-only)" if str(status) == "notWritable" else "")
                + (" (the credentials may not write here)" if str(status) == "noAccess" else ""),
                device=self.device,
            )
        return [(vb[0], vb[1]) for vb in var_binds]

    def _translate(
        self, indication: Any, kind: str, names: Sequence[tuple[int, ...]]
    ) -> DeviceError:
        creds = self._credentials
        where = f"{self.host}:{self.port}"
        if isinstance(indication, errind.RequestTimedOut):
            tries = self.retries + 1
            return DeviceTimeoutError(
                f"no SNMP response from {where} to {kind} {_oid_str(names[0])} within "
                f"{self.timeout_s:g} s x {tries} tries; check the host and port, that the agent "
                "runs, and the credentials (a wrong SNMPv3 user/key or v2c community can look "
                "like silence)",
                device=self.device,
            )
        for cls, template in _AUTH_FAILURES.items():
            if isinstance(indication, cls):
                return AuthenticationError(
                    f"{where}: "
                    + template.format(
                        user=creds.user, auth=creds.auth_protocol, priv=creds.priv_protocol
                    ),
                    device=self.device,
                )
        return SnmpError(f"SNMP {kind} to {where} failed: {indication}", device=self.device)


_LCD = CommandGeneratorLcdConfigurator()


async def _send(
    engine: SnmpEngine,
    auth: Any,
    target: UdpTransportTarget,
    kind: str,
    var_binds: list[tuple[Any, Any]],
    non_repeaters: int,
    max_repetitions: int,
) -> tuple[Any, Any, Any, Sequence[Any]]:
    """One request through pysnmp's command generators (what ``get_cmd`` & co. wrap).

    Skips the hlapi's MIB lookup of every varbind (~0.2 ms each), which numeric OIDs do not need.
    """
    addr_name, _ = _LCD.configure(engine, auth, target, b"")
    future: asyncio.Future[tuple[Any, Any, Any, Sequence[Any]]] = (
        asyncio.get_running_loop().create_future()
    )

    def done(
        snmp_engine: Any,
        handle: Any,
        indication: Any,
        status: Any,
        index: Any,
        answer: Sequence[Any],
        cb_ctx: Any,
    ) -> None:
        if not future.done():
            future.set_result((indication, status, index, answer))

    if kind == "GET":
        cmdgen.GetCommandGenerator().send_varbinds(engine, addr_name, None, b"", var_binds, done)
    elif kind == "GETBULK":
        cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(
            engine, addr_name, None, b"", non_repeaters, max_repetitions, var_binds, done
        )
    else:
        cmdgen.SetCommandGenerator().send_varbinds(engine, addr_name, None, b"", var_binds, done)
    return await future


def _auth_data(credentials: SnmpCredentials, device: str) -> tuple[Any, Any]:
    """(read, write) pysnmp auth objects for ``credentials``."""
    if credentials.version == "2c":
        if credentials.community is None:
            raise ConfigError(
                f"SNMP v2c for {device or 'this device'} needs 'community' in the credentials"
            )
        read = CommunityData(credentials.community.get_secret_value(), mpModel=1)
        write_secret = credentials.write_community or credentials.community
        write = CommunityData(write_secret.get_secret_value(), mpModel=1)
        return read, write
    if credentials.auth_key is None or credentials.priv_key is None:
        raise ConfigError(
            f"SNMPv3 for {device or 'this device'} needs auth_key and priv_key (authPriv) in "
            "the credentials"
        )
    user = UsmUserData(
        credentials.user,
        credentials.auth_key.get_secret_value(),
        credentials.priv_key.get_secret_value(),
        authProtocol=_AUTH_PROTOCOLS[credentials.auth_protocol],
        privProtocol=_PRIV_PROTOCOLS[credentials.priv_protocol],
    )
    return user, user


def _text(value: SnmpValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex(":")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, int):
        return value
    return 0


def inventory_client(
    inventory: Inventory,
    device: str,
    *,
    timeout_s: float = 1.0,
    retries: int = 1,
    manager: SnmpManager | None = None,
) -> SnmpClient:
    """A client of inventory device ``device``, with its address and SNMP credentials.

    Unknown names raise :class:`~netgpt.errors.ConfigError` naming the close ones.
    """
    entry = inventory.device(device)
    return SnmpClient(
        entry.host,
        entry.snmp_port,
        inventory.credentials_for(entry).snmp,
        device_name=entry.name,
        timeout_s=timeout_s,
        retries=retries,
        manager=manager,
    )


# -- many devices -----------------------------------------------------------------------------


async def poll_interface_counters(
    clients: Iterable[SnmpClient],
) -> dict[str, list[InterfaceCounters] | DeviceError]:
    """``interface_counters()`` of every client concurrently: ``{device: counters or error}``.

    A device that fails is reported by its :class:`DeviceError`; the others are unaffected.
    Anything else (a bug) is raised.
    """
    clients = list(clients)
    names = [c.device for c in clients]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"devices polled twice: {dupes}; give each client a unique device_name")
    results = await asyncio.gather(
        *(c.interface_counters() for c in clients), return_exceptions=True
    )
    out: dict[str, list[InterfaceCounters] | DeviceError] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, DeviceError):
            out[name] = result
        elif isinstance(result, BaseException):
            raise result
        else:
            out[name] = result
    return out


def run_snmp(
    operation: Callable[[SnmpClient], Awaitable[T]],
    host: str,
    port: int,
    credentials: SnmpCredentials,
    *,
    device_name: str = "",
    timeout_s: float = 1.0,
    retries: int = 1,
) -> T:
    """Run one client operation in a fresh event loop (for the CLI and scripts).

    ``run_snmp(lambda c: c.system(), "127.0.0.1", 16101, creds)``. Not from a running loop.
    """

    async def main() -> T:
        async with SnmpClient(
            host, port, credentials, device_name=device_name, timeout_s=timeout_s, retries=retries
        ) as client:
            return await operation(client)

    return asyncio.run(main())
