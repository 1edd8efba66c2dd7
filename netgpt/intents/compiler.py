"""The intent compiler: a formal :class:`Intent` to per-device candidate configs (a ChangeSet).

Built on the current configs and the digital twin, deterministic, pure (no I/O). Each kind:

- **access block / reachability must-not**: drop rules in the ACL ``intent-<id>``, placed at the
  edge closest to the source (ingress of ``eth0`` on the source's devices) when the source is a
  device, group or site, else at the destination's edge (egress of ``eth0`` on its devices). The
  ACL is put first on the interface, ahead of ACLs already attached, which stay intact.
- **access allow / reachability must**: nothing is added. The compiler checks on the twin that
  every test flow gets through; this intent's own earlier rules are always removed first (a
  recompile replaces them); a drop by any other ACL, or a missing route, is a
  :class:`CompileError` naming the rule: allowing it would override another intent, which is for
  the conflict check and the operator to decide.
- **allow only X** (an intent that allows and blocks, e.g. "allow only ssh to the servers"): the
  allowed traffic becomes ACCEPT rules placed ahead of the intent's drop rules in its ACL, on every
  device where the drops are; the twin then checks both the allow and the block.
- **time windows**: the drop rules carry the window as their time range, so each device enforces
  it by its own clock (as routers' time-based ACLs do; nothing depends on the controller being up
  at the window's edges); the twin checks them at the next moment the window is open.
- **waypoint**: static routes for the destination's prefixes along src -> W1 -> ... -> dst
  (IGP-shortest segments that do not revisit a device), only on devices whose forwarding would not
  already take the next hop; the twin then confirms every path crosses the waypoints.
- **load balancing over N paths**: among the k shortest simple paths, the first set of N whose
  costs can be made to tie by raising the cost of one edge unique to each cheaper path, such that
  exactly those N paths are then the shortest ones; confirmed with ``twin.paths``.
- **bandwidth cap**: a class policer (the traffic's protocol, ports and prefixes) on the ingress of
  the source's ``eth0`` (or the egress of the destination's ``eth0`` when the source is not a
  place of the network); other traffic on that interface is untouched. The cap holds per device
  of the placement, which a note says.
- **bandwidth guarantee**: a reservation (a class policer with ``assured_mbps``, rendered as an
  HTB class assured that rate) for the traffic on the egress of every link of its paths, which may
  borrow up to the link's capacity; :class:`CompileError` when a link would have more than
  :data:`MAX_RESERVED_SHARE` of its capacity reserved, or a path is not delivered.
- **utilization ceiling** (needs a traffic matrix): greedy; for the hottest over-ceiling link
  direction in scope, try the IGP costs that make an alternative path tie (ECMP then splits the
  traffic) and doublings (the traffic moves away), keep the one that lowers the total excess over
  the ceiling most, re-evaluate, repeat (bounded); :class:`CompileError` if the ceiling cannot be
  met.
- **latency**: if the largest ECMP path delay exceeds ``max_ms``, take the lowest-delay path and
  raise the cost of the first deviating edge of each shortest path that is too slow until only
  fast enough paths remain shortest; :class:`CompileError` if even the fastest path is too slow.
- **slo** of a placed workload (``workloads`` names where its instances run): the objective's
  network share is headroom on the paths between the scope's edge instances and the cloud
  instance, both ways: a utilization ceiling of :data:`SLO_PATH_CEILING` on each, planned as the
  ceiling above (queueing delay grows as rho / (1 - rho): at 80% a burst already doubles it, and
  past 100% queues fill and drop). A throughput objective also reserves its rate between each
  edge in scope and the cloud, both ways, as a bandwidth guarantee does. Whether the objective
  itself holds is measured from the workload's requests (live verification). Without a
  placement: an empty change set with a note.

IGP costs are per direction (the sending interface's cost), so a raise never moves reverse traffic.

**Alternatives** (:func:`compile_alternatives`): where a plan chooses paths or links (waypoint,
load balancing, latency, utilization ceiling), the links it steered are avoided in the next
compile: path searches pay a penalty on them and the ceiling repair does not raise their costs
again. Each alternative is a complete plan with its own notes; the agent verifies each on the
twin and the policies, and a person's or a model's choice among those that pass is recorded.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from netgpt.device_config import (
    Acl,
    AclAction,
    AclRule,
    ClassPolicer,
    DeviceConfig,
    InterfaceConfig,
    IPProtocol,
    StaticRoute,
    TimeWindow,
    TrafficMatch,
)
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    AccessAction,
    AccessExpectation,
    AnyEndpoint,
    BandwidthExpectation,
    BandwidthMode,
    DeviceEndpoint,
    Expectation,
    Intent,
    LatencyExpectation,
    LoadBalancingExpectation,
    ReachabilityExpectation,
    ServiceLevelExpectation,
    TrafficSelector,
    UtilizationCeilingExpectation,
    WaypointExpectation,
    WorkloadPlacement,
)
from netgpt.intents.plan import ChangeSet, DeviceChange
from netgpt.intents.resolve import (
    ANY_PREFIX,
    FlowMatch,
    ResolvedEndpoint,
    ResolvedTraffic,
    first_host,
    probes,
    resolve_endpoint,
    resolve_region,
    resolve_traffic,
)
from netgpt.intents.verify import evaluate_expectation, path_links, scoped_links
from netgpt.sim_networks.topology import ACCESS_INTERFACE, Topology
from netgpt.sim_networks.twin import DigitalTwin, DropReason, TrafficMatrix

__all__ = ["MAX_RESERVED_SHARE", "CompileError", "compile_alternatives", "compile_intent",
           "intent_acl_name"]

MAX_RESERVED_SHARE = 0.9  # of a link's capacity that guarantees may reserve (the rest: all else)

_MAX_COST = 65535
_CANDIDATE_PATHS = 16
_MAX_COMBINATIONS = 5000
_CEILING_STEPS = 60
_LATENCY_STEPS = 100
_EPS = 1e-9
# A repair aims this far (relative) under a violated ceiling, so that measurement noise and small
# traffic moves do not put the link straight back over it; it settles for the ceiling itself
# when no plan reaches the margin.
_CEILING_HEADROOM = 0.05
# what an avoided link direction adds to a path search's cost or delay: a path over it is taken
# only when no other one exists
_AVOID_PENALTY = 1_000_000.0


class CompileError(ConfigError):
    """The intent cannot be turned into configs: impossible here, or blocked by another intent."""


def intent_acl_name(intent_id: str) -> str:
    """Return the ACL that holds ``intent_id``'s rules on every device (``intent-<id>``)."""
    name = f"intent-{intent_id}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(intent_id.encode()).hexdigest()[:12]
    return f"intent-{intent_id[:44]}-{digest}"


