"""SNMP agents for emulated devices: many pysnmp engines in one asyncio loop, answering live.

One :class:`SnmpAgentPool` serves any number of :class:`~netgpt.sim_networks.device.Device`
objects, one SNMP engine per device (its own engine ID, users, communities and UDP port), all in a
single event loop running in a background thread. Nothing is compiled or copied: every request is
answered from the device object as it is at that moment.

What each agent serves (numeric OIDs; no MIB files are needed on either side):

* SNMPv2-MIB ``system`` (1.3.6.1.2.1.1): sysDescr, sysObjectID, sysUpTime, sysContact (writable),
  sysName (the device name), sysLocation (writable), sysServices.
* IF-MIB ``ifNumber``, ``ifTable`` (1.3.6.1.2.1.2.2) and ``ifXTable`` (1.3.6.1.2.1.31.1.1), from
  :meth:`Device.interface_states` (ifIndex = position + 1). 32-bit counters are the 64-bit ones
  modulo 2**32; ifSpeed is capped at 4294967295 (use ifHighSpeed, in Mbit/s, above that).
  ifLastChange is the sysUpTime at which the agent first saw the interface's current oper status.

Access: SNMPv3 USM authPriv with the credentials' user (sha/sha256/md5, aes128/des) may read
everything and SET sysContact / sysLocation; noAuthNoPriv and authNoPriv requests are refused.
SNMPv2c is served only for the communities the credentials set: ``community`` reads,
``write_community`` reads and writes. SNMPv1 is not served. A SET of a read-only object answers
``notWritable``; a SET through a read-only community answers ``noAccess``; both change nothing.

pysnmp notes: access is decided by this module's own access control model (``_DeviceAccess``)
instead of pysnmp's VACM, whose 7.1.30 implementation grants access through a view with no
entries (a read-only community set up the documented way could SET) and lets an entry for a
higher security level match a lower one; it is also the slowest part of setting up an engine.
pysnmp re-compiles its bundled MIB modules for every engine; the pool loads them from CPython's
bytecode cache instead. Each engine gets an engine ID of its own, new at every start (set after
construction: ``SnmpEngine(snmpEngineID=...)`` writes ``$TMPDIR/__pysnmp/<id>/boots`` and leaks
the file handle it reads it with).
"""

from __future__ import annotations

import asyncio
import bisect
import errno
import hashlib
import importlib.util
import logging
import marshal
import os
import random
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import errind, rfc1902, rfc3412
from pysnmp.proto import error as proto_error
from pysnmp.smi import builder, exval, instrum
from pysnmp.smi import error as smi_error

from netgpt.errors import ConfigError, NetworkRuntimeError, PortInUseError
from netgpt.inventory import SnmpCredentials
from netgpt.sim_networks.device import Device
from netgpt.yang_xml import InterfaceState

__all__ = ["SnmpAgentPool"]

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER: Oid = (1, 3, 6, 1, 2, 1, 2, 1)
IF_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)

_MAX_COUNTER32 = 2**32
_MAX_COUNTER64 = 2**64
_MAX_GAUGE32 = 2**32 - 1
_DEFAULT_MTU = 1500
_IF_TYPE_ETHERNET = 6  # IANAifType ethernetCsmacd
_SYS_SERVICES = 6  # datalink + internet layers (a router)
_DISPLAY_STRING_MAX = 255

# USM protocol identifiers by the names SnmpCredentials uses.
_AUTH_PROTOCOLS = {
    "sha": config.USM_AUTH_HMAC96_SHA,
    "sha256": config.USM_AUTH_HMAC192_SHA256,
    "md5": config.USM_AUTH_HMAC96_MD5,
}
_PRIV_PROTOCOLS = {"aes128": config.USM_PRIV_CFB128_AES, "des": config.USM_PRIV_CBC56_DES}

_USM_SECURITY_MODEL = 3
_V2C_SECURITY_MODEL = 2
_AUTH_PRIV = 3  # snmpSecurityLevel authPriv


# -- the MIB: objects, their syntax and how to read them from a snapshot ---------------------------


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One request's consistent view of a device (all varbinds of a GETBULK share it)."""

    request: object  # pysnmp's execution context of the request this snapshot answers
    uptime_ticks: int
    states: list[InterfaceState]
    last_change: list[int]  # ifLastChange (TimeTicks) per row
    access: dict[tuple[str, Oid], bool] = field(default_factory=dict)  # (view, object) -> allowed


