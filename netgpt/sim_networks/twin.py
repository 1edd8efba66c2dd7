"""The digital twin: what the network does with traffic under a given set of device configs.

Pure logic, no I/O, no threads. A :class:`DigitalTwin` holds a :class:`Topology` and one
:class:`DeviceConfig` per device and answers:

- :meth:`DigitalTwin.evaluate`: link loads, interface counters and per-demand delivered/dropped
  traffic (with the reason) for a :class:`TrafficMatrix`;
- :meth:`DigitalTwin.reachability`: whether one flow gets through, by which ECMP paths, and if not,
  which device, interface, ACL and rule (or routing reason) stopped it;
- :meth:`DigitalTwin.paths` and :meth:`DigitalTwin.path_latency_ms`: forwarding paths and delay;
- :meth:`DigitalTwin.with_configs`: the same questions for a candidate config set (what-if); the
  original twin is never changed.

The forwarding model
--------------------
- A link is up iff the interfaces at both ends are configured and ``enabled``. The IGP cost of the
  direction u->v is ``igp_cost`` on u's interface toward v (the topology's cost when unset).
- Each device owns its local prefixes (topology node ``prefixes``) on ``eth0``, while ``eth0`` is
  enabled. A device with ``eth0`` down neither originates nor receives local traffic.
- Each device picks a route by longest-prefix match over its connected prefixes (administrative
  distance 0), its static routes (distance 1) and IGP routes to every other owner's prefixes
  (distance 110; shortest paths over up links, equal-cost multipath split equally at every hop,
  as OSPF does). On equal prefix length the lower distance wins.
- A static route to a ``next_hop_address`` resolves to the neighbour whose link /31 (from the
  configured interface address) holds that address; ``outgoing_interface`` to the neighbour behind
  that interface (``eth0``: the local access network, i.e. delivered there); ``discard`` drops the
  traffic as a blackhole. A static route whose next hop is down or does not resolve is inactive.
- Traffic meets, in order: the ``eth0`` ingress ACL and policer of its source device; then at every
  hop the egress ACL and egress policer of the sending interface, the link, the ingress ACL and
  ingress policer of the receiving interface; and at the destination device the ``eth0`` egress ACL
  and policer. Several ACLs attached in one direction are read as one ordered list of rules; the
  first matching rule decides; no match accepts. A rule with a time range counts only when the
  twin's moment (``at``, default: when the twin was made) lies in that range.
- A policer (``RateLimit``) caps the traffic crossing it: every flow through it is scaled by the
  same factor and the excess is dropped and attributed to that policer. A class policer
  (``ClassPolicer``) does the same for the flows its class matches (first matching class of that
  interface and direction), before the interface's own policer.
- Traffic that would enter a forwarding loop (possible only through static routes) is dropped at the
  first device of the loop it reaches and reported as a routing loop with the cycle; the twin does
  not model the TTL-bounded load a real loop would carry.

Interface counters in a :class:`LoadReport` are what the emulated devices report: a link interface
counts as egress what it put on the wire (after egress ACL and policer) and as ingress what arrived
from the wire (before ingress ACL and policer), so what u sends on u->v is exactly what v receives;
``eth0`` counts originated traffic as ingress and traffic delivered to local prefixes as egress.

Header matching: a :class:`Demand` is one flow aggregate with one header. A field it leaves unset
(protocol ``any``, no port) matches only ACL rules that do not constrain that field.
"""

from __future__ import annotations

import ipaddress
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Literal, NamedTuple

import networkx as nx
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from netgpt.device_config import (
    AclAction,
    ClassPolicer,
    DeviceConfig,
    InterfaceConfig,
    IPProtocol,
    PortRange,
)
from netgpt.errors import ConfigError
from netgpt.sim_networks.topology import ACCESS_INTERFACE, Topology, _finish

