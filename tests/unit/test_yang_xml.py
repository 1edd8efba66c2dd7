"""XML mapping of DeviceConfig and RFC 6241 edit-config semantics: edge cases, tags and paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from netgpt.device_config import (
    Acl,
    AclAction,
    AclRule,
    DeviceConfig,
    InterfaceConfig,
    IPProtocol,
    PortRange,
    RateLimit,
    StaticRoute,
    TimeWindow,
)
from netgpt.errors import ConfigValidationError
from netgpt.sim_networks.topology import build_topology
from netgpt.yang_xml import (
    NS,
    EditOperation,
    InterfaceState,
    apply_edit,
    config_from_xml,
    config_to_xml,
    interfaces_state_from_xml,
    state_to_xml,
)

pytestmark = pytest.mark.unit

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF, NG, ACL, RT, V4, SYS = NS.IF, NS.NG, NS.ACL, NS.RT, NS.V4UR, NS.SYS


def rich_config() -> DeviceConfig:
    """Every feature of the model at least once."""
    return DeviceConfig(
        hostname="edge1",
        interfaces=(
            InterfaceConfig(name="eth0", description="users", acl_ingress=("guests-in",)),
            InterfaceConfig(
                name="eth1",
                description="uplink",
                enabled=False,
                ipv4_address="10.255.0.1/31",
                igp_cost=25,
                acl_egress=("guests-in", "web-only"),
                rate_limit=RateLimit(ingress_mbps=100, egress_mbps=12.5),
            ),
            InterfaceConfig(name="eth2", rate_limit=RateLimit(egress_mbps=1)),
        ),
        acls=(
            Acl(
                name="guests-in",
                rules=(
                    AclRule(
                        name="no-telnet",
                        action=AclAction.DROP,
                        protocol=IPProtocol.TCP,
                        destination_ports=PortRange(lower=23, upper=23),
                    ),
                    AclRule(
                        name="rtp",
                        action=AclAction.REJECT,
                        protocol=IPProtocol.UDP,
                        source_prefix="10.40.0.0/16",
                        source_ports=PortRange(lower=5000, upper=5999),
                        destination_ports=PortRange(lower=16384, upper=32767),
                    ),
                    AclRule(name="ping", action=AclAction.ACCEPT, protocol=IPProtocol.ICMP),
                    AclRule(name="rest", action=AclAction.ACCEPT),
                ),
            ),
            Acl(
                name="web-only",
                rules=(
                    AclRule(
                        name="web",
                        action=AclAction.ACCEPT,
                        protocol=IPProtocol.TCP,
                        destination_prefix="10.100.0.0/16",
                        destination_ports=PortRange(lower=80, upper=80),
                    ),
                ),
            ),
            Acl(name="empty"),
        ),
        static_routes=(
            StaticRoute(prefix="10.9.0.0/16", next_hop_address="10.255.0.0"),
            StaticRoute(prefix="10.8.0.0/16", outgoing_interface="eth1"),
            StaticRoute(prefix="192.0.2.0/24", discard=True),
        ),
    )


def xml(text: str) -> etree._Element:
    return etree.fromstring(text)


def cfg(body: str) -> etree._Element:
    return xml(f'<config xmlns="{NC}" xmlns:nc="{NC}">{body}</config>')


def itf(body: str, attrs: str = "") -> str:
    return f'<interfaces xmlns="{IF}"><interface{attrs}>{body}</interface></interfaces>'


def err(fn: object, *args: object, **kwargs: object) -> ConfigValidationError:
    with pytest.raises(ConfigValidationError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


# --------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("spec", ["linear,3", "abilene", "campus", "tree,2,2"])
def test_topology_configs_round_trip(spec: str) -> None:
    topo = build_topology(spec)
    for name in topo.devices:
        config = topo.initial_config(name)
        assert config_from_xml(config_to_xml(config)) == config


def test_rich_config_round_trips_through_text() -> None:
    config = rich_config()
    text = etree.tostring(config_to_xml(config))
    assert config_from_xml(etree.fromstring(text)) == config


def test_single_port_uses_operator_eq_and_ranges_use_lower_upper() -> None:
    data = config_to_xml(rich_config())
    ns = {"a": ACL}
    telnet = data.xpath("//a:ace[a:name='no-telnet']//a:destination-port", namespaces=ns)[0]
    assert [etree.QName(c).localname for c in telnet] == ["operator", "port"]
    rtp = data.xpath("//a:ace[a:name='rtp']//a:source-port", namespaces=ns)[0]
    assert [etree.QName(c).localname for c in rtp] == ["lower-port", "upper-port"]


names = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=6).map(lambda s: f"if{s}")


@st.composite
def interface_configs(draw: st.DrawFn) -> InterfaceConfig:
    return InterfaceConfig(
        name=draw(names),
        description=draw(
            st.text(
                alphabet=st.characters(
                    min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"
                ),
                max_size=30,
            ).map(str.strip)
        ),
        enabled=draw(st.booleans()),
        ipv4_address=draw(
            st.none()
            | st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)).map(
                lambda t: (
                    f"{t[0] >> 24}.{(t[0] >> 16) & 255}.{(t[0] >> 8) & 255}.{t[0] & 255}/{t[1]}"
                )
            )
        ),
        igp_cost=draw(st.none() | st.integers(1, 65535)),
        rate_limit=draw(
            st.none()
            | st.builds(
                RateLimit,
                ingress_mbps=st.none() | st.floats(0.001, 1e6, allow_nan=False),
                egress_mbps=st.none() | st.floats(0.001, 1e6, allow_nan=False),
            )
        ),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(interface_configs(), max_size=5, unique_by=lambda i: i.name))
def test_any_interface_list_round_trips(interfaces: list[InterfaceConfig]) -> None:
    config = DeviceConfig(hostname="r1", interfaces=tuple(interfaces))
    back = config_from_xml(config_to_xml(config))
    # a rate-limit with neither leaf is not written: it reads back as no rate limit
    expected = tuple(
        i.model_copy(update={"rate_limit": None})
        if i.rate_limit is not None and i.rate_limit == RateLimit()
        else i
        for i in interfaces
    )
    assert back.interfaces == expected


def test_interface_state_round_trip() -> None:
    config = build_topology("linear,2").initial_config("r1")
    states = [
        InterfaceState("eth0", True, True, 10**10, 1, 2, 3, 4),
        InterfaceState("eth1", True, False, 10**9, 10, 20, 30, 40),
        InterfaceState("eth9", False, False, 0, 0, 0, 0, 0),  # state without config
    ]
    data = state_to_xml(config_to_xml(config), states)
    back = interfaces_state_from_xml(data)
    assert [(s.name, s.oper_up, s.speed_bps, s.in_octets, s.out_unicast_pkts) for s in back] == [
        ("eth0", True, 10**10, 1, 4),
        ("eth1", False, 10**9, 10, 40),
        ("eth9", False, 0, 0, 0),
    ]
    assert back[1].description == "to r2 eth1"
    assert config_from_xml(config_to_xml(config)) == config  # state leaves are not config


# --------------------------------------------------------------------------------------------
# edit operations


@pytest.fixture
def base() -> DeviceConfig:
    return rich_config()


def test_merge_changes_one_leaf_and_keeps_the_rest(base: DeviceConfig) -> None:
    new = apply_edit(base, cfg(itf("<name>eth1</name><description>new</description>")))
    assert new.interface("eth1") == base.interface("eth1").model_copy(update={"description": "new"})
    assert new.acls == base.acls and new.static_routes == base.static_routes
    assert base.interface("eth1").description == "uplink"  # the input is never modified


def test_merge_adds_a_list_entry(base: DeviceConfig) -> None:
    new = apply_edit(base, cfg(itf("<name>eth3</name><enabled>false</enabled>")))
    assert new.interface("eth3") == InterfaceConfig(name="eth3", enabled=False)


def test_replace_operation_drops_unmentioned_children(base: DeviceConfig) -> None:
    new = apply_edit(
        base,
        cfg(itf("<name>eth1</name><description>bare</description>", ' nc:operation="replace"')),
    )
    eth1 = new.interface("eth1")
    assert (eth1.description, eth1.igp_cost, eth1.ipv4_address, eth1.enabled) == (
        "bare",
        None,
        None,
        True,
    )
    assert eth1.acl_egress == ("guests-in", "web-only")  # attachments live under acls


def test_create_and_data_exists(base: DeviceConfig) -> None:
    new = apply_edit(base, cfg(itf("<name>eth5</name>", ' nc:operation="create"')))
    assert new.interface("eth5") == InterfaceConfig(name="eth5")
    e = err(apply_edit, base, cfg(itf("<name>eth1</name>", ' nc:operation="create"')))
    assert (e.tag, e.path) == ("data-exists", "/interfaces/interface[name='eth1']")
    e = err(
        apply_edit,
        base,
        cfg(itf(f'<name>eth1</name><igp-cost xmlns="{NG}" nc:operation="create">3</igp-cost>')),
    )
    assert (e.tag, e.path) == ("data-exists", "/interfaces/interface[name='eth1']/igp-cost")


def test_delete_and_data_missing(base: DeviceConfig) -> None:
    new = apply_edit(
        base, cfg(itf(f'<name>eth1</name><rate-limit xmlns="{NG}" nc:operation="delete"/>'))
    )
    assert new.interface("eth1").rate_limit is None
    e = err(
        apply_edit,
        base,
        cfg(itf(f'<name>eth0</name><igp-cost xmlns="{NG}" nc:operation="delete"/>')),
    )
    assert (e.tag, e.path) == ("data-missing", "/interfaces/interface[name='eth0']/igp-cost")
    e = err(apply_edit, base, cfg(itf("<name>eth7</name>", ' nc:operation="delete"')))
    assert (e.tag, e.path) == ("data-missing", "/interfaces/interface[name='eth7']")


def test_remove_ignores_missing_data(base: DeviceConfig) -> None:
    same = apply_edit(base, cfg(itf("<name>eth7</name>", ' nc:operation="remove"')))
    assert same == base
    new = apply_edit(
        base,
        cfg(
            f'<routing xmlns="{RT}" xmlns:rt="{RT}"><control-plane-protocols>'
            "<control-plane-protocol><type>rt:static</type><name>static</name><static-routes>"
            f'<ipv4 xmlns="{V4}"><route nc:operation="remove"><destination-prefix>192.0.2.0/24'
            "</destination-prefix></route></ipv4></static-routes></control-plane-protocol>"
            "</control-plane-protocols></routing>"
        ),
    )
    assert [r.prefix for r in new.static_routes] == ["10.9.0.0/16", "10.8.0.0/16"]


def test_deleting_an_attached_acl_is_refused(base: DeviceConfig) -> None:
    e = err(
        apply_edit,
        base,
        cfg(f'<acls xmlns="{ACL}"><acl nc:operation="delete"><name>web-only</name></acl></acls>'),
    )
    assert e.tag == "invalid-value" and "web-only" in e.message


def test_default_operation_replace_replaces_everything_but_the_hostname(
    base: DeviceConfig,
) -> None:
    new = apply_edit(base, cfg(itf("<name>eth0</name>")), default_operation=EditOperation.REPLACE)
    assert new == DeviceConfig(hostname="edge1", interfaces=(InterfaceConfig(name="eth0"),))
    renamed = apply_edit(
        base,
        cfg(f'<system xmlns="{SYS}"><hostname>core9</hostname></system>'),
        default_operation=EditOperation.REPLACE,
    )
    assert renamed == DeviceConfig(hostname="core9")


def test_default_operation_none_only_acts_on_explicit_operations(base: DeviceConfig) -> None:
    same = apply_edit(
        base,
        cfg(itf("<name>eth1</name><description>ignored</description>")),
        default_operation=EditOperation.NONE,
    )
    assert same == base
    nothing_new = apply_edit(
        base, cfg(itf("<name>eth8</name>")), default_operation=EditOperation.NONE
    )
    assert nothing_new == base  # no list entry is created on the way down
    new = apply_edit(
        base,
        cfg(itf('<name>eth1</name><description nc:operation="merge">set</description>')),
        default_operation=EditOperation.NONE,
    )
    assert new.interface("eth1").description == "set"


# --------------------------------------------------------------------------------------------
# errors: tags and paths


@pytest.mark.parametrize(
    ("body", "tag", "path"),
    [
        (
            itf("<name>eth1</name><mtu>9000</mtu>"),
            "unknown-element",
            "/interfaces/interface[name='eth1']/mtu",
        ),
        ('<widgets xmlns="urn:example:widgets"/>', "unknown-element", "/widgets"),
        (itf("<description>x</description>"), "missing-element", "/interfaces/interface"),
        (
            itf("<name>eth1</name><enabled>yes</enabled>"),
            "invalid-value",
            "/interfaces/interface[name='eth1']/enabled",
        ),
        (
            itf(f'<name>eth1</name><igp-cost xmlns="{NG}">0</igp-cost>'),
            "invalid-value",
            "/interfaces/interface[name='eth1']/igp-cost",
        ),
        (
            itf(
                f'<name>eth1</name><rate-limit xmlns="{NG}"><ingress-mbps>-5</ingress-mbps>'
                "</rate-limit>"
            ),
            "invalid-value",
            "/interfaces/interface[name='eth1']/rate-limit/ingress-mbps",
        ),
        (
            itf(
                f'<name>eth1</name><ipv4 xmlns="{NS.IP}"><address><ip>10.255.0.1</ip>'
                "<prefix-length>33</prefix-length></address></ipv4>"
            ),
            "invalid-value",
            "/interfaces/interface[name='eth1']/ipv4/address/prefix-length",
        ),
        (
            itf("<name>eth1</name><description><b>bold</b></description>"),
            "bad-element",
            "/interfaces/interface[name='eth1']/description",
        ),
        (
            itf("<name>eth1</name>", ' nc:operation="upsert"'),
            "bad-attribute",
            "/interfaces/interface",
        ),
        (
            itf("<name>eth1</name>", ' nc:operation="none"'),
            "bad-attribute",
            "/interfaces/interface",
        ),
        (
            itf('<name>eth1</name><description>x<i nc:operation="delete"/></description>'),
            "bad-attribute",
            "/interfaces/interface/description/i",
        ),
        (
            f'<acls xmlns="{ACL}"><attachment-points><interface><interface-id>eth9</interface-id>'
            "<ingress><acl-sets><acl-set><name>web-only</name></acl-set></acl-sets></ingress>"
            "</interface></attachment-points></acls>",
            "data-missing",
            "/acls/attachment-points/interface[interface-id='eth9']",
        ),
    ],
)
def test_edit_errors_carry_tag_and_path(base: DeviceConfig, body: str, tag: str, path: str) -> None:
    e = err(apply_edit, base, cfg(body))
    assert (e.tag, e.path) == (tag, path), e
    assert e.message


@pytest.mark.parametrize(
    ("mutate", "tag", "path_part"),
    [
        (lambda d: d.find(f"{{{SYS}}}system").clear(), "missing-element", "/system/hostname"),
        (
            lambda d: d.find(f".//{{{ACL}}}ace/{{{ACL}}}actions/{{{ACL}}}forwarding").__setattr__(
                "text", "teleport"
            ),
            "invalid-value",
            "/actions/forwarding",
        ),
        (
            lambda d: d.find(f".//{{{ACL}}}ace//{{{ACL}}}protocol").__setattr__("text", "47"),
            "invalid-value",
            "/matches/ipv4/protocol",
        ),
        (
            lambda d: d.find(f".//{{{V4}}}special-next-hop").__setattr__("text", "unreachable"),
            "invalid-value",
            "/next-hop/special-next-hop",
        ),
        (
            lambda d: d.find(f".//{{{RT}}}control-plane-protocol/{{{RT}}}type").__setattr__(
                "text", "rt:ospf"
            ),
            "invalid-value",
            "/control-plane-protocol/type",
        ),
    ],
)
def test_reading_bad_data_names_the_place(mutate: object, tag: str, path_part: str) -> None:
    data = config_to_xml(rich_config())
    mutate(data)  # type: ignore[operator]
    e = err(config_from_xml, data)
    assert e.tag == tag and path_part in e.path, e


def test_undefined_acl_reference_is_invalid() -> None:
    data = config_to_xml(rich_config())
    acls = data.find(f"{{{ACL}}}acls")
    assert acls is not None
    acls.remove(acls.find(f"{{{ACL}}}acl"))  # drop guests-in, still attached
    e = err(config_from_xml, data)
    assert e.tag == "invalid-value" and "guests-in" in e.message


def test_port_match_without_protocol_match_is_refused() -> None:
    body = (
        f'<acls xmlns="{ACL}"><acl><name>x</name><aces><ace><name>a</name><matches>'
        "<ipv4><protocol>17</protocol></ipv4><tcp><destination-port><operator>eq</operator>"
        "<port>80</port></destination-port></tcp></matches><actions><forwarding>drop"
        "</forwarding></actions></ace></aces></acl></acls>"
    )
    e = err(apply_edit, rich_config(), cfg(body))
    assert e.tag == "invalid-value" and e.path.endswith("/matches/tcp")


def test_comments_and_processing_instructions_are_ignored(base: DeviceConfig) -> None:
    new = apply_edit(
        base,
        cfg(
            f'<!-- note --><interfaces xmlns="{IF}"><?pi x?><interface><name>eth1</name>'
            "<!-- c --><description>ok</description></interface></interfaces>"
        ),
    )
    assert new.interface("eth1").description == "ok"


def test_a_second_ipv4_address_is_refused_not_lost():
    cfg = build_topology("linear,2").initial_config("r1")
    edit = etree.fromstring(
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface>'
        '<name>eth1</name><ipv4 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><address>'
        "<ip>192.0.2.1</ip><prefix-length>24</prefix-length></address></ipv4>"
        "</interface></interfaces></config>"
    )
    with pytest.raises(ConfigValidationError) as err:
        apply_edit(cfg, edit)
    assert err.value.tag == "too-many-elements"
    assert "eth1" in err.value.path


def test_identity_keys_match_with_or_without_prefix():
    cfg = build_topology("linear,2").initial_config("r1")
    cfg = cfg.model_copy(
        update={"static_routes": (StaticRoute(prefix="10.9.0.0/16", discard=True),)}
    )
    edit = etree.fromstring(
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" '
        'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<routing xmlns="urn:ietf:params:xml:ns:yang:ietf-routing"><control-plane-protocols>'
        "<control-plane-protocol><type>static</type><name>static</name><static-routes>"
        '<ipv4 xmlns="urn:ietf:params:xml:ns:yang:ietf-ipv4-unicast-routing">'
        '<route nc:operation="delete"><destination-prefix>10.9.0.0/16</destination-prefix></route>'
        "</ipv4></static-routes></control-plane-protocol></control-plane-protocols></routing>"
        "</config>"
    )
    assert apply_edit(cfg, edit).static_routes == ()


def _timed_config(**window: object) -> DeviceConfig:
    rule = AclRule(name="office-hours", action=AclAction.DROP, protocol=IPProtocol.TCP,
                   destination_ports=PortRange(lower=23, upper=23),
                   time_range=TimeWindow.model_validate(window))
    return DeviceConfig(hostname="r1", acls=(Acl(name="timed", rules=(rule,)),))


def test_ace_time_range_round_trips() -> None:
    config = _timed_config(days=("mon", "fri"), start="22:00", end="02:00", timezone="Asia/Tokyo")
    data = config_to_xml(config)
    ng = {"n": NS.NG}
    assert data.xpath("//n:time-range/n:days/text()", namespaces=ng) == ["mon fri"]
    assert config_from_xml(etree.fromstring(etree.tostring(data))) == config


@pytest.mark.parametrize(
    ("leaf", "value", "message"),
    [
        ("days", "mon funday", "funday"),
        ("start", "25:00", "25:00"),
        ("timezone", "Mars/Olympus", "Mars/Olympus"),
    ],
)
def test_bad_time_range_names_the_value(leaf: str, value: str, message: str) -> None:
    data = config_to_xml(_timed_config(start="08:00", end="18:00"))
    data.xpath(f"//n:time-range/n:{leaf}", namespaces={"n": NS.NG})[0].text = value
    with pytest.raises(ConfigValidationError, match=message) as err:
        config_from_xml(data)
    assert "time-range" in err.value.path


def test_class_policers_round_trip_and_bad_values_name_the_place() -> None:
    from netgpt.device_config import ClassPolicer, TrafficMatch

    video = ClassPolicer(name="video", direction="ingress", rate_mbps=250.5, matches=(
        TrafficMatch(protocol=IPProtocol.UDP, destination_prefix="10.3.0.0/16",
                     destination_ports=PortRange(lower=5000, upper=5010)),
        TrafficMatch(protocol=IPProtocol.TCP, source_prefix="10.1.0.0/24",
                     destination_ports=PortRange(lower=443, upper=443)),
    ))
    itf = InterfaceConfig(name="eth0", class_policers=(video,),
                          rate_limit=RateLimit(ingress_mbps=900))
    config = DeviceConfig(hostname="r1", interfaces=(itf,))
    data = config_to_xml(config)
    assert config_from_xml(etree.fromstring(etree.tostring(data))) == config
    data.xpath("//n:class-policer/n:direction", namespaces={"n": NS.NG})[0].text = "sideways"
    with pytest.raises(ConfigValidationError, match="sideways") as err:
        config_from_xml(data)
    assert "class-policer[name='video']/direction" in err.value.path
