"""Conflicts between a new intent and the active ones (and inside one intent).

:func:`find_conflicts` returns one :class:`~netgpt.policies.base.IntentConflict` per pair of
expectations that cannot both hold. Endpoints are resolved to prefixes through the topology
(groups to their prefixes, devices to their local prefixes, sites to their devices' prefixes);
services to their protocol and ports. Detected:

- **allow vs block**: access expectations with opposite actions whose traffic overlaps in source,
  destination, protocol/ports and time window;
- **reachability**: must-reach vs must-not-reach on overlapping endpoints; must-reach vs a block
  of all protocols on overlapping endpoints; must-not-reach vs an allow on overlapping endpoints;
- **waypoints**: two waypoint sequences for overlapping flows whose orders contradict (W1 before
  W2 in one, W2 before W1 in the other): no loop-free path satisfies both. Different but
  compatible sequences are not flagged (one path through both may exist);
- **load balancing**: different path counts for overlapping flows;
- **guarantees over capacity**: guarantees whose traffic must cross one link (every path of
  every device pair of the guarantee crosses it: the twin's forwarding paths when a twin is
  given, else IGP shortest paths) and whose sum exceeds the link capacity;
- **cap below guarantee**: a cap on traffic that contains a guaranteed traffic, at a lower rate;
  a block of all protocols that contains guaranteed traffic;
- **ceiling vs guarantee**: a guaranteed rate that must cross a link covered by a utilization
  ceiling, above ceiling x capacity;
- **ceiling vs demand** (with ``traffic``): a sound lower bound, never a guess: for a path
  ceiling, the demand between its endpoints above ceiling x the max-flow between them; for a
  network-wide ceiling the same per device pair, and for network-wide or region ceilings the
  demand into or out of one device (all of whose links the ceiling covers) above ceiling x the
  capacity of its links. Whatever the routing, some link would be above the ceiling.

Pure logic, no I/O.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import networkx as nx

from netgpt.device_config import IPProtocol
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    AccessAction,
    AccessExpectation,
    AnyEndpoint,
    BandwidthExpectation,
    BandwidthMode,
    DeviceEndpoint,
    Endpoint,
    GroupEndpoint,
    Intent,
    LifecycleState,
    LoadBalancingExpectation,
    PrefixEndpoint,
    ReachabilityExpectation,
    SiteEndpoint,
    TimeWindow,
    TrafficSelector,
    UtilizationCeilingExpectation,
    WaypointExpectation,
)
from netgpt.policies.base import IntentConflict
from netgpt.sim_networks.topology import Topology
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix

__all__ = ["find_conflicts"]

Net = ipaddress.IPv4Network
_ANY_NET = ipaddress.IPv4Network("0.0.0.0/0")
_WEEK_S = 7 * 86400
_MAX_PATHS = 64
_EPS = 1e-9


# ------------------------------------------------------------------------------------------
# traffic as sets


@dataclass(frozen=True)
class _Traffic:
    """A selector resolved: prefixes each side, protocol (None: any), port ranges (None: all)."""

    src_label: str
    dst_label: str
    src: tuple[Net, ...]
    dst: tuple[Net, ...]
    protocol: str | None
    ports: tuple[tuple[int, int], ...] | None
    window: TimeWindow | None = None


def _label(ep: Endpoint) -> str:
    if isinstance(ep, AnyEndpoint):
        return "anywhere"
    if isinstance(ep, PrefixEndpoint):
        return ep.prefix
    return f"{ep.kind} {ep.name}"


def _nets(ep: Endpoint, topology: Topology) -> tuple[Net, ...]:
    if isinstance(ep, AnyEndpoint):
        return (_ANY_NET,)
    if isinstance(ep, PrefixEndpoint):
        return (ipaddress.IPv4Network(ep.prefix),)
    if isinstance(ep, GroupEndpoint):
        group = topology.groups.get(ep.name)
        if group is None:
            raise ConfigError(f"unknown group {ep.name!r} in topology {topology.name!r}; known: "
                              f"{sorted(topology.groups)}")
        return tuple(ipaddress.IPv4Network(p) for p in group.prefixes)
    return tuple(ipaddress.IPv4Network(p) for d in _devices(ep, topology) or ()
                 for p in topology.local_prefixes(d))


def _devices(ep: Endpoint, topology: Topology) -> list[str] | None:
    """Devices where the endpoint's traffic enters or leaves (``None``: anywhere)."""
    if isinstance(ep, AnyEndpoint):
        return None
    if isinstance(ep, DeviceEndpoint):
        if ep.name not in topology.graph:
            raise ConfigError(f"unknown device {ep.name!r} in topology {topology.name!r}")
        return [ep.name]
    if isinstance(ep, SiteEndpoint):
        found = [d for d in topology.devices if topology.graph.nodes[d].get("site") == ep.name]
        if not found:
            sites = sorted({str(topology.graph.nodes[d].get("site")) for d in topology.devices})
            raise ConfigError(f"unknown site {ep.name!r} in topology {topology.name!r}; known: "
                              f"{sites}")
        return found
    if isinstance(ep, GroupEndpoint):
        _nets(ep, topology)  # validates the name
        return [topology.groups[ep.name].device]
    net = ipaddress.IPv4Network(ep.prefix)
    return [d for d in topology.devices
            if any(net.overlaps(ipaddress.IPv4Network(p)) for p in topology.local_prefixes(d))]


