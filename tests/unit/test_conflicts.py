from datetime import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netgpt.device_config import IPProtocol, PortRange
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    AccessAction,
    AccessExpectation,
    AnyEndpoint,
    BandwidthExpectation,
    BandwidthMode,
    DeviceEndpoint,
    GroupEndpoint,
    Intent,
    LoadBalancingExpectation,
    PrefixEndpoint,
    ReachabilityExpectation,
    SiteEndpoint,
    TimeWindow,
    TrafficSelector,
    UtilizationCeilingExpectation,
    WaypointExpectation,
)
from netgpt.intents.plan import VerdictSource
from netgpt.policies.conflicts import find_conflicts
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix

pytestmark = pytest.mark.unit

CAMPUS = build_topology("campus")
ABILENE = build_topology("abilene")


def intent(id_: str, *expectations, text: str = "") -> Intent:
    return Intent(id=id_, text=text or id_, expectations=expectations)


def g(name: str) -> GroupEndpoint:
    return GroupEndpoint(name=name)


def access(action: str, src, dst, *, protocol=IPProtocol.ANY, ports=None, service=None,
           window=None) -> AccessExpectation:
    return AccessExpectation(
        action=AccessAction(action),
        traffic=TrafficSelector(source=src, destination=dst, protocol=protocol,
                                ports=None if ports is None else PortRange(lower=ports[0],
                                                                            upper=ports[1]),
                                service=service),
        window=window,
    )


def bw(mode: str, src, dst, rate: float, **kw) -> BandwidthExpectation:
    return BandwidthExpectation(mode=BandwidthMode(mode), rate_mbps=rate,
                                traffic=TrafficSelector(source=src, destination=dst, **kw))


def conflicts(new, *active, topology=CAMPUS, **kw):
    return find_conflicts(new, list(active), topology, **kw)


# ------------------------------------------------------------------------------------------
# allow vs block


def test_allow_vs_block_names_the_pair():
    block = intent("int-b", access("block", g("guests"), g("servers")), text="block guests")
    allow = intent("int-a", access("allow", g("guests"), g("servers"), service="web"),
                   text="let guests browse")
    found = conflicts(allow, block)
    assert len(found) == 1
    c = found[0]
    assert (c.new_intent.id, c.existing_intent.id, c.new_index, c.existing_index) == (
        "int-a", "int-b", 0, 0)
    assert "int-a" in c.reason and "int-b" in c.reason and "let guests browse" in c.reason
    assert "10.40.0.0/16 -> 10.100.0.0/16" in c.reason and "tcp port 80,443" in c.reason
    v = c.verdict()
    assert not v.passed and v.source is VerdictSource.CONFLICT
    assert "int-a#0" in v.rule and "int-b#0" in v.rule


@pytest.mark.parametrize("allow", [
    access("allow", g("guests"), g("servers"), protocol=IPProtocol.TCP, ports=(22, 22)),
    access("allow", g("students"), g("servers"), protocol=IPProtocol.TCP, ports=(80, 80)),
    access("allow", g("guests"), g("lab"), protocol=IPProtocol.TCP, ports=(80, 80)),
    access("allow", g("guests"), g("servers"), protocol=IPProtocol.UDP, ports=(80, 80)),
    access("allow", g("guests"), g("servers"), service="dns"),
    access("allow", g("guests"), g("servers"), protocol=IPProtocol.TCP, ports=(80, 80),
           window=TimeWindow(days=("sat", "sun"), start=time(0), end=time(23, 59))),
    access("allow", PrefixEndpoint(prefix="10.41.0.0/16"), g("servers")),
])
def test_allow_vs_block_near_misses(allow):
    block = intent("int-b", access("block", g("guests"), g("servers"), protocol=IPProtocol.TCP,
                                   ports=(80, 443),
                                   window=TimeWindow(days=("mon", "tue"), start=time(8),
                                                     end=time(18))))
    assert conflicts(intent("int-a", allow), block) == []


def test_time_windows_overlap_across_midnight_and_zones():
    night = TimeWindow(days=("mon",), start=time(22), end=time(2))
    tuesday_early = TimeWindow(days=("tue",), start=time(1), end=time(3))
    b = intent("b", access("block", g("guests"), AnyEndpoint(), window=night))
    a = intent("a", access("allow", g("guests"), g("servers"), window=tuesday_early))
    assert len(conflicts(a, b)) == 1
    # 09:00-10:00 New York is 14:00-15:00 (winter) / 13:00-14:00 (summer) UTC
    ny = TimeWindow(days=("mon",), start=time(9), end=time(10), timezone="America/New_York")
    utc_hit = TimeWindow(days=("mon",), start=time(13, 30), end=time(13, 45))
    utc_miss = TimeWindow(days=("mon",), start=time(9), end=time(10))
    b2 = intent("b2", access("block", g("guests"), g("servers"), window=ny))
    assert conflicts(intent("a2", access("allow", g("guests"), g("servers"), window=utc_hit)), b2)
    assert not conflicts(intent("a3", access("allow", g("guests"), g("servers"),
                                             window=utc_miss)), b2)


