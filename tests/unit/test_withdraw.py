import pytest

from netgpt.device_config import StaticRoute
from netgpt.intents.compiler import compile_intent, intent_acl_name
from netgpt.intents.parser import NameTable, parse_intent
from netgpt.intents.withdraw import DeployedPlan, withdrawal_change_set
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit


def deploy(text, topo, configs):
    intent = parse_intent(text, NameTable.from_topology(topo))
    change = compile_intent(intent, topo, configs)
    after = change.applied_to(configs)
    plan = DeployedPlan(before=dict(configs), after=change.candidates())
    return intent, after, plan


def test_withdrawing_a_block_removes_its_acl_and_attachment_only():
    topo = build_topology("campus")
    day0 = {d: topo.initial_config(d) for d in topo.devices}
    first, after_first, plan1 = deploy("block telnet from guests to servers", topo, day0)
    second, after_both, _ = deploy("block ssh from guests to servers", topo, after_first)
    change = withdrawal_change_set(first.id, [plan1], after_both)
    guests = topo.groups["guests"].device
    assert change.devices == (guests,)
    cfg = change.candidates()[guests]
    names = [a.name for a in cfg.acls]
    assert intent_acl_name(first.id) not in names and intent_acl_name(second.id) in names
    assert intent_acl_name(first.id) not in cfg.interface("eth0").acl_ingress


def test_withdrawing_routes_and_costs_restores_them_unless_changed_since():
    topo = build_topology("campus")
    day0 = {d: topo.initial_config(d) for d in topo.devices}
    waypoint, after, plan = deploy(
        "traffic from engineering to servers must go through core2", topo, day0
    )
    assert any(after[d] != day0[d] for d in topo.devices)
    change = withdrawal_change_set(waypoint.id, [plan], after)
    assert change.applied_to(after) == day0
    # someone else changed one of those routes since: it is kept
    touched = next(d for d in change.devices if after[d].static_routes)
    mine = after[touched].static_routes[0]
    theirs = StaticRoute(prefix=mine.prefix, discard=True)
    edited = dict(after)
    edited[touched] = after[touched].model_copy(
        update={"static_routes": (theirs, *after[touched].static_routes[1:])}
    )
    kept = withdrawal_change_set(waypoint.id, [plan], edited).applied_to(edited)
    assert theirs in kept[touched].static_routes


def test_nothing_to_withdraw_is_an_empty_change_set():
    topo = build_topology("linear,3")
    day0 = {d: topo.initial_config(d) for d in topo.devices}
    assert withdrawal_change_set("int-none", [], day0).changes == ()


def test_withdrawing_a_cap_removes_its_class_policer_and_keeps_another_intents():
    topo = build_topology("campus")
    day0 = {d: topo.initial_config(d) for d in topo.devices}
    first, after_first, plan1 = deploy("cap ssh from guests at 20 Mbps", topo, day0)
    second, after_both, _ = deploy("cap telnet from guests at 5 Mbps", topo, after_first)
    guests = topo.groups["guests"].device
    assert len(after_both[guests].interface("eth0").class_policers) == 2
    change = withdrawal_change_set(first.id, [plan1], after_both)
    (left,) = change.applied_to(after_both)[guests].interface("eth0").class_policers
    assert left.name.startswith(intent_acl_name(second.id)) and left.rate_mbps == 5