# --------------------------------------------------------------------------------------------
# working state


@dataclass
class _Plan:
    """The configs being built, with why each device changes, and the notes for the operator."""

    topology: Topology
    base_twin: DigitalTwin
    acl: str
    configs: dict[str, DeviceConfig]
    reasons: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # this intent's allow expectations, when it also blocks: exceptions to its own drop rules
    allows: list[tuple[int, AccessExpectation]] = field(default_factory=list)
    # link directions to keep off (an alternative plan) and those this plan steered
    avoid: frozenset[tuple[str, str]] = frozenset()
    steered: set[tuple[str, str]] = field(default_factory=set)

    def twin(self) -> DigitalTwin:
        return self.base_twin.with_configs(self.configs)

    def set(self, device: str, config: DeviceConfig, reason: str) -> None:
        if config != self.configs[device]:
            self.configs[device] = config
            self.reasons.setdefault(device, []).append(reason)

    def cost(self, device: str, neighbour: str) -> int:
        itf = self.configs[device].interface(self.topology.interface_to(device, neighbour))
        if itf.igp_cost is not None:
            return itf.igp_cost
        return int(self.topology.graph.edges[device, neighbour]["igp_cost"])

    def set_cost(self, device: str, neighbour: str, cost: int, why: str) -> None:
        name = self.topology.interface_to(device, neighbour)
        cfg = self.configs[device]
        old = self.cost(device, neighbour)
        itf = cfg.interface(name).model_copy(update={"igp_cost": cost})
        self.set(device, cfg.with_interface(itf),
                 f"IGP cost of {name} toward {neighbour} {old} -> {cost}: {why}")

    def graph(self) -> nx.DiGraph:
        """Up link directions with their current cost and delay."""
        g = nx.DiGraph()
        g.add_nodes_from(self.topology.devices)
        for lk in self.topology.links():
            a = _interface(self.configs[lk.a], lk.a_interface)
            b = _interface(self.configs[lk.b], lk.b_interface)
            if a is None or b is None or not (a.enabled and b.enabled):
                continue
            for u, v in ((lk.a, lk.b), (lk.b, lk.a)):
                penalty = _AVOID_PENALTY if (u, v) in self.avoid else 0.0
                g.add_edge(u, v, cost=self.cost(u, v), delay=lk.delay_ms,
                           pref=self.cost(u, v) + penalty, pref_delay=lk.delay_ms + penalty)
        return g

    def steer(self, path: tuple[str, ...] | list[str]) -> None:
        """Record the link directions a chosen path takes (an alternative avoids them)."""
        self.steered.update(path_links(tuple(path)))


def _interface(cfg: DeviceConfig, name: str) -> InterfaceConfig | None:
    try:
        return cfg.interface(name)
    except KeyError:
        return None


def _path_sum(g: nx.DiGraph, path: list[str] | tuple[str, ...], key: str) -> float:
    return float(sum(g.edges[u, v][key] for u, v in itertools.pairwise(path)))


# --------------------------------------------------------------------------------------------
# ACL edits


def _without_acl(cfg: DeviceConfig, name: str) -> DeviceConfig:
    itfs = tuple(
        i.model_copy(update={
            "acl_ingress": tuple(a for a in i.acl_ingress if a != name),
            "acl_egress": tuple(a for a in i.acl_egress if a != name),
        })
        for i in cfg.interfaces
    )
    return DeviceConfig(hostname=cfg.hostname, interfaces=itfs,
                        acls=tuple(a for a in cfg.acls if a.name != name),
                        static_routes=cfg.static_routes)


def _with_rules(
    cfg: DeviceConfig, acl_name: str, rules: list[AclRule], *, ingress: bool
) -> DeviceConfig:
    """Add ``rules`` to ACL ``acl_name`` and attach it first on eth0 (ingress or egress)."""
    old = next((a for a in cfg.acls if a.name == acl_name), None)
    kept = old.rules if old is not None else ()
    taken = {r.name for r in kept}
    acl = Acl(name=acl_name, rules=(*kept, *(r for r in rules if r.name not in taken)))
    acls = (*(a for a in cfg.acls if a.name != acl_name), acl)
    cfg = DeviceConfig(hostname=cfg.hostname, interfaces=cfg.interfaces, acls=acls,
                       static_routes=cfg.static_routes)
    try:
        itf = cfg.interface(ACCESS_INTERFACE)
    except KeyError:
        raise CompileError(
            f"{cfg.hostname} has no access interface {ACCESS_INTERFACE} to place ACL {acl_name} "
            "on; restore the interface in its config first"
        ) from None
    key = "acl_ingress" if ingress else "acl_egress"
    attached: tuple[str, ...] = getattr(itf, key)
    if acl_name not in attached:
        attached = (acl_name, *attached)
    return cfg.with_interface(itf.model_copy(update={key: attached}))


# --------------------------------------------------------------------------------------------
# access and reachability


def _twin_in(plan: _Plan, window: TimeWindow | None) -> DigitalTwin:
    """The candidate twin at the next moment ``window`` is open (now, without a window)."""
    twin = plan.twin()
    return twin if window is None else twin.at_time(window.next_inside(twin.at))


def _prefixes(end: ResolvedEndpoint) -> tuple[str, ...]:
    return (ANY_PREFIX,) if end.is_any or not end.prefixes else end.prefixes


