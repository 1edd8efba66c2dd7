import math

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netgpt.device_config import (
    Acl,
    AclAction,
    AclRule,
    DeviceConfig,
    InterfaceConfig,
    IPProtocol,
    PortRange,
    RateLimit,
    StaticRoute,
)
from netgpt.errors import ConfigError
from netgpt.sim_networks.topology import Topology, _finish, build_topology
from netgpt.sim_networks.twin import (
    Demand,
    DigitalTwin,
    Direction,
    DropCause,
    DropReason,
    LoadReport,
    TrafficMatrix,
    benchmark_graph,
)

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------------
# helpers


def make_topology(edges, name="test", **node_prefixes) -> Topology:
    """Topology from (u, v) or (u, v, attrs) edges; 1G links, cost 10, 1 ms unless given."""
    g = nx.Graph()
    for edge in edges:
        u, v, *rest = edge
        attrs = {"capacity_mbps": 1000.0, "delay_ms": 1.0, "igp_cost": 10}
        if rest:
            attrs.update(rest[0])
        g.add_edge(u, v, **attrs)
    for node, prefixes in node_prefixes.items():
        g.nodes[node]["prefixes"] = tuple(prefixes)
    return _finish(name, g)


def square() -> Topology:
    # a=10.0.0.0/24, b=10.0.1.0/24, c=10.0.2.0/24, d=10.0.3.0/24
    return make_topology([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], "square")


def set_itf(cfg: DeviceConfig, name: str, **changes) -> DeviceConfig:
    itf = cfg.interface(name)
    return cfg.with_interface(InterfaceConfig(**{**itf.model_dump(), **changes}))


def with_acl(cfg: DeviceConfig, acl: Acl, interface: str, direction: str) -> DeviceConfig:
    key = "acl_ingress" if direction == "ingress" else "acl_egress"
    itf = cfg.interface(interface)
    new = InterfaceConfig(**{**itf.model_dump(), key: (*getattr(itf, key), acl.name)})
    return DeviceConfig(
        hostname=cfg.hostname,
        interfaces=tuple(new if i.name == interface else i for i in cfg.interfaces),
        acls=(*cfg.acls, acl),
        static_routes=cfg.static_routes,
    )


def with_route(cfg: DeviceConfig, route: StaticRoute) -> DeviceConfig:
    return DeviceConfig(hostname=cfg.hostname, interfaces=cfg.interfaces, acls=cfg.acls,
                        static_routes=(*cfg.static_routes, route))


def itf_to(topo: Topology, u: str, v: str) -> str:
    return topo.interface_to(u, v)


def peer_address(topo: Topology, u: str, v: str) -> str:
    """The address of v on the u-v link."""
    return topo.graph.edges[u, v]["ports"][v][1].split("/")[0]


def loads(report: LoadReport) -> dict[tuple[str, str], float]:
    return {k: round(v.load_mbps, 9) for k, v in report.links.items()}


def check_counters(report: LoadReport) -> None:
    """What u sends on u->v equals what v receives; loads are never negative."""
    for (u, v), link in report.links.items():
        assert link.load_mbps >= 0
        assert report.interface(u, link.interface).egress_mbps == link.load_mbps
        assert report.interface(v, link.neighbour_interface).ingress_mbps == link.load_mbps
        if not link.up:
            assert link.load_mbps == 0


def check_conservation(report: LoadReport, topo: Topology, tol: float = 1e-6) -> None:
    for o in report.demands:
        assert o.delivered_mbps >= -tol
        assert o.delivered_mbps + o.dropped_mbps == pytest.approx(o.demand.rate_mbps, abs=tol)
    for device in topo.devices:
        itfs = [i for i, _ in topo.interfaces(device)]
        inflow = sum(report.interface(device, i).ingress_mbps for i in itfs)
        outflow = sum(report.interface(device, i).egress_mbps for i in itfs)
        dropped = sum(d.rate_mbps for o in report.demands for d in o.drops
                      if d.cause.device == device
                      and d.cause.reason is not DropReason.INTERFACE_DOWN)
        assert inflow == pytest.approx(outflow + dropped, abs=tol)


# ------------------------------------------------------------------------------------------
# routing and load


@pytest.mark.parametrize("method", ["auto", "exact"])
def test_ecmp_splits_equally_on_a_square(method):
    topo = square()
    report = DigitalTwin(topo).evaluate(TrafficMatrix((Demand("a", "d", 100.0),)), method=method)
    assert report.link("a", "b").load_mbps == pytest.approx(50.0)
    assert report.link("a", "c").load_mbps == pytest.approx(50.0)
    assert report.link("b", "d").load_mbps == pytest.approx(50.0)
    assert report.link("c", "d").load_mbps == pytest.approx(50.0)
    assert report.link("d", "b").load_mbps == 0
    assert report.interface("a", "eth0").ingress_mbps == 100.0
    assert report.interface("d", "eth0").egress_mbps == pytest.approx(100.0)
    assert report.demands[0].delivered_mbps == pytest.approx(100.0)
    assert report.demands[0].drops == ()
    assert report.link("a", "b").utilization == pytest.approx(0.05)
    check_counters(report)
    check_conservation(report, topo)


