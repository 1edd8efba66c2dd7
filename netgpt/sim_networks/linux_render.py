"""What a :class:`~netgpt.device_config.DeviceConfig` means on a Linux router: the exact commands.

The lab backend runs each router as a network namespace with FRR (zebra + ospfd, driven through
``vtysh -N <router>``), nftables and tc. After every commit the router's device agent makes its
config real there; this module is the pure half of that work. It renders, never runs:

- :func:`render_nftables`: the ACLs as one ``nft -f -`` script that atomically replaces a table;
- :func:`next_time_range_change`: when that script must be rendered and loaded again;
- :func:`render_tc`: the per-interface rate limits and class policers as ``tc``/``ip`` commands;
- :func:`frr_config_commands`: the vtysh lines that move FRR from one config to the next
  (OSPF interface costs, static routes);
- :func:`ip_link_commands`: ``ip`` commands for interface state and addresses;
- :func:`parse_ip_link_json`: operational state read back from ``ip -j -s link show``.

Semantics are those of the digital twin (:mod:`netgpt.sim_networks.twin`), which the lab must
reproduce:

ACLs (nftables, table ``inet <table>``)
    Several ACLs attached in one direction of an interface are one ordered rule list (attachment
    order, then rule order); the first matching rule decides; no match accepts. Each interface
    direction with ACLs gets a regular chain (``in_<if>``, ``out_<if>``) that the base chains jump
    to: ``forward`` (ingress then egress), ``input`` (ingress: traffic to the router itself) and
    ``output`` (egress: traffic the router sends). Inside those chains ``accept`` is ``return``,
    so an ingress accept still meets the egress ACL; ``drop`` is ``drop``; ``reject`` answers TCP
    with a reset and everything else with ICMP administratively-prohibited (a ``reject`` rule for
    protocol ``any`` becomes two nft rules, TCP first). Rules are IPv4 rules (the model is IPv4):
    the jumps carry ``meta nfproto ipv4`` and IPv6 is left alone. OSPF (IP protocol 89) to and
    from the router is exempt, because the twin keeps a link up whatever its ACLs say; an ACL
    that dropped hellos would tear adjacencies down and the lab would route differently.
    Every rule has a ``counter`` and the ACL and rule names as its ``comment``. No ``ct state``
    shortcut: like the twin, a rule change also stops flows already established.

Time ranges
    A rule with a ``time_range`` is in the script only while its window contains ``now`` (the
    device's clock), exactly :meth:`AclRule.active_at`, which the twin also uses. Rules outside
    their window are listed as ``#`` comments. The agent must load the script again at
    :func:`next_time_range_change` (the reload is one nft transaction, so there is no gap).
    nftables' own ``meta hour``/``meta day`` are deliberately not used: nft converts ``meta hour``
    from the time zone of the process that loads the rules to UTC once, at load time (so a DST
    change silently shifts the window), while the kernel reads ``meta day`` in its own
    ``sys_tz``; a window crossing midnight would also need splitting by hand. Rendering the
    current state keeps one definition of "inside the window" for twin and lab.

Rate limits (tc: HTB, u32, IFB)
    Egress: an HTB tree on the interface capped at ``min(capacity, egress limit)``; class policers
    of direction egress are child classes capped at their rate, the rest goes to a default class.
    Ingress: the same tree on an IFB device (``ifb-<if>``) that the interface's ingress qdisc
    redirects all IPv4 to. Ingress is shaped, not policed, because the lab kernel has neither
    ``act_police`` nor ``cls_flower``/``cls_matchall``/``act_gact`` (only HTB, TBF, ingress,
    u32, bpf and mirred), and an nftables ``limit`` in byte mode keeps a bucket of one second of
    traffic on top of its burst, which lets a fresh flow through at up to twice the cap for a
    second. Measured on this kernel: TCP through a 10 Mbit/s IFB+HTB ingress cap gets 9.7 Mbit/s.
    One difference from the twin remains: tc ingress runs before netfilter, so traffic that the
    ingress ACL later drops has already used the ingress cap (the twin applies the ACL first).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from netgpt.device_config import (
    AclAction,
    AclRule,
    ClassPolicer,
    DeviceConfig,
    InterfaceConfig,
    IPProtocol,
    PortRange,
    RateLimit,
    StaticRoute,
    TrafficMatch,
)
from netgpt.errors import ConfigValidationError, NetworkRuntimeError
from netgpt.yang_xml import InterfaceState

__all__ = [
    "TcCommand",
    "frr_config_commands",
    "ifb_device",
    "ip_link_commands",
    "next_time_range_change",
    "parse_ip_link_json",
    "render_nftables",
    "render_tc",
]

# ---- names ---------------------------------------------------------------------------------

# Linux interface names: at most IFNAMSIZ - 1 = 15 bytes, no '/', ':' or whitespace; the model's
# own pattern already excludes everything else that could break out of a quoted nft string.
_LINUX_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # ACL and rule names (RuleName pattern)
_LAB_INTERFACE = re.compile(r"^eth([0-9]+)$")
_IFB_PREFIX = "ifb-"
_NFT_COMMENT_MAX = 128  # nft refuses longer comments


def _interface_path(name: str) -> str:
    return f"/interfaces/interface[name='{name}']"


def _linux_ifname(name: str) -> str:
    """``name`` if Linux can have an interface of that name, else ``ConfigValidationError``."""
    if name in (".", "..") or not _LINUX_IFNAME.match(name):
        raise ConfigValidationError(
            f"interface name {name!r} cannot exist on a Linux router (at most 15 characters "
            "from A-Z a-z 0-9 _ . -); the lab names its interfaces eth<N>, use those names",
            path=_interface_path(name),
        )
    return name


def _safe_name(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ConfigValidationError(
            f"{what} name {name!r} has characters the lab cannot quote safely; "
            "use 1-64 characters from A-Z a-z 0-9 _ . : -"
        )
    return name


def ifb_device(interface: str) -> str:
    """The IFB device that carries ``interface``'s ingress traffic shaping (``ifb-<interface>``).

    Raises ``ConfigValidationError`` when the name would exceed Linux's 15 characters.
    """
    name = _IFB_PREFIX + _linux_ifname(interface)
    if len(name) > 15:
        raise ConfigValidationError(
            f"interface {interface!r} is too long to shape its ingress: its IFB device "
            f"{name!r} would exceed Linux's 15-character limit; use a name of at most "
            f"{15 - len(_IFB_PREFIX)} characters such as eth<N>",
            path=_interface_path(interface),
        )
    return name


def _moment(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ConfigValidationError(
            f"the device time {now.isoformat()} has no time zone; pass an aware datetime "
            "such as datetime.now(UTC)"
        )
    return now


def _printable(text: str) -> str:
    """``text`` with anything outside printable ASCII replaced, for ``#`` comment lines."""
    return re.sub(r"[^\x20-\x7e]", "?", text)