def _exception_rules(plan: _Plan) -> list[AclRule]:
    """ACCEPT rules for this intent's allow expectations (the "only X" of "allow only X")."""
    rules: list[AclRule] = []
    for index, e in plan.allows:
        t = resolve_traffic(e.traffic, plan.topology)
        rules.extend(
            AclRule(name=f"e{index}-a{n}", action=AclAction.ACCEPT, protocol=m.protocol,
                    source_prefix=sp, destination_prefix=dp, destination_ports=m.ports,
                    time_range=e.window)
            for n, (sp, dp, m) in enumerate(
                itertools.product(_prefixes(t.source), _prefixes(t.destination), t.matches),
                start=1)
        )
    return rules


def _block(
    plan: _Plan, index: int, traffic: ResolvedTraffic, what: str,
    window: TimeWindow | None = None,
) -> None:
    src, dst = traffic.source, traffic.destination
    if src.attached:
        devices, ingress = src.devices, True
        src_prefixes = (ANY_PREFIX,) if src.whole_device else src.prefixes
        dst_prefixes = (ANY_PREFIX,) if dst.is_any else dst.prefixes
        where = f"ingress of {ACCESS_INTERFACE} at {src.label}, the edge closest to the source"
    elif dst.devices and not dst.is_any:
        devices, ingress = dst.devices, False
        src_prefixes = src.prefixes
        dst_prefixes = (ANY_PREFIX,) if dst.whole_device else dst.prefixes
        where = (f"egress of {ACCESS_INTERFACE} at {dst.label}, the destination's edge (the "
                 f"source, {src.label}, is not a place of the network)")
    else:
        raise CompileError(
            f"cannot place a block of {traffic.label}: neither end is a device, group, site or "
            "a prefix inside the network; name a source or destination"
        )
    if not dst_prefixes:
        raise CompileError(f"{dst.label} has no local prefixes to match; name a group or prefix")
    exceptions = _exception_rules(plan)
    for device in devices:
        rules = [*exceptions] + [
            AclRule(name=f"e{index}-{n}", action=AclAction.DROP, protocol=m.protocol,
                    source_prefix=sp, destination_prefix=dp, destination_ports=m.ports,
                    time_range=window)
            for n, (sp, dp, m) in enumerate(
                itertools.product(src_prefixes, dst_prefixes, traffic.matches), start=1)
        ]
        drops = len(rules) - len(exceptions)
        but = f", except {len(exceptions)} allowed" if exceptions else ""
        plan.set(device, _accepts_first(
                     _with_rules(plan.configs[device], plan.acl, rules, ingress=ingress),
                     plan.acl),
                 f"ACL {plan.acl}: drop {what} ({drops} rule(s){but}) on {where}")
    when = "" if window is None else f", in force {window} by the devices' clocks"
    plan.notes.append(f"block {what}: drop rules in ACL {plan.acl} on the {where}{when}")
    twin = _twin_in(plan, window)
    for p in probes(src, dst, traffic.matches):
        r = twin.reachability(p.src_device, p.dst_address, p.protocol, p.dst_port, p.src_address)
        if r.reachable:
            raise CompileError(f"the block rules for {what} do not stop {r}")


def _accepts_first(cfg: DeviceConfig, acl_name: str) -> DeviceConfig:
    """The intent's ACL with its exception (ACCEPT) rules ahead of its drop rules."""
    acl = cfg.acl(acl_name)
    ordered = sorted(acl.rules, key=lambda r: r.action is not AclAction.ACCEPT)
    acls = tuple(a if a.name != acl_name else Acl(name=acl_name, rules=tuple(ordered))
                 for a in cfg.acls)
    return DeviceConfig(hostname=cfg.hostname, interfaces=cfg.interfaces, acls=acls,
                        static_routes=cfg.static_routes)


def _ensure_open(
    plan: _Plan, traffic: ResolvedTraffic, what: str, window: TimeWindow | None = None,
    *, note: bool = True,
) -> None:
    twin = _twin_in(plan, window)
    flows = probes(traffic.source, traffic.destination, traffic.matches)
    if not flows:
        raise CompileError(f"no test flow for {what}: {traffic.destination.label} has no address")
    for p in flows:
        r = twin.reachability(p.src_device, p.dst_address, p.protocol, p.dst_port, p.src_address)
        if r.delivered_fraction >= 1 - _EPS:
            continue
        acls = [c for c in r.drops if c.reason is DropReason.ACL]
        if any(c.acl == plan.acl for c in acls):
            raise CompileError(
                f"intent's own block rules stop {what} ({r}); its expectations contradict each "
                "other: narrow the block or drop the allow"
            )
        if acls:
            raise CompileError(
                f"cannot allow {what}: {r}. That ACL belongs to another intent or to the "
                "operator; withdraw or narrow it first (the compiler does not override it)"
            )
        raise CompileError(f"cannot allow {what}: {r}; fix routing or interfaces first")
    if note:
        plan.notes.append(f"allow {what}: open on the twin ({len(flows)} test flow(s))")


def _access(plan: _Plan, index: int, e: AccessExpectation) -> None:
    traffic = resolve_traffic(e.traffic, plan.topology)
    if e.action is AccessAction.BLOCK:
        _block(plan, index, traffic, traffic.label, e.window)
    else:
        _ensure_open(plan, traffic, traffic.label, e.window)


def _reachability(plan: _Plan, index: int, e: ReachabilityExpectation) -> None:
    src = resolve_endpoint(e.source, plan.topology)
    dst = resolve_endpoint(e.destination, plan.topology)
    traffic = ResolvedTraffic(src, dst, (FlowMatch(IPProtocol.ANY),),
                              f"all traffic from {src.label} to {dst.label}")
    if e.reachable:
        _ensure_open(plan, traffic, traffic.label)
    else:
        _block(plan, index, traffic, traffic.label)


# --------------------------------------------------------------------------------------------
# waypoint