def test_ecmp_split_is_per_hop_not_per_path():
    # a has two equal next hops; b then has two of its own: b's half splits again
    topo = make_topology([("a", "b"), ("a", "c"), ("b", "d"), ("b", "e"), ("c", "f"),
                          ("d", "z"), ("e", "z"), ("f", "z")])
    twin = DigitalTwin(topo)
    report = twin.evaluate(TrafficMatrix((Demand("a", "z", 80.0),)))
    assert report.link("a", "b").load_mbps == pytest.approx(40.0)
    assert report.link("b", "d").load_mbps == pytest.approx(20.0)
    assert report.link("b", "e").load_mbps == pytest.approx(20.0)
    assert report.link("f", "z").load_mbps == pytest.approx(40.0)
    paths = twin.paths("a", twin.default_address("z"))
    assert sorted((p.devices, p.fraction) for p in paths) == [
        (("a", "b", "d", "z"), 0.25), (("a", "b", "e", "z"), 0.25), (("a", "c", "f", "z"), 0.5)]
    assert all(p.delivered and p.drop is None for p in paths)


def test_link_down_moves_the_load():
    topo = square()
    twin = DigitalTwin(topo)
    cfg = set_itf(twin.config("a"), itf_to(topo, "a", "b"), enabled=False)
    what_if = twin.with_configs({"a": cfg})
    report = what_if.evaluate(TrafficMatrix((Demand("a", "d", 100.0), Demand("b", "a", 10.0))))
    assert report.link("a", "c").load_mbps == pytest.approx(100.0)
    assert report.link("a", "b").load_mbps == 0
    assert not report.link("a", "b").up and not report.link("b", "a").up
    # b reaches a the long way round now
    assert report.link("b", "d").load_mbps == pytest.approx(10.0)
    assert report.link("c", "a").load_mbps == pytest.approx(10.0)
    assert report.delivered_mbps == pytest.approx(110.0)
    check_counters(report)
    check_conservation(report, topo)


def test_igp_cost_change_moves_the_load_one_way_only():
    topo = square()
    twin = DigitalTwin(topo)
    cfg = set_itf(twin.config("a"), itf_to(topo, "a", "b"), igp_cost=5)
    report = twin.with_configs({"a": cfg}).evaluate(
        TrafficMatrix((Demand("a", "d", 100.0), Demand("d", "a", 100.0))))
    assert report.link("a", "b").load_mbps == pytest.approx(100.0)
    assert report.link("a", "c").load_mbps == 0
    # the cost is on a's interface only: d -> a still splits
    assert report.link("d", "b").load_mbps == pytest.approx(50.0)
    assert report.link("d", "c").load_mbps == pytest.approx(50.0)


def test_topology_cost_is_the_fallback_when_interface_cost_is_unset():
    topo = make_topology([("a", "b", {"igp_cost": 30}), ("a", "c"), ("b", "d"), ("c", "d")])
    twin = DigitalTwin(topo)
    cfg = twin.config("a")
    cleared = cfg.with_interface(
        InterfaceConfig(**{**cfg.interface(itf_to(topo, "a", "b")).model_dump(), "igp_cost": None}))
    report = twin.with_configs({"a": cleared}).evaluate(TrafficMatrix((Demand("a", "d", 10.0),)))
    assert report.link("a", "c").load_mbps == pytest.approx(10.0)


def test_static_route_overrides_the_igp():
    topo = square()
    twin = DigitalTwin(topo)
    route = StaticRoute(prefix="10.0.3.0/24", next_hop_address=peer_address(topo, "a", "c"))
    report = twin.with_configs({"a": with_route(twin.config("a"), route)}).evaluate(
        TrafficMatrix((Demand("a", "d", 100.0),)))
    assert report.link("a", "c").load_mbps == pytest.approx(100.0)
    assert report.link("a", "b").load_mbps == 0
    assert report.demands[0].delivered_mbps == pytest.approx(100.0)


def test_longer_static_prefix_wins_and_shorter_one_loses():
    topo = square()
    twin = DigitalTwin(topo)
    via_c = peer_address(topo, "a", "c")
    short = StaticRoute(prefix="10.0.0.0/16", next_hop_address=via_c)
    report = twin.with_configs({"a": with_route(twin.config("a"), short)}).evaluate(
        TrafficMatrix((Demand("a", "d", 100.0),)))
    assert report.link("a", "b").load_mbps == pytest.approx(50.0)  # the /24 IGP route wins
    host = StaticRoute(prefix="10.0.3.7/32", next_hop_address=via_c)
    report = twin.with_configs({"a": with_route(twin.config("a"), host)}).evaluate(
        TrafficMatrix((Demand("a", "d", 100.0, dst_address="10.0.3.7"),
                       Demand("a", "d", 100.0))))
    assert report.link("a", "c").load_mbps == pytest.approx(150.0)
    assert report.link("a", "b").load_mbps == pytest.approx(50.0)


