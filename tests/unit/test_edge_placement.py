"""Choosing where to move an edge instance (pure: the twin and the measured traffic)."""

from __future__ import annotations

import pytest

from netgpt.intents.compiler import compile_intent
from netgpt.intents.model import ServiceLevelExpectation, SiteEndpoint, WorkloadPlacement
from netgpt.intents.parser import NameTable, parse_intent
from netgpt.intents.placement import choose_edge_move, predicted_request_ms
from netgpt.sim_networks.topology import Topology, build_topology
from netgpt.sim_networks.twin import DigitalTwin, TrafficMatrix


@pytest.fixture(scope="module")
def abilene() -> Topology:
    return build_topology("abilene")


def _placement() -> WorkloadPlacement:
    return WorkloadPlacement(workload="generative", cloud_device="KSCYng",
                             edges={"New York": "NYCMng", "Denver": "DNVRng"})


def _objective(target: float = 300.0) -> ServiceLevelExpectation:
    return ServiceLevelExpectation(workload="generative", metric="latency_p95_ms", target=target,
                                   scope=SiteEndpoint(name="New York"))


def _hosts(topology: Topology) -> list[str]:
    return [d for d in topology.devices if topology.local_prefixes(d)]


def test_an_edge_whose_way_meets_the_objective_stays(abilene: Topology) -> None:
    twin = DigitalTwin(abilene, {})
    load = twin.evaluate(TrafficMatrix(()))
    assert choose_edge_move(_objective(), _placement(), "New York", twin, load, _hosts(abilene),
                            edge_bytes=600_000) is None


def test_an_acl_on_the_edges_way_moves_it_to_the_cheapest_copy_that_meets_the_bound(
        abilene: Topology) -> None:
    acl = parse_intent("block tcp port 8800 from NYCMng to KSCYng",
                       NameTable.from_topology(abilene))
    configs = compile_intent(acl, abilene, {}).applied_to({})
    twin = DigitalTwin(abilene, configs)
    load = twin.evaluate(TrafficMatrix(()))
    placement = _placement()
    assert predicted_request_ms(twin, load, placement, "New York", "NYCMng") is None
    choice = choose_edge_move(_objective(), placement, "New York", twin, load, _hosts(abilene),
                              edge_bytes=600_000)
    assert choice is not None and choice.before_ms is None
    assert choice.old_device == "NYCMng" and choice.new_device != "NYCMng"
    # the users stay in New York: the prediction counts their way to the new edge
    after = predicted_request_ms(twin, load, placement, "New York", choice.new_device)
    assert after == pytest.approx(choice.after_ms) and choice.after_ms <= 300
    # no other candidate that meets the bound copies the files more cheaply
    for device in _hosts(abilene):
        other = choose_edge_move(_objective(), placement, "New York", twin, load, [device],
                                 edge_bytes=600_000)
        if other is not None:
            assert other.transfer_ms >= choice.transfer_ms
    assert "dropped ->" in str(choice) and "0.6 MB" in str(choice)
    # a bound no candidate can meet moves nothing
    assert choose_edge_move(_objective(target=0.5), placement, "New York", twin, load,
                            _hosts(abilene), edge_bytes=600_000) is None


def test_users_stay_where_they_attach_when_their_edge_moves() -> None:
    moved = _placement().moved("New York", "WASHng")
    assert moved.edges["New York"] == "WASHng" and moved.user_device("New York") == "NYCMng"
    again = WorkloadPlacement.model_validate(moved.model_dump(mode="json"))
    assert again.user_device("New York") == "NYCMng"
