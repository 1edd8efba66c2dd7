"""Fixtures that start a Mininet lab (root, FRR, snmpd, iperf3); skipped where it cannot run.

Under ``CI=1`` a machine that cannot run the lab fails these tests instead: CI installs and
runs everything the lab needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netgpt.sim_networks.lab import MininetLab, lab_requirements
from netgpt.sim_networks.topology import build_topology


def require_lab() -> None:
    """Skip (fail under CI) when this machine lacks root or the lab's tools."""
    missing = lab_requirements()
    if missing:
        why = "the lab cannot run here: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def abilene_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MininetLab]:
    """Abilene in Mininet: 12 FRR routers, 12 hosts; taken down after the module."""
    require_lab()
    lab = MininetLab(build_topology("abilene"), Path(tmp_path_factory.mktemp("lab-abilene")))
    lab.up()
    yield lab
    lab.down()
