"""The lab's layout, worked out without root: addresses, capacities, FRR and snmpd configs."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from netgpt.cli import app
from netgpt.errors import ConfigError
from netgpt.inventory import SnmpCredentials
from netgpt.sim_networks.lab_plan import (
    LabSettings,
    plan_lab,
    render_ospfd_conf,
    render_snmpd_conf,
)
from netgpt.sim_networks.topology import build_topology


def test_abilene_plan_has_a_router_and_host_per_site_on_scaled_links() -> None:
    topo = build_topology("abilene")
    plan = plan_lab(topo)
    assert sorted(plan.routers) == topo.devices
    assert len(plan.hosts) == 12 and len(plan.links) == len(list(topo.links()))
    mgmt = {r.mgmt_ip for r in plan.routers.values()}
    assert len(mgmt) == 12 and plan.nms_address == "192.168.254.254/24"
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("192.168.254.0/24") for a in mgmt)
    # OC-192 (9,920 Mbit/s) and OC-48 (2,480 Mbit/s) links, times 0.01
    assert {lk.capacity_mbps for lk in plan.links} == {99.2, 24.8}
    nyc = plan.host_of("NYCMng")
    assert nyc.addresses == ("10.9.0.2/16",) and nyc.gateway == "10.9.0.1"
    assert plan.routers["NYCMng"].access_addresses == ("10.9.0.1/16",)


def test_campus_devices_without_prefixes_get_no_host_and_groups_share_one() -> None:
    plan = plan_lab(build_topology("campus"))
    assert "core1" not in plan.by_device_host
    with pytest.raises(ConfigError, match=r"core1.*no end host"):
        plan.host_of("core1")
    assert plan.host_of("acc4").addresses == ("10.20.0.2/16", "10.21.0.2/16")


def test_ospfd_conf_runs_area_0_on_links_with_fast_timers_and_topology_costs() -> None:
    topo = build_topology("abilene")
    plan = plan_lab(topo)
    router = plan.routers["KSCYng"]
    text = render_ospfd_conf(router, plan.settings)
    assert f"ospf router-id {router.router_id}" in text
    assert "passive-interface eth0" in text
    for itf, addr in router.link_addresses.items():
        assert f" network {ipaddress.IPv4Interface(addr).network} area 0" in text
        block = text.split(f"interface {itf}\n")[1].split("exit")[0]
        assert " ip ospf hello-interval 1" in block and " ip ospf dead-interval 4" in block
        assert f" ip ospf cost {router.igp_costs[itf]}" in block
    assert "192.168.254" not in text.replace(router.router_id, "")  # management stays out


def test_snmpd_conf_is_authpriv_only_unless_v2c_is_chosen() -> None:
    router = plan_lab(build_topology("linear,2")).routers["r1"]
    v3 = SnmpCredentials(auth_key=SecretStr("a" * 12), priv_key=SecretStr("p" * 12),
                         community=SecretStr("ro-x"))
    text = render_snmpd_conf(router, v3)
    assert f"agentAddress udp:{router.mgmt_ip}:161" in text
    assert 'createUser netgpt SHA "aaaaaaaaaaaa" AES "pppppppppppp"' in text
    assert "rwuser netgpt priv" in text and "community" not in text
    v2 = v3.model_copy(update={"version": "2c"})
    assert "rocommunity ro-x default" in render_snmpd_conf(router, v2)
    with pytest.raises(ConfigError, match="at least 8 characters"):
        render_snmpd_conf(router, v3.model_copy(update={"priv_key": SecretStr("short")}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mgmt_prefix": "192.168.254.0/30"}, "too few addresses; use a /29"),
        ({"mgmt_prefix": "banana"}, "'banana' is not an IPv4 prefix"),
        ({"capacity_scale": 0}, "capacity scale 0 must be in"),
        ({"ospf_hello_s": 5, "ospf_dead_s": 4}, "need 1 <= hello < dead"),
    ],
)
def test_bad_settings_name_the_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LabSettings(**kwargs)  # type: ignore[arg-type]


def test_a_topology_too_big_for_the_management_prefix_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"management prefix 192\.168\.254\.0/28 holds 13"):
        plan_lab(build_topology("linear,20"), LabSettings(mgmt_prefix="192.168.254.0/28"))


def test_lab_up_with_a_bad_prefix_says_so_without_a_traceback(tmp_path: object) -> None:
    result = CliRunner().invoke(
        app, ["lab", "up", "--mgmt-prefix", "10.0.0.0/33", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "'10.0.0.0/33' is not an IPv4 prefix" in result.output
    assert "Traceback" not in result.output
