"""Rendering of device configs into nft, tc, vtysh and ip commands for the Linux lab backend.

Unit tests check the rendered text; the ``lab`` tests load it into a throwaway network namespace
(root, nft, tc and ip needed) and, for FRR, check it with ``vtysh --dryrun``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netgpt.device_config import (
    Acl,
    AclAction,
    AclRule,
    ClassPolicer,
    DeviceConfig,
    InterfaceConfig,
    IPProtocol,
    PortRange,
    RateLimit,
    StaticRoute,
    TimeWindow,
    TrafficMatch,
)
from netgpt.errors import ConfigValidationError, NetworkRuntimeError
from netgpt.sim_networks.linux_render import (
    TcCommand,
    frr_config_commands,
    ifb_device,
    ip_link_commands,
    next_time_range_change,
    parse_ip_link_json,
    render_nftables,
    render_tc,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday


def rule(name: str, action: AclAction = AclAction.DROP, **kw: object) -> AclRule:
    return AclRule(name=name, action=action, **kw)


def config(
    *,
    acls: tuple[Acl, ...] = (),
    interfaces: tuple[InterfaceConfig, ...] = (),
    routes: tuple[StaticRoute, ...] = (),
) -> DeviceConfig:
    return DeviceConfig(hostname="r1", interfaces=interfaces, acls=acls, static_routes=routes)


def chain(script: str, name: str) -> list[str]:
    """The rule lines of chain ``name`` in a rendered script, comments left out."""
    lines = script.splitlines()
    start = lines.index(f"\tchain {name} {{")
    end = lines.index("\t}", start)
    return [ln.strip() for ln in lines[start + 1 : end]
            if not ln.strip().startswith(("#", "type filter hook"))]


def two_acl_config() -> DeviceConfig:
    web = Acl(name="web", rules=(
        rule("allow-admin", AclAction.ACCEPT, source_prefix="10.9.0.0/16"),
        rule("block-http", protocol=IPProtocol.TCP,
             destination_ports=PortRange(lower=80, upper=90)),
    ))
    dns = Acl(name="dns", rules=(
        rule("no-dns", AclAction.REJECT, protocol=IPProtocol.UDP,
             source_ports=PortRange(lower=53, upper=53)),
        rule("no-ssh", AclAction.REJECT, protocol=IPProtocol.TCP,
             destination_prefix="10.1.2.0/24", destination_ports=PortRange(lower=22, upper=22)),
        rule("deny-rest", AclAction.REJECT),
    ))
    return config(acls=(web, dns), interfaces=(
        InterfaceConfig(name="eth1", acl_ingress=("web", "dns")),
        InterfaceConfig(name="eth2", acl_egress=("dns",)),
        InterfaceConfig(name="eth3"),
    ))


# ---- nftables --------------------------------------------------------------------------------


@pytest.mark.unit
class TestNftables:
    def test_acls_in_one_direction_are_one_ordered_list(self) -> None:
        rules = chain(render_nftables(two_acl_config(), now=NOW), "in_eth1")
        assert rules == [
            'ip saddr 10.9.0.0/16 counter return comment "web/allow-admin"',
            'meta l4proto tcp tcp dport 80-90 counter drop comment "web/block-http"',
            'meta l4proto udp udp sport 53 counter reject with icmpx admin-prohibited '
            'comment "dns/no-dns"',
            'ip daddr 10.1.2.0/24 meta l4proto tcp tcp dport 22 counter reject with tcp reset '
            'comment "dns/no-ssh"',
            'meta l4proto tcp counter reject with tcp reset comment "dns/deny-rest"',
            'counter reject with icmpx admin-prohibited comment "dns/deny-rest"',
        ]

    def test_accept_is_return_so_egress_still_applies(self) -> None:
        script = render_nftables(two_acl_config(), now=NOW)
        assert " accept" not in "\n".join(chain(script, "in_eth1") + chain(script, "out_eth2"))
        forward = chain(script, "forward")
        assert forward == [
            'meta nfproto ipv4 iifname "eth1" jump in_eth1',
            'meta nfproto ipv4 oifname "eth2" jump out_eth2',
        ]

    def test_base_chains_hooks_and_ospf_exemption(self) -> None:
        script = render_nftables(two_acl_config(), now=NOW)
        lines = script.splitlines()
        assert lines[2:5] == ["add table inet netgpt", "delete table inet netgpt",
                              "table inet netgpt {"]
        for name in ("forward", "input", "output"):
            head = lines[lines.index(f"\tchain {name} {{") + 1].strip()
            assert head == f"type filter hook {name} priority filter; policy accept;"
        assert chain(script, "input") == [
            'meta nfproto ipv4 ip protocol 89 accept comment "OSPF is exempt from ACLs"',
            'meta nfproto ipv4 iifname "eth1" jump in_eth1',
        ]
        assert chain(script, "output")[1:] == ['meta nfproto ipv4 oifname "eth2" jump out_eth2']
        assert "eth3" not in script  # no ACLs, no chain

    def test_any_prefix_is_not_rendered_and_icmp_matches_protocol(self) -> None:
        acl = Acl(name="a", rules=(rule("icmp", protocol=IPProtocol.ICMP,
                                        source_prefix="0.0.0.0/0",
                                        destination_prefix="192.0.2.1/32"),))
        cfg = config(acls=(acl,), interfaces=(InterfaceConfig(name="eth1", acl_egress=("a",)),))
        assert chain(render_nftables(cfg, now=NOW), "out_eth1") == [
            'ip daddr 192.0.2.1/32 meta l4proto icmp counter drop comment "a/icmp"']

    def test_table_name_and_long_comment(self) -> None:
        long_acl, long_rule = "a" * 64, "r" * 64
        cfg = config(acls=(Acl(name=long_acl, rules=(rule(long_rule),)),),
                     interfaces=(InterfaceConfig(name="eth1", acl_ingress=(long_acl,)),))
        script = render_nftables(cfg, table="lab_acl", now=NOW)
        assert "table inet lab_acl {" in script
        assert chain(script, "in_eth1") == [f'counter drop comment "{long_rule}"']

    @pytest.mark.parametrize("table", ["", "1abc", "net gpt", "a;flush ruleset", "x" * 33])
    def test_bad_table_name_is_refused(self, table: str) -> None:
        with pytest.raises(ConfigValidationError, match="table name"):
            render_nftables(two_acl_config(), table=table, now=NOW)

    @pytest.mark.parametrize("name", ["eth1/0", "ge-0/0/1:2", "a-very-long-interface-name"])
    def test_interface_linux_cannot_have_is_refused(self, name: str) -> None:
        cfg = config(acls=(Acl(name="a", rules=(rule("r"),)),),
                     interfaces=(InterfaceConfig(name=name, acl_ingress=("a",)),))
        with pytest.raises(ConfigValidationError, match=re.escape(repr(name))):
            render_nftables(cfg, now=NOW)

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ConfigValidationError, match="time zone"):
            render_nftables(two_acl_config(), now=datetime(2026, 1, 1))

    def test_no_acls_gives_empty_chains_with_accept_policy(self) -> None:
        script = render_nftables(config(interfaces=(InterfaceConfig(name="eth1"),)), now=NOW)
        assert chain(script, "forward") == []
        assert "chain in_" not in script and "chain out_" not in script


def windowed_config(window: TimeWindow) -> DeviceConfig:
    acl = Acl(name="night", rules=(
        rule("block-backup", protocol=IPProtocol.TCP, destination_ports=PortRange(lower=873,
                                                                                  upper=873),
             time_range=window),
        rule("always", AclAction.ACCEPT, protocol=IPProtocol.ICMP),
    ))
    return config(acls=(acl,), interfaces=(InterfaceConfig(name="eth1", acl_ingress=("night",)),))


@pytest.mark.unit
class TestTimeRanges:
    # Friday 22:00 to 02:00 in Berlin: the window belongs to Friday, so it covers Saturday
    # 00:00-02:00 but not Sunday's early hours (Saturday is not among its days).
    WINDOW = TimeWindow(days=("fri",), start=time(22), end=time(2), timezone="Europe/Berlin")
    BERLIN = ZoneInfo("Europe/Berlin")

    def rendered(self, moment: datetime) -> list[str]:
        return chain(render_nftables(windowed_config(self.WINDOW), now=moment), "in_eth1")

    def test_rule_present_only_inside_its_window(self) -> None:
        inside = datetime(2026, 11, 21, 1, 30, tzinfo=self.BERLIN)  # Saturday, after midnight
        outside = datetime(2026, 11, 22, 1, 30, tzinfo=self.BERLIN)  # Sunday, same hour
        assert self.rendered(inside)[0].endswith('drop comment "night/block-backup"')
        assert len(self.rendered(inside)) == 2
        assert self.rendered(outside) == [
            'meta l4proto icmp counter return comment "night/always"']

    def test_inactive_rule_is_listed_as_comment(self) -> None:
        script = render_nftables(windowed_config(self.WINDOW), now=NOW)
        assert "# night/block-backup inactive now, time range fri 22:00-02:00 Europe/Berlin" in (
            script)

    def test_window_read_in_its_own_zone_not_utc(self) -> None:
        # 21:30 UTC on Friday is 22:30 in Berlin (CET, UTC+1): inside.
        assert len(self.rendered(datetime(2026, 11, 20, 21, 30, tzinfo=UTC))) == 2
        # 22:30 UTC on Saturday is 23:30 Saturday in Berlin: outside.
        assert len(self.rendered(datetime(2026, 11, 21, 22, 30, tzinfo=UTC))) == 1

    def test_next_change_is_the_window_edge(self) -> None:
        cfg = windowed_config(self.WINDOW)
        opens = next_time_range_change(cfg, now=NOW)
        assert opens == datetime(2026, 11, 20, 22, 0, tzinfo=self.BERLIN)
        assert opens is not None
        closes = next_time_range_change(cfg, now=opens + timedelta(minutes=1))
        assert closes == datetime(2026, 11, 21, 2, 0, tzinfo=self.BERLIN)
        assert "# render and load again at 2026-11-20T22:00:00+01:00" in render_nftables(
            cfg, now=NOW)

    def test_no_time_range_means_no_reload(self) -> None:
        assert next_time_range_change(two_acl_config(), now=NOW) is None
        assert "again at the next config change" in render_nftables(two_acl_config(), now=NOW)

    def test_unattached_acls_do_not_schedule_reloads(self) -> None:
        cfg = windowed_config(self.WINDOW).with_interface(InterfaceConfig(name="eth1"))
        assert next_time_range_change(cfg, now=NOW) is None


# ---- tc --------------------------------------------------------------------------------------


def argv_of(cmds: list[TcCommand], *prefix: str) -> list[tuple[str, ...]]:
    return [c.argv for c in cmds if c.argv[: len(prefix)] == prefix]


def opt(argv: tuple[str, ...], name: str) -> str:
    return argv[argv.index(name) + 1]


def htb_classes(cmds: list[TcCommand], device: str) -> dict[str, tuple[str, ...]]:
    return {opt(a, "classid"): a for a in argv_of(cmds, "tc", "class", "add", "dev", device)}


def policer(name: str, mbps: float, *matches: TrafficMatch,
            direction: str = "egress") -> ClassPolicer:
    return ClassPolicer(name=name, direction=direction, rate_mbps=mbps,
                        matches=matches)


VOICE = policer("voice", 5, TrafficMatch(protocol=IPProtocol.UDP,
                                         destination_ports=PortRange(lower=5060, upper=5061)))
BULK = policer("bulk", 30, TrafficMatch(source_prefix="10.2.0.0/16"),
               TrafficMatch(protocol=IPProtocol.TCP, destination_prefix="10.3.0.0/16"))


@pytest.mark.unit
class TestTc:
    def test_cleanup_first_and_marked_ignorable(self) -> None:
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=None, class_policers=())
        assert [c.argv for c in cmds[:3]] == [
            ("tc", "qdisc", "del", "dev", "eth1", "root"),
            ("tc", "qdisc", "del", "dev", "eth1", "ingress"),
            ("ip", "link", "del", "dev", "ifb-eth1"),
        ]
        assert all(c.ignore_errors for c in cmds[:3])
        assert not any(c.ignore_errors for c in cmds[3:])

    def test_nothing_to_enforce_means_only_cleanup(self) -> None:
        cmds = render_tc("eth1", capacity_mbps=None, rate_limit=RateLimit(), class_policers=())
        assert len(cmds) == 3 and all(c.ignore_errors for c in cmds)

    @pytest.mark.parametrize(("capacity", "limit", "expected"), [
        (100, 40, "40000kbit"), (100, None, "100000kbit"), (None, 7.5, "7500kbit"),
        (10, 40, "10000kbit"),
    ])
    def test_egress_rate_is_min_of_capacity_and_limit(
        self, capacity: float | None, limit: float | None, expected: str
    ) -> None:
        cmds = render_tc("eth1", capacity_mbps=capacity,
                         rate_limit=RateLimit(egress_mbps=limit), class_policers=())
        assert argv_of(cmds, "tc", "qdisc", "add", "dev", "eth1", "root") == [
            ("tc", "qdisc", "add", "dev", "eth1", "root", "handle", "1:", "htb", "default", "2")]
        classes = htb_classes(cmds, "eth1")
        assert opt(classes["1:1"], "rate") == opt(classes["1:1"], "ceil") == expected
        assert opt(classes["1:2"], "ceil") == expected  # unclassified traffic: up to the cap
        assert not argv_of(cmds, "tc", "qdisc", "add", "dev", "eth1", "handle")  # no ingress

    def test_burst_and_quantum_at_100_mbit(self) -> None:
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=None, class_policers=())
        parent = htb_classes(cmds, "eth1")["1:1"]
        assert opt(parent, "burst") == opt(parent, "cburst") == "125000b"  # 10 ms
        assert opt(parent, "quantum") == "125000"
        small = htb_classes(render_tc("eth1", capacity_mbps=1, rate_limit=None,
                                      class_policers=()), "eth1")["1:1"]
        assert opt(small, "burst") == f"{80 * 1024}b"  # never below one GSO packet
        assert opt(small, "quantum") == "1514"

    def test_class_per_policer_capped_at_parent_in_order(self) -> None:
        big = policer("big", 500, TrafficMatch(protocol=IPProtocol.ICMP))
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=RateLimit(egress_mbps=50),
                         class_policers=(VOICE, BULK, big))
        classes = htb_classes(cmds, "eth1")
        assert [opt(classes[c], "ceil") for c in ("1:10", "1:11", "1:12")] == [
            "5000kbit", "30000kbit", "50000kbit"]  # big: never above the parent
        # the assured rates never add up to more than the parent's
        total = sum(int(opt(classes[c], "rate").removesuffix("kbit"))
                    for c in ("1:2", "1:10", "1:11", "1:12"))
        assert total <= 50000
        filters = argv_of(cmds, "tc", "filter", "add", "dev", "eth1", "parent", "1:")
        order = [(int(opt(f, "prio")), opt(f, "flowid")) for f in filters]
        assert order == sorted(order)  # policer order is prio order: first match takes the flow
        assert [flow for _p, flow in order] == ["1:10", "1:11", "1:11", "1:12"]
        assert len({p for p, _f in order}) == len(order)

    def test_policers_within_the_cap_get_rate_equal_ceil(self) -> None:
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=None, class_policers=(VOICE, BULK))
        classes = htb_classes(cmds, "eth1")
        assert opt(classes["1:10"], "rate") == opt(classes["1:10"], "ceil") == "5000kbit"
        assert opt(classes["1:11"], "rate") == opt(classes["1:11"], "ceil") == "30000kbit"
        assert opt(classes["1:2"], "rate") == "65000kbit"  # the rest, for unclassified traffic
        leaves = argv_of(cmds, "tc", "qdisc", "add", "dev", "eth1", "parent")
        assert {opt(q, "parent") for q in leaves} == {"1:2", "1:10", "1:11"}
        assert all("bfifo" in q for q in leaves)

    def test_u32_selectors(self) -> None:
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=None, class_policers=(VOICE, BULK))
        voice, bulk_src, bulk_tcp = (
            " ".join(f[f.index("u32") + 1 : f.index("flowid")])
            for f in argv_of(cmds, "tc", "filter", "add", "dev", "eth1"))
        # 5060-5061 is one aligned block of two ports; port matches need IHL 5, first fragment
        assert voice == ("match ip protocol 17 0xff match u8 0x05 0x0f at 0 "
                         "match u16 0x0000 0x1fff at 6 match ip dport 5060 0xfffe")
        assert bulk_src == "match ip src 10.2.0.0/16"
        assert bulk_tcp == "match ip protocol 6 0xff match ip dst 10.3.0.0/16"
        any_traffic = policer("all", 1, TrafficMatch())
        only = argv_of(render_tc("eth1", capacity_mbps=None, rate_limit=None,
                                 class_policers=(any_traffic,)), "tc", "filter")
        assert only[0][only[0].index("u32") + 1 :] == ("match", "u32", "0", "0", "flowid", "1:10")

    @given(st.integers(0, 65535), st.integers(0, 65535))
    def test_port_range_blocks_cover_exactly_the_range(self, a: int, b: int) -> None:
        low, high = min(a, b), max(a, b)
        p = policer("p", 1, TrafficMatch(protocol=IPProtocol.TCP,
                                         destination_ports=PortRange(lower=low, upper=high)))
        filters = argv_of(render_tc("eth1", capacity_mbps=10, rate_limit=None,
                                    class_policers=(p,)), "tc", "filter")
        blocks = []
        for f in filters:
            i = f.index("dport")
            value, mask = int(f[i + 1]), int(f[i + 2], 16)
            blocks.append((value, mask))
        sizes = [0x10000 - mask for _v, mask in blocks]
        assert sum(sizes) == high - low + 1  # no overlap, no gap...
        assert all(v & ~m & 0xFFFF == 0 for v, m in blocks)  # ...aligned...
        starts = [v for v, _m in blocks]
        assert starts[0] == low and starts == sorted(starts)  # ...and contiguous from low
        assert blocks[-1][0] + sizes[-1] - 1 == high
        assert len(blocks) <= 30

    def test_ingress_shaped_on_ifb_with_classes_first(self) -> None:
        web_in = policer("web-in", 20, TrafficMatch(protocol=IPProtocol.TCP,
                                                    destination_ports=PortRange(lower=443,
                                                                                upper=443)),
                         direction="ingress")
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=RateLimit(ingress_mbps=60),
                         class_policers=(VOICE, web_in))
        argvs = [c.argv for c in cmds]
        add_ifb = ("ip", "link", "add", "name", "ifb-eth1", "type", "ifb")
        assert argvs.index(add_ifb) < argvs.index(("ip", "link", "set", "dev", "ifb-eth1", "up"))
        ifb_classes = htb_classes(cmds, "ifb-eth1")
        assert opt(ifb_classes["1:1"], "rate") == "60000kbit"
        assert opt(ifb_classes["1:10"], "ceil") == "20000kbit"
        assert [opt(f, "flowid") for f in argv_of(cmds, "tc", "filter", "add", "dev",
                                                  "ifb-eth1")] == ["1:10"]
        # egress: capacity only, and only the egress policer
        assert opt(htb_classes(cmds, "eth1")["1:1"], "rate") == "100000kbit"
        assert [opt(f, "flowid") for f in argv_of(cmds, "tc", "filter", "add", "dev",
                                                  "eth1", "parent", "1:")] == ["1:10"]
        redirect = argv_of(cmds, "tc", "filter", "add", "dev", "eth1", "parent", "ffff:")
        assert redirect == [("tc", "filter", "add", "dev", "eth1", "parent", "ffff:", "protocol",
                             "ip", "prio", "1", "u32", "match", "u32", "0", "0", "action",
                             "mirred", "egress", "redirect", "dev", "ifb-eth1")]
        # the redirect comes last, once the IFB's tree is ready
        assert argvs.index(redirect[0]) == len(argvs) - 1

    def test_ingress_classes_without_limit_use_line_rate(self) -> None:
        p = policer("p", 20_000, TrafficMatch(), direction="ingress")
        cmds = render_tc("eth1", capacity_mbps=None, rate_limit=None, class_policers=(p,))
        assert opt(htb_classes(cmds, "ifb-eth1")["1:1"], "rate") == "20000000kbit"
        assert not htb_classes(cmds, "eth1")

    def test_bad_rates_and_names_are_refused(self) -> None:
        with pytest.raises(ConfigValidationError, match="inf"):
            render_tc("eth1", capacity_mbps=float("inf"), rate_limit=None, class_policers=())
        with pytest.raises(ConfigValidationError, match="link capacity 0"):
            render_tc("eth1", capacity_mbps=0, rate_limit=None, class_policers=())
        with pytest.raises(ConfigValidationError, match="15"):
            render_tc("eth1/1", capacity_mbps=10, rate_limit=None, class_policers=())
        with pytest.raises(ConfigValidationError, match="IFB"):
            render_tc("eth123456789", capacity_mbps=None,
                      rate_limit=RateLimit(ingress_mbps=1), class_policers=())
        assert ifb_device("eth1234567") == "ifb-eth1234567"


# ---- FRR -------------------------------------------------------------------------------------


OSPF = frozenset({"eth1", "eth2", "eth3"})


def frr_config(costs: dict[str, int | None], routes: tuple[StaticRoute, ...]) -> DeviceConfig:
    return config(interfaces=tuple(InterfaceConfig(name=n, igp_cost=c) for n, c in costs.items()),
                  routes=routes)


R_NH = StaticRoute(prefix="10.50.0.0/16", next_hop_address="10.255.0.1")
R_IF = StaticRoute(prefix="10.51.0.0/16", outgoing_interface="eth2")
R_NULL = StaticRoute(prefix="10.52.0.0/16", discard=True)


@pytest.mark.unit
class TestFrr:
    def test_fresh_router_gets_everything(self) -> None:
        new = frr_config({"eth0": 5, "eth1": 10, "eth2": None}, (R_NH, R_IF, R_NULL))
        assert frr_config_commands(None, new, ospf_interfaces=OSPF) == [
            "interface eth1", " ip ospf cost 10", "exit",
            "interface eth2", " no ip ospf cost", "exit",
            "ip route 10.50.0.0/16 10.255.0.1",
            "ip route 10.51.0.0/16 eth2",
            "ip route 10.52.0.0/16 blackhole",
        ]  # eth0 does not run OSPF: no cost line

    def test_only_changes_are_emitted(self) -> None:
        old = frr_config({"eth1": 10, "eth2": 20, "eth3": 30}, (R_NH, R_IF))
        new = frr_config({"eth1": 10, "eth2": 25, "eth3": None}, (R_NH, R_IF))
        assert frr_config_commands(old, new, ospf_interfaces=OSPF) == [
            "interface eth2", " ip ospf cost 25", "exit",
            "interface eth3", " no ip ospf cost", "exit",
        ]
        assert frr_config_commands(new, new, ospf_interfaces=OSPF) == []

    def test_removed_and_changed_routes_get_no_first(self) -> None:
        moved = StaticRoute(prefix="10.50.0.0/16", next_hop_address="10.255.0.3")
        old = frr_config({"eth2": None}, (R_NH, R_IF, R_NULL))
        new = frr_config({"eth2": None}, (moved, R_NULL))
        assert frr_config_commands(old, new, ospf_interfaces=OSPF) == [
            "no ip route 10.50.0.0/16 10.255.0.1",
            "no ip route 10.51.0.0/16 eth2",
            "ip route 10.50.0.0/16 10.255.0.3",
        ]

    def test_interface_leaving_the_config_loses_its_cost(self) -> None:
        old = frr_config({"eth1": 10, "eth2": 20}, ())
        new = frr_config({"eth1": 10}, ())
        assert frr_config_commands(old, new, ospf_interfaces=OSPF) == [
            "interface eth2", " no ip ospf cost", "exit"]


# ---- ip link ---------------------------------------------------------------------------------


@pytest.mark.unit
class TestIpLink:
    def test_fresh_state_sets_everything(self) -> None:
        new = config(interfaces=(
            InterfaceConfig(name="eth1", ipv4_address="10.255.0.0/31"),
            InterfaceConfig(name="eth2", enabled=False),
        ))
        assert ip_link_commands(None, new) == [
            ["ip", "addr", "replace", "10.255.0.0/31", "dev", "eth1"],
            ["ip", "link", "set", "dev", "eth1", "up"],
            ["ip", "link", "set", "dev", "eth2", "down"],
        ]

    def test_only_changes(self) -> None:
        old = config(interfaces=(
            InterfaceConfig(name="eth1", ipv4_address="10.255.0.0/31"),
            InterfaceConfig(name="eth2", ipv4_address="10.255.0.2/31"),
            InterfaceConfig(name="eth3", ipv4_address="10.255.0.4/31", enabled=False),
            InterfaceConfig(name="eth4", ipv4_address="10.255.0.6/31"),
        ))
        new = config(interfaces=(
            InterfaceConfig(name="eth1", ipv4_address="10.255.0.0/31"),
            InterfaceConfig(name="eth2", ipv4_address="10.255.0.2/30"),
            InterfaceConfig(name="eth3", ipv4_address="10.255.0.4/31"),
            InterfaceConfig(name="eth5"),
        ))
        assert ip_link_commands(old, new) == [
            ["ip", "addr", "del", "10.255.0.2/31", "dev", "eth2"],
            ["ip", "addr", "replace", "10.255.0.2/30", "dev", "eth2"],
            ["ip", "link", "set", "dev", "eth3", "up"],
            ["ip", "link", "set", "dev", "eth5", "up"],  # new to the config
            ["ip", "addr", "del", "10.255.0.6/31", "dev", "eth4"],  # left the config
            ["ip", "link", "set", "dev", "eth4", "down"],
        ]
        assert ip_link_commands(new, new) == []


# ---- ip -j -s link ---------------------------------------------------------------------------

# Real `ip -j -s link show` output from a namespace holding the veth pairs eth1/eth9 (both up)
# and eth2/eth3 (eth3 down), trimmed of address fields. eth9 is listed before eth1.
IP_LINK_SAMPLE = """[
{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue",
 "operstate":"UNKNOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,
 "link_type":"loopback","stats64":{"rx":{"bytes":0,"packets":0,"errors":0,"dropped":0,
 "over_errors":0,"multicast":0},"tx":{"bytes":0,"packets":0,"errors":0,"dropped":0,
 "carrier_errors":0,"collisions":0}}},
{"ifindex":2,"link":"eth1","ifname":"eth9","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
 "mtu":1500,"qdisc":"noqueue","operstate":"UP","linkmode":"DEFAULT","group":"default",
 "txqlen":1000,"link_type":"ether","stats64":{"rx":{"bytes":180,"packets":2,"errors":0,
 "dropped":0,"over_errors":0,"multicast":0},"tx":{"bytes":180,"packets":2,"errors":0,
 "dropped":0,"carrier_errors":0,"collisions":0}}},
{"ifindex":3,"link":"eth9","ifname":"eth1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
 "mtu":1500,"qdisc":"noqueue","operstate":"UP","linkmode":"DEFAULT","group":"default",
 "txqlen":1000,"link_type":"ether","stats64":{"rx":{"bytes":180,"packets":2,"errors":0,
 "dropped":0,"over_errors":0,"multicast":0},"tx":{"bytes":180,"packets":2,"errors":0,
 "dropped":0,"carrier_errors":0,"collisions":0}}},
{"ifindex":4,"link":"eth2","ifname":"eth3","flags":["BROADCAST","MULTICAST"],"mtu":1500,
 "qdisc":"noop","operstate":"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,
 "link_type":"ether","stats64":{"rx":{"bytes":0,"packets":0,"errors":0,"dropped":0,
 "over_errors":0,"multicast":0},"tx":{"bytes":0,"packets":0,"errors":0,"dropped":0,
 "carrier_errors":0,"collisions":0}}},
{"ifindex":5,"link":"eth3","ifname":"eth2",
 "flags":["NO-CARRIER","BROADCAST","MULTICAST","UP","M-DOWN"],"mtu":1500,"qdisc":"noqueue",
 "operstate":"LOWERLAYERDOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,
 "link_type":"ether","stats64":{"rx":{"bytes":0,"packets":0,"errors":0,"dropped":0,
 "over_errors":0,"multicast":0},"tx":{"bytes":0,"packets":0,"errors":0,"dropped":0,
 "carrier_errors":0,"collisions":0}}}
]"""


@pytest.mark.unit
class TestParseIpLink:
    def test_real_sample(self) -> None:
        states = parse_ip_link_json(IP_LINK_SAMPLE, {"eth1": 100_000_000},
                                    {"eth1": "to r2"})
        assert [s.name for s in states] == ["eth1", "eth2", "eth3", "eth9"]
        eth1, eth2, eth3, eth9 = states
        assert (eth1.enabled, eth1.oper_up, eth1.speed_bps, eth1.description) == (
            True, True, 100_000_000, "to r2")
        assert (eth1.in_octets, eth1.out_octets, eth1.in_unicast_pkts,
                eth1.out_unicast_pkts) == (180, 180, 2, 2)
        assert (eth2.enabled, eth2.oper_up) == (True, False)  # peer down: LOWERLAYERDOWN
        assert (eth3.enabled, eth3.oper_up) == (False, False)
        assert (eth9.speed_bps, eth9.description) == (0, "")

    def test_numeric_order_rx_in_tx_out_and_unknown_with_lower_up(self) -> None:
        def link(name: str, operstate: str, flags: list[str], rx: int,
                 tx: int) -> dict[str, object]:
            return {"ifname": name, "flags": flags, "operstate": operstate, "stats64": {
                "rx": {"bytes": rx, "packets": rx // 100},
                "tx": {"bytes": tx, "packets": tx // 100}}}
        text = json.dumps([
            link("eth10", "UNKNOWN", ["UP", "LOWER_UP"], 1000, 2000),
            link("eth2", "UNKNOWN", ["UP"], 0, 0),
            link("mgmt0", "UP", ["UP", "LOWER_UP"], 0, 0),
            link("ifb-eth2", "UP", ["UP", "LOWER_UP"], 0, 0),
        ])
        states = parse_ip_link_json(text, {}, {})
        assert [s.name for s in states] == ["eth2", "eth10"]
        assert states[1].oper_up and not states[0].oper_up
        assert (states[1].in_octets, states[1].out_octets) == (1000, 2000)
        assert (states[1].in_unicast_pkts, states[1].out_unicast_pkts) == (10, 20)

    @pytest.mark.parametrize(("text", "message"), [
        ("not json", "no JSON"),
        ('{"ifname": "eth1"}', "not a list"),
        ('[{"ifname": "eth1", "flags": []}]', "with -s"),
        ('[{"flags": []}]', "without a name"),
    ])
    def test_unreadable_output(self, text: str, message: str) -> None:
        with pytest.raises(NetworkRuntimeError, match=message):
            parse_ip_link_json(text, {}, {})


# ---- in a real namespace ---------------------------------------------------------------------

_TOOLS = ("ip", "nft", "tc")
needs_root_and_tools = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in _TOOLS),
    reason="needs root and the ip, nft and tc commands to build a throwaway network namespace",
)


def sh(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=10,
                          check=False)


def ok(*argv: str, stdin: str | None = None) -> str:
    done = sh(*argv, stdin=stdin)
    assert done.returncode == 0, f"{' '.join(argv)} failed: {done.stderr}"
    return done.stdout


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace with the veth pair eth1/eth9 (both up), deleted afterwards."""
    name = f"netgpt-rt-{uuid.uuid4().hex[:8]}"
    ok("ip", "netns", "add", name)
    try:
        ok("ip", "-n", name, "link", "add", "eth1", "type", "veth", "peer", "name", "eth9")
        for dev in ("lo", "eth1", "eth9"):
            ok("ip", "-n", name, "link", "set", dev, "up")
        yield name
    finally:
        sh("ip", "netns", "del", name)