def test_static_route_by_outgoing_interface_and_inactive_routes():
    topo = square()
    twin = DigitalTwin(topo)
    out_c = StaticRoute(prefix="10.0.3.0/24", outgoing_interface=itf_to(topo, "a", "c"))
    report = twin.with_configs({"a": with_route(twin.config("a"), out_c)}).evaluate(
        TrafficMatrix((Demand("a", "d", 10.0),)))
    assert report.link("a", "c").load_mbps == pytest.approx(10.0)
    # next hop not on any connected /31: inactive, the IGP keeps routing
    stray = StaticRoute(prefix="10.0.3.0/24", next_hop_address="192.0.2.1")
    report = twin.with_configs({"a": with_route(twin.config("a"), stray)}).evaluate(
        TrafficMatrix((Demand("a", "d", 10.0),)))
    assert report.link("a", "b").load_mbps == pytest.approx(5.0)
    # next hop behind a link that is down: inactive too
    cfg = with_route(set_itf(twin.config("a"), itf_to(topo, "a", "c"), enabled=False), out_c)
    report = twin.with_configs({"a": cfg}).evaluate(TrafficMatrix((Demand("a", "d", 10.0),)))
    assert report.link("a", "b").load_mbps == pytest.approx(10.0)


def test_static_route_to_eth0_delivers_locally():
    topo = square()
    twin = DigitalTwin(topo)
    route = StaticRoute(prefix="192.168.5.0/24", outgoing_interface="eth0")
    what_if = twin.with_configs({"b": with_route(twin.config("b"), route)})
    report = what_if.evaluate(TrafficMatrix((Demand("b", "d", 10.0, dst_address="192.168.5.9"),)))
    assert report.demands[0].delivered_mbps == pytest.approx(10.0)
    assert report.interface("b", "eth0").egress_mbps == pytest.approx(10.0)
    # from elsewhere nothing routes to it: no route at the source
    report = what_if.evaluate(TrafficMatrix((Demand("a", "d", 10.0, dst_address="192.168.5.9"),)))
    (drop,) = report.demands[0].drops
    assert drop.cause.reason is DropReason.NO_ROUTE and drop.cause.device == "a"
    assert "192.168.5.9" in drop.cause.detail


def test_blackhole_route_drops_and_says_so():
    topo = square()
    twin = DigitalTwin(topo)
    route = StaticRoute(prefix="10.0.3.0/24", discard=True)
    report = twin.with_configs({"b": with_route(twin.config("b"), route)}).evaluate(
        TrafficMatrix((Demand("a", "d", 100.0),)))
    outcome = report.demands[0]
    assert outcome.delivered_mbps == pytest.approx(50.0)
    (drop,) = outcome.drops
    assert drop.rate_mbps == pytest.approx(50.0)
    assert drop.cause.reason is DropReason.BLACKHOLE and drop.cause.device == "b"
    assert "blackhole route" in str(drop.cause)
    assert report.link("b", "d").load_mbps == 0
    assert report.dropped_at("b") == pytest.approx(50.0)
    check_counters(report)
    check_conservation(report, topo)


def test_routing_loop_is_detected_and_reported():
    topo = build_topology("linear,3")  # r1 - r2 - r3
    twin = DigitalTwin(topo)
    back = StaticRoute(prefix="10.0.2.0/24", next_hop_address=peer_address(topo, "r2", "r1"))
    what_if = twin.with_configs({"r2": with_route(twin.config("r2"), back)})
    for method in ("auto", "exact"):
        report = what_if.evaluate(TrafficMatrix((Demand("r1", "r3", 10.0),)), method=method)
        (drop,) = report.demands[0].drops
        assert drop.cause.reason is DropReason.LOOP
        assert drop.rate_mbps == pytest.approx(10.0)
        assert "r1 -> r2 -> r1" in drop.cause.detail
        assert report.demands[0].delivered_mbps == 0
        check_counters(report)
        check_conservation(report, topo)
    reach = what_if.reachability("r1", "10.0.2.1")
    assert not reach.reachable
    assert reach.drops[0].reason is DropReason.LOOP
    assert "routing loop" in str(reach)
    # r3 -> r1 traffic is not affected
    assert what_if.reachability("r3", "10.0.0.1").reachable


def test_loop_entered_midway_counts_the_links_before_it():
    topo = build_topology("linear,4")  # r1 - r2 - r3 - r4
    twin = DigitalTwin(topo)
    back = StaticRoute(prefix="10.0.3.0/24", next_hop_address=peer_address(topo, "r3", "r2"))
    report = twin.with_configs({"r3": with_route(twin.config("r3"), back)}).evaluate(
        TrafficMatrix((Demand("r1", "r4", 10.0),)))
    (drop,) = report.demands[0].drops
    assert drop.cause.device == "r2" and drop.cause.reason is DropReason.LOOP
    assert report.link("r1", "r2").load_mbps == pytest.approx(10.0)
    assert report.link("r3", "r4").load_mbps == 0
    check_conservation(report, topo)


def test_anycast_prefix_goes_to_the_nearest_owner():
    topo = make_topology([("a", "b"), ("b", "c"), ("c", "d")],
                         a=("10.9.0.0/16",), b=("10.1.0.0/16",), c=("10.2.0.0/16",),
                         d=("10.9.0.0/16",))
    report = DigitalTwin(topo).evaluate(TrafficMatrix((
        Demand("b", "a", 10.0, dst_address="10.9.0.5"),
        Demand("c", "d", 20.0, dst_address="10.9.0.5"),
    )))
    assert report.interface("a", "eth0").egress_mbps == pytest.approx(10.0)
    assert report.interface("d", "eth0").egress_mbps == pytest.approx(20.0)
    assert report.link("b", "c").load_mbps == 0