__all__ = [
    "Demand",
    "DemandOutcome",
    "DigitalTwin",
    "Direction",
    "DropCause",
    "DropReason",
    "DroppedTraffic",
    "InterfaceLoad",
    "LinkLoad",
    "LoadReport",
    "PathTrace",
    "Reachability",
    "TrafficMatrix",
    "benchmark_graph",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_ANY_PROTOCOL = -1  # protocol code of a header whose protocol is "any"
_NO_PORT = -1
_MAX_PATHS = 256
_POLICER_ROUNDS = 200

# --------------------------------------------------------------------------------------------
# what crosses the border


class Direction(StrEnum):
    """Which way traffic crosses an interface."""

    INGRESS = "ingress"
    EGRESS = "egress"


class DropReason(StrEnum):
    """Why traffic was dropped, in the operator's words."""

    ACL = "acl"
    RATE_LIMIT = "rate limit"
    NO_ROUTE = "no route"
    BLACKHOLE = "blackhole route"
    LOOP = "routing loop"
    INTERFACE_DOWN = "interface down"


@dataclass(frozen=True)
class DropCause:
    """Where and why traffic was dropped.

    ``interface``/``direction`` are set for ACL, rate-limit and interface-down drops; ``acl`` and
    ``rule`` for ACL drops; ``detail`` explains routing drops (the address, the static route, the
    loop) and rate limits (the policer rate).
    """

    reason: DropReason
    device: str
    interface: str | None = None
    direction: Direction | None = None
    acl: str | None = None
    rule: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = self.device
        if self.interface is not None:
            where = f"{self.device} {self.interface}"
            if self.direction is not None:
                where = f"{where} {self.direction.value}"
        if self.reason is DropReason.ACL:
            return f"dropped by ACL {self.acl} rule {self.rule} on {where}"
        text = f"{self.reason.value} at {where}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class DroppedTraffic:
    """An amount of one demand's traffic (Mbit/s) dropped for one cause."""

    cause: DropCause
    rate_mbps: float


def _protocol(value: object, where: str) -> IPProtocol:
    try:
        return IPProtocol(str(value).lower()) if not isinstance(value, IPProtocol) else value
    except ValueError:
        raise ConfigError(
            f"{where}: protocol {value!r} is not one of any, tcp, udp, icmp"
        ) from None


def _port(value: object, name: str, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConfigError(f"{where}: {name} must be an integer 0..65535 or None, got {value!r}")
    return value


def _address(value: object, name: str, where: str) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise ConfigError(
            f"{where}: {name} {value!r} is not an IPv4 address such as 10.1.0.1"
        ) from None


def _check_ports(protocol: IPProtocol, src_port: int | None, dst_port: int | None,
                 where: str) -> None:
    if (src_port is not None or dst_port is not None) and protocol not in (
        IPProtocol.TCP,
        IPProtocol.UDP,
    ):
        raise ConfigError(
            f"{where}: ports are set but protocol is {protocol.value!r}; use tcp or udp"
        )


@dataclass(frozen=True)
class Demand:
    """Traffic offered at device ``src``'s access network toward device ``dst``, in Mbit/s.

    ``protocol`` is ``any``, ``tcp``, ``udp`` or ``icmp`` (stored as :class:`IPProtocol`); ports
    need tcp or udp. Addresses default, at evaluation, to the first host of the first local prefix
    of the device (10.1.0.0/16 -> 10.1.0.1); a source without local prefixes uses its first link
    address. Forwarding follows ``dst_address``: if it belongs to another device than ``dst``,
    the traffic goes there. Invalid values raise :class:`ConfigError` naming the field.
    """

    src: str
    dst: str
    rate_mbps: float
    protocol: IPProtocol | str = IPProtocol.ANY
    dst_port: int | None = None
    src_port: int | None = None
    src_address: str | None = None
    dst_address: str | None = None

    def __post_init__(self) -> None:
        where = f"demand {self.src!r} -> {self.dst!r}"
        for name in ("src", "dst"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: {name} must be a device name, got {value!r}")
        rate = self.rate_mbps
        if (
            not isinstance(rate, int | float)
            or isinstance(rate, bool)
            or not math.isfinite(rate)
            or rate < 0
        ):
            raise ConfigError(f"{where}: rate_mbps must be a finite number >= 0, got {rate!r}")
        protocol = _protocol(self.protocol, where)
        dst_port = _port(self.dst_port, "dst_port", where)
        src_port = _port(self.src_port, "src_port", where)
        _check_ports(protocol, src_port, dst_port, where)
        object.__setattr__(self, "rate_mbps", float(rate))
        object.__setattr__(self, "protocol", protocol)
        object.__setattr__(self, "src_address", _address(self.src_address, "src_address", where))
        object.__setattr__(self, "dst_address", _address(self.dst_address, "dst_address", where))


@dataclass(frozen=True)
class TrafficMatrix:
    """The demands offered to the network at one moment."""

    demands: tuple[Demand, ...] = ()

    def __post_init__(self) -> None:
        demands = tuple(self.demands)
        for i, d in enumerate(demands):
            if not isinstance(d, Demand):
                raise ConfigError(f"traffic matrix entry #{i} is {type(d).__name__}, not a Demand")
        object.__setattr__(self, "demands", demands)

    def __len__(self) -> int:
        return len(self.demands)

    def __iter__(self) -> Iterator[Demand]:
        return iter(self.demands)

    @property
    def total_mbps(self) -> float:
        """Sum of all offered rates."""
        return float(sum(d.rate_mbps for d in self.demands))

    def scaled(self, factor: float) -> TrafficMatrix:
        """Every rate multiplied by ``factor`` (>= 0)."""
        if not math.isfinite(factor) or factor < 0:
            raise ConfigError(f"scale factor must be a finite number >= 0, got {factor!r}")
        return TrafficMatrix(
            tuple(
                Demand(d.src, d.dst, d.rate_mbps * factor, d.protocol, d.dst_port, d.src_port,
                       d.src_address, d.dst_address)
                for d in self.demands
            )
        )


@dataclass(frozen=True)
class LinkLoad:
    """Load on one direction of a link: ``device``/``interface`` sends to ``neighbour``."""

    device: str
    interface: str
    neighbour: str
    neighbour_interface: str
    load_mbps: float
    capacity_mbps: float
    up: bool

    @property
    def utilization(self) -> float:
        """Load as a fraction of capacity (may exceed 1: the twin does not drop on congestion)."""
        return self.load_mbps / self.capacity_mbps


@dataclass(frozen=True)
class InterfaceLoad:
    """The rates one interface counts, in Mbit/s (see the module docstring for what counts)."""

    device: str
    interface: str
    ingress_mbps: float
    egress_mbps: float


@dataclass(frozen=True)
class DemandOutcome:
    """What became of one demand: delivered Mbit/s and the drops with their causes."""

    demand: Demand
    delivered_mbps: float
    drops: tuple[DroppedTraffic, ...] = ()

    @property
    def dropped_mbps(self) -> float:
        """Sum of all drops."""
        return float(sum(d.rate_mbps for d in self.drops))


@dataclass(frozen=True)
class LoadReport:
    """The network's answer to a traffic matrix.

    ``links`` is keyed by (sending device, receiving device) and holds every direction of every
    link (down links with zero load); ``interfaces`` by (device, interface) for every interface in
    the topology, ``eth0`` included; ``demands`` follows the order of the matrix.
    """

    links: Mapping[tuple[str, str], LinkLoad]
    interfaces: Mapping[tuple[str, str], InterfaceLoad]
    demands: tuple[DemandOutcome, ...]

    def link(self, device: str, neighbour: str) -> LinkLoad:
        """Return the direction ``device`` -> ``neighbour``; ``KeyError`` if there is none."""
        try:
            return self.links[(device, neighbour)]
        except KeyError:
            raise KeyError(f"no link {device} -> {neighbour} in this report") from None

    def interface(self, device: str, interface: str) -> InterfaceLoad:
        """Counters of ``device``'s ``interface``; ``KeyError`` if unknown."""
        try:
            return self.interfaces[(device, interface)]
        except KeyError:
            raise KeyError(f"no interface {device} {interface} in this report") from None

    @property
    def max_utilization(self) -> float:
        """The highest link utilization (0 for a network without links)."""
        return max((lk.utilization for lk in self.links.values()), default=0.0)

    @property
    def busiest_link(self) -> LinkLoad | None:
        """The most utilized link direction (ties: first in sorted order)."""
        links = sorted(self.links.values(), key=lambda lk: (-lk.utilization, lk.device,
                                                            lk.neighbour))
        return links[0] if links else None

    @property
    def offered_mbps(self) -> float:
        """Sum of all offered rates."""
        return float(sum(o.demand.rate_mbps for o in self.demands))

    @property
    def delivered_mbps(self) -> float:
        """Sum of all delivered rates."""
        return float(sum(o.delivered_mbps for o in self.demands))

    @property
    def dropped_mbps(self) -> float:
        """Sum of all dropped rates."""
        return float(sum(o.dropped_mbps for o in self.demands))

    def drops_by_cause(self) -> dict[DropCause, float]:
        """Return dropped Mbit/s summed per cause, largest first."""
        total: dict[DropCause, float] = defaultdict(float)
        for o in self.demands:
            for d in o.drops:
                total[d.cause] += d.rate_mbps
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))

    def dropped_at(self, device: str) -> float:
        """Mbit/s dropped at ``device`` (all causes)."""
        return float(sum(d.rate_mbps for o in self.demands for d in o.drops
                         if d.cause.device == device))


@dataclass(frozen=True)
class PathTrace:
    """One ECMP path: the devices crossed, the share of the flow on it and how it ended.

    ``delivered`` paths end at the device that owns the destination; the others end where the
    traffic was dropped (``drop``). ``delay_ms`` sums the link delays along the path.
    """

    devices: tuple[str, ...]
    fraction: float
    delivered: bool
    delay_ms: float
    drop: DropCause | None = None


@dataclass(frozen=True)
class Reachability:
    """Whether a flow from ``src_device`` reaches ``dst_address``, how and, if not, why.

    ``reachable`` is true when any part of the flow is delivered (an ECMP branch may still be
    dropped: see ``delivered_fraction`` and ``drops``). ``paths`` lists at most 256 ECMP paths
    (``paths_truncated`` says when there were more).
    """

    src_device: str
    src_address: str
    dst_address: str
    protocol: IPProtocol
    dst_port: int | None
    src_port: int | None
    reachable: bool
    delivered_fraction: float
    paths: tuple[PathTrace, ...]
    drops: tuple[DropCause, ...]
    paths_truncated: bool = False

    def __str__(self) -> str:
        flow = f"{self.src_device} ({self.src_address}) -> {self.dst_address} {self.protocol.value}"
        if self.dst_port is not None:
            flow = f"{flow}/{self.dst_port}"
        if not self.drops:
            return f"{flow}: reachable"
        causes = "; ".join(str(c) for c in self.drops)
        if self.reachable:
            return f"{flow}: partly reachable ({self.delivered_fraction:.0%}); {causes}"
        return f"{flow}: unreachable; {causes}"


# --------------------------------------------------------------------------------------------
# internal model


class _Header(NamedTuple):
    """One flow's header, as integers, plus where it enters."""

    src: int
    src_address: int
    dst_address: int
    protocol: int
    src_port: int
    dst_port: int


class _Rule(NamedTuple):
    """An ACL rule compiled to integers."""

    acl: str
    name: str
    drops: bool
    protocol: int  # _ANY_PROTOCOL for any
    src_net: int
    src_mask: int
    dst_net: int
    dst_mask: int
    src_ports: tuple[int, int] | None
    dst_ports: tuple[int, int] | None

    def matches(self, h: _Header) -> bool:
        if self.protocol != _ANY_PROTOCOL and self.protocol != h.protocol:
            return False
        if (h.src_address & self.src_mask) != self.src_net:
            return False
        if (h.dst_address & self.dst_mask) != self.dst_net:
            return False
        if self.src_ports is not None and not (
            self.src_ports[0] <= h.src_port <= self.src_ports[1]
        ):
            return False
        return self.dst_ports is None or self.dst_ports[0] <= h.dst_port <= self.dst_ports[1]


_Program = tuple[_Rule, ...]


class _Attachment(NamedTuple):
    """ACL rules attached at one interface in one direction."""

    device: str
    interface: str
    direction: Direction
    program: _Program

    def verdict(self, h: _Header) -> DropCause | None:
        for rule in self.program:
            if rule.matches(h):
                if not rule.drops:
                    return None
                return DropCause(DropReason.ACL, self.device, self.interface, self.direction,
                                 rule.acl, rule.name)
        return None


class _Policer(NamedTuple):
    device: str
    interface: str
    direction: Direction
    limit_mbps: float
    traffic_class: str | None = None  # a class policer's name; None: the interface's policer

    @property
    def cause(self) -> DropCause:
        what = "policer" if self.traffic_class is None else f"class policer {self.traffic_class}"
        return DropCause(DropReason.RATE_LIMIT, self.device, self.interface, self.direction,
                         detail=f"{what} {self.limit_mbps:g} Mbit/s")


_Classes = tuple[tuple[_Rule, int], ...]  # (class match, policer id), first match wins


class _Static(NamedTuple):
    net: int
    mask: int
    length: int
    kind: Literal["via", "deliver", "discard"]
    edge: int
    text: str


class _Decision(NamedTuple):
    kind: Literal["deliver", "drop", "forward"]
    edges: tuple[int, ...] = ()
    cause: DropCause | None = None


class _Hop(NamedTuple):
    edge: int
    neighbour: int
    cause: DropCause | None  # an ACL drop on this hop
    at_ingress: bool  # the drop happens at the neighbour's ingress (after the link)


class _Action(NamedTuple):
    kind: Literal["deliver", "drop", "forward"]
    hops: tuple[_Hop, ...] = ()
    cause: DropCause | None = None  # drop cause, or the eth0 egress ACL drop when delivering


@dataclass
class _FlowGraph:
    """How one header is forwarded from its source: actions per reached device, in order."""

    header: _Header
    entry_drop: DropCause | None
    actions: dict[int, _Action]
    order: list[int]


@dataclass
class _Tally:
    """Accumulated loads of one evaluation pass."""

    link: FloatArray
    eth0_in: FloatArray
    eth0_out: FloatArray
    offered: dict[int, float]


def _mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0


def _ipv4_text(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def _parse_prefix(text: str, device: str) -> tuple[int, int, int]:
    """(network, mask, length) of ``text``; quick for the usual a.b.c.d/n spelling."""
    try:
        address, _, length_text = text.partition("/")
        parts = [int(x) for x in address.split(".")]
        length = int(length_text) if length_text else 32
        if len(parts) != 4 or not all(0 <= x <= 255 for x in parts) or not 0 <= length <= 32:
            raise ValueError(text)
    except ValueError:
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise ConfigError(
                f"device {device!r} has local prefix {text!r}, which is not an IPv4 prefix such "
                "as 10.1.0.0/16; fix the topology"
            ) from None
        return int(net.network_address), _mask(net.prefixlen), net.prefixlen
    value = (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]
    mask = _mask(length)
    return value & mask, mask, length


def _first_host(network: int, length: int) -> int:
    return network if length >= 31 else network + 1


class _NetworkIndex:
    """Everything the twin derives from the topology alone (shared by what-if twins)."""

    def __init__(self, topology: Topology) -> None:
        self.nodes: list[str] = topology.devices
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.nodes)}
        g = topology.graph
        directed: list[tuple[int, int, str, str, str, float, float, int]] = []
        for a, b in g.edges:
            d = g.edges[a, b]
            ports = d["ports"]
            for u, v in ((a, b), (b, a)):
                directed.append((self.index[u], self.index[v], ports[u][0], ports[v][0],
                                 ports[u][1], float(d["capacity_mbps"]), float(d["delay_ms"]),
                                 int(d["igp_cost"])))
        directed.sort(key=lambda r: (r[0], r[1]))
        n, m = len(self.nodes), len(directed)
        self.n_nodes, self.n_edges = n, m
        self.eu: IntArray = np.array([r[0] for r in directed], dtype=np.int64)
        self.ev: IntArray = np.array([r[1] for r in directed], dtype=np.int64)
        self.if_u: list[str] = [r[2] for r in directed]
        self.if_v: list[str] = [r[3] for r in directed]
        self.topo_address_u: list[str] = [r[4] for r in directed]
        self.capacity: FloatArray = np.array([r[5] for r in directed], dtype=np.float64)
        self.delay: FloatArray = np.array([r[6] for r in directed], dtype=np.float64)
        self.topo_cost: list[int] = [r[7] for r in directed]
        self.out_edges: list[list[int]] = [[] for _ in range(n)]
        self.edge_by_interface: dict[tuple[int, str], int] = {}
        for e in range(m):
            self.out_edges[int(self.eu[e])].append(e)
            self.edge_by_interface[(int(self.eu[e]), self.if_u[e])] = e
        ones = np.ones(m, dtype=np.float64)
        cols = np.arange(m)
        self.out_matrix = csr_matrix((ones, (self.eu, cols)), shape=(n, m))
        self.in_matrix = csr_matrix((ones, (self.ev, cols)), shape=(n, m))
        self.prefixes: list[list[tuple[int, int, int]]] = []
        # default destination address (-1: none) and source address of each device, as integers
        self.default_address: list[int] = []
        self.source_address: list[int] = []
        for i, node in enumerate(self.nodes):
            parsed = [_parse_prefix(p, node) for p in topology.local_prefixes(node)]
            self.prefixes.append(parsed)
            first = _first_host(parsed[0][0], parsed[0][2]) if parsed else -1
            self.default_address.append(first)
            if first < 0 and self.out_edges[i]:  # no local prefix: its first link address
                first = int(ipaddress.IPv4Interface(self.topo_address_u[self.out_edges[i][0]]).ip)
            self.source_address.append(max(first, 0))