def _traffic(sel: TrafficSelector, topology: Topology, window: TimeWindow | None = None
             ) -> _Traffic:
    protocol = None if sel.protocol is IPProtocol.ANY else sel.protocol.value
    ports: tuple[tuple[int, int], ...] | None = (
        None if sel.ports is None else ((sel.ports.lower, sel.ports.upper),)
    )
    if sel.service is not None:
        svc = topology.services.get(sel.service)
        if svc is None:
            raise ConfigError(f"unknown service {sel.service!r} in topology {topology.name!r}; "
                              f"known: {sorted(topology.services)}")
        if protocol is None:
            protocol = svc.protocol
        if svc.ports:
            svc_ports = tuple((p, p) for p in svc.ports)
            ports = svc_ports if ports is None else _port_overlap(ports, svc_ports) or ()
    return _Traffic(_label(sel.source), _label(sel.destination), _nets(sel.source, topology),
                    _nets(sel.destination, topology), protocol, ports, window)


def _net_overlap(a: Sequence[Net], b: Sequence[Net]) -> list[Net]:
    out = []
    for x, y in itertools.product(a, b):
        if x.overlaps(y):
            out.append(x if x.prefixlen >= y.prefixlen else y)
    return sorted(set(out))


def _net_contains(outer: Sequence[Net], inner: Sequence[Net]) -> bool:
    return bool(inner) and all(any(i.subnet_of(o) for o in outer) for i in inner)


def _port_overlap(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]
                  ) -> tuple[tuple[int, int], ...]:
    out = []
    for (lo1, hi1), (lo2, hi2) in itertools.product(a, b):
        lo, hi = max(lo1, lo2), min(hi1, hi2)
        if lo <= hi:
            out.append((lo, hi))
    return tuple(sorted(set(out)))


def _l4_overlap(a: _Traffic, b: _Traffic) -> str | None:
    """The shared protocol/ports in words, or ``None`` when they are disjoint."""
    if a.protocol is not None and b.protocol is not None and a.protocol != b.protocol:
        return None
    protocol = a.protocol or b.protocol
    if a.ports is None and b.ports is None:
        return protocol or "all protocols"
    if a.ports is None or b.ports is None:
        ports = a.ports if b.ports is None else b.ports
        assert ports is not None
    else:
        ports = _port_overlap(a.ports, b.ports)
    if not ports:
        return None
    if protocol is None:  # ports without a protocol cannot be written; treat as tcp/udp
        protocol = "tcp/udp"
    return f"{protocol} port {','.join(_ports_text(p) for p in ports)}"


def _ports_text(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}-{p[1]}"