def test_demand_to_itself_is_delivered_locally():
    topo = square()
    report = DigitalTwin(topo).evaluate(TrafficMatrix((Demand("a", "a", 7.0),)))
    assert report.demands[0].delivered_mbps == pytest.approx(7.0)
    assert report.interface("a", "eth0").ingress_mbps == pytest.approx(7.0)
    assert report.interface("a", "eth0").egress_mbps == pytest.approx(7.0)
    assert all(lk.load_mbps == 0 for lk in report.links.values())


def test_access_interface_down_at_either_end():
    topo = square()
    twin = DigitalTwin(topo)
    at_dst = twin.with_configs({"d": set_itf(twin.config("d"), "eth0", enabled=False)})
    report = at_dst.evaluate(TrafficMatrix((Demand("a", "d", 10.0),)))
    assert report.demands[0].drops[0].cause.reason is DropReason.NO_ROUTE
    at_src = twin.with_configs({"a": set_itf(twin.config("a"), "eth0", enabled=False)})
    report = at_src.evaluate(TrafficMatrix((Demand("a", "d", 10.0),)))
    (drop,) = report.demands[0].drops
    assert drop.cause.reason is DropReason.INTERFACE_DOWN
    assert (drop.cause.device, drop.cause.interface) == ("a", "eth0")
    assert report.interface("a", "eth0").ingress_mbps == 0
    assert not at_src.reachability("a", "10.0.3.1").reachable


def test_partitioned_network_has_no_route():
    topo = build_topology("linear,3")
    twin = DigitalTwin(topo)
    cut = twin.with_configs({"r2": set_itf(twin.config("r2"), "eth2", enabled=False)})
    report = cut.evaluate(TrafficMatrix((Demand("r1", "r3", 5.0), Demand("r1", "r2", 5.0))))
    assert report.demands[0].drops[0].cause.reason is DropReason.NO_ROUTE
    assert report.demands[0].drops[0].cause.device == "r1"
    assert report.demands[1].delivered_mbps == pytest.approx(5.0)
    assert cut.path_latency_ms("r1", "r3") == (math.inf, math.inf)


def test_unconfigured_interface_counts_as_down():
    topo = square()
    twin = DigitalTwin(topo)
    cfg = twin.config("a")
    b_side = itf_to(topo, "a", "b")
    stripped = DeviceConfig(hostname="a",
                            interfaces=tuple(i for i in cfg.interfaces if i.name != b_side))
    report = twin.with_configs({"a": stripped}).evaluate(TrafficMatrix((Demand("a", "d", 8.0),)))
    assert not report.link("a", "b").up
    assert report.link("a", "c").load_mbps == pytest.approx(8.0)


# ------------------------------------------------------------------------------------------
# ACLs and rate limits


def deny(name: str, **match) -> AclRule:
    return AclRule(name=name, action=AclAction.DROP, **match)


def test_acl_drop_names_device_interface_acl_and_rule():
    topo = square()
    twin = DigitalTwin(topo)
    acl = Acl(name="PROTECT-D", rules=(
        AclRule(name="allow-c", action=AclAction.ACCEPT, destination_prefix="10.0.2.0/24"),
        deny("no-d", destination_prefix="10.0.3.0/24"),
    ))
    b_from_a = itf_to(topo, "b", "a")
    what_if = twin.with_configs({"b": with_acl(twin.config("b"), acl, b_from_a, "ingress")})
    for method in ("auto", "exact"):
        report = what_if.evaluate(
            TrafficMatrix((Demand("a", "d", 100.0), Demand("a", "c", 10.0))), method=method)
        outcome = report.demands[0]
        assert outcome.delivered_mbps == pytest.approx(50.0)
        (drop,) = outcome.drops
        assert drop.cause == DropCause(DropReason.ACL, "b", b_from_a, Direction.INGRESS,
                                       "PROTECT-D", "no-d")
        assert str(drop.cause) == f"dropped by ACL PROTECT-D rule no-d on b {b_from_a} ingress"
        # ingress drops happen after the wire: the link still carries the traffic
        assert report.link("a", "b").load_mbps == pytest.approx(50.0)
        assert report.link("b", "d").load_mbps == 0
        assert report.demands[1].delivered_mbps == pytest.approx(10.0)
        assert report.drops_by_cause() == {drop.cause: pytest.approx(50.0)}
        check_counters(report)
        check_conservation(report, topo)


def test_egress_acl_drops_before_the_wire():
    topo = square()
    twin = DigitalTwin(topo)
    acl = Acl(name="OUT", rules=(deny("all"),))
    a_to_c = itf_to(topo, "a", "c")
    report = twin.with_configs({"a": with_acl(twin.config("a"), acl, a_to_c, "egress")}).evaluate(
        TrafficMatrix((Demand("a", "d", 100.0),)))
    assert report.link("a", "c").load_mbps == 0
    assert report.interface("a", a_to_c).egress_mbps == 0
    (drop,) = report.demands[0].drops
    assert (drop.cause.device, drop.cause.direction) == ("a", Direction.EGRESS)
    check_conservation(report, topo)


