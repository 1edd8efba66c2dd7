"""Starting embedded networks for integration tests: flat, noise-free traffic, free ports."""

from __future__ import annotations

from pathlib import Path

from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model


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