def _compiled_match(
    acl: str,
    name: str,
    drops: bool,
    protocol: IPProtocol,
    source_prefix: str,
    destination_prefix: str,
    source_ports: PortRange | None,
    destination_ports: PortRange | None,
) -> _Rule:
    """One match (an ACL rule, or a class policer's match) compiled to integers."""
    src = ipaddress.IPv4Network(source_prefix)
    dst = ipaddress.IPv4Network(destination_prefix)
    proto = protocol.number
    return _Rule(
        acl=acl,
        name=name,
        drops=drops,
        protocol=_ANY_PROTOCOL if proto is None else proto,
        src_net=int(src.network_address),
        src_mask=_mask(src.prefixlen),
        dst_net=int(dst.network_address),
        dst_mask=_mask(dst.prefixlen),
        src_ports=(source_ports.lower, source_ports.upper) if source_ports else None,
        dst_ports=(destination_ports.lower, destination_ports.upper) if destination_ports else None,
    )


def _compile_acl_rules(config: DeviceConfig, names: tuple[str, ...], at: datetime) -> _Program:
    rules: list[_Rule] = []
    for name in names:
        for r in config.acl(name).rules:
            if not r.active_at(at):
                continue
            rules.append(_compiled_match(
                name, r.name, r.action is not AclAction.ACCEPT, r.protocol, r.source_prefix,
                r.destination_prefix, r.source_ports, r.destination_ports))
    return tuple(rules)


class _HeaderArrays(NamedTuple):
    src: IntArray
    src_address: IntArray
    dst_address: IntArray
    protocol: IntArray
    src_port: IntArray
    dst_port: IntArray


def _program_drops(program: _Program, h: _HeaderArrays) -> BoolArray:
    """Vectorised first-match verdict: which headers ``program`` drops."""
    n = len(h.src)
    undecided = np.ones(n, dtype=np.bool_)
    drops = np.zeros(n, dtype=np.bool_)
    for rule in program:
        hit = undecided.copy()
        if rule.protocol != _ANY_PROTOCOL:
            hit &= h.protocol == rule.protocol
        if rule.src_mask:
            hit &= (h.src_address & rule.src_mask) == rule.src_net
        if rule.dst_mask:
            hit &= (h.dst_address & rule.dst_mask) == rule.dst_net
        if rule.src_ports is not None:
            hit &= (h.src_port >= rule.src_ports[0]) & (h.src_port <= rule.src_ports[1])
        if rule.dst_ports is not None:
            hit &= (h.dst_port >= rule.dst_ports[0]) & (h.dst_port <= rule.dst_ports[1])
        if rule.drops:
            drops |= hit
        undecided &= ~hit
    return drops


