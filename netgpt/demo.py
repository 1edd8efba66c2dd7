"""``netgpt demo``: the main job, end to end, on the embedded network.

Starts a network in-process on free loopback ports, then does what the platform does, only
through the tools (NETCONF and SNMP): poll telemetry, estimate the traffic matrix, ask the twin
what taking the busiest link out of service would do, apply that change to both ends with a dry
run, a confirmed commit and SNMP verification, measure where the load went, show an
all-or-nothing change refused everywhere when one device rejects its part, restore the link, and
stop. Every step checks its own result; the demo fails loudly when one does not hold.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from netgpt.device_config import DeviceConfig
from netgpt.inventory import Inventory
from netgpt.render import utilization_table
from netgpt.sim_networks.runtime import EmbeddedNetwork, free_port_base
from netgpt.sim_networks.topology import Topology, build_topology
from netgpt.sim_networks.traffic import traffic_model
from netgpt.sim_networks.twin import DigitalTwin
from netgpt.telemetry.base import RateSample
from netgpt.telemetry.poller import TelemetryPoller
from netgpt.telemetry.store import SqliteTelemetryStore
from netgpt.telemetry.views import (
    LinkUtilization,
    estimate_traffic_matrix,
    latest_by_interface,
    link_utilizations,
)
from netgpt.tools.applier import apply_changes
from netgpt.tools.netconf import netconf_drivers
from netgpt.tools.snmp import inventory_client

__all__ = ["run_demo"]


class DemoCheckFailed(AssertionError):
    """A step of the demo did not produce what it must."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoCheckFailed(what)


def _poll(
    inventory: Inventory, store: SqliteTelemetryStore, rounds: int, interval_s: float
) -> list[RateSample]:
    """Poll ``rounds`` times into ``store``; return the rates computed."""
    rates: list[RateSample] = []

    async def main() -> None:
        poller = TelemetryPoller(inventory, store, interval_s=interval_s)
        try:
            await poller.run(rounds=rounds, on_round=lambda r: rates.extend(r.rates))
        finally:
            await poller.aclose()

    asyncio.run(main())
    _check(bool(rates), "telemetry produced no rates")
    return rates


def _oper_status(inventory: Inventory, device: str, interface: str) -> bool:
    async def read() -> bool:
        client = inventory_client(inventory, device)
        try:
            for c in await client.interface_counters():
                if c.name == interface:
                    return c.oper_up
        finally:
            await client.aclose()
        raise DemoCheckFailed(f"{device} has no interface {interface} in IF-MIB")

    return asyncio.run(read())


def _read_configs(inventory: Inventory) -> dict[str, DeviceConfig]:
    make = netconf_drivers(inventory)
    out = {}
    for d in inventory.devices:
        with make(d.name) as driver:
            out[d.name] = driver.get_config("running")
    return out


def _peak(link: LinkUtilization) -> float:
    return max(link.a_to_b_mbps, link.b_to_a_mbps)


def _disabled(config: DeviceConfig, interface: str) -> DeviceConfig:
    itf = config.interface(interface)
    return config.with_interface(itf.model_copy(update={"enabled": False}))


def run_demo(
    topology_spec: str = "abilene",
    *,
    console: Console | None = None,
    state_dir: Path | None = None,
    poll_interval_s: float = 1.0,
) -> bool:
    """Run the demo; return whether every step held. Prints as it goes."""
    out = console or Console()
    topology = build_topology(topology_spec)
    with tempfile.TemporaryDirectory(prefix="netgpt-demo-") as tmp:
        where = state_dir or Path(tmp)
        try:
            _run(topology, where, out, poll_interval_s)
        except DemoCheckFailed as exc:
            out.print(f"[bold red]demo check failed:[/] {exc}")
            return False
    out.print("[bold green]demo finished: every step held[/]")
    return True