# ---- nftables ------------------------------------------------------------------------------


def _nft_ports(proto: str, which: str, ports: PortRange | None) -> list[str]:
    if ports is None:
        return []
    return [f"{proto} {which} {ports.lower}" if ports.lower == ports.upper
            else f"{proto} {which} {ports.lower}-{ports.upper}"]


def _nft_match(
    protocol: IPProtocol,
    source_prefix: str,
    destination_prefix: str,
    source_ports: PortRange | None,
    destination_ports: PortRange | None,
) -> list[str]:
    """The nft expressions of one match; an empty list matches every IPv4 packet."""
    out: list[str] = []
    if ipaddress.IPv4Network(source_prefix).prefixlen:
        out.append(f"ip saddr {source_prefix}")
    if ipaddress.IPv4Network(destination_prefix).prefixlen:
        out.append(f"ip daddr {destination_prefix}")
    if protocol is not IPProtocol.ANY:
        out.append(f"meta l4proto {protocol.value}")
        out += _nft_ports(protocol.value, "sport", source_ports)
        out += _nft_ports(protocol.value, "dport", destination_ports)
    return out


def _nft_comment(acl: str, rule: str) -> str:
    text = f"{acl}/{rule}"
    return f'comment "{text if len(text) <= _NFT_COMMENT_MAX else rule}"'