def test_access_acls_at_source_and_destination():
    topo = square()
    twin = DigitalTwin(topo)
    guests_out = Acl(name="GUESTS", rules=(deny("no-b", destination_prefix="10.0.1.0/24"),))
    servers_in = Acl(name="SERVERS", rules=(
        deny("no-ssh", protocol=IPProtocol.TCP, destination_ports=PortRange(lower=22, upper=22)),))
    what_if = twin.with_configs({
        "a": with_acl(twin.config("a"), guests_out, "eth0", "ingress"),
        "d": with_acl(twin.config("d"), servers_in, "eth0", "egress"),
    })
    report = what_if.evaluate(TrafficMatrix((
        Demand("a", "b", 5.0),
        Demand("a", "d", 6.0, protocol="tcp", dst_port=22),
        Demand("a", "d", 7.0, protocol="tcp", dst_port=443),
        Demand("c", "b", 8.0),
    )))
    first, second, third, fourth = report.demands
    assert first.drops[0].cause.acl == "GUESTS" and first.drops[0].cause.device == "a"
    assert report.interface("a", "eth0").ingress_mbps == pytest.approx(18.0)  # counted, then cut
    assert second.drops[0].cause.rule == "no-ssh" and second.drops[0].cause.device == "d"
    assert third.delivered_mbps == pytest.approx(7.0)
    assert fourth.delivered_mbps == pytest.approx(8.0)
    assert report.interface("d", "eth0").egress_mbps == pytest.approx(7.0)
    check_counters(report)
    check_conservation(report, topo)


def test_reachability_with_port_based_acl():
    topo = build_topology("abilene")
    twin = DigitalTwin(topo)
    ny = "NYCMng"
    acl = Acl(name="NO-TELNET", rules=(
        deny("deny-telnet", protocol=IPProtocol.TCP,
             destination_ports=PortRange(lower=23, upper=23)),
        AclRule(name="permit-rest", action=AclAction.ACCEPT),
    ))
    # filter everything entering New York from its neighbours
    facing = {itf_to(topo, ny, nbr) for nbr in topo.graph.neighbors(ny)}
    cfg = DeviceConfig(
        hostname=ny,
        interfaces=tuple(
            InterfaceConfig(**{**i.model_dump(), "acl_ingress": ("NO-TELNET",)})
            if i.name in facing else i
            for i in twin.config(ny).interfaces
        ),
        acls=(acl,),
    )
    what_if = twin.with_configs({ny: cfg})
    dst = what_if.default_address(ny)
    telnet = what_if.reachability("LOSAng", dst, protocol="tcp", dst_port=23)
    assert not telnet.reachable
    assert telnet.delivered_fraction == 0
    assert {(c.device, c.acl, c.rule, c.direction) for c in telnet.drops} == {
        (ny, "NO-TELNET", "deny-telnet", Direction.INGRESS)}
    assert all(not p.delivered and p.devices[-1] == ny for p in telnet.paths)
    assert "deny-telnet" in str(telnet)
    ssh = what_if.reachability("LOSAng", dst, protocol="tcp", dst_port=22)
    assert ssh.reachable and ssh.delivered_fraction == pytest.approx(1.0)
    assert sum(p.fraction for p in ssh.paths) == pytest.approx(1.0)
    assert all(p.devices[0] == "LOSAng" and p.devices[-1] == ny for p in ssh.paths)
    assert str(ssh).endswith("reachable")
    # an aggregate without a port does not match a port rule
    assert what_if.reachability("LOSAng", dst).reachable
    # the original twin lets telnet through
    assert twin.reachability("LOSAng", dst, protocol="tcp", dst_port=23).reachable


def test_reachability_partial_when_one_ecmp_branch_is_filtered():
    topo = square()
    twin = DigitalTwin(topo)
    acl = Acl(name="F", rules=(deny("udp", protocol=IPProtocol.UDP),))
    what_if = twin.with_configs({"c": with_acl(twin.config("c"), acl, itf_to(topo, "c", "d"),
                                               "egress")})
    reach = what_if.reachability("a", "10.0.3.1", protocol="udp", dst_port=53)
    assert reach.reachable and reach.delivered_fraction == pytest.approx(0.5)
    delivered = [p for p in reach.paths if p.delivered]
    dropped = [p for p in reach.paths if not p.delivered]
    assert [p.devices for p in delivered] == [("a", "b", "d")]
    assert [p.devices for p in dropped] == [("a", "c")]
    assert dropped[0].drop is not None and dropped[0].drop.rule == "udp"
    assert "partly reachable" in str(reach)
    assert reach.src_address == "10.0.0.1"


def test_multiple_acls_in_one_direction_read_as_one_list():
    topo = square()
    twin = DigitalTwin(topo)
    first = Acl(name="FIRST", rules=(AclRule(name="ok-tcp", action=AclAction.ACCEPT,
                                              protocol=IPProtocol.TCP),))
    second = Acl(name="SECOND", rules=(deny("all"),))
    cfg = with_acl(with_acl(twin.config("d"), first, "eth0", "egress"), second, "eth0", "egress")
    what_if = twin.with_configs({"d": cfg})
    assert what_if.reachability("a", "10.0.3.1", protocol="tcp", dst_port=80).reachable
    udp = what_if.reachability("a", "10.0.3.1", protocol="udp", dst_port=80)
    assert not udp.reachable and udp.drops[0].acl == "SECOND"


def test_reject_counts_as_a_drop_and_source_prefix_matches():
    topo = square()
    twin = DigitalTwin(topo)
    acl = Acl(name="R", rules=(AclRule(name="from-a", action=AclAction.REJECT,
                                        source_prefix="10.0.0.0/24"),))
    what_if = twin.with_configs({"d": with_acl(twin.config("d"), acl, "eth0", "egress")})
    assert not what_if.reachability("a", "10.0.3.1").reachable
    assert what_if.reachability("b", "10.0.3.1").reachable
    # a spoofed source address is matched as given
    assert what_if.reachability("a", "10.0.3.1", src_address="10.0.1.1").reachable


