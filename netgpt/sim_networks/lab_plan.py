"""``LabPlan``: what a Mininet lab of a topology consists of, worked out before anything starts.

Pure: addresses, names, link capacities and the FRR and snmpd configuration files of every router
are computed here from a :class:`~netgpt.sim_networks.topology.Topology`; :mod:`netgpt.sim_networks.
lab` makes them real. Keeping this apart means the lab's layout is unit-tested without root.

Layout of a lab:

- every device is a router: a Mininet host (its own network namespace) with IP forwarding, its
  topology interfaces (``eth0`` access, ``eth1``... links with the topology's /31 addresses) and a
  management interface ``mgmt0`` on the management bridge, outside OSPF and outside the device's
  configuration (an out-of-band management port);
- every device with local prefixes gets one end host ``h<device>`` on its ``eth0``, holding the
  ``.2`` address of each prefix (the router holds ``.1``);
- the root namespace joins the management bridge as the network management station (NMS), so
  NETCONF (port 830) and SNMP (port 161) are reached on each router's management address;
- link capacities are the topology's times ``capacity_scale`` (Abilene's 9,920 Mbit/s become
  99.2 Mbit/s by default), shaped with HTB on both ends so loads and caps are real.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from netgpt.errors import ConfigError
from netgpt.inventory import SnmpCredentials
from netgpt.sim_networks.topology import ACCESS_INTERFACE, Topology

__all__ = [
    "MGMT_INTERFACE",
    "NET_SNMP_AUTH",
    "NET_SNMP_PRIV",
    "HostPlan",
    "LabLinkPlan",
    "LabPlan",
    "LabSettings",
    "RouterPlan",
    "plan_lab",
    "render_ospfd_conf",
    "render_snmpd_conf",
    "render_staticd_conf",
    "render_zebra_conf",
]

MGMT_INTERFACE = "mgmt0"
NETCONF_PORT = 830
SNMP_PORT = 161
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,11}$")


@dataclass(frozen=True)
class LabSettings:
    """Choices a lab is built with; the defaults suit one 2-core machine."""

    mgmt_prefix: str = "192.168.254.0/24"
    capacity_scale: float = 0.01
    max_link_mbps: float = 1000.0
    ospf_hello_s: int = 1
    ospf_dead_s: int = 4
    bridge: str = "ngmgmt"
    pathspace_prefix: str = "ng"

    def __post_init__(self) -> None:
        try:
            net = ipaddress.IPv4Network(self.mgmt_prefix)
        except ValueError:
            raise ConfigError(
                f"management prefix {self.mgmt_prefix!r} is not an IPv4 prefix such as "
                "192.168.254.0/24"
            ) from None
        if net.prefixlen > 29:
            raise ConfigError(
                f"management prefix {self.mgmt_prefix} holds too few addresses; use a /29 or larger"
            )
        if not 0 < self.capacity_scale <= 1:
            raise ConfigError(
                f"capacity scale {self.capacity_scale} must be in (0, 1]; 0.01 turns 10 Gbit/s "
                "links into 100 Mbit/s"
            )
        if not 1 <= self.ospf_hello_s < self.ospf_dead_s <= 60:
            raise ConfigError(
                f"OSPF hello {self.ospf_hello_s} s / dead {self.ospf_dead_s} s: need "
                "1 <= hello < dead <= 60"
            )
        if not re.fullmatch(r"[a-z][a-z0-9]{1,7}", self.bridge):
            raise ConfigError(
                f"bridge name {self.bridge!r}: use 2-8 lowercase letters and digits"
            )


@dataclass(frozen=True)
class LabLinkPlan:
    """One router-to-router link: both ends and its shaped capacity."""

    a: str
    a_interface: str
    b: str
    b_interface: str
    capacity_mbps: float


@dataclass(frozen=True)
class RouterPlan:
    """One router: names, addresses and the capacity behind each link interface."""

    name: str
    index: int
    pathspace: str  # FRR's -N name (its /var/run/frr/<pathspace> folder)
    mgmt_address: str  # "192.168.254.1/24"
    router_id: str
    link_addresses: dict[str, str]  # interface -> "10.255.0.0/31"
    access_addresses: tuple[str, ...]  # eth0 addresses, "10.1.0.1/16"
    capacities_mbps: dict[str, float]  # link interface -> shaped capacity
    igp_costs: dict[str, int]
    site: str
    role: str

    @property
    def mgmt_ip(self) -> str:
        """The management address without its prefix length."""
        return self.mgmt_address.split("/")[0]

    @property
    def ospf_interfaces(self) -> frozenset[str]:
        """Interfaces OSPF runs on (links; eth0 is passive and announced)."""
        return frozenset(self.link_addresses)


@dataclass(frozen=True)
class HostPlan:
    """One end host behind a router's access interface."""

    name: str
    router: str
    addresses: tuple[str, ...]  # "10.1.0.2/16", first is the primary
    gateway: str

    @property
    def ip(self) -> str:
        """The host's primary address without prefix length."""
        return self.addresses[0].split("/")[0]


