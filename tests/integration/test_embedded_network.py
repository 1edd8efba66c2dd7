"""The embedded network end to end: real NETCONF and SNMP servers, the twin behind them."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netgpt.inventory import Inventory
from netgpt.sim_networks.runtime import EmbeddedNetwork, free_port_base
from netgpt.sim_networks.topology import build_topology
from netgpt.tools.applier import apply_changes
from netgpt.tools.netconf import netconf_drivers
from netgpt.tools.snmp import InterfaceCounters, inventory_client

pytestmark = pytest.mark.integration

IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
SYS_NAME = "1.3.6.1.2.1.1.5.0"


def snmp_cli_args(inv: Inventory, name: str) -> list[str]:
    entry = inv.device(name)
    snmp = inv.credentials_for(entry).snmp
    assert snmp.auth_key is not None and snmp.priv_key is not None
    return [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        snmp.user,
        "-a",
        "SHA",
        "-A",
        snmp.auth_key.get_secret_value(),
        "-x",
        "AES",
        "-X",
        snmp.priv_key.get_secret_value(),
        "-On",
        "-t",
        "2",
        "-r",
        "1",
        f"127.0.0.1:{entry.snmp_port}",
    ]


def test_ncclient_reaches_every_device(abilene_network: EmbeddedNetwork):
    inv = abilene_network.inventory
    assert inv is not None
    make = netconf_drivers(inv)
    for entry in inv.devices:
        with make(entry.name) as driver:
            cfg = driver.get_config("running")
            assert cfg.hostname == entry.name
            assert next(i.name for i in cfg.interfaces) == "eth0"


@pytest.mark.skipif(shutil.which("snmpget") is None, reason="Debian package 'snmp' not installed")
def test_debian_snmp_tools_reach_every_device(abilene_network: EmbeddedNetwork):
    inv = abilene_network.inventory
    assert inv is not None
    env = {**os.environ, "MIBS": ""}
    for entry in inv.devices:
        got = subprocess.run(
            ["snmpget", *snmp_cli_args(inv, entry.name), SYS_NAME],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        assert got.returncode == 0, got.stderr
        assert entry.name in got.stdout
        walk = subprocess.run(
            ["snmpbulkwalk", *snmp_cli_args(inv, entry.name), IF_HC_OUT_OCTETS],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        assert walk.returncode == 0, walk.stderr
        rows = [ln for ln in walk.stdout.splitlines() if "Counter64" in ln]
        assert len(rows) == 1 + abilene_network.topology.graph.degree(entry.name)


async def _counters(inv: Inventory, device: str) -> dict[str, InterfaceCounters]:
    async with inventory_client(inv, device) as client:
        return {c.name: c for c in await client.interface_counters()}


def _rates(
    inv: Inventory, pairs: list[tuple[str, str]], seconds: float
) -> dict[tuple[str, str], float]:
    devices = sorted({d for d, _ in pairs})
    first = {d: asyncio.run(_counters(inv, d)) for d in devices}
    time.sleep(seconds)
    second = {d: asyncio.run(_counters(inv, d)) for d in devices}
    # each device's sysUpTime, read with its counters, times them (as the rate tracker does);
    # the wall clock around sequential reads also counts the other devices' reads
    return {
        (d, i): (second[d][i].out_octets - first[d][i].out_octets) * 8
        / (second[d][i].sys_uptime_s - first[d][i].sys_uptime_s) / 1e6
        for d, i in pairs
    }


def _oper(inv: Inventory, device: str, interface: str) -> bool:
    return asyncio.run(_counters(inv, device))[interface].oper_up


def test_disabling_an_interface_shows_in_snmp_and_moves_load(abilene_network: EmbeddedNetwork):
    """NETCONF edit on one end: ifOperStatus down on both ends; counters show the load move."""
    net = abilene_network
    inv = net.inventory
    assert inv is not None
    topo = net.topology
    # the Chicago - New York link; its traffic must move to Chicago-Indianapolis-...-Washington
    a, b = "CHINng", "NYCMng"
    a_itf, b_itf = topo.interface_to(a, b), topo.interface_to(b, a)
    detour = ("WASHng", topo.interface_to("WASHng", "NYCMng"))
    watched = [(a, a_itf), (b, b_itf), detour]
    before = _rates(inv, watched, 1.5)
    assert before[(a, a_itf)] > 1.0 and before[(b, b_itf)] > 1.0

    make = netconf_drivers(inv)
    with make(a) as driver:
        running = driver.get_config("running")
    itf = running.interface(a_itf)
    change = {a: running.with_interface(itf.model_copy(update={"enabled": False}))}
    result = apply_changes(change, make, dry_run=False)
    assert result.outcome == "applied", result.summary()
    try:
        assert not _oper(inv, a, a_itf)
        assert not _oper(inv, b, b_itf)  # the peer sees the link go down
        after = _rates(inv, watched, 1.5)
        assert after[(a, a_itf)] == pytest.approx(0.0, abs=1e-6)
        assert after[(b, b_itf)] == pytest.approx(0.0, abs=1e-6)
        # what used to cross CHIN-NYCM now enters New York from Washington (the twin says about
        # half of it), and the counters agree with the twin's loads
        assert after[detour] > before[detour] + 0.3 * before[(a, a_itf)]
        assert after[detour] == pytest.approx(
            net.live.report.interface(*detour).egress_mbps, rel=0.05
        )
    finally:
        restore = apply_changes({a: running}, make, dry_run=False)
        assert restore.outcome == "applied", restore.summary()
    assert _oper(inv, b, b_itf)


def _netgpt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netgpt.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def _gone(pid: int) -> bool:
    """The process has exited (a zombie left for init to reap counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _tcp_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_cli_net_up_status_down_leaves_nothing(tmp_path: Path):
    nc = free_port_base(12, start=32000)
    sn = free_port_base(12, start=33000, kind=socket.SOCK_DGRAM)
    common = ["--state-dir", str(tmp_path)]
    up = _netgpt(
        "net",
        "up",
        "--topo",
        "abilene",
        *common,
        "--netconf-port-base",
        str(nc),
        "--snmp-port-base",
        str(sn),
        cwd=tmp_path,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    pid = int((tmp_path / "network.pid").read_text())
    try:
        assert "NYCMng" in up.stdout and (tmp_path / "inventory.yaml").is_file()
        inv = Inventory.load(tmp_path / "inventory.yaml")
        assert [d.netconf_port for d in inv.devices] == list(range(nc, nc + 12))
        status = _netgpt("net", "status", *common, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert status.stdout.count("listening") == 12 and "FAIL" not in status.stdout
        again = _netgpt("net", "up", "--topo", "linear,3", *common, cwd=tmp_path)
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        down = _netgpt("net", "down", *common, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert _gone(pid)
    assert all(_tcp_free(p) for p in range(nc, nc + 12))
    for p in range(sn, sn + 12):  # UDP ports can be bound again
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", p))
    assert not (tmp_path / "credentials.yaml").exists()
    assert _netgpt("net", "down", *common, cwd=tmp_path).stdout.startswith("no network")


def test_cli_port_in_use_is_a_clear_error(tmp_path: Path):
    nc = free_port_base(3, start=34000)
    sn = free_port_base(3, start=35000, kind=socket.SOCK_DGRAM)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", nc + 1))
        blocker.listen()
        up = _netgpt(
            "net",
            "up",
            "--topo",
            "linear,3",
            "--state-dir",
            str(tmp_path),
            "--netconf-port-base",
            str(nc),
            "--snmp-port-base",
            str(sn),
            cwd=tmp_path,
        )
    assert up.returncode == 2
    assert f"port {nc + 1}" in up.stderr and "Traceback" not in up.stderr + up.stdout
    assert not (tmp_path / "network.pid").exists()
    assert _tcp_free(nc)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["net", "up", "--topo", "nonsense"], "unknown topology 'nonsense'"),
        (["net", "up", "--topo", "missing.json"], "does not exist"),
        (["telemetry", "poll", "--inventory", "nowhere.yaml"], "no inventory"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], needle: str):
    got = _netgpt(*args, "--state-dir", str(tmp_path), cwd=tmp_path)
    assert got.returncode == 2
    assert needle in got.stderr and "Traceback" not in got.stderr


REPLAY = Path(__file__).resolve().parents[3] / "shared" / "data" / "traffic" / "abilene_tm_5min.npz"


@pytest.mark.skipif(not REPLAY.is_file(), reason=f"shared traffic data not found at {REPLAY}")
def test_background_network_replays_the_real_abilene_matrices(tmp_path: Path):
    from netgpt.sim_networks.runtime import start_background, stop_background
    from netgpt.sim_networks.traffic import AbileneReplay
    from netgpt.sim_networks.twin import DigitalTwin

    inv = start_background(
        "abilene",
        tmp_path,
        netconf_port_base=free_port_base(12, start=36000),
        snmp_port_base=free_port_base(12, start=37000, kind=socket.SOCK_DGRAM),
        traffic="abilene-replay",
    )
    try:
        rates = _rates(inv, [("NYCMng", "eth0"), ("CHINng", "eth0")], 1.5)
    finally:
        assert stop_background(tmp_path) is not None
    # what New York's access interface delivers is what the replayed matrix sends to New York
    topo = build_topology("abilene")
    replay = AbileneReplay(topo, REPLAY)
    expected = DigitalTwin(topo).evaluate(replay.matrix_at(0.0)).interface("NYCMng", "eth0")
    assert rates[("NYCMng", "eth0")] == pytest.approx(expected.egress_mbps, rel=0.1)
    assert rates[("CHINng", "eth0")] > 0