def test_site_and_device_endpoints_resolve_to_prefixes():
    block = intent("b", access("block", SiteEndpoint(name="south"), g("servers")))
    assert conflicts(intent("a", access("allow", g("guests"), g("servers"))), block)
    assert not conflicts(intent("a", access("allow", g("finance"), g("servers"))), block)
    dev = intent("d", access("allow", DeviceEndpoint(name="acc6"), g("servers")))
    assert conflicts(dev, block)


def test_abilene_prefix_overlap():
    block = intent("b", access("block", DeviceEndpoint(name="CHINng"), AnyEndpoint()))
    allow = intent("a", access("allow", PrefixEndpoint(prefix="10.3.4.0/24"),
                               DeviceEndpoint(name="NYCMng")))
    other = intent("o", access("allow", DeviceEndpoint(name="DNVRng"),
                               DeviceEndpoint(name="NYCMng")))
    assert conflicts(allow, block, topology=ABILENE)
    assert not conflicts(other, block, topology=ABILENE)


def test_conflict_inside_one_intent():
    both = intent("x", access("allow", g("guests"), g("servers")),
                  access("block", g("guests"), AnyEndpoint()))
    found = conflicts(both)
    assert len(found) == 1 and found[0].existing_intent is both
    assert (found[0].new_index, found[0].existing_index) == (0, 1)


def test_same_id_and_withdrawn_are_skipped():
    block = intent("b", access("block", g("guests"), g("servers")))
    allow = intent("a", access("allow", g("guests"), g("servers")))
    assert not conflicts(allow, allow.model_copy(update={"expectations": block.expectations}))
    withdrawn = block.moved_to(block.state.__class__("withdrawn"))
    assert not conflicts(allow, withdrawn)


def test_unknown_names_raise():
    with pytest.raises(ConfigError, match="nobody"):
        conflicts(intent("a", access("allow", g("nobody"), g("servers"))),
                  intent("b", access("block", g("guests"), g("servers"))))
    with pytest.raises(ConfigError, match="netflix"):
        conflicts(intent("a", access("allow", g("guests"), g("servers"), service="netflix")),
                  intent("b", access("block", g("guests"), g("servers"))))


selectors = st.builds(
    lambda src, dst, proto, port, window: (src, dst, proto, port, window),
    st.sampled_from(["guests", "students", "servers", "lab"]),
    st.sampled_from(["servers", "lab", "any", "10.100.1.0/24"]),
    st.sampled_from([IPProtocol.ANY, IPProtocol.TCP, IPProtocol.UDP]),
    st.one_of(st.none(), st.tuples(st.integers(0, 100), st.integers(0, 50))),
    st.one_of(st.none(), st.tuples(st.sampled_from(["mon", "tue", "sun"]),
                                   st.integers(0, 23), st.integers(1, 23))),
)


def build_access(action: str, sel) -> AccessExpectation:
    src, dst, proto, port, window = sel
    dst_ep = (AnyEndpoint() if dst == "any" else PrefixEndpoint(prefix=dst) if "/" in dst
              else g(dst))
    if proto is IPProtocol.ANY:
        port = None
    ports = None if port is None else (port[0], port[0] + port[1])
    win = None
    if window is not None and window[1] != window[2]:
        win = TimeWindow(days=(window[0],), start=time(window[1]), end=time(window[2]))
    return access(action, g(src), dst_ep, protocol=proto, ports=ports, window=win)


@settings(max_examples=150, deadline=None)
@given(selectors, selectors)
def test_allow_block_detection_is_symmetric(a, b):
    allow = intent("a", build_access("allow", a))
    block = intent("b", build_access("block", b))
    assert bool(conflicts(allow, block)) == bool(conflicts(block, allow))


# ------------------------------------------------------------------------------------------
# reachability