@pytest.mark.parametrize("method", ["auto", "exact"])
def test_rate_limit_caps_the_load_proportionally(method):
    topo = build_topology("linear,3")
    twin = DigitalTwin(topo)
    cfg = set_itf(twin.config("r1"), "eth1", rate_limit=RateLimit(egress_mbps=100.0))
    report = twin.with_configs({"r1": cfg}).evaluate(
        TrafficMatrix((Demand("r1", "r3", 200.0), Demand("r1", "r3", 100.0),
                       Demand("r2", "r3", 50.0))), method=method)
    assert report.link("r1", "r2").load_mbps == pytest.approx(100.0)
    assert report.link("r2", "r3").load_mbps == pytest.approx(150.0)
    big, small, other = report.demands
    assert big.delivered_mbps == pytest.approx(200.0 / 3)
    assert small.delivered_mbps == pytest.approx(100.0 / 3)
    assert other.delivered_mbps == pytest.approx(50.0)
    cause = big.drops[0].cause
    assert cause.reason is DropReason.RATE_LIMIT
    assert (cause.device, cause.interface, cause.direction) == ("r1", "eth1", Direction.EGRESS)
    assert "100" in str(cause)
    check_counters(report)
    check_conservation(report, topo)


def test_chained_ingress_and_access_policers():
    topo = build_topology("linear,3")
    twin = DigitalTwin(topo)
    what_if = twin.with_configs({
        "r1": set_itf(twin.config("r1"), "eth0", rate_limit=RateLimit(ingress_mbps=150.0)),
        "r2": set_itf(twin.config("r2"), "eth1", rate_limit=RateLimit(ingress_mbps=90.0)),
        "r3": set_itf(twin.config("r3"), "eth0", rate_limit=RateLimit(egress_mbps=100.0)),
    })
    report = what_if.evaluate(TrafficMatrix((Demand("r1", "r3", 300.0),
                                             Demand("r2", "r3", 30.0))))
    first, second = report.demands
    assert report.link("r1", "r2").load_mbps == pytest.approx(150.0)  # counted before r2 polices
    assert report.link("r2", "r3").load_mbps == pytest.approx(120.0)
    assert first.delivered_mbps + second.delivered_mbps == pytest.approx(100.0)
    assert first.delivered_mbps == pytest.approx(90.0 * 100.0 / 120.0)
    reasons = {(d.cause.device, d.cause.direction) for d in first.drops}
    assert reasons == {("r1", Direction.INGRESS), ("r2", Direction.INGRESS),
                       ("r3", Direction.EGRESS)}
    assert report.interface("r3", "eth0").egress_mbps == pytest.approx(100.0)
    check_counters(report)
    check_conservation(report, topo)
    # policers do not change reachability
    assert what_if.reachability("r1", "10.0.2.1").delivered_fraction == 1.0


def test_demands_off_the_policed_path_stay_on_the_fast_path():
    topo = square()
    twin = DigitalTwin(topo)
    what_if = twin.with_configs(
        {"b": set_itf(twin.config("b"), itf_to(topo, "b", "d"), rate_limit=RateLimit(
            egress_mbps=10.0))})
    tm = TrafficMatrix((Demand("a", "d", 100.0), Demand("c", "d", 40.0), Demand("a", "b", 3.0)))
    auto, exact = what_if.evaluate(tm), what_if.evaluate(tm, method="exact")
    assert loads(auto) == pytest.approx(loads(exact))
    assert auto.link("b", "d").load_mbps == pytest.approx(10.0)
    assert auto.demands[1].delivered_mbps == pytest.approx(40.0)
    assert auto.demands[0].delivered_mbps == pytest.approx(60.0)


# ------------------------------------------------------------------------------------------
# what-if, latency, abilene, inputs


def test_what_if_does_not_mutate_the_original():
    topo = square()
    twin = DigitalTwin(topo)
    tm = TrafficMatrix((Demand("a", "d", 100.0),))
    before = loads(twin.evaluate(tm))
    original_a = twin.config("a")
    changed = twin.with_configs(
        {"a": set_itf(original_a, itf_to(topo, "a", "b"), enabled=False)})
    assert loads(changed.evaluate(tm)) != before
    assert loads(twin.evaluate(tm)) == before
    assert twin.config("a") is original_a
    assert changed.config("b") is twin.config("b")
    with pytest.raises(TypeError):
        twin.configs["a"] = original_a  # type: ignore[index]


def test_path_latency_min_and_max_over_ecmp():
    topo = make_topology([("a", "b", {"delay_ms": 1.0}), ("a", "c", {"delay_ms": 4.0}),
                          ("b", "d", {"delay_ms": 2.0}), ("c", "d", {"delay_ms": 3.0})])
    twin = DigitalTwin(topo)
    assert twin.path_latency_ms("a", "d") == pytest.approx((3.0, 7.0))
    assert twin.path_latency_ms("a", "a") == (0.0, 0.0)
    assert twin.path_latency_ms("a", "b") == pytest.approx((1.0, 1.0))
    paths = twin.paths("a", "10.0.3.1")
    assert sorted(p.delay_ms for p in paths) == pytest.approx([3.0, 7.0])


