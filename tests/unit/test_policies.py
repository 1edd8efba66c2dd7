from datetime import UTC, datetime
from pathlib import Path

import pytest

from netgpt.device_config import (
    Acl,
    AclAction,
    AclRule,
    DeviceConfig,
    RateLimit,
    StaticRoute,
)
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    AccessAction,
    AccessExpectation,
    GroupEndpoint,
    Intent,
    IntentScope,
    LoadBalancingExpectation,
    TrafficSelector,
)
from netgpt.intents.plan import ChangeSet, DeviceChange, VerdictSource
from netgpt.policies.base import ActionKind, PolicyEngine, PolicySet
from netgpt.policies.guardrails import (
    SCOPE_RULE_ID,
    Guardrails,
    change_actions,
    default_policies,
    evaluate_change,
    load_policies,
    needs_approval,
)
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)  # a Wednesday
CAMPUS = build_topology("campus")
ABILENE = build_topology("abilene")


def block_intent(**kw) -> Intent:
    return Intent(
        id=kw.pop("id", "int-block"),
        text="block guests from servers",
        expectations=(
            AccessExpectation(
                action=AccessAction.BLOCK,
                traffic=TrafficSelector(
                    source=GroupEndpoint(name="guests"), destination=GroupEndpoint(name="servers")
                ),
            ),
        ),
        **kw,
    )


def current(topology=CAMPUS) -> dict[str, DeviceConfig]:
    return {d: topology.initial_config(d) for d in topology.devices}


def with_acl(cfg: DeviceConfig, rule: AclRule, interface: str = "eth0") -> DeviceConfig:
    acl = Acl(name="intent-acl", rules=(rule,))
    itfs = tuple(
        i.model_copy(update={"acl_ingress": ("intent-acl",)}) if i.name == interface else i
        for i in cfg.interfaces
    )
    return DeviceConfig(
        hostname=cfg.hostname,
        interfaces=itfs,
        acls=(*cfg.acls, acl),
        static_routes=cfg.static_routes,
    )


def disabled(cfg: DeviceConfig, interface: str) -> DeviceConfig:
    return cfg.with_interface(cfg.interface(interface).model_copy(update={"enabled": False}))


def change(*pairs: tuple[str, DeviceConfig]) -> ChangeSet:
    return ChangeSet("int-block", tuple(DeviceChange(d, c) for d, c in pairs))


def failed(verdicts):
    return {v.rule: v for v in verdicts if not v.passed}


GUEST_BLOCK = AclRule(
    name="r1",
    action=AclAction.DROP,
    source_prefix="10.40.0.0/16",
    destination_prefix="10.100.0.0/16",
)


# ------------------------------------------------------------------------------------------
# loading


def test_default_policies_load_and_have_unique_ids():
    p = default_policies()
    ids = [r.id for r in p.rules()]
    assert len(ids) == len(set(ids))
    assert "access-interface-up" in ids and "no-controller-block" in ids
    assert isinstance(Guardrails(p), PolicyEngine)


def test_shipped_file_is_package_data():
    text = Path("pyproject.toml").read_text()
    assert "policies/*.yaml" in text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_load_valid_file(tmp_path):
    p = load_policies(write(tmp_path, """
version: 1
protected_devices:
  - {id: frozen-core, devices: ["core*"]}
max_devices_per_change: {max_devices: 3}
change_windows:
  windows: [{days: [mon, tue], start: "08:00", end: "18:00", timezone: Europe/London}]
  outside: approve
"""))
    assert p.protected_devices[0].devices == ("core*",)
    assert p.max_devices_per_change is not None and p.max_devices_per_change.max_devices == 3
    assert p.change_windows.outside == "approve"