class _ForwardingState:
    """The configs compiled against the topology: links, costs, routes, ACLs and policers."""

    def __init__(
        self, ix: _NetworkIndex, configs: Mapping[str, DeviceConfig], at: datetime
    ) -> None:
        self.ix = ix
        n, m = ix.n_nodes, ix.n_edges
        itf: list[dict[str, InterfaceConfig]] = [
            {i.name: i for i in configs[node].interfaces} for node in ix.nodes
        ]
        self.eth0_up: BoolArray = np.array(
            [ACCESS_INTERFACE in d and d[ACCESS_INTERFACE].enabled for d in itf], dtype=np.bool_
        )
        up = np.zeros(m, dtype=np.bool_)
        cost = np.zeros(m, dtype=np.float64)
        for e in range(m):
            u, v = int(ix.eu[e]), int(ix.ev[e])
            a, b = itf[u].get(ix.if_u[e]), itf[v].get(ix.if_v[e])
            up[e] = a is not None and b is not None and a.enabled and b.enabled
            own = a.igp_cost if a is not None else None
            cost[e] = float(own if own is not None else ix.topo_cost[e])
        self.up, self.cost = up, cost
        upe = np.flatnonzero(up)
        # transposed cost matrix: dijkstra from d on it gives every node's distance to d
        self.reverse_costs = csr_matrix((cost[upe], (ix.ev[upe], ix.eu[upe])), shape=(n, n))
        self._distances: dict[tuple[int, ...], FloatArray] = {}

        # connected prefixes of devices whose eth0 is up, by prefix length (longest first)
        table: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i in range(n):
            if self.eth0_up[i]:
                for net, _, length in ix.prefixes[i]:
                    table[length][net].append(i)
        self.owner_table: list[tuple[int, int, dict[int, tuple[int, ...]]]] = [
            (length, _mask(length), {net: tuple(sorted(set(o))) for net, o in nets.items()})
            for length, nets in sorted(table.items(), reverse=True)
        ]

        # static routes, resolved
        self.statics: list[list[_Static]] = [[] for _ in range(n)]
        self.all_statics: list[tuple[int, int, int]] = []
        for i, node in enumerate(ix.nodes):
            for route in configs[node].static_routes:
                network = ipaddress.IPv4Network(route.prefix)
                key = (int(network.network_address), _mask(network.prefixlen), network.prefixlen)
                self.all_statics.append(key)
                resolved = self._resolve_static(i, route.next_hop_address,
                                                route.outgoing_interface, route.discard, itf[i])
                if resolved is not None:
                    kind, edge = resolved
                    self.statics[i].append(_Static(*key, kind, edge, route.prefix))

        # ACLs
        self.egress_acl: list[_Attachment | None] = [None] * m
        self.ingress_acl: list[_Attachment | None] = [None] * m
        self.eth0_in_acl: list[_Attachment | None] = [None] * n
        self.eth0_out_acl: list[_Attachment | None] = [None] * n
        compiled: dict[tuple[str, tuple[str, ...]], _Program] = {}

        def attach(node: int, name: str, direction: Direction) -> _Attachment | None:
            i_cfg = itf[node].get(name)
            if i_cfg is None:
                return None
            names = i_cfg.acl_ingress if direction is Direction.INGRESS else i_cfg.acl_egress
            if not names:
                return None
            key = (ix.nodes[node], names)
            if key not in compiled:
                compiled[key] = _compile_acl_rules(configs[ix.nodes[node]], names, at)
            return _Attachment(ix.nodes[node], name, direction, compiled[key])

        for e in range(m):
            self.egress_acl[e] = attach(int(ix.eu[e]), ix.if_u[e], Direction.EGRESS)
            self.ingress_acl[e] = attach(int(ix.ev[e]), ix.if_v[e], Direction.INGRESS)
        for i in range(n):
            self.eth0_in_acl[i] = attach(i, ACCESS_INTERFACE, Direction.INGRESS)
            self.eth0_out_acl[i] = attach(i, ACCESS_INTERFACE, Direction.EGRESS)
        # attachments with a drop rule, with the source device they are limited to (eth0 ingress)
        scoped: dict[tuple[_Program, int], None] = {}
        for i in range(n):
            att = self.eth0_in_acl[i]
            if att is not None and any(r.drops for r in att.program):
                scoped[(att.program, i)] = None
        for att in (*self.egress_acl, *self.ingress_acl, *self.eth0_out_acl):
            if att is not None and any(r.drops for r in att.program):
                scoped[(att.program, -1)] = None
        self.dropping_programs: list[tuple[_Program, int]] = list(scoped)

        # policers
        self.policers: list[_Policer] = []
        policer_ids: dict[tuple[int, str, Direction], int] = {}

        def policer(node: int, name: str, direction: Direction) -> int:
            i_cfg = itf[node].get(name)
            if i_cfg is None or i_cfg.rate_limit is None:
                return -1
            rl = i_cfg.rate_limit
            limit = rl.ingress_mbps if direction is Direction.INGRESS else rl.egress_mbps
            if limit is None:
                return -1
            key = (node, name, direction)
            if key not in policer_ids:
                policer_ids[key] = len(self.policers)
                self.policers.append(_Policer(ix.nodes[node], name, direction, float(limit)))
            return policer_ids[key]

        def classes(node: int, name: str, direction: Direction) -> _Classes:
            i_cfg = itf[node].get(name)
            if i_cfg is None:
                return ()
            out: list[tuple[_Rule, int]] = []
            for c in i_cfg.class_policers:
                if c.direction != direction.value:
                    continue
                pid = len(self.policers)
                self.policers.append(_Policer(ix.nodes[node], name, direction, c.rate_mbps,
                                              c.name))
                out.extend(
                    (_compiled_match(c.name, c.name, False, m.protocol, m.source_prefix,
                                     m.destination_prefix, None, m.destination_ports), pid)
                    for m in c.matches
                )
            return tuple(out)

        self.egress_classes = [classes(int(ix.eu[e]), ix.if_u[e], Direction.EGRESS)
                               for e in range(m)]
        self.ingress_classes = [classes(int(ix.ev[e]), ix.if_v[e], Direction.INGRESS)
                                for e in range(m)]
        self.eth0_in_classes = [classes(i, ACCESS_INTERFACE, Direction.INGRESS)
                                for i in range(n)]
        self.eth0_out_classes = [classes(i, ACCESS_INTERFACE, Direction.EGRESS)
                                 for i in range(n)]
        self.egress_policer = [policer(int(ix.eu[e]), ix.if_u[e], Direction.EGRESS)
                               for e in range(m)]
        self.ingress_policer = [policer(int(ix.ev[e]), ix.if_v[e], Direction.INGRESS)
                                for e in range(m)]
        self.eth0_in_policer = [policer(i, ACCESS_INTERFACE, Direction.INGRESS) for i in range(n)]
        self.eth0_out_policer = [policer(i, ACCESS_INTERFACE, Direction.EGRESS) for i in range(n)]
        self._decisions: dict[int, dict[int, _Decision]] = {}

    # ---- routing ----------------------------------------------------------------------------

    def _resolve_static(
        self,
        node: int,
        next_hop: str | None,
        out_interface: str | None,
        discard: bool,
        itf: Mapping[str, InterfaceConfig],
    ) -> tuple[Literal["via", "deliver", "discard"], int] | None:
        """(kind, edge) of an active static route, ``None`` when inactive or unresolvable."""
        ix = self.ix
        if discard:
            return "discard", -1
        if out_interface is not None:
            if out_interface == ACCESS_INTERFACE:
                return ("deliver", -1) if self.eth0_up[node] else None
            e = ix.edge_by_interface.get((node, out_interface))
            return ("via", e) if e is not None and self.up[e] else None
        assert next_hop is not None  # the model guarantees exactly one next-hop kind
        address = ipaddress.IPv4Address(next_hop)
        for e in ix.out_edges[node]:
            i_cfg = itf.get(ix.if_u[e])
            if i_cfg is None or i_cfg.ipv4_address is None:
                continue
            own = ipaddress.IPv4Interface(i_cfg.ipv4_address)
            if address in own.network and address != own.ip:
                return ("via", e) if self.up[e] else None
        return None

    def distances_to(self, owners: tuple[int, ...]) -> FloatArray:
        """Every device's IGP distance to the nearest of ``owners`` (inf when cut off)."""
        found = self._distances.get(owners)
        if found is None:
            found = np.asarray(
                dijkstra(self.reverse_costs, indices=list(owners), min_only=True),
                dtype=np.float64,
            )
            self._distances[owners] = found
        return found

    def distance_matrix(self, columns: list[tuple[int, ...]]) -> FloatArray:
        """Distances (devices x columns) to each column's owners, computed in one batch."""
        n = self.ix.n_nodes
        out = np.empty((n, len(columns)), dtype=np.float64)
        missing = [c for c, o in enumerate(columns) if len(o) == 1 and o not in self._distances]
        if missing:
            sources = [columns[c][0] for c in missing]
            batch = np.asarray(dijkstra(self.reverse_costs, indices=sources), dtype=np.float64)
            for row, c in enumerate(missing):
                self._distances[columns[c]] = batch[row]
        for c, owners in enumerate(columns):
            out[:, c] = self.distances_to(owners)
        return out

    def best_prefix(self, address: int) -> tuple[int, tuple[int, ...]] | None:
        """(length, owners) of the longest connected prefix holding ``address`` anywhere."""
        for length, mask, nets in self.owner_table:
            owners = nets.get(address & mask)
            if owners is not None:
                return length, owners
        return None

    def decide(self, node: int, address: int) -> _Decision:
        """Return the forwarding decision of ``node`` for ``address`` (cached)."""
        per_node = self._decisions.setdefault(address, {})
        found = per_node.get(node)
        if found is None:
            found = self._decide(node, address)
            per_node[node] = found
        return found

    def _decide(self, node: int, address: int) -> _Decision:
        ix = self.ix
        best_length = -1
        decision: _Decision | None = None
        for st in self.statics[node]:  # a device has at most one route per prefix
            if (address & st.mask) == st.net and st.length > best_length:
                best_length = st.length
                if st.kind == "discard":
                    decision = _Decision("drop", cause=DropCause(
                        DropReason.BLACKHOLE, ix.nodes[node],
                        detail=f"static route {st.text} discards"))
                elif st.kind == "deliver":
                    decision = _Decision("deliver")
                else:
                    decision = _Decision("forward", (st.edge,))
        for length, mask, nets in self.owner_table:  # longest first
            if length < best_length:
                break
            owners = nets.get(address & mask)
            if owners is None:
                continue
            if node in owners:  # connected (distance 0) beats a static route of equal length
                decision = _Decision("deliver")
                break
            if length == best_length:  # a static route (1) beats the IGP (110)
                break
            dist = self.distances_to(owners)
            here = dist[node]
            if not math.isfinite(here):
                continue  # the owners are cut off from here: a shorter prefix may still route
            edges = tuple(
                e for e in ix.out_edges[node]
                if self.up[e] and dist[int(ix.ev[e])] + self.cost[e] == here
            )
            decision = _Decision("forward", edges)
            break
        if decision is None:
            text = str(ipaddress.IPv4Address(address))
            return _Decision("drop", cause=DropCause(DropReason.NO_ROUTE, ix.nodes[node],
                                                     detail=f"no route to {text}"))
        return decision

    # ---- one flow, exactly --------------------------------------------------------------------

    def flow_graph(self, h: _Header, *, apply_acls: bool = True) -> _FlowGraph:
        """Trace how header ``h`` is forwarded from its source, with ACL verdicts and loops."""
        ix = self.ix
        s = h.src
        if not self.eth0_up[s]:
            down = DropCause(DropReason.INTERFACE_DOWN, ix.nodes[s], ACCESS_INTERFACE,
                             Direction.INGRESS, detail="the access interface is disabled")
            return _FlowGraph(h, down, {}, [])
        entry = self.eth0_in_acl[s] if apply_acls else None
        refused = entry.verdict(h) if entry is not None else None
        if refused is not None:
            return _FlowGraph(h, refused, {}, [])
        actions: dict[int, _Action] = {}
        stack = [s]
        while stack:
            u = stack.pop()
            if u in actions:
                continue
            dec = self.decide(u, h.dst_address)
            if dec.kind == "drop":
                actions[u] = _Action("drop", cause=dec.cause)
            elif dec.kind == "deliver":
                att = self.eth0_out_acl[u] if apply_acls else None
                actions[u] = _Action("deliver", cause=att.verdict(h) if att else None)
            else:
                hops = []
                for e in dec.edges:
                    v = int(ix.ev[e])
                    cause: DropCause | None = None
                    at_ingress = False
                    if apply_acls:
                        eg = self.egress_acl[e]
                        cause = eg.verdict(h) if eg is not None else None
                        if cause is None:
                            ing = self.ingress_acl[e]
                            cause = ing.verdict(h) if ing is not None else None
                            at_ingress = cause is not None
                    hops.append(_Hop(e, v, cause, at_ingress))
                    if cause is None and v not in actions:
                        stack.append(v)
                actions[u] = _Action("forward", tuple(hops))
        order = self._topological_order(s, actions)
        if len(order) < len(actions):
            self._cut_loops(actions, set(actions) - set(order))
            order = self._topological_order(s, actions)
        return _FlowGraph(h, None, actions, order)

    @staticmethod
    def _successors(action: _Action) -> Iterator[int]:
        for hop in action.hops:
            if hop.cause is None:
                yield hop.neighbour

    def _topological_order(self, s: int, actions: dict[int, _Action]) -> list[int]:
        indegree: dict[int, int] = dict.fromkeys(actions, 0)
        for a in actions.values():
            for v in self._successors(a):
                indegree[v] += 1
        ready = [u for u, k in indegree.items() if k == 0]
        order: list[int] = []
        while ready:
            u = ready.pop()
            order.append(u)
            for v in self._successors(actions[u]):
                indegree[v] -= 1
                if indegree[v] == 0:
                    ready.append(v)
        return order

    def _cut_loops(self, actions: dict[int, _Action], suspects: set[int]) -> None:
        """Turn every device on a forwarding cycle into a routing-loop drop naming the cycle."""
        g = nx.DiGraph()
        g.add_nodes_from(suspects)
        for u in suspects:
            g.add_edges_from((u, v) for v in self._successors(actions[u]) if v in suspects)
        names = self.ix.nodes
        loops: dict[int, str] = {}
        for component in nx.strongly_connected_components(g):
            if len(component) < 2:
                continue
            for u in component:
                walk = [u]
                seen = {u}
                cur = u
                while True:  # every device of the component has a successor inside it
                    cur = next(v for v in self._successors(actions[cur]) if v in component)
                    walk.append(cur)
                    if cur in seen:
                        break
                    seen.add(cur)
                loops[u] = " -> ".join(names[w] for w in walk)
        for u, cycle in loops.items():
            actions[u] = _Action("drop", cause=DropCause(
                DropReason.LOOP, names[u], detail=f"forwarding loop {cycle}"))

    def propagate(
        self,
        fg: _FlowGraph,
        rate: float,
        factors: FloatArray | None,
        tally: _Tally | None,
        drops: dict[DropCause, float],
    ) -> float:
        """Push ``rate`` Mbit/s along ``fg``; add loads to ``tally`` and drops to ``drops``.

        ``factors`` scales the traffic leaving each policer (``None``: no policing). Returns the
        delivered rate.
        """
        h = fg.header

        def police_at(classes: _Classes, pid: int, amount: float) -> float:
            for match, class_pid in classes:
                if match.matches(h):
                    amount = police(class_pid, amount)
                    break
            return police(pid, amount)

        def police(pid: int, amount: float) -> float:
            if pid < 0:
                return amount
            if tally is not None:
                tally.offered[pid] = tally.offered.get(pid, 0.0) + amount
            if factors is None:
                return amount
            kept = amount * float(factors[pid])
            if amount - kept > 0:
                drop(self.policers[pid].cause, amount - kept)
            return kept

        def drop(cause: DropCause, amount: float) -> None:
            if amount > 0:
                drops[cause] = drops.get(cause, 0.0) + amount

        s = fg.header.src
        if fg.entry_drop is not None and fg.entry_drop.reason is DropReason.INTERFACE_DOWN:
            drop(fg.entry_drop, rate)
            return 0.0
        if tally is not None:
            tally.eth0_in[s] += rate
        if fg.entry_drop is not None:
            drop(fg.entry_drop, rate)
            return 0.0
        mass: dict[int, float] = {
            s: police_at(self.eth0_in_classes[s], self.eth0_in_policer[s], rate)
        }
        delivered = 0.0
        for u in fg.order:
            m = mass.pop(u, 0.0)
            if m <= 0.0:
                continue
            act = fg.actions[u]
            if act.kind == "drop":
                assert act.cause is not None
                drop(act.cause, m)
            elif act.kind == "deliver":
                if act.cause is not None:
                    drop(act.cause, m)
                    continue
                m = police_at(self.eth0_out_classes[u], self.eth0_out_policer[u], m)
                if tally is not None:
                    tally.eth0_out[u] += m
                delivered += m
            else:
                share = m / len(act.hops)
                for hop in act.hops:
                    if hop.cause is not None and not hop.at_ingress:
                        drop(hop.cause, share)
                        continue
                    x = police_at(self.egress_classes[hop.edge], self.egress_policer[hop.edge],
                                  share)
                    if tally is not None:
                        tally.link[hop.edge] += x
                    if hop.cause is not None:
                        drop(hop.cause, x)
                        continue
                    x = police_at(self.ingress_classes[hop.edge],
                                  self.ingress_policer[hop.edge], x)
                    mass[hop.neighbour] = mass.get(hop.neighbour, 0.0) + x
        return delivered