def _l4_contains(outer: _Traffic, inner: _Traffic) -> bool:
    if outer.protocol is not None and outer.protocol != inner.protocol:
        return False
    if outer.ports is None:
        return True
    if inner.ports is None:
        return False
    return all(any(lo <= i_lo and i_hi <= hi for lo, hi in outer.ports)
               for i_lo, i_hi in inner.ports)


# ------------------------------------------------------------------------------------------
# time windows


def _intervals(w: TimeWindow, reference: datetime) -> list[tuple[float, float]]:
    """Seconds-of-week intervals in UTC for the week holding ``reference`` (its UTC offset)."""
    offset = reference.astimezone(ZoneInfo(w.timezone)).utcoffset() or timedelta(0)
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    def secs(t: time) -> int:
        return t.hour * 3600 + t.minute * 60 + t.second

    out = []
    for day in w.days:
        start = days.index(day) * 86400 + secs(w.start) - offset.total_seconds()
        length = (secs(w.end) - secs(w.start)) % 86400
        s = start % _WEEK_S
        if s + length <= _WEEK_S:
            out.append((s, s + length))
        else:
            out.extend([(s, float(_WEEK_S)), (0.0, s + length - _WEEK_S)])
    return out


def _windows_overlap(a: TimeWindow | None, b: TimeWindow | None) -> bool:
    if a is None or b is None:
        return True
    # compare in winter and in summer: zones with daylight saving shift against each other
    for ref in (datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 7, 15, tzinfo=UTC)):
        for (s1, e1), (s2, e2) in itertools.product(_intervals(a, ref), _intervals(b, ref)):
            if max(s1, s2) < min(e1, e2):
                return True
    return False


def _window_text(w: TimeWindow | None) -> str:
    if w is None:
        return "at all times"
    return f"{','.join(w.days)} {w.start.strftime('%H:%M')}-{w.end.strftime('%H:%M')} {w.timezone}"


# ------------------------------------------------------------------------------------------
# pairs of expectations


def _who(intent: Intent, index: int) -> str:
    text = intent.text.strip().replace("\n", " ")
    short = text if len(text) <= 60 else text[:57] + "..."
    return f"intent {intent.id}" + (f' ("{short}")' if short else "") + f" expectation {index}"


def _shared(a: _Traffic, b: _Traffic) -> str | None:
    """The overlapping traffic in words, or ``None`` when the two are disjoint."""
    src = _net_overlap(a.src, b.src)
    dst = _net_overlap(a.dst, b.dst)
    l4 = _l4_overlap(a, b)
    if not src or not dst or l4 is None or not _windows_overlap(a.window, b.window):
        return None
    when = _window_text(a.window if a.window is not None else b.window)
    if a.window is not None and b.window is not None:
        when = f"{_window_text(a.window)} overlapping {_window_text(b.window)}"
    nets = ", ".join
    return (f"{nets(str(n) for n in src)} -> {nets(str(n) for n in dst)}, {l4}, {when}")


def _flow(src: Endpoint, dst: Endpoint, topology: Topology) -> _Traffic:
    return _Traffic(_label(src), _label(dst), _nets(src, topology), _nets(dst, topology),
                    None, None)


