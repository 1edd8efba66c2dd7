"""Starting embedded networks for integration tests: flat, noise-free traffic, free ports."""

from __future__ import annotations

import socket
from pathlib import Path

from netgpt.sim_networks.runtime import EmbeddedNetwork, free_port_base
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model


def start_network(
    name: str, where: Path, *, start: int, tick_s: float = 1.0, **traffic_options: float
) -> EmbeddedNetwork:
    """Start topology ``name`` in-process: NETCONF ports from ``start``, SNMP from ``start+1000``.

    Diurnal traffic without noise or bursts (``traffic_options`` adjust it).
    """
    topo = build_topology(name)
    n = len(topo.devices)
    net = EmbeddedNetwork(
        topo,
        where,
        traffic=traffic_model(
            "diurnal", topo, noise=0.0, burst_rate_per_hour=0.0, **traffic_options
        ),
        netconf_port_base=free_port_base(n, start=start),
        snmp_port_base=free_port_base(n, start=start + 1000, kind=socket.SOCK_DGRAM),
        tick_s=tick_s,
    )
    net.start()
    return net
