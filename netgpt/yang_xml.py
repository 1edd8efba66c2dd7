"""XML mapping of ``DeviceConfig`` and RFC 6241 ``edit-config`` semantics.

This is the one place that knows the wire shape of a device's configuration. The device agents
(emulated and lab) and the NETCONF driver both use it, so the two ends of the wire agree by
construction. Pure functions over ``lxml`` trees; no I/O.

Shape (namespaces abbreviated)::

    <system xmlns=ietf-system><hostname/></system>
    <interfaces xmlns=ietf-interfaces>
      <interface><name/><description/><type/><enabled/>
        <ipv4 xmlns=ietf-ip><address><ip/><prefix-length/></address></ipv4>
        <igp-cost xmlns=netgpt-device/>
        <rate-limit xmlns=netgpt-device><ingress-mbps/><egress-mbps/></rate-limit>
        <class-policer xmlns=netgpt-device><name/><direction/><rate-mbps/><assured-mbps/>
          <match><seq/><protocol/><source-ipv4-network/><destination-ipv4-network/>
            <destination-port><lower-port/><upper-port/></destination-port></match>
        </class-policer>
      </interface>
    </interfaces>
    <acls xmlns=ietf-access-control-list>
      <acl><name/><type/><aces><ace><name/>
        <matches><ipv4><protocol/><source-ipv4-network/><destination-ipv4-network/></ipv4>
                 <tcp|udp><source-port/><destination-port/></tcp|udp></matches>
        <actions><forwarding/></actions>
        <time-range xmlns=netgpt-device><days/><start/><end/><timezone/></time-range></ace>
      </aces></acl>
      <attachment-points><interface><interface-id/>
        <ingress|egress><acl-sets><acl-set><name/></acl-set></acl-sets></ingress|egress>
      </interface></attachment-points>
    </acls>
    <routing xmlns=ietf-routing><control-plane-protocols><control-plane-protocol>
      <type/><name/><static-routes><ipv4 xmlns=ietf-ipv4-unicast-routing><route>
        <destination-prefix/><next-hop><next-hop-address/>|<outgoing-interface/>|
        <special-next-hop/></next-hop></route></ipv4></static-routes>
    </control-plane-protocol></control-plane-protocols></routing>
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum

from lxml import etree
from pydantic import ValidationError

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
from netgpt.errors import ConfigValidationError

__all__ = [
    "NS",
    "EditOperation",
    "InterfaceState",
    "apply_edit",
    "config_from_xml",
    "config_to_xml",
    "interfaces_state_from_xml",
    "state_to_xml",
]

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"


class NS:
    """XML namespaces of the modules the devices implement."""

    SYS = "urn:ietf:params:xml:ns:yang:ietf-system"
    IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
    IP = "urn:ietf:params:xml:ns:yang:ietf-ip"
    ACL = "urn:ietf:params:xml:ns:yang:ietf-access-control-list"
    RT = "urn:ietf:params:xml:ns:yang:ietf-routing"
    V4UR = "urn:ietf:params:xml:ns:yang:ietf-ipv4-unicast-routing"
    NG = "urn:netgpt:yang:netgpt-device"
    IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"

    # module name -> namespace, advertised in the NETCONF hello (with ?module=...)
    MODULES: dict[str, str] = {
        "ietf-system": SYS,
        "ietf-interfaces": IF,
        "ietf-ip": IP,
        "ietf-access-control-list": ACL,
        "ietf-routing": RT,
        "ietf-ipv4-unicast-routing": V4UR,
        "netgpt-device": NG,
    }


class EditOperation(StrEnum):
    """``edit-config`` operations (RFC 6241 section 7.2)."""

    MERGE = "merge"
    REPLACE = "replace"
    CREATE = "create"
    DELETE = "delete"
    REMOVE = "remove"
    NONE = "none"  # only as default-operation


# --------------------------------------------------------------------------------------------
# Schema: which element is a container, a list (with keys) or a leaf.


@dataclass(frozen=True)
class _Node:
    kind: str  # "container" | "list" | "leaf"
    keys: tuple[str, ...] = ()  # local names of key leaves, for lists
    children: dict[tuple[str, str], _Node] = field(default_factory=dict)


def _leaf() -> _Node:
    return _Node("leaf")


def _c(ns: str, **children: _Node) -> _Node:
    return _Node("container", children={(ns, k.replace("_", "-")): v for k, v in children.items()})


def _l(ns: str, keys: tuple[str, ...], **children: _Node) -> _Node:
    return _Node("list", keys, {(ns, k.replace("_", "-")): v for k, v in children.items()})


def _port_match() -> _Node:
    return _c(NS.ACL, lower_port=_leaf(), upper_port=_leaf(), operator=_leaf(), port=_leaf())


_acl_sets = _c(NS.ACL, acl_sets=_c(NS.ACL, acl_set=_l(NS.ACL, ("name",), name=_leaf())))

_INTERFACE = _l(NS.IF, ("name",), name=_leaf(), description=_leaf(), type=_leaf(), enabled=_leaf())
_INTERFACE.children[(NS.IP, "ipv4")] = _c(
    NS.IP, address=_l(NS.IP, ("ip",), ip=_leaf(), prefix_length=_leaf())
)
_INTERFACE.children[(NS.NG, "igp-cost")] = _leaf()
_INTERFACE.children[(NS.NG, "rate-limit")] = _c(NS.NG, ingress_mbps=_leaf(), egress_mbps=_leaf())
_INTERFACE.children[(NS.NG, "class-policer")] = _l(
    NS.NG, ("name",), name=_leaf(), direction=_leaf(), rate_mbps=_leaf(), assured_mbps=_leaf(),
    match=_l(
        NS.NG, ("seq",), seq=_leaf(), protocol=_leaf(), source_ipv4_network=_leaf(),
        destination_ipv4_network=_leaf(),
        destination_port=_c(NS.NG, lower_port=_leaf(), upper_port=_leaf()),
    ),
)

_ROUTE_V4 = _c(
    NS.V4UR,
    route=_l(
        NS.V4UR,
        ("destination-prefix",),
        destination_prefix=_leaf(),
        next_hop=_c(
            NS.V4UR, next_hop_address=_leaf(), outgoing_interface=_leaf(), special_next_hop=_leaf()
        ),
    ),
)
_STATIC_ROUTES = _Node("container", children={(NS.V4UR, "ipv4"): _ROUTE_V4})

_SCHEMA = _Node(
    "container",
    children={
        (NS.SYS, "system"): _c(NS.SYS, hostname=_leaf()),
        (NS.IF, "interfaces"): _c(NS.IF, interface=_INTERFACE),
        (NS.ACL, "acls"): _c(
            NS.ACL,
            acl=_l(
                NS.ACL,
                ("name",),
                name=_leaf(),
                type=_leaf(),
                aces=_c(
                    NS.ACL,
                    ace=_l(
                        NS.ACL,
                        ("name",),
                        name=_leaf(),
                        matches=_c(
                            NS.ACL,
                            ipv4=_c(
                                NS.ACL,
                                protocol=_leaf(),
                                source_ipv4_network=_leaf(),
                                destination_ipv4_network=_leaf(),
                            ),
                            tcp=_c(
                                NS.ACL, source_port=_port_match(), destination_port=_port_match()
                            ),
                            udp=_c(
                                NS.ACL, source_port=_port_match(), destination_port=_port_match()
                            ),
                        ),
                        actions=_c(NS.ACL, forwarding=_leaf()),
                    ),
                ),
            ),
            attachment_points=_c(
                NS.ACL,
                interface=_l(
                    NS.ACL,
                    ("interface-id",),
                    interface_id=_leaf(),
                    ingress=_acl_sets,
                    egress=_acl_sets,
                ),
            ),
        ),
        (NS.RT, "routing"): _c(
            NS.RT,
            control_plane_protocols=_c(
                NS.RT,
                control_plane_protocol=_l(
                    NS.RT,
                    ("type", "name"),
                    type=_leaf(),
                    name=_leaf(),
                    static_routes=_STATIC_ROUTES,
                ),
            ),
        ),
    },
)


# NetGPT augment: an ace's time range (the device skips the rule outside it)
_ACE = _SCHEMA.children[(NS.ACL, "acls")].children[(NS.ACL, "acl")].children[(NS.ACL, "aces")]
_ACE.children[(NS.ACL, "ace")].children[(NS.NG, "time-range")] = _c(
    NS.NG, days=_leaf(), start=_leaf(), end=_leaf(), timezone=_leaf()
)


def _qn(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _split(tag: str) -> tuple[str, str]:
    q = etree.QName(tag)
    return q.namespace or "", q.localname


# --------------------------------------------------------------------------------------------
# DeviceConfig -> XML


def _sub(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(
        parent, _qn(ns, name), nsmap=None if parent.nsmap.get(None) == ns else {None: ns}
    )
    if text is not None:
        el.text = text
    return el


def _port_xml(parent: etree._Element, name: str, ports: PortRange) -> None:
    el = _sub(parent, NS.ACL, name)
    if ports.lower == ports.upper:
        _sub(el, NS.ACL, "operator", "eq")
        _sub(el, NS.ACL, "port", str(ports.lower))
    else:
        _sub(el, NS.ACL, "lower-port", str(ports.lower))
        _sub(el, NS.ACL, "upper-port", str(ports.upper))


def config_to_xml(config: DeviceConfig) -> etree._Element:
    """The config as a ``<data>`` element (NETCONF base namespace) holding the module trees."""
    data = etree.Element(_qn(NC_NS, "data"), nsmap={None: NC_NS})
    system = _sub(data, NS.SYS, "system")
    _sub(system, NS.SYS, "hostname", config.hostname)

    interfaces = _sub(data, NS.IF, "interfaces")
    for itf in config.interfaces:
        el = _sub(interfaces, NS.IF, "interface")
        _sub(el, NS.IF, "name", itf.name)
        _sub(el, NS.IF, "description", itf.description)
        t = etree.SubElement(el, _qn(NS.IF, "type"), nsmap={"ianaift": NS.IANAIFT})
        t.text = "ianaift:ethernetCsmacd"
        _sub(el, NS.IF, "enabled", "true" if itf.enabled else "false")
        if itf.ipv4_address is not None:
            iface = ipaddress.IPv4Interface(itf.ipv4_address)
            addr = _sub(_sub(el, NS.IP, "ipv4"), NS.IP, "address")
            _sub(addr, NS.IP, "ip", str(iface.ip))
            _sub(addr, NS.IP, "prefix-length", str(iface.network.prefixlen))
        if itf.igp_cost is not None:
            _sub(el, NS.NG, "igp-cost", str(itf.igp_cost))
        if itf.rate_limit is not None and (
            itf.rate_limit.ingress_mbps is not None or itf.rate_limit.egress_mbps is not None
        ):
            rl = _sub(el, NS.NG, "rate-limit")
            if itf.rate_limit.ingress_mbps is not None:
                _sub(rl, NS.NG, "ingress-mbps", _num(itf.rate_limit.ingress_mbps))
            if itf.rate_limit.egress_mbps is not None:
                _sub(rl, NS.NG, "egress-mbps", _num(itf.rate_limit.egress_mbps))
        for cp in itf.class_policers:
            c = _sub(el, NS.NG, "class-policer")
            _sub(c, NS.NG, "name", cp.name)
            _sub(c, NS.NG, "direction", cp.direction)
            _sub(c, NS.NG, "rate-mbps", _num(cp.rate_mbps))
            if cp.assured_mbps:
                _sub(c, NS.NG, "assured-mbps", _num(cp.assured_mbps))
            for seq, m in enumerate(cp.matches, start=1):
                mel = _sub(c, NS.NG, "match")
                _sub(mel, NS.NG, "seq", str(seq))
                _sub(mel, NS.NG, "protocol", m.protocol.value)
                _sub(mel, NS.NG, "source-ipv4-network", m.source_prefix)
                _sub(mel, NS.NG, "destination-ipv4-network", m.destination_prefix)
                if m.destination_ports is not None:
                    d = _sub(mel, NS.NG, "destination-port")
                    _sub(d, NS.NG, "lower-port", str(m.destination_ports.lower))
                    _sub(d, NS.NG, "upper-port", str(m.destination_ports.upper))

    acls = _sub(data, NS.ACL, "acls")
    for acl in config.acls:
        a = _sub(acls, NS.ACL, "acl")
        _sub(a, NS.ACL, "name", acl.name)
        _sub(a, NS.ACL, "type", "ipv4-acl-type")
        aces = _sub(a, NS.ACL, "aces")
        for rule in acl.rules:
            ace = _sub(aces, NS.ACL, "ace")
            _sub(ace, NS.ACL, "name", rule.name)
            matches = _sub(ace, NS.ACL, "matches")
            ipv4 = _sub(matches, NS.ACL, "ipv4")
            if rule.protocol.number is not None:
                _sub(ipv4, NS.ACL, "protocol", str(rule.protocol.number))
            _sub(ipv4, NS.ACL, "source-ipv4-network", rule.source_prefix)
            _sub(ipv4, NS.ACL, "destination-ipv4-network", rule.destination_prefix)
            if rule.source_ports or rule.destination_ports:
                l4 = _sub(matches, NS.ACL, rule.protocol.value)
                if rule.source_ports:
                    _port_xml(l4, "source-port", rule.source_ports)
                if rule.destination_ports:
                    _port_xml(l4, "destination-port", rule.destination_ports)
            _sub(_sub(ace, NS.ACL, "actions"), NS.ACL, "forwarding", rule.action.value)
            if rule.time_range is not None:
                tr = _sub(ace, NS.NG, "time-range")
                _sub(tr, NS.NG, "days", " ".join(rule.time_range.days))
                _sub(tr, NS.NG, "start", rule.time_range.start.strftime("%H:%M"))
                _sub(tr, NS.NG, "end", rule.time_range.end.strftime("%H:%M"))
                _sub(tr, NS.NG, "timezone", rule.time_range.timezone)
    attached = [i for i in config.interfaces if i.acl_ingress or i.acl_egress]
    if attached:
        points = _sub(acls, NS.ACL, "attachment-points")
        for itf in attached:
            p = _sub(points, NS.ACL, "interface")
            _sub(p, NS.ACL, "interface-id", itf.name)
            for direction, names in (("ingress", itf.acl_ingress), ("egress", itf.acl_egress)):
                if not names:
                    continue
                sets = _sub(_sub(p, NS.ACL, direction), NS.ACL, "acl-sets")
                for name in names:
                    _sub(_sub(sets, NS.ACL, "acl-set"), NS.ACL, "name", name)

    routing = _sub(data, NS.RT, "routing")
    cpps = _sub(routing, NS.RT, "control-plane-protocols")
    if config.static_routes:
        cpp = _sub(cpps, NS.RT, "control-plane-protocol")
        t = etree.SubElement(cpp, _qn(NS.RT, "type"), nsmap={"rt": NS.RT})
        t.text = "rt:static"
        _sub(cpp, NS.RT, "name", "static")
        v4 = _sub(_sub(cpp, NS.RT, "static-routes"), NS.V4UR, "ipv4")
        for route in config.static_routes:
            r = _sub(v4, NS.V4UR, "route")
            _sub(r, NS.V4UR, "destination-prefix", route.prefix)
            nh = _sub(r, NS.V4UR, "next-hop")
            if route.next_hop_address is not None:
                _sub(nh, NS.V4UR, "next-hop-address", route.next_hop_address)
            elif route.outgoing_interface is not None:
                _sub(nh, NS.V4UR, "outgoing-interface", route.outgoing_interface)
            else:
                _sub(nh, NS.V4UR, "special-next-hop", "blackhole")
    return data


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --------------------------------------------------------------------------------------------
# XML -> DeviceConfig (strict: unknown elements and bad values are errors with a path)


class _Reader:
    """Walks a config tree checked against the schema, producing error paths on the way."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root

    def check(self, el: etree._Element, node: _Node, path: str) -> None:
        for child in el:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            key = _split(child.tag)
            sub = node.children.get(key)
            cpath = f"{path}/{key[1]}"
            if sub is None:
                raise ConfigValidationError(
                    f"unknown element {key[1]!r} in namespace {key[0] or '(none)'}",
                    path=cpath,
                    tag="unknown-element",
                )
            if sub.kind == "leaf":
                if len(child):
                    raise ConfigValidationError(
                        f"{key[1]!r} is a leaf and cannot hold elements",
                        path=cpath,
                        tag="bad-element",
                    )
            else:
                if sub.kind == "list":
                    cpath = _list_path(child, sub, cpath)
                self.check(child, sub, cpath)


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return (el.text or "").strip()