def test_abilene_evaluate_works_and_is_fast():
    topo = build_topology("abilene")
    twin = DigitalTwin(topo)
    devices = topo.devices
    tm = TrafficMatrix(tuple(Demand(a, b, 50.0) for a in devices for b in devices if a != b))
    report = twin.evaluate(tm)
    assert report.delivered_mbps == pytest.approx(tm.total_mbps)
    assert report.dropped_mbps == 0
    assert len(report.links) == 30
    assert len(report.interfaces) == 12 + 30
    assert 0 < report.max_utilization < 1
    busiest = report.busiest_link
    assert busiest is not None and busiest.utilization == report.max_utilization
    assert loads(report) == pytest.approx(loads(twin.evaluate(tm, method="exact")))
    check_counters(report)
    check_conservation(report, topo)
    low, high = twin.path_latency_ms("NYCMng", "LOSAng")
    assert 15 < low <= high < 60


def test_campus_access_devices_without_prefixes_need_an_address():
    topo = build_topology("campus")
    twin = DigitalTwin(topo)
    with pytest.raises(ConfigError, match=r"core1.*no local prefixes"):
        twin.evaluate(TrafficMatrix((Demand("acc1", "core1", 1.0),)))
    with pytest.raises(ConfigError, match="no local prefixes"):
        twin.default_address("core1")
    # traffic from a device without prefixes uses its first link address as source
    reach = twin.reachability("core1", "10.100.0.1")
    assert reach.reachable and reach.src_address.startswith("10.255.")
    report = twin.evaluate(TrafficMatrix((Demand("acc1", "acc8", 100.0),)))
    assert report.demands[0].delivered_mbps == pytest.approx(100.0)
    assert report.interface("acc8", "eth0").egress_mbps == pytest.approx(100.0)