def _nft_rule_lines(acl: str, rule: AclRule) -> list[str]:
    """One ACL rule as nft rules for a per-interface chain (``accept`` becomes ``return``)."""
    _safe_name(rule.name, "ACL rule")
    match = _nft_match(rule.protocol, rule.source_prefix, rule.destination_prefix,
                       rule.source_ports, rule.destination_ports)
    comment = _nft_comment(acl, rule.name)

    def line(*parts: str) -> str:
        return " ".join((*match, *parts, comment))

    if rule.action is AclAction.ACCEPT:
        return [line("counter", "return")]
    if rule.action is AclAction.DROP:
        return [line("counter", "drop")]
    if rule.protocol is IPProtocol.TCP:
        return [line("counter", "reject with tcp reset")]
    if rule.protocol is IPProtocol.ANY:
        return [line("meta l4proto tcp", "counter", "reject with tcp reset"),
                line("counter", "reject with icmpx admin-prohibited")]
    return [line("counter", "reject with icmpx admin-prohibited")]


def _attached_rules(config: DeviceConfig, names: tuple[str, ...]) -> Iterator[tuple[str, AclRule]]:
    for name in names:
        _safe_name(name, "ACL")
        try:
            acl = config.acl(name)
        except KeyError:
            raise ConfigValidationError(
                f"ACL {name!r} is attached but not defined; define it or remove the attachment",
                path=f"/acls/acl[name='{name}']",
            ) from None
        for rule in acl.rules:
            yield name, rule


def _acl_chain(config: DeviceConfig, chain: str, names: tuple[str, ...],
               moment: datetime) -> list[str]:
    lines = [f"\tchain {chain} {{", f"\t\t# ACLs {', '.join(names)}: first match decides"]
    for acl, rule in _attached_rules(config, names):
        if rule.active_at(moment):
            lines += [f"\t\t{text}" for text in _nft_rule_lines(acl, rule)]
        else:
            lines.append(f"\t\t# {acl}/{rule.name} inactive now, time range "
                         f"{_printable(str(rule.time_range))}")
    lines.append("\t}")
    return lines


def render_nftables(
    config: DeviceConfig, *, table: str = "netgpt", now: datetime | None = None
) -> str:
    """An ``nft -f -`` script that atomically replaces table ``inet <table>`` with the ACLs.

    The script starts ``add table`` / ``delete table`` so it loads whether or not the table
    exists, and nft applies the whole file as one transaction: traffic never sees a half-made
    rule set. ``now`` is the device clock (aware; default: now, UTC): rules with a time range are
    rendered only if their window contains it, so the caller must render and load again at
    :func:`next_time_range_change`. See the module docstring for the rule semantics.

    Raises ``ConfigValidationError`` for a table name that is not a plain identifier, an
    interface name Linux cannot have, a name that cannot be quoted, or a naive ``now``.
    """
    if not _TABLE_NAME.match(table):
        raise ConfigValidationError(
            f"nftables table name {table!r} is not a plain identifier; use a letter followed "
            "by up to 31 letters, digits or underscores"
        )
    moment = _moment(now)
    chains: list[str] = []
    forward_in: list[str] = []
    forward_out: list[str] = []
    for itf in config.interfaces:
        if not (itf.acl_ingress or itf.acl_egress):
            continue
        name = _linux_ifname(itf.name)
        if itf.acl_ingress:
            chains += _acl_chain(config, f"in_{name}", itf.acl_ingress, moment)
            forward_in.append(f'meta nfproto ipv4 iifname "{name}" jump in_{name}')
        if itf.acl_egress:
            chains += _acl_chain(config, f"out_{name}", itf.acl_egress, moment)
            forward_out.append(f'meta nfproto ipv4 oifname "{name}" jump out_{name}')
    ospf = 'meta nfproto ipv4 ip protocol 89 accept comment "OSPF is exempt from ACLs"'

    def base(chain: str, hook: str, rules: list[str]) -> list[str]:
        head = f"\t\ttype filter hook {hook} priority filter; policy accept;"
        return [f"\tchain {chain} {{", head, *(f"\t\t{r}" for r in rules), "\t}"]

    change = next_time_range_change(config, now=moment)
    header = [
        f"# netgpt ACLs of {_printable(config.hostname)}, rendered for {moment.isoformat()}",
        "# render and load again at "
        + (change.isoformat() if change is not None else "the next config change"),
        f"add table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
    ]
    body = [
        *chains,
        *base("forward", "forward", [*forward_in, *forward_out]),
        *base("input", "input", [ospf, *forward_in]),
        *base("output", "output", [ospf, *forward_out]),
        "}",
    ]
    return "\n".join([*header, *body]) + "\n"