def _destination_routes(dst: ResolvedEndpoint, topology: Topology) -> list[tuple[str, str]]:
    if dst.is_any:
        raise CompileError("a waypoint needs a destination; 'anywhere' has no prefixes to route")
    if dst.kind == "group":
        routes = [(dst.devices[0], p) for p in dst.prefixes]
    elif dst.kind == "prefix":
        if len(dst.devices) != 1:
            raise CompileError(
                f"{dst.label} is owned by {len(dst.devices)} devices {list(dst.devices)}; a "
                "waypoint needs a destination with one attachment"
            )
        routes = [(dst.devices[0], dst.prefixes[0])]
    else:
        routes = [(d, p) for d in dst.devices for p in topology.local_prefixes(d)]
    if not routes:
        raise CompileError(f"{dst.label} has no local prefixes to route toward")
    return routes


def _segment(g: nx.DiGraph, a: str, b: str, used: set[str]) -> list[str]:
    view = nx.subgraph_view(g, filter_node=lambda n: n in (a, b) or n not in used)
    try:
        return list(nx.shortest_path(view, a, b, weight="pref"))
    except nx.NetworkXNoPath:
        raise CompileError(
            f"no path from {a} to {b} that avoids devices already on the waypoint path "
            f"{sorted(used)}; destination-based routes cannot revisit a device"
        ) from None


def _waypoint(plan: _Plan, index: int, e: WaypointExpectation) -> None:
    topo = plan.topology
    unknown = [w for w in e.via if w not in topo.graph]
    if unknown:
        raise CompileError(
            f"waypoint(s) {unknown} are not devices of topology {topo.name!r}; known devices "
            f"start with {topo.devices[:8]}"
        )
    src = resolve_endpoint(e.source, topo)
    dst = resolve_endpoint(e.destination, topo)
    if src.is_any or not src.devices:
        raise CompileError(f"a waypoint needs a source inside the network, got {src.label}")
    routes = _destination_routes(dst, topo)
    g = plan.graph()
    twin = plan.twin()
    wanted: dict[tuple[str, str], str] = {}
    for s in src.devices:
        for owner, prefix in routes:
            stops = [s, *e.via, owner]
            stops = [x for i, x in enumerate(stops) if i == 0 or x != stops[i - 1]]
            path: list[str] = [s]
            for a, b in itertools.pairwise(stops):
                path.extend(_segment(g, a, b, set(path))[1:])
            plan.notes.append(f"waypoint path for {prefix} from {s}: {'-'.join(path)}")
            plan.steer(path)
            for u, v in itertools.pairwise(path):
                seen = wanted.setdefault((u, prefix), v)
                if seen != v:
                    raise CompileError(
                        f"sources of {src.label} need {u} to send {prefix} both to {seen} and "
                        f"to {v}; destination-based routes cannot do both: name one source"
                    )
    for (u, prefix), v in sorted(wanted.items()):
        cfg = plan.configs[u]
        current = next((r for r in cfg.static_routes if r.prefix == prefix), None)
        next_hop = str(topo.graph.edges[u, v]["ports"][v][1]).split("/")[0]
        if current is None:
            hops = {t.devices[1] for t in twin.paths(u, first_host(prefix)) if len(t.devices) > 1}
            if hops == {v}:
                continue  # the IGP already takes the next hop
        elif current.next_hop_address == next_hop:
            continue
        route = StaticRoute(prefix=prefix, next_hop_address=next_hop)
        statics = (*tuple(r for r in cfg.static_routes if r.prefix != prefix), route)
        why = f"static route {prefix} via {v} ({next_hop}) to cross {'-'.join(e.via)}"
        if current is not None:
            why = f"{why}, replacing the existing route for {prefix}"
        plan.set(u, cfg.model_copy(update={"static_routes": statics}), why)
    plan.notes.append(
        "the static routes steer all traffic to those prefixes that reaches these devices, not "
        f"only traffic from {src.label}"
    )
    _confirm(plan, index, e)


def _confirm(plan: _Plan, index: int, e: Expectation) -> None:
    result = evaluate_expectation(e, index, plan.twin())
    if not result.holds:
        raise CompileError(f"the planned change does not satisfy {e.kind}: {result.measurement}")


# --------------------------------------------------------------------------------------------
# load balancing


def _single(end: ResolvedEndpoint, role: str) -> str:
    if len(end.devices) != 1:
        raise CompileError(
            f"load balancing needs one {role} device; {end.label} attaches at "
            f"{list(end.devices)[:8]}: name a device or group"
        )
    return end.devices[0]


def _load_balancing(plan: _Plan, index: int, e: LoadBalancingExpectation) -> None:
    topo = plan.topology
    src = resolve_endpoint(e.source, topo)
    dst = resolve_endpoint(e.destination, topo)
    s, d = _single(src, "source"), _single(dst, "destination")
    address = next((a for dev, a in dst.addresses if dev == d and a is not None), None)
    if address is None:
        raise CompileError(f"{dst.label} has no address to balance traffic toward")
    now = [t for t in plan.twin().paths(s, address) if t.delivered]
    if len(now) >= e.paths:
        plan.notes.append(f"{len(now)} equal-cost paths from {s} to {address} already (want "
                          f"{e.paths}); no change")
        return
    g = plan.graph()
    try:
        candidates = [tuple(p) for p in itertools.islice(
            nx.shortest_simple_paths(g, s, d, weight="pref"), _CANDIDATE_PATHS)]
    except nx.NetworkXNoPath:
        candidates = []
    if len(candidates) < e.paths:
        raise CompileError(
            f"{topo.name} has only {len(candidates)} simple path(s) from {s} to {d}; cannot "
            f"balance over {e.paths}"
        )
    for tries, combo in enumerate(itertools.combinations(candidates, e.paths)):
        if tries >= _MAX_COMBINATIONS:
            break
        raises = _tie(g, list(combo))
        if raises is not None:
            for (u, v), cost in sorted(raises.items()):
                plan.set_cost(u, v, cost, f"{e.paths} equal-cost paths from {s} to {d}")
            plan.notes.append(
                f"load balancing {s} -> {d} over {e.paths} equal-cost paths: "
                + "; ".join("-".join(p) for p in combo)
                + ". Raised IGP costs also move other traffic that used those link directions"
            )
            for p in combo:
                plan.steer(p)
            _confirm(plan, index, e)
            return
    raise CompileError(
        f"no set of {e.paths} paths from {s} to {d} among the {len(candidates)} shortest can be "
        "made exactly equal-cost by raising IGP costs; ask for fewer paths"
    )


