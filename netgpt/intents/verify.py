"""Verification on the twin: the intent holds under candidate configs and nothing else breaks.

:func:`verify_on_twin` evaluates every expectation of the intent, and of every active intent
("no active intent breaks"), against ``DigitalTwin(topology, configs_after)`` and returns the
intent's :class:`FulfilmentReport` plus one :class:`Verdict` per expectation checked.
:func:`evaluate_expectation` judges one expectation on a given twin and is reused by live
verification. Pure logic, no I/O.

How each kind is measured:

- reachability / access: ``twin.reachability`` for representative flows (group prefixes' first
  hosts, devices' default addresses; a service's protocol and ports). Must / allow: every flow
  fully delivered; must-not / block: none delivered. With a time window, the flows are judged
  at the next moment the window is open (the devices enforce it by their clocks), and the
  measurement says whether it is open now and what passes outside it.
- waypoint: every forwarding path (``twin.paths``) is delivered and crosses ``via`` in order.
- load balancing: the number of delivered ECMP paths is at least ``paths``.
- bandwidth cap: every test flow offered at four times the cap at once, what is delivered per
  device at the policing edge (the source's, else the destination's) is at most the cap;
  guarantee: every path has
  headroom (capacity minus the load of ``traffic``, or of no traffic; on a link whose egress
  class for the flow reserves bandwidth, at least that reservation) of at least the rate and no
  policer below it.
- utilization ceiling: link utilization under ``traffic`` (no traffic given: zero load, which the
  measurement says) on the path, the region or everywhere.
- latency: the largest one-way delay over ECMP paths (``twin.path_latency_ms``).
- slo: a workload objective is not measurable on the twin: reported as holding, "not measured".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from netgpt.device_config import DeviceConfig, TimeWindow
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    AccessAction,
    AccessExpectation,
    BandwidthExpectation,
    BandwidthMode,
    Expectation,
    ExpectationResult,
    FulfilmentReport,
    Intent,
    LatencyExpectation,
    LoadBalancingExpectation,
    ReachabilityExpectation,
    ServiceLevelExpectation,
    UtilizationCeilingExpectation,
    WaypointExpectation,
)
from netgpt.intents.plan import Verdict, VerdictSource
from netgpt.intents.resolve import (
    Probe,
    ResolvedTraffic,
    probes,
    resolve_endpoint,
    resolve_region,
    resolve_traffic,
)
from netgpt.sim_networks.topology import ACCESS_INTERFACE, Topology
from netgpt.sim_networks.twin import Demand, DigitalTwin, LoadReport, TrafficMatrix

__all__ = [
    "PathPolicer",
    "evaluate_expectation",
    "path_links",
    "path_policers",
    "scoped_links",
    "verify_on_twin",
]

PathPolicer = tuple[str, str, str, float]  # (device, interface, direction, Mbit/s)
_EPS = 1e-9


def _contains_in_order(devices: tuple[str, ...], via: tuple[str, ...]) -> bool:
    it = iter(devices)
    return all(any(d == w for d in it) for w in via)


def path_links(devices: tuple[str, ...]) -> list[tuple[str, str]]:
    """Return the link directions (sender, receiver) a path crosses."""
    return list(itertools.pairwise(devices))


def path_policers(
    topology: Topology, configs: Mapping[str, DeviceConfig], devices: tuple[str, ...]
) -> list[PathPolicer]:
    """Policers a flow along ``devices`` crosses, in order (source eth0 to destination eth0)."""
    out: list[PathPolicer] = []

    def rate(device: str, interface: str, direction: str) -> None:
        try:
            itf = configs[device].interface(interface)
        except KeyError:
            return
        if itf.rate_limit is None:
            return
        rl = itf.rate_limit
        limit = rl.ingress_mbps if direction == "ingress" else rl.egress_mbps
        if limit is not None:
            out.append((device, interface, direction, float(limit)))

    if not devices:
        return out
    rate(devices[0], ACCESS_INTERFACE, "ingress")
    for u, v in path_links(devices):
        rate(u, topology.interface_to(u, v), "egress")
        rate(v, topology.interface_to(v, u), "ingress")
    rate(devices[-1], ACCESS_INTERFACE, "egress")
    return out


def _result(
    index: int,
    holds: bool,
    measurement: str,
    at: datetime,
    value: float | None = None,
    target: float | None = None,
) -> ExpectationResult:
    if value is not None and not math.isfinite(value):
        value = None
    return ExpectationResult(index=index, holds=holds, measurement=measurement, value=value,
                             target=target, source="twin", at=at)


def _reach(twin: DigitalTwin, p: Probe) -> tuple[float, str]:
    r = twin.reachability(p.src_device, p.dst_address, p.protocol, p.dst_port, p.src_address)
    return r.delivered_fraction, str(r)


def _flow_check(
    index: int,
    flows: tuple[Probe, ...],
    twin: DigitalTwin,
    *,
    open_: bool,
    label: str,
    at: datetime,
) -> ExpectationResult:
    if not flows:
        return _result(index, False, f"no test flow for {label} (no addresses)", at)
    bad: list[str] = []
    for p in flows:
        fraction, text = _reach(twin, p)
        ok = fraction >= 1 - _EPS if open_ else fraction <= _EPS
        if not ok:
            bad.append(text)
    share = 1 - len(bad) / len(flows)
    verb = "delivered" if open_ else "blocked"
    words = f"{len(flows) - len(bad)}/{len(flows)} test flows {verb} for {label}"
    if bad:
        words = f"{words}; first failing: {bad[0]}"
    return _result(index, not bad, words, at, share, 1.0)


def _loads(twin: DigitalTwin, traffic: TrafficMatrix | None) -> LoadReport:
    return twin.evaluate(traffic if traffic is not None else TrafficMatrix())


def _windowed_access(
    index: int,
    e: AccessExpectation,
    window: TimeWindow,
    flows: tuple[Probe, ...],
    twin: DigitalTwin,
    label: str,
    at: datetime,
) -> ExpectationResult:
    """Judge a windowed allow/block at the next moment the window is open.

    The measurement also says whether the window is open at the twin's moment and, for a block,
    what the flows meet outside the window (other rules may still block them there).
    """
    inside = window.next_inside(twin.at)
    opened = inside == twin.at
    result = _flow_check(index, flows, twin.at_time(inside), open_=e.action is AccessAction.ALLOW,
                         label=f"{e.action.value} {label} during {window}", at=at)
    state = "window open now" if opened else f"window closed now, checked at {inside:%a %H:%M %Z}"
    text = f"{result.measurement} ({state})"
    if e.action is AccessAction.BLOCK:
        outside = twin.at_time(window.next_outside(twin.at))
        passing = sum(
            outside.reachability(p.src_device, p.dst_address, p.protocol, p.dst_port,
                                 p.src_address).reachable
            for p in flows
        )
        text += f"; outside the window {passing}/{len(flows)} test flow(s) pass"
    return result.model_copy(update={"measurement": text})


def evaluate_expectation(
    expectation: Expectation,
    index: int,
    twin: DigitalTwin,
    *,
    traffic: TrafficMatrix | None = None,
    at: datetime | None = None,
) -> ExpectationResult:
    """Judge one expectation on ``twin``; :class:`ConfigError` for names the topology lacks."""
    at = at or datetime.now(UTC)
    topo = twin.topology
    e = expectation
    if isinstance(e, ReachabilityExpectation):
        src, dst = resolve_endpoint(e.source, topo), resolve_endpoint(e.destination, topo)
        label = f"{src.label} to {dst.label} ({'must' if e.reachable else 'must not'} reach)"
        return _flow_check(index, probes(src, dst), twin, open_=e.reachable, label=label, at=at)
    if isinstance(e, AccessExpectation):
        t = resolve_traffic(e.traffic, topo)
        flows = probes(t.source, t.destination, t.matches)
        open_ = e.action is AccessAction.ALLOW
        if e.window is None:
            return _flow_check(index, flows, twin, open_=open_, label=f"{e.action.value} "
                               f"{t.label}", at=at)
        return _windowed_access(index, e, e.window, flows, twin, t.label, at)
    if isinstance(e, WaypointExpectation):
        return _waypoint(index, e, twin, at)
    if isinstance(e, LoadBalancingExpectation):
        src, dst = resolve_endpoint(e.source, topo), resolve_endpoint(e.destination, topo)
        counts: list[tuple[int, Probe]] = []
        for p in probes(src, dst):
            delivered = [t for t in twin.paths(p.src_device, p.dst_address) if t.delivered]
            counts.append((len(delivered), p))
        if not counts:
            return _result(index, False, f"no test flow from {src.label} to {dst.label}", at)
        low, worst = min(counts, key=lambda c: c[0])
        return _result(index, low >= e.paths,
                       f"{low} delivered ECMP path(s) for {worst.label()} (fewest over "
                       f"{len(counts)} flow(s)); want at least {e.paths}",
                       at, float(low), float(e.paths))
    if isinstance(e, BandwidthExpectation):
        return _bandwidth(index, e, twin, traffic, at)
    if isinstance(e, UtilizationCeilingExpectation):
        return _utilization(index, e, twin, traffic, at)
    if isinstance(e, LatencyExpectation):
        src, dst = resolve_endpoint(e.source, topo), resolve_endpoint(e.destination, topo)
        worst_ms, worst_pair = -1.0, ""
        for s in src.devices:
            for d in dst.devices:
                if s == d or not topo.local_prefixes(d):
                    continue
                high = twin.path_latency_ms(s, d)[1]
                if high > worst_ms:
                    worst_ms, worst_pair = high, f"{s} -> {d}"
        if worst_ms < 0:
            return _result(index, False, f"no device pair from {src.label} to {dst.label}", at)
        return _result(index, worst_ms <= e.max_ms + _EPS,
                       f"largest one-way delay over ECMP paths {worst_ms:.3f} ms ({worst_pair}); "
                       f"want at most {e.max_ms} ms", at, worst_ms, e.max_ms)
    assert isinstance(e, ServiceLevelExpectation)
    return _result(index, True,
                   f"not measured on the twin: {e.metric} of workload {e.workload} is checked "
                   "by live telemetry", at, None, e.target)


def _waypoint(
    index: int, e: WaypointExpectation, twin: DigitalTwin, at: datetime
) -> ExpectationResult:
    topo = twin.topology
    unknown = [w for w in e.via if w not in topo.graph]
    if unknown:
        raise ConfigError(f"waypoint(s) {unknown} are not devices of topology {topo.name!r}")
    src, dst = resolve_endpoint(e.source, topo), resolve_endpoint(e.destination, topo)
    total = good = 0
    first_bad = ""
    for p in probes(src, dst):
        for trace in twin.paths(p.src_device, p.dst_address):
            total += 1
            if trace.delivered and _contains_in_order(trace.devices, e.via):
                good += 1
            elif not first_bad:
                how = "delivered" if trace.delivered else f"not delivered ({trace.drop})"
                first_bad = f"{'-'.join(trace.devices)} {how}"
    if total == 0:
        return _result(index, False, f"no path from {src.label} to {dst.label}", at)
    words = f"{good}/{total} paths from {src.label} to {dst.label} cross {'-'.join(e.via)}"
    if first_bad:
        words = f"{words}; first failing: {first_bad}"
    return _result(index, good == total, words, at, good / total, 1.0)


def _bandwidth(
    index: int,
    e: BandwidthExpectation,
    twin: DigitalTwin,
    traffic: TrafficMatrix | None,
    at: datetime,
) -> ExpectationResult:
    topo = twin.topology
    t = resolve_traffic(e.traffic, topo)
    flows = probes(t.source, t.destination, t.matches)
    if not flows:
        return _result(index, False, f"no test flow for {t.label}", at)
    traces = [(p, tr) for p in flows for tr in twin.paths(p.src_device, p.dst_address)]
    if e.mode is BandwidthMode.CAP:
        return _cap(index, e, t, flows, twin, at)
    report = _loads(twin, traffic)
    headroom = math.inf
    where = ""
    reserved_links = 0
    for probe, tr in traces:
        if not tr.delivered:
            headroom, where = 0.0, f"path {'-'.join(tr.devices)} is not delivered"
            break
        for dev, itf, direction, r in path_policers(topo, twin.configs, tr.devices):
            if r < headroom:
                headroom, where = r, f"policer {dev} {itf} {direction}"
        for u, v in path_links(tr.devices):
            lk = report.link(u, v)
            free = lk.capacity_mbps - lk.load_mbps
            cls = twin.egress_class(u, v, probe.src_device, probe.dst_address,
                                    protocol=probe.protocol, dst_port=probe.dst_port,
                                    src_address=probe.src_address)
            if cls is not None and cls.assured_mbps > 0:
                reserved_links += 1
                free = max(free, min(cls.assured_mbps, lk.capacity_mbps))
            if free < headroom:
                headroom, where = free, f"link {u}->{v}"
    basis = "under the given traffic" if traffic is not None else "with no other traffic"
    if reserved_links:
        basis += f", {reserved_links} link direction(s) reserved"
    return _result(index, headroom >= e.rate_mbps - _EPS,
                   f"smallest headroom on the paths of {t.label} {basis}: {headroom:g} Mbit/s "
                   f"({where}); want at least {e.rate_mbps:g}", at, headroom, e.rate_mbps)


_CAP_PROBE_FACTOR = 4.0


def _cap(
    index: int,
    e: BandwidthExpectation,
    t: ResolvedTraffic,
    flows: tuple[Probe, ...],
    twin: DigitalTwin,
    at: datetime,
) -> ExpectationResult:
    """Offer every test flow at four times the cap at once; what each edge delivers must fit.

    The cap holds per device at the edge it is placed on: the source's devices when the source
    is a place of the network, else the destination's.
    """
    offered = e.rate_mbps * _CAP_PROBE_FACTOR
    demands = tuple(
        Demand(p.src_device, p.dst_device, offered, protocol=p.protocol, dst_port=p.dst_port,
               src_address=p.src_address, dst_address=p.dst_address)
        for p in flows
    )
    report = twin.evaluate(TrafficMatrix(demands))
    by_edge: dict[str, float] = {}
    for p, outcome in zip(flows, report.demands, strict=True):
        edge = p.src_device if t.source.attached else p.dst_device
        by_edge[edge] = by_edge.get(edge, 0.0) + outcome.delivered_mbps
    edge, worst = max(by_edge.items(), key=lambda kv: kv[1])
    side = "source" if t.source.attached else "destination"
    return _result(
        index, worst <= e.rate_mbps * (1 + 1e-6) + _EPS,
        f"offered {offered:g} Mbit/s on each of {len(flows)} test flow(s) of {t.label}: at most "
        f"{worst:.4g} Mbit/s delivered per {side} device ({edge}); want at most "
        f"{e.rate_mbps:g}", at, worst, e.rate_mbps)


def scoped_links(
    e: UtilizationCeilingExpectation, twin: DigitalTwin
) -> list[tuple[str, str]] | None:
    """Link directions the ceiling applies to now (``None``: every link)."""
    topo = twin.topology
    if e.source is not None and e.destination is not None:
        src, dst = resolve_endpoint(e.source, topo), resolve_endpoint(e.destination, topo)
        links: dict[tuple[str, str], None] = {}
        for p in probes(src, dst):
            for tr in twin.paths(p.src_device, p.dst_address):
                links.update(dict.fromkeys(path_links(tr.devices)))
        return sorted(links)
    if e.region:
        region = set(resolve_region(e.region, topo))
        out: list[tuple[str, str]] = []
        for u, v in topo.graph.edges:
            if u in region or v in region:
                out.extend([(u, v), (v, u)])
        return sorted(out)
    return None


def _utilization(
    index: int,
    e: UtilizationCeilingExpectation,
    twin: DigitalTwin,
    traffic: TrafficMatrix | None,
    at: datetime,
) -> ExpectationResult:
    report = _loads(twin, traffic)
    scope = scoped_links(e, twin)
    keys = list(report.links) if scope is None else scope
    if not keys:
        return _result(index, True, "no link in scope", at, 0.0, e.max_utilization)
    worst = max(keys, key=lambda k: (report.links[k].utilization, k))
    util = report.links[worst].utilization
    basis = "" if traffic is not None else " (no traffic matrix given: zero load)"
    return _result(index, util <= e.max_utilization + _EPS,
                   f"highest utilization {util:.1%} on {worst[0]}->{worst[1]} over "
                   f"{len(keys)} link direction(s){basis}; ceiling {e.max_utilization:.0%}",
                   at, util, e.max_utilization)


def verify_on_twin(
    intent: Intent,
    topology: Topology,
    configs_after: Mapping[str, DeviceConfig],
    *,
    traffic: TrafficMatrix | None = None,
    active: Sequence[Intent] = (),
) -> tuple[FulfilmentReport, list[Verdict]]:
    """Check ``intent`` and every ``active`` intent on the twin built from ``configs_after``.

    Returns the intent's fulfilment report and one twin verdict per expectation, the intent's
    first, then the active intents' (an active intent with the same id is skipped).
    """
    at = datetime.now(UTC)
    twin = DigitalTwin(topology, configs_after)
    results: list[ExpectationResult] = []
    verdicts: list[Verdict] = []
    others = [a for a in active if a.id != intent.id]
    for owner in (intent, *others):
        for i, expectation in enumerate(owner.expectations):
            r = evaluate_expectation(expectation, i, twin, traffic=traffic, at=at)
            if owner is intent:
                results.append(r)
            role = "" if owner is intent else "active "
            verdicts.append(Verdict(
                passed=r.holds,
                source=VerdictSource.TWIN,
                rule=f"{role}intent {owner.id} expectation #{i} ({expectation.kind})",
                evidence=r.measurement,
            ))
    return FulfilmentReport(results=tuple(results), at=at), verdicts
