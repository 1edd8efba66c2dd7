"""Helpers for intent tests on a real embedded network: steady traffic, resets, SNMP rates."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from netgpt.device_config import DeviceConfig
from netgpt.inventory import Inventory
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.tools.applier import apply_changes
from netgpt.tools.netconf import netconf_drivers
from netgpt.tools.snmp import inventory_client
from tests.integration.networks import start_network


def start_steady_network(name: str, where: Path, *, start: int) -> EmbeddedNetwork:
    """``name`` on free loopback ports, its traffic flat at the daily peak (50 % busiest link)."""
    return start_network(
        name, where, start=start, tick_s=0.5, peak_utilization=0.5, night_level=1.0
    )


def set_configs(inventory: Inventory, configs: Mapping[str, DeviceConfig]) -> None:
    """Commit ``configs`` (whole configs, replace) over NETCONF, as an operator would."""
    result = apply_changes(dict(configs), netconf_drivers(inventory), dry_run=False)
    assert result.outcome in ("applied", "no_change"), result.summary()


def interface_rates_mbps(
    inventory: Inventory, device: str, interfaces: list[str], *, window_s: float = 1.0
) -> dict[str, tuple[float, float]]:
    """(in, out) Mbit/s of ``device``'s ``interfaces``, from two SNMP counter polls.

    The interval is the device's own (sysUpTime, read in the same snapshot as the counters), so
    a stall of this process between a poll and its answer does not skew the rate.
    """

    async def sample() -> dict[str, tuple[float, float]]:
        async with inventory_client(inventory, device) as client:
            first = {c.name: c for c in await client.interface_counters()}
            await asyncio.sleep(window_s)
            second = {c.name: c for c in await client.interface_counters()}
        out = {}
        for name in interfaces:
            a, b = first[name], second[name]
            dt = b.sys_uptime_s - a.sys_uptime_s
            out[name] = (
                (b.in_octets - a.in_octets) * 8 / dt / 1e6,
                (b.out_octets - a.out_octets) * 8 / dt / 1e6,
            )
        return out

    return asyncio.run(sample())
