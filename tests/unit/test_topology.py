import json

import networkx as nx
import pytest

from netgpt.errors import TopologyError
from netgpt.sim_networks.topology import build_topology, load_topology_file

pytestmark = pytest.mark.unit


def test_abilene_is_the_real_backbone():
    topo = build_topology("abilene")
    assert len(topo.devices) == 12
    assert topo.graph.number_of_edges() == 15
    assert {"ATLAng", "CHINng", "NYCMng", "STTLng", "ATLAM5"} <= set(topo.devices)
    assert topo.graph.has_edge("CHINng", "NYCMng")
    assert topo.graph.edges["ATLAM5", "ATLAng"]["capacity_mbps"] == 2480.0
    # delays follow geography: Sunnyvale-Denver is longer than New York-Washington
    assert (
        topo.graph.edges["DNVRng", "SNVAng"]["delay_ms"]
        > topo.graph.edges["NYCMng", "WASHng"]["delay_ms"]
    )
    assert topo.graph.nodes["NYCMng"]["site"] == "New York"


def test_every_link_has_interfaces_addresses_and_attributes():
    topo = build_topology("abilene")
    seen_addresses = set()
    for link in topo.links():
        assert link.capacity_mbps > 0 and link.delay_ms > 0 and link.igp_cost >= 1
        assert topo.interface_peer(link.a, link.a_interface) == link.b
        assert topo.interface_to(link.b, link.a) == link.b_interface
        seen_addresses |= {link.a_address, link.b_address}
    assert len(seen_addresses) == 30


def test_initial_config_matches_topology():
    topo = build_topology("abilene")
    cfg = topo.initial_config("ATLAng")
    names = [i.name for i in cfg.interfaces]
    assert names[0] == "eth0"
    assert len(names) == 1 + topo.graph.degree("ATLAng")
    assert all(i.enabled for i in cfg.interfaces)
    eth = cfg.interface(topo.interface_to("ATLAng", "HSTNng"))
    assert eth.igp_cost == topo.graph.edges["ATLAng", "HSTNng"]["igp_cost"]


def test_campus_has_roles_groups_and_services():
    topo = build_topology("campus")
    roles = {topo.graph.nodes[n]["role"] for n in topo.devices}
    assert roles == {"core", "distribution", "access"}
    assert topo.groups["guests"].prefixes == ("10.40.0.0/16",)
    assert "10.100.0.0/16" in topo.local_prefixes(topo.groups["servers"].device)
    assert topo.services["telnet"].ports == (23,)


@pytest.mark.parametrize(
    ("spec", "nodes", "edges"), [("linear,5", 5, 4), ("tree,2,2", 7, 6), ("linear,1", 1, 0)]
)
def test_parametric_topologies(spec, nodes, edges):
    topo = build_topology(spec)
    assert (len(topo.devices), topo.graph.number_of_edges()) == (nodes, edges)


@pytest.mark.parametrize("spec", ["nope", "linear", "linear,0", "linear,a", "tree,1", "tree,-1,2"])
def test_bad_specs_are_clear(spec):
    with pytest.raises(TopologyError) as err:
        build_topology(spec)
    assert spec.split(",")[0] in str(err.value) or "linear" in str(err.value)


def test_json_round_trip_with_groups(tmp_path):
    topo = build_topology("campus")
    path = tmp_path / "campus.json"
    path.write_text(json.dumps(topo.to_json()))
    again = load_topology_file(path)
    assert {frozenset(e) for e in again.graph.edges} == {frozenset(e) for e in topo.graph.edges}
    assert list(again.links()) == list(topo.links())
    assert again.groups == topo.groups
    assert again.services == topo.services


def test_graphml_with_groups(tmp_path):
    g = nx.Graph(
        name="lab3", groups=json.dumps([{"name": "lab", "prefixes": "10.3.0.0/16", "device": "c"}])
    )
    g.add_node("a", role="core", site="A", lat=1.0, lon=2.0)
    g.add_node("b")
    g.add_node("c")
    g.add_edge("a", "b", capacity_mbps=100.0, delay_ms=2.0, igp_cost=5)
    g.add_edge("b", "c", capacity_mbps=100.0, delay_ms=2.0, igp_cost=5)
    path = tmp_path / "lab.graphml"
    nx.write_graphml(g, path)
    topo = build_topology(str(path))
    assert topo.name == "lab3"
    assert topo.graph.nodes["a"]["location"] == (1.0, 2.0)
    assert topo.groups["lab"].device == "c"
    assert "10.3.0.0/16" in topo.local_prefixes("c")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"nodes": [{"name": "a"}, {"name": "b"}], "links": [{"a": "a", "b": "zz"}]}', "zz"),
        ('{"nodes": [{"name": "a"}, {"name": "b"}], "links": []}', "not connected"),
        (
            '{"nodes": [{"name": "a"}, {"name": "b"}], "links": [{"a": "a", "b": "b", '
            '"capacity_mbps": -1}]}',
            "capacity_mbps",
        ),
        (
            '{"nodes": [{"name": "a"}, {"name": "b"}], "links": [{"a": "a", "b": "b", '
            '"igp_cost": "x"}]}',
            "igp_cost",
        ),
        (
            '{"nodes": [{"name": "a"}], "groups": [{"name": "g", "prefixes": ["10.0.0.0/33"], '
            '"device": "a"}]}',
            "10.0.0.0/33",
        ),
        (
            '{"nodes": [{"name": "a"}], "groups": [{"name": "g", "prefixes": [], "device": "q"}]}',
            "unknown device 'q'",
        ),
        (
            '{"nodes": [{"name": "a"}], "groups": [{"name": "g", "prefixes": [], "device": "a", '
            '"interface": "eth7"}]}',
            "access interface eth0",
        ),
    ],
)
def test_bad_topology_files_name_the_problem(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TopologyError) as err:
        build_topology(str(path))
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_missing_and_broken_graphml(tmp_path):
    with pytest.raises(TopologyError, match="does not exist"):
        build_topology(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph><node id='a'/></graph")
    with pytest.raises(TopologyError, match="GraphML"):
        build_topology(str(bad))
