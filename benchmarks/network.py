"""Embedded-network benchmark: twin speed, NETCONF RPC latency, SNMP walk and poll times.

Usage: python benchmarks/network.py [--json OUT] [--rpc-iterations N]

Prints a table and writes JSON with the keys: twin_1000_nodes_s, netconf_get_config_ms,
netconf_edit_config_ms, netconf_commit_ms, snmp_bulkwalk_ms, poll_all_abilene_ms (medians), plus
context (goals, p95s, sample counts, net-up time). The network runs as ``netgpt net up`` runs
it: in its own background process on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from netgpt.inventory import Inventory
from netgpt.sim_networks.runtime import free_port_base, start_background, stop_background
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.twin import DigitalTwin, benchmark_graph
from netgpt.telemetry.poller import TelemetryPoller
from netgpt.tools.netconf import NetconfDriver, measure_rpc_latency
from netgpt.tools.snmp import inventory_client

IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
GOALS = {
    "twin_1000_nodes_s": 1.0,
    "netconf_get_config_ms": 3.0,
    "netconf_edit_config_ms": 3.0,
    "netconf_commit_ms": 3.0,
    "net_up_abilene_s": 10.0,
}


def bench_twin(repeats: int) -> dict[str, float]:
    topo, tm = benchmark_graph(1000, 10_000, seed=1)
    times = []
    for _ in range(repeats):
        twin = DigitalTwin(topo)  # a fresh twin each time: includes building its tables
        t0 = time.perf_counter()
        twin.evaluate(tm)
        times.append(time.perf_counter() - t0)
    return {"twin_1000_nodes_s": statistics.median(times), "twin_runs": repeats}


async def _snmp_walks(inventory: Inventory, n: int) -> list[float]:
    client = inventory_client(inventory, inventory.devices[0].name)
    out = []
    try:
        await client.bulk_walk(IF_X_TABLE)  # warm-up (engine discovery)
        for _ in range(n):
            t0 = time.perf_counter()
            rows = await client.bulk_walk(IF_X_TABLE)
            out.append((time.perf_counter() - t0) * 1000)
            assert rows, "empty ifXTable walk"
    finally:
        await client.aclose()
    return out


async def _polls(inventory: Inventory, n: int) -> list[float]:
    poller = TelemetryPoller(inventory, None, interval_s=1.0)
    out = []
    try:
        await poller.poll_once()  # warm-up
        for _ in range(n):
            r = await poller.poll_once()
            if r.failed:
                raise RuntimeError(f"devices did not answer: {r.failed}")
            out.append(r.duration_s * 1000)
    finally:
        await poller.aclose()
    return out


def bench_network(rpc_iterations: int, walks: int, polls: int) -> dict[str, float]:
    """Against ``abilene`` run as ``netgpt net up`` runs it: a separate background process."""
    n = len(build_topology("abilene").devices)
    with tempfile.TemporaryDirectory(prefix="netgpt-bench-") as tmp:
        t0 = time.perf_counter()
        inventory = start_background(
            "abilene",
            Path(tmp),
            netconf_port_base=free_port_base(n, start=21000),
            snmp_port_base=free_port_base(n, start=23000, kind=socket.SOCK_DGRAM),
        )
        startup = time.perf_counter() - t0
        try:
            entry = inventory.devices[1]
            with NetconfDriver(entry, inventory.credentials_for(entry).netconf) as driver:
                rpc = measure_rpc_latency(driver, rpc_iterations)
            walk_ms = asyncio.run(_snmp_walks(inventory, walks))
            poll_ms = asyncio.run(_polls(inventory, polls))
        finally:
            stop_background(Path(tmp))
    return {
        "net_up_abilene_s": startup,
        "netconf_get_config_ms": rpc["get_config_ms"],
        "netconf_edit_config_ms": rpc["edit_config_ms"],
        "netconf_commit_ms": rpc["commit_ms"],
        "netconf_get_config_p95_ms": rpc["get_config_p95_ms"],
        "netconf_edit_config_p95_ms": rpc["edit_config_p95_ms"],
        "netconf_commit_p95_ms": rpc["commit_p95_ms"],
        "netconf_iterations": rpc_iterations,
        "snmp_bulkwalk_ms": statistics.median(walk_ms),
        "snmp_bulkwalk_runs": walks,
        "poll_all_abilene_ms": statistics.median(poll_ms),
        "poll_runs": polls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--rpc-iterations", type=int, default=200)
    parser.add_argument("--twin-repeats", type=int, default=5)
    parser.add_argument("--walks", type=int, default=50)
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    results.update(bench_twin(args.twin_repeats))
    results.update(bench_network(args.rpc_iterations, args.walks, args.polls))
    print(f"{'metric':32} {'value':>10}  goal")
    for key, value in results.items():
        goal = GOALS.get(key)
        mark = "" if goal is None else f"<= {goal:g} {'ok' if value <= goal else 'MISSED'}"
        print(f"{key:32} {value:10.3f}  {mark}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**results, "goals": GOALS}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