def test_reachability_must_vs_must_not():
    must = intent("m", ReachabilityExpectation(source=g("hr"), destination=g("servers")))
    must_not = intent("n", ReachabilityExpectation(source=SiteEndpoint(name="north"),
                                                   destination=g("servers"), reachable=False))
    found = conflicts(must, must_not)
    assert len(found) == 1 and "requires reachability" in found[0].reason
    assert not conflicts(must, intent("n2", ReachabilityExpectation(
        source=g("guests"), destination=g("servers"), reachable=False)))
    assert not conflicts(must, intent("m2", ReachabilityExpectation(
        source=g("hr"), destination=g("servers"))))


def test_reachability_vs_access():
    must = intent("m", ReachabilityExpectation(source=g("hr"), destination=g("servers")))
    assert conflicts(must, intent("b", access("block", AnyEndpoint(), g("servers"))))
    assert not conflicts(must, intent("b", access("block", AnyEndpoint(), g("servers"),
                                                  service="telnet")))
    assert not conflicts(must, intent("b", access("block", g("guests"), g("servers"))))
    must_not = intent("n", ReachabilityExpectation(source=g("hr"), destination=g("servers"),
                                                   reachable=False))
    assert conflicts(intent("a", access("allow", g("hr"), g("servers"), service="web")),
                     must_not)
    assert not conflicts(intent("a", access("allow", g("hr"), g("lab"))), must_not)


# ------------------------------------------------------------------------------------------
# waypoints and load balancing


def wp(*via, src="engineering", dst="servers") -> WaypointExpectation:
    return WaypointExpectation(source=g(src), destination=g(dst), via=via)


def test_waypoint_orders_that_contradict():
    found = conflicts(intent("a", wp("core1", "dist3")), intent("b", wp("dist3", "core1")))
    assert len(found) == 1 and "core1 and dist3" in found[0].reason
    assert not conflicts(intent("a", wp("core1", "dist3")), intent("b", wp("core1")))
    assert not conflicts(intent("a", wp("core1")), intent("b", wp("core2")))
    assert not conflicts(intent("a", wp("core1", "dist3")),
                         intent("b", wp("dist3", "core1", src="finance")))


def test_waypoint_three_way_cycle_on_abilene():
    d = DeviceEndpoint
    a = WaypointExpectation(source=d(name="STTLng"), destination=d(name="NYCMng"),
                            via=("DNVRng", "KSCYng"))
    b = WaypointExpectation(source=d(name="STTLng"), destination=d(name="NYCMng"),
                            via=("KSCYng", "IPLSng", "DNVRng"))
    assert conflicts(intent("a", a), intent("b", b), topology=ABILENE)


def test_load_balancing_path_counts():
    lb = LoadBalancingExpectation
    a = intent("a", lb(source=g("engineering"), destination=g("servers"), paths=2))
    assert conflicts(a, intent("b", lb(source=g("engineering"), destination=AnyEndpoint(),
                                       paths=4)))
    assert not conflicts(a, intent("b", lb(source=g("engineering"), destination=g("servers"),
                                           paths=2)))
    assert not conflicts(a, intent("b", lb(source=g("hr"), destination=g("servers"), paths=4)))


# ------------------------------------------------------------------------------------------
# bandwidth


def test_guarantees_over_a_shared_link():
    # ATLAM5 hangs off ATLAng on one 2480 Mbit/s link that every path from it must cross
    a = intent("a", bw("guarantee", DeviceEndpoint(name="ATLAM5"), DeviceEndpoint(name="NYCMng"),
                       1500))
    b = intent("b", bw("guarantee", DeviceEndpoint(name="ATLAM5"), DeviceEndpoint(name="LOSAng"),
                       1200))
    found = conflicts(a, b, topology=ABILENE)
    assert len(found) == 1
    assert "ATLAM5 -> ATLAng" in found[0].reason and "2480" in found[0].reason
    # opposite directions do not share a link direction
    c = intent("c", bw("guarantee", DeviceEndpoint(name="LOSAng"), DeviceEndpoint(name="ATLAM5"),
                       1200))
    assert not conflicts(a, c, topology=ABILENE)
    assert not conflicts(a, intent("d", bw("guarantee", DeviceEndpoint(name="ATLAM5"),
                                           DeviceEndpoint(name="LOSAng"), 900)),
                         topology=ABILENE)


def test_guarantees_with_twin_paths():
    twin = DigitalTwin(ABILENE)
    a = intent("a", bw("guarantee", DeviceEndpoint(name="ATLAM5"), DeviceEndpoint(name="NYCMng"),
                       1500))
    b = intent("b", bw("guarantee", DeviceEndpoint(name="ATLAM5"), DeviceEndpoint(name="LOSAng"),
                       1200))
    assert conflicts(a, b, topology=ABILENE, twin=twin)


