"""The interface-counter poller: every device, concurrently, on an interval, over SNMP.

Reads go through :mod:`netgpt.tools.snmp` (the only code that talks to devices). A device that
does not answer is recorded as failed for that round; its next good reading is rated over the
whole gap, so no data is invented and none is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netgpt.errors import DeviceError
from netgpt.inventory import Inventory
from netgpt.telemetry.base import CounterSample, RateSample, TelemetryStore
from netgpt.telemetry.rates import CounterRateTracker
from netgpt.tools.snmp import InterfaceCounters, SnmpManager, inventory_client

__all__ = ["PollRound", "TelemetryPoller"]


@dataclass
class PollRound:
    """What one polling round read, computed and missed."""

    started: float
    duration_s: float
    counters: list[CounterSample] = field(default_factory=list)
    rates: list[RateSample] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _sample(c: InterfaceCounters) -> CounterSample:
    return CounterSample(
        device=c.device,
        interface=c.name,
        if_index=c.if_index,
        timestamp=c.timestamp,
        in_octets=c.in_octets,
        out_octets=c.out_octets,
        speed_mbps=float(c.speed_mbps),
        oper_up=c.oper_up,
        admin_up=c.admin_up,
        sys_uptime_s=c.sys_uptime_s,
        counter_bits=64,
        requested_at=c.requested_at,
    )


class TelemetryPoller:
    """Polls every inventory device's interface counters and stores counters and rates."""

    def __init__(
        self,
        inventory: Inventory,
        store: TelemetryStore | None,
        *,
        interval_s: float = 10.0,
        timeout_s: float = 1.0,
        retries: int = 1,
        max_concurrency: int = 64,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval must be positive, got {interval_s} s")
        self.inventory = inventory
        self.store = store
        self.interval_s = interval_s
        self.tracker = CounterRateTracker(expected_interval_s=interval_s)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        # one SNMP engine per credentials reference (pysnmp keys v3 users by name)
        self._managers: dict[str, SnmpManager] = {}
        self._clients = {
            d.name: inventory_client(
                inventory,
                d.name,
                timeout_s=timeout_s,
                retries=retries,
                manager=self._managers.setdefault(d.credentials, SnmpManager()),
            )
            for d in inventory.devices
        }

    async def _read(self, name: str) -> list[InterfaceCounters]:
        async with self._semaphore:
            return await self._clients[name].interface_counters()

    async def poll_once(self) -> PollRound:
        """Read every device once, concurrently; store and return what was read."""
        started = time.time()
        t0 = time.perf_counter()
        names = list(self._clients)
        results = await asyncio.gather(*(self._read(n) for n in names), return_exceptions=True)
        round_ = PollRound(started=started, duration_s=0.0)
        for name, result in zip(names, results, strict=True):
            if isinstance(result, DeviceError):
                round_.failed[name] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                round_.counters.extend(_sample(c) for c in result)
        round_.rates = self.tracker.update(round_.counters)
        if self.store is not None:
            self.store.add_counters(round_.counters)
            self.store.add_rates(round_.rates)
        round_.duration_s = time.perf_counter() - t0
        return round_

    async def run(
        self,
        *,
        rounds: int | None = None,
        duration_s: float | None = None,
        on_round: Callable[[PollRound], None] | None = None,
    ) -> int:
        """Poll every ``interval_s`` until ``rounds`` or ``duration_s`` is reached (or forever).

        Rounds start on a fixed schedule; a round that overruns the interval delays the next
        one rather than overlapping it. Returns the number of rounds done.
        """
        done = 0
        start = time.monotonic()
        while rounds is None or done < rounds:
            if duration_s is not None and time.monotonic() - start >= duration_s:
                break
            result = await self.poll_once()
            done += 1
            if on_round is not None:
                on_round(result)
            next_at = start + done * self.interval_s
            delay = next_at - time.monotonic()
            if rounds is not None and done >= rounds:
                break
            if delay > 0:
                await asyncio.sleep(delay)
        return done

    async def aclose(self) -> None:
        """Release the SNMP engines' transports."""
        for manager in self._managers.values():
            await manager.aclose()
