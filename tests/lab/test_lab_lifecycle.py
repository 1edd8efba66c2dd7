"""``netgpt lab up`` / ``down`` five times in a row, with nothing left behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from netgpt.inventory import Inventory
from netgpt.sim_networks.lab import MininetLab
from netgpt.sim_networks.lab_serve import lab_status, start_lab, stop_lab
from netgpt.sim_networks.topology import build_topology
from netgpt.tools.snmp import inventory_client
from tests.lab.conftest import require_lab

pytestmark = pytest.mark.lab


def machine_state() -> dict[str, object]:
    """What a lab could leave behind: root-namespace links, namespaces, FRR folders, processes."""
    links = sorted(e["ifname"] for e in json.loads(
        subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True,
                       check=True).stdout))
    namespaces: set[str] = set()
    daemons: list[str] = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            namespaces.add(os.readlink(f"/proc/{pid}/ns/net"))
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(word in cmd for word in ("mnexec", "/usr/lib/frr/", "snmpd ", "lab_agent",
                                         "lab_serve", "iperf3")):
            daemons.append(cmd)
    return {
        "links": links,
        "namespaces": len(namespaces),
        "frr": sorted(os.listdir("/var/run/frr")) if os.path.isdir("/var/run/frr") else [],
        "daemons": sorted(daemons),
    }


async def sys_name(inventory: Inventory, device: str) -> str:
    async with inventory_client(inventory, device) as client:
        return (await client.system()).name


def test_lab_comes_up_and_down_five_times_leaving_nothing(tmp_path: Path) -> None:
    require_lab()
    before = machine_state()
    for round_ in range(5):
        # the first round also runs iperf3 flows shaped like the diurnal matrix
        traffic = "diurnal" if round_ == 0 else "none"
        inventory, timings = start_lab("abilene", tmp_path / "lab", traffic=traffic)
        assert len(inventory.devices) == 12 and timings["converge_s"] > 0
        assert (timings["flows"] > 0) == (round_ == 0), timings
        assert lab_status(tmp_path / "lab")["running"]

        assert asyncio.run(sys_name(inventory, "SNVAng")) == "SNVAng", round_
        pid, swept = stop_lab(tmp_path / "lab")
        assert pid is not None and swept == [], swept  # the lab took itself down
        assert machine_state() == before, round_
    assert not (tmp_path / "lab" / "inventory.yaml").exists()


def test_lab_down_after_the_lab_process_was_killed_removes_what_it_recorded(
    tmp_path: Path,
) -> None:
    require_lab()
    before = machine_state()
    start_lab("linear,3", tmp_path / "lab")
    pid = int((tmp_path / "lab" / "lab.pid").read_text())
    os.kill(pid, 9)  # no chance to clean up
    _, swept = stop_lab(tmp_path / "lab")
    assert any("processes" in s for s in swept), swept
    assert machine_state() == before


def test_campus_lab_routes_between_groups_through_routers_without_hosts(tmp_path: Path) -> None:
    require_lab()
    lab = MininetLab(build_topology("campus"), tmp_path / "campus")
    lab.up()
    try:
        # core and distribution routers have no prefixes and no hosts, only links
        assert "core1" not in lab.plan.by_device_host
        assert lab.ping("acc1", "acc8") and lab.ping("acc4", "acc2")
        assert lab.tcp_connects("acc2", "acc8")
        out = lab.run_in("core1", ["ip", "-j", "route", "show", "10.100.0.0/16"]).stdout
        assert json.loads(out), "core1 has no OSPF route to the servers"
    finally:
        lab.down()
