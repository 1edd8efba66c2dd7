"""Starting embedded networks for integration tests: flat, noise-free traffic, free ports."""

from __future__ import annotations

from pathlib import Path

from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model
from netgpt.sim_networks.twin import DigitalTwin


def start_network(
    name: str, where: Path, *, start: int, tick_s: float = 1.0, **traffic_options: float
) -> EmbeddedNetwork:
    """Start topology ``name`` in-process: NETCONF ports from ``start``, SNMP from ``start+1000``.

    Diurnal traffic without noise or bursts (``traffic_options`` adjust it).
    """
    topo = build_topology(name)
    net = EmbeddedNetwork.on_free_ports(
        topo,
        where,
        traffic=traffic_model(
            "diurnal", topo, noise=0.0, burst_rate_per_hour=0.0, **traffic_options
        ),
        netconf_start=start,
        snmp_start=start + 1000,
        tick_s=tick_s,
    )
    net.start()
    return net


def telnet_from(twin: DigitalTwin, net: EmbeddedNetwork, group: str) -> bool:
    """Whether a host of campus ``group`` reaches a server (10.100.0.10) on telnet, on ``twin``."""
    src = net.topology.groups[group]
    return twin.reachability(src.device, "10.100.0.10", protocol="tcp", dst_port=23,
                             src_address=src.prefixes[0].replace("0/16", "7")).reachable