def _tie(g: nx.DiGraph, chosen: list[tuple[str, ...]]) -> dict[tuple[str, str], int] | None:
    """Cost raises that make exactly ``chosen`` the shortest paths, or ``None``."""
    edges = [set(path_links(p)) for p in chosen]
    costs = [_path_sum(g, p, "cost") for p in chosen]
    top = max(costs)
    raises: dict[tuple[str, str], int] = {}
    for i, p in enumerate(chosen):
        if costs[i] >= top:
            continue
        others = set().union(*(edges[j] for j in range(len(chosen)) if j != i))
        unique = [lk for lk in path_links(p) if lk not in others]
        if not unique:
            return None
        u, v = unique[-1]
        new = int(g.edges[u, v]["cost"] + (top - costs[i]))
        if new > _MAX_COST:
            return None
        raises[(u, v)] = new

    def weight(u: str, v: str, data: dict[str, object]) -> float:
        return float(raises.get((u, v), data["cost"]))  # type: ignore[arg-type]

    s, d = chosen[0][0], chosen[0][-1]
    found = {tuple(p) for p in itertools.islice(
        nx.all_shortest_paths(g, s, d, weight=weight), len(chosen) + 1)}
    return raises if found == set(chosen) else None


# --------------------------------------------------------------------------------------------
# bandwidth


def _bandwidth(
    plan: _Plan, index: int, e: BandwidthExpectation, traffic: TrafficMatrix | None
) -> None:
    t = resolve_traffic(e.traffic, plan.topology)
    if e.mode is BandwidthMode.GUARANTEE:
        _guarantee(plan, index, e, t, traffic)
        return
    src, dst = t.source, t.destination
    if src.attached:
        devices, direction = src.devices, "ingress"
        src_prefixes = (ANY_PREFIX,) if src.whole_device else src.prefixes
        dst_prefixes = _prefixes(dst)
        where = f"ingress of {ACCESS_INTERFACE} at {src.label}"
    elif dst.devices and not dst.is_any:
        devices, direction = dst.devices, "egress"
        src_prefixes = _prefixes(src)
        dst_prefixes = (ANY_PREFIX,) if dst.whole_device else dst.prefixes
        where = f"egress of {ACCESS_INTERFACE} at {dst.label}"
    else:
        raise CompileError(f"cannot place a cap for {t.label}: name a source or destination")
    matches = tuple(
        TrafficMatch(protocol=m.protocol, source_prefix=sp, destination_prefix=dp,
                     destination_ports=m.ports)
        for sp, dp, m in itertools.product(src_prefixes, dst_prefixes, t.matches)
    )
    name = _class_name(plan, index)
    policer = ClassPolicer(name=name, direction=direction, rate_mbps=e.rate_mbps,
                           matches=matches)
    for device in devices:
        cfg = plan.configs[device]
        itf = cfg.interface(ACCESS_INTERFACE)
        # this intent's earlier policer of the same expectation is replaced; others stay, after it
        others = tuple(c for c in itf.class_policers if c.name != name)
        new = itf.model_copy(update={"class_policers": (policer, *others)})
        plan.set(device, cfg.with_interface(new),
                 f"class policer {name} {e.rate_mbps:g} Mbit/s on the {where} for {t.label}")
    plan.notes.append(
        f"cap {t.label} at {e.rate_mbps:g} Mbit/s with class policer {name} on the {where} "
        f"({len(matches)} match(es)); other traffic on that interface is not policed; the cap "
        f"holds per device ({len(devices)})"
    )
    _confirm(plan, index, e)


def _class_name(plan: _Plan, index: int, part: str = "") -> str:
    """The class policer of expectation ``index`` (``part``: one of several), within 64 chars."""
    name = f"{plan.acl}-e{index}{part}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{plan.acl[:40]}-{digest}-e{index}{part}"


def _guarantee(plan: _Plan, index: int, e: BandwidthExpectation, t: ResolvedTraffic,
               traffic: TrafficMatrix | None, part: str = "") -> None:
    """Reserve ``e.rate_mbps`` for the traffic on the egress of every link of its paths.

    Under ``traffic``, a link whose free capacity is below the rate gets a note: the
    reservation squeezes the traffic already there. ``part`` tells apart the classes of one
    expectation that reserves for several flows.
    """
    src, dst = t.source, t.destination
    if src.is_any or dst.is_any:
        raise CompileError(f"cannot guarantee {e.rate_mbps:g} Mbit/s for {t.label}: name both "
                           "ends, since the reservation sits on every link between them")
    matches = tuple(
        TrafficMatch(protocol=m.protocol, source_prefix=sp, destination_prefix=dp,
                     destination_ports=m.ports)
        for sp, dp, m in itertools.product(_prefixes(src), _prefixes(dst), t.matches))
    twin = plan.twin()
    links: dict[tuple[str, str], None] = {}
    for p in probes(src, dst, t.matches):
        for trace in twin.paths(p.src_device, p.dst_address):
            if not trace.delivered:
                raise CompileError(
                    f"cannot guarantee {e.rate_mbps:g} Mbit/s for {t.label}: the path "
                    f"{'-'.join(trace.devices)} is not delivered ({trace.drop}); fix "
                    "reachability first")
            links.update(dict.fromkeys(path_links(trace.devices)))
    if not links:
        raise CompileError(f"cannot guarantee {e.rate_mbps:g} Mbit/s for {t.label}: its ends "
                           "share a device, so no link carries it")
    name = _class_name(plan, index, part)
    for u, v in links:
        capacity = float(plan.topology.graph.edges[u, v]["capacity_mbps"])
        itf_name = plan.topology.interface_to(u, v)
        cfg = plan.configs[u]
        itf = cfg.interface(itf_name)
        others = tuple(c for c in itf.class_policers if c.name != name)
        reserved = sum(c.assured_mbps for c in others if c.direction == "egress")
        if reserved + e.rate_mbps > capacity * MAX_RESERVED_SHARE + _EPS:
            raise CompileError(
                f"cannot guarantee {e.rate_mbps:g} Mbit/s for {t.label}: {u} {itf_name} toward "
                f"{v} has {capacity:g} Mbit/s with {reserved:g} already reserved, and at most "
                f"{MAX_RESERVED_SHARE:.0%} of a link may be reserved; lower the rate")
        policer = ClassPolicer(name=name, direction="egress", rate_mbps=capacity,
                               assured_mbps=e.rate_mbps, matches=matches)
        plan.set(u, cfg.with_interface(itf.model_copy(update={
                     "class_policers": (*others, policer)})),
                 f"reserve {e.rate_mbps:g} Mbit/s for {t.label} on {u} {itf_name} toward {v} "
                 f"(class {name}, borrowing up to the link's {capacity:g})")
    if traffic is not None:
        report = twin.evaluate(traffic)
        for u, v in links:
            lk = report.link(u, v)
            if lk.capacity_mbps - lk.load_mbps < e.rate_mbps:
                plan.notes.append(
                    f"the reservation on {u}->{v} squeezes the traffic there: {lk.load_mbps:g} "
                    f"Mbit/s on {lk.capacity_mbps:g} now, at least "
                    f"{max(lk.capacity_mbps - e.rate_mbps, 0):g} left to it under congestion")
    plan.notes.append(
        f"guarantee {e.rate_mbps:g} Mbit/s for {t.label}: class {name} reserves it on the egress "
        f"of {len(links)} link direction(s) of its paths ({len(matches)} match(es)); the class "
        "may use what others leave, up to the link; a re-route moves the reservation with the "
        "next plan")
    _confirm(plan, index, e)