@dataclass(frozen=True)
class LabPlan:
    """The whole lab: routers, hosts, links and the management network."""

    topology: str
    settings: LabSettings
    routers: dict[str, RouterPlan]
    hosts: dict[str, HostPlan]
    links: tuple[LabLinkPlan, ...]
    nms_address: str  # the root namespace's address on the management bridge
    by_device_host: dict[str, str] = field(default_factory=dict)  # device -> host name

    def host_of(self, device: str) -> HostPlan:
        """The end host behind ``device``; :class:`ConfigError` names those that have one."""
        name = self.by_device_host.get(device)
        if name is None:
            raise ConfigError(
                f"device {device!r} has no end host in this lab; hosts sit behind "
                f"{sorted(self.by_device_host)}"
            )
        return self.hosts[name]


def plan_lab(topology: Topology, settings: LabSettings | None = None) -> LabPlan:
    """Plan a lab of ``topology``; :class:`ConfigError` if it cannot be built as a lab."""
    settings = settings or LabSettings()
    mgmt = ipaddress.IPv4Network(settings.mgmt_prefix)
    usable = list(mgmt.hosts())
    devices = topology.devices
    if len(devices) + 1 > len(usable):
        raise ConfigError(
            f"topology {topology.name!r} has {len(devices)} devices; management prefix "
            f"{settings.mgmt_prefix} holds {len(usable) - 1}; pass a larger one"
        )
    if len(devices) > 64:
        raise ConfigError(
            f"topology {topology.name!r} has {len(devices)} devices; a lab on this machine holds "
            "at most 64 routers (each runs zebra, staticd, ospfd, snmpd and a NETCONF agent)"
        )
    for name in devices:
        if not _NAME.match(name):
            raise ConfigError(
                f"device name {name!r} cannot name a lab router: use a letter then up to 11 "
                "letters or digits"
            )
    nms = usable[-1]
    routers: dict[str, RouterPlan] = {}
    hosts: dict[str, HostPlan] = {}
    by_device_host: dict[str, str] = {}
    for i, name in enumerate(devices):
        node = topology.graph.nodes[name]
        links: dict[str, str] = {}
        caps: dict[str, float] = {}
        costs: dict[str, int] = {}
        for itf, peer in topology.interfaces(name):
            if peer is None:
                continue
            edge = topology.graph.edges[name, peer]
            links[itf] = str(edge["ports"][name][1])
            caps[itf] = _lab_capacity(float(edge["capacity_mbps"]), settings)
            costs[itf] = int(edge["igp_cost"])
        access: list[str] = []
        host_addresses: list[str] = []
        for prefix in topology.local_prefixes(name):
            net = ipaddress.IPv4Network(prefix)
            if net.num_addresses < 4:
                raise ConfigError(
                    f"prefix {prefix} of {name} is too small for a router and a host; use /30 "
                    "or larger"
                )
            access.append(f"{net[1]}/{net.prefixlen}")
            host_addresses.append(f"{net[2]}/{net.prefixlen}")
        routers[name] = RouterPlan(
            name=name,
            index=i,
            pathspace=f"{settings.pathspace_prefix}{name}",
            mgmt_address=f"{usable[i]}/{mgmt.prefixlen}",
            router_id=str(usable[i]),
            link_addresses=links,
            access_addresses=tuple(access),
            capacities_mbps=caps,
            igp_costs=costs,
            site=str(node.get("site", name)),
            role=str(node.get("role", "router")),
        )
        if host_addresses:
            host = HostPlan(
                name=f"h{name}",
                router=name,
                addresses=tuple(host_addresses),
                gateway=access[0].split("/")[0],
            )
            hosts[host.name] = host
            by_device_host[name] = host.name
    links_plan = tuple(
        LabLinkPlan(
            a=lk.a,
            a_interface=lk.a_interface,
            b=lk.b,
            b_interface=lk.b_interface,
            capacity_mbps=_lab_capacity(lk.capacity_mbps, settings),
        )
        for lk in topology.links()
    )
    return LabPlan(
        topology=topology.name,
        settings=settings,
        routers=routers,
        hosts=hosts,
        links=links_plan,
        nms_address=f"{nms}/{mgmt.prefixlen}",
        by_device_host=by_device_host,
    )


