"""Fixtures that start real networks on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from netgpt.sim_networks.runtime import EmbeddedNetwork, free_port_base
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model


@pytest.fixture(scope="module")
def abilene_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNetwork]:
    """The Abilene network, in-process, on free ports; stopped after the module."""
    topo = build_topology("abilene")
    n = len(topo.devices)
    network = EmbeddedNetwork(
        topo,
        Path(tmp_path_factory.mktemp("abilene")),
        traffic=traffic_model(
            "diurnal", topo, peak_utilization=0.5, noise=0.0, burst_rate_per_hour=0.0
        ),
        netconf_port_base=free_port_base(n, start=30000),
        snmp_port_base=free_port_base(n, start=31000, kind=socket.SOCK_DGRAM),
        tick_s=0.5,
    )
    network.start()
    yield network
    network.stop()
