"""Telemetry against the real embedded network: poller, rates, store, CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.telemetry.poller import TelemetryPoller
from netgpt.telemetry.store import SqliteTelemetryStore
from netgpt.telemetry.views import estimate_traffic_matrix, latest_by_interface, link_utilizations

pytestmark = pytest.mark.integration


def test_poller_rates_match_the_twin_and_land_in_frames(
    abilene_network: EmbeddedNetwork, tmp_path: Path
):
    inv = abilene_network.inventory
    assert inv is not None
    store = SqliteTelemetryStore(tmp_path / "t.sqlite")

    async def run() -> list:
        poller = TelemetryPoller(inv, store, interval_s=1.0)
        rounds = []
        try:
            await poller.run(rounds=3, on_round=rounds.append)
        finally:
            await poller.aclose()
        return rounds

    rounds = asyncio.run(run())
    assert all(not r.failed for r in rounds)
    topo = abilene_network.topology
    n_interfaces = sum(1 + topo.graph.degree(d.name) for d in inv.devices)
    assert len(rounds[0].counters) == n_interfaces and rounds[0].rates == []
    assert len(rounds[2].rates) == n_interfaces

    report = abilene_network.live.report
    latest = latest_by_interface(rounds[2].rates)
    for (device, itf), rate in latest.items():
        expected = report.interface(device, itf).egress_mbps
        assert rate.out_mbps == pytest.approx(expected, rel=0.05, abs=0.5), (device, itf)

    links = link_utilizations(inv, latest)
    assert len(links) == 15 and all(lk.up for lk in links)
    assert links[0].utilization == max(lk.utilization for lk in links)
    matrix = estimate_traffic_matrix(latest)
    originated = sum(r.in_mbps for (d, i), r in latest.items() if i == "eth0")
    assert matrix.total_mbps == pytest.approx(originated, rel=1e-6)

    frame = store.rates_frame(device="NYCMng")
    assert set(frame["interface"]) == {"eth0", "eth1", "eth2"}
    assert (frame["out_utilization"] >= 0).all() and (frame["out_utilization"] < 1).all()
    assert str(frame["timestamp"].dtype).startswith("datetime64")
    assert store.counters_count() == 3 * n_interfaces
    store.close()


def test_poller_records_an_unreachable_device_and_keeps_going(
    abilene_network: EmbeddedNetwork,
):
    inv = abilene_network.inventory
    assert inv is not None
    broken = inv.model_copy(deep=True)
    broken.devices[0].snmp_port = 9  # nothing listens there
    # a timeout long enough for the healthy devices on a loaded machine
    poller = TelemetryPoller(broken, None, interval_s=1.0, timeout_s=1.5, retries=0)

    async def run():
        try:
            return await poller.poll_once()
        finally:
            await poller.aclose()

    result = asyncio.run(run())
    assert list(result.failed) == [broken.devices[0].name]
    assert "127.0.0.1:9" in result.failed[broken.devices[0].name]
    assert {c.device for c in result.counters} == {d.name for d in inv.devices[1:]}


def test_cli_telemetry_poll_and_watch(abilene_network: EmbeddedNetwork, tmp_path: Path):
    inv_path = abilene_network.files.inventory
    db = tmp_path / "cli.sqlite"
    poll = subprocess.run(
        [
            sys.executable,
            "-m",
            "netgpt.cli",
            "telemetry",
            "poll",
            "--inventory",
            str(inv_path),
            "--interval",
            "0.5",
            "--rounds",
            "2",
            "--store",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert poll.returncode == 0, poll.stderr
    assert poll.stdout.count("poll:") == 2 and str(db) in poll.stdout.replace("\n", "")
    assert not SqliteTelemetryStore(db).rates_frame().empty
    watch = subprocess.run(
        [
            sys.executable,
            "-m",
            "netgpt.cli",
            "telemetry",
            "watch",
            "--inventory",
            str(inv_path),
            "--interval",
            "0.5",
            "--rounds",
            "1",
            "--store",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "160", "PATH": ""},
    )
    assert watch.returncode == 0, watch.stderr
    assert "link utilization" in watch.stdout
    assert "CHINng-NYCMng" in watch.stdout or "CHINng" in watch.stdout