def next_time_range_change(config: DeviceConfig, *, now: datetime | None = None) -> datetime | None:
    """When the next rule attached to an interface enters or leaves its time range after ``now``.

    ``None`` when no attached rule has a time range. The ACL script of :func:`render_nftables`
    is correct from ``now`` until this moment; the agent loads a fresh one then.
    """
    moment = _moment(now)
    changes: list[datetime] = []
    for itf in config.interfaces:
        for _acl, rule in _attached_rules(config, (*itf.acl_ingress, *itf.acl_egress)):
            window = rule.time_range
            if window is None:
                continue
            changes.append(window.next_outside(moment) if window.contains(moment)
                           else window.next_inside(moment))
    return min(changes, default=None)


# ---- tc ------------------------------------------------------------------------------------

# Sizing, for rates from kbit/s to 10 Gbit/s on veth pairs (about 100 Mbit/s in the lab):
# - burst/cburst: 10 ms of the class's rate, but at least 80 KiB. veth passes GSO packets of up
#   to 64 KiB unsegmented and HTB charges them with their per-segment headers (about 68 KB), so a
#   smaller bucket could not hold one packet; 10 ms covers HTB's timer slack without letting a
#   class run far ahead of its rate (100 Mbit/s -> 125 000 B).
# - quantum: what a class may send per round when borrowing spare rate, proportional to its
#   assured rate (10 ms worth: 125 000 B at 100 Mbit/s) like HTB's own rate/r2q rule, but set
#   explicitly within [one full frame, HTB's 200 000 B ceiling] so the kernel neither warns nor
#   clamps.
# - leaf queue: bfifo of 50 ms at the class's ceiling, at least 80 KiB (a byte-limited queue
#   smaller than one GSO packet would drop every such packet), at most 16 MiB: room for TCP to
#   keep the class busy, little enough that a capped class does not add seconds of delay.
#   (fq_codel and sfq are not built into the lab kernel.) Measured with TCP on veth: 9.7 Mbit/s
#   of goodput through 10 Mbit/s caps (egress, and ingress via IFB), 2.96 through a 3 Mbit/s
#   class, 96 through 100 Mbit/s.
_SHAPER_BURST_S = 0.010
_QUEUE_S = 0.050
_MIN_BURST_BYTES = 80 * 1024
_MAX_QUEUE_BYTES = 16 * 1024 * 1024
_MIN_QUANTUM = 1514
_MAX_QUANTUM = 200_000
_UNCAPPED_KBIT = 10_000_000  # HTB needs a parent rate; 10 Gbit/s is above what a veth forwards
_DEFAULT_MINOR = 0x2
_FIRST_CLASS_MINOR = 0x10
_MAX_FILTERS = 0xFFFF


@dataclass(frozen=True)
class TcCommand:
    """One command of an interface's traffic-control set-up, run in the router's namespace.

    ``argv[0]`` is ``tc`` or ``ip`` (the latter to create or delete the ingress IFB device).
    ``ignore_errors`` marks clean-up commands (deleting what may not exist); the executor runs
    them and ignores their failure. Any other failure means the set-up is incomplete.
    """

    argv: tuple[str, ...]
    ignore_errors: bool = False


def _kbit(mbps: float, what: str, path: str) -> int:
    if not math.isfinite(mbps) or mbps <= 0:
        raise ConfigValidationError(
            f"{what} {mbps!r} Mbit/s is not a positive finite rate; set a rate such as 100",
            path=path,
        )
    return max(1, round(mbps * 1000))


def _bytes_per_s(kbit: int) -> int:
    return kbit * 125  # tc's kbit is 1000 bit/s


def _burst(kbit: int) -> int:
    return max(math.ceil(_bytes_per_s(kbit) * _SHAPER_BURST_S), _MIN_BURST_BYTES)