@pytest.fixture
def two_netns() -> Iterator[tuple[str, str]]:
    """A router namespace (eth1, 10.77.0.1/30) wired to a host namespace (eth9, 10.77.0.2/30)."""
    tag = uuid.uuid4().hex[:8]
    router, host = f"netgpt-rt-{tag}", f"netgpt-rt-{tag}-h"
    made: list[str] = []
    try:
        for name in (router, host):
            ok("ip", "netns", "add", name)
            made.append(name)
        ok("ip", "-n", router, "link", "add", "eth1", "type", "veth", "peer", "name", "eth9",
           "netns", host)
        for ns, dev, addr in ((router, "eth1", "10.77.0.1/30"), (host, "eth9", "10.77.0.2/30")):
            ok("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            ok("ip", "-n", ns, "link", "set", dev, "up")
        yield router, host
    finally:
        for name in made:
            sh("ip", "netns", "del", name)


def run_tc(ns: str, cmds: list[TcCommand]) -> None:
    for cmd in cmds:
        done = sh("ip", "netns", "exec", ns, *cmd.argv)
        assert cmd.ignore_errors or done.returncode == 0, (
            f"{' '.join(cmd.argv)} failed: {done.stderr}")


def ping(ns: str, address: str) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-n", address)


@pytest.mark.lab
@needs_root_and_tools
class TestInNamespace:
    def test_nft_script_loads_and_replaces(self, netns: str) -> None:
        cfg = two_acl_config().with_interface(InterfaceConfig(name="eth9", acl_egress=("web",)))
        for _ in range(2):  # first load creates the table, the second replaces it
            ok("ip", "netns", "exec", netns, "nft", "-f", "-",
               stdin=render_nftables(cfg, now=NOW))
        listed = json.loads(ok("ip", "netns", "exec", netns, "nft", "-j", "list", "table",
                               "inet", "netgpt"))["nftables"]
        chains = {o["chain"]["name"] for o in listed if "chain" in o}
        assert chains == {"in_eth1", "out_eth2", "out_eth9", "forward", "input", "output"}
        rules = [o["rule"] for o in listed if "rule" in o]
        assert [r["comment"] for r in rules if r["chain"] == "in_eth1"] == [
            "web/allow-admin", "web/block-http", "dns/no-dns", "dns/no-ssh", "dns/deny-rest",
            "dns/deny-rest"]
        # inside the window (22:30 in Berlin) and outside it (13:00), with the commented rule
        for moment, expected in ((datetime(2026, 11, 20, 21, 30, tzinfo=UTC),
                                  ["night/block-backup", "night/always"]),
                                 (NOW, ["night/always"])):
            windowed = render_nftables(windowed_config(TestTimeRanges.WINDOW), now=moment)
            ok("ip", "netns", "exec", netns, "nft", "-f", "-", stdin=windowed)
            listed = json.loads(ok("ip", "netns", "exec", netns, "nft", "-j", "list", "table",
                                   "inet", "netgpt"))["nftables"]
            assert {o["chain"]["name"] for o in listed if "chain" in o} == {
                "in_eth1", "forward", "input", "output"}
            assert [o["rule"]["comment"] for o in listed
                    if "rule" in o and o["rule"]["chain"] == "in_eth1"] == expected

    def test_ingress_acl_filters_traffic_to_the_router(self, two_netns: tuple[str, str]) -> None:
        router, host = two_netns
        assert ping(host, "10.77.0.1").returncode == 0
        deny = Acl(name="deny", rules=(rule("no-ping", AclAction.REJECT,
                                            protocol=IPProtocol.ICMP,
                                            source_prefix="10.77.0.2/32"),))
        allow = Acl(name="allow", rules=(rule("ping-ok", AclAction.ACCEPT,
                                              protocol=IPProtocol.ICMP),))
        blocked = config(acls=(deny, allow),
                         interfaces=(InterfaceConfig(name="eth1", acl_ingress=("deny", "allow")),))
        ok("ip", "netns", "exec", router, "nft", "-f", "-", stdin=render_nftables(blocked, now=NOW))
        refused = ping(host, "10.77.0.1")
        assert refused.returncode != 0 and "Packet filtered" in refused.stdout  # admin-prohibited
        first_match = blocked.with_interface(
            InterfaceConfig(name="eth1", acl_ingress=("allow", "deny")))
        ok("ip", "netns", "exec", router, "nft", "-f", "-",
           stdin=render_nftables(first_match, now=NOW))
        assert ping(host, "10.77.0.1").returncode == 0

    def test_tc_commands_succeed_twice(self, netns: str) -> None:
        web_in = policer("web-in", 20, TrafficMatch(protocol=IPProtocol.TCP,
                                                    destination_ports=PortRange(lower=1000,
                                                                                upper=2000)),
                         direction="ingress")
        cmds = render_tc("eth1", capacity_mbps=100, rate_limit=RateLimit(ingress_mbps=60,
                                                                         egress_mbps=40),
                         class_policers=(VOICE, BULK, web_in))
        for _ in range(2):  # the second run starts from the first one's state
            run_tc(netns, cmds)

        def classes(dev: str) -> dict[str, str]:  # iproute2 6.1 has no JSON for HTB classes
            text = ok("ip", "netns", "exec", netns, "tc", "class", "show", "dev", dev)
            return {m[1]: m[2] for m in re.finditer(r"class htb (\S+) .*? ceil (\S+)", text)}

        assert classes("eth1") == {"1:1": "40Mbit", "1:2": "40Mbit", "1:10": "5Mbit",
                                   "1:11": "30Mbit"}
        assert classes("ifb-eth1") == {"1:1": "60Mbit", "1:2": "60Mbit", "1:10": "20Mbit"}
        filters = ok("ip", "netns", "exec", netns, "tc", "filter", "show", "dev", "ifb-eth1")
        # 1000-2000 as aligned blocks: 1000/8 1008/16 1024/512 1536/256 1792/128 1920/64
        # 1984/16 2000/1
        assert filters.count("flowid 1:10") == 8
        assert "match 000007d0/0000ffff at 20" in filters  # port 2000 (dport: bytes 22-23)
        cleared = render_tc("eth1", capacity_mbps=None, rate_limit=None, class_policers=())
        run_tc(netns, cleared)
        assert "htb" not in ok("ip", "netns", "exec", netns, "tc", "qdisc", "show", "dev", "eth1")
        assert sh("ip", "-n", netns, "link", "show", "ifb-eth1").returncode != 0

    def test_ip_link_commands_and_parse(self, netns: str) -> None:
        old = config(interfaces=(InterfaceConfig(name="eth1", ipv4_address="10.255.0.0/31"),))
        new = config(interfaces=(InterfaceConfig(name="eth1", ipv4_address="10.255.0.0/30",
                                                 enabled=False),))
        for argv in [*ip_link_commands(None, old), *ip_link_commands(old, new)]:
            ok("ip", "netns", "exec", netns, *argv)
        addrs = ok("ip", "-n", netns, "-br", "addr", "show", "dev", "eth1")
        assert "10.255.0.0/30" in addrs and "10.255.0.0/31" not in addrs
        states = parse_ip_link_json(ok("ip", "-n", netns, "-j", "-s", "link", "show"),
                                    {"eth1": 10**9}, {})
        assert [(s.name, s.enabled, s.oper_up) for s in states] == [
            ("eth1", False, False), ("eth9", True, False)]


@pytest.mark.lab
@pytest.mark.skipif(shutil.which("vtysh") is None, reason="needs FRR's vtysh for --dryrun")
def test_frr_lines_pass_vtysh_dryrun(tmp_path: Path) -> None:
    old = frr_config({"eth1": 10, "eth2": 20}, (R_NH, R_IF))
    new = frr_config({"eth1": 15, "eth3": None}, (R_NULL,))
    lines = frr_config_commands(old, new, ospf_interfaces=OSPF)
    lines += frr_config_commands(None, old, ospf_interfaces=OSPF)
    good, bad = tmp_path / "frr.conf", tmp_path / "bad.conf"
    good.write_text("\n".join(lines) + "\n", encoding="ascii")
    done = sh("vtysh", "--dryrun", "--inputfile", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    bad.write_text("interface eth1\n ip ospf costs 10\n", encoding="ascii")
    assert sh("vtysh", "--dryrun", "--inputfile", str(bad)).returncode != 0  # the check is real