def _pair_reason(
    a_intent: Intent, i: int, b_intent: Intent, j: int, topology: Topology
) -> str | None:
    a, b = a_intent.expectations[i], b_intent.expectations[j]
    who_a, who_b = _who(a_intent, i), _who(b_intent, j)
    if isinstance(a, AccessExpectation) and isinstance(b, AccessExpectation):
        if a.action == b.action:
            return None
        ta = _traffic(a.traffic, topology, a.window)
        tb = _traffic(b.traffic, topology, b.window)
        shared = _shared(ta, tb)
        if shared is None:
            return None
        return (f"{who_a} {a.action.value}s {ta.src_label} -> {ta.dst_label} but {who_b} "
                f"{b.action.value}s {tb.src_label} -> {tb.dst_label}; both cover {shared}")
    if isinstance(a, ReachabilityExpectation) and isinstance(b, ReachabilityExpectation):
        if a.reachable == b.reachable:
            return None
        shared = _shared(_flow(a.source, a.destination, topology),
                         _flow(b.source, b.destination, topology))
        if shared is None:
            return None
        must, must_not = (who_a, who_b) if a.reachable else (who_b, who_a)
        return f"{must} requires reachability that {must_not} forbids, for {shared}"
    if isinstance(b, ReachabilityExpectation) and isinstance(a, AccessExpectation):
        return _reach_vs_access(b, who_b, a, who_a, topology)
    if isinstance(a, ReachabilityExpectation) and isinstance(b, AccessExpectation):
        return _reach_vs_access(a, who_a, b, who_b, topology)
    if isinstance(a, WaypointExpectation) and isinstance(b, WaypointExpectation):
        shared = _shared(_flow(a.source, a.destination, topology),
                         _flow(b.source, b.destination, topology))
        if shared is None:
            return None
        clash = _order_clash(a.via, b.via)
        if clash is None:
            return None
        return (f"{who_a} routes via {' -> '.join(a.via)} but {who_b} routes via "
                f"{' -> '.join(b.via)}; no loop-free path visits {clash} in both orders, for "
                f"{shared}")
    if isinstance(a, LoadBalancingExpectation) and isinstance(b, LoadBalancingExpectation):
        if a.paths == b.paths:
            return None
        shared = _shared(_flow(a.source, a.destination, topology),
                         _flow(b.source, b.destination, topology))
        if shared is None:
            return None
        return (f"{who_a} splits traffic over {a.paths} paths but {who_b} over {b.paths}, "
                f"for {shared}")
    if isinstance(a, BandwidthExpectation) and isinstance(b, BandwidthExpectation):
        if a.mode == b.mode:
            return None
        cap, cap_who, g, g_who = (a, who_a, b, who_b) if a.mode is BandwidthMode.CAP else (
            b, who_b, a, who_a)
        tc, tg = _traffic(cap.traffic, topology), _traffic(g.traffic, topology)
        if cap.rate_mbps >= g.rate_mbps or not _contains(tc, tg):
            return None
        return (f"{g_who} guarantees {g.rate_mbps:g} Mbit/s to {tg.src_label} -> "
                f"{tg.dst_label} but {cap_who} caps traffic that includes it "
                f"({tc.src_label} -> {tc.dst_label}) at {cap.rate_mbps:g} Mbit/s")
    if isinstance(a, BandwidthExpectation) and isinstance(b, AccessExpectation):
        return _guarantee_vs_block(a, who_a, b, who_b, topology)
    if isinstance(a, AccessExpectation) and isinstance(b, BandwidthExpectation):
        return _guarantee_vs_block(b, who_b, a, who_a, topology)
    return None


def _contains(outer: _Traffic, inner: _Traffic) -> bool:
    return (_net_contains(outer.src, inner.src) and _net_contains(outer.dst, inner.dst)
            and _l4_contains(outer, inner))


def _reach_vs_access(r: ReachabilityExpectation, who_r: str, acc: AccessExpectation,
                     who_acc: str, topology: Topology) -> str | None:
    t = _traffic(acc.traffic, topology, acc.window)
    if r.reachable and acc.action is AccessAction.BLOCK:
        if t.protocol is not None or t.ports is not None:
            return None  # a partial block leaves the destination reachable by other protocols
        shared = _shared(_flow(r.source, r.destination, topology), t)
        if shared is None:
            return None
        return f"{who_r} requires reachability but {who_acc} blocks all traffic for {shared}"
    if not r.reachable and acc.action is AccessAction.ALLOW:
        shared = _shared(_flow(r.source, r.destination, topology), t)
        if shared is None:
            return None
        return f"{who_r} forbids reachability but {who_acc} allows {shared}"
    return None


def _guarantee_vs_block(g: BandwidthExpectation, who_g: str, acc: AccessExpectation,
                        who_acc: str, topology: Topology) -> str | None:
    if g.mode is not BandwidthMode.GUARANTEE or acc.action is not AccessAction.BLOCK:
        return None
    tg, tb = _traffic(g.traffic, topology), _traffic(acc.traffic, topology, acc.window)
    if not _contains(tb, tg):
        return None
    return (f"{who_g} guarantees {g.rate_mbps:g} Mbit/s to {tg.src_label} -> {tg.dst_label} but "
            f"{who_acc} blocks that traffic ({tb.src_label} -> {tb.dst_label}) "
            f"{_window_text(acc.window)}")


