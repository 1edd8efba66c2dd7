"""Every intent kind that compiles to device config, deployed on a real embedded Abilene.

Each test submits one intent to a fresh platform, then checks what the devices now run, read back
over NETCONF (and, for rates and loads, their SNMP counters): the config element the compiler
promises is there, and a twin built from the read-back configs says the intent holds. After each
test the devices get their day-0 configs back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from netgpt.agents.platform import IntentPlatform
from netgpt.device_config import AclAction, DeviceConfig, IPProtocol
from netgpt.intents.compiler import intent_acl_name
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.twin import Demand, DigitalTwin
from tests.integration.intent_fixtures import (
    interface_rates_mbps,
    set_configs,
    start_steady_network,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def abilene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNetwork]:
    net = start_steady_network("abilene", tmp_path_factory.mktemp("abilene-kinds"), start=44000)
    yield net
    net.stop()


@pytest.fixture(scope="module")
def day0(abilene: EmbeddedNetwork) -> dict[str, DeviceConfig]:
    return dict(abilene.live.configs())


@pytest.fixture
def platform(
    abilene: EmbeddedNetwork, day0: dict[str, DeviceConfig], tmp_path: Path
) -> Iterator[IntentPlatform]:
    assert abilene.inventory is not None
    p = IntentPlatform(abilene.inventory, tmp_path / "agent", topology=abilene.topology)
    yield p
    p.close()
    set_configs(abilene.inventory, day0)


def deploy(p: IntentPlatform, text: str, *, approved: bool = False) -> dict[str, DeviceConfig]:
    """Submit ``text``; it must deploy. Returns the configs read back from the devices."""
    run = p.submit(text, approved=approved)
    assert run.outcome == "deployed", (text, run.state.get("reason"))
    return p.read_configs()


def changed(before: dict[str, DeviceConfig], after: dict[str, DeviceConfig]) -> set[str]:
    return {d for d in before if before[d] != after[d]}


def test_access_block_puts_an_acl_on_the_source_edge(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    twin = DigitalTwin(platform.topology, platform.read_configs())
    assert twin.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=23).reachable
    run = platform.submit("block tcp port 23 from NYCMng to LOSAng")
    assert run.outcome == "deployed", run.state.get("reason")
    configs = platform.read_configs()
    assert changed(day0, configs) == {"NYCMng"}
    acl = intent_acl_name(run.run_id)
    assert configs["NYCMng"].interface("eth0").acl_ingress[0] == acl
    rules = configs["NYCMng"].acl(acl).rules
    assert any(
        r.action in (AclAction.DROP, AclAction.REJECT)
        and r.protocol is IPProtocol.TCP
        and r.destination_ports is not None
        and r.destination_ports.lower == 23
        for r in rules
    ), rules
    twin = DigitalTwin(platform.topology, configs)
    blocked = twin.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=23)
    assert not blocked.reachable
    assert twin.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=22).reachable
    assert twin.reachability("NYCMng", "10.5.0.10", protocol="tcp", dst_port=23).reachable


def _window_text(start: datetime, end: datetime) -> str:
    return f"on {start:%A} between {start:%H:%M} and {end:%H:%M}"


def test_time_window_block_is_enforced_by_the_devices_clock(
    platform: IntentPlatform, abilene: EmbeddedNetwork
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    open_now = _window_text(now - timedelta(hours=1), now + timedelta(hours=1))
    run = platform.submit(f"block tcp port 23 from NYCMng to LOSAng {open_now}")
    assert run.outcome == "deployed", run.state.get("reason")
    configs = platform.read_configs()  # over NETCONF: the rules carry their time range
    rules = configs["NYCMng"].acl(intent_acl_name(run.run_id)).rules
    assert rules and all(r.time_range is not None for r in rules)
    twin = DigitalTwin(platform.topology, configs)
    assert not twin.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=23).reachable
    later = twin.at_time(datetime.now(UTC) + timedelta(hours=2))
    assert later.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=23).reachable
    # the emulated data plane drops telnet now
    telnet = Demand("NYCMng", "LOSAng", 20.0, protocol="tcp", dst_port=23)
    abilene.live.inject((telnet,))
    try:
        (outcome,) = [o for o in abilene.live.report.demands if o.demand == telnet]
        assert outcome.delivered_mbps == 0.0 and outcome.drops[0].cause.acl is not None
    finally:
        abilene.live.inject(())
    shown = platform.store.get(run.run_id)
    assert shown is not None and shown.report is not None
    assert "window open now" in shown.report.results[0].measurement


def test_time_window_block_outside_its_window_lets_traffic_pass_now(
    platform: IntentPlatform,
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    later = _window_text(now + timedelta(hours=2), now + timedelta(hours=3))
    run = platform.submit(f"block tcp port 23 from NYCMng to LOSAng {later}")
    assert run.outcome == "deployed", run.state.get("reason")
    twin = DigitalTwin(platform.topology, platform.read_configs())
    assert twin.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=23).reachable
    inside = twin.at_time(now + timedelta(hours=2, minutes=30))
    assert not inside.reachability("NYCMng", "10.8.0.10", protocol="tcp", dst_port=23).reachable


def test_reachability_must_not_drops_everything_to_the_prefix(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    run = platform.submit("STTLng cannot reach 10.5.0.0/16")
    assert run.outcome == "deployed", run.state.get("reason")
    configs = platform.read_configs()
    assert changed(day0, configs) == {"STTLng"}
    assert intent_acl_name(run.run_id) in configs["STTLng"].interface("eth0").acl_ingress
    twin = DigitalTwin(platform.topology, configs)
    for protocol, port in (("any", None), ("tcp", 443), ("udp", 53)):
        flow = twin.reachability("STTLng", "10.5.3.4", protocol=protocol, dst_port=port)
        assert not flow.reachable, (protocol, port)
    assert twin.reachability("STTLng", "10.8.3.4").reachable
    assert twin.reachability("DNVRng", "10.5.3.4").reachable


def test_waypoint_adds_static_routes_and_every_path_crosses_it(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    before = DigitalTwin(platform.topology, day0).paths("SNVAng", "10.12.0.1")
    assert not all("HSTNng" in p.devices for p in before)
    configs = deploy(
        platform, "traffic from SNVAng to WASHng must go through HSTNng", approved=True
    )
    touched = changed(day0, configs)
    assert touched
    for device in touched:
        assert any(r.prefix == "10.12.0.0/16" for r in configs[device].static_routes), device
    paths = DigitalTwin(platform.topology, configs).paths("SNVAng", "10.12.0.1")
    assert paths and all("HSTNng" in p.devices for p in paths)
    assert all(p.devices[-1] == "WASHng" for p in paths)


def test_load_balancing_raises_igp_costs_to_tie_n_paths(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    assert len(DigitalTwin(platform.topology, day0).paths("WASHng", "10.10.0.1")) == 1
    configs = deploy(platform, "split traffic from WASHng to SNVAng across 2 paths", approved=True)
    touched = changed(day0, configs)
    assert touched
    for device in touched:
        costs = {i.name: i.igp_cost for i in configs[device].interfaces}
        assert costs != {i.name: i.igp_cost for i in day0[device].interfaces}, device
        assert configs[device].static_routes == day0[device].static_routes
    paths = DigitalTwin(platform.topology, configs).paths("WASHng", "10.10.0.1")
    assert len(paths) == 2
    assert len({p.devices for p in paths}) == 2


def test_bandwidth_cap_polices_its_class_and_counters_stay_under_it(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    inventory = platform.inventory
    before = interface_rates_mbps(inventory, "IPLSng", ["eth0"])["eth0"][1]
    assert before > 200  # hosts behind IPLSng receive far more than the cap
    configs = deploy(platform, "cap traffic to IPLSng at 50 Mbps")
    assert changed(day0, configs) == {"IPLSng"}
    (policer,) = configs["IPLSng"].interface("eth0").class_policers
    assert (policer.direction, policer.rate_mbps) == ("egress", 50)
    # SNMP: what eth0 puts on the access network is held at the cap (5 % for sampling: sysUpTime
    # counts in 10 ms ticks)
    after = interface_rates_mbps(inventory, "IPLSng", ["eth0"])["eth0"][1]
    assert 0 < after <= 50 * 1.05, after


def test_bandwidth_cap_on_a_source_polices_its_ingress(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    configs = deploy(platform, "cap NYCMng at 100 Mbps")
    assert changed(day0, configs) == {"NYCMng"}
    (policer,) = configs["NYCMng"].interface("eth0").class_policers
    assert (policer.direction, policer.rate_mbps) == ("ingress", 100)
    assert configs["NYCMng"].interface("eth0").rate_limit is None


def test_utilization_ceiling_reroutes_and_counters_show_it(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    topo, inventory = platform.topology, platform.inventory
    links = [(itf, peer) for itf, peer in topo.interfaces("KSCYng") if peer is not None]
    names = [itf for itf, _ in links]

    def worst(rates: dict[str, tuple[float, float]]) -> float:
        return max(
            max(rates[itf]) / topo.interface_speed_mbps("KSCYng", itf) for itf in names
        )

    assert worst(interface_rates_mbps(inventory, "KSCYng", names)) > 0.32
    configs = deploy(platform, "keep links at KSCYng under 30% utilization", approved=True)
    touched = changed(day0, configs)
    assert touched
    for device in touched:
        assert [i.igp_cost for i in configs[device].interfaces] != [
            i.igp_cost for i in day0[device].interfaces
        ]
    # SNMP: both directions of every KSCYng link now run at or under 30 % (5 % for jitter)
    assert worst(interface_rates_mbps(inventory, "KSCYng", names)) <= 0.30 * 1.05


def test_latency_steers_onto_a_fast_enough_path(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    # an operator's earlier change makes the shortest NYCMng -> LOSAng path the slow one
    slow = day0["NYCMng"].with_interface(
        day0["NYCMng"].interface("eth2").model_copy(update={"igp_cost": 100})
    )
    set_configs(platform.inventory, {"NYCMng": slow})
    start = DigitalTwin(platform.topology, platform.read_configs()).paths("NYCMng", "10.8.0.1")
    assert max(p.delay_ms for p in start) > 24
    configs = deploy(platform, "keep latency from NYCMng to LOSAng below 24 ms", approved=True)
    assert changed({**day0, "NYCMng": slow}, configs)
    paths = DigitalTwin(platform.topology, configs).paths("NYCMng", "10.8.0.1")
    assert paths and all(p.delay_ms <= 24 for p in paths)


def test_latency_below_the_fastest_path_is_refused_with_the_reason(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    run = platform.submit("keep latency from NYCMng to LOSAng below 20 ms", approved=True)
    assert run.outcome in ("refused", "failed")
    reason = run.state["reason"]
    assert "fastest path" in reason and "20.0 ms" in reason and "no IGP cost" in reason
    assert platform.read_configs() == day0


def test_bandwidth_guarantee_reserves_it_on_the_devices_of_its_paths(
    platform: IntentPlatform, day0: dict[str, DeviceConfig]
) -> None:
    run = platform.submit("guarantee 20 Mbit/s from NYCMng to LOSAng")
    assert run.outcome == "deployed", run.state.get("reason")
    now = platform.read_configs()
    reserved = {(d, i.name): c for d, cfg in now.items() for i in cfg.interfaces
                for c in i.class_policers}
    assert reserved and all(c.assured_mbps == 20 and c.direction == "egress"
                            for c in reserved.values())
    assert ("NYCMng", "eth0") not in reserved  # on links, not the access interface
    notes = " ".join((run.state.get("plan") or {}).get("notes", []))
    assert "reserves it on the egress" in notes, notes
    # withdrawing takes the reservations away again
    platform.withdraw(run.run_id, by="operator")
    assert platform.read_configs() == day0
