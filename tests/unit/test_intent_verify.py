from datetime import UTC, datetime

import pytest

from netgpt.device_config import RateLimit
from netgpt.errors import ConfigError
from netgpt.intents.compiler import compile_intent
from netgpt.intents.model import (
    AccessExpectation,
    BandwidthExpectation,
    DeviceEndpoint,
    GroupEndpoint,
    Intent,
    LatencyExpectation,
    LoadBalancingExpectation,
    ReachabilityExpectation,
    ServiceLevelExpectation,
    TrafficSelector,
    UtilizationCeilingExpectation,
    WaypointExpectation,
)
from netgpt.intents.plan import VerdictSource
from netgpt.intents.verify import evaluate_expectation, path_policers, verify_on_twin
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix

pytestmark = pytest.mark.unit

AT = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def campus():
    return build_topology("campus")


@pytest.fixture(scope="module")
def abilene():
    return build_topology("abilene")


def test_evaluate_reachability_fields(campus):
    twin = DigitalTwin(campus)
    e = ReachabilityExpectation(source=GroupEndpoint(name="hr"),
                                destination=GroupEndpoint(name="servers"))
    r = evaluate_expectation(e, 3, twin, at=AT)
    assert r.holds and r.index == 3 and r.source == "twin" and r.at == AT
    assert r.value == 1.0 and r.target == 1.0
    assert "1/1 test flows delivered" in r.measurement
    blocked = e.model_copy(update={"reachable": False})
    r = evaluate_expectation(blocked, 0, twin, at=AT)
    assert not r.holds and "first failing" in r.measurement


def test_active_intent_breaking_is_reported(campus):
    keep_open = Intent(id="keep", expectations=(ReachabilityExpectation(
        source=GroupEndpoint(name="lab"), destination=GroupEndpoint(name="servers")),))
    block = Intent(id="new", expectations=(AccessExpectation(
        action="block", traffic=TrafficSelector(source=GroupEndpoint(name="lab"))),))
    cs = compile_intent(block, campus, {})
    report, verdicts = verify_on_twin(block, campus, cs.candidates(), active=[keep_open, block])
    assert report.fulfilled
    assert len(verdicts) == 2  # the intent itself is not judged twice
    assert all(v.source is VerdictSource.TWIN for v in verdicts)
    mine, theirs = verdicts
    assert mine.passed and "intent new" in mine.rule
    assert not theirs.passed and "active intent keep" in theirs.rule
    assert "intent-new" in theirs.evidence


def test_waypoint_and_load_balancing_measurements(abilene):
    twin = DigitalTwin(abilene)
    wp = WaypointExpectation(source=DeviceEndpoint(name="STTLng"),
                             destination=DeviceEndpoint(name="NYCMng"), via=("HSTNng",))
    r = evaluate_expectation(wp, 0, twin)
    assert not r.holds and "0/1 paths" in r.measurement
    lb = LoadBalancingExpectation(source=DeviceEndpoint(name="STTLng"),
                                  destination=DeviceEndpoint(name="NYCMng"), paths=2)
    r = evaluate_expectation(lb, 0, twin)
    assert not r.holds and r.value == 1 and r.target == 2
    with pytest.raises(ConfigError):
        evaluate_expectation(wp.model_copy(update={"via": ("nowhere",)}), 0, twin)


def test_bandwidth_and_policers(campus):
    twin = DigitalTwin(campus)
    cap = BandwidthExpectation(mode="cap", rate_mbps=100,
                               traffic=TrafficSelector(source=GroupEndpoint(name="guests"),
                                                       destination=GroupEndpoint(name="servers")))
    r = evaluate_expectation(cap, 0, twin)
    assert not r.holds and r.value is not None and r.value > 100
    it = Intent(id="cap", expectations=(cap,))
    after = compile_intent(it, campus, {}).candidates()
    r = evaluate_expectation(cap, 0, DigitalTwin(campus, after))
    assert r.holds and r.value == pytest.approx(100) and "per source device (acc6)" in r.measurement
    # an interface policer on the path is one too
    itf = after["acc6"].interface("eth0")
    plain = after["acc6"].with_interface(itf.model_copy(update={
        "class_policers": (), "rate_limit": RateLimit(ingress_mbps=60)}))
    assert path_policers(campus, {"acc6": plain}, ("acc6", "dist3", "acc8"))[0] == (
        "acc6", "eth0", "ingress", 60.0)
    assert evaluate_expectation(cap, 0, DigitalTwin(campus, {"acc6": plain})).holds
    guarantee = cap.model_copy(update={"mode": "guarantee", "rate_mbps": 900})
    busy = TrafficMatrix((Demand("acc6", "acc8", 400),))
    r = evaluate_expectation(guarantee, 0, twin, traffic=busy)
    assert not r.holds and r.value is not None and r.value < 900


def test_utilization_and_latency(abilene):
    twin = DigitalTwin(abilene)
    e = UtilizationCeilingExpectation(max_utilization=0.5, source=DeviceEndpoint(name="STTLng"),
                                      destination=DeviceEndpoint(name="NYCMng"))
    r = evaluate_expectation(e, 0, twin)
    assert r.holds and "zero load" in r.measurement
    tm = TrafficMatrix((Demand("STTLng", "NYCMng", 6000),))
    r = evaluate_expectation(e, 0, twin, traffic=tm)
    assert not r.holds and r.value == pytest.approx(6000 / 9920)
    lat = LatencyExpectation(source=DeviceEndpoint(name="STTLng"),
                             destination=DeviceEndpoint(name="NYCMng"), max_ms=20)
    r = evaluate_expectation(lat, 0, twin)
    assert not r.holds and r.value == pytest.approx(23.366)


def test_slo_not_measured(campus):
    e = ServiceLevelExpectation(workload="genai", metric="availability", target=0.99)
    r = evaluate_expectation(e, 0, DigitalTwin(campus))
    assert r.holds and "not measured" in r.measurement and r.value is None