def _order_clash(a: Sequence[str], b: Sequence[str]) -> str | None:
    """Two waypoints the sequences visit in opposite orders (or a sequence revisiting one)."""
    before: nx.DiGraph = nx.DiGraph()
    for seq in (a, b):
        for x, y in itertools.pairwise(seq):
            before.add_edge(x, y)
    try:
        cycle = nx.find_cycle(before)
    except nx.NetworkXNoCycle:
        return None
    nodes = list(dict.fromkeys(u for u, _ in cycle))
    return " and ".join(nodes)


# ------------------------------------------------------------------------------------------
# capacity


Link = tuple[str, str]


def _paths(topology: Topology, twin: DigitalTwin | None, src: str, dst: str,
           dst_ep: Endpoint) -> list[list[str]]:
    if src == dst:
        return [[src]]
    if twin is not None:
        try:
            if isinstance(dst_ep, GroupEndpoint):
                address = str(next(_nets(dst_ep, topology)[0].hosts()))
            else:
                address = twin.default_address(dst)
        except (ConfigError, StopIteration):
            address = None
        if address is not None:
            traced = [list(p.devices) for p in twin.paths(src, address) if p.delivered]
            if traced:
                return traced
    return [list(p) for p in itertools.islice(
        nx.all_shortest_paths(topology.graph, src, dst, weight="igp_cost"), _MAX_PATHS)]


def _must_links(src: Endpoint, dst: Endpoint, topology: Topology,
                twin: DigitalTwin | None) -> set[Link]:
    """Directed links every path of every device pair of the flow crosses."""
    srcs, dsts = _devices(src, topology), _devices(dst, topology)
    if not srcs or not dsts:
        return set()
    must: set[Link] | None = None
    for s, d in itertools.product(srcs, dsts):
        for path in _paths(topology, twin, s, d, dst):
            links = set(itertools.pairwise(path))
            must = links if must is None else must & links
    return must or set()


def _capacity(topology: Topology, link: Link) -> float:
    return float(topology.graph.edges[link]["capacity_mbps"])


@dataclass(frozen=True)
class _Guarantee:
    intent: Intent
    index: int
    rate: float
    links: frozenset[Link]
    is_new: bool


def _guarantees(intents: Iterable[tuple[Intent, bool]], topology: Topology,
                twin: DigitalTwin | None) -> list[_Guarantee]:
    out = []
    for intent, is_new in intents:
        for i, e in enumerate(intent.expectations):
            if isinstance(e, BandwidthExpectation) and e.mode is BandwidthMode.GUARANTEE:
                links = _must_links(e.traffic.source, e.traffic.destination, topology, twin)
                out.append(_Guarantee(intent, i, e.rate_mbps, frozenset(links), is_new))
    return out


def _over_capacity(guarantees: list[_Guarantee], topology: Topology,
                   new: Intent) -> list[IntentConflict]:
    out: list[IntentConflict] = []
    seen: set[tuple[int, str, int]] = set()
    links = sorted({lk for g in guarantees for lk in g.links})
    for link in links:
        on = [g for g in guarantees if link in g.links]
        total = sum(g.rate for g in on)
        cap = _capacity(topology, link)
        if total <= cap + _EPS or not any(g.is_new for g in on):
            continue
        parts = "; ".join(f"{_who(g.intent, g.index)}: {g.rate:g} Mbit/s" for g in on)
        reason = (f"guarantees that must all cross link {link[0]} -> {link[1]} add up to "
                  f"{total:g} Mbit/s, over its capacity of {cap:g} Mbit/s ({parts})")
        for g in on:
            if not g.is_new:
                continue
            others = [o for o in on if o is not g] or [g]
            for o in others:
                key = (g.index, o.intent.id, o.index)
                if key not in seen:
                    seen.add(key)
                    out.append(IntentConflict(new, o.intent, g.index, o.index, reason))
    return out