def _find(el: etree._Element, ns: str, *names: str) -> etree._Element | None:
    cur: etree._Element | None = el
    for name in names:
        if cur is None:
            return None
        cur = cur.find(_qn(ns, name))
    return cur


def _list_path(el: etree._Element, node: _Node, path: str) -> str:
    ns = _split(el.tag)[0]
    preds = "".join(f"[{k}='{_text(el.find(_qn(ns, k))) or ''}']" for k in node.keys)
    return path + preds


def _int(value: str | None, path: str, *, low: int, high: int) -> int:
    try:
        number = int((value or "").strip())
    except ValueError:
        raise ConfigValidationError(
            f"{value!r} is not an integer ({low}..{high})", path=path
        ) from None
    if not low <= number <= high:
        raise ConfigValidationError(f"{number} is out of range {low}..{high}", path=path)
    return number


def _float(value: str | None, path: str) -> float:
    try:
        number = float((value or "").strip())
    except ValueError:
        raise ConfigValidationError(f"{value!r} is not a number", path=path) from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigValidationError(f"{value!r} must be a positive finite number", path=path)
    return number


def _bool(value: str | None, path: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ConfigValidationError(f"{value!r} is not a boolean; use true or false", path=path)


def _ports(el: etree._Element | None, path: str) -> PortRange | None:
    if el is None:
        return None
    op = _text(_find(el, NS.ACL, "operator"))
    port = _text(_find(el, NS.ACL, "port"))
    lower = _text(_find(el, NS.ACL, "lower-port"))
    upper = _text(_find(el, NS.ACL, "upper-port"))
    if port is not None:
        if op not in (None, "eq"):
            raise ConfigValidationError(
                f"port operator {op!r} is not supported; use eq or lower-port/upper-port", path=path
            )
        p = _int(port, f"{path}/port", low=0, high=65535)
        return PortRange(lower=p, upper=p)
    if lower is None or upper is None:
        raise ConfigValidationError(
            "a port match needs <port> (with operator eq) or both lower-port and upper-port",
            path=path,
            tag="missing-element",
        )
    lo = _int(lower, f"{path}/lower-port", low=0, high=65535)
    hi = _int(upper, f"{path}/upper-port", low=0, high=65535)
    if lo > hi:
        raise ConfigValidationError(f"port range {lo}-{hi} is reversed", path=path)
    return PortRange(lower=lo, upper=hi)


def _class_policer(el: etree._Element, path: str) -> ClassPolicer:
    values: dict[str, object] = {}
    for leaf in ("name", "direction", "rate-mbps"):
        text = _text(_find(el, NS.NG, leaf))
        if text is None:
            raise ConfigValidationError(f"class-policer needs {leaf}", path=f"{path}/{leaf}",
                                        tag="missing-element")
        values[leaf.replace("-", "_")] = text
    if values["direction"] not in ("ingress", "egress"):
        raise ConfigValidationError(
            f"direction {values['direction']!r} is not ingress or egress", path=f"{path}/direction")
    values["rate_mbps"] = _float(str(values["rate_mbps"]), f"{path}/rate-mbps")
    assured = _text(_find(el, NS.NG, "assured-mbps"))
    if assured is not None:
        values["assured_mbps"] = _float(assured, f"{path}/assured-mbps")
    matches = []
    for mel in el.iterfind(_qn(NS.NG, "match")):
        mpath = f"{path}/match[seq='{_text(_find(mel, NS.NG, 'seq'))}']"
        match: dict[str, object] = {}
        proto = _text(_find(mel, NS.NG, "protocol"))
        if proto is not None:
            if proto not in {p.value for p in IPProtocol}:
                raise ConfigValidationError(
                    f"protocol {proto!r} is not any, tcp, udp or icmp", path=f"{mpath}/protocol")
            match["protocol"] = IPProtocol(proto)
        for leaf, key in (("source-ipv4-network", "source_prefix"),
                          ("destination-ipv4-network", "destination_prefix")):
            text = _text(_find(mel, NS.NG, leaf))
            if text is not None:
                match[key] = text
        ports = _find(mel, NS.NG, "destination-port")
        if ports is not None:
            lower = _int(_text(_find(ports, NS.NG, "lower-port")),
                         f"{mpath}/destination-port/lower-port", low=0, high=65535)
            upper = _int(_text(_find(ports, NS.NG, "upper-port")),
                         f"{mpath}/destination-port/upper-port", low=0, high=65535)
            if lower > upper:
                raise ConfigValidationError(f"port range {lower}-{upper} is reversed",
                                            path=f"{mpath}/destination-port")
            match["destination_ports"] = PortRange(lower=lower, upper=upper)
        try:
            matches.append(TrafficMatch.model_validate(match))
        except ValidationError as exc:
            raise _validation(exc, mpath) from None
    values["matches"] = tuple(matches)
    try:
        return ClassPolicer.model_validate(values)
    except ValidationError as exc:
        raise _validation(exc, path) from None


_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _time_range(el: etree._Element, path: str) -> TimeWindow:
    """An ace's ``time-range``: ``days`` (space-separated mon..sun), ``start``/``end`` HH:MM."""
    values: dict[str, object] = {}
    for leaf in ("start", "end"):
        text = _text(_find(el, NS.NG, leaf))
        if text is None:
            raise ConfigValidationError(
                f"time-range needs {leaf} (HH:MM)", path=f"{path}/{leaf}", tag="missing-element"
            )
        try:
            values[leaf] = time.fromisoformat(text)
        except ValueError:
            raise ConfigValidationError(
                f"{leaf} {text!r} is not a time of day such as 08:00", path=f"{path}/{leaf}"
            ) from None
    days = _text(_find(el, NS.NG, "days"))
    if days is not None:
        names = tuple(days.split())
        bad = [d for d in names if d not in _WEEKDAY_NAMES]
        if bad:
            raise ConfigValidationError(
                f"unknown weekday {bad[0]!r} in time-range days; use mon tue wed thu fri sat sun",
                path=f"{path}/days",
            )
        values["days"] = names
    zone = _text(_find(el, NS.NG, "timezone"))
    if zone is not None:
        values["timezone"] = zone
    try:
        return TimeWindow.model_validate(values)
    except ValidationError as exc:
        raise _validation(exc, path) from None


def _validation(exc: ValidationError, path: str) -> ConfigValidationError:
    first = exc.errors()[0]
    where = "/".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return ConfigValidationError(msg, path=f"{path}/{where}" if where else path)


def config_from_xml(data: etree._Element) -> DeviceConfig:
    """Parse a ``<config>``/``<data>`` element into a validated :class:`DeviceConfig`.

    Raises :class:`ConfigValidationError` with an error-path for unknown elements (tag
    ``unknown-element``), wrong values (``invalid-value``) and missing keys (``missing-element``).
    """
    _Reader(data).check(data, _SCHEMA, "")
    hostname = _text(_find(data, NS.SYS, "system", "hostname"))
    if not hostname:
        raise ConfigValidationError(
            "the device needs a hostname", path="/system/hostname", tag="missing-element"
        )

    # ACL attachment points, keyed by interface
    attach: dict[str, dict[str, list[str]]] = {}
    for p in data.iterfind(
        f"{_qn(NS.ACL, 'acls')}/{_qn(NS.ACL, 'attachment-points')}/{_qn(NS.ACL, 'interface')}"
    ):
        itf_id = _text(_find(p, NS.ACL, "interface-id"))
        ppath = f"/acls/attachment-points/interface[interface-id='{itf_id}']"
        if not itf_id:
            raise ConfigValidationError("missing interface-id", path=ppath, tag="missing-element")
        slot = attach.setdefault(itf_id, {"ingress": [], "egress": []})
        for direction in ("ingress", "egress"):
            for s in p.iterfind(
                f"{_qn(NS.ACL, direction)}/{_qn(NS.ACL, 'acl-sets')}/{_qn(NS.ACL, 'acl-set')}"
            ):
                name = _text(_find(s, NS.ACL, "name"))
                if not name:
                    raise ConfigValidationError(
                        "acl-set without name", path=f"{ppath}/{direction}", tag="missing-element"
                    )
                slot[direction].append(name)

    interfaces: list[InterfaceConfig] = []
    for el in data.iterfind(f"{_qn(NS.IF, 'interfaces')}/{_qn(NS.IF, 'interface')}"):
        name = _text(_find(el, NS.IF, "name"))
        ipath = f"/interfaces/interface[name='{name}']"
        if not name:
            raise ConfigValidationError("interface without name", path=ipath, tag="missing-element")
        enabled_txt = _text(_find(el, NS.IF, "enabled"))
        enabled = True if enabled_txt is None else _bool(enabled_txt, f"{ipath}/enabled")
        addresses = el.findall(f"{_qn(NS.IP, 'ipv4')}/{_qn(NS.IP, 'address')}")
        if len(addresses) > 1:
            raise ConfigValidationError(
                f"interface {name!r} has {len(addresses)} IPv4 addresses; one is supported: "
                "replace the address instead of adding a second",
                path=f"{ipath}/ipv4/address",
                tag="too-many-elements",
            )
        addr_el = addresses[0] if addresses else None
        address = None
        if addr_el is not None:
            ip = _text(_find(addr_el, NS.IP, "ip"))
            plen = _int(
                _text(_find(addr_el, NS.IP, "prefix-length")),
                f"{ipath}/ipv4/address/prefix-length",
                low=0,
                high=32,
            )
            address = f"{ip}/{plen}"
        cost_txt = _text(_find(el, NS.NG, "igp-cost"))
        cost = None if cost_txt is None else _int(cost_txt, f"{ipath}/igp-cost", low=1, high=65535)
        rl_el = _find(el, NS.NG, "rate-limit")
        rate_limit = None
        if rl_el is not None:
            ing = _text(_find(rl_el, NS.NG, "ingress-mbps"))
            egr = _text(_find(rl_el, NS.NG, "egress-mbps"))
            rate_limit = RateLimit(
                ingress_mbps=None
                if ing is None
                else _float(ing, f"{ipath}/rate-limit/ingress-mbps"),
                egress_mbps=None if egr is None else _float(egr, f"{ipath}/rate-limit/egress-mbps"),
            )
        classes = tuple(
            _class_policer(c, f"{ipath}/class-policer[name='{_text(_find(c, NS.NG, 'name'))}']")
            for c in el.iterfind(_qn(NS.NG, "class-policer"))
        )
        slot = attach.pop(name, {"ingress": [], "egress": []})
        try:
            interfaces.append(
                InterfaceConfig(
                    name=name,
                    description=_text(_find(el, NS.IF, "description")) or "",
                    enabled=enabled,
                    ipv4_address=address,
                    igp_cost=cost,
                    acl_ingress=tuple(slot["ingress"]),
                    acl_egress=tuple(slot["egress"]),
                    rate_limit=rate_limit,
                    class_policers=classes,
                )
            )
        except ValidationError as exc:
            raise _validation(exc, ipath) from None
    if attach:
        bad = sorted(attach)[0]
        raise ConfigValidationError(
            f"ACL attachment names interface {bad!r}, which is not configured",
            path=f"/acls/attachment-points/interface[interface-id='{bad}']",
            tag="data-missing",
        )

    acls: list[Acl] = []
    for a in data.iterfind(f"{_qn(NS.ACL, 'acls')}/{_qn(NS.ACL, 'acl')}"):
        acl_name = _text(_find(a, NS.ACL, "name"))
        apath = f"/acls/acl[name='{acl_name}']"
        if not acl_name:
            raise ConfigValidationError("acl without name", path=apath, tag="missing-element")
        rules: list[AclRule] = []
        for ace in a.iterfind(f"{_qn(NS.ACL, 'aces')}/{_qn(NS.ACL, 'ace')}"):
            rule_name = _text(_find(ace, NS.ACL, "name"))
            rpath = f"{apath}/aces/ace[name='{rule_name}']"
            action = _text(_find(ace, NS.ACL, "actions", "forwarding"))
            if action is None:
                raise ConfigValidationError(
                    "ace without actions/forwarding", path=rpath, tag="missing-element"
                )
            action = action.split(":")[-1]
            if action not in {a.value for a in AclAction}:
                raise ConfigValidationError(
                    f"forwarding action {action!r} is not accept, drop or reject",
                    path=f"{rpath}/actions/forwarding",
                )
            ipv4 = _find(ace, NS.ACL, "matches", "ipv4")
            proto_txt = _text(_find(ipv4, NS.ACL, "protocol")) if ipv4 is not None else None
            protocol = IPProtocol.ANY
            if proto_txt is not None:
                number = _int(proto_txt, f"{rpath}/matches/ipv4/protocol", low=0, high=255)
                try:
                    protocol = IPProtocol.from_number(number)
                except ValueError as exc:
                    raise ConfigValidationError(
                        str(exc), path=f"{rpath}/matches/ipv4/protocol"
                    ) from None
            l4name = None
            for candidate in ("tcp", "udp"):
                if _find(ace, NS.ACL, "matches", candidate) is not None:
                    l4name = candidate
            if l4name is not None and protocol is IPProtocol.ANY:
                protocol = IPProtocol(l4name)
            if l4name is not None and protocol.value != l4name:
                raise ConfigValidationError(
                    f"{l4name} port match on an ace whose protocol is {protocol.value}",
                    path=f"{rpath}/matches/{l4name}",
                )
            l4 = _find(ace, NS.ACL, "matches", l4name) if l4name else None
            kwargs: dict[str, object] = {}
            if ipv4 is not None:
                for leaf, arg in (
                    ("source-ipv4-network", "source_prefix"),
                    ("destination-ipv4-network", "destination_prefix"),
                ):
                    val = _text(_find(ipv4, NS.ACL, leaf))
                    if val is not None:
                        kwargs[arg] = val
            tr_el = _find(ace, NS.NG, "time-range")
            if tr_el is not None:
                kwargs["time_range"] = _time_range(tr_el, f"{rpath}/time-range")
            try:
                rules.append(
                    AclRule(
                        name=rule_name or "",
                        action=AclAction(action),
                        protocol=protocol,
                        source_ports=_ports(
                            _find(l4, NS.ACL, "source-port") if l4 is not None else None,
                            f"{rpath}/matches/{l4name}/source-port",
                        ),
                        destination_ports=_ports(
                            _find(l4, NS.ACL, "destination-port") if l4 is not None else None,
                            f"{rpath}/matches/{l4name}/destination-port",
                        ),
                        **kwargs,
                    )
                )
            except ValidationError as exc:
                raise _validation(exc, rpath) from None
        try:
            acls.append(Acl(name=acl_name, rules=tuple(rules)))
        except ValidationError as exc:
            raise _validation(exc, apath) from None

    routes: list[StaticRoute] = []
    for cpp in data.iterfind(
        f"{_qn(NS.RT, 'routing')}/{_qn(NS.RT, 'control-plane-protocols')}/"
        f"{_qn(NS.RT, 'control-plane-protocol')}"
    ):
        ptype = (_text(_find(cpp, NS.RT, "type")) or "").split(":")[-1]
        if ptype != "static":
            raise ConfigValidationError(
                f"control-plane-protocol type {ptype!r} is not supported; only static",
                path="/routing/control-plane-protocols/control-plane-protocol/type",
            )
        for r in cpp.iterfind(
            f"{_qn(NS.RT, 'static-routes')}/{_qn(NS.V4UR, 'ipv4')}/{_qn(NS.V4UR, 'route')}"
        ):
            prefix = _text(_find(r, NS.V4UR, "destination-prefix")) or ""
            rpath = (
                "/routing/control-plane-protocols/control-plane-protocol/static-routes/ipv4/"
                f"route[destination-prefix='{prefix}']"
            )
            special = _text(_find(r, NS.V4UR, "next-hop", "special-next-hop"))
            if special is not None and special.split(":")[-1] != "blackhole":
                raise ConfigValidationError(
                    f"special-next-hop {special!r} is not supported; use blackhole",
                    path=f"{rpath}/next-hop/special-next-hop",
                )
            try:
                routes.append(
                    StaticRoute(
                        prefix=prefix,
                        next_hop_address=_text(_find(r, NS.V4UR, "next-hop", "next-hop-address")),
                        outgoing_interface=_text(
                            _find(r, NS.V4UR, "next-hop", "outgoing-interface")
                        ),
                        discard=special is not None,
                    )
                )
            except ValidationError as exc:
                raise _validation(exc, rpath) from None
    try:
        return DeviceConfig(
            hostname=hostname,
            interfaces=tuple(interfaces),
            acls=tuple(acls),
            static_routes=tuple(routes),
        )
    except ValidationError as exc:
        raise _validation(exc, "") from None


# --------------------------------------------------------------------------------------------
# edit-config


def _operation(el: etree._Element, inherited: EditOperation) -> EditOperation:
    raw = el.get(_qn(NC_NS, "operation"))
    if raw is None:
        return inherited
    try:
        op = EditOperation(raw)
    except ValueError:
        raise ConfigValidationError(
            f"operation {raw!r} is not one of merge, replace, create, delete, remove",
            path=_path_of(el),
            tag="bad-attribute",
        ) from None
    if op is EditOperation.NONE:
        raise ConfigValidationError(
            "operation 'none' is only valid as default-operation",
            path=_path_of(el),
            tag="bad-attribute",
        )
    return op


def _path_of(el: etree._Element) -> str:
    parts: list[str] = []
    cur: etree._Element | None = el
    while cur is not None and _split(cur.tag) != (NC_NS, "config"):
        parts.append(_split(cur.tag)[1])
        cur = cur.getparent()
    return "/" + "/".join(reversed(parts))


def _match(target: etree._Element, edit: etree._Element, node: _Node) -> etree._Element | None:
    """The child of ``target`` that ``edit`` addresses (same tag, same list keys)."""
    ns = _split(edit.tag)[0]
    for cand in target.iterfind(edit.tag):
        if node.kind != "list":
            return cand
        if all(
            _key_value(k, cand.find(_qn(ns, k))) == _key_value(k, edit.find(_qn(ns, k)))
            for k in node.keys
        ):
            return cand
    return None


def _key_value(key: str, el: etree._Element | None) -> str | None:
    """A list key's value; identity keys (``type``: ``rt:static``) compare without prefix."""
    text = _text(el)
    if key != "type" or text is None:
        return text
    return text.rpartition(":")[2]


def _strip_ops(el: etree._Element) -> etree._Element:
    el = copy.deepcopy(el)
    for sub in el.iter():
        if isinstance(sub.tag, str):
            sub.attrib.pop(_qn(NC_NS, "operation"), None)
    return el


def _edit(
    target: etree._Element, edit: etree._Element, node: _Node, op: EditOperation, path: str
) -> None:
    for child in edit:
        if not isinstance(child.tag, str):
            continue
        key = _split(child.tag)
        sub = node.children.get(key)
        cpath = f"{path}/{key[1]}"
        if sub is None:
            raise ConfigValidationError(
                f"unknown element {key[1]!r} in namespace {key[0] or '(none)'}",
                path=cpath,
                tag="unknown-element",
            )
        if sub.kind == "list":
            for k in sub.keys:
                if child.find(_qn(key[0], k)) is None:
                    raise ConfigValidationError(
                        f"list entry {key[1]!r} lacks its key {k!r}",
                        path=cpath,
                        tag="missing-element",
                    )
            cpath = _list_path(child, sub, cpath)
        cop = _operation(child, op)
        existing = _match(target, child, sub)
        if cop is EditOperation.CREATE and existing is not None:
            raise ConfigValidationError(
                "create: the data already exists; use merge or replace",
                path=cpath,
                tag="data-exists",
            )
        if cop is EditOperation.DELETE and existing is None:
            raise ConfigValidationError(
                "delete: the data does not exist; use remove to ignore missing data",
                path=cpath,
                tag="data-missing",
            )
        if cop in (EditOperation.DELETE, EditOperation.REMOVE):
            if existing is not None:
                target.remove(existing)
            continue
        if cop is EditOperation.NONE:
            if existing is None:
                if sub.kind == "leaf":
                    continue
                # descend without creating unless a deeper operation creates something
                scratch = etree.SubElement(target, child.tag)
                for k in sub.keys:
                    etree.SubElement(scratch, _qn(key[0], k)).text = _text(
                        child.find(_qn(key[0], k))
                    )
                _edit(scratch, child, sub, cop, cpath)
                if _is_key_only(scratch, sub, key[0]):
                    target.remove(scratch)
                continue
            if sub.kind != "leaf":
                _edit(existing, child, sub, cop, cpath)
            continue
        if cop is EditOperation.REPLACE or sub.kind == "leaf":
            fresh = _strip_ops(child)
            if existing is not None:
                existing.addprevious(fresh)
                target.remove(existing)
            else:
                target.append(fresh)
            if cop is not EditOperation.REPLACE:
                _check_nested_ops(child)
            continue
        # merge / create on a container or list entry
        if existing is None:
            existing = etree.SubElement(target, child.tag)
        _edit(
            existing, child, sub, EditOperation.MERGE if cop is EditOperation.CREATE else cop, cpath
        )


def _is_key_only(el: etree._Element, node: _Node, ns: str) -> bool:
    return all(_split(c.tag) in {(ns, k) for k in node.keys} for c in el if isinstance(c.tag, str))


def _check_nested_ops(el: etree._Element) -> None:
    for sub in el.iterdescendants():
        if isinstance(sub.tag, str) and sub.get(_qn(NC_NS, "operation")) is not None:
            raise ConfigValidationError(
                "an operation attribute inside a leaf value is not allowed",
                path=_path_of(sub),
                tag="bad-attribute",
            )


def apply_edit(
    current: DeviceConfig,
    config: etree._Element,
    *,
    default_operation: EditOperation = EditOperation.MERGE,
) -> DeviceConfig:
    """Apply an ``edit-config`` ``<config>`` element to ``current`` and return the new config.

    Implements RFC 6241 merge/replace/create/delete/remove (``operation`` attributes) and the
    merge/replace/none default operations. ``current`` is never modified; any error raises
    :class:`ConfigValidationError` (with NETCONF error-tag and error-path) and nothing changes.
    """
    if default_operation is EditOperation.REPLACE:
        # The whole datastore becomes what <config> holds; the hostname stays unless replaced.
        base = etree.Element(_qn(NC_NS, "data"))
        system = etree.SubElement(base, _qn(NS.SYS, "system"))
        etree.SubElement(system, _qn(NS.SYS, "hostname")).text = current.hostname
        _edit(base, config, _SCHEMA, EditOperation.MERGE, "")
    else:
        base = config_to_xml(current)
        _edit(base, config, _SCHEMA, default_operation, "")
    return config_from_xml(base)


# --------------------------------------------------------------------------------------------
# operational state


@dataclass(frozen=True)
class InterfaceState:
    """Operational state of one interface as reported by ``<get>`` (ietf-interfaces state)."""

    name: str
    enabled: bool
    oper_up: bool
    speed_bps: int
    in_octets: int
    out_octets: int
    in_unicast_pkts: int
    out_unicast_pkts: int
    description: str = ""


def state_to_xml(data: etree._Element, states: Iterable[InterfaceState]) -> etree._Element:
    """Add operational leaves (oper-status, speed, statistics) to the interfaces of ``data``."""
    interfaces = data.find(_qn(NS.IF, "interfaces"))
    if interfaces is None:
        interfaces = _sub(data, NS.IF, "interfaces")
    by_name = {(_text(_find(i, NS.IF, "name")) or ""): i for i in interfaces}
    for st in states:
        el = by_name.get(st.name)
        if el is None:
            el = _sub(interfaces, NS.IF, "interface")
            _sub(el, NS.IF, "name", st.name)
        _sub(el, NS.IF, "oper-status", "up" if st.oper_up else "down")
        _sub(el, NS.IF, "speed", str(st.speed_bps))
        stats = _sub(el, NS.IF, "statistics")
        _sub(stats, NS.IF, "in-octets", str(st.in_octets))
        _sub(stats, NS.IF, "in-unicast-pkts", str(st.in_unicast_pkts))
        _sub(stats, NS.IF, "out-octets", str(st.out_octets))
        _sub(stats, NS.IF, "out-unicast-pkts", str(st.out_unicast_pkts))
    return data


def interfaces_state_from_xml(data: etree._Element) -> list[InterfaceState]:
    """Read the interface states out of a ``<get>`` reply's ``<data>``."""
    out: list[InterfaceState] = []
    for el in _iter_interfaces(data):

        def num(*names: str, _el: etree._Element = el) -> int:
            return int(_text(_find(_el, NS.IF, *names)) or 0)

        out.append(
            InterfaceState(
                name=_text(_find(el, NS.IF, "name")) or "",
                enabled=(_text(_find(el, NS.IF, "enabled")) or "true") == "true",
                oper_up=_text(_find(el, NS.IF, "oper-status")) == "up",
                speed_bps=num("speed"),
                in_octets=num("statistics", "in-octets"),
                out_octets=num("statistics", "out-octets"),
                in_unicast_pkts=num("statistics", "in-unicast-pkts"),
                out_unicast_pkts=num("statistics", "out-unicast-pkts"),
                description=_text(_find(el, NS.IF, "description")) or "",
            )
        )
    return out


def _iter_interfaces(data: etree._Element) -> Iterator[etree._Element]:
    yield from data.iterfind(f".//{_qn(NS.IF, 'interfaces')}/{_qn(NS.IF, 'interface')}")