def test_bad_inputs_raise_clear_errors():
    topo = square()
    twin = DigitalTwin(topo)
    with pytest.raises(ConfigError, match="unknown device 'zz'"):
        twin.evaluate(TrafficMatrix((Demand("a", "d", 1.0), Demand("a", "zz", 1.0))))
    with pytest.raises(ConfigError, match="unknown device 'nope'"):
        twin.reachability("nope", "10.0.0.1")
    with pytest.raises(ConfigError, match="rate_mbps"):
        Demand("a", "d", -1.0)
    with pytest.raises(ConfigError, match="rate_mbps"):
        Demand("a", "d", math.nan)
    with pytest.raises(ConfigError, match="protocol"):
        Demand("a", "d", 1.0, protocol="sctp")
    with pytest.raises(ConfigError, match="ports"):
        Demand("a", "d", 1.0, dst_port=80)
    with pytest.raises(ConfigError, match="dst_port"):
        Demand("a", "d", 1.0, protocol="tcp", dst_port=70000)
    with pytest.raises(ConfigError, match="dst_address"):
        Demand("a", "d", 1.0, dst_address="10.0.0.300")
    with pytest.raises(ConfigError, match="not a Demand"):
        TrafficMatrix(("a",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not in topology"):
        DigitalTwin(topo, {"ghost": DeviceConfig(hostname="ghost")})
    with pytest.raises(ConfigError, match="not in topology"):
        twin.with_configs({"ghost": DeviceConfig(hostname="ghost")})
    with pytest.raises(ConfigError, match="dst_address"):
        twin.reachability("a", "not-an-address")
    with pytest.raises(ConfigError, match="method"):
        twin.evaluate(TrafficMatrix(), method="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="TrafficMatrix"):
        twin.evaluate([Demand("a", "d", 1.0)])  # type: ignore[arg-type]


def test_demand_normalises_its_fields():
    d = Demand("a", "b", 5, protocol="TCP", dst_port=443, src_address="10.0.0.9")
    assert d.protocol is IPProtocol.TCP and d.rate_mbps == 5.0 and isinstance(d.rate_mbps, float)
    assert d.src_address == "10.0.0.9"
    tm = TrafficMatrix([d, Demand("b", "a", 1.0)])  # type: ignore[arg-type]
    assert isinstance(tm.demands, tuple) and len(tm) == 2 and tm.total_mbps == 6.0
    assert tm.scaled(2.0).total_mbps == 12.0
    with pytest.raises(ConfigError):
        tm.scaled(-1.0)


def test_empty_matrix_gives_an_idle_network():
    topo = square()
    report = DigitalTwin(topo).evaluate(TrafficMatrix())
    assert report.demands == () and report.max_utilization == 0
    assert all(i.ingress_mbps == 0 == i.egress_mbps for i in report.interfaces.values())


def test_benchmark_graph_shape():
    topo, tm = benchmark_graph(1000, 10_000, seed=1)
    assert len(topo.devices) == 1000 and len(tm) == 10_000
    assert all(d.src != d.dst for d in tm)
    assert nx.is_connected(topo.graph)
    twin = DigitalTwin(topo)
    report = twin.evaluate(tm)
    assert report.delivered_mbps == pytest.approx(tm.total_mbps)
    check_counters(report)
    again = benchmark_graph(1000, 10_000, seed=1)[1]
    assert again == tm
    with pytest.raises(ConfigError):
        benchmark_graph(3, 10)


def test_auto_matches_exact_on_a_random_benchmark_graph():
    topo, tm = benchmark_graph(60, 400, seed=7)
    twin = DigitalTwin(topo)
    assert loads(twin.evaluate(tm)) == pytest.approx(loads(twin.evaluate(tm, method="exact")))


# ------------------------------------------------------------------------------------------
# properties


@st.composite
def scenarios(draw):
    n = draw(st.integers(2, 6))
    names = [f"n{i}" for i in range(n)]
    edges = {tuple(sorted((names[i], names[draw(st.integers(0, i - 1))]))) for i in range(1, n)}
    for _ in range(draw(st.integers(0, 4))):
        u, v = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        if u != v:
            edges.add(tuple(sorted((u, v))))
    topo = make_topology([(u, v, {"igp_cost": draw(st.integers(1, 3)),
                                  "capacity_mbps": 100.0}) for u, v in sorted(edges)])
    twin = DigitalTwin(topo)
    configs = {d: twin.config(d) for d in names}
    links = list(topo.links())
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["down", "cost", "static", "acl", "acl", "limit", "eth0"]))
        link = draw(st.sampled_from(links))
        end = draw(st.booleans())
        dev, itf = (link.a, link.a_interface) if end else (link.b, link.b_interface)
        peer = link.b if end else link.a
        cfg = configs[dev]
        if kind == "down":
            cfg = set_itf(cfg, itf, enabled=False)
        elif kind == "cost":
            cfg = set_itf(cfg, itf, igp_cost=draw(st.integers(1, 5)))
        elif kind == "static":
            target = draw(st.sampled_from(names))
            prefix = topo.local_prefixes(target)[0]
            if prefix in {r.prefix for r in cfg.static_routes}:
                continue
            how = draw(st.sampled_from(["address", "interface", "discard"]))
            route = (StaticRoute(prefix=prefix, discard=True) if how == "discard" else
                     StaticRoute(prefix=prefix, outgoing_interface=itf) if how == "interface" else
                     StaticRoute(prefix=prefix, next_hop_address=peer_address(topo, dev, peer)))
            cfg = with_route(cfg, route)
        elif kind == "acl":
            name = f"acl{len(cfg.acls)}"
            rule = draw(st.sampled_from([
                deny("tcp80", protocol=IPProtocol.TCP,
                     destination_ports=PortRange(lower=80, upper=80)),
                deny("to-n0", destination_prefix=topo.local_prefixes("n0")[0]),
                deny("udp", protocol=IPProtocol.UDP),
                deny("all"),
                deny("from-n1", source_prefix=topo.local_prefixes("n1")[0]),
            ]))
            where = draw(st.sampled_from([itf, "eth0"]))
            cfg = with_acl(cfg, Acl(name=name, rules=(rule,)), where,
                           draw(st.sampled_from(["ingress", "egress"])))
        elif kind == "limit":
            where = draw(st.sampled_from([itf, "eth0"]))
            limit = float(draw(st.integers(5, 150)))
            rl = (RateLimit(ingress_mbps=limit) if draw(st.booleans())
                  else RateLimit(egress_mbps=limit))
            cfg = set_itf(cfg, where, rate_limit=rl)
        elif draw(st.integers(0, 3)) == 0:
            cfg = set_itf(cfg, "eth0", enabled=False)
        configs[dev] = cfg
    demands = draw(st.lists(st.builds(
        lambda s, d, r, p: Demand(s, d, float(r), protocol=p[0], dst_port=p[1]),
        st.sampled_from(names), st.sampled_from(names), st.integers(0, 120),
        st.sampled_from([("any", None), ("tcp", 80), ("tcp", 22), ("udp", 53)]),
    ), max_size=8))
    return topo, twin.with_configs(configs), TrafficMatrix(tuple(demands))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_flow_is_conserved_and_both_methods_agree(scenario):
    topo, twin, tm = scenario
    auto = twin.evaluate(tm)
    exact = twin.evaluate(tm, method="exact")
    for report in (auto, exact):
        check_counters(report)
        check_conservation(report, topo)
    assert loads(auto) == pytest.approx(loads(exact), abs=1e-6)
    for a, b in zip(auto.demands, exact.demands, strict=True):
        assert a.demand is b.demand
        assert a.delivered_mbps == pytest.approx(b.delivered_mbps, abs=1e-6)
    # egress policers on links hold their limit
    for (u, _v), link in auto.links.items():
        rl = twin.config(u).interface(link.interface).rate_limit
        if rl is not None and rl.egress_mbps is not None:
            assert link.load_mbps <= rl.egress_mbps * (1 + 1e-6) + 1e-9
    # without policers, reachability and evaluate agree on the delivered share
    policed = any(i.rate_limit is not None for c in twin.configs.values() for i in c.interfaces)
    for o in auto.demands:
        d = o.demand
        reach = twin.reachability(d.src, twin.default_address(d.dst), protocol=d.protocol,
                                  dst_port=d.dst_port)
        assert sum(p.fraction for p in reach.paths) == pytest.approx(1.0)
        assert reach.delivered_fraction == pytest.approx(
            sum(p.fraction for p in reach.paths if p.delivered))
        if d.rate_mbps > 0 and not policed:
            assert reach.delivered_fraction == pytest.approx(o.delivered_mbps / d.rate_mbps)
            assert reach.reachable == (o.delivered_mbps > 0)