_Reader = Callable[[Device, _Snapshot, int], Any]  # (device, snapshot, row) -> plain value
_Writer = Callable[[Device, str], None]


@dataclass(frozen=True, slots=True)
class _MibObject:
    """A scalar (instance ``.0``) or a table column (instance ``.ifIndex``)."""

    oid: Oid
    syntax: type
    read: _Reader
    column: bool = False
    write: _Writer | None = None


def _display(value: str) -> bytes:
    return value.encode("utf-8")


def _phys_address(device: str, interface: str) -> bytes:
    """Make up a stable, locally administered MAC address for an emulated interface."""
    return b"\x02" + hashlib.sha256(f"{device}/{interface}".encode()).digest()[:5]


def _zero(device: Device, snap: _Snapshot, row: int) -> int:
    return 0


def _scalar(oid: Oid, syntax: type, read: _Reader, write: _Writer | None = None) -> _MibObject:
    return _MibObject(oid, syntax, read, column=False, write=write)


def _col(entry: Oid, column: int, syntax: type, read: _Reader) -> _MibObject:
    return _MibObject((*entry, column), syntax, read, column=True)


def _state(read: Callable[[InterfaceState], Any]) -> _Reader:
    return lambda device, snap, row: read(snap.states[row])


def _set_contact(device: Device, value: str) -> None:
    device.set_system(contact=value)


def _set_location(device: Device, value: str) -> None:
    device.set_system(location=value)