# --------------------------------------------------------------------------------------------
# utilization ceiling


def _excess(
    e: UtilizationCeilingExpectation, twin: DigitalTwin, traffic: TrafficMatrix, limit: float
) -> tuple[float, list[tuple[float, tuple[str, str]]]]:
    """Total utilization over ``limit`` in scope, and the links over it, worst first."""
    report = twin.evaluate(traffic)
    scope = scoped_links(e, twin)
    keys = list(report.links) if scope is None else scope
    over = sorted(((report.links[k].utilization, k) for k in keys
                   if report.links[k].utilization > limit + _EPS), reverse=True)
    return float(sum(u - limit for u, _ in over)), over


def _ceiling_candidates(plan: _Plan, u: str, v: str, current: int) -> list[int]:
    """Costs worth trying for ``u -> v``, ascending, at most a dozen.

    Those that make an alternative path tie (so ECMP splits the traffic) and doublings (so the
    traffic moves away).
    """
    g = plan.graph()
    via_v = nx.single_source_dijkstra_path_length(g, v, weight="cost")
    g.remove_edge(u, v)
    around = nx.single_source_dijkstra_path_length(g, u, weight="cost")
    ties = {
        int(around[d] - via_v[d])
        for d in via_v
        if d in around and d != u and current < around[d] - via_v[d] <= _MAX_COST
    }
    doublings = {min(_MAX_COST, current * 2**k) for k in range(1, 5)}
    return sorted(c for c in ties | doublings if c > current)[:12]


def _lower_utilization(
    plan: _Plan, e: UtilizationCeilingExpectation, traffic: TrafficMatrix, limit: float
) -> list[tuple[float, tuple[str, str]]]:
    """Raise IGP costs greedily until no link in scope is over ``limit``; the links still over."""
    excess, over = _excess(e, plan.twin(), traffic, limit)
    pinned: set[tuple[str, str]] = set(plan.avoid)
    for _ in range(_CEILING_STEPS):
        todo = [k for _, k in over if k not in pinned]
        if not over or not todo:
            break
        u, v = todo[0]
        current = plan.cost(u, v)
        best: tuple[float, list[tuple[float, tuple[str, str]]], int] | None = None
        for trial_cost in _ceiling_candidates(plan, u, v, current):
            before = dict(plan.configs)
            reasons = {k: list(r) for k, r in plan.reasons.items()}
            plan.set_cost(u, v, trial_cost, "trial")
            trial_excess, trial_over = _excess(e, plan.twin(), traffic, limit)
            plan.configs, plan.reasons = before, reasons
            if trial_excess < excess - _EPS and (best is None or trial_excess < best[0] - _EPS):
                best = (trial_excess, trial_over, trial_cost)
        if best is None:
            pinned.add((u, v))
            continue
        excess, over, chosen = best
        plan.set_cost(u, v, chosen, f"move traffic off {u}->{v} (ceiling "
                                    f"{e.max_utilization:.0%})")
        plan.steered.add((u, v))
    return over


def _ceiling(
    plan: _Plan, index: int, e: UtilizationCeilingExpectation, traffic: TrafficMatrix | None
) -> None:
    if traffic is None:
        raise CompileError(
            "a utilization ceiling needs a traffic matrix to plan against; pass traffic="
        )
    if e.region:
        resolve_region(e.region, plan.topology)  # unknown names fail before any work
    _, over = _excess(e, plan.twin(), traffic, e.max_utilization)
    if not over:
        plan.notes.append(f"utilization already under {e.max_utilization:.0%} in scope; no change")
        return
    aim = e.max_utilization * (1.0 - _CEILING_HEADROOM)
    # first for the margin; whatever that leaves over the ceiling itself gets a second pass, and
    # if chasing the margin led somewhere the ceiling cannot be met, plan for the ceiling alone
    start = dict(plan.configs), {k: list(r) for k, r in plan.reasons.items()}, set(plan.steered)
    _lower_utilization(plan, e, traffic, aim)
    over = _lower_utilization(plan, e, traffic, e.max_utilization)
    if over:
        plan.configs, plan.reasons, plan.steered = start[0], start[1], set(start[2])
        over = _lower_utilization(plan, e, traffic, e.max_utilization)
    if over:
        util, (u, v) = over[0]
        raise CompileError(
            f"cannot keep utilization under {e.max_utilization:.0%}: {u}->{v} stays at "
            f"{util:.0%} after raising IGP costs (its traffic has no other way, or moving it "
            "overloads another link); add capacity or lower the traffic"
        )
    _, worst = _excess(e, plan.twin(), traffic, 0.0)
    peak = worst[0][0] if worst else 0.0
    margin = "with the margin" if peak <= aim + _EPS else "without the full margin"
    plan.notes.append(
        f"utilization kept under {e.max_utilization:.0%} by raising IGP costs on "
        f"{len(plan.reasons)} device(s); the twin puts the busiest link in scope at {peak:.0%} "
        f"under the given traffic ({margin}: aimed at {aim:.0%})"
    )


