"""``Topology``: a pure networkx graph of devices and links, plus sites, groups and services.

Topologies are chosen by name from a registry (``abilene``, ``campus``, ``linear,N``,
``tree,D,F``) or loaded from a GraphML or JSON file. Every link carries a capacity (Mbit/s), a
one-way delay (ms), an IGP cost and the interface name and /31 address at each end; every node
carries a role, a site and a location (latitude, longitude). Each device also has an access
interface ``eth0`` where its local prefixes (its site prefix and attached groups) live.

No I/O except :func:`load_topology_file`, which reads the file it is given.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from netgpt.device_config import DeviceConfig, InterfaceConfig
from netgpt.errors import TopologyError

__all__ = [
    "ACCESS_INTERFACE",
    "Group",
    "Link",
    "Service",
    "Topology",
    "build_topology",
    "load_topology_file",
    "topology_names",
]

ACCESS_INTERFACE = "eth0"
_LINK_POOL = ipaddress.IPv4Network("10.255.0.0/16")


@dataclass(frozen=True)
class Group:
    """A named set of prefixes attached at one device interface (department, guests, servers)."""

    name: str
    prefixes: tuple[str, ...]
    device: str
    interface: str = ACCESS_INTERFACE
    kind: str = "users"


@dataclass(frozen=True)
class Service:
    """A named service: where it lives (a group) and how it is reached (protocol and ports)."""

    name: str
    protocol: str
    ports: tuple[int, ...]
    group: str | None = None


@dataclass(frozen=True)
class Link:
    """One bidirectional link, described from ``a`` to ``b``."""

    a: str
    b: str
    a_interface: str
    b_interface: str
    capacity_mbps: float
    delay_ms: float
    igp_cost: int
    a_address: str
    b_address: str


@dataclass
class Topology:
    """A network: graph, groups and services. The graph is the single source of truth.

    Graph nodes have ``role``, ``site``, ``location`` ((lat, lon)) and ``prefixes`` (local
    prefixes on ``eth0``); edges have ``capacity_mbps``, ``delay_ms``, ``igp_cost`` and
    ``ports`` ({node: (interface, address)}).
    """

    name: str
    graph: nx.Graph
    groups: dict[str, Group] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def devices(self) -> list[str]:
        """Device names in a stable order."""
        return sorted(self.graph.nodes)

    def links(self) -> Iterator[Link]:
        """Every link once, endpoints in sorted order."""
        for u, v in sorted(tuple(sorted(e)) for e in self.graph.edges):
            d = self.graph.edges[u, v]
            yield Link(
                a=u,
                b=v,
                a_interface=d["ports"][u][0],
                b_interface=d["ports"][v][0],
                capacity_mbps=float(d["capacity_mbps"]),
                delay_ms=float(d["delay_ms"]),
                igp_cost=int(d["igp_cost"]),
                a_address=d["ports"][u][1],
                b_address=d["ports"][v][1],
            )

    def with_link_capacities(self, capacities: dict[tuple[str, str], float]) -> Topology:
        """A copy whose links ``(a, b)`` (either order) have the given capacities in Mbit/s.

        What a deployment measured or shaped overrides the catalogue (a lab scales Abilene's
        OC-192 links down). Raises :class:`TopologyError` for an unknown link or a bad capacity.
        """
        graph = self.graph.copy()
        for (a, b), mbps in capacities.items():
            if not graph.has_edge(a, b):
                raise TopologyError(f"topology {self.name!r} has no link {a}-{b}")
            if not isinstance(mbps, int | float) or isinstance(mbps, bool) or not mbps > 0:
                raise TopologyError(f"link {a}-{b}: capacity must be positive, got {mbps!r}")
            graph.edges[a, b]["capacity_mbps"] = float(mbps)
        return Topology(name=self.name, graph=graph, groups=dict(self.groups),
                        services=dict(self.services))

    def interface_peer(self, device: str, interface: str) -> str | None:
        """The neighbour reached through ``interface`` of ``device`` (``None`` for eth0)."""
        for nbr in self.graph.neighbors(device):
            if self.graph.edges[device, nbr]["ports"][device][0] == interface:
                return str(nbr)
        return None

    def interface_to(self, device: str, neighbour: str) -> str:
        """The interface of ``device`` that faces ``neighbour``."""
        return str(self.graph.edges[device, neighbour]["ports"][device][0])

    def interfaces(self, device: str) -> list[tuple[str, str | None]]:
        """(interface, neighbour or None) for ``device``, eth0 first."""
        out: list[tuple[str, str | None]] = [(ACCESS_INTERFACE, None)]
        for nbr in self.graph.neighbors(device):
            out.append((self.interface_to(device, nbr), str(nbr)))
        return sorted(out, key=lambda p: _if_index(p[0]))

    def interface_speed_mbps(self, device: str, interface: str) -> float:
        """Link capacity behind an interface (access interfaces: the largest link capacity)."""
        peer = self.interface_peer(device, interface)
        if peer is not None:
            return float(self.graph.edges[device, peer]["capacity_mbps"])
        caps = [float(d["capacity_mbps"]) for *_, d in self.graph.edges(device, data=True)]
        return max(caps, default=10_000.0)

    def local_prefixes(self, device: str) -> list[str]:
        """Prefixes attached at ``device`` (its site prefix and its groups')."""
        return list(self.graph.nodes[device].get("prefixes", ()))

    def initial_config(self, device: str) -> DeviceConfig:
        """The day-0 config of ``device``: every interface up, addressed, with its IGP cost."""
        if device not in self.graph:
            raise TopologyError(f"no device {device!r} in topology {self.name!r}")
        itfs = [InterfaceConfig(name=ACCESS_INTERFACE, description="access / local prefixes")]
        for nbr in self.graph.neighbors(device):
            d = self.graph.edges[device, nbr]
            itf, addr = d["ports"][device]
            peer_itf = d["ports"][nbr][0]
            itfs.append(
                InterfaceConfig(
                    name=itf,
                    description=f"to {nbr} {peer_itf}",
                    ipv4_address=addr,
                    igp_cost=int(d["igp_cost"]),
                )
            )
        itfs.sort(key=lambda i: _if_index(i.name))
        return DeviceConfig(hostname=device, interfaces=tuple(itfs))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description that :func:`load_topology_file` reads back."""
        nodes = []
        for n in self.devices:
            d = self.graph.nodes[n]
            nodes.append(
                {
                    "name": n,
                    "role": d.get("role", "router"),
                    "site": d.get("site", n),
                    "location": list(d.get("location", (0.0, 0.0))),
                    "prefixes": list(d.get("prefixes", ())),
                }
            )
        links = [
            {
                "a": lk.a,
                "b": lk.b,
                "capacity_mbps": lk.capacity_mbps,
                "delay_ms": lk.delay_ms,
                "igp_cost": lk.igp_cost,
            }
            for lk in self.links()
        ]
        return {
            "name": self.name,
            "nodes": nodes,
            "links": links,
            "groups": [
                {
                    "name": g.name,
                    "prefixes": list(g.prefixes),
                    "device": g.device,
                    "interface": g.interface,
                    "kind": g.kind,
                }
                for g in self.groups.values()
            ],
            "services": [
                {"name": s.name, "protocol": s.protocol, "ports": list(s.ports), "group": s.group}
                for s in self.services.values()
            ],
        }


def _if_index(name: str) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else 0


# --------------------------------------------------------------------------------------------
# building


def _finish(
    name: str,
    graph: nx.Graph,
    groups: list[Group] | None = None,
    services: list[Service] | None = None,
) -> Topology:
    """Assign interface names, /31 link addresses and site prefixes; check the whole thing."""
    if graph.number_of_nodes() == 0:
        raise TopologyError(f"topology {name!r} has no devices")
    if graph.number_of_nodes() > 16_000:
        raise TopologyError(f"topology {name!r} has {graph.number_of_nodes()} devices; max 16000")
    if not nx.is_connected(graph):
        parts = [sorted(c)[:3] for c in nx.connected_components(graph)]
        raise TopologyError(f"topology {name!r} is not connected; components start with {parts}")
    next_port = {n: 1 for n in graph.nodes}
    subnets = _LINK_POOL.subnets(new_prefix=31)
    for u, v in sorted(tuple(sorted(e)) for e in graph.edges):
        d = graph.edges[u, v]
        for key, low in (("capacity_mbps", 0.0), ("delay_ms", -1e-12)):
            val = d.get(key)
            if not isinstance(val, int | float) or isinstance(val, bool) or not val > low:
                raise TopologyError(
                    f"link {u}-{v}: {key} must be a {'positive' if low == 0 else 'non-negative'} "
                    f"number, got {val!r}"
                )
        cost = d.get("igp_cost")
        if isinstance(cost, float) and cost.is_integer():
            cost = int(cost)
        if not isinstance(cost, int) or isinstance(cost, bool) or not 1 <= cost <= 65535:
            raise TopologyError(f"link {u}-{v}: igp_cost must be an integer 1..65535, got {cost!r}")
        d["igp_cost"] = cost
        try:
            net = next(subnets)
        except StopIteration:
            raise TopologyError(
                f"topology {name!r} has more links than 10.255.0.0/16 holds"
            ) from None
        d["ports"] = {
            u: (f"eth{next_port[u]}", f"{net[0]}/31"),
            v: (f"eth{next_port[v]}", f"{net[1]}/31"),
        }
        next_port[u] += 1
        next_port[v] += 1
    for i, n in enumerate(sorted(graph.nodes)):
        d = graph.nodes[n]
        d.setdefault("role", "router")
        d.setdefault("site", str(n))
        loc = d.get("location", (0.0, 0.0))
        d["location"] = (float(loc[0]), float(loc[1]))
        if "prefixes" not in d:
            d["prefixes"] = (f"10.{i // 256}.{i % 256}.0/24",) if i < 65536 else ()
    group_map: dict[str, Group] = {}
    for g in groups or []:
        if g.device not in graph:
            raise TopologyError(
                f"group {g.name!r} attaches to unknown device {g.device!r}; "
                f"known devices start with {sorted(graph.nodes)[:5]}"
            )
        if g.name in group_map:
            raise TopologyError(f"group {g.name!r} is defined twice")
        if g.interface != ACCESS_INTERFACE:
            raise TopologyError(
                f"group {g.name!r} attaches at {g.device} {g.interface}, but local prefixes live "
                f"on the access interface {ACCESS_INTERFACE}; set interface to "
                f"{ACCESS_INTERFACE} or leave it out"
            )
        for p in g.prefixes:
            try:
                ipaddress.IPv4Network(p)
            except ValueError as exc:
                raise TopologyError(f"group {g.name!r}: {p!r} is not an IPv4 prefix") from exc
        group_map[g.name] = g
        node = graph.nodes[g.device]
        node["prefixes"] = tuple(dict.fromkeys((*node["prefixes"], *g.prefixes)))
    svc_map: dict[str, Service] = {}
    for s in services or []:
        if s.group is not None and s.group not in group_map:
            raise TopologyError(f"service {s.name!r} names unknown group {s.group!r}")
        svc_map[s.name] = s
    return Topology(name=name, graph=graph, groups=group_map, services=svc_map)


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# The 12 Abilene (Internet2) routers as named in Zhang's traffic matrices / SNDlib, with the
# cities' coordinates, and the 15 backbone links. ATLA-M5 hangs off Atlanta on an OC-48; the
# backbone links are OC-192 (9,920 Mbit/s of payload). Delay: great-circle distance at
# 200 km/ms (fibre runs are longer in reality); IGP cost: delay in 100 us units, at least 1.
_ABILENE_NODES: dict[str, tuple[str, tuple[float, float]]] = {
    "ATLAM5": ("Atlanta", (33.75, -84.39)),
    "ATLAng": ("Atlanta", (33.75, -84.39)),
    "CHINng": ("Chicago", (41.88, -87.63)),
    "DNVRng": ("Denver", (39.74, -104.99)),
    "HSTNng": ("Houston", (29.76, -95.37)),
    "IPLSng": ("Indianapolis", (39.77, -86.16)),
    "KSCYng": ("Kansas City", (39.10, -94.58)),
    "LOSAng": ("Los Angeles", (34.05, -118.24)),
    "NYCMng": ("New York", (40.71, -74.01)),
    "SNVAng": ("Sunnyvale", (37.37, -122.04)),
    "STTLng": ("Seattle", (47.61, -122.33)),
    "WASHng": ("Washington", (38.91, -77.04)),
}
_ABILENE_LINKS = [
    ("ATLAM5", "ATLAng", 2480.0),
    ("ATLAng", "HSTNng", 9920.0),
    ("ATLAng", "IPLSng", 9920.0),
    ("ATLAng", "WASHng", 9920.0),
    ("CHINng", "IPLSng", 9920.0),
    ("CHINng", "NYCMng", 9920.0),
    ("DNVRng", "KSCYng", 9920.0),
    ("DNVRng", "SNVAng", 9920.0),
    ("DNVRng", "STTLng", 9920.0),
    ("HSTNng", "KSCYng", 9920.0),
    ("HSTNng", "LOSAng", 9920.0),
    ("IPLSng", "KSCYng", 9920.0),
    ("LOSAng", "SNVAng", 9920.0),
    ("NYCMng", "WASHng", 9920.0),
    ("SNVAng", "STTLng", 9920.0),
]


def abilene() -> Topology:
    """The Abilene (Internet2) backbone: 12 routers, 15 links."""
    g = nx.Graph()
    for i, (name, (city, loc)) in enumerate(sorted(_ABILENE_NODES.items())):
        g.add_node(name, role="core", site=city, location=loc, prefixes=(f"10.{i + 1}.0.0/16",))
    for a, b, cap in _ABILENE_LINKS:
        km = _distance_km(_ABILENE_NODES[a][1], _ABILENE_NODES[b][1])
        delay = round(max(km / 200.0, 0.05), 3)
        g.add_edge(a, b, capacity_mbps=cap, delay_ms=delay, igp_cost=max(1, round(delay * 10)))
    return _finish("abilene", g)


def campus() -> Topology:
    """A three-tier campus: 2 core, 4 distribution, 8 access switches; user groups and services.

    Cores link to each other (40G) and to every distribution switch (10G); distribution pairs
    serve four access switches each (1G uplinks to both). Groups: staff departments, students,
    guests, the server farm and a lab; services: web, dns, ssh, telnet, video, voip, db.
    """
    g = nx.Graph()
    loc = (52.2053, 0.1218)
    for c in ("core1", "core2"):
        g.add_node(c, role="core", site="datacenter", location=loc, prefixes=())
    for d in ("dist1", "dist2", "dist3", "dist4"):
        g.add_node(
            d,
            role="distribution",
            site="north" if d in ("dist1", "dist2") else "south",
            location=loc,
            prefixes=(),
        )
    for i in range(1, 9):
        g.add_node(
            f"acc{i}", role="access", site="north" if i <= 4 else "south", location=loc, prefixes=()
        )
    g.add_edge("core1", "core2", capacity_mbps=40_000.0, delay_ms=0.05, igp_cost=1)
    for c in ("core1", "core2"):
        for d in ("dist1", "dist2", "dist3", "dist4"):
            g.add_edge(c, d, capacity_mbps=10_000.0, delay_ms=0.1, igp_cost=10)
    for i in range(1, 9):
        pair = ("dist1", "dist2") if i <= 4 else ("dist3", "dist4")
        for d in pair:
            g.add_edge(f"acc{i}", d, capacity_mbps=1_000.0, delay_ms=0.1, igp_cost=100)
    groups = [
        Group("engineering", ("10.10.0.0/16",), "acc1"),
        Group("finance", ("10.11.0.0/16",), "acc2"),
        Group("hr", ("10.12.0.0/16",), "acc3"),
        Group("students", ("10.20.0.0/16", "10.21.0.0/16"), "acc4"),
        Group("lab", ("10.30.0.0/16",), "acc5"),
        Group("guests", ("10.40.0.0/16",), "acc6"),
        Group("voice", ("10.50.0.0/16",), "acc7"),
        Group("servers", ("10.100.0.0/16",), "acc8", kind="servers"),
    ]
    services = [
        Service("web", "tcp", (80, 443), "servers"),
        Service("dns", "udp", (53,), "servers"),
        Service("ssh", "tcp", (22,), None),
        Service("telnet", "tcp", (23,), None),
        Service("video", "udp", (5004,), "servers"),
        Service("voip", "udp", (5060,), "voice"),
        Service("db", "tcp", (5432,), "servers"),
    ]
    # access switches carry only their groups' prefixes
    return _finish("campus", g, groups, services)


def linear(n: int) -> Topology:
    """``n`` routers in a line, 1G links of cost 10."""
    if not 1 <= n <= 5000:
        raise TopologyError(f"linear,N needs 1 <= N <= 5000, got {n}")
    g = nx.path_graph([f"r{i}" for i in range(1, n + 1)])
    for u, v in g.edges:
        g.edges[u, v].update(capacity_mbps=1000.0, delay_ms=1.0, igp_cost=10)
    for i, node in enumerate(g.nodes):
        g.nodes[node].update(role="router", site=node, location=(0.0, float(i)))
    if n == 1:
        g.add_node("r1")
    return _finish(f"linear,{n}", g)


def tree(depth: int, fanout: int) -> Topology:
    """A tree of routers ``depth`` levels below the root, ``fanout`` children each."""
    if depth < 0 or fanout < 1 or (fanout ** (depth + 1)) > 20_000:
        raise TopologyError(
            f"tree,D,F needs D >= 0, F >= 1 and at most ~20000 nodes; got D={depth}, F={fanout}"
        )
    g = nx.balanced_tree(fanout, depth)
    g = nx.relabel_nodes(g, {i: f"t{i}" for i in g.nodes})
    for u, v in g.edges:
        g.edges[u, v].update(capacity_mbps=1000.0, delay_ms=1.0, igp_cost=10)
    levels = nx.single_source_shortest_path_length(g, "t0")
    for node in g.nodes:
        g.nodes[node].update(
            role="core"
            if levels[node] == 0
            else ("access" if levels[node] == depth else "distribution"),
            site=node,
            location=(float(levels[node]), 0.0),
        )
    return _finish(f"tree,{depth},{fanout}", g)


_REGISTRY: dict[str, Callable[..., Topology]] = {
    "abilene": abilene,
    "campus": campus,
    "linear": linear,
    "tree": tree,
}
_ARITY = {"abilene": 0, "campus": 0, "linear": 1, "tree": 2}


def topology_names() -> list[str]:
    """Registered names with their parameters, for help texts."""
    return ["abilene", "campus", "linear,N", "tree,D,F"]


def build_topology(spec: str) -> Topology:
    """Build a topology from a registry spec (``abilene``, ``linear,5``) or a file path.

    Raises :class:`TopologyError` naming the bad spec and the valid choices.
    """
    spec = spec.strip()
    path = Path(spec)
    if path.suffix.lower() in (".graphml", ".json", ".xml") or path.exists():
        return load_topology_file(path)
    name, *args = spec.split(",")
    if name not in _REGISTRY:
        raise TopologyError(
            f"unknown topology {spec!r}; choose one of {', '.join(topology_names())} "
            "or give a .graphml/.json file"
        )
    if len(args) != _ARITY[name]:
        raise TopologyError(
            f"topology {name!r} takes {_ARITY[name]} integer parameter(s), got {spec!r}; "
            f"e.g. {next(t for t in topology_names() if t.startswith(name))}"
        )
    try:
        ints = [int(a) for a in args]
    except ValueError:
        raise TopologyError(f"topology parameters must be integers, got {spec!r}") from None
    return _REGISTRY[name](*ints)


# --------------------------------------------------------------------------------------------
# files


def load_topology_file(path: Path) -> Topology:
    """Load a topology from JSON (the :meth:`Topology.to_json` shape) or GraphML.

    GraphML: node attributes ``role``, ``site``, ``lat``, ``lon``, ``prefixes`` (comma separated);
    edge attributes ``capacity_mbps``, ``delay_ms``, ``igp_cost``; groups as graph attribute
    ``groups`` holding the JSON list of groups. Errors name the file and the bad element.
    """
    if not path.is_file():
        raise TopologyError(f"topology file {str(path)!r} does not exist")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(path.read_text())
            return _from_json(raw, default_name=path.stem)
        graph = nx.read_graphml(path)
    except TopologyError as exc:
        raise TopologyError(f"{path}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{path}: not valid JSON ({exc})") from exc
    except Exception as exc:  # networkx/lxml raise many kinds for broken GraphML
        raise TopologyError(f"{path}: not a readable GraphML topology ({exc})") from exc
    try:
        return _from_graphml(graph, default_name=path.stem)
    except TopologyError as exc:
        raise TopologyError(f"{path}: {exc}") from None


def _from_json(raw: Any, *, default_name: str) -> Topology:
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
        raise TopologyError("expected an object with a 'nodes' list and a 'links' list")
    g = nx.Graph()
    for i, n in enumerate(raw["nodes"]):
        if isinstance(n, str):
            n = {"name": n}
        if not isinstance(n, dict) or not isinstance(n.get("name"), str) or not n["name"]:
            raise TopologyError(f"nodes[{i}] needs a non-empty string 'name', got {n!r}")
        attrs: dict[str, Any] = {k: n[k] for k in ("role", "site") if k in n}
        if "location" in n:
            attrs["location"] = _location(n["location"], f"nodes[{i}].location")
        if "prefixes" in n:
            attrs["prefixes"] = tuple(n["prefixes"])
        g.add_node(n["name"], **attrs)
    for i, lk in enumerate(raw.get("links", [])):
        if not isinstance(lk, dict) or "a" not in lk or "b" not in lk:
            raise TopologyError(f"links[{i}] needs 'a' and 'b', got {lk!r}")
        for end in ("a", "b"):
            if lk[end] not in g:
                raise TopologyError(f"links[{i}].{end} names unknown node {lk[end]!r}")
        if lk["a"] == lk["b"]:
            raise TopologyError(f"links[{i}] connects {lk['a']!r} to itself")
        g.add_edge(
            lk["a"],
            lk["b"],
            capacity_mbps=lk.get("capacity_mbps", 1000.0),
            delay_ms=lk.get("delay_ms", 1.0),
            igp_cost=lk.get("igp_cost", 10),
        )
    groups = [_group(gr, f"groups[{i}]") for i, gr in enumerate(raw.get("groups", []))]
    services = []
    for i, s in enumerate(raw.get("services", [])):
        try:
            services.append(
                Service(
                    str(s["name"]),
                    str(s.get("protocol", "tcp")),
                    tuple(int(p) for p in s.get("ports", ())),
                    s.get("group"),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TopologyError(f"services[{i}] is malformed: {s!r}") from exc
    return _finish(str(raw.get("name", default_name)), g, groups, services)


def _location(value: Any, where: str) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TopologyError(f"{where} must be [lat, lon], got {value!r}") from None
    return lat, lon


def _group(raw: Any, where: str) -> Group:
    if not isinstance(raw, dict) or not {"name", "prefixes", "device"} <= raw.keys():
        raise TopologyError(f"{where} needs name, prefixes and device, got {raw!r}")
    prefixes = raw["prefixes"]
    if isinstance(prefixes, str):
        prefixes = [p.strip() for p in prefixes.split(",") if p.strip()]
    return Group(
        name=str(raw["name"]),
        prefixes=tuple(str(p) for p in prefixes),
        device=str(raw["device"]),
        interface=str(raw.get("interface", ACCESS_INTERFACE)),
        kind=str(raw.get("kind", "users")),
    )


def _from_graphml(graph: nx.Graph, *, default_name: str) -> Topology:
    g = nx.Graph()
    for n, d in graph.nodes(data=True):
        attrs: dict[str, Any] = {k: d[k] for k in ("role", "site") if k in d}
        if "lat" in d and "lon" in d:
            attrs["location"] = _location((d["lat"], d["lon"]), f"node {n} lat/lon")
        if "prefixes" in d:
            attrs["prefixes"] = tuple(p.strip() for p in str(d["prefixes"]).split(",") if p.strip())
        g.add_node(str(n), **attrs)
    for u, v, d in graph.edges(data=True):
        if u == v:
            raise TopologyError(f"edge {u}-{v} connects a node to itself")
        g.add_edge(
            str(u),
            str(v),
            capacity_mbps=d.get("capacity_mbps", 1000.0),
            delay_ms=d.get("delay_ms", 1.0),
            igp_cost=d.get("igp_cost", 10),
        )
    groups_raw = graph.graph.get("groups")
    groups: list[Group] = []
    if groups_raw:
        try:
            parsed = json.loads(groups_raw)
        except json.JSONDecodeError as exc:
            raise TopologyError(f"graph attribute 'groups' is not JSON ({exc})") from exc
        groups = [_group(gr, f"groups[{i}]") for i, gr in enumerate(parsed)]
    return _finish(str(graph.graph.get("name", default_name)), g, groups)