def _run(topology: Topology, state_dir: Path, out: Console, interval: float) -> None:
    n = len(topology.devices)
    network = EmbeddedNetwork(
        topology,
        state_dir,
        traffic=traffic_model("diurnal", topology, peak_utilization=0.6),
        netconf_port_base=free_port_base(n, start=24000),
        snmp_port_base=free_port_base(n, start=26000, kind=socket.SOCK_DGRAM),
    )
    step = _Steps(out)
    t0 = time.perf_counter()
    inventory = network.start()
    try:
        step(
            f"1. network {topology.name} up in {time.perf_counter() - t0:.2f} s: {n} devices, "
            "each with a NETCONF server and an SNMP agent on 127.0.0.1"
        )
        store = SqliteTelemetryStore(":memory:")
        before_rates = _poll(inventory, store, 3, interval)
        before = link_utilizations(inventory, latest_by_interface(before_rates))
        out.print(utilization_table(before, "link utilization from SNMP counters", limit=5))
        # 2-3. what-if on the twin, from configs read over NETCONF and a measured traffic estimate:
        # take the busiest link out of service, unless the twin says traffic would be lost
        configs = _read_configs(inventory)
        matrix = estimate_traffic_matrix(latest_by_interface(before_rates))
        _check(len(matrix) > 0, "no traffic estimate from the access-interface counters")
        twin_now = DigitalTwin(topology, configs)
        now_report = twin_now.evaluate(matrix)
        for busiest in before:
            change = {
                busiest.a: _disabled(configs[busiest.a], busiest.a_interface),
                busiest.b: _disabled(configs[busiest.b], busiest.b_interface),
            }
            after_report = twin_now.with_configs(change).evaluate(matrix)
            if after_report.dropped_mbps < 1e-6:
                break
            cause = after_report.drops_by_cause()
            step(
                f"2. twin: taking {busiest.a}-{busiest.b} ({busiest.utilization:.1%}) out would "
                f"lose {after_report.dropped_mbps:,.0f} Mbit/s "
                f"({'; '.join(str(c) for c in list(cause)[:1])}); not a candidate"
            )
        else:
            raise DemoCheckFailed("every link's removal loses traffic in the twin")
        gain, (gu, gv) = max(
            (after_report.links[k].load_mbps - now_report.links[k].load_mbps, k)
            for k in now_report.links
        )
        step(
            f"3. twin: without {busiest.a}-{busiest.b} ({busiest.utilization:.1%}) nothing is "
            f"lost; the most load moves to {gu}->{gv} (+{gain:,.0f} Mbit/s); max utilization "
            f"{now_report.max_utilization:.1%} -> {after_report.max_utilization:.1%}"
        )

        drivers = netconf_drivers(inventory)
        dry = apply_changes(change, drivers, dry_run=True)
        _check(
            dry.outcome == "dry_run" and all(r.diff for r in dry.results),
            f"dry run did not produce diffs: {dry.summary()}",
        )
        out.print(Panel(dry[busiest.a].diff.strip(), title=f"dry run: diff on {busiest.a}"))
        _check(
            _read_configs(inventory)[busiest.a] == configs[busiest.a],
            "the dry run changed the device",
        )
        step("4. dry run: per-device diffs computed, candidates discarded, nothing changed")

        def verify() -> bool | str:
            down = [
                not _oper_status(inventory, busiest.a, busiest.a_interface),
                not _oper_status(inventory, busiest.b, busiest.b_interface),
            ]
            return all(down) or "ifOperStatus still up after the commit"

        applied = apply_changes(change, drivers, dry_run=False, confirm_timeout_s=60, verify=verify)
        _check(applied.outcome == "applied", f"change not applied: {applied.summary()}")
        step(
            f"5. applied with confirmed commit on {', '.join(applied.changed_devices)}; SNMP "
            "shows ifOperStatus down on both ends, so the commit was confirmed"
        )

        after = link_utilizations(
            inventory, latest_by_interface(_poll(inventory, store, 3, interval))
        )
        by_name = {(u.a, u.b): u for u in after}
        cut = by_name[(busiest.a, busiest.b)]
        _check(
            cut.a_to_b_mbps < 0.01 * busiest.capacity_mbps and not cut.up,
            f"the disabled link still carries {cut.a_to_b_mbps:.1f} Mbit/s",
        )
        before_by_name = {(u.a, u.b): u for u in before}
        grew = max(after, key=lambda u: _peak(u) - _peak(before_by_name[(u.a, u.b)]))
        out.print(utilization_table(after, "link utilization after the change", limit=5))
        step(
            f"6. counters: {busiest.name} carries nothing and is down; the load moved, most of "
            f"all onto {grew.name} (now {grew.utilization:.1%})"
        )

        # 7. all-or-nothing: one device rejects its part, so no device changes
        victim = inventory.devices[0].name
        other = next(d.name for d in inventory.devices if d.name not in (victim,))
        good = configs[victim].with_interface(
            configs[victim]
            .interface("eth0")
            .model_copy(update={"description": "demo: should not stay"})
        )
        bad_other = configs[other].model_copy(
            update={
                "interfaces": (
                    *configs[other].interfaces,
                    configs[other].interfaces[0].model_copy(update={"name": "eth99"}),
                )
            }
        )
        refused = apply_changes({victim: good, other: bad_other}, drivers, dry_run=False)
        current = _read_configs(inventory)
        _check(refused.outcome in ("failed", "rolled_back"), "a bad change was not refused")
        _check(
            current[victim] == configs[victim] and current[other] == configs[other],
            "a refused change left a device changed",
        )
        step(
            f"7. all-or-nothing: {other} rejected its part ({refused.error}); {victim} is "
            "unchanged too"
        )

        restored = apply_changes(
            {busiest.a: configs[busiest.a], busiest.b: configs[busiest.b]}, drivers, dry_run=False
        )
        _check(restored.outcome == "applied", f"restore failed: {restored.summary()}")
        _check(_oper_status(inventory, busiest.a, busiest.a_interface), "link not back up")
        step(f"8. restored {busiest.name}; SNMP shows it up again")
        store.close()
    finally:
        t1 = time.perf_counter()
        network.stop()
        step(f"9. network stopped in {time.perf_counter() - t1:.2f} s")


class _Steps:
    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, text: str) -> None:
        self.console.print(f"[bold cyan]✓[/] {text}", highlight=False)