def _ceiling_links(e: UtilizationCeilingExpectation, topology: Topology,
                   twin: DigitalTwin | None) -> set[Link]:
    if e.source is not None and e.destination is not None:
        return _must_links(e.source, e.destination, topology, twin)
    every = {(u, v) for u, v in topology.graph.edges} | {(v, u) for u, v in topology.graph.edges}
    if not e.region:
        return every
    region = _region(e, topology)
    return {(u, v) for u, v in every if u in region and v in region}


def _region(e: UtilizationCeilingExpectation, topology: Topology) -> set[str]:
    return {d for d in topology.devices
            if d in e.region or topology.graph.nodes[d].get("site") in e.region}


def _ceiling_vs_guarantees(new: Intent, active: Sequence[Intent], guarantees: list[_Guarantee],
                           topology: Topology, twin: DigitalTwin | None) -> list[IntentConflict]:
    out: list[IntentConflict] = []
    everyone = [(new, True), *((a, False) for a in active)]
    for intent, is_new in everyone:
        for i, e in enumerate(intent.expectations):
            if not isinstance(e, UtilizationCeilingExpectation) or e.service is not None:
                continue
            covered = _ceiling_links(e, topology, twin)
            for g in guarantees:
                if not (is_new or g.is_new):
                    continue
                for link in sorted(g.links & covered):
                    limit = e.max_utilization * _capacity(topology, link)
                    if g.rate > limit + _EPS:
                        reason = (f"{_who(g.intent, g.index)} guarantees {g.rate:g} Mbit/s over "
                                  f"link {link[0]} -> {link[1]}, but {_who(intent, i)} keeps that "
                                  f"link under {e.max_utilization:.0%} of "
                                  f"{_capacity(topology, link):g} Mbit/s ({limit:g} Mbit/s)")
                        if is_new:
                            out.append(IntentConflict(new, g.intent, i, g.index, reason))
                        else:
                            out.append(IntentConflict(new, intent, g.index, i, reason))
                        break
    return out


# ------------------------------------------------------------------------------------------
# ceilings against the demand


def _flow_graph(topology: Topology, factor: float, region: set[str] | None) -> nx.DiGraph:
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(topology.devices)
    for u, v, d in topology.graph.edges(data=True):
        cap = factor * float(d["capacity_mbps"])
        if region is not None and not (u in region and v in region):
            cap = float("inf")  # links the ceiling does not cover carry any amount
        g.add_edge(u, v, capacity=cap)
        g.add_edge(v, u, capacity=cap)
    return g


def _ceiling_vs_demand(new: Intent, topology: Topology,
                       traffic: TrafficMatrix) -> list[IntentConflict]:
    out: list[IntentConflict] = []
    for i, e in enumerate(new.expectations):
        if not isinstance(e, UtilizationCeilingExpectation):
            continue
        demands = list(traffic)
        if e.service is not None:
            svc = topology.services.get(e.service)
            if svc is None:
                raise ConfigError(f"unknown service {e.service!r} in topology "
                                  f"{topology.name!r}; known: {sorted(topology.services)}")
            demands = [d for d in demands if d.protocol == IPProtocol(svc.protocol)
                       and d.dst_port in svc.ports]
        u = e.max_utilization
        findings: list[str] = []
        if e.source is not None and e.destination is not None:
            srcs = _devices(e.source, topology) or topology.devices
            dsts = _devices(e.destination, topology) or topology.devices
            flows = [d for d in demands if d.src in srcs and d.dst in dsts and d.src != d.dst]
            total = sum(d.rate_mbps for d in flows)
            if total > _EPS:
                g = _flow_graph(topology, u, None)
                for s in srcs:
                    g.add_edge("__src__", s, capacity=float("inf"))
                for d_ in dsts:
                    g.add_edge(d_, "__dst__", capacity=float("inf"))
                if set(srcs) & set(dsts):
                    continue
                best = nx.maximum_flow_value(g, "__src__", "__dst__")
                if total > best + _EPS:
                    findings.append(
                        f"the demand from {_label(e.source)} to {_label(e.destination)} is "
                        f"{total:g} Mbit/s, but at {u:.0%} the links between them carry at most "
                        f"{best:g} Mbit/s on any routing"
                    )
        else:
            region = _region(e, topology) if e.region else set(topology.devices)
            findings.extend(_device_cuts(topology, demands, u, region))
            if not e.region:
                findings.extend(_pair_cuts(topology, demands, u))
        if findings:
            reason = (f"{_who(new, i)} keeps utilization under {u:.0%}, which the current "
                      f"demand cannot meet: " + "; ".join(findings[:3]))
            out.append(IntentConflict(new, new, i, i, reason))
    return out