def test_single_guarantee_over_capacity_is_a_conflict_with_itself():
    a = intent("a", bw("guarantee", DeviceEndpoint(name="ATLAM5"), AnyEndpoint(), 3000))
    assert not conflicts(a, topology=ABILENE)  # "anywhere" has no known path
    a = intent("a", bw("guarantee", DeviceEndpoint(name="ATLAM5"), SiteEndpoint(name="Denver"),
                       3000))
    found = conflicts(a, topology=ABILENE)
    assert found and all(c.existing_intent is a for c in found)
    assert "capacity of 2480" in found[0].reason
    # campus guests reach servers over ECMP paths: no single link must carry it all
    assert not conflicts(intent("b", bw("guarantee", g("guests"), g("servers"), 1500)))


def test_cap_below_guarantee():
    guarantee = intent("g", bw("guarantee", g("guests"), g("servers"), 200, service="web"))
    assert conflicts(guarantee, intent("c", bw("cap", g("guests"), AnyEndpoint(), 100)))
    assert not conflicts(guarantee, intent("c", bw("cap", g("guests"), AnyEndpoint(), 300)))
    assert not conflicts(guarantee, intent("c", bw("cap", g("students"), AnyEndpoint(), 100)))
    assert not conflicts(guarantee, intent("c", bw("cap", g("guests"), g("servers"), 100,
                                                   service="dns")))


def test_block_of_guaranteed_traffic():
    guarantee = intent("g", bw("guarantee", g("guests"), g("servers"), 200, service="web"))
    assert conflicts(guarantee, intent("b", access("block", g("guests"), AnyEndpoint())))
    assert not conflicts(guarantee, intent("b", access("block", g("guests"), g("servers"),
                                                       service="ssh")))


# ------------------------------------------------------------------------------------------
# ceilings


def ceiling(u: float, **kw) -> UtilizationCeilingExpectation:
    return UtilizationCeilingExpectation(max_utilization=u, **kw)


def test_ceiling_vs_guarantee():
    g_ = intent("g", bw("guarantee", DeviceEndpoint(name="ATLAM5"), DeviceEndpoint(name="NYCMng"),
                        1500))
    found = conflicts(intent("c", ceiling(0.5)), g_, topology=ABILENE)
    assert len(found) == 1 and "ATLAM5 -> ATLAng" in found[0].reason
    assert not conflicts(intent("c", ceiling(0.7)), g_, topology=ABILENE)
    assert conflicts(g_, intent("c", ceiling(0.5, region=("Atlanta",))), topology=ABILENE)
    assert not conflicts(g_, intent("c", ceiling(0.5, region=("Chicago",))), topology=ABILENE)


def test_ceiling_vs_demand_on_abilene():
    traffic = TrafficMatrix((Demand("ATLAM5", "NYCMng", 1000), Demand("ATLAM5", "CHINng", 800)))
    twin = DigitalTwin(ABILENE)
    everywhere = intent("c", ceiling(0.5))
    found = conflicts(everywhere, topology=ABILENE, twin=twin, traffic=traffic)
    assert len(found) == 1 and "ATLAM5 sends 1800" in found[0].reason
    assert not conflicts(intent("c", ceiling(0.8)), topology=ABILENE, traffic=traffic)
    path = intent("p", ceiling(0.3, source=DeviceEndpoint(name="ATLAM5"),
                               destination=DeviceEndpoint(name="NYCMng")))
    found = conflicts(path, topology=ABILENE, traffic=traffic)
    assert found and "at most 744" in found[0].reason
    assert not conflicts(intent("c", ceiling(0.5, region=("Chicago",))), topology=ABILENE,
                         traffic=traffic)
    # no traffic given: no demand check
    assert not conflicts(everywhere, topology=ABILENE)


def test_ceiling_vs_demand_on_campus_pair_cut():
    traffic = TrafficMatrix((Demand("acc1", "acc8", 1500),))
    assert conflicts(intent("c", ceiling(0.5)), traffic=traffic)
    assert not conflicts(intent("c", ceiling(0.8)), traffic=traffic)
    path = intent("p", ceiling(0.5, source=g("engineering"), destination=g("servers")))
    assert conflicts(path, traffic=traffic)
    other = intent("p", ceiling(0.5, source=g("hr"), destination=g("servers")))
    assert not conflicts(other, traffic=traffic)
    web = intent("w", ceiling(0.5, service="web"))
    assert not conflicts(web, traffic=traffic)
