"""Fixtures that start real networks on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netgpt.sim_networks.runtime import EmbeddedNetwork
from tests.integration.networks import start_network


@pytest.fixture(scope="module")
def abilene_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNetwork]:
    """The Abilene network, in-process, on free ports; stopped after the module."""
    network = start_network(
        "abilene",
        Path(tmp_path_factory.mktemp("abilene")),
        start=30000,
        tick_s=0.5,
        peak_utilization=0.5,
    )
    yield network
    network.stop()