_OBJECTS: tuple[_MibObject, ...] = (
    # SNMPv2-MIB system group
    _scalar((*SYSTEM, 1), rfc1902.OctetString, lambda d, s, r: _display(d.system.descr)),
    _scalar((*SYSTEM, 2), rfc1902.ObjectIdentifier, lambda d, s, r: d.system.object_id),
    _scalar((*SYSTEM, 3), rfc1902.TimeTicks, lambda d, s, r: s.uptime_ticks),
    _scalar(
        (*SYSTEM, 4), rfc1902.OctetString, lambda d, s, r: _display(d.system.contact), _set_contact
    ),
    _scalar((*SYSTEM, 5), rfc1902.OctetString, lambda d, s, r: _display(d.name)),
    _scalar(
        (*SYSTEM, 6),
        rfc1902.OctetString,
        lambda d, s, r: _display(d.system.location),
        _set_location,
    ),
    _scalar((*SYSTEM, 7), rfc1902.Integer32, lambda d, s, r: _SYS_SERVICES),
    # IF-MIB interfaces group
    _scalar(IF_NUMBER, rfc1902.Integer32, lambda d, s, r: len(s.states)),
    _col(IF_ENTRY, 1, rfc1902.Integer32, lambda d, s, r: r + 1),  # ifIndex
    _col(IF_ENTRY, 2, rfc1902.OctetString, _state(lambda st: _display(st.name))),  # ifDescr
    _col(IF_ENTRY, 3, rfc1902.Integer32, lambda d, s, r: _IF_TYPE_ETHERNET),  # ifType
    _col(IF_ENTRY, 4, rfc1902.Integer32, lambda d, s, r: _DEFAULT_MTU),  # ifMtu
    _col(IF_ENTRY, 5, rfc1902.Gauge32, _state(lambda st: min(st.speed_bps, _MAX_GAUGE32))),
    _col(
        IF_ENTRY,
        6,
        rfc1902.OctetString,
        lambda d, s, r: _phys_address(d.name, s.states[r].name),
    ),  # ifPhysAddress
    _col(IF_ENTRY, 7, rfc1902.Integer32, _state(lambda st: 1 if st.enabled else 2)),
    _col(IF_ENTRY, 8, rfc1902.Integer32, _state(lambda st: 1 if st.oper_up else 2)),
    _col(IF_ENTRY, 9, rfc1902.TimeTicks, lambda d, s, r: s.last_change[r]),  # ifLastChange
    _col(IF_ENTRY, 10, rfc1902.Counter32, _state(lambda st: st.in_octets % _MAX_COUNTER32)),
    _col(IF_ENTRY, 11, rfc1902.Counter32, _state(lambda st: st.in_unicast_pkts % _MAX_COUNTER32)),
    _col(IF_ENTRY, 12, rfc1902.Counter32, _zero),  # ifInNUcastPkts
    _col(IF_ENTRY, 13, rfc1902.Counter32, _zero),  # ifInDiscards
    _col(IF_ENTRY, 14, rfc1902.Counter32, _zero),  # ifInErrors
    _col(IF_ENTRY, 15, rfc1902.Counter32, _zero),  # ifInUnknownProtos
    _col(IF_ENTRY, 16, rfc1902.Counter32, _state(lambda st: st.out_octets % _MAX_COUNTER32)),
    _col(IF_ENTRY, 17, rfc1902.Counter32, _state(lambda st: st.out_unicast_pkts % _MAX_COUNTER32)),
    _col(IF_ENTRY, 18, rfc1902.Counter32, _zero),  # ifOutNUcastPkts
    _col(IF_ENTRY, 19, rfc1902.Counter32, _zero),  # ifOutDiscards
    _col(IF_ENTRY, 20, rfc1902.Counter32, _zero),  # ifOutErrors
    _col(IF_ENTRY, 21, rfc1902.Gauge32, _zero),  # ifOutQLen
    _col(IF_ENTRY, 22, rfc1902.ObjectIdentifier, lambda d, s, r: (0, 0)),  # ifSpecific
    # IF-MIB ifXTable
    _col(IFX_ENTRY, 1, rfc1902.OctetString, _state(lambda st: _display(st.name))),  # ifName
    _col(IFX_ENTRY, 2, rfc1902.Counter32, _zero),  # ifInMulticastPkts
    _col(IFX_ENTRY, 3, rfc1902.Counter32, _zero),  # ifInBroadcastPkts
    _col(IFX_ENTRY, 4, rfc1902.Counter32, _zero),  # ifOutMulticastPkts
    _col(IFX_ENTRY, 5, rfc1902.Counter32, _zero),  # ifOutBroadcastPkts
    _col(IFX_ENTRY, 6, rfc1902.Counter64, _state(lambda st: st.in_octets % _MAX_COUNTER64)),
    _col(IFX_ENTRY, 7, rfc1902.Counter64, _state(lambda st: st.in_unicast_pkts % _MAX_COUNTER64)),
    _col(IFX_ENTRY, 8, rfc1902.Counter64, _zero),  # ifHCInMulticastPkts
    _col(IFX_ENTRY, 9, rfc1902.Counter64, _zero),  # ifHCInBroadcastPkts
    _col(IFX_ENTRY, 10, rfc1902.Counter64, _state(lambda st: st.out_octets % _MAX_COUNTER64)),
    _col(IFX_ENTRY, 11, rfc1902.Counter64, _state(lambda st: st.out_unicast_pkts % _MAX_COUNTER64)),
    _col(IFX_ENTRY, 12, rfc1902.Counter64, _zero),  # ifHCOutMulticastPkts
    _col(IFX_ENTRY, 13, rfc1902.Counter64, _zero),  # ifHCOutBroadcastPkts
    _col(IFX_ENTRY, 14, rfc1902.Integer32, lambda d, s, r: 2),  # ifLinkUpDownTrapEnable
    _col(IFX_ENTRY, 15, rfc1902.Gauge32, _state(lambda st: st.speed_bps // 1_000_000)),
    _col(IFX_ENTRY, 16, rfc1902.Integer32, lambda d, s, r: 2),  # ifPromiscuousMode false
    _col(IFX_ENTRY, 17, rfc1902.Integer32, lambda d, s, r: 1),  # ifConnectorPresent true
    _col(IFX_ENTRY, 18, rfc1902.OctetString, _state(lambda st: _display(st.description))),
    _col(IFX_ENTRY, 19, rfc1902.TimeTicks, _zero),  # ifCounterDiscontinuityTime
)
_BY_OID: dict[Oid, _MibObject] = {obj.oid: obj for obj in _OBJECTS}


@dataclass(frozen=True, slots=True)
class _InstanceIndex:
    """Every instance OID of a device with ``rows`` interfaces, sorted, and what each one is."""

    keys: list[Oid]
    where: dict[Oid, tuple[_MibObject, int]]  # instance -> (object, row)

    @classmethod
    def build(cls, rows: int) -> _InstanceIndex:
        where: dict[Oid, tuple[_MibObject, int]] = {}
        for obj in _OBJECTS:
            if obj.column:
                for row in range(rows):
                    where[(*obj.oid, row + 1)] = (obj, row)
            else:
                where[(*obj.oid, 0)] = (obj, 0)
        return cls(sorted(where), where)


def _object_of(oid: Oid) -> _MibObject | None:
    """Find the object ``oid`` lies under (its instance may not exist), if any."""
    for end in range(len(oid) - 1, 0, -1):
        obj = _BY_OID.get(oid[:end])
        if obj is not None:
            return obj
    return None


class _DeviceMib(instrum.AbstractMibInstrumController):
    """MIB instrumentation of one device's SNMP context: GET / GETNEXT / SET against the device.

    The command responders call these methods with pysnmp varbinds and a ``context`` carrying
    ``acFun`` (access check: ``None`` allowed, ``True`` not in view, raises on no access).
    """

    def __init__(self, device: Device) -> None:
        self._device = device
        self._indexes: dict[int, _InstanceIndex] = {}
        self._snapshot: _Snapshot | None = None
        self._oper: dict[str, tuple[bool, int]] = {}  # interface -> (oper_up, ifLastChange)

    # -- snapshot of the device for one request -------------------------------------------

    def _take_snapshot(self, context: dict[str, Any]) -> _Snapshot:
        engine = context.get("snmpEngine")
        request: object = None
        if engine is not None:
            request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        snap = self._snapshot
        if snap is not None and request is not None and snap.request is request:
            return snap
        states = self._device.interface_states()
        # sysUpTime read right after the counters (reading them can wait on a lock): a manager
        # times the counters by it
        uptime_ticks = int(self._device.uptime_s() * 100) % _MAX_COUNTER32
        last_change = []
        for st in states:
            seen = self._oper.get(st.name)
            if seen is None or seen[0] != st.oper_up:
                seen = (st.oper_up, 0 if seen is None else uptime_ticks)
                self._oper[st.name] = seen
            last_change.append(seen[1])
        snap = _Snapshot(request, uptime_ticks, states, last_change)
        self._snapshot = snap
        return snap

    def _index(self, snap: _Snapshot) -> _InstanceIndex:
        rows = len(snap.states)
        index = self._indexes.get(rows)
        if index is None:
            index = self._indexes[rows] = _InstanceIndex.build(rows)
        return index

    @staticmethod
    def _allowed(
        view: str,
        obj: _MibObject | None,
        oid: Oid,
        idx: int,
        snap: _Snapshot,
        context: dict[str, Any],
    ) -> bool:
        """Whether the request may ``view`` ("read"/"write") ``oid``; cached per object.

        Access is decided per principal for whole subtrees above these objects, so one check per
        object and request is exact.
        """
        ac_fun = context.get("acFun")
        if ac_fun is None:
            return True
        key = (view, obj.oid if obj is not None else oid)
        allowed = snap.access.get(key)
        if allowed is None:
            not_in_view = ac_fun(view, (oid, None), **dict(context, idx=idx))
            allowed = snap.access[key] = not not_in_view
        return allowed

    def _value(self, obj: _MibObject, row: int, snap: _Snapshot) -> Any:
        return obj.syntax(obj.read(self._device, snap, row))

    # -- AbstractMibInstrumController API ---------------------------------------------------

    def read_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GET: the value of each instance, or noSuchObject / noSuchInstance."""
        try:
            snap = self._take_snapshot(context)
            index = self._index(snap)
            out: list[tuple[Any, Any]] = []
            for idx, (name, _) in enumerate(var_binds):
                oid = tuple(name)
                hit = index.where.get(oid)
                if hit is None:
                    obj = _object_of(oid)
                    missing = exval.noSuchObject
                    if obj is not None and self._allowed("read", obj, oid, idx, snap, context):
                        missing = exval.noSuchInstance
                    out.append((rfc1902.ObjectName(oid), missing))
                    continue
                obj, row = hit
                if not self._allowed("read", obj, oid, idx, snap, context):
                    out.append((rfc1902.ObjectName(oid), exval.noSuchObject))
                    continue
                out.append((rfc1902.ObjectName(oid), self._value(obj, row, snap)))
            return out
        except smi_error.SmiError:
            raise
        except Exception as exc:
            log.exception("SNMP GET on %s failed", self._device.name)
            raise smi_error.GenError(idx=0) from exc

    def read_next_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GETNEXT (and each GETBULK step): the next instance in view, or endOfMibView."""
        try:
            snap = self._take_snapshot(context)
            index = self._index(snap)
            out: list[tuple[Any, Any]] = []
            for idx, (name, _) in enumerate(var_binds):
                oid = tuple(name)
                pos = bisect.bisect_right(index.keys, oid)
                while pos < len(index.keys):
                    key = index.keys[pos]
                    obj, row = index.where[key]
                    if self._allowed("read", obj, key, idx, snap, context):
                        out.append((rfc1902.ObjectName(key), self._value(obj, row, snap)))
                        break
                    pos += 1
                else:
                    out.append((rfc1902.ObjectName(oid), exval.endOfMibView))
            return out
        except smi_error.SmiError:
            raise
        except Exception as exc:
            log.exception("SNMP GETNEXT on %s failed", self._device.name)
            raise smi_error.GenError(idx=0) from exc

    def write_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """SET: all varbinds are checked first, then applied together (all or nothing)."""
        snap = self._take_snapshot(context)
        index = self._index(snap)
        changes: list[tuple[_Writer, str]] = []
        out: list[tuple[Any, Any]] = []
        for idx, (name, value) in enumerate(var_binds):
            oid = tuple(name)
            hit = index.where.get(oid)
            obj = hit[0] if hit is not None else _object_of(oid)
            if not self._allowed("write", obj, oid, idx, snap, context):
                raise smi_error.NoAccessError(name=name, idx=idx)
            if hit is None or obj is None or obj.write is None:
                raise smi_error.NotWritableError(name=name, idx=idx)
            if getattr(value, "tagSet", None) != rfc1902.OctetString.tagSet:
                raise smi_error.WrongTypeError(name=name, idx=idx)
            raw = value.asOctets()
            if len(raw) > _DISPLAY_STRING_MAX:
                raise smi_error.WrongLengthError(name=name, idx=idx)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise smi_error.WrongValueError(name=name, idx=idx) from None
            changes.append((obj.write, text))
            out.append((rfc1902.ObjectName(oid), rfc1902.OctetString(raw)))
        try:
            for write, text in changes:
                write(self._device, text)
        except Exception as exc:
            log.exception("SNMP SET on %s failed", self._device.name)
            raise smi_error.CommitFailedError(idx=0) from exc
        return out


# -- access control ------------------------------------------------------------------------------

_ACCESS_MODEL_ID = 0x4E47  # this module's access control model, in place of VACM (3)
_V2C_READER = "netgpt-v2c-ro"
_V2C_WRITER = "netgpt-v2c-rw"


def _name(value: Any) -> str:
    if hasattr(value, "asOctets"):
        value = value.asOctets()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _DeviceAccess:
    """Who may read and write an agent's MIB: the whole MIB or nothing, per principal.

    The SNMPv3 user at authPriv reads and writes; the v2c read community reads; the v2c write
    community reads and writes. Anyone else (another security model, a lower security level,
    SNMPv1) gets ``authorizationError``; a reader's SET gets ``noAccess`` (not in its write
    view). Replaces VACM, whose pysnmp 7.1.30 implementation grants access through an empty view
    and matches entries of a higher security level, and which costs ~50 ms per engine to set up.
    """

    ACCESS_MODEL_ID = _ACCESS_MODEL_ID

    def __init__(self, credentials: SnmpCredentials) -> None:
        self._user = credentials.user

    def is_access_allowed(
        self,
        snmpEngine: SnmpEngine,
        securityModel: Any,
        securityName: Any,
        securityLevel: Any,
        viewType: str,
        contextName: Any,
        variableName: Any,
    ) -> None:
        """Return if allowed; raise ``StatusInformation`` (pysnmp's way) if not."""
        model, name, level = int(securityModel), _name(securityName), int(securityLevel)
        if _name(contextName) != "":
            raise proto_error.StatusInformation(errorIndication=errind.noSuchContext)
        if model == _USM_SECURITY_MODEL and name == self._user and level == _AUTH_PRIV:
            return None
        if model == _V2C_SECURITY_MODEL and name in (_V2C_READER, _V2C_WRITER):
            if viewType == "read" or name == _V2C_WRITER:
                return None
            raise proto_error.StatusInformation(errorIndication=errind.notInView)
        raise proto_error.StatusInformation(errorIndication=errind.noGroupName)


class _GetResponder(cmdrsp.GetCommandResponder):
    ACM_ID = _ACCESS_MODEL_ID


class _NextResponder(cmdrsp.NextCommandResponder):
    ACM_ID = _ACCESS_MODEL_ID


class _BulkResponder(cmdrsp.BulkCommandResponder):
    """GETBULK responder that returns up to 256 varbinds (pysnmp's default is 64)."""

    ACM_ID = _ACCESS_MODEL_ID
    max_varbinds = 256


class _SetResponder(cmdrsp.SetCommandResponder):
    ACM_ID = _ACCESS_MODEL_ID


# -- engine construction ------------------------------------------------------------------------

_PYC_SUFFIX = "\x00cached-pyc"  # a suffix no real file has: marks modules read from bytecode


class _BytecodeMibSource(builder.DirMibSource):
    """pysnmp's bundled MIB modules, loaded from CPython's ``__pycache__`` (compiled once).

    pysnmp compiles each MIB module's source twice per engine (``read`` and ``runpy``); with a
    fresh ``.pyc`` next to the source both are skipped. Falls back to the stock behaviour for
    anything without a valid timestamp-based ``.pyc``.
    """

    def __init__(self, path: str, codes: dict[tuple[str, str], tuple[Any, str]]) -> None:
        super().__init__(path)
        self._codes = codes

    def read(self, f: str) -> tuple[Any, str]:
        key = (super().full_path(), f)
        hit = self._codes.get(key)
        if hit is None:
            loaded = self._load_pyc(f)
            if loaded is None:
                return super().read(f)
            hit = self._codes[key] = loaded
        return hit[0], _PYC_SUFFIX

    def full_path(self, f: str = "", sfx: str = "") -> str:
        if sfx == _PYC_SUFFIX:
            return self._codes[(super().full_path(), f)][1]
        return super().full_path(f, sfx)

    def _load_pyc(self, f: str) -> tuple[Any, str] | None:
        source = os.path.join(super().full_path(), f + ".py")
        try:
            cached = importlib.util.cache_from_source(source)
            st = os.stat(source)
            with open(cached, "rb") as fh:
                data = fh.read()
        except (OSError, NotImplementedError, ValueError):
            return None
        header = data[:16]
        if (
            header[:4] != importlib.util.MAGIC_NUMBER
            or int.from_bytes(header[4:8], "little") != 0  # timestamp-based pyc
            or int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
            or int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF
        ):
            return None
        try:
            return marshal.loads(data[16:]), cached
        except (EOFError, ValueError, TypeError):
            return None


def _engine_id(salt: bytes, name: str, host: str, port: int) -> bytes:
    """RFC 3411 engine ID, format 5 (octets) under net-snmp's enterprise; new for every pool.

    A restarted agent gets a new ID, so managers rediscover it instead of meeting an engine whose
    clock went back with the same snmpEngineBoots (which SNMPv3 refuses as notInTimeWindow).
    """
    digest = hashlib.sha256(salt + f"{name}@{host}:{port}".encode()).digest()
    return b"\x80\x00\x1f\x88\x05" + digest[:12]


@dataclass(frozen=True, slots=True)
class _UsmKeys:
    auth_protocol: Oid
    priv_protocol: Oid
    auth_master: Any
    priv_master: Any


def _check_v3(credentials: SnmpCredentials, device: str) -> tuple[str, str]:
    auth = credentials.auth_key.get_secret_value() if credentials.auth_key else ""
    priv = credentials.priv_key.get_secret_value() if credentials.priv_key else ""
    if len(auth) < 8 or len(priv) < 8:
        raise ConfigError(
            f"SNMP agent of {device!r}: SNMPv3 authPriv needs auth_key and priv_key of at least "
            "8 characters each; set them in the credentials file"
        )
    if not credentials.user:
        raise ConfigError(f"SNMP agent of {device!r}: the SNMPv3 user name is empty")
    return auth, priv


class _LossyUdpTransport(udp.UdpAsyncioTransport):
    """A UDP transport that drops a fraction of incoming requests (fault injection)."""

    def __init__(self, drop: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drop_fraction = drop

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        if random.random() < self._drop_fraction():
            return
        super().datagram_received(datagram, transportAddress)


@dataclass
class _Agent:
    device: Device
    host: str
    port: int
    credentials: SnmpCredentials
    sock: socket.socket | None
    engine: SnmpEngine | None = None
    dispatcher: AsyncioDispatcher | None = None
    mib: _DeviceMib | None = None


class SnmpAgentPool:
    """SNMP agents of many devices, served from one asyncio loop in a background thread.

    Usage::

        pool = SnmpAgentPool()
        pool.add(device, port=16101, credentials=creds)   # binds the UDP port now
        pool.start()                                      # serving when it returns
        ...
        pool.close()                                      # frees every port

    Also a context manager (``with SnmpAgentPool() as pool``: closes on exit). :meth:`add` may
    be called after :meth:`start` too; the agent serves when it returns.
    """

    TIMER_RESOLUTION_S: ClassVar[float] = 1.0  # pysnmp housekeeping tick per engine

    def __init__(self, *, drop: Callable[[], float] | None = None) -> None:
        """``drop`` (fault injection) gives the fraction of requests to drop, read per request."""
        self._drop = drop
        self._agents: list[_Agent] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._codes: dict[tuple[str, str], tuple[Any, str]] = {}
        self._keys: dict[tuple[str, ...], _UsmKeys] = {}
        self._salt = os.urandom(8)

    def __enter__(self) -> SnmpAgentPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def ports(self) -> list[int]:
        """UDP ports of the agents, in the order they were added (the real port for port 0)."""
        with self._lock:
            return [a.port for a in self._agents]

    @property
    def running(self) -> bool:
        """Whether the pool's event loop is serving."""
        return self._thread is not None and self._thread.is_alive()

    def endpoints(self) -> dict[str, tuple[str, int]]:
        """``device name -> (host, port)`` of every agent."""
        with self._lock:
            return {a.device.name: (a.host, a.port) for a in self._agents}

    # -- adding agents ------------------------------------------------------------------------

    def add(
        self,
        device: Device,
        *,
        port: int,
        credentials: SnmpCredentials,
        host: str = "127.0.0.1",
    ) -> int:
        """Add ``device``'s agent on ``host:port`` (UDP) and return the port it bound.

        The socket is bound at once: a taken port raises :class:`PortInUseError` naming it.
        ``port=0`` picks a free port. Bad credentials raise :class:`ConfigError`.
        """
        if self._closed:
            raise NetworkRuntimeError("this SNMP agent pool is closed; create a new one")
        _check_v3(credentials, device.name)
        sock = _bind_udp(host, port, device.name)
        agent = _Agent(device, host, sock.getsockname()[1], credentials, sock)
        with self._lock:
            self._agents.append(agent)
        if self._loop is not None:
            try:
                self._call_in_loop(self._serve([agent]))
            except BaseException:
                with self._lock:
                    self._agents.remove(agent)
                self._release(agent)
                raise
        return agent.port

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event loop thread and serve every added agent; returns once all listen."""
        if self._closed:
            raise NetworkRuntimeError("this SNMP agent pool is closed; create a new one")
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="netgpt-snmp-agents", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop
        with self._lock:
            pending = [a for a in self._agents if a.engine is None]
        try:
            self._call_in_loop(self._serve(pending))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop serving, close every engine and socket, stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            agents = list(self._agents)
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            try:
                self._call_in_loop(self._shutdown(agents), timeout_s=10.0)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10.0)
        for agent in agents:
            self._release(agent)
        self._loop = None

    # -- inside the loop ------------------------------------------------------------------------

    def _call_in_loop(self, coro: Any, *, timeout_s: float | None = None) -> Any:
        assert self._loop is not None
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=timeout_s)

    async def _serve(self, agents: list[_Agent]) -> None:
        loop = asyncio.get_running_loop()
        for agent in agents:
            self._build_engine(agent, loop)
        # Let the datagram endpoints finish opening (the sockets are bound already).
        for _ in range(3):
            await asyncio.sleep(0)

    async def _shutdown(self, agents: list[_Agent]) -> None:
        for agent in agents:
            if agent.engine is not None:
                try:
                    agent.engine.close_dispatcher()
                except Exception:  # keep closing the others; the socket is closed below
                    log.warning(
                        "closing the SNMP engine of %s failed", agent.device.name, exc_info=True
                    )
                agent.engine = None
                agent.dispatcher = None
        await asyncio.sleep(0)

    def _release(self, agent: _Agent) -> None:
        if agent.sock is not None:
            agent.sock.close()
            agent.sock = None

    def _usm_keys(self, credentials: SnmpCredentials, device: str) -> _UsmKeys:
        auth, priv = _check_v3(credentials, device)
        cache_key = (credentials.auth_protocol, auth, credentials.priv_protocol, priv)
        keys = self._keys.get(cache_key)
        if keys is None:
            auth_proto = _AUTH_PROTOCOLS[credentials.auth_protocol]
            priv_proto = _PRIV_PROTOCOLS[credentials.priv_protocol]
            keys = _UsmKeys(
                auth_proto,
                priv_proto,
                config.AUTH_SERVICES[auth_proto].hash_passphrase(rfc1902.OctetString(auth)),
                config.PRIV_SERVICES[priv_proto].hash_passphrase(
                    auth_proto, rfc1902.OctetString(priv)
                ),
            )
            self._keys[cache_key] = keys
        return keys

    def _new_engine(self, agent: _Agent) -> SnmpEngine:
        mib_builder = builder.MibBuilder()
        mib_builder.set_mib_sources(
            *[
                _BytecodeMibSource(src.full_path(), self._codes)
                for src in mib_builder.get_mib_sources()
            ]
        )
        engine = SnmpEngine(
            msgAndPduDsp=rfc3412.MsgAndPduDispatcher(instrum.MibInstrumController(mib_builder))
        )
        # Set the engine ID the way SnmpEngine(snmpEngineID=...) does, minus its snmpEngineBoots
        # file (which it opens without closing): IDs are unique per pool, so boots stays 1.
        (engine_id,) = mib_builder.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
        engine_id.syntax = engine_id.syntax.clone(
            _engine_id(self._salt, agent.device.name, agent.host, agent.port)
        )
        engine.snmpEngineID = engine_id.syntax
        return engine

    def _build_engine(self, agent: _Agent, loop: asyncio.AbstractEventLoop) -> None:
        name = agent.device.name
        creds = agent.credentials
        try:
            engine = self._new_engine(agent)
            keys = self._usm_keys(creds, name)
            config.add_v3_user(
                engine,
                creds.user,
                keys.auth_protocol,
                keys.auth_master,
                keys.priv_protocol,
                keys.priv_master,
                authKeyType=config.USM_KEY_TYPE_MASTER,
                privKeyType=config.USM_KEY_TYPE_MASTER,
            )
            _configure_communities(engine, creds)
            engine.access_control_model[_ACCESS_MODEL_ID] = _DeviceAccess(creds)
            snmp_context = context.SnmpContext(engine)
            mib = _DeviceMib(agent.device)
            # Replace the default context (pysnmp's own MIB: USM tables, engine counters...).
            snmp_context.unregister_context_name(b"")
            snmp_context.register_context_name(b"", mib)
            _GetResponder(engine, snmp_context)
            _NextResponder(engine, snmp_context)
            _BulkResponder(engine, snmp_context)
            _SetResponder(engine, snmp_context)
            dispatcher = AsyncioDispatcher(loop=loop, timeout=self.TIMER_RESOLUTION_S)
            engine.register_transport_dispatcher(dispatcher)
            transport = (
                _LossyUdpTransport(self._drop, loop=loop)
                if self._drop is not None
                else udp.UdpAsyncioTransport(loop=loop)
            ).open_server_mode(sock=agent.sock)
            config.add_transport(engine, udp.DOMAIN_NAME, transport)
        except ConfigError:
            raise
        except Exception as exc:
            raise NetworkRuntimeError(
                f"could not start the SNMP agent of {name!r} on {agent.host}:{agent.port}: {exc}"
            ) from exc
        agent.engine, agent.dispatcher, agent.mib = engine, dispatcher, mib


def _configure_communities(engine: SnmpEngine, creds: SnmpCredentials) -> None:
    """Map the v2c communities the credentials set to the security names access checks use."""
    for name, secret in ((_V2C_READER, creds.community), (_V2C_WRITER, creds.write_community)):
        if secret is not None and secret.get_secret_value():
            config.add_v1_system(engine, name, secret.get_secret_value(), securityName=name)


def _bind_udp(host: str, port: int, device: str) -> socket.socket:
    """Bind a UDP socket to ``host:port`` (no SO_REUSEADDR: a taken port fails here)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise NetworkRuntimeError(f"cannot create a UDP socket for {device!r}: {exc}") from exc
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"UDP port {port} on {host} is already in use; cannot start the SNMP agent of "
                f"{device!r} (stop what holds it, or choose another port)"
            ) from exc
        raise NetworkRuntimeError(
            f"cannot bind the SNMP agent of {device!r} to {host}:{port}: {exc}"
        ) from exc
    sock.setblocking(False)
    return sock
