"""Endpoint resolution: an intent's endpoints and services in terms of one :class:`Topology`.

An endpoint (device, group, site, prefix, any) becomes the devices it attaches at, the prefixes
it covers and representative addresses to test it with; a traffic selector's service becomes the
protocol/port matches it stands for. Unknown names raise :class:`ConfigError` naming the known
ones. Pure logic, no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netgpt.device_config import IPProtocol, PortRange
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    AnyEndpoint,
    DeviceEndpoint,
    Endpoint,
    GroupEndpoint,
    PrefixEndpoint,
    SiteEndpoint,
    TrafficSelector,
)
from netgpt.sim_networks.topology import Topology

__all__ = [
    "ANY_PREFIX",
    "FlowMatch",
    "Probe",
    "ResolvedEndpoint",
    "ResolvedTraffic",
    "first_host",
    "probes",
    "resolve_endpoint",
    "resolve_region",
    "resolve_traffic",
]

ANY_PREFIX = "0.0.0.0/0"


@dataclass(frozen=True)
class ResolvedEndpoint:
    """An endpoint against a topology.

    ``devices``: where it attaches (for ``any``: every device; for a prefix: the devices whose
    local prefixes overlap it, possibly none). ``prefixes``: the address space it covers
    (``0.0.0.0/0`` for ``any``). ``addresses``: one representative address per (device, prefix)
    to test it with, as (device, address) pairs; ``address`` is ``None`` where the device's own
    default applies (a device endpoint, or ``any``). ``whole_device`` says whether everything
    behind the devices' access interface belongs to the endpoint (device, site, any), so a rule
    on that interface need not match on prefixes.
    """

    label: str
    kind: str
    devices: tuple[str, ...]
    prefixes: tuple[str, ...]
    addresses: tuple[tuple[str, str | None], ...]
    whole_device: bool

    @property
    def is_any(self) -> bool:
        """Whether the endpoint is "anywhere"."""
        return self.kind == "any"

    @property
    def attached(self) -> bool:
        """Whether the endpoint is a named place of the topology (device, group or site)."""
        return self.kind in ("device", "group", "site")


@dataclass(frozen=True)
class FlowMatch:
    """One protocol/port combination a selector stands for."""

    protocol: IPProtocol
    ports: PortRange | None = None

    def label(self) -> str:
        """Return the match in words (``tcp/80``, ``any``)."""
        return self.protocol.value if self.ports is None else f"{self.protocol.value}/{self.ports}"


@dataclass(frozen=True)
class ResolvedTraffic:
    """A traffic selector against a topology: endpoints plus protocol/port matches."""

    source: ResolvedEndpoint
    destination: ResolvedEndpoint
    matches: tuple[FlowMatch, ...]
    label: str


def first_host(prefix: str) -> str:
    """Return the first usable host of ``prefix`` (the address itself for /31 and /32)."""
    net = ipaddress.IPv4Network(prefix, strict=False)
    if net.prefixlen >= 31:
        return str(net.network_address)
    return str(net.network_address + 1)


def _sites(topology: Topology) -> dict[str, list[str]]:
    sites: dict[str, list[str]] = {}
    for device in topology.devices:
        sites.setdefault(str(topology.graph.nodes[device].get("site", device)), []).append(device)
    return sites


def _device_addresses(
    topology: Topology, devices: list[str]
) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for d in devices:
        local = topology.local_prefixes(d)
        out.append((d, first_host(local[0]) if local else None))
    return tuple(out)


def resolve_endpoint(endpoint: Endpoint, topology: Topology) -> ResolvedEndpoint:
    """Resolve ``endpoint`` against ``topology``; :class:`ConfigError` for unknown names."""
    if isinstance(endpoint, DeviceEndpoint):
        if endpoint.name not in topology.graph:
            raise ConfigError(
                f"unknown device {endpoint.name!r} in topology {topology.name!r}; known devices "
                f"start with {topology.devices[:8]}"
            )
        prefixes = tuple(topology.local_prefixes(endpoint.name))
        return ResolvedEndpoint(
            f"device {endpoint.name}", "device", (endpoint.name,), prefixes,
            _device_addresses(topology, [endpoint.name]), True,
        )
    if isinstance(endpoint, GroupEndpoint):
        group = topology.groups.get(endpoint.name)
        if group is None:
            raise ConfigError(
                f"unknown group {endpoint.name!r} in topology {topology.name!r}; known groups: "
                f"{sorted(topology.groups) or 'none'}"
            )
        return ResolvedEndpoint(
            f"group {group.name}", "group", (group.device,), group.prefixes,
            tuple((group.device, first_host(p)) for p in group.prefixes), False,
        )
    if isinstance(endpoint, SiteEndpoint):
        sites = _sites(topology)
        members = sites.get(endpoint.name)
        if members is None:
            raise ConfigError(
                f"unknown site {endpoint.name!r} in topology {topology.name!r}; known sites: "
                f"{sorted(sites)}"
            )
        prefixes = tuple(dict.fromkeys(p for d in members for p in topology.local_prefixes(d)))
        return ResolvedEndpoint(
            f"site {endpoint.name}", "site", tuple(members), prefixes,
            _device_addresses(topology, members), True,
        )
    if isinstance(endpoint, PrefixEndpoint):
        net = ipaddress.IPv4Network(endpoint.prefix)
        owners: list[tuple[str, str]] = []
        for device in topology.devices:
            for p in topology.local_prefixes(device):
                local = ipaddress.IPv4Network(p)
                if local.overlaps(net):
                    inner = net if net.prefixlen >= local.prefixlen else local
                    owners.append((device, first_host(str(inner))))
        addresses: tuple[tuple[str, str | None], ...] = tuple(owners)
        if not owners:  # outside the network: it may enter anywhere
            addresses = tuple((d, first_host(endpoint.prefix)) for d in topology.devices)
        return ResolvedEndpoint(
            f"prefix {endpoint.prefix}", "prefix",
            tuple(dict.fromkeys(d for d, _ in owners)), (endpoint.prefix,),
            addresses, False,
        )
    assert isinstance(endpoint, AnyEndpoint)
    return ResolvedEndpoint(
        "anywhere", "any", tuple(topology.devices), (ANY_PREFIX,),
        _device_addresses(topology, topology.devices), True,
    )


def resolve_region(names: tuple[str, ...], topology: Topology) -> tuple[str, ...]:
    """Devices of a region given as device and site names; :class:`ConfigError` if unknown."""
    sites = _sites(topology)
    out: list[str] = []
    for name in names:
        if name in topology.graph:
            out.append(name)
        elif name in sites:
            out.extend(sites[name])
        else:
            raise ConfigError(
                f"region names {name!r}, which is neither a device nor a site of topology "
                f"{topology.name!r}; sites: {sorted(sites)}"
            )
    return tuple(dict.fromkeys(out))


def resolve_traffic(selector: TrafficSelector, topology: Topology) -> ResolvedTraffic:
    """Resolve a traffic selector; a named service sets protocol and ports.

    A service living in a group also stands for its destination when the selector's destination
    is ``any``. An explicit protocol or port range on the selector overrides the service's.
    """
    destination = selector.destination
    matches: tuple[FlowMatch, ...]
    if selector.service is not None:
        service = topology.services.get(selector.service)
        if service is None:
            raise ConfigError(
                f"unknown service {selector.service!r} in topology {topology.name!r}; known "
                f"services: {sorted(topology.services) or 'none'}"
            )
        try:
            proto = IPProtocol(service.protocol.lower())
        except ValueError:
            raise ConfigError(
                f"service {service.name!r} has protocol {service.protocol!r}; expected tcp, udp, "
                "icmp or any"
            ) from None
        if selector.protocol is not IPProtocol.ANY:
            proto = selector.protocol
        if selector.ports is not None:
            matches = (FlowMatch(proto, selector.ports),)
        elif proto in (IPProtocol.TCP, IPProtocol.UDP) and service.ports:
            matches = tuple(FlowMatch(proto, PortRange(lower=p, upper=p))
                            for p in sorted(set(service.ports)))
        else:
            matches = (FlowMatch(proto),)
        if isinstance(destination, AnyEndpoint) and service.group is not None:
            destination = GroupEndpoint(name=service.group)
    else:
        matches = (FlowMatch(selector.protocol, selector.ports),)
    source = resolve_endpoint(selector.source, topology)
    dest = resolve_endpoint(destination, topology)
    what = selector.service or ", ".join(m.label() for m in matches)
    return ResolvedTraffic(source, dest, matches, f"{what} from {source.label} to {dest.label}")


@dataclass(frozen=True)
class Probe:
    """One test flow: from a device (and source address) to an address, with protocol/port."""

    src_device: str
    src_address: str | None
    dst_device: str
    dst_address: str
    protocol: IPProtocol = IPProtocol.ANY
    dst_port: int | None = None

    def label(self) -> str:
        """Return the flow in words."""
        src = self.src_device
        if self.src_address is not None:
            src = f"{src} ({self.src_address})"
        port = "" if self.dst_port is None else f"/{self.dst_port}"
        return f"{src} -> {self.dst_address} {self.protocol.value}{port}"


def probes(
    source: ResolvedEndpoint,
    destination: ResolvedEndpoint,
    matches: tuple[FlowMatch, ...] = (FlowMatch(IPProtocol.ANY),),
) -> tuple[Probe, ...]:
    """Test flows from every representative source to every representative destination.

    Pairs within one device are left out when either side is ``any`` (they never cross the
    network). A port range is probed at both ends.
    """
    out: list[Probe] = []
    for src_dev, src_addr in source.addresses:
        for dst_dev, dst_addr in destination.addresses:
            if dst_addr is None:
                continue
            if src_dev == dst_dev and (source.is_any or destination.is_any):
                continue
            for m in matches:
                ports: tuple[int | None, ...] = (None,)
                if m.ports is not None:
                    ports = tuple(dict.fromkeys((m.ports.lower, m.ports.upper)))
                out.extend(
                    Probe(src_dev, src_addr, dst_dev, dst_addr, m.protocol, port)
                    for port in ports
                )
    return tuple(dict.fromkeys(out))