def _quantum(kbit: int) -> int:
    return min(max(_bytes_per_s(kbit) // 100, _MIN_QUANTUM), _MAX_QUANTUM)


def _queue(kbit: int) -> int:
    return min(max(math.ceil(_bytes_per_s(kbit) * _QUEUE_S), _MIN_BURST_BYTES),
               _MAX_QUEUE_BYTES)


def _port_blocks(ports: PortRange) -> list[tuple[int, int]]:
    """``ports`` as the fewest ``(value, mask)`` pairs whose union is exactly the range."""
    out: list[tuple[int, int]] = []
    low, high = ports.lower, ports.upper
    while low <= high:
        size = low & -low if low else 1 << 16  # largest aligned block starting at low...
        while low + size - 1 > high:  # ...that stays inside the range
            size >>= 1
        out.append((low, 0xFFFF & ~(size - 1)))
        low += size
    return out


def _u32_matches(match: TrafficMatch) -> list[list[str]]:
    """u32 selectors for one class match; several when a port range needs several masks.

    u32 reads fixed offsets from the IPv4 header, so a port match also requires a 20-byte header
    (no options) and a first fragment: packets with IP options and later fragments never match
    a port-based class and fall through to the next class or the default class.
    """
    base: list[str] = []
    if match.protocol is not IPProtocol.ANY:
        base += ["match", "ip", "protocol", str(match.protocol.number), "0xff"]
    for field, prefix in (("src", match.source_prefix), ("dst", match.destination_prefix)):
        if ipaddress.IPv4Network(prefix).prefixlen:
            base += ["match", "ip", field, prefix]
    if match.destination_ports is None:
        return [base or ["match", "u32", "0", "0"]]
    guard = ["match", "u8", "0x05", "0x0f", "at", "0", "match", "u16", "0x0000", "0x1fff",
             "at", "6"]
    return [[*base, *guard, "match", "ip", "dport", str(value), f"0x{mask:04x}"]
            for value, mask in _port_blocks(match.destination_ports)]


def _htb(device: str, cap_kbit: int | None,
         classes: list[tuple[ClassPolicer, int, int | None]]) -> list[
        TcCommand]:
    """An HTB tree on ``device``: parent 1:1 at the cap, one class per policer, default 1:2.

    The classes' assured rates add up to at most the parent's, because HTB lets a class below
    its assured rate send without asking its parent: a larger sum would break the cap. While
    they fit, a cap class is assured its whole rate (rate = ceil), a guarantee class
    (``assured_mbps``) what it reserves (borrowing up to its ceiling), and the default class the
    rest; when they do not (policers adding up to nearly the cap or more), every class, the
    default one with a fair share of ``cap / (classes + 1)``, is assured a proportional part
    and still capped at its own ceiling.
    """
    if len(classes) > 0xFFFE - _FIRST_CLASS_MINOR:
        raise ConfigValidationError(
            f"{len(classes)} class policers on {device} are more than HTB can number; "
            "merge classes"
        )
    parent = cap_kbit if cap_kbit is not None else max(
        [_UNCAPPED_KBIT, *(rate for _c, rate, _a in classes)])
    ceils = [min(rate, parent) for _c, rate, _a in classes]
    # a cap is assured its whole ceiling; a guarantee (assured_mbps) only what it reserves
    wants = [ceil if assured is None else min(assured, ceil)
             for (_c, _rate, assured), ceil in zip(classes, ceils, strict=True)]
    reserve = parent // (len(classes) + 1)
    if sum(wants) + reserve <= parent:
        assured = wants
        default = parent - sum(wants)
    else:
        total = sum(wants) + reserve
        assured = [max(1, w * parent // total) for w in wants]
        default = max(1, reserve * parent // total)

    def tc(*args: str) -> TcCommand:
        return TcCommand(("tc", *args))

    def klass(minor: int, parent_id: str, rate: int, ceil: int) -> list[TcCommand]:
        cmds = [tc("class", "add", "dev", device, "parent", parent_id, "classid",
                   f"1:{minor:x}", "htb", "rate", f"{rate}kbit", "ceil", f"{ceil}kbit",
                   "burst", f"{_burst(rate)}b", "cburst", f"{_burst(ceil)}b",
                   "quantum", str(_quantum(rate)))]
        if minor != 1:
            cmds.append(tc("qdisc", "add", "dev", device, "parent", f"1:{minor:x}", "handle",
                           f"{minor:x}:", "bfifo", "limit", str(_queue(ceil))))
        return cmds

    cmds = [tc("qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default",
               f"{_DEFAULT_MINOR:x}")]
    cmds += klass(1, "1:", parent, parent)
    cmds += klass(_DEFAULT_MINOR, "1:1", default, parent)
    prio = 0
    for i, ((policer, _r, _a), ceil, rate) in enumerate(
            zip(classes, ceils, assured, strict=True)):
        minor = _FIRST_CLASS_MINOR + i
        cmds += klass(minor, "1:1", min(rate, ceil), ceil)
        for match in policer.matches:
            for selector in _u32_matches(match):
                prio += 1
                if prio > _MAX_FILTERS:
                    raise ConfigValidationError(
                        f"the class policers on {device} need more than {_MAX_FILTERS} u32 "
                        "filters (port ranges split into aligned blocks); use fewer matches "
                        "or port ranges aligned to powers of two"
                    )
                cmds.append(tc("filter", "add", "dev", device, "parent", "1:", "protocol",
                               "ip", "prio", str(prio), "u32", *selector,
                               "flowid", f"1:{minor:x}"))
    return cmds


def render_tc(
    interface: str,
    *,
    capacity_mbps: float | None,
    rate_limit: RateLimit | None,
    class_policers: tuple[ClassPolicer, ...],
) -> list[TcCommand]:
    """The commands that make ``interface``'s rate limits and class policers real, from scratch.

    First clean-up (``ignore_errors``): delete the root and ingress qdiscs and the interface's
    IFB device. Then, for each direction that has something to enforce, an HTB tree:

    - egress, on ``interface``: capped at ``min(capacity_mbps, rate_limit.egress_mbps)`` of those
      set; with neither set and no egress class policers there is no egress qdisc at all;
    - ingress, on :func:`ifb_device` (``ip link add ... type ifb``, up), fed by an ``ingress``
      qdisc on ``interface`` whose u32 filter redirects all IPv4 to it: capped at
      ``rate_limit.ingress_mbps`` (the link capacity is the sender's egress to enforce).

    In each tree, one HTB class per class policer of that direction, in order, ceiling
    ``min(policer rate, cap)``; u32 filters with increasing ``prio`` (policer order, then match
    order) send a packet to the first policer whose class matches; all else goes to the
    default class. Without a cap (class policers only) the parent rate is 10 Gbit/s or the
    largest policer rate. Rates are integer kbit (1 kbit = 1000 bit/s). Traffic passes
    unshaped for the milliseconds between clean-up and set-up.

    Raises ``ConfigValidationError`` for an interface name Linux cannot have (or too long for
    its IFB device when ingress is shaped) and for a rate that is not positive and finite.
    """
    _linux_ifname(interface)
    path = _interface_path(interface)
    ifb = _IFB_PREFIX + interface
    cmds = [
        TcCommand(("tc", "qdisc", "del", "dev", interface, "root"), ignore_errors=True),
        TcCommand(("tc", "qdisc", "del", "dev", interface, "ingress"), ignore_errors=True),
    ]
    if len(ifb) <= 15:
        cmds.append(TcCommand(("ip", "link", "del", "dev", ifb), ignore_errors=True))

    def classes(direction: str) -> list[tuple[ClassPolicer, int, int | None]]:
        """(policer, rate kbit, assured kbit or None: assured its whole rate)."""
        out = []
        for c in class_policers:
            if c.direction != direction:
                continue
            at = f"{path}/class-policer[name='{c.name}']"
            rate = _kbit(c.rate_mbps, f"class policer {c.name!r} rate", f"{at}/rate")
            assured = (_kbit(c.assured_mbps, f"class policer {c.name!r} assured rate",
                             f"{at}/assured") if c.assured_mbps else None)
            out.append((c, rate, assured))
        return out

    egress_caps = [
        _kbit(value, what, f"{path}/{leaf}")
        for value, what, leaf in (
            (capacity_mbps, "link capacity", "speed"),
            (rate_limit.egress_mbps if rate_limit else None, "egress rate limit",
             "rate-limit/egress"),
        )
        if value is not None
    ]
    egress_classes = classes("egress")
    if egress_caps or egress_classes:
        cmds += _htb(interface, min(egress_caps, default=None), egress_classes)

    ingress_mbps = rate_limit.ingress_mbps if rate_limit else None
    ingress_cap = (None if ingress_mbps is None
                   else _kbit(ingress_mbps, "ingress rate limit", f"{path}/rate-limit/ingress"))
    ingress_classes = classes("ingress")
    if ingress_cap is not None or ingress_classes:
        ifb = ifb_device(interface)
        cmds += [
            TcCommand(("ip", "link", "add", "name", ifb, "type", "ifb")),
            TcCommand(("ip", "link", "set", "dev", ifb, "up")),
            *_htb(ifb, ingress_cap, ingress_classes),
            TcCommand(("tc", "qdisc", "add", "dev", interface, "handle", "ffff:", "ingress")),
            TcCommand(("tc", "filter", "add", "dev", interface, "parent", "ffff:", "protocol",
                       "ip", "prio", "1", "u32", "match", "u32", "0", "0", "action", "mirred",
                       "egress", "redirect", "dev", ifb)),
        ]
    return cmds


# ---- FRR -----------------------------------------------------------------------------------


def _route_line(route: StaticRoute) -> str:
    if route.next_hop_address is not None:
        return f"ip route {route.prefix} {route.next_hop_address}"
    if route.outgoing_interface is not None:
        return f"ip route {route.prefix} {_linux_ifname(route.outgoing_interface)}"
    return f"ip route {route.prefix} blackhole"


def _cost_block(name: str, cost: int | None) -> list[str]:
    return [f"interface {_linux_ifname(name)}",
            f" ip ospf cost {cost}" if cost is not None else " no ip ospf cost",
            "exit"]


def frr_config_commands(
    old: DeviceConfig | None, new: DeviceConfig, *, ospf_interfaces: frozenset[str]
) -> list[str]:
    """The vtysh lines, for ``configure terminal``, that move FRR from ``old`` to ``new``.

    ``old`` is the config FRR holds now; ``None`` means FRR holds none of NetGPT's settings yet
    (a fresh router), so every setting of ``new`` is emitted and nothing is removed. Covered:

    - the OSPF cost of each interface in ``ospf_interfaces`` (those where the lab runs OSPF):
      ``interface X`` / `` ip ospf cost N`` (`` no ip ospf cost`` when ``igp_cost`` is unset,
      which restores FRR's bandwidth-derived cost) / ``exit``, only where it changed; an
      interface that leaves the config gets its cost removed;
    - static routes: ``no ip route ...`` for each removed or changed route first (FRR would add a
      changed next hop as a second, equal-cost one), then ``ip route ...`` for each added or
      changed one; next hop, interface or ``blackhole``.

    The result is empty when nothing changed. Raises ``ConfigValidationError`` for an interface
    name Linux cannot have.
    """
    lines: list[str] = []
    before = {i.name: i for i in old.interfaces} if old is not None else {}
    for itf in new.interfaces:
        if itf.name not in ospf_interfaces:
            continue
        previous = before.get(itf.name)
        if previous is None or old is None or previous.igp_cost != itf.igp_cost:
            lines += _cost_block(itf.name, itf.igp_cost)
    current = {i.name for i in new.interfaces}
    for name, previous in before.items():
        if name not in current and name in ospf_interfaces and previous.igp_cost is not None:
            lines += _cost_block(name, None)

    old_routes = {r.prefix: r for r in old.static_routes} if old is not None else {}
    new_routes = {r.prefix: r for r in new.static_routes}
    lines += [f"no {_route_line(r)}" for p, r in old_routes.items() if new_routes.get(p) != r]
    lines += [_route_line(r) for p, r in new_routes.items() if old_routes.get(p) != r]
    return lines


# ---- ip link / addr ------------------------------------------------------------------------


def _link_commands(itf: InterfaceConfig, previous: InterfaceConfig | None,
                   known: bool) -> list[list[str]]:
    name = _linux_ifname(itf.name)
    cmds: list[list[str]] = []
    old_address = previous.ipv4_address if previous is not None else None
    if not known or old_address != itf.ipv4_address:
        if old_address is not None:
            cmds.append(["ip", "addr", "del", old_address, "dev", name])
        if itf.ipv4_address is not None:
            cmds.append(["ip", "addr", "replace", itf.ipv4_address, "dev", name])
    if not known or previous is None or previous.enabled != itf.enabled:
        cmds.append(["ip", "link", "set", "dev", name, "up" if itf.enabled else "down"])
    return cmds


def ip_link_commands(old: DeviceConfig | None, new: DeviceConfig) -> list[list[str]]:
    """``ip`` argv lists that move interface state and IPv4 addresses from ``old`` to ``new``.

    Per interface, in config order: ``ip addr del`` of the old address, ``ip addr replace`` of
    the new one (``replace`` is idempotent, so a retried commit does not fail on an address
    already there), then ``ip link set dev X up|down``, each only where it changed. With
    ``old`` ``None`` (state unknown) every interface gets its address and link state. An
    interface that leaves the config loses its address and goes down, as in the twin, where a
    link is up only while both ends are configured and enabled.

    Raises ``ConfigValidationError`` for an interface name Linux cannot have.
    """
    before = {i.name: i for i in old.interfaces} if old is not None else {}
    cmds: list[list[str]] = []
    for itf in new.interfaces:
        cmds += _link_commands(itf, before.get(itf.name), known=old is not None)
    current = {i.name for i in new.interfaces}
    for name, previous in before.items():
        if name in current:
            continue
        _linux_ifname(name)
        if previous.ipv4_address is not None:
            cmds.append(["ip", "addr", "del", previous.ipv4_address, "dev", name])
        cmds.append(["ip", "link", "set", "dev", name, "down"])
    return cmds


# ---- operational state ---------------------------------------------------------------------


def _counter(stats: Mapping[str, object], direction: str, key: str, name: str) -> int:
    block = stats.get(direction)
    value = block.get(key) if isinstance(block, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise NetworkRuntimeError(
            f"ip -j -s link shows no {direction} {key} counter for {name}; run it with -s"
        )
    return value


def parse_ip_link_json(
    text: str, speeds_bps: Mapping[str, int], descriptions: Mapping[str, str]
) -> list[InterfaceState]:
    """The lab interfaces' operational state from the output of ``ip -j -s link show``.

    Only interfaces named ``eth<N>`` are kept (not ``lo``, IFB or management interfaces),
    ordered by N. ``enabled``: ``UP`` among the flags (administratively up). ``oper_up``:
    operstate ``UP``, or ``UNKNOWN`` with ``LOWER_UP`` (drivers that report no operstate);
    a veth reports ``LOWERLAYERDOWN`` while its peer is down. Counters come from ``stats64``
    (``stats`` on old iproute2): ``rx`` is in, ``tx`` is out; Linux keeps no unicast-only
    packet counter, so the unicast packet fields carry all packets. Speed and description come
    from the mappings (Linux has neither for a veth); missing ones are 0 and "".

    Raises ``NetworkRuntimeError`` when the text is not that command's JSON or lacks counters.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetworkRuntimeError(
            f"ip -j -s link show gave no JSON ({exc.msg} at character {exc.pos}); "
            "check that iproute2 supports -j"
        ) from exc
    if not isinstance(data, list):
        raise NetworkRuntimeError(
            f"ip -j -s link show gave a JSON {type(data).__name__}, not a list of links"
        )
    found: list[tuple[int, InterfaceState]] = []
    for entry in data:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("ifname"), str):
            raise NetworkRuntimeError(f"ip -j -s link show gave a link without a name: {entry!r}")
        name: str = entry["ifname"]
        number = _LAB_INTERFACE.match(name)
        if number is None:
            continue
        flags = entry.get("flags", [])
        flags = flags if isinstance(flags, list) else []
        operstate = entry.get("operstate")
        stats = entry.get("stats64", entry.get("stats"))
        if not isinstance(stats, Mapping):
            raise NetworkRuntimeError(
                f"ip -j -s link show gave no statistics for {name}; run it with -s"
            )
        found.append((int(number.group(1)), InterfaceState(
            name=name,
            enabled="UP" in flags,
            oper_up=operstate == "UP" or (operstate == "UNKNOWN" and "LOWER_UP" in flags),
            speed_bps=int(speeds_bps.get(name, 0)),
            in_octets=_counter(stats, "rx", "bytes", name),
            out_octets=_counter(stats, "tx", "bytes", name),
            in_unicast_pkts=_counter(stats, "rx", "packets", name),
            out_unicast_pkts=_counter(stats, "tx", "packets", name),
            description=descriptions.get(name, ""),
        )))
    return [state for _n, state in sorted(found, key=lambda pair: pair[0])]