# --------------------------------------------------------------------------------------------
# the twin


class DigitalTwin:
    """A pure model of the network: topology plus one config per device. Immutable.

    ``configs`` maps device names to configs; devices left out run ``topology.initial_config``.
    A key that is not a device of the topology raises :class:`ConfigError`. The topology must not
    be changed while twins built on it are in use.
    """

    def __init__(
        self,
        topology: Topology,
        configs: Mapping[str, DeviceConfig] | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        self._init(topology, configs or {}, None, None, at)

    def _init(
        self,
        topology: Topology,
        configs: Mapping[str, DeviceConfig],
        index: _NetworkIndex | None,
        base: Mapping[str, DeviceConfig] | None,
        at: datetime | None,
    ) -> None:
        if at is None:
            at = datetime.now(UTC)
        elif at.tzinfo is None:
            raise ConfigError(f"the twin's moment {at.isoformat()} needs a time zone (e.g. UTC)")
        self._at = at
        unknown = sorted(set(configs) - set(topology.graph.nodes))
        if unknown:
            raise ConfigError(
                f"configs name devices that are not in topology {topology.name!r}: {unknown}; "
                f"known devices start with {topology.devices[:5]}"
            )
        for name, cfg in configs.items():
            if not isinstance(cfg, DeviceConfig):
                raise ConfigError(f"config for {name!r} is {type(cfg).__name__}, not DeviceConfig")
        merged: dict[str, DeviceConfig] = dict(base) if base is not None else {}
        merged.update(configs)
        for device in topology.devices:
            if device not in merged:
                merged[device] = topology.initial_config(device)
        self._topology = topology
        self._configs: Mapping[str, DeviceConfig] = MappingProxyType(merged)
        self._index = index

    @property
    def topology(self) -> Topology:
        """The topology this twin models."""
        return self._topology

    @property
    def configs(self) -> Mapping[str, DeviceConfig]:
        """Every device's config (read-only)."""
        return self._configs

    def config(self, device: str) -> DeviceConfig:
        """Return the config of ``device``; :class:`ConfigError` if the device is unknown."""
        try:
            return self._configs[device]
        except KeyError:
            raise ConfigError(f"no device {device!r} in topology {self._topology.name!r}") from None

    def with_configs(self, changes: Mapping[str, DeviceConfig]) -> DigitalTwin:
        """Return a new twin with ``changes`` replacing those devices' configs (what-if).

        The original twin is not changed; topology-derived data is shared.
        """
        twin = DigitalTwin.__new__(DigitalTwin)
        twin._init(self._topology, changes, self._network, self._configs, self._at)
        return twin

    @property
    def at(self) -> datetime:
        """The moment the twin models: ACL rules with a time range apply only inside it."""
        return self._at

    def at_time(self, moment: datetime) -> DigitalTwin:
        """The same configs at another moment (timezone-aware); topology data is shared."""
        twin = DigitalTwin.__new__(DigitalTwin)
        twin._init(self._topology, {}, self._network, self._configs, moment)
        return twin

    def active_time_ranges(self, moment: datetime | None = None) -> frozenset[tuple[str, str, str]]:
        """(device, ACL, rule) of the time-ranged rules in force at ``moment`` (default ``at``).

        When this set differs between two moments, forwarding may differ between them.
        """
        when = self._at if moment is None else moment
        return frozenset(
            (device, acl.name, rule.name)
            for device, cfg in self._configs.items()
            for acl in cfg.acls
            for rule in acl.rules
            if rule.time_range is not None and rule.active_at(when)
        )

    @cached_property
    def has_time_ranges(self) -> bool:
        """Whether any ACL rule carries a time range."""
        return any(
            rule.time_range is not None
            for cfg in self._configs.values()
            for acl in cfg.acls
            for rule in acl.rules
        )

    @property
    def _network(self) -> _NetworkIndex:
        if self._index is None:
            self._index = _NetworkIndex(self._topology)
        return self._index

    @cached_property
    def _state(self) -> _ForwardingState:
        return _ForwardingState(self._network, self._configs, self._at)

    # ---- headers -------------------------------------------------------------------------------

    def _device(self, name: str, role: str) -> int:
        found = self._network.index.get(name)
        if found is None:
            raise self._unknown(name, role)
        return found

    def _unknown(self, name: str, role: str) -> ConfigError:
        return ConfigError(
            f"{role} names unknown device {name!r}; topology {self._topology.name!r} has "
            f"{len(self._network.nodes)} devices starting with {self._network.nodes[:5]}"
        )

    def _header(
        self,
        src_device: str,
        dst_address: str,
        protocol: IPProtocol | str,
        dst_port: int | None,
        src_address: str | None,
        src_port: int | None,
    ) -> _Header:
        where = f"flow from {src_device!r} to {dst_address!r}"
        s = self._device(src_device, where)
        proto = _protocol(protocol, where)
        dport = _port(dst_port, "dst_port", where)
        sport = _port(src_port, "src_port", where)
        _check_ports(proto, sport, dport, where)
        dst = _address(dst_address, "dst_address", where)
        src = _address(src_address, "src_address", where)
        assert dst is not None
        return _Header(
            s,
            self._network.source_address[s] if src is None else int(ipaddress.IPv4Address(src)),
            int(ipaddress.IPv4Address(dst)),
            _ANY_PROTOCOL if proto.number is None else proto.number,
            _NO_PORT if sport is None else sport,
            _NO_PORT if dport is None else dport,
        )

    def default_address(self, device: str) -> str:
        """Return the address traffic to ``device`` uses by default (its first prefix's first host).

        Raises :class:`ConfigError` when the device has no local prefixes.
        """
        i = self._device(device, "default_address")
        address = self._network.default_address[i]
        if address < 0:
            raise ConfigError(
                f"device {device!r} has no local prefixes, so traffic to it needs an explicit "
                "dst_address"
            )
        return _ipv4_text(address)

    def egress_class(
        self,
        device: str,
        neighbour: str,
        src_device: str,
        dst_address: str,
        *,
        protocol: IPProtocol | str = IPProtocol.ANY,
        dst_port: int | None = None,
        src_address: str | None = None,
    ) -> ClassPolicer | None:
        """The egress class policer of ``device``'s interface to ``neighbour`` that takes the flow.

        The flow is given as for :meth:`paths` (``src_device``, its address by default). The
        class is the one the twin polices the flow in there: the first whose match covers it
        (``None``: the interface's default class).
        """
        interface = self.topology.interface_to(device, neighbour)
        edge = self._network.edge_by_interface[(self._device(device, "egress_class"), interface)]
        h = self._header(src_device, dst_address, protocol, dst_port, src_address, None)
        st = self._state
        for match, pid in st.egress_classes[edge]:
            if match.matches(h):
                name = st.policers[pid].traffic_class
                return next(c for c in self.config(device).interface(interface).class_policers
                            if c.name == name)
        return None

    # ---- evaluate --------------------------------------------------------------------------------

    def evaluate(
        self, traffic: TrafficMatrix, *, method: Literal["auto", "exact"] = "auto"
    ) -> LoadReport:
        """Compute link loads, interface counters and per-demand outcomes for ``traffic``.

        ``method="auto"`` computes demands untouched by drop rules and policers for all
        destinations at once (vectorised) and the rest exactly, flow by flow; ``"exact"`` takes
        every demand flow by flow (slow; for cross-checks). Both give the same numbers.
        Raises :class:`ConfigError` for a demand naming an unknown device, or one toward a
        device without local prefixes and no ``dst_address``.
        """
        if not isinstance(traffic, TrafficMatrix):
            raise ConfigError(f"evaluate needs a TrafficMatrix, got {type(traffic).__name__}")
        if method not in ("auto", "exact"):
            raise ConfigError(f"method must be 'auto' or 'exact', got {method!r}")
        ix = self._network
        demands = traffic.demands
        h = self._demand_headers(demands)
        rates = np.array([d.rate_mbps for d in demands], dtype=np.float64)
        n_dem = len(demands)
        tally = _Tally(np.zeros(ix.n_edges), np.zeros(ix.n_nodes), np.zeros(ix.n_nodes), {})

        slow = np.ones(n_dem, dtype=np.bool_) if method == "exact" else self._needs_exact(h)
        if not slow.all():
            columns, column, slow = self._route_columns(h, slow)
            if columns:
                self._spread(columns, column, slow, h, rates, tally)

        outcomes: list[DemandOutcome | None] = [None] * n_dem
        for i in np.flatnonzero(~slow):
            outcomes[i] = DemandOutcome(demands[i], float(rates[i]))
        slow_idx = np.flatnonzero(slow)
        if len(slow_idx):
            self._exact(demands, h, rates, slow_idx, tally, outcomes)

        return self._report(tally, tuple(o for o in outcomes if o is not None))

    def _demand_headers(self, demands: tuple[Demand, ...]) -> _HeaderArrays:
        ix = self._network
        n = len(demands)
        index = ix.index
        try:
            src = np.fromiter((index[d.src] for d in demands), dtype=np.int64, count=n)
            dst = np.fromiter((index[d.dst] for d in demands), dtype=np.int64, count=n)
        except KeyError:
            for i, d in enumerate(demands):
                for name in (d.src, d.dst):
                    if name not in index:
                        raise self._unknown(name, f"demand #{i} ({d.src} -> {d.dst})") from None
            raise
        sa = np.array(ix.source_address, dtype=np.int64)[src]
        da = np.array(ix.default_address, dtype=np.int64)[dst]
        codes: dict[str, int] = {
            p: _ANY_PROTOCOL if p.number is None else p.number for p in IPProtocol
        }
        proto = np.fromiter((codes[d.protocol] for d in demands), dtype=np.int64, count=n)
        sport = np.full(n, _NO_PORT, dtype=np.int64)
        dport = np.full(n, _NO_PORT, dtype=np.int64)
        for i, d in enumerate(demands):  # the rarer explicit fields
            if d.src_address is not None:
                sa[i] = int(ipaddress.IPv4Address(d.src_address))
            if d.dst_address is not None:
                da[i] = int(ipaddress.IPv4Address(d.dst_address))
            elif da[i] < 0:
                raise ConfigError(
                    f"demand #{i} ({d.src} -> {d.dst}): device {d.dst!r} has no local prefixes; "
                    "give the demand a dst_address"
                )
            if d.src_port is not None:
                sport[i] = d.src_port
            if d.dst_port is not None:
                dport[i] = d.dst_port
        return _HeaderArrays(src, sa, da, proto, sport, dport)

    def _needs_exact(self, h: _HeaderArrays) -> BoolArray:
        """Demands a drop rule could hit, or whose source access interface is down/policed."""
        st = self._state
        slow = ~st.eth0_up[h.src]
        for program, only_src in st.dropping_programs:
            hit = _program_drops(program, h)
            if only_src >= 0:
                hit &= h.src == only_src
            slow |= hit
        policed_src = np.array(
            [p >= 0 or bool(c) for p, c in zip(st.eth0_in_policer, st.eth0_in_classes,
                                               strict=True)], dtype=np.bool_)
        slow |= policed_src[h.src]
        return slow

    def _route_columns(
        self, h: _HeaderArrays, slow: BoolArray
    ) -> tuple[list[tuple[int, ...]], IntArray, BoolArray]:
        """Destination columns (owner sets) for demands forwarded by the IGP alone.

        Demands whose address some static route could capture, or that have no IGP route from
        their source, are marked slow.
        """
        st = self._state
        slow = slow.copy()
        candidates = np.flatnonzero(~slow)
        addrs, inverse = np.unique(h.dst_address[candidates], return_inverse=True)
        best_len = np.full(len(addrs), -1, dtype=np.int64)
        owners_of: list[tuple[int, ...] | None] = []
        for k, a in enumerate(addrs.tolist()):
            found = st.best_prefix(a)
            owners_of.append(None if found is None else found[1])
            if found is not None:
                best_len[k] = found[0]
        captured = best_len < 0
        for net, mask, length in st.all_statics:
            captured |= ((addrs & mask) == net) & (length >= best_len)
        columns: dict[tuple[int, ...], int] = {}
        addr_column = np.full(len(addrs), -1, dtype=np.int64)
        for k, owners in enumerate(owners_of):
            if owners is not None and not captured[k]:
                addr_column[k] = columns.setdefault(owners, len(columns))
        column = np.full(len(h.src), -1, dtype=np.int64)
        column[candidates] = addr_column[inverse]
        slow[column < 0] = True
        return list(columns), column, slow

    def _spread(
        self,
        columns: list[tuple[int, ...]],
        column: IntArray,
        slow: BoolArray,
        h: _HeaderArrays,
        rates: FloatArray,
        tally: _Tally,
    ) -> None:
        """Forward the fast demands for all destination columns at once (updates ``slow``)."""
        ix, st = self._network, self._state
        n = ix.n_nodes
        dist = st.distance_matrix(columns)  # devices x columns
        cost = st.cost[:, None]
        du = dist[ix.eu]
        next_hop = np.isfinite(du) & (du == dist[ix.ev] + cost) & st.up[:, None]
        del du
        fast = np.flatnonzero(~slow)
        # no IGP route from the source: leave to the exact treatment (it may fall back)
        cut = ~np.isfinite(dist[h.src[fast], column[fast]])
        owner = np.zeros((n, len(columns)), dtype=np.bool_)
        for c, owners in enumerate(columns):
            owner[list(owners), c] = True
        if st.policers:
            cut |= self._reaches_policer(next_hop, owner)[h.src[fast], column[fast]]
        slow[fast[cut]] = True
        fast = fast[~cut]
        if not len(fast):
            return
        used = np.unique(column[fast])
        if len(used) < len(columns):
            remap = np.full(len(columns), -1, dtype=np.int64)
            remap[used] = np.arange(len(used))
            next_hop, owner = next_hop[:, used], owner[:, used]
            col = remap[column[fast]]
        else:
            col = column[fast]
        n_col = next_hop.shape[1]
        nh = next_hop.astype(np.float64)
        count = np.asarray(ix.out_matrix @ nh)
        split = nh / np.maximum(count, 1.0)[ix.eu]  # 1/(number of next hops) on next hops
        del nh, next_hop
        injected = np.zeros((n, n_col), dtype=np.float64)
        np.add.at(injected, (h.src[fast], col), rates[fast])
        arrived = np.zeros_like(injected)
        wave = injected
        for _ in range(n + 1):  # a shortest-path DAG has fewer than n hops
            arrived += wave
            wave = np.asarray(ix.in_matrix @ (split * wave[ix.eu]))
            if not wave.any():
                break
        else:  # positive costs make this impossible; fail loudly rather than lose traffic
            raise AssertionError("IGP forwarding did not settle; please report this topology")
        tally.link += (split * arrived[ix.eu]).sum(axis=1)
        tally.eth0_out += (arrived * owner).sum(axis=1)
        tally.eth0_in += np.bincount(h.src[fast], weights=rates[fast], minlength=n)

    def _reaches_policer(self, next_hop: BoolArray, owner: BoolArray) -> BoolArray:
        """Devices x columns: whether IGP forwarding from there crosses any policer."""
        ix, st = self._network, self._state
        on_edge = np.array(
            [a >= 0 or b >= 0 or bool(ca) or bool(cb) for a, b, ca, cb in zip(
                st.egress_policer, st.ingress_policer, st.egress_classes, st.ingress_classes,
                strict=True)],
            dtype=np.bool_,
        )
        exits = [p >= 0 or bool(c) for p, c in zip(st.eth0_out_policer, st.eth0_out_classes,
                                                    strict=True)]
        at_exit = owner & np.array(exits, dtype=np.bool_)[:, None]
        reach = at_exit
        for _ in range(ix.n_nodes + 1):
            via = next_hop & (on_edge[:, None] | reach[ix.ev])
            new = at_exit | (np.asarray(ix.out_matrix @ via.astype(np.float64)) > 0)
            if np.array_equal(new, reach):
                break
            reach = new
        return reach

    def _exact(
        self,
        demands: tuple[Demand, ...],
        h: _HeaderArrays,
        rates: FloatArray,
        idx: IntArray,
        tally: _Tally,
        outcomes: list[DemandOutcome | None],
    ) -> None:
        """Demands flow by flow, with policers settled by fixed-point iteration."""
        st = self._state
        graphs: dict[_Header, _FlowGraph] = {}
        plans: list[tuple[int, _FlowGraph]] = []
        for i in idx.tolist():
            header = _Header(int(h.src[i]), int(h.src_address[i]), int(h.dst_address[i]),
                             int(h.protocol[i]), int(h.src_port[i]), int(h.dst_port[i]))
            fg = graphs.get(header)
            if fg is None:
                fg = graphs[header] = st.flow_graph(header)
            plans.append((i, fg))
        limits = np.array([p.limit_mbps for p in st.policers], dtype=np.float64)
        factors: FloatArray | None = np.ones(len(limits)) if len(limits) else None
        for round_ in range(_POLICER_ROUNDS):
            trial = _Tally(np.zeros_like(tally.link), np.zeros_like(tally.eth0_in),
                           np.zeros_like(tally.eth0_out), {})
            results = []
            for i, fg in plans:
                drops: dict[DropCause, float] = {}
                delivered = st.propagate(fg, float(rates[i]), factors, trial, drops)
                results.append((i, delivered, drops))
            if factors is None:
                break
            offered = np.zeros(len(limits))
            for pid, amount in trial.offered.items():
                offered[pid] = amount
            wanted = np.minimum(1.0, np.divide(limits, offered, out=np.ones_like(limits),
                                               where=offered > limits))
            if np.allclose(wanted, factors, rtol=1e-12, atol=1e-12):
                break
            # damp only if plain iteration has not settled (cyclic policer dependencies)
            factors = wanted if round_ < 20 else 0.5 * (factors + wanted)
        tally.link += trial.link
        tally.eth0_in += trial.eth0_in
        tally.eth0_out += trial.eth0_out
        for i, delivered, drops in results:
            ordered = sorted(drops.items(), key=lambda kv: -kv[1])
            outcomes[i] = DemandOutcome(
                demands[i], delivered, tuple(DroppedTraffic(c, r) for c, r in ordered)
            )

    def _report(self, tally: _Tally, outcomes: tuple[DemandOutcome, ...]) -> LoadReport:
        ix, st = self._network, self._state
        nodes = ix.nodes
        links: dict[tuple[str, str], LinkLoad] = {}
        counters: dict[tuple[str, str], list[float]] = {}
        for i, node in enumerate(nodes):
            counters[(node, ACCESS_INTERFACE)] = [float(tally.eth0_in[i]),
                                                  float(tally.eth0_out[i])]
        loads = tally.link.tolist()
        for e in range(ix.n_edges):
            u, v = nodes[int(ix.eu[e])], nodes[int(ix.ev[e])]
            load = loads[e]
            links[(u, v)] = LinkLoad(u, ix.if_u[e], v, ix.if_v[e], load,
                                     float(ix.capacity[e]), bool(st.up[e]))
            counters.setdefault((u, ix.if_u[e]), [0.0, 0.0])[1] = load
            counters.setdefault((v, ix.if_v[e]), [0.0, 0.0])[0] = load
        interfaces = {k: InterfaceLoad(k[0], k[1], c[0], c[1]) for k, c in sorted(counters.items())}
        return LoadReport(MappingProxyType(links), MappingProxyType(interfaces), outcomes)

    # ---- single flows ------------------------------------------------------------------------

    def reachability(
        self,
        src_device: str,
        dst_address: str,
        protocol: IPProtocol | str = IPProtocol.ANY,
        dst_port: int | None = None,
        src_address: str | None = None,
        src_port: int | None = None,
    ) -> Reachability:
        """Whether a flow from ``src_device``'s access network reaches ``dst_address``.

        Routing, ACLs and interface state count; policers do not (they limit rate, not reach).
        ``src_address`` defaults to the first host of the source's first local prefix.
        """
        h = self._header(src_device, dst_address, protocol, dst_port, src_address, src_port)
        st = self._state
        fg = st.flow_graph(h)
        drops: dict[DropCause, float] = {}
        delivered = st.propagate(fg, 1.0, None, None, drops)
        paths, truncated = self._trace(fg)
        return Reachability(
            src_device=src_device,
            src_address=str(ipaddress.IPv4Address(h.src_address)),
            dst_address=str(ipaddress.IPv4Address(h.dst_address)),
            protocol=_protocol(protocol, "reachability"),
            dst_port=dst_port,
            src_port=src_port,
            reachable=delivered > 1e-12,
            delivered_fraction=min(1.0, delivered),
            paths=paths,
            drops=tuple(c for c, _ in sorted(drops.items(), key=lambda kv: -kv[1])),
            paths_truncated=truncated,
        )

    def paths(self, src_device: str, dst_address: str) -> tuple[PathTrace, ...]:
        """Return the forwarding paths from ``src_device`` toward ``dst_address`` (ACLs ignored).

        At most 256 paths, in a stable order; paths that end in a routing drop are included.
        """
        h = self._header(src_device, dst_address, IPProtocol.ANY, None, None, None)
        return self._trace(self._state.flow_graph(h, apply_acls=False))[0]

    def path_latency_ms(self, src_device: str, dst_device: str) -> tuple[float, float]:
        """(min, max) one-way delay over the ECMP paths that deliver, ACLs ignored.

        The destination is ``dst_device``'s default address; ``(inf, inf)`` when nothing is
        delivered, ``(0, 0)`` when the device delivers to itself.
        """
        self._device(dst_device, "path_latency_ms")
        h = self._header(src_device, self.default_address(dst_device), IPProtocol.ANY,
                         None, None, None)
        st, ix = self._state, self._network
        fg = st.flow_graph(h, apply_acls=False)
        if fg.entry_drop is not None:
            return math.inf, math.inf
        low: dict[int, float] = {}
        high: dict[int, float] = {}
        for u in reversed(fg.order):
            act = fg.actions[u]
            if act.kind == "deliver":
                low[u] = high[u] = 0.0
            elif act.kind == "forward":
                options = [(float(ix.delay[hop.edge]), hop.neighbour) for hop in act.hops
                           if hop.neighbour in low]
                if options:
                    low[u] = min(d + low[v] for d, v in options)
                    high[u] = max(d + high[v] for d, v in options)
        s = h.src
        return (low[s], high[s]) if s in low else (math.inf, math.inf)

    def _trace(self, fg: _FlowGraph) -> tuple[tuple[PathTrace, ...], bool]:
        ix = self._network
        names = ix.nodes
        s = fg.header.src
        if fg.entry_drop is not None:
            return (PathTrace((names[s],), 1.0, False, 0.0, fg.entry_drop),), False
        out: list[PathTrace] = []
        stack: list[tuple[int, tuple[int, ...], float, float]] = [(s, (s,), 1.0, 0.0)]
        while stack:
            if len(out) >= _MAX_PATHS:
                return tuple(out), True
            u, path, fraction, delay = stack.pop()
            act = fg.actions[u]
            devices = tuple(names[w] for w in path)
            if act.kind == "deliver":
                out.append(PathTrace(devices, fraction, act.cause is None, delay, act.cause))
            elif act.kind == "drop":
                out.append(PathTrace(devices, fraction, False, delay, act.cause))
            else:
                share = fraction / len(act.hops)
                for hop in reversed(act.hops):
                    d = delay + float(ix.delay[hop.edge])
                    if hop.cause is not None:
                        if hop.at_ingress:
                            out.append(PathTrace((*devices, names[hop.neighbour]), share, False,
                                                 d, hop.cause))
                        else:
                            out.append(PathTrace(devices, share, False, delay, hop.cause))
                    else:
                        stack.append((hop.neighbour, (*path, hop.neighbour), share, d))
        return tuple(out), False


# --------------------------------------------------------------------------------------------
# benchmark


def benchmark_graph(n_nodes: int, n_demands: int, seed: int = 0) -> tuple[Topology, TrafficMatrix]:
    """Build a random connected topology of ``n_nodes`` devices and ``n_demands`` demands.

    The graph is 3-regular (4-regular for odd sizes), 10G links, IGP costs 10 or 20 (so ECMP is
    common), 0.5-5 ms delays; each device owns one /24. Demands join random distinct devices with
    log-normal rates around 20 Mbit/s. Deterministic for a given seed.
    """
    if not 5 <= n_nodes <= 16_000:
        raise ConfigError(f"benchmark_graph needs 5 <= n_nodes <= 16000, got {n_nodes}")
    if n_demands < 0:
        raise ConfigError(f"benchmark_graph needs n_demands >= 0, got {n_demands}")
    rng = np.random.default_rng(seed)
    degree = 3 if n_nodes % 2 == 0 else 4
    for attempt in range(100):
        g = nx.random_regular_graph(degree, n_nodes, seed=seed * 1000 + attempt)
        if nx.is_connected(g):
            break
    else:  # pragma: no cover - random regular graphs of this size are connected w.h.p.
        raise ConfigError(f"no connected {degree}-regular graph found for n={n_nodes}")
    width = len(str(n_nodes - 1))
    g = nx.relabel_nodes(g, {i: f"n{i:0{width}d}" for i in g.nodes})
    for u, v in sorted(g.edges):
        g.edges[u, v].update(
            capacity_mbps=10_000.0,
            delay_ms=round(float(rng.uniform(0.5, 5.0)), 3),
            igp_cost=int(rng.choice((10, 20))),
        )
    topology = _finish(f"benchmark,{n_nodes}", g)
    names = topology.devices
    src = rng.integers(0, n_nodes, n_demands)
    dst = (src + rng.integers(1, n_nodes, n_demands)) % n_nodes
    rates = rng.lognormal(mean=math.log(20.0), sigma=1.0, size=n_demands)
    demands = tuple(
        Demand(names[a], names[b], round(float(r), 3))
        for a, b, r in zip(src.tolist(), dst.tolist(), rates.tolist(), strict=True)
    )
    return topology, TrafficMatrix(demands)