def test_empty_file_is_an_empty_policy(tmp_path):
    assert load_policies(write(tmp_path, "")) == PolicySet()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("protected_devices:\n  - {id: a, devices: [x]}\nbogus: 1\n", ["line 3", "bogus"]),
        ("protected_devices:\n  - id: a\n    devices: [x]\n    colour: red\n",
         ["line 4", "protected_devices[0].colour"]),
        ("max_devices_per_change:\n  max_devices: lots\n", ["line 2", "'lots'"]),
        ("protected_devices:\n  - {id: a, devices: [\"core[\"]}\n", ["unbalanced", "core["]),
        ("protected_devices:\n  - {id: a, devices: [\"co re\"]}\n", ["'co re'"]),
        ("forbidden_actions:\n  - {id: f, action: reboot}\n", ["line 2", "'reboot'"]),
        ("controller:\n  prefixes: [10.0.0.300/8]\n", ["controller.prefixes[0]", "IPv4"]),
        ("change_windows:\n  windows:\n    - {start: '08:00', end: '09:00', timezone: Mars/Base}\n",
         ["Mars/Base"]),
        ("change_windows:\n  outside: maybe\n", ["change_windows.outside", "'maybe'"]),
        ("approval:\n  - {id: a}\n", ["no condition"]),
        ("approval:\n  - {id: a, intent_kinds: [teleport]}\n", ["teleport"]),
        ("protected_devices:\n  - {id: x, devices: [a]}\nforbidden_actions:\n"
         "  - {id: x, action: isolate_device}\n", ["unique", "'x'"]),
        ("protected_devices:\n  - {id: 'bad id!', devices: [a]}\n", ["bad id!"]),
        ("version: 2\n", ["version"]),
        ("- a\n- b\n", ["mapping"]),
        ("protected_devices: [\n", ["not valid YAML", "line"]),
    ],
)
def test_bad_files_are_named(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policies(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_policies(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------------------
# actions


def test_change_actions_cover_every_kind():
    old = CAMPUS.initial_config("acc6").model_copy(
        update={"static_routes": (StaticRoute(prefix="10.99.0.0/16", discard=True),)}
    )
    new = with_acl(old, GUEST_BLOCK)
    new = disabled(new, "eth1")
    new = new.with_interface(new.interface("eth2").model_copy(
        update={"igp_cost": 7, "rate_limit": RateLimit(egress_mbps=50)}))
    new = new.model_copy(update={"static_routes": (
        StaticRoute(prefix="10.98.0.0/16", discard=True),)})
    kinds = {a.kind for a in change_actions("acc6", old, new)}
    assert kinds == {ActionKind.ACL_ADDED, ActionKind.ACL_ATTACHED, ActionKind.INTERFACE_DISABLED,
                     ActionKind.IGP_COST_CHANGED, ActionKind.RATE_LIMIT_CHANGED,
                     ActionKind.ROUTE_ADDED, ActionKind.ROUTE_REMOVED}
    back = {a.kind for a in change_actions("acc6", new, old)}
    assert {ActionKind.ACL_REMOVED, ActionKind.ACL_DETACHED, ActionKind.INTERFACE_ENABLED} <= back
    assert change_actions("acc6", old, old) == []


def test_change_actions_from_nothing():
    cfg = CAMPUS.initial_config("acc1")
    kinds = [a.kind for a in change_actions("acc1", None, cfg)]
    assert kinds.count(ActionKind.INTERFACE_ADDED) == len(cfg.interfaces)


# ------------------------------------------------------------------------------------------
# evaluate_change


def test_plain_block_passes_every_default_rule():
    cur = current()
    verdicts = evaluate_change(default_policies(), block_intent(),
                               change(("acc6", with_acl(cur["acc6"], GUEST_BLOCK))), cur, now=NOW)
    assert verdicts and all(v.passed for v in verdicts)
    assert all(v.source is VerdictSource.POLICY for v in verdicts)
    assert len({v.rule for v in verdicts}) == len(verdicts)


@pytest.mark.parametrize("interface", ["eth0"])
def test_disabling_the_access_interface_is_refused(interface):
    cur = current()
    bad = failed(evaluate_change(default_policies(), block_intent(),
                                 change(("acc6", disabled(cur["acc6"], interface))), cur, now=NOW))
    assert "access-interface-up" in bad
    assert "acc6 interface eth0" in bad["access-interface-up"].evidence


def test_disabling_a_link_interface_is_allowed_but_not_isolation():
    cur = current()
    one = disabled(cur["acc6"], "eth1")
    assert not failed(evaluate_change(default_policies(), block_intent(), change(("acc6", one)),
                                      cur, now=NOW))
    both = disabled(one, "eth2")
    bad = failed(evaluate_change(default_policies(), block_intent(), change(("acc6", both)),
                                 cur, now=NOW))
    assert set(bad) == {"no-device-isolation"}


def test_management_interface_pattern(tmp_path):
    p = load_policies(write(tmp_path, "protected_interfaces:\n"
                                      "  - {id: mgmt, device: 'acc*', interface: 'eth[12]'}\n"))
    cur = current()
    assert "mgmt" in failed(evaluate_change(p, block_intent(),
                                            change(("acc6", disabled(cur["acc6"], "eth2"))),
                                            cur, now=NOW))
    assert not failed(evaluate_change(p, block_intent(),
                                      change(("dist1", disabled(cur["dist1"], "eth2"))),
                                      cur, now=NOW))


def test_controller_traffic_block_is_refused():
    cur = current()
    deny_all = AclRule(name="deny", action=AclAction.DROP)
    bad = failed(evaluate_change(default_policies(), block_intent(),
                                 change(("acc6", with_acl(cur["acc6"], deny_all))), cur, now=NOW))
    assert "no-controller-block" in bad
    assert "ACL intent-acl rule deny" in bad["no-controller-block"].evidence
    to_ctl = AclRule(name="r", action=AclAction.REJECT, source_prefix="127.0.0.0/8",
                     destination_prefix="127.0.0.1/32")
    assert "no-controller-block" in failed(evaluate_change(
        default_policies(), block_intent(), change(("acc6", with_acl(cur["acc6"], to_ctl))),
        cur, now=NOW))
    allow = AclRule(name="ok", action=AclAction.ACCEPT)
    assert not failed(evaluate_change(
        default_policies(), block_intent(), change(("acc6", with_acl(cur["acc6"], allow))),
        cur, now=NOW))


def test_already_present_controller_rule_is_not_blamed_on_a_new_change():
    cur = current()
    deny_all = AclRule(name="deny", action=AclAction.DROP)
    cur["acc6"] = with_acl(cur["acc6"], deny_all)
    cand = cur["acc6"].with_interface(cur["acc6"].interface("eth1").model_copy(
        update={"igp_cost": 5}))
    assert not failed(evaluate_change(default_policies(), block_intent(),
                                      change(("acc6", cand)), cur, now=NOW))


def test_route_rules():
    cur = current(ABILENE)
    routed = cur["CHINng"].model_copy(update={"static_routes": (
        StaticRoute(prefix="10.9.0.0/16", outgoing_interface="eth1"),)})
    cur["CHINng"] = routed
    wiped = routed.model_copy(update={"static_routes": ()})
    intent = block_intent()
    bad = failed(evaluate_change(default_policies(), intent, change(("CHINng", wiped)), cur,
                                 now=NOW))
    assert set(bad) == {"no-route-wipe"}
    assert "10.9.0.0/16" in bad["no-route-wipe"].evidence
    for prefix in ("0.0.0.0/0", "127.0.0.0/16"):
        null = routed.model_copy(update={"static_routes": (
            *routed.static_routes, StaticRoute(prefix=prefix, discard=True))})
        bad = failed(evaluate_change(default_policies(), intent, change(("CHINng", null)), cur,
                                     now=NOW))
        assert set(bad) == {"no-default-blackhole"}, prefix
    ok = routed.model_copy(update={"static_routes": (
        *routed.static_routes, StaticRoute(prefix="10.5.0.0/16", discard=True))})
    assert not failed(evaluate_change(default_policies(), intent, change(("CHINng", ok)), cur,
                                      now=NOW))


def test_removing_an_interface_is_refused():
    cur = current(ABILENE)
    cfg = cur["ATLAM5"]
    gone = cfg.model_copy(update={"interfaces": tuple(i for i in cfg.interfaces
                                                      if i.name != "eth1")})
    bad = failed(evaluate_change(default_policies(), block_intent(), change(("ATLAM5", gone)),
                                 cur, now=NOW))
    assert "no-interface-removal" in bad


def test_forbidden_action_limited_to_devices(tmp_path):
    text = "forbidden_actions:\n  - {id: iso, action: isolate_device, devices: ['core*']}\n"
    p = load_policies(write(tmp_path, text))
    cur = current()
    both = disabled(disabled(cur["acc6"], "eth1"), "eth2")
    assert not failed(evaluate_change(p, block_intent(), change(("acc6", both)), cur, now=NOW))


def test_protected_devices(tmp_path):
    p = load_policies(write(tmp_path, "protected_devices:\n  - {id: frozen, devices: ['core*']}\n"))
    cur = current()
    cand = with_acl(cur["core1"], GUEST_BLOCK, "eth1")
    bad = failed(evaluate_change(p, block_intent(), change(("core1", cand)), cur, now=NOW))
    assert "core1 is protected" in bad["frozen"].evidence
    # an unchanged protected device in the change set is fine
    assert not failed(evaluate_change(p, block_intent(), change(("core1", cur["core1"])), cur,
                                      now=NOW))


def test_max_devices_per_change(tmp_path):
    p = load_policies(write(tmp_path, "max_devices_per_change: {id: small, max_devices: 2}\n"))
    cur = current()
    pairs = [(d, with_acl(cur[d], GUEST_BLOCK)) for d in ("acc1", "acc2", "acc3")]
    bad = failed(evaluate_change(p, block_intent(), change(*pairs), cur, now=NOW))
    assert "3 devices" in bad["small"].evidence
    assert not failed(evaluate_change(p, block_intent(), change(*pairs[:2]), cur, now=NOW))


WINDOW = """
change_windows:
  id: office-hours
  windows: [{days: [mon, tue, wed, thu, fri], start: "08:00", end: "18:00",
             timezone: Europe/London}]
  outside: {outside}
"""


@pytest.mark.parametrize(("now", "inside"), [
    (datetime(2025, 3, 5, 10, 0, tzinfo=UTC), True),
    (datetime(2025, 3, 5, 20, 0, tzinfo=UTC), False),
    (datetime(2025, 3, 8, 10, 0, tzinfo=UTC), False),  # Saturday
    (datetime(2025, 7, 2, 7, 30, tzinfo=UTC), True),  # 08:30 in London summer time
])
def test_change_window_refuse(tmp_path, now, inside):
    p = load_policies(write(tmp_path, WINDOW.replace("{outside}", "refuse")))
    cur = current()
    cs = change(("acc6", with_acl(cur["acc6"], GUEST_BLOCK)))
    bad = failed(evaluate_change(p, block_intent(), cs, cur, now=now))
    assert ("office-hours" not in bad) is inside
    assert needs_approval(p, block_intent(), cs, now=now) is None


def test_change_window_approve(tmp_path):
    p = load_policies(write(tmp_path, WINDOW.replace("{outside}", "approve")))
    cur = current()
    cs = change(("acc6", with_acl(cur["acc6"], GUEST_BLOCK)))
    night = datetime(2025, 3, 5, 23, 0, tzinfo=UTC)
    assert not failed(evaluate_change(p, block_intent(), cs, cur, now=night))
    verdict = needs_approval(p, block_intent(), cs, now=night)
    assert verdict is not None and verdict.rule == "office-hours"
    assert verdict.source is VerdictSource.APPROVAL and not verdict.passed
    assert needs_approval(p, block_intent(), cs, now=NOW) is None


def test_naive_now_is_refused():
    with pytest.raises(ConfigError, match="timezone"):
        evaluate_change(default_policies(), block_intent(), change(), current(),
                        now=datetime(2025, 1, 1))


def test_scope_rule():
    cur = current()
    cs = change(("acc6", with_acl(cur["acc6"], GUEST_BLOCK)))
    scoped = block_intent(scope=IntentScope(devices=("acc1",)))
    bad = failed(evaluate_change(default_policies(), scoped, cs, cur, now=NOW))
    assert "acc6" in bad[SCOPE_RULE_ID].evidence
    south = block_intent(scope=IntentScope(sites=("south",)))
    assert SCOPE_RULE_ID in failed(evaluate_change(default_policies(), south, cs, cur, now=NOW))
    assert not failed(evaluate_change(default_policies(), south, cs, cur, now=NOW,
                                      topology=CAMPUS))
    north = block_intent(scope=IntentScope(sites=("north",)))
    engine = Guardrails(default_policies(), topology=CAMPUS)
    assert SCOPE_RULE_ID in failed(engine.evaluate_change(north, cs, cur, now=NOW))


# ------------------------------------------------------------------------------------------
# approval


APPROVAL = """
approval:
  - {id: kinds, intent_kinds: [load_balancing]}
  - {id: big, min_devices: 3}
  - {id: core, devices: ['core*']}
  - {id: both, intent_kinds: [access], devices: ['dist*']}
"""


def test_approval_rules(tmp_path):
    p = load_policies(write(tmp_path, APPROVAL))
    cur = current()
    small = change(("acc6", with_acl(cur["acc6"], GUEST_BLOCK)))
    assert needs_approval(p, block_intent(), small, now=NOW) is None
    lb = Intent(id="int-lb", expectations=(LoadBalancingExpectation(
        source=GroupEndpoint(name="guests"), destination=GroupEndpoint(name="servers"),
        paths=2),))
    v = needs_approval(p, lb, small, now=NOW)
    assert v is not None and v.rule == "kinds" and "load_balancing" in v.evidence
    three = change(*[(d, with_acl(cur[d], GUEST_BLOCK)) for d in ("acc1", "acc2", "acc3")])
    v = needs_approval(p, block_intent(), three, now=NOW)
    assert v is not None and v.rule == "big"
    # unchanged devices do not count when the current configs are given
    same = change(*[(d, cur[d]) for d in ("acc1", "acc2", "acc3")])
    assert needs_approval(p, block_intent(), same, now=NOW, current_configs=cur) is None
    core = change(("core1", with_acl(cur["core1"], GUEST_BLOCK)))
    v = Guardrails(p).needs_approval(block_intent(), core, now=NOW)
    assert v is not None and v.rule == "core"
    dist = change(("dist1", with_acl(cur["dist1"], GUEST_BLOCK)))
    v = needs_approval(p, block_intent(), dist, now=NOW)
    assert v is not None and v.rule == "both"
    assert needs_approval(p, lb.model_copy(update={"id": "x"}),
                          change(("acc1", with_acl(cur["acc1"], GUEST_BLOCK))), now=NOW)


def test_default_approval_for_large_changes():
    cur = current()
    pairs = [(d, with_acl(cur[d], GUEST_BLOCK)) for d in CAMPUS.devices[:8]]
    v = needs_approval(default_policies(), block_intent(), change(*pairs), now=NOW)
    assert v is not None and "approve-large-change" in v.rule


def test_no_override_in_the_api():
    import inspect

    for fn in (evaluate_change, needs_approval):
        assert not any("override" in p or "skip" in p or "force" in p
                       for p in inspect.signature(fn).parameters)