# --------------------------------------------------------------------------------------------
# latency


def _latency(plan: _Plan, index: int, e: LatencyExpectation) -> None:
    topo = plan.topology
    src = resolve_endpoint(e.source, topo)
    dst = resolve_endpoint(e.destination, topo)
    pairs = [(s, d) for s in src.devices for d in dst.devices
             if s != d and topo.local_prefixes(d)]
    if not pairs:
        raise CompileError(f"no device pair from {src.label} to {dst.label} to measure latency")
    for s, d in pairs:
        if plan.twin().path_latency_ms(s, d)[1] <= e.max_ms + _EPS:
            plan.notes.append(f"latency {s} -> {d} already under {e.max_ms} ms; no change")
            continue
        g = plan.graph()
        try:
            fastest = tuple(nx.shortest_path(g, s, d, weight="pref_delay"))
        except nx.NetworkXNoPath:
            raise CompileError(f"no path from {s} to {d}") from None
        best = _path_sum(g, fastest, "delay")
        if best > e.max_ms + _EPS:
            raise CompileError(
                f"the fastest path {'-'.join(fastest)} from {s} to {d} takes {best:.3f} ms, more "
                f"than {e.max_ms} ms; no IGP cost can fix that"
            )
        keep = set(path_links(fastest))
        for _ in range(_LATENCY_STEPS):
            g = plan.graph()
            target = _path_sum(g, fastest, "cost")
            slow = sorted(tuple(p) for p in nx.all_shortest_paths(g, s, d, weight="cost")
                          if _path_sum(g, p, "delay") > e.max_ms + _EPS)
            if not slow:
                break
            q = slow[0]
            u, v = next(lk for lk in path_links(q) if lk not in keep)
            new = int(plan.cost(u, v) + target - _path_sum(g, q, "cost") + 1)
            if new > _MAX_COST:
                raise CompileError(f"raising {u}->{v} to keep {s}->{d} fast exceeds the "
                                   f"maximum IGP cost {_MAX_COST}")
            plan.set_cost(u, v, new, f"keep {s}->{d} on paths under {e.max_ms} ms")
        plan.steer(fastest)
        plan.notes.append(f"latency {s} -> {d}: steered toward {'-'.join(fastest)} "
                          f"({best:.3f} ms, limit {e.max_ms} ms) by raising IGP costs")
    _confirm(plan, index, e)


# --------------------------------------------------------------------------------------------
# entry point


def _scope_devices(intent: Intent, topology: Topology) -> set[str]:
    allowed = set(intent.scope.devices)
    unknown = sorted(allowed - set(topology.graph.nodes))
    if unknown:
        raise CompileError(f"intent scope names unknown devices {unknown}")
    if intent.scope.sites:
        allowed |= set(resolve_region(intent.scope.sites, topology))
    return allowed


SLO_PATH_CEILING = 0.8
"""The utilization a workload's objective keeps its edge-cloud paths under (see above)."""


def slo_sites(e: ServiceLevelExpectation, topology: Topology) -> tuple[str, ...] | None:
    """The sites an objective is about (``None``: every site, scope ``any``)."""
    if isinstance(e.scope, AnyEndpoint):
        return None
    where = resolve_endpoint(e.scope, topology)
    return tuple(sorted({str(topology.graph.nodes[d].get("site", d)) for d in where.devices}))


def slo_edge_sites(e: ServiceLevelExpectation, placement: WorkloadPlacement,
                   topology: Topology) -> list[str]:
    """The sites in ``e``'s scope that have an edge instance of ``placement`` (sorted)."""
    sites = slo_sites(e, topology)
    return sorted(placement.edges) if sites is None else [
        s for s in sites if s in placement.edges]


def slo_path_ceilings(
    e: ServiceLevelExpectation, placement: WorkloadPlacement, topology: Topology
) -> list[UtilizationCeilingExpectation]:
    """The path ceilings that are ``e``'s network share: each edge in scope to the cloud, and back.

    Scope ``any``: every edge instance; a site, group or device: the edge instances of the
    sites it touches. An edge moved away from its users adds their way to it, both ways.
    :class:`CompileError` when the scope has no edge instance.
    """
    in_scope = slo_edge_sites(e, placement, topology)
    if not in_scope:
        raise CompileError(
            f"workload {e.workload!r} has no edge instance at sites "
            f"{list(slo_sites(e, topology) or ())}; it runs edges at {sorted(placement.edges)}")
    cloud = placement.cloud_device
    pairs: set[tuple[str, str]] = set()
    for site in in_scope:
        edge = placement.edges[site]
        user = placement.user_device(site)
        for a, b in ((edge, cloud), (user, edge)):  # a moved edge: its users' way to it too
            if a != b:
                pairs.update({(a, b), (b, a)})
    return [UtilizationCeilingExpectation(max_utilization=SLO_PATH_CEILING,
                                          source=DeviceEndpoint(name=a),
                                          destination=DeviceEndpoint(name=b))
            for a, b in sorted(pairs)]