def _device_cuts(
    topology: Topology, demands: list[Demand], u: float, region: set[str]
) -> list[str]:
    out = []
    for dev in sorted(region):
        nbrs = list(topology.graph.neighbors(dev))
        if not nbrs or any(n not in region for n in nbrs):
            continue
        cap = sum(float(topology.graph.edges[dev, n]["capacity_mbps"]) for n in nbrs)
        sent = sum(d.rate_mbps for d in demands if d.src == dev and d.dst != dev)
        received = sum(d.rate_mbps for d in demands if d.dst == dev and d.src != dev)
        for what, amount in (("sends", sent), ("receives", received)):
            if amount > u * cap + _EPS:
                out.append(f"{dev} {what} {amount:g} Mbit/s over links of {cap:g} Mbit/s in "
                           f"all ({u * cap:g} Mbit/s at {u:.0%})")
    return out


def _pair_cuts(topology: Topology, demands: list[Demand], u: float) -> list[str]:
    totals: dict[tuple[str, str], float] = {}
    for d in demands:
        if d.src != d.dst and d.src in topology.graph and d.dst in topology.graph:
            totals[(d.src, d.dst)] = totals.get((d.src, d.dst), 0.0) + d.rate_mbps
    g = _flow_graph(topology, u, None)
    out = []
    for (s, t), total in sorted(totals.items(), key=lambda kv: -kv[1])[:200]:
        best = nx.maximum_flow_value(g, s, t)
        if total > best + _EPS:
            out.append(f"{s} -> {t} carries {total:g} Mbit/s but at most {best:g} Mbit/s fits "
                       f"under {u:.0%} on any routing")
    return out


# ------------------------------------------------------------------------------------------
# entry point


def find_conflicts(
    new: Intent,
    active: Sequence[Intent],
    topology: Topology,
    *,
    twin: DigitalTwin | None = None,
    traffic: TrafficMatrix | None = None,
) -> list[IntentConflict]:
    """Every conflict of ``new`` with the ``active`` intents and inside ``new`` itself.

    Active intents with the same id as ``new`` (a re-plan of it) or withdrawn ones are skipped.
    ``twin`` gives the forwarding paths for capacity checks (else IGP shortest paths on the
    topology); ``traffic`` enables the check of utilization ceilings against the current demand.
    Unknown groups, sites, devices or services raise :class:`ConfigError` naming them.
    """
    others = [a for a in active if a.id != new.id and a.state is not LifecycleState.WITHDRAWN]
    out: list[IntentConflict] = []
    n = len(new.expectations)
    for i, j in itertools.combinations(range(n), 2):
        reason = _pair_reason(new, i, new, j, topology)
        if reason is not None:
            out.append(IntentConflict(new, new, i, j, reason))
    for old in others:
        for i, j in itertools.product(range(n), range(len(old.expectations))):
            reason = _pair_reason(new, i, old, j, topology)
            if reason is not None:
                out.append(IntentConflict(new, old, i, j, reason))
    guarantees = _guarantees([(new, True), *((a, False) for a in others)], topology, twin)
    out.extend(_over_capacity(guarantees, topology, new))
    out.extend(_ceiling_vs_guarantees(new, others, guarantees, topology, twin))
    if traffic is not None:
        out.extend(_ceiling_vs_demand(new, topology, traffic))
    return out