def _lab_capacity(capacity_mbps: float, settings: LabSettings) -> float:
    return round(min(capacity_mbps * settings.capacity_scale, settings.max_link_mbps), 3)


# ------------------------------------------------------------------------------------------
# configuration files


def render_zebra_conf(router: RouterPlan) -> str:
    """Zebra's configuration: the hostname only (addresses are set with ``ip`` at start)."""
    return f"hostname {router.name}\nlog timestamp precision 3\n"


def render_staticd_conf(router: RouterPlan) -> str:
    """Staticd's configuration: empty; static routes come from the device agent via vtysh."""
    return f"hostname {router.name}\n"


def render_ospfd_conf(router: RouterPlan, settings: LabSettings) -> str:
    """Ospfd's configuration: area 0 over every link (point-to-point), eth0 passive.

    Link costs start at the topology's IGP costs; the device agent sets them from the device
    configuration afterwards (the same values on a fresh lab).
    """
    lines = [
        f"hostname {router.name}",
        "router ospf",
        f" ospf router-id {router.router_id}",
        f" passive-interface {ACCESS_INTERFACE}",
        " timers throttle spf 0 50 1000",
        " timers throttle lsa all 0",
        " timers lsa min-arrival 0",
    ]
    for addr in sorted(router.link_addresses.values()):
        lines.append(f" network {ipaddress.IPv4Interface(addr).network} area 0")
    for addr in router.access_addresses:
        lines.append(f" network {ipaddress.IPv4Interface(addr).network} area 0")
    lines.append("exit")
    for itf in sorted(router.link_addresses):
        lines += [
            f"interface {itf}",
            " ip ospf network point-to-point",
            f" ip ospf hello-interval {settings.ospf_hello_s}",
            f" ip ospf dead-interval {settings.ospf_dead_s}",
            f" ip ospf cost {router.igp_costs[itf]}",
            "exit",
        ]
    return "\n".join(lines) + "\n"


# net-snmp's names (snmpd.conf createUser, snmpset -a/-x) for the credentials' protocols
NET_SNMP_AUTH = {"sha": "SHA", "sha256": "SHA-256", "md5": "MD5"}
NET_SNMP_PRIV = {"aes128": "AES", "des": "DES"}


def render_snmpd_conf(router: RouterPlan, credentials: SnmpCredentials) -> str:
    """net-snmp ``snmpd.conf`` for one router: its management address, SNMPv3 authPriv user.

    A v2c read community is configured only when the credentials are v2c (opt-in). sysLocation
    is the router's site; sysContact and sysLocation stay writable by leaving them out of the
    read-only set (net-snmp makes configured ones read-only).
    """
    lines = [
        f"agentAddress udp:{router.mgmt_ip}:{SNMP_PORT}",
        f"sysName {router.name}",
        f"sysDescr NetGPT lab router {router.name} (FRR, Linux)",
        "sysServices 6",
        "view all included .1",
    ]
    if credentials.auth_key is None or credentials.priv_key is None:
        if credentials.version == "3":
            raise ConfigError(
                "SNMPv3 credentials need both an auth key and a priv key for authPriv; set them "
                "in the credentials file"
            )
    else:
        auth = credentials.auth_key.get_secret_value()
        priv = credentials.priv_key.get_secret_value()
        for secret in (auth, priv):
            if '"' in secret or "\n" in secret or len(secret) < 8:
                raise ConfigError(
                    "SNMPv3 keys must be at least 8 characters without quotes or newlines; "
                    "regenerate the credentials"
                )
        lines += [
            f'createUser {credentials.user} {NET_SNMP_AUTH[credentials.auth_protocol]} "{auth}" '
            f'{NET_SNMP_PRIV[credentials.priv_protocol]} "{priv}"',
            f"rwuser {credentials.user} priv -V all",
        ]
    if credentials.version == "2c" and credentials.community is not None:
        lines.append(f"rocommunity {credentials.community.get_secret_value()} default -V all")
    return "\n".join(lines) + "\n"