def _slo(plan: _Plan, index: int, e: ServiceLevelExpectation, traffic: TrafficMatrix | None,
         workloads: Mapping[str, WorkloadPlacement]) -> None:
    placement = workloads.get(e.workload)
    if placement is None:
        plan.notes.append(
            f"expectation #{index} (slo {e.metric} of {e.workload}): no placement of workload "
            f"{e.workload!r} is known, so there is no path to keep; it is watched by live "
            "verification")
        return
    ceilings = slo_path_ceilings(e, placement, plan.topology)
    for ceiling in ceilings:
        _ceiling(plan, index, ceiling, traffic)
    plan.notes.append(
        f"expectation #{index} (slo {e.metric} of {e.workload}): {len(ceilings)} edge-cloud "
        f"path direction(s) kept under {SLO_PATH_CEILING:.0%}; the objective itself is "
        "measured from the workload's requests")
    if e.metric == "throughput_mbps":
        # a throughput objective is a guarantee between each edge in scope and the cloud
        edges = sorted({placement.edges[s] for s in slo_edge_sites(e, placement, plan.topology)}
                       - {placement.cloud_device})
        n = 0
        for edge in edges:
            for a, b in ((edge, placement.cloud_device), (placement.cloud_device, edge)):
                wanted = BandwidthExpectation(
                    mode=BandwidthMode.GUARANTEE, rate_mbps=e.target,
                    traffic=TrafficSelector(source=DeviceEndpoint(name=a),
                                            destination=DeviceEndpoint(name=b)))
                _guarantee(plan, index, wanted, resolve_traffic(wanted.traffic, plan.topology),
                           traffic, part=f"-p{n}")
                n += 1


def compile_intent(
    intent: Intent,
    topology: Topology,
    configs: Mapping[str, DeviceConfig],
    *,
    traffic: TrafficMatrix | None = None,
    avoid: frozenset[tuple[str, str]] = frozenset(),
    workloads: Mapping[str, WorkloadPlacement] | None = None,
) -> ChangeSet:
    """Compile ``intent`` into per-device candidate configs built on ``configs``.

    Devices missing from ``configs`` run their day-0 config. Only devices whose config changes
    appear in the change set, each with its full candidate and the reasons. ``avoid``: link
    directions to keep the plan's paths off where another way exists, and whose IGP cost a
    ceiling repair must not raise (see :func:`compile_alternatives`). ``workloads``: where
    managed workloads run, by name (their objectives' paths). Raises
    :class:`CompileError` when the intent cannot be met here or would override another intent,
    :class:`ConfigError` for names the topology does not have.
    """
    unknown = sorted(set(configs) - set(topology.graph.nodes))
    if unknown:
        raise CompileError(f"configs name devices not in topology {topology.name!r}: {unknown}")
    base = {d: configs.get(d) or topology.initial_config(d) for d in topology.devices}
    plan = _Plan(topology, DigitalTwin(topology, base), intent_acl_name(intent.id), dict(base),
                 avoid=frozenset(avoid))
    for device in topology.devices:
        if any(a.name == plan.acl for a in base[device].acls):
            plan.set(device, _without_acl(base[device], plan.acl),
                     f"remove the previous rules of ACL {plan.acl} (recompile)")
    access = [(i, e) for i, e in enumerate(intent.expectations)
              if isinstance(e, AccessExpectation)]
    blocks = any(e.action is AccessAction.BLOCK for _, e in access) or any(
        isinstance(e, ReachabilityExpectation) and not e.reachable for e in intent.expectations)
    if blocks:
        plan.allows = [(i, e) for i, e in access if e.action is AccessAction.ALLOW]
    for index, e in enumerate(intent.expectations):
        if isinstance(e, AccessExpectation):
            _access(plan, index, e)
        elif isinstance(e, ReachabilityExpectation):
            _reachability(plan, index, e)
        elif isinstance(e, WaypointExpectation):
            _waypoint(plan, index, e)
        elif isinstance(e, LoadBalancingExpectation):
            _load_balancing(plan, index, e)
        elif isinstance(e, BandwidthExpectation):
            _bandwidth(plan, index, e, traffic)
        elif isinstance(e, UtilizationCeilingExpectation):
            _ceiling(plan, index, e, traffic)
        elif isinstance(e, LatencyExpectation):
            _latency(plan, index, e)
        else:
            assert isinstance(e, ServiceLevelExpectation)
            _slo(plan, index, e, traffic, workloads or {})
    for _, e in plan.allows:  # the intent's own drop rules must not stop what it allows
        t = resolve_traffic(e.traffic, plan.topology)
        _ensure_open(plan, t, t.label, e.window, note=False)
    if plan.allows:
        plan.notes.append(
            f"allow only: {len(plan.allows)} allowed traffic class(es) accepted ahead of the "
            f"drop rules in ACL {plan.acl}")
    changed = [d for d in topology.devices if plan.configs[d] != base[d]]
    allowed = _scope_devices(intent, topology)
    outside = [d for d in changed if allowed and d not in allowed]
    if outside:
        raise CompileError(
            f"intent {intent.id} needs changes on {outside}, outside its scope "
            f"{sorted(allowed)}; widen the scope or change the intent"
        )
    changes = tuple(
        DeviceChange(
            device=d,
            candidate=DeviceConfig.model_validate(plan.configs[d].model_dump()),
            reasons=tuple(dict.fromkeys(plan.reasons.get(d, ["config differs"]))),
        )
        for d in changed
    )
    if not changes:
        plan.notes.append("nothing to change on any device")
    return ChangeSet(intent_id=intent.id, changes=changes, notes=tuple(plan.notes),
                     steered=tuple(sorted(plan.steered)))


def compile_alternatives(
    intent: Intent,
    topology: Topology,
    configs: Mapping[str, DeviceConfig],
    *,
    traffic: TrafficMatrix | None = None,
    limit: int = 3,
    workloads: Mapping[str, WorkloadPlacement] | None = None,
) -> list[ChangeSet]:
    """Up to ``limit`` distinct plans for ``intent``; the first is :func:`compile_intent`'s.

    Each next plan avoids every link direction the plans before it steered (see the module
    docstring); the search stops at the first compile that fails or repeats a plan. Intents
    whose plans steer nothing (access, reachability, bandwidth, slo) have one plan. Raises what
    :func:`compile_intent` raises for the first plan.
    """
    if limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    plans = [compile_intent(intent, topology, configs, traffic=traffic, workloads=workloads)]
    avoid = set(plans[0].steered)
    while len(plans) < limit and avoid and plans[-1].changes:
        try:
            alt = compile_intent(intent, topology, configs, traffic=traffic,
                                 avoid=frozenset(avoid), workloads=workloads)
        except CompileError:
            break
        if not alt.changes or any(alt.candidates() == p.candidates() for p in plans):
            break
        plans.append(alt)
        avoid |= set(alt.steered)
    return plans
