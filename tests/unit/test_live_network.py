"""The embedded network's live state: time-ranged ACL rules follow the devices' clock."""

from datetime import UTC, datetime

import pytest

from netgpt.device_config import Acl, AclAction, AclRule, DeviceConfig, TimeWindow
from netgpt.sim_networks.live import LiveNetwork
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.twin import Demand

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


def test_window_edges_start_and_stop_the_drop() -> None:
    topo = build_topology("linear,3")
    clock = Clock(datetime(2026, 11, 21, 9, 59, 30, tzinfo=UTC))  # a Saturday
    net = LiveNetwork(topo, None, clock=clock)
    net.inject((Demand("r1", "r3", 100.0),))
    window = TimeWindow(days=("sat",), start="10:00", end="11:00")
    base = net.configs()["r1"]
    itf = base.interface("eth0").model_copy(update={"acl_ingress": ("timed",)})
    rule = AclRule(name="sat-10", action=AclAction.DROP, time_range=window)
    net.apply("r1", DeviceConfig(hostname="r1", interfaces=base.interfaces,
                                 static_routes=base.static_routes,
                                 acls=(Acl(name="timed", rules=(rule,)),)).with_interface(itf))

    def delivered() -> float:
        return net.report.delivered_mbps

    assert delivered() == pytest.approx(100.0)
    assert net.twin().reachability("r1", net.twin().default_address("r3")).reachable
    clock.now += 60  # 10:00:30, inside the window
    net.recompute()  # the runtime's periodic tick
    assert delivered() == pytest.approx(0.0)
    assert not net.twin().reachability("r1", net.twin().default_address("r3")).reachable
    clock.now += 3600  # 11:00:30, the window has closed
    net.recompute()
    assert delivered() == pytest.approx(100.0)
