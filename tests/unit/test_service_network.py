"""The generative service's network side: exchange timing, service levels, SLO path plans."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from netgpt.device_config import Acl, AclAction, AclRule, IPProtocol, PortRange
from netgpt.errors import ConfigError, TelemetryError
from netgpt.generative.service import default_placement
from netgpt.intents.compiler import (
    SLO_PATH_CEILING,
    CompileError,
    compile_intent,
    slo_path_ceilings,
)
from netgpt.intents.model import (
    AnyEndpoint,
    Intent,
    ServiceLevelExpectation,
    SiteEndpoint,
    WorkloadPlacement,
)
from netgpt.intents.verify import path_links
from netgpt.sim_networks.flow_timing import FlowDroppedError, QueueModel, exchange_timing
from netgpt.sim_networks.topology import abilene, campus
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix
from netgpt.telemetry.base import ServiceSample
from netgpt.telemetry.store import SqliteTelemetryStore
from netgpt.telemetry.views import service_level


def _twin(topo):  # type: ignore[no-untyped-def]
    return DigitalTwin(topo, {d: topo.initial_config(d) for d in topo.devices})


def test_idle_exchange_costs_the_path_delay_both_ways() -> None:
    topo = abilene()
    twin = _twin(topo)
    report = twin.evaluate(TrafficMatrix(()))
    t = exchange_timing(twin, report, "NYCMng", "KSCYng", flow_id="r1", bytes_up=1500,
                        bytes_down=3000, port=8800)
    one_way = twin.path_latency_ms("NYCMng", "KSCYng")[1]
    assert t.path[0] == "NYCMng" and t.path[-1] == "KSCYng"
    assert t.rtt_ms == pytest.approx(2 * one_way, rel=1e-6)
    # idle 10G links: serialization of a few kB is microseconds, no queue, no loss
    assert t.network_ms == pytest.approx(t.rtt_ms, abs=0.1)
    assert t.loss == 0 and t.retransmissions == 0


def test_overload_fills_queues_and_loses_packets() -> None:
    topo = abilene()
    twin = _twin(topo)
    idle = twin.evaluate(TrafficMatrix(()))
    hot = twin.evaluate(TrafficMatrix((Demand("NYCMng", "KSCYng", 12_000.0),)))
    q = QueueModel()
    times = [exchange_timing(twin, hot, "NYCMng", "KSCYng", flow_id=str(i), bytes_up=2_000,
                             bytes_down=20_000, port=8800, queue=q) for i in range(40)]
    base = exchange_timing(twin, idle, "NYCMng", "KSCYng", flow_id="0", bytes_up=2_000,
                           bytes_down=20_000, port=8800, queue=q)
    worst = times[0].bottleneck
    assert worst is not None and worst.utilization > 1
    assert worst.queue_ms == q.buffer_ms and 0 < worst.loss < 1
    assert min(t.network_ms for t in times) > base.network_ms + q.buffer_ms
    # losses cost a retransmission timeout for some requests, not all: a tail
    assert any(t.retransmissions > 0 for t in times)
    assert any(t.retransmissions == 0 for t in times)
    # the same flow on the same network takes the same time
    again = exchange_timing(twin, hot, "NYCMng", "KSCYng", flow_id="3", bytes_up=2_000,
                            bytes_down=20_000, port=8800, queue=q)
    assert again.network_ms == times[3].network_ms


def test_an_acl_that_drops_the_service_port_fails_the_exchange() -> None:
    topo = abilene()
    cfg = topo.initial_config("NYCMng")
    acl = Acl(name="no-gen", rules=(AclRule(
        name="r1", action=AclAction.DROP, protocol=IPProtocol.TCP,
        destination_ports=PortRange(lower=8800, upper=8800)),))
    itf = next(i for i in cfg.interfaces if i.name == "eth0")
    cfg = cfg.model_copy(update={
        "acls": (acl,),
        "interfaces": tuple(i.model_copy(update={"acl_ingress": ("no-gen",)}) if i is itf else i
                            for i in cfg.interfaces)})
    twin = DigitalTwin(topo, {**{d: topo.initial_config(d) for d in topo.devices},
                              "NYCMng": cfg})
    report = twin.evaluate(TrafficMatrix(()))
    with pytest.raises(FlowDroppedError, match="8800"):
        exchange_timing(twin, report, "NYCMng", "KSCYng", flow_id="x", bytes_up=100,
                        bytes_down=100, port=8800)
    # other ports still pass
    exchange_timing(twin, report, "NYCMng", "KSCYng", flow_id="x", bytes_up=100,
                    bytes_down=100, port=443)


def test_bad_byte_counts_and_queue_settings_are_refused() -> None:
    topo = abilene()
    twin = _twin(topo)
    with pytest.raises(ConfigError, match="byte counts"):
        exchange_timing(twin, twin.evaluate(TrafficMatrix(())), "NYCMng", "KSCYng",
                        flow_id="x", bytes_up=-1, bytes_down=0)
    with pytest.raises(ConfigError, match="min_share"):
        QueueModel(min_share=0)


def test_default_placement_puts_the_cloud_in_the_server_farm_and_an_edge_per_site() -> None:
    p = default_placement(campus())
    assert p.cloud_device == "acc8"  # the servers group
    assert set(p.edges) == {"north", "south"}  # the datacenter cores have no address
    a = default_placement(abilene())
    assert len(a.edges) == 11 and a.cloud_device in a.edges.values()
    with pytest.raises(ConfigError, match="no local prefixes"):
        default_placement(campus(), cloud_device="core1")
    with pytest.raises(ConfigError, match="has no edge instance at site 'Paris'"):
        a.edge_of("Paris")


def _sample(i: int, total: float, *, ok: bool = True, site: str = "New York") -> ServiceSample:
    return ServiceSample(request_id=f"r{i}", timestamp=time.time(), workload="generative",
                         site=site, mode="edge+cloud", edge_device="NYCMng",
                         cloud_device="KSCYng", edge_ms=5.0, network_ms=total - 10,
                         cloud_ms=5.0, total_ms=total, wan_bytes_up=1000, wan_bytes_down=2000,
                         ok=ok, error="" if ok else "dropped")


def test_service_levels_from_the_store() -> None:
    store = SqliteTelemetryStore(":memory:")
    store.add_service_samples([_sample(i, float(10 * (i + 1))) for i in range(20)])
    store.add_service_samples([_sample(99, 1.0, ok=False), _sample(100, 1.0, site="Denver")])
    frame = store.service_frame(workload="generative", site="New York")
    assert len(frame) == 21
    p95 = service_level(frame, "latency_p95_ms", window_s=60)
    assert p95.value == 190.0 and p95.requests == 21 and p95.failed == 1  # nearest rank of 20
    assert service_level(frame, "latency_p50_ms", window_s=60).value == 100.0
    assert service_level(frame, "availability", window_s=60).value == pytest.approx(20 / 21)
    assert service_level(frame, "throughput_mbps", window_s=60).value == pytest.approx(
        21 * 3000 * 8 / 60 / 1e6)
    with pytest.raises(TelemetryError, match="unknown service metric 'p99'"):
        service_level(frame, "p99", window_s=60)
    with pytest.raises(TelemetryError, match="no request"):
        service_level(frame.iloc[0:0], "latency_p95_ms", window_s=60)
    assert isinstance(store.service_frame(since=time.time() + 10), pd.DataFrame)
    store.close()


def _slo(site: str | None) -> Intent:
    scope = AnyEndpoint() if site is None else SiteEndpoint(name=site)
    return Intent(expectations=(ServiceLevelExpectation(
        workload="generative", metric="latency_p95_ms", target=150.0, scope=scope),))


def test_an_slo_plans_headroom_on_its_edge_cloud_paths() -> None:
    topo = abilene()
    placement = WorkloadPlacement(workload="generative", cloud_device="KSCYng",
                                  edges={"New York": "NYCMng", "Denver": "DNVRng"})
    e = _slo("New York").expectations[0]
    assert isinstance(e, ServiceLevelExpectation)
    ceilings = slo_path_ceilings(e, placement, topo)
    assert len(ceilings) == 2 and all(c.max_utilization == SLO_PATH_CEILING for c in ceilings)
    base = {d: topo.initial_config(d) for d in topo.devices}
    quiet = compile_intent(_slo("New York"), topo, base, traffic=TrafficMatrix(()),
                           workloads={"generative": placement})
    assert not quiet.changes and any("under 80%" in n for n in quiet.notes)
    # a backup from Chicago floods New York's path to the cloud: the plan moves traffic off it
    hot = TrafficMatrix((Demand("CHINng", "KSCYng", 11_000.0),))
    plan = compile_intent(_slo("New York"), topo, base, traffic=hot,
                          workloads={"generative": placement})
    assert plan.changes
    after = DigitalTwin(topo, {**base, **plan.candidates()})
    loads = after.evaluate(hot)
    for tr in after.paths("NYCMng", after.default_address("KSCYng")):
        for u, v in path_links(tr.devices):
            assert loads.link(u, v).utilization <= SLO_PATH_CEILING + 1e-9
    # without a placement the objective has nothing to steer
    none = compile_intent(_slo("New York"), topo, base, traffic=hot)
    assert not none.changes and any("no placement" in n for n in none.notes)
    with pytest.raises(CompileError, match="no edge instance at sites"):
        compile_intent(_slo("Seattle"), topo, base, traffic=hot,
                       workloads={"generative": placement})
    assert math.isfinite(loads.max_utilization)
